//! Keyless signing as GitHub Actions does it, against the test registry: a
//! Sigstore of the run's own (Fulcio-like CA, Rekor key, TSA) in a
//! trusted_root.json ConfigMap, bundles attached as cosign v3 attaches
//! them; the release of the right workflow promotes, and every other is
//! blocked with its own reason.

use std::collections::BTreeMap;

use hoist::api::SupplyChainCheck as Check;
use hoist::api::{GateName, GateState, Phase};
use hoist_testkit::keyless::{GITHUB_ISSUER, Proof, Sigstore, workflow};
use hoist_testkit::registry::{PushedImage, push_multi};
use hoist_testkit::signing::{self, SLSA_V1};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{REVISION, Scenario, gate, pinned};

fn release_workflow() -> String {
    workflow("acme/shop", "release.yml", "refs/heads/main")
}

/// How a release's bundles were made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// By release.yml of acme/shop on main, logged in the run's Rekor.
    RightWorkflow,
    /// By the same workflow, timestamped by the run's TSA instead.
    Timestamped,
    OtherRepository,
    OtherBranch,
    /// A certificate of a CA the trusted root does not name.
    OtherAuthority,
    /// Logged an hour after the certificate's ten minutes.
    Expired,
    /// Neither logged nor timestamped.
    Unproven,
}

/// Signs each image of `images` keyless (a signature and SLSA provenance)
/// as `variant` says, and attaches the bundles in the referrers tag schema.
async fn attach(sigstore: &Sigstore, images: &BTreeMap<String, PushedImage>, variant: Variant) {
    let now = Timestamp::now().as_second();
    let elsewhere;
    let (authority, subject) = match variant {
        Variant::OtherRepository => (sigstore, workflow("acme/other", "release.yml", "refs/heads/main")),
        Variant::OtherBranch => (sigstore, workflow("acme/shop", "release.yml", "refs/heads/dev")),
        Variant::OtherAuthority => {
            elsewhere = Sigstore::generate(now);
            (&elsewhere, release_workflow())
        }
        _ => (sigstore, release_workflow()),
    };
    let leaf = authority.leaf(&subject, GITHUB_ISSUER, now - 60);
    let proof = match variant {
        Variant::Timestamped => Proof::Stamped(now),
        Variant::Expired => Proof::Logged(now + 3600),
        Variant::Unproven => Proof::Unproven,
        _ => Proof::Logged(now),
    };
    for image in images.values() {
        let bundles = [
            sigstore.signature_bundle(&leaf, &image.digest, proof),
            sigstore.attestation_bundle(
                &leaf,
                &image.digest,
                SLSA_V1,
                signing::slsa_v1("https://github.com/acme/shop", REVISION, &release_workflow()),
                proof,
            ),
        ];
        signing::push_bundles(image, &bundles)
            .await
            .expect("push bundles");
    }
}

impl Scenario {
    /// `environment` requires keyless signatures and provenance by the
    /// release workflow, verified against the ConfigMap `sigstore`.
    async fn require_keyless(&self, environment: &str) {
        let keyless = json!({
            "identities": [{"issuer": GITHUB_ISSUER, "subject": release_workflow()}],
            "trustedRoot": {"configMapRef": {"name": "sigstore", "key": "trusted_root.json"}}
        });
        self.update_environment(environment, |spec| {
            spec.gates = serde_json::from_value(json!({
                "provenance": {
                    "signatures": {"keyless": keyless},
                    "attestation": {"keyless": keyless, "builder": {"id": release_workflow()}}
                }
            }))
            .expect("gates");
        })
        .await;
    }

    async fn ship_trusted_root(&self, sigstore: &Sigstore) {
        let root = String::from_utf8(sigstore.trusted_root()).expect("UTF-8");
        let config_map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "sigstore"},
            "data": {"trusted_root.json": root}
        }))
        .expect("ConfigMap");
        Api::<ConfigMap>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &config_map)
            .await
            .expect("create the trusted root ConfigMap");
    }
}

#[tokio::test]
async fn a_keyless_release_of_the_workflow_promotes_and_every_other_is_blocked_with_its_reason() {
    let mut scenario = Scenario::new().await;
    let sigstore = Sigstore::generate(Timestamp::now().as_second());
    scenario.require_keyless("dev").await;
    let variants = [
        (Variant::RightWorkflow, "Verified"),
        (Variant::Timestamped, "Verified"),
        (Variant::OtherRepository, "IdentityMismatch"),
        (Variant::OtherBranch, "IdentityMismatch"),
        (Variant::OtherAuthority, "UntrustedCertificate"),
        (Variant::Expired, "CertificateExpired"),
        (Variant::Unproven, "NoTrustedTimestamp"),
    ];
    let mut pushed = BTreeMap::new();
    for (n, (variant, _)) in variants.iter().enumerate() {
        let version = format!("2.0.{n}");
        let images = push_multi(
            "shop",
            &[("backend", version.as_str()), ("frontend", version.as_str())],
        )
        .await
        .expect("push images");
        attach(&sigstore, &images, *variant).await;
        let name = format!("shop-2-0-{n}");
        scenario.artifact(&name, &version, &images, Some(REVISION)).await;
        pushed.insert(name, images);
    }
    scenario.start().await;

    // No trusted root yet: the gate waits, naming the ConfigMap.
    scenario.promote("p0", "shop-2-0-0", "dev").await;
    let waiting = scenario
        .wait_gate("p0", GateName::Provenance, GateState::Pending)
        .await;
    assert!(
        gate(&waiting, GateName::Provenance).message.contains(&format!(
            "spec.gates.provenance.signatures.keyless.trustedRoot: ConfigMap {}/sigstore not found",
            scenario.namespace()
        )),
        "{}",
        gate(&waiting, GateName::Provenance).message
    );
    scenario.ship_trusted_root(&sigstore).await;
    let promoted = scenario.wait_phase("p0", Phase::Succeeded).await;
    let provenance = gate(&promoted, GateName::Provenance);
    assert_eq!(provenance.state, GateState::Passed);
    assert!(
        provenance
            .message
            .contains(&format!(": signed by {}", release_workflow())),
        "{}",
        provenance.message
    );
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        pinned(&pushed["shop-2-0-0"]["backend"])
    );

    for (n, (_, reason)) in variants.iter().enumerate().skip(1) {
        let name = format!("shop-2-0-{n}");
        let promotion = format!("p{n}");
        scenario.promote(&promotion, &name, "dev").await;
        let expected: Vec<(String, Check, String)> = ["backend", "frontend"]
            .iter()
            .flat_map(|component| {
                [Check::Signatures, Check::Provenance]
                    .map(|check| (component.to_string(), check, reason.to_string()))
            })
            .collect();
        assert_eq!(scenario.records(&name, 4).await, expected, "{name}");
        if *reason == "Verified" {
            scenario.wait_phase(&promotion, Phase::Succeeded).await;
            continue;
        }
        let held = scenario
            .wait_gate(&promotion, GateName::Provenance, GateState::Failed)
            .await;
        assert_eq!(held.status.as_ref().expect("status").phase, Phase::Waiting);
        let message = gate(&held, GateName::Provenance).message;
        let backend = &pushed[&name]["backend"].digest;
        assert!(
            message.starts_with(&format!("backend@{}: keyless signature: ", &backend[..19])),
            "{reason}: {message}"
        );
        assert!(message.contains(&format!("({reason})")), "{reason}: {message}");
    }
    scenario.stop().await;
}
