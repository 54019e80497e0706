//! The Provenance gate: what the Artifact's spec shows (a full source
//! revision, images from allowed registries), then the cosign signatures
//! and SLSA provenance checked for each digest.

use jiff::Timestamp;

use crate::api::{Artifact, GateState, ProvenanceGate, RevisionCheck, SupplyChainCheck};
use crate::core::reference::{canonical_registry, registry_and_repository};
use crate::core::supply_chain::{Policy, PolicyProblem};

use super::outcome::Outcome;
use super::records;

/// Provenance facts about an Artifact's source revision, from its spec alone.
pub fn revision_check(artifact: &Artifact) -> (RevisionCheck, String) {
    match artifact
        .spec
        .source
        .as_ref()
        .map(|source| source.revision.as_str())
    {
        None => (RevisionCheck::Missing, "spec.source.revision is not set".into()),
        Some(revision) => {
            let hex = revision
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if hex && (revision.len() == 40 || revision.len() == 64) {
                (RevisionCheck::Valid, format!("source revision {revision}"))
            } else {
                (
                    RevisionCheck::Malformed,
                    format!("spec.source.revision {revision:?} is not a full 40- or 64-hex-digit commit id"),
                )
            }
        }
    }
}

/// `gate` is spec.gates.provenance; `policies` the Environment's
/// supply-chain policies, keys read.
pub fn evaluate(
    gate: Option<&ProvenanceGate>,
    artifact: &Artifact,
    policies: &[Result<Policy, PolicyProblem>],
    now: Timestamp,
) -> Outcome {
    let spec = gate.map(|gate| spec_requirements(gate, artifact));
    if let Some(spec) = spec.as_ref().filter(|spec| spec.state != GateState::Passed) {
        return spec.clone();
    }
    let checks = [SupplyChainCheck::Signatures, SupplyChainCheck::Provenance]
        .into_iter()
        .filter_map(|check| records::evaluate(check, policies, artifact, now))
        .collect::<Vec<_>>();
    if checks.is_empty() {
        return spec.unwrap_or_else(|| Outcome::passed("no provenance required here"));
    }
    let worst = checks
        .iter()
        .map(|o| o.state)
        .find(|s| *s == GateState::Failed)
        .or_else(|| checks.iter().map(|o| o.state).find(|s| *s == GateState::Pending))
        .unwrap_or(GateState::Passed);
    let lines: Vec<&str> = checks
        .iter()
        .filter(|o| o.state == worst)
        .map(|o| o.message.as_str())
        .collect();
    let message = match (worst, spec) {
        (GateState::Failed, _) => format!(
            "{}; the image cannot change: build and sign a new Artifact",
            lines.join("; ")
        ),
        (_, None) => lines.join("; "),
        (_, Some(spec)) => format!("{}; {}", spec.message, lines.join("; ")),
    };
    Outcome {
        state: worst,
        message,
        next_check: checks.iter().filter_map(|o| o.next_check).min(),
    }
}

/// What spec.gates.provenance asks of the Artifact's spec.
fn spec_requirements(gate: &ProvenanceGate, artifact: &Artifact) -> Outcome {
    let mut problems = Vec::new();
    if gate.require_source_revision {
        let (check, message) = revision_check(artifact);
        if check != RevisionCheck::Valid {
            problems.push(message);
        }
    }
    if !gate.allowed_registries.is_empty() {
        for image in &artifact.spec.images {
            match registry_and_repository(&image.image) {
                Ok((host, repository)) => {
                    let allowed = gate
                        .allowed_registries
                        .iter()
                        .any(|entry| registry_allows(entry, &host, &repository));
                    if !allowed {
                        problems.push(format!(
                            "image {} of component {} is not from an allowed registry ({})",
                            image.image,
                            image.component,
                            gate.allowed_registries.join(", ")
                        ));
                    }
                }
                Err(error) => problems.push(format!("component {}: {error}", image.component)),
            }
        }
    }
    if problems.is_empty() {
        Outcome::passed("provenance requirements met")
    } else {
        Outcome::failed(format!(
            "{}; build a new Artifact that meets spec.gates.provenance",
            problems.join("; ")
        ))
    }
}

/// Whether `entry` of `spec.gates.provenance.allowedRegistries` allows the
/// normalised image `host`/`repository`: the same host (Docker Hub by either
/// name, in any case), and, when the entry names a repository prefix, the
/// repository equal to it or below it, on a `/`.
fn registry_allows(entry: &str, host: &str, repository: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    let (entry_host, prefix) = match entry.split_once('/') {
        Some((entry_host, prefix)) => (entry_host, Some(prefix)),
        None => (entry, None),
    };
    let same_host = canonical_registry(&entry_host.to_ascii_lowercase())
        == canonical_registry(&host.to_ascii_lowercase());
    same_host
        && prefix.is_none_or(|prefix| {
            repository
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Environment;

    fn allows(entries: &[&str], image: &str) -> bool {
        let (host, repository) = registry_and_repository(image).expect("valid reference");
        entries
            .iter()
            .any(|entry| registry_allows(entry, &host, &repository))
    }

    #[test]
    fn docker_hub_short_names_are_matched_as_normalised() {
        assert!(allows(&["docker.io"], "nginx:1.27"));
        assert!(allows(&["docker.io/library"], "nginx:1.27"));
        assert!(allows(&["docker.io/library/nginx"], "nginx"));
        assert!(allows(&["docker.io/library"], "docker.io/nginx:1.27"));
        assert!(allows(&["docker.io/bitnami"], "bitnami/redis:7"));
        assert!(!allows(&["docker.io/library"], "bitnami/redis:7"));
        // Official images live under library/: an entry naming the bare name is a namespace.
        assert!(!allows(&["docker.io/nginx"], "nginx:1.27"));
        assert!(allows(&["docker.io/nginx"], "nginx/nginx-ingress:3.4"));
        assert!(!allows(&["registry.example.com"], "nginx:1.27"));
    }

    #[test]
    fn index_docker_io_is_docker_io_on_either_side() {
        assert!(allows(&["index.docker.io"], "nginx"));
        assert!(allows(&["index.docker.io/library"], "docker.io/library/nginx"));
        assert!(allows(&["docker.io"], "index.docker.io/library/nginx:1.27"));
        assert!(allows(&["docker.io/bitnami"], "index.docker.io/bitnami/redis"));
    }

    #[test]
    fn a_host_entry_allows_that_host_and_port_only() {
        assert!(allows(&["ghcr.io"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["GHCR.IO"], "ghcr.io/acme/api:v1"));
        assert!(!allows(&["ghcr.io"], "ghcr.io.evil.example/acme/api"));
        // A Docker Hub repository that looks like a host is still on Docker Hub.
        assert!(!allows(&["ghcr.io"], "docker.io/ghcr.io/api"));
        assert!(allows(
            &["registry.example.com:5000"],
            "registry.example.com:5000/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com"],
            "registry.example.com:5000/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com:5000"],
            "registry.example.com/shop/api:1"
        ));
        assert!(!allows(
            &["registry.example.com:5000"],
            "registry.example.com:5001/shop/api:1"
        ));
        assert!(allows(&["localhost:5000/shop"], "localhost:5000/shop/web"));
        assert!(allows(&["127.0.0.1:5000"], "127.0.0.1:5000/shop/backend:v1.2.3"));
    }

    #[test]
    fn a_repository_prefix_matches_on_whole_segments() {
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["ghcr.io/acme/"], "ghcr.io/acme/api:v1"));
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme:v1"));
        assert!(allows(&["ghcr.io/acme"], "ghcr.io/acme/team/api"));
        assert!(!allows(&["ghcr.io/acme"], "ghcr.io/acmeevil/x"));
        assert!(!allows(&["ghcr.io/acme/api"], "ghcr.io/acme/api-evil"));
        assert!(!allows(&["ghcr.io/acme/api/"], "ghcr.io/acme"));
        assert!(allows(&["quay.io/x", "ghcr.io/acme"], "ghcr.io/acme/api"));
    }

    #[test]
    fn digests_and_tags_do_not_take_part() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(allows(&["ghcr.io/acme"], &format!("ghcr.io/acme/api@{digest}")));
        assert!(allows(
            &["ghcr.io/acme/api"],
            &format!("ghcr.io/acme/api:v1@{digest}")
        ));
        assert!(allows(&["docker.io/library/nginx"], &format!("nginx@{digest}")));
        assert!(!allows(
            &["ghcr.io/acme/api"],
            &format!("ghcr.io/acme/api2@{digest}")
        ));
    }

    #[test]
    fn the_provenance_gate_names_each_image_it_refuses() {
        let environment: Environment = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: prod, namespace: shop}
spec:
  gates: {provenance: {allowedRegistries: ["ghcr.io/acme", "docker.io/library"]}}
"#,
        )
        .expect("fixture parses");
        let artifact: Artifact = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {name: shop-1, namespace: shop}
spec:
  application: shop
  version: 1.0.0
  images:
    - {component: backend, image: "ghcr.io/acme/backend:1.0.0"}
    - {component: proxy, image: "nginx:1.27"}
    - {component: frontend, image: "ghcr.io/acmeevil/frontend:1.0.0"}
    - {component: broken, image: "Not A Reference"}
"#,
        )
        .expect("fixture parses");
        let now = k8s_openapi::jiff::Timestamp::from_second(1_795_000_000).expect("valid time");
        assert_eq!(
            evaluate(environment.spec.gates.provenance.as_ref(), &artifact, &[], now),
            Outcome::failed(
                "image ghcr.io/acmeevil/frontend:1.0.0 of component frontend is not from an allowed registry (ghcr.io/acme, docker.io/library); \
                 component broken: \"Not A Reference\" is not a valid image reference; \
                 build a new Artifact that meets spec.gates.provenance"
            )
        );
    }
}
