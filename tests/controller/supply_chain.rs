//! Supply chain: signatures, provenance and vulnerability scans pushed to the
//! test registry, and each tampered release blocked with its own reason.

use std::collections::BTreeMap;

use hoist::api::SupplyChainCheck as Check;
use hoist::api::{Artifact, GateName, GateState, Phase, Promotion};
use hoist_testkit::health;
use hoist_testkit::referrers::ReferrersRegistry;
use hoist_testkit::registry::{PushedImage, push_multi, registry_address};
use hoist_testkit::signing::{self, SigningKey};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{REVISION, Scenario, TIMEOUT, gate, pinned};

/// The builder SLSA provenance names in the supply-chain scenarios.
const BUILDER: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";

/// What a supply-chain scenario attaches to each image of a release.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// Signed, provenance of REVISION, a scan with only an ignored critical
    /// CVE; the frontend's signature as an OCI 1.1 referrer instead of the
    /// `.sig` tag.
    ViaReferrers,
    /// Signed, provenance of REVISION, the same scan, everything listed by
    /// the registry's referrers API only (no tag, no fallback index).
    ViaReferrersApi,
    Unsigned,
    SignedByAnotherKey,
    PayloadNamesAnotherDigest,
    ProvenanceOfAnotherCommit,
    CriticalCve,
    OutdatedScan,
    /// Signed and attested as cosign v3 does by default: a signature
    /// bundle, a SLSA bundle and a scan bundle, listed in the referrers
    /// tag-schema index.
    Bundles,
    /// The same bundles, listed by the registry's referrers API only.
    BundlesViaReferrersApi,
    /// Bundles, the signature bundle by another key.
    BundleSignedByAnotherKey,
    /// Bundles, the signature bundle's statement about another digest.
    BundleNamesAnotherDigest,
    /// Bundles, the provenance bundle's statement changed after signing.
    BundleTamperedProvenance,
}

impl Variant {
    fn is_bundles(self) -> bool {
        matches!(
            self,
            Variant::Bundles
                | Variant::BundlesViaReferrersApi
                | Variant::BundleSignedByAnotherKey
                | Variant::BundleNamesAnotherDigest
                | Variant::BundleTamperedProvenance
        )
    }
}

/// Attaches signatures and attestations to `images` as `variant` says.
async fn attach(
    images: &BTreeMap<String, PushedImage>,
    key: &SigningKey,
    other: &SigningKey,
    variant: Variant,
) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let recent = (now - k8s_openapi::jiff::SignedDuration::from_hours(1)).to_string();
    let old = (now - k8s_openapi::jiff::SignedDuration::from_hours(24 * 30)).to_string();
    for (component, image) in images {
        if variant.is_bundles() {
            attach_bundles(image, key, other, variant, &recent).await;
            continue;
        }
        let signer = if variant == Variant::SignedByAnotherKey {
            other
        } else {
            key
        };
        let named = if variant == Variant::PayloadNamesAnotherDigest {
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        } else {
            image.digest.as_str()
        };
        let signature = signing::signature(signer, image, named);
        match variant {
            Variant::Unsigned => {}
            Variant::ViaReferrersApi => {
                signing::push_referrer_native(image, COSIGN_SIGNATURE, &[signature])
                    .await
                    .expect("push referrer");
            }
            Variant::ViaReferrers if component == "frontend" => {
                signing::push_referrer(image, COSIGN_SIGNATURE, &[signature])
                    .await
                    .expect("push referrer");
            }
            _ => signing::push_signatures(image, &[signature])
                .await
                .expect("push signature"),
        }
        let commit = if variant == Variant::ProvenanceOfAnotherCommit {
            "0123abcdef0123abcdef0123abcdef0123abcdef"
        } else {
            REVISION
        };
        let findings: &[(&str, &str, &str)] = if variant == Variant::CriticalCve {
            &[
                ("CVE-2026-0001", "CRITICAL", "openssl"),
                ("CVE-2026-0002", "CRITICAL", "zlib"),
            ]
        } else {
            &[
                ("CVE-2026-0002", "CRITICAL", "zlib"),
                ("CVE-2026-0003", "LOW", "libc"),
            ]
        };
        let finished = if variant == Variant::OutdatedScan {
            &old
        } else {
            &recent
        };
        let attestations = [
            signing::attestation(
                key,
                &image.digest,
                signing::SLSA_V1,
                signing::slsa_v1("https://github.com/acme/shop", commit, BUILDER),
            ),
            signing::attestation(
                key,
                &image.digest,
                signing::VULN_V1,
                signing::trivy_scan(finished, findings),
            ),
        ];
        if variant == Variant::ViaReferrersApi {
            signing::push_referrer_native(image, signing::DSSE, &attestations)
                .await
                .expect("push attestation referrer");
        } else {
            signing::push_attestations(image, &attestations)
                .await
                .expect("push attestations");
        }
    }
}

/// Attaches bundles to `image` as `variant` (one of the bundle variants) says.
async fn attach_bundles(
    image: &PushedImage,
    key: &SigningKey,
    other: &SigningKey,
    variant: Variant,
    finished: &str,
) {
    let signer = if variant == Variant::BundleSignedByAnotherKey {
        other
    } else {
        key
    };
    let named = if variant == Variant::BundleNamesAnotherDigest {
        "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    } else {
        image.digest.as_str()
    };
    let mut provenance = signing::attestation_bundle(
        key,
        &image.digest,
        signing::SLSA_V1,
        signing::slsa_v1("https://github.com/acme/shop", REVISION, BUILDER),
    );
    if variant == Variant::BundleTamperedProvenance {
        provenance = provenance.with_statement_edited(|statement| {
            statement["predicate"]["runDetails"]["builder"]["id"] = json!("https://ci.example.org/elsewhere");
        });
    }
    let bundles = [
        signing::signature_bundle(signer, named),
        provenance,
        signing::attestation_bundle(
            key,
            &image.digest,
            signing::VULN_V1,
            signing::trivy_scan(
                finished,
                &[
                    ("CVE-2026-0002", "CRITICAL", "zlib"),
                    ("CVE-2026-0003", "LOW", "libc"),
                ],
            ),
        ),
    ];
    if variant == Variant::BundlesViaReferrersApi {
        for bundle in &bundles {
            signing::push_bundle_native(image, bundle)
                .await
                .expect("push bundle referrer");
        }
    } else {
        signing::push_bundles(image, &bundles)
            .await
            .expect("push bundles");
    }
}

/// The artifact type of a cosign signature pushed as an OCI 1.1 referrer.
const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

impl Scenario {
    /// `environment` requires signatures, SLSA provenance and a recent scan, all by `key`.
    async fn require_supply_chain(&self, environment: &str, key: &SigningKey) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "release-keys"},
            "stringData": {"cosign.pub": key.public_pem()}
        }))
        .expect("secret");
        match Api::<Secret>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &secret)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("key secret: {error}"),
        }
        let pem = key.public_pem();
        self.update_environment(environment, |spec| {
            spec.gates = serde_json::from_value(json!({
                "provenance": {
                    "signatures": {"keys": [{"name": "release", "secretRef": {"name": "release-keys", "key": "cosign.pub"}}]},
                    "attestation": {"keys": [{"name": "ci", "pem": pem}], "builder": {"id": BUILDER}}
                },
                "vulnerabilities": {"keys": [{"name": "ci", "pem": pem}], "maxSeverity": "Medium", "ignore": ["CVE-2026-0002"], "maxAge": "168h"}
            }))
            .expect("gates");
        })
        .await;
    }

    /// The supply-chain records of Artifact `name` once it has `count`:
    /// (component, check, reason).
    pub(super) async fn records(
        &self,
        name: &str,
        count: usize,
    ) -> Vec<(String, hoist::api::SupplyChainCheck, String)> {
        let artifact = self
            .cluster
            .wait_for::<Artifact>(name, TIMEOUT, |a| {
                a.status.as_ref().is_some_and(|s| s.supply_chain.len() >= count)
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        artifact
            .status
            .expect("status")
            .supply_chain
            .into_iter()
            .map(|r| (r.component, r.check, r.reason))
            .collect()
    }
}

fn all_verified() -> Vec<(String, Check, String)> {
    let mut records = Vec::new();
    for component in ["backend", "frontend"] {
        for check in [Check::Signatures, Check::Provenance, Check::Vulnerabilities] {
            records.push((component.to_string(), check, "Verified".to_string()));
        }
    }
    records
}

/// Pushes a release of two images with what `variant` attaches (signed by
/// `key`), requires the supply chain of dev, starts the operator and
/// promotes the release there until it succeeds.
async fn promote_attached(
    scenario: &mut Scenario,
    key: &SigningKey,
    variant: Variant,
) -> (BTreeMap<String, PushedImage>, Promotion) {
    scenario.require_supply_chain("dev", key).await;
    let images = push_multi("shop", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    attach(&images, key, &SigningKey::generate(), variant).await;
    scenario
        .artifact("shop-1-0-0", "1.0.0", &images, Some(REVISION))
        .await;
    scenario.start().await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promoted = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    (images, promoted)
}

/// The Provenance gate's message once both images are signed and attested.
fn provenance_met(images: &BTreeMap<String, PushedImage>) -> String {
    let short = |component: &str| format!("{component}@{}", &images[component].digest[..19]);
    format!(
        "provenance requirements met; {b}: signed by release; {f}: signed by release; \
         {b}: built from https://github.com/acme/shop@3f2c9a1b7e4d… by {BUILDER}, attested by ci; \
         {f}: built from https://github.com/acme/shop@3f2c9a1b7e4d… by {BUILDER}, attested by ci",
        b = short("backend"),
        f = short("frontend")
    )
}

#[tokio::test]
async fn a_signed_release_promotes_once_verified_and_a_restart_fetches_nothing_again() {
    let mut scenario = Scenario::new().await;
    let key = SigningKey::generate();
    let (images, promoted) = promote_attached(&mut scenario, &key, Variant::ViaReferrers).await;
    let provenance = gate(&promoted, GateName::Provenance);
    assert_eq!(provenance.state, GateState::Passed);
    assert_eq!(provenance.message, provenance_met(&images));
    let scan = gate(&promoted, GateName::Vulnerabilities);
    assert_eq!(scan.state, GateState::Passed);
    assert!(
        scan.message
            .contains(": 2 findings, none above Medium (1 ignored: CVE-2026-0002)"),
        "{}",
        scan.message
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    assert_eq!(
        scenario.images("dev", "frontend").await[0].1,
        pinned(&images["frontend"])
    );
    let operator = scenario.operator.as_ref().expect("running");
    let lookups = health::metric(operator.health, "hoist_registry_lookups_total").await;
    assert!(lookups > 0.0);
    assert_eq!(
        health::metric(
            operator.health,
            "hoist_supply_chain_checks_total{check=\"Signatures\",verdict=\"Verified\"}"
        )
        .await,
        2.0
    );

    // A new operator, and staging with the same policy: the records are the
    // Artifact's, so promoting there asks the registry nothing.
    scenario.stop().await;
    scenario.require_supply_chain("staging", &key).await;
    scenario.start().await;
    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let promoted = scenario.wait_phase("to-staging", Phase::Succeeded).await;
    assert_eq!(gate(&promoted, GateName::Provenance).message, provenance.message);
    scenario.quiet().await;
    let operator = scenario.operator.as_ref().expect("running");
    assert_eq!(
        health::metric(operator.health, "hoist_registry_lookups_total").await,
        0.0
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    scenario.stop().await;
}

/// Promotes a release whose material (`variant`) only a registry with the
/// referrers API in front of the test registry lists, `subjects` referrers
/// in all; returns that registry.
async fn promote_through_referrers_api(variant: Variant, subjects: usize) -> ReferrersRegistry {
    let upstream = registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
    let registry = ReferrersRegistry::start(&upstream)
        .await
        .expect("referrers registry");
    let mut scenario = Scenario::new().await;
    scenario.more_registries.push(registry.address().to_owned());
    let key = SigningKey::generate();
    scenario.require_supply_chain("dev", &key).await;
    let pushed = push_multi("shop", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    let images: BTreeMap<String, PushedImage> = pushed
        .iter()
        .map(|(component, image)| (component.clone(), registry.image(image)))
        .collect();
    attach(&images, &key, &key, variant).await;
    assert_eq!(registry.subjects_recorded(), subjects, "{variant:?}");
    scenario
        .artifact("shop-1-0-0", "1.0.0", &images, Some(REVISION))
        .await;
    scenario.start().await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promoted = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    assert_eq!(gate(&promoted, GateName::Provenance).state, GateState::Passed);
    assert_eq!(
        gate(&promoted, GateName::Vulnerabilities).state,
        GateState::Passed
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    scenario.stop().await;
    registry
}

#[tokio::test]
async fn a_release_whose_signatures_only_the_referrers_api_lists_promotes() {
    // A signature and an attestation per image.
    let registry = promote_through_referrers_api(Variant::ViaReferrersApi, 4).await;
    assert_eq!(
        registry.referrers_requests(),
        2,
        "the referrers API asked once per digest"
    );
}

#[tokio::test]
async fn a_release_signed_and_attested_as_cosign_v3_bundles_promotes() {
    let mut scenario = Scenario::new().await;
    let key = SigningKey::generate();
    let (images, promoted) = promote_attached(&mut scenario, &key, Variant::Bundles).await;
    assert_eq!(
        gate(&promoted, GateName::Provenance).message,
        provenance_met(&images)
    );
    assert_eq!(
        gate(&promoted, GateName::Vulnerabilities).state,
        GateState::Passed
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    scenario.stop().await;
}

#[tokio::test]
async fn a_release_whose_bundles_only_the_referrers_api_lists_promotes() {
    // Three bundles per image.
    let registry = promote_through_referrers_api(Variant::BundlesViaReferrersApi, 6).await;
    assert_eq!(registry.referrers_requests(), 2);
}

#[tokio::test]
async fn each_tampered_release_is_blocked_with_its_own_reason() {
    let mut scenario = Scenario::new().await;
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    scenario.require_supply_chain("dev", &key).await;
    let variants = [
        (Variant::Unsigned, Check::Signatures, "SignatureMissing"),
        (
            Variant::SignedByAnotherKey,
            Check::Signatures,
            "UntrustedSignature",
        ),
        (
            Variant::PayloadNamesAnotherDigest,
            Check::Signatures,
            "WrongDigest",
        ),
        (
            Variant::ProvenanceOfAnotherCommit,
            Check::Provenance,
            "RevisionMismatch",
        ),
        (
            Variant::CriticalCve,
            Check::Vulnerabilities,
            "VulnerabilitiesFound",
        ),
        (
            Variant::BundleSignedByAnotherKey,
            Check::Signatures,
            "UntrustedSignature",
        ),
        (
            Variant::BundleNamesAnotherDigest,
            Check::Signatures,
            "WrongDigest",
        ),
        (
            Variant::BundleTamperedProvenance,
            Check::Provenance,
            "UntrustedAttestation",
        ),
    ];
    let mut pushed = BTreeMap::new();
    for (n, (variant, _, _)) in variants
        .iter()
        .chain([&(Variant::OutdatedScan, Check::Vulnerabilities, "Verified")])
        .enumerate()
    {
        let version = format!("1.0.{n}");
        let images = push_multi(
            "shop",
            &[("backend", version.as_str()), ("frontend", version.as_str())],
        )
        .await
        .expect("push images");
        attach(&images, &key, &other, *variant).await;
        let name = format!("shop-1-0-{n}");
        scenario.artifact(&name, &version, &images, Some(REVISION)).await;
        pushed.insert(name, images);
    }
    scenario.start().await;
    for (n, (_, check, reason)) in variants.iter().enumerate() {
        let name = format!("shop-1-0-{n}");
        scenario.promote(&format!("p{n}"), &name, "dev").await;
        let mut expected = all_verified();
        for record in &mut expected {
            if record.1 == *check {
                record.2 = reason.to_string();
            }
        }
        assert_eq!(scenario.records(&name, 6).await, expected, "{name}");
        let held = scenario
            .cluster
            .wait_for::<Promotion>(&format!("p{n}"), TIMEOUT, |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.gates.iter().any(|g| g.state == GateState::Failed))
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(held.status.as_ref().expect("status").phase, Phase::Waiting);
        let gate_name = if *check == Check::Vulnerabilities {
            GateName::Vulnerabilities
        } else {
            GateName::Provenance
        };
        let message = gate(&held, gate_name).message;
        let backend = &pushed[&name]["backend"].digest;
        let expected_start = match *reason {
            "SignatureMissing" => format!(
                "backend@{}: no cosign signature is attached to {}",
                &backend[..19],
                &backend[..19]
            ),
            "UntrustedSignature" => format!(
                "backend@{}: 1 signature(s) verify with none of the keys [release (sha256:",
                &backend[..19]
            ),
            "WrongDigest" => format!(
                "backend@{}: a trusted signature names sha256:000000000000, not {}",
                &backend[..19],
                &backend[..19]
            ),
            "UntrustedAttestation" => format!(
                "backend@{}: the provenance verifies with none of the keys [ci (sha256:",
                &backend[..19]
            ),
            "RevisionMismatch" => format!(
                "backend@{}: image {} was built from 0123abcdef01…, Artifact says 3f2c9a1b7e4d… (RevisionMismatch)",
                &backend[..19],
                &backend[..19]
            ),
            _ => format!("backend@{}: trivy@0.58.1 scan of ", &backend[..19]),
        };
        assert!(message.starts_with(&expected_start), "{reason}: {message}");
        if *reason == "VulnerabilitiesFound" {
            assert!(message.contains(": 1 above Medium: CVE-2026-0001 (Critical, openssl 1.0.0) (1 ignored: CVE-2026-0002) (VulnerabilitiesFound)"), "{message}");
        }
    }
    // A scan older than maxAge holds the Promotion, Pending: a newer scan may still be pushed.
    let outdated = format!("shop-1-0-{}", variants.len());
    scenario.promote("p-old", &outdated, "dev").await;
    assert_eq!(scenario.records(&outdated, 6).await, all_verified());
    let held = scenario
        .wait_gate("p-old", GateName::Vulnerabilities, GateState::Pending)
        .await;
    let message = gate(&held, GateName::Vulnerabilities).message;
    assert!(
        message.contains(", longer ago than maxAge 168h: push a newer scan (looked for again at "),
        "{message}"
    );
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        "example.invalid/backend:latest"
    );
    scenario.stop().await;
}
