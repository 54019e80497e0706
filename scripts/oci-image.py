#!/usr/bin/env python3
"""Assembles Hoist's container image as an OCI image layout, without a
container engine: one layer holding the operator binary, the shared
libraries it links (from this Debian machine, as distroless/cc-debian12
carries them), CA certificates and a non-root user; a config with the
entrypoint, user and OCI labels. Byte for byte reproducible for the same
inputs: files are sorted, owned by root, dated SOURCE_DATE_EPOCH, and gzip
carries no time stamp.

    oci-image.py LAYOUT NAME BINARY --version V --revision R --source URL --created EPOCH

NAME is the layout's reference name of the image, e.g. `hoist:0.1.0`.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile

UID = 65532
USER = f"{UID}:{UID}"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def fail(message):
    print(f"oci-image: {message}", file=sys.stderr)
    sys.exit(1)


def shared_libraries(binary):
    """The files the dynamic loader maps for `binary`, as absolute paths:
    each library by the path it is found at, and the loader itself."""
    try:
        out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        fail(f"ldd {binary} failed: {error}")
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            fail(f"{binary} links a library this machine lacks: {line}")
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
        else:
            target = line.split("(")[0].strip()
        if target.startswith("/"):
            paths.append(target)
    return sorted(set(paths))


# OCI platform names of the machines the binary is built on.
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


def architecture():
    machine = platform.machine()
    if machine not in ARCHITECTURES:
        fail(f"no OCI architecture known for this machine ({machine})")
    return ARCHITECTURES[machine]


def check_glibc():
    """Host names are looked up by glibc's NSS modules, which are part of
    libc.so.6 itself from glibc 2.34 on; ldd never lists them, so an older
    glibc would leave them out of the image."""
    name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")
    major, minor = (int(part) for part in version.split(".")[:2])
    if name != "glibc" or (major, minor) < (2, 34):
        fail(f"{name} {version}: the image needs glibc 2.34 or later, whose libc.so.6 resolves host names itself")


def tar_info(name, mtime, mode, kind=tarfile.REGTYPE, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer(binary, mtime):
    """The image's one layer, uncompressed."""
    files = {"hoist": (open(binary, "rb").read(), 0o755)}
    for path in shared_libraries(binary):
        # The loader and libraries under the path they are asked for by,
        # with the content of the file a symbolic link points to.
        files[path.lstrip("/")] = (open(os.path.realpath(path), "rb").read(), 0o755)
    if not os.path.isfile(CA_BUNDLE):
        fail(f"{CA_BUNDLE} is missing: install Debian's ca-certificates")
    files[CA_BUNDLE.lstrip("/")] = (open(CA_BUNDLE, "rb").read(), 0o644)
    files["etc/passwd"] = (f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{UID}:nonroot:/home/nonroot:/sbin/nologin\n".encode(), 0o644)
    files["etc/group"] = (f"root:x:0:\nnonroot:x:{UID}:\n".encode(), 0o644)
    files["etc/nsswitch.conf"] = (b"hosts: files dns\n", 0o644)
    directories = {"tmp": 0o1777, "home/nonroot": 0o700}
    for name in files:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.setdefault("/".join(parts[:depth]), 0o755)
    for name in list(directories):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            directories.setdefault("/".join(parts[:depth]), 0o755)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(set(directories) | set(files)):
            if name in directories:
                info = tar_info(name + "/", mtime, directories[name], tarfile.DIRTYPE)
                if name == "home/nonroot":
                    info.uid = info.gid = UID
                tar.addfile(info)
            else:
                content, mode = files[name]
                tar.addfile(tar_info(name, mtime, mode, size=len(content)), io.BytesIO(content))
    return buffer.getvalue()


def write_blob(layout, content):
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as out:
        out.write(content)
    return {"digest": digest, "size": len(content)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layout")
    parser.add_argument("name")
    parser.add_argument("binary")
    parser.add_argument("--version", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--created", required=True, type=int, help="seconds since the epoch")
    args = parser.parse_args()

    os.makedirs(os.path.join(args.layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(args.layout, "oci-layout"), "w") as out:
        json.dump({"imageLayoutVersion": "1.0.0"}, out)

    check_glibc()
    tar = layer(args.binary, args.created)
    compressed = gzip.compress(tar, mtime=0)
    created = datetime.datetime.fromtimestamp(args.created, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "hoist",
        "org.opencontainers.image.description": "Kubernetes operator for build once, deploy many",
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    config = {
        "architecture": architecture(),
        "os": "linux",
        "created": created,
        "config": {
            "User": USER,
            "Entrypoint": ["/hoist", "controller"],
            "Env": ["SSL_CERT_FILE=" + CA_BUNDLE],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created": created, "created_by": "scripts/image"}],
    }
    config_blob = write_blob(args.layout, json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    layer_blob = write_blob(args.layout, compressed)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, **config_blob},
        "layers": [{"mediaType": LAYER, **layer_blob}],
        "annotations": {k: v for k, v in labels.items() if k != "org.opencontainers.image.description"},
    }
    manifest_blob = write_blob(args.layout, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())

    index_path = os.path.join(args.layout, "index.json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as existing:
            index = json.load(existing)
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != args.name]
    index["manifests"].append({"mediaType": MANIFEST, **manifest_blob, "annotations": {REF_NAME: args.name}})
    with open(index_path, "w") as out:
        json.dump(index, out, indent=2)
    print(manifest_blob["digest"])


if __name__ == "__main__":
    main()
