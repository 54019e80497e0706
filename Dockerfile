# Hoist's operator image, for machines with Docker or BuildKit. Where no
# container engine runs, scripts/image builds the same image (the same
# binary, user, entrypoint and labels) from the release binary.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t hoist:0.1.0 .

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin hoist \
 && install -m 0755 target/release/hoist /hoist

# glibc, libgcc, CA certificates and the nonroot user (65532), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hoist" \
      org.opencontainers.image.description="Kubernetes operator for build once, deploy many" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/hoist-dev/hoist" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /hoist /hoist
USER 65532:65532
ENTRYPOINT ["/hoist", "controller"]
