use super::*;
use crate::core::environment::fixture::{at, yaml};
use crate::core::operator_config;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn config(text: &str) -> RegistryRetention {
    operator_config::parse(text)
        .expect("configuration")
        .registry_retention
}

/// Artifact `namespace/name` whose components (`component`, `image`,
/// resolved digest) are given.
fn artifact(namespace: &str, name: &str, images: &[(&str, &str, Option<&str>)]) -> Artifact {
    let spec: Vec<String> = images
        .iter()
        .map(|(component, image, _)| format!("{{component: {component}, image: \"{image}\"}}"))
        .collect();
    let status: Vec<String> = images
        .iter()
        .filter_map(|(component, image, digest)| {
            digest.map(|digest| {
                format!(
                    "{{component: {component}, image: \"{image}\", digest: \"{digest}\", resolvedAt: \"2026-11-18T00:00:00Z\"}}"
                )
            })
        })
        .collect();
    yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  application: shop
  version: 1.0.0
  images: [{}]
status:
  images: [{}]
"#,
        spec.join(", "),
        status.join(", ")
    ))
}

fn deleted(manifest: (&str, &str, &str, &str)) -> Verdict {
    let (image, registry, repository, digest) = manifest;
    Verdict::Delete(Manifest {
        image: image.to_owned(),
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        digest: digest.to_owned(),
    })
}

fn kept(image: &str, reason: ManifestKeepReason, by: Option<&str>) -> Verdict {
    Verdict::Keep {
        image: image.to_owned(),
        reason,
        by: by.map(str::to_owned),
    }
}

#[test]
fn it_is_off_unless_registries_are_listed() {
    let image = [("backend", "registry.example.com:5000/shop/backend:1.0.0", Some(A))];
    let old = artifact("shop", "shop-a", &image);
    assert!(!is_held(
        &operator_config::parse("").unwrap().registry_retention,
        &old
    ));
    assert!(!is_held(&config("registryRetention: {}\n"), &old));
    let on = config("registryRetention: {registries: [\"registry.example.com:5000\", index.docker.io]}\n");
    assert!(is_held(&on, &old));
    assert!(on.allows("registry.example.com:5000"));
    assert!(!on.allows("registry.example.com"));
    assert!(!on.allows("registry.example.com:5001"));
    // Docker Hub has one name, whichever the configuration uses.
    assert!(on.allows("docker.io"));
}

#[test]
fn an_entry_that_is_not_a_registry_host_is_refused_by_path() {
    for entry in [
        "https://registry.example.com",
        "registry.example.com/team",
        "Registry.example.com",
        "registry.example.com:port",
        "registry.example.com:",
        "",
    ] {
        let error = operator_config::parse(&format!("registryRetention: {{registries: [\"{entry}\"]}}\n"))
            .unwrap_err();
        assert_eq!(error.field, "registryRetention.registries[0]", "{entry}");
        assert!(
            error.message.contains(&format!(
                "{entry:?} is not a registry host: write it as image references do"
            )),
            "{error}"
        );
    }
    let error = operator_config::parse("registryRetention: {registry: [r.example.com]}\n").unwrap_err();
    assert_eq!(error.field, "registryRetention.registry");
}

#[test]
fn an_unshared_manifest_in_an_allowed_registry_goes() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let old = artifact(
        "shop",
        "shop-a",
        &[("backend", "127.0.0.1:5000/shop/backend:1.0.0", Some(A))],
    );
    let other = artifact(
        "shop",
        "shop-b",
        &[("backend", "127.0.0.1:5000/shop/backend:1.0.1", Some(B))],
    );
    assert_eq!(
        decide(&allowed, &old, &[&old, &other]),
        [deleted((
            "127.0.0.1:5000/shop/backend:1.0.0",
            "127.0.0.1:5000",
            "shop/backend",
            A
        ))]
    );
}

#[test]
fn a_registry_outside_the_allow_list_is_never_touched() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let old = artifact(
        "shop",
        "shop-a",
        &[
            ("backend", "127.0.0.1:5001/shop/backend:1.0.0", Some(A)),
            ("frontend", "nginx:1.27", Some(B)),
        ],
    );
    assert_eq!(
        decide(&allowed, &old, &[&old]),
        [
            kept(
                "127.0.0.1:5001/shop/backend:1.0.0",
                ManifestKeepReason::NotAllowed,
                None
            ),
            kept("nginx:1.27", ManifestKeepReason::NotAllowed, None),
        ]
    );
    assert_eq!(
        decide(&RegistryRetention::default(), &old, &[&old]),
        [
            kept(
                "127.0.0.1:5001/shop/backend:1.0.0",
                ManifestKeepReason::NotAllowed,
                None
            ),
            kept("nginx:1.27", ManifestKeepReason::NotAllowed, None),
        ]
    );
}

#[test]
fn a_digest_another_artifact_of_any_namespace_references_stays() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let image = "127.0.0.1:5000/shop/backend:1.0.0";
    let old = artifact("shop", "shop-a", &[("backend", image, Some(A))]);
    // Another tenant's Artifact, by another tag of the same repository.
    let shared = artifact(
        "other",
        "copy",
        &[("api", "127.0.0.1:5000/shop/backend:stable", Some(A))],
    );
    assert_eq!(
        decide(&allowed, &old, &[&old, &shared]),
        [kept(image, ManifestKeepReason::SharedDigest, Some("other/copy"))]
    );
    // Pinned in its spec and not resolved yet: it counts too.
    let pinned = artifact(
        "other",
        "pinned",
        &[("api", &format!("127.0.0.1:5000/shop/backend@{A}"), None)],
    );
    assert_eq!(
        decide(&allowed, &old, &[&old, &pinned]),
        [kept(
            image,
            ManifestKeepReason::SharedDigest,
            Some("other/pinned")
        )]
    );
}

#[test]
fn the_same_digest_in_another_repository_or_an_artifact_being_deleted_does_not_count() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let image = "127.0.0.1:5000/shop/backend:1.0.0";
    let old = artifact("shop", "shop-a", &[("backend", image, Some(A))]);
    let elsewhere = artifact(
        "shop",
        "mirror",
        &[("backend", "127.0.0.1:5000/mirror/backend:1.0.0", Some(A))],
    );
    let mut going = artifact("other", "going", &[("api", image, Some(A))]);
    going.metadata.deletion_timestamp = Some(at(0));
    assert_eq!(
        decide(&allowed, &old, &[&old, &elsewhere, &going]),
        [deleted((image, "127.0.0.1:5000", "shop/backend", A))]
    );
}

#[test]
fn an_unresolved_image_stays_and_a_manifest_two_components_share_goes_once() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let old = artifact(
        "shop",
        "shop-a",
        &[
            ("backend", "127.0.0.1:5000/shop/app:1.0.0", Some(A)),
            ("worker", "127.0.0.1:5000/shop/app:1.0.0", Some(A)),
            ("frontend", "127.0.0.1:5000/shop/frontend:1.0.0", None),
        ],
    );
    assert_eq!(
        decide(&allowed, &old, &[&old]),
        [
            deleted(("127.0.0.1:5000/shop/app:1.0.0", "127.0.0.1:5000", "shop/app", A)),
            kept(
                "127.0.0.1:5000/shop/frontend:1.0.0",
                ManifestKeepReason::Unresolved,
                None
            ),
        ]
    );
}

#[test]
fn an_artifact_is_held_whatever_shares_its_digest_but_not_when_it_has_none() {
    let allowed = config("registryRetention: {registries: [\"127.0.0.1:5000\"]}\n");
    let resolved = artifact(
        "shop",
        "shop-a",
        &[("backend", "127.0.0.1:5000/shop/backend:1.0.0", Some(A))],
    );
    assert!(is_held(&allowed, &resolved));
    let unresolved = artifact(
        "shop",
        "shop-b",
        &[("backend", "127.0.0.1:5000/shop/backend:1.0.0", None)],
    );
    assert!(!is_held(&allowed, &unresolved));
}

#[test]
fn only_a_deleted_artifact_holding_the_finalizer_is_pending() {
    let mut artifact = artifact("shop", "shop-a", &[]);
    assert!(!is_pending(&artifact));
    artifact.metadata.finalizers = Some(vec!["foregroundDeletion".into(), FINALIZER.into()]);
    assert!(!is_pending(&artifact));
    artifact.metadata.deletion_timestamp = Some(at(0));
    assert!(is_pending(&artifact));
    artifact.metadata.finalizers = Some(vec!["foregroundDeletion".into()]);
    assert!(!is_pending(&artifact));
}

#[test]
fn registry_answers_are_final_except_transient_ones() {
    use RegistryDeletionOutcome::*;
    let cases = [
        (202, Answer::Final(Deleted)),
        (404, Answer::Final(NotFound)),
        (405, Answer::Final(Unsupported)),
        (401, Answer::Final(Denied)),
        (403, Answer::Final(Denied)),
        (400, Answer::Final(Denied)),
        (408, Answer::Transient),
        (429, Answer::Transient),
        (500, Answer::Transient),
        (503, Answer::Transient),
    ];
    for (status, expected) in cases {
        assert_eq!(answer(status), expected, "{status}");
    }
}

#[test]
fn transient_failures_are_retried_a_bounded_number_of_times_with_growing_waits() {
    assert_eq!(retry_after(1), Some(Duration::from_secs(1)));
    assert_eq!(retry_after(2), Some(Duration::from_secs(2)));
    assert_eq!(retry_after(ATTEMPTS), None);
}
