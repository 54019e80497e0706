//! `hoist render` on the shipped example (offline, through its OCI layout)
//! and on a directory whose images live in the real test registry.

use std::path::{Path, PathBuf};

use hoist::api::Phase;
use hoist::registry::{Resolver, ResolverConfig};
use hoist::render::{PromotionReport, Rendered, render};
use hoist_testkit::layout::example_material;
use hoist_testkit::signing::{SigningKey, push_attestations, push_signatures};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/shop")
}

fn now() -> Time {
    Time(Timestamp::from_second(1_795_000_000).expect("valid time"))
}

/// The digest the example's OCI layout holds for `reference`.
fn layout_digest(reference: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example().join("images/index.json")).expect("index"))
            .expect("json");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .and_then(|m| m["digest"].as_str())
        .expect("reference in layout")
        .to_string()
}

fn documents(yaml: &str) -> (Vec<Deployment>, Vec<ConfigMap>) {
    let mut deployments = Vec::new();
    let mut config_maps = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document).expect("yaml");
        match value["kind"].as_str() {
            Some("Deployment") => deployments.push(serde_yaml::from_value(value).expect("deployment")),
            Some("ConfigMap") => config_maps.push(serde_yaml::from_value(value).expect("config map")),
            other => panic!("unexpected kind {other:?}"),
        }
    }
    (deployments, config_maps)
}

fn image_of(deployments: &[Deployment], namespace: &str, name: &str) -> String {
    let deployment = deployments
        .iter()
        .find(|d| {
            d.metadata.namespace.as_deref() == Some(namespace) && d.metadata.name.as_deref() == Some(name)
        })
        .unwrap_or_else(|| panic!("{namespace}/{name} rendered"));
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
async fn the_shop_example_promotes_one_build_through_every_stage_offline() {
    let resolver = Resolver::new(ResolverConfig::default());
    let rendered = render(&example(), "default", &resolver, now())
        .await
        .expect("renders");
    assert_eq!(
        resolver.registry_requests(),
        0,
        "the OCI layout answers every image"
    );
    let phases: Vec<(String, Phase)> = rendered
        .promotions
        .iter()
        .map(|p| (p.name.clone(), p.phase))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("shop-1.4.2-dev".to_string(), Phase::Succeeded),
            ("shop-1.4.2-staging".to_string(), Phase::Succeeded),
            ("shop-1.4.2-prod".to_string(), Phase::Succeeded),
        ]
    );
    let (deployments, config_maps) = documents(&rendered.yaml);
    assert_eq!(deployments.len(), 6);
    let backend = format!(
        "registry.example.com/shop/backend@{}",
        layout_digest("registry.example.com/shop/backend:1.4.2")
    );
    let frontend = format!(
        "registry.example.com/shop/frontend@{}",
        layout_digest("registry.example.com/shop/frontend:1.4.2")
    );
    for stage in ["shop-dev", "shop-staging", "shop-prod"] {
        assert_eq!(image_of(&deployments, stage, "backend"), backend);
        assert_eq!(image_of(&deployments, stage, "frontend"), frontend);
    }
    let prod = config_maps
        .iter()
        .find(|cm| cm.metadata.namespace.as_deref() == Some("shop-prod"))
        .expect("prod config");
    let data: Vec<(String, String)> = prod.data.clone().unwrap().into_iter().collect();
    assert_eq!(
        data,
        vec![
            ("CART_TTL_SECONDS".to_string(), "3600".to_string()),
            ("LOG_LEVEL".to_string(), "info".to_string()),
            (
                "PAYMENTS_URL".to_string(),
                "https://payments.example.com".to_string()
            ),
        ]
    );
    assert!(
        !rendered.yaml.contains("example-token"),
        "Secret content never appears in the output"
    );
}

/// The example with `file` replaced by `content` (images from the layout of
/// the original example directory), rendered at `at`.
async fn render_variant(file: &str, content: &str, at: Time) -> Rendered {
    let dir = variant(file, content);
    std::os::unix::fs::symlink(example().join("images"), dir.path().join("images")).expect("link layout");
    let resolver = Resolver::new(ResolverConfig::default());
    render(dir.path(), "default", &resolver, at)
        .await
        .expect("renders")
}

/// The report of the prod Promotion.
fn prod(rendered: &Rendered) -> &PromotionReport {
    rendered
        .promotions
        .iter()
        .find(|p| p.name == "shop-1.4.2-prod")
        .expect("prod promotion")
}

/// Copies the example into a temp dir, replacing `file` with `content`.
fn variant(file: &str, content: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for entry in std::fs::read_dir(example()).expect("example") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy");
        }
    }
    std::fs::write(dir.path().join(file), content).expect("write variant");
    dir
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir()
                .join(format!("hoist-render-{}", std::process::id()))
                .join(format!(
                    "{:x}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Self(path)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn a_blocked_promotion_is_reported_with_its_gate() {
    let promotions = std::fs::read_to_string(example().join("promotion.yaml")).expect("promotions");
    let approvals = "  approvals:\n    - user: alice\n      groups: [staff]\n      comment: change CHG-1187 approved\n    \
                     - user: dave\n      groups: [client]\n      comment: accepted for the client\n";
    let without_approval = promotions.replace(approvals, "");
    assert_ne!(promotions, without_approval);
    let rendered = render_variant("promotion.yaml", &without_approval, now()).await;
    assert!(!rendered.all_done());
    let prod = prod(&rendered);
    assert_eq!(
        prod,
        &PromotionReport {
            namespace: "shop".into(),
            name: "shop-1.4.2-prod".into(),
            phase: Phase::Waiting,
            message: "waiting for the Approval gate: 0 of 2 rules met; staff needs 1 approval from group staff; \
                      client needs 1 approval from group client; approve with: kubectl hoist approve shop-1.4.2-prod -n shop"
                .into(),
            needs_cluster: false,
        }
    );
    let (deployments, _) = documents(&rendered.yaml);
    assert_eq!(
        deployments.len(),
        4,
        "prod's Deployments are not rendered while blocked"
    );
}

/// The example with `extra` added to the gates of prod, rendered at `at`.
async fn render_prod_gates(extra: &str, at: &str) -> PromotionReport {
    let environments = std::fs::read_to_string(example().join("environments.yaml")).expect("environments");
    let gated = environments.replace(
        "  gates:\n    approval:\n",
        &format!("  gates:\n{extra}    approval:\n"),
    );
    assert_ne!(environments, gated);
    let rendered = render_variant("environments.yaml", &gated, Time(at.parse().expect("instant"))).await;
    prod(&rendered).clone()
}

#[tokio::test]
async fn render_decides_change_windows_from_the_clock_it_is_given() {
    let freeze = "    windows:\n      - {name: friday-evening, type: Deny, schedule: \"0 18 * * FRI\", duration: 62h, timeZone: Europe/Berlin}\n";
    // Friday 2026-12-04 18:30 in Berlin.
    let held = render_prod_gates(freeze, "2026-12-04T17:30:00Z").await;
    assert_eq!(
        (held.phase, held.message.as_str()),
        (
            Phase::Waiting,
            "waiting for the Windows gate: change window friday-evening (Deny) is on until \
             2026-12-07 08:00 CET (2026-12-07T07:00:00Z); no Promotion starts before then unless an override \
             waives Windows"
        )
    );
    // Monday 08:00 in Berlin: the freeze is over.
    let free = render_prod_gates(freeze, "2026-12-07T07:00:00Z").await;
    assert_eq!(free.phase, Phase::Succeeded, "{}", free.message);
}

#[tokio::test]
async fn render_pins_a_release_whose_verification_needs_a_cluster_and_says_so() {
    let verification = "    verification:\n      - name: error-rate\n        prometheus: {query: 'sum(rate(errors{env=\"{{environment}}\"}[5m]))', condition: result < 0.01}\n";
    let prod = render_prod_gates(verification, "2026-12-02T10:00:00Z").await;
    assert_eq!(
        (prod.phase, prod.needs_cluster, prod.message.as_str()),
        (
            Phase::Verifying,
            true,
            "rolled out; verification runs in the cluster (hoist render runs no Jobs and queries no Prometheus): step error-rate: \
             0 of 1 measurement(s): 0 successful, 0 failed, 0 inconclusive; next measurement at 2026-12-02T10:00:00Z \
             (every 30s)"
        )
    );
}

#[tokio::test]
async fn render_holds_a_release_for_its_soak_after_the_upstream_rollout_it_assumes() {
    // staging succeeds in the same render, so shop-1.4.2 is healthy there from that instant.
    let held = render_prod_gates("    soak: {duration: 30m}\n", "2026-12-02T10:00:00Z").await;
    assert_eq!(
        (held.phase, held.message.as_str()),
        (
            Phase::Waiting,
            "waiting for the Soak gate: shop-1.4.2 soaks until 2026-12-02T10:30:00Z: Healthy in staging since \
             2026-12-02T10:00:00Z, soak 30m"
        )
    );
}

#[tokio::test]
async fn approvals_in_files_count_only_where_the_gate_allows_unverified_approvals() {
    let environments = std::fs::read_to_string(example().join("environments.yaml")).expect("environments");
    let strict = environments.replace("      allowUnverified: true\n", "");
    assert_ne!(environments, strict);
    let rendered = render_variant("environments.yaml", &strict, now()).await;
    let prod = prod(&rendered);
    assert_eq!(
        (prod.phase, prod.message.as_str()),
        (
            Phase::Waiting,
            "waiting for the Approval gate: approvals cannot be verified (hoist render reads files, and no API \
             server authenticated who wrote the approvals in them): a cluster admin must install the \
             ValidatingAdmissionPolicy hoist-approvals and its ValidatingAdmissionPolicyBinding hoist-approvals \
             (Kubernetes 1.30+), from the Hoist chart or deploy/admission/; on older clusters, set \
             spec.gates.approval.allowUnverified: true to count approvals nobody verified; 0 of 2 rules met; \
             staff needs 1 approval from group staff; client needs 1 approval from group client; not counted: \
             alice (identity not verified), dave (identity not verified); approve with: kubectl hoist approve \
             shop-1.4.2-prod -n shop"
        )
    );
}

#[tokio::test]
async fn images_resolve_and_verify_through_a_real_registry_when_no_layout_has_them() {
    let registry =
        hoist_testkit::registry::registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
    let images =
        hoist_testkit::registry::push_multi("render", &[("backend", "1.4.2"), ("frontend", "1.4.2")])
            .await
            .expect("push images");
    let artifact = std::fs::read_to_string(example().join("artifact.yaml"))
        .expect("artifact")
        .replace(
            "registry.example.com/shop/backend:1.4.2",
            &images["backend"].reference,
        )
        .replace(
            "registry.example.com/shop/frontend:1.4.2",
            &images["frontend"].reference,
        );
    let dir = variant("artifact.yaml", &artifact);
    let environments = std::fs::read_to_string(dir.path().join("environments.yaml"))
        .expect("environments")
        .replace(
            "allowedRegistries: [registry.example.com/shop]",
            &format!("allowedRegistries: [\"{registry}\"]"),
        );
    // The example's gates verify against a key of this run, whose material
    // is attached in the registry the cosign way.
    let key = SigningKey::generate();
    let environments = hoist_testkit::layout::replace_public_keys(&environments, &key.public_pem());
    std::fs::write(dir.path().join("environments.yaml"), environments).expect("write");
    for image in images.values() {
        let (signatures, attestations) = example_material(
            &key,
            image,
            "https://git.example.com/shop/shop",
            "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f",
        );
        push_signatures(image, &signatures).await.expect("sign");
        push_attestations(image, &attestations).await.expect("attest");
    }
    let resolver = Resolver::new(ResolverConfig {
        insecure_registries: vec![registry.clone()],
        ..ResolverConfig::default()
    });
    let rendered = render(dir.path(), "default", &resolver, now())
        .await
        .expect("renders");
    assert!(rendered.all_done(), "{:?}", rendered.promotions);
    // Per image: its resolution, then once per digest the referrers, the
    // .sig manifest and its layer, the .att manifest and its two layers.
    assert_eq!(
        resolver.registry_requests(),
        2 * (1 + 6),
        "one resolution per distinct reference, attachments read once per digest"
    );
    let (deployments, _) = documents(&rendered.yaml);
    let repository = images["backend"]
        .reference
        .rsplit_once(':')
        .expect("tagged")
        .0
        .to_string();
    assert_eq!(
        image_of(&deployments, "shop-prod", "backend"),
        format!("{repository}@{}", images["backend"].digest)
    );
}

/// A copy of the example, its OCI layout included, changed by `change`.
fn copy_with(change: impl FnOnce(&Path)) -> tempdir::Dir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create dir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let path = entry.expect("entry").path();
            let target = to.join(path.file_name().expect("name"));
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
    let dir = tempdir::Dir::new();
    copy(&example(), dir.path());
    change(dir.path());
    dir
}

/// `hoist render DIR` as a CI job runs it: exit code and stderr.
fn render_command(dir: &Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["render", "--at", "2026-12-02T10:00:00Z"])
        .arg(dir)
        .output()
        .expect("hoist runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of `hoist render`'s report saying why the example's staging
/// Promotion waits.
fn staging_waiting(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.starts_with("Promotion shop/shop-1.4.2-staging: Waiting: "))
        .unwrap_or_else(|| panic!("{stderr}"))
}

/// The short form of a layout digest, as messages write it.
fn short(reference: &str) -> String {
    layout_digest(reference)[..19].to_string()
}

#[test]
fn the_example_is_verified_offline_and_an_unsigned_copy_exits_3_naming_the_gate() {
    let (code, stderr) = render_command(&example());
    assert_eq!(
        code,
        Some(0),
        "the signed example promotes through prod: {stderr}"
    );

    let unsigned = copy_with(|dir| {
        hoist_testkit::layout::remove(&dir.join("images"), |name| name.ends_with(".sig")).expect("unsign")
    });
    let (code, stderr) = render_command(unsigned.path());
    assert_eq!(code, Some(3), "{stderr}");
    let backend = short("registry.example.com/shop/backend:1.4.2");
    let frontend = short("registry.example.com/shop/frontend:1.4.2");
    let expected = format!(
        "Promotion shop/shop-1.4.2-prod: Waiting: waiting for the Provenance gate: backend@{backend}: no cosign \
         signature is attached to {backend} (tag sha256-….sig or referrers) (SignatureMissing); \
         frontend@{frontend}: no cosign signature is attached to {frontend} (tag sha256-….sig or referrers) \
         (SignatureMissing); the image cannot change: build and sign a new Artifact"
    );
    assert!(stderr.lines().any(|line| line == expected), "{stderr}");
    assert!(
        stderr.contains("Promotion shop/shop-1.4.2-staging: Succeeded"),
        "the scans are still there: {stderr}"
    );
}

#[tokio::test]
async fn an_image_whose_provenance_names_another_commit_is_blocked_offline() {
    let artifact = std::fs::read_to_string(example().join("artifact.yaml")).expect("artifact");
    let other = artifact.replace(
        "revision: 3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f",
        "revision: 0123abc4567def890123abc4567def890123abcd",
    );
    assert_ne!(artifact, other);
    let rendered = render_variant("artifact.yaml", &other, now()).await;
    let prod = prod(&rendered);
    let backend = short("registry.example.com/shop/backend:1.4.2");
    assert_eq!(prod.phase, Phase::Waiting);
    assert!(
        prod.message.starts_with(&format!(
            "waiting for the Provenance gate: backend@{backend}: image {backend} was built from 3f2c9a1b7e4d…, \
             Artifact says 0123abc4567d…"
        )),
        "{}",
        prod.message
    );
    assert!(prod.message.contains("(RevisionMismatch)"), "{}", prod.message);
}

#[tokio::test]
async fn an_altered_unreadable_or_misnamed_layout_blob_is_an_error_naming_it() {
    let signature_layer = |dir: &Path| -> PathBuf {
        // The signature manifest's one layer.
        let images = dir.join("images");
        let tag = layout_digest("registry.example.com/shop/backend:1.4.2").replace(':', "-");
        let manifest =
            hoist_testkit::layout::digest(&images, &format!("registry.example.com/shop/backend:{tag}.sig"))
                .expect("signature in layout");
        let blob = |digest: &str| {
            images
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob(&manifest)).expect("manifest")).expect("json");
        blob(manifest["layers"][0]["digest"].as_str().expect("layer"))
    };
    let altered = copy_with(|dir| {
        let path = signature_layer(dir);
        let mut content = std::fs::read(&path).expect("layer");
        content.push(b' ');
        std::fs::write(&path, content).expect("alter");
    });
    let resolver = Resolver::new(ResolverConfig::default());
    let error = render(altered.path(), "default", &resolver, now())
        .await
        .expect_err("an altered layout is refused");
    let path = signature_layer(altered.path());
    assert_eq!(
        error.to_string(),
        format!(
            "OCI layout blob {} does not hash to its name sha256:{} (the layout was altered)",
            path.display(),
            path.file_name().expect("name").to_string_lossy()
        )
    );

    // A blob that never ends: refused before it is read.
    let endless = copy_with(|dir| {
        let path = signature_layer(dir);
        std::fs::remove_file(&path).expect("remove layer");
        std::os::unix::fs::symlink("/dev/zero", &path).expect("link");
    });
    let error = render(endless.path(), "default", &resolver, now())
        .await
        .expect_err("a device is refused");
    assert_eq!(
        error.to_string(),
        format!(
            "OCI layout blob {} cannot be read: not a regular file",
            signature_layer(endless.path()).display()
        )
    );

    // A digest written in capitals is not one.
    let capitals = copy_with(|dir| {
        let index = dir.join("images/index.json");
        let text = std::fs::read_to_string(&index).expect("index");
        let manifest = hoist_testkit::layout::digest(
            &dir.join("images"),
            &format!(
                "registry.example.com/shop/backend:{}.sig",
                layout_digest("registry.example.com/shop/backend:1.4.2").replace(':', "-")
            ),
        )
        .expect("signature in layout");
        let upper = format!("sha256:{}", manifest["sha256:".len()..].to_uppercase());
        std::fs::write(&index, text.replace(&manifest, &upper)).expect("write index");
    });
    let error = render(capitals.path(), "default", &resolver, now())
        .await
        .expect_err("a bad digest is refused");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "OCI layout {} names blob sha256:",
            capitals.path().join("images").display()
        )) && message
            .ends_with(", which is not sha256:<64 lowercase hex digits> (the only digests Hoist reads)"),
        "{message}"
    );
}

#[test]
fn bundles_in_a_layout_by_a_key_not_listed_exit_3() {
    use hoist_testkit::layout::{Attach, replace_public_keys, sign_example};
    let listed = SigningKey::generate();
    let signer = SigningKey::generate();
    let signed = copy_with(|dir| {
        sign_example(dir, &signer, Attach::Bundles).expect("sign the copy");
        let environments = dir.join("environments.yaml");
        let text = std::fs::read_to_string(&environments).expect("environments");
        std::fs::write(&environments, replace_public_keys(&text, &listed.public_pem())).expect("write");
    });
    let (code, stderr) = render_command(signed.path());
    assert_eq!(code, Some(3), "{stderr}");
    // Staging's scan gate is the first to block: the bundle's public key
    // hint names the signer, which is not the key listed.
    let backend = short("registry.example.com/shop/backend:1.4.2");
    let staging = staging_waiting(&stderr);
    assert!(
        staging.contains(&format!(
            "waiting for the Vulnerabilities gate: backend@{backend}: the vulnerability scan is signed by key {}, \
             which is none of [shop-release (sha256:",
            signer.hint()
        )),
        "{stderr}"
    );
    assert!(staging.ends_with("(UnknownKey)"), "{stderr}");
}

#[test]
fn attachments_in_a_layout_are_found_through_the_referrers_index_and_by_subject() {
    use hoist_testkit::layout::{Attach, sign_example};
    for how in [Attach::ReferrersIndex, Attach::Subjects, Attach::Bundles] {
        let key = SigningKey::generate();
        let signed = copy_with(|dir| {
            sign_example(dir, &key, how).expect("sign the copy");
        });
        let index = std::fs::read_to_string(signed.path().join("images/index.json")).expect("index");
        assert!(!index.contains(".sig\""), "{how:?}: no cosign tag left");
        let (code, stderr) = render_command(signed.path());
        assert_eq!(code, Some(0), "{how:?}: {stderr}");
    }
}

/// The example signed keyless (bundles as cosign v3 writes them in GitHub
/// Actions), its policies naming the workflow and a trusted root ConfigMap
/// among the files: `hoist render` verifies it offline; signed from another
/// branch, it exits 3 naming the identity.
#[test]
fn a_keyless_signed_layout_is_verified_against_a_trusted_root_configmap() {
    use hoist_testkit::keyless::{GITHUB_ISSUER, Proof, Sigstore, workflow};
    use hoist_testkit::layout::{EXAMPLE_BUILDER, EXAMPLE_SCANNED, attach_bundles, remove};
    use hoist_testkit::signing::{SLSA_V1, VULN_V1, slsa_v1, trivy_scan};
    let release = workflow("acme/shop", "release.yml", "refs/heads/main");
    let epoch = Timestamp::now().as_second();
    let sign = |subject: String| {
        copy_with(|dir| {
            let sigstore = Sigstore::generate(epoch);
            let leaf = sigstore.leaf(&subject, GITHUB_ISSUER, epoch);
            let images = dir.join("images");
            remove(&images, |name| {
                name.ends_with(".sig") || name.ends_with(".att") || name.contains(":sha256-")
            })
            .expect("unsign");
            let artifact: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(dir.join("artifact.yaml")).expect("artifact"))
                    .expect("YAML");
            let source = &artifact["spec"]["source"];
            let (repository, revision) = (
                source["repository"].as_str().expect("repository"),
                source["revision"].as_str().expect("revision"),
            );
            for image in artifact["spec"]["images"].as_sequence().expect("images") {
                let reference = image["image"].as_str().expect("image");
                let digest = layout_digest(reference);
                let proof = Proof::Logged(epoch + 1);
                let bundles = [
                    sigstore.signature_bundle(&leaf, &digest, proof),
                    sigstore.attestation_bundle(
                        &leaf,
                        &digest,
                        SLSA_V1,
                        slsa_v1(repository, revision, EXAMPLE_BUILDER),
                        proof,
                    ),
                    sigstore.attestation_bundle(
                        &leaf,
                        &digest,
                        VULN_V1,
                        trivy_scan(EXAMPLE_SCANNED, &[("CVE-2024-45490", "LOW", "libexpat1")]),
                        proof,
                    ),
                ];
                let name = reference.rsplit_once(':').map_or(reference, |(name, _)| name);
                attach_bundles(&images, name, &digest, &bundles).expect("attach");
            }
            // Every policy names the release workflow instead of the key.
            let environments = dir.join("environments.yaml");
            let text = std::fs::read_to_string(&environments).expect("environments");
            let keyless = serde_yaml::to_value(serde_json::json!({
                "identities": [{"issuer": GITHUB_ISSUER, "subject": release}],
                "trustedRoot": {"configMapRef": {"name": "sigstore", "key": "trusted_root.json"}}
            }))
            .expect("YAML");
            let mut documents = Vec::new();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let mut environment = serde_yaml::Value::deserialize(document).expect("YAML");
                for path in [
                    ["provenance", "signatures"].as_slice(),
                    &["provenance", "attestation"],
                    &["vulnerabilities"],
                ] {
                    let policy = path
                        .iter()
                        .fold(&mut environment["spec"]["gates"], |node, key| &mut node[*key]);
                    if let Some(policy) = policy.as_mapping_mut() {
                        policy.remove("keys");
                        policy.insert("keyless".into(), keyless.clone());
                    }
                }
                documents.push(serde_yaml::to_string(&environment).expect("YAML"));
            }
            std::fs::write(&environments, documents.join("---\n")).expect("write");
            let root = String::from_utf8(sigstore.trusted_root()).expect("UTF-8");
            let config_map = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "sigstore", "namespace": "shop"},
                "data": {"trusted_root.json": root}
            });
            std::fs::write(
                dir.join("trusted-root.yaml"),
                serde_yaml::to_string(&config_map).expect("YAML"),
            )
            .expect("write");
        })
    };
    let signed = sign(release.clone());
    let (code, stderr) = render_command(signed.path());
    assert_eq!(code, Some(0), "{stderr}");

    let dev = workflow("acme/shop", "release.yml", "refs/heads/dev");
    let (code, stderr) = render_command(sign(dev.clone()).path());
    assert_eq!(code, Some(3), "{stderr}");
    let staging = staging_waiting(&stderr);
    assert!(
        staging.contains(&format!(
            "keyless vulnerability scan: the certificate names issuer={GITHUB_ISSUER};subject={dev}, not an identity of the policy"
        )),
        "{stderr}"
    );
    assert!(staging.contains("(IdentityMismatch)"), "{stderr}");
}

/// One Environment with a target of every kind Hoist pins, the shop
/// 1.4.2 Promotion into it, and the example's Artifact, Namespaces and OCI
/// layout; `workloads` are the target objects.
fn every_kind(workloads: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for file in ["artifact.yaml", "namespaces.yaml"] {
        std::fs::copy(example().join(file), dir.path().join(file)).expect("copy");
    }
    std::os::unix::fs::symlink(example().join("images"), dir.path().join("images")).expect("link layout");
    std::fs::write(dir.path().join("workloads.yaml"), workloads).expect("write workloads");
    std::fs::write(
        dir.path().join("environment.yaml"),
        "\
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop}
spec:
  targets:
    - {application: shop, component: backend, deployment: {name: api, namespace: shop-dev}, container: app}
    - {application: shop, component: backend, workload: {kind: StatefulSet, name: queue, namespace: shop-dev}, container: app}
    - {application: shop, component: backend, workload: {kind: DaemonSet, name: agent, namespace: shop-dev}, container: app}
    - {application: shop, component: backend, workload: {kind: CronJob, name: report, namespace: shop-dev}, container: app}
    - {application: shop, component: frontend, workload: {kind: Rollout, name: web, namespace: shop-dev}, container: web}
---
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {name: shop-1.4.2-dev, namespace: shop}
spec: {artifact: shop-1.4.2, environment: dev, reason: nightly release, requestedBy: carol}
",
    )
    .expect("write environment");
    dir
}

const EVERY_KIND: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop-dev}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: app, image: registry.example.com/shop/backend:latest}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: queue, namespace: shop-dev}
spec:
  replicas: 3
  serviceName: queue
  selector: {matchLabels: {app: queue}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
  template:
    metadata: {labels: {app: queue}}
    spec:
      containers: [{name: app, image: registry.example.com/shop/backend:latest}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop-dev}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: app, image: registry.example.com/shop/backend:latest}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop-dev}
spec:
  schedule: 0 3 * * *
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: app, image: registry.example.com/shop/backend:latest}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop-dev}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: web}}
  strategy:
    canary:
      steps: [{setWeight: 5}, {pause: {duration: 30m}}]
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example.com/shop/frontend:latest}]
";

#[tokio::test]
async fn render_pins_a_target_of_every_kind_and_judges_each_rollout_by_its_kind() {
    let dir = every_kind(EVERY_KIND);
    let resolver = Resolver::new(ResolverConfig::default());
    let rendered = render(dir.path(), "default", &resolver, now())
        .await
        .expect("renders");
    assert_eq!(
        rendered.promotions,
        vec![PromotionReport {
            namespace: "shop".into(),
            name: "shop-1.4.2-dev".into(),
            phase: Phase::Succeeded,
            message: "shop-1.4.2 runs in dev".into(),
            needs_cluster: false,
        }],
        "every kind rolled out, as its own controller reports it"
    );
    let backend = layout_digest("registry.example.com/shop/backend:1.4.2");
    let frontend = layout_digest("registry.example.com/shop/frontend:1.4.2");
    assert_eq!(
        rendered.yaml,
        format!(
            "\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    hoist.dev/environment: dev
    hoist.dev/tenant: shop
  name: api
  namespace: shop-dev
spec:
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      annotations:
        hoist.dev/artifact: shop-1.4.2
      labels:
        app: api
    spec:
      containers:
      - image: registry.example.com/shop/backend@{backend}
        name: app
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  labels:
    hoist.dev/environment: dev
    hoist.dev/tenant: shop
  name: queue
  namespace: shop-dev
spec:
  replicas: 3
  selector:
    matchLabels:
      app: queue
  serviceName: queue
  template:
    metadata:
      annotations:
        hoist.dev/artifact: shop-1.4.2
      labels:
        app: queue
    spec:
      containers:
      - image: registry.example.com/shop/backend@{backend}
        name: app
  updateStrategy:
    rollingUpdate:
      partition: 1
    type: RollingUpdate
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  labels:
    hoist.dev/environment: dev
    hoist.dev/tenant: shop
  name: agent
  namespace: shop-dev
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      annotations:
        hoist.dev/artifact: shop-1.4.2
      labels:
        app: agent
    spec:
      containers:
      - image: registry.example.com/shop/backend@{backend}
        name: app
---
apiVersion: batch/v1
kind: CronJob
metadata:
  labels:
    hoist.dev/environment: dev
    hoist.dev/tenant: shop
  name: report
  namespace: shop-dev
spec:
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            hoist.dev/artifact: shop-1.4.2
        spec:
          containers:
          - image: registry.example.com/shop/backend@{backend}
            name: app
          restartPolicy: OnFailure
  schedule: 0 3 * * *
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  labels:
    hoist.dev/environment: dev
    hoist.dev/tenant: shop
  name: web
  namespace: shop-dev
spec:
  replicas: 2
  template:
    metadata:
      annotations:
        hoist.dev/artifact: shop-1.4.2
      labels:
        app: web
    spec:
      containers:
      - image: registry.example.com/shop/frontend@{frontend}
        name: web
  strategy:
    canary:
      steps:
      - setWeight: 5
      - pause:
          duration: 30m
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: web
"
        ),
        "each kind's pod template pinned, everything else as written"
    );
}

#[tokio::test]
async fn a_target_of_any_kind_missing_from_the_files_is_not_found_by_its_kind() {
    let without_rollout = EVERY_KIND
        .split("---\n")
        .filter(|document| !document.contains("kind: Rollout"))
        .collect::<Vec<_>>()
        .join("---\n");
    let dir = every_kind(&without_rollout);
    let resolver = Resolver::new(ResolverConfig::default());
    let rendered = render(dir.path(), "default", &resolver, now())
        .await
        .expect("renders");
    assert_eq!(
        rendered.promotions,
        vec![PromotionReport {
            namespace: "shop".into(),
            name: "shop-1.4.2-dev".into(),
            phase: Phase::Waiting,
            message: "Environment dev is not ready for shop: spec.targets[4].workload: Rollout shop-dev/web not found"
                .into(),
            needs_cluster: false,
        }]
    );
    assert_eq!(rendered.yaml, "", "nothing is pinned while a target is missing");
}

#[tokio::test]
async fn render_judges_each_rollout_by_the_rules_of_its_kind() {
    let on_delete = EVERY_KIND.replace(
        "updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}",
        "updateStrategy: {type: OnDelete}",
    );
    let dir = every_kind(&on_delete);
    let resolver = Resolver::new(ResolverConfig::default());
    let rendered = render(dir.path(), "default", &resolver, now())
        .await
        .expect("renders");
    assert_eq!(
        rendered.promotions,
        vec![PromotionReport {
            namespace: "shop".into(),
            name: "shop-1.4.2-dev".into(),
            phase: Phase::Failed,
            message:
                "rollout failed: StatefulSet shop-dev/queue: updateStrategy OnDelete replaces no pod by \
                      itself: Hoist rolls out StatefulSets with RollingUpdate"
                    .into(),
            needs_cluster: false,
        }],
        "the StatefulSet's rollout judged as on a cluster, not assumed"
    );
}
