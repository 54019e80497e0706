//! Sigstore bundles through the checks, made by the testkit the way cosign
//! v3 writes them with a key: each counts as the legacy layout's signature
//! or attestation does, and each way of failing has its reason.

use serde_json::json;

use crate::api::{ProvenancePredicate, Severity, Source};
use crate::core::reasons::FindingReason;
use crate::core::supply_chain::envelope::{Attachments, Layer};
use crate::core::supply_chain::keys::TrustedKey;
use crate::core::supply_chain::keys::test_keys::{SigningKey, Trusted};
use crate::core::supply_chain::provenance::{self, SLSA_V1};
use crate::core::supply_chain::scan::{self, VULN_V1};
use crate::core::supply_chain::signatures;
use hoist_testkit::signing::{
    self as kit, Bundle, attestation_bundle, message_signature_bundle, signature_bundle, slsa_v1, trivy_scan,
};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const REPOSITORY: &str = "https://github.com/acme/shop";
const COMMIT: &str = "3f2c9a1b4d5e6f708192a3b4c5d6e7f809102132";
const BUILDER: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";

fn layer(from: kit::Layer) -> Layer {
    Layer {
        media_type: from.media_type.to_owned(),
        annotations: from.annotations,
        content: from.content,
    }
}

/// What the registry hands over when only `bundles` are attached.
fn attached(bundles: &[Bundle]) -> Attachments {
    Attachments {
        bundles: bundles.iter().map(|b| layer(b.layer())).collect(),
        ..Attachments::default()
    }
}

fn signed(bundles: &[Bundle], keys: &[TrustedKey]) -> crate::core::supply_chain::Finding {
    signatures::check(DIGEST, &attached(bundles).signature_layers(), keys, None, 1)
}

fn provenance(bundles: &[Bundle], keys: &[TrustedKey]) -> crate::core::supply_chain::Finding {
    let source: Source =
        serde_json::from_value(json!({"repository": REPOSITORY, "revision": COMMIT})).expect("source");
    provenance::check(
        DIGEST,
        &attached(bundles).attestation_layers(),
        keys,
        None,
        ProvenancePredicate::SlsaV1,
        Some(BUILDER),
        Some(&source),
    )
}

fn scanned(bundles: &[Bundle], keys: &[TrustedKey]) -> crate::core::supply_chain::Finding {
    scan::check(
        DIGEST,
        &attached(bundles).attestation_layers(),
        keys,
        None,
        Severity::Medium,
        &[],
    )
}

#[test]
fn a_keyed_signature_bundle_counts_as_a_signature_of_its_key() {
    let key = SigningKey::generate();
    let keys = [key.trusted("release")];
    let finding = signed(&[signature_bundle(&key, DIGEST)], &keys);
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
    assert_eq!(finding.signed_by, vec!["release"]);
    // A message signature over the image manifest counts too.
    let finding = signed(&[message_signature_bundle(&key, DIGEST)], &keys);
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
    // The legacy layout and bundles of two keys make two signers.
    let second = SigningKey::generate();
    let keys = [key.trusted("release"), second.trusted("security")];
    let legacy = Layer {
        media_type: crate::core::supply_chain::envelope::SIMPLE_SIGNING.into(),
        ..layer(kit::signature(
            &second,
            &hoist_testkit::registry::PushedImage {
                reference: "r/shop:1".into(),
                digest: DIGEST.into(),
            },
            DIGEST,
        ))
    };
    let mut both = attached(&[signature_bundle(&key, DIGEST)]);
    both.signatures.push(legacy);
    let finding = signatures::check(DIGEST, &both.signature_layers(), &keys, None, 2);
    assert_eq!(
        finding.signed_by,
        vec!["release", "security"],
        "{}",
        finding.message
    );
}

#[test]
fn each_bundle_that_does_not_sign_the_digest_has_its_reason() {
    let key = SigningKey::generate();
    let stranger = SigningKey::generate();
    let keys = [key.trusted("release")];
    let reason = |bundles: &[Bundle]| signed(bundles, &keys).reason;
    assert_eq!(
        reason(&[signature_bundle(&key, OTHER)]),
        FindingReason::WrongDigest
    );
    assert_eq!(
        reason(&[signature_bundle(&stranger, DIGEST)]),
        FindingReason::UntrustedSignature
    );
    assert_eq!(
        reason(&[message_signature_bundle(&key, OTHER)]),
        FindingReason::UntrustedSignature
    );
    let forged = signature_bundle(&key, OTHER).with_statement_edited(|statement| {
        statement["subject"][0]["digest"]["sha256"] = json!(DIGEST.trim_start_matches("sha256:"));
    });
    assert_eq!(reason(&[forged]), FindingReason::UntrustedSignature);
    // An attestation bundle is not a signature.
    let provenance = attestation_bundle(&key, DIGEST, SLSA_V1, slsa_v1(REPOSITORY, COMMIT, BUILDER));
    let finding = signed(&[provenance], &keys);
    assert_eq!(finding.reason, FindingReason::SignatureMissing);
    assert_eq!(
        finding.message,
        "no cosign signature is attached to sha256:111111111111 (tag sha256-….sig or referrers; attached bundles are attestations)"
    );
    let keyless = signature_bundle(&key, DIGEST).edited(|value| {
        value["verificationMaterial"] = json!({"certificate": {"rawBytes": "MAA="}});
    });
    let finding = signed(&[keyless], &keys);
    assert_eq!(finding.reason, FindingReason::UntrustedSignature);
    assert!(
        finding
            .message
            .starts_with("1 signature bundle(s) are signed with a certificate (keyless)"),
        "{}",
        finding.message
    );
    let unparsable = signature_bundle(&key, DIGEST).edited(|value| {
        value["verificationMaterial"] = json!({});
    });
    let finding = signed(&[unparsable], &keys);
    assert_eq!(finding.reason, FindingReason::MalformedBundle);
    assert_eq!(
        finding.message,
        "no signature bundle could be read: bundle's verificationMaterial has none of publicKey, x509CertificateChain and certificate"
    );
    let future = signature_bundle(&key, DIGEST).edited(|value| {
        value["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v0.4+json");
    });
    let finding = signed(&[future], &keys);
    assert_eq!(finding.reason, FindingReason::UnsupportedBundle);
    assert_eq!(
        finding.message,
        "the attached signature bundle(s) have media type application/vnd.dev.sigstore.bundle.v0.4+json, which Hoist does not read (Sigstore bundle v0.1 to v0.3)"
    );
}

#[test]
fn slsa_and_vulnerability_attestation_bundles_are_read_as_envelopes_are() {
    let key = SigningKey::generate();
    let stranger = SigningKey::generate();
    let keys = [key.trusted("ci")];
    let slsa = attestation_bundle(&key, DIGEST, SLSA_V1, slsa_v1(REPOSITORY, COMMIT, BUILDER));
    let finding = provenance(&[signature_bundle(&key, DIGEST), slsa.clone()], &keys);
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
    let scan = attestation_bundle(
        &key,
        DIGEST,
        VULN_V1,
        trivy_scan("2026-12-01T10:00:00Z", &[("CVE-2026-1", "LOW", "zlib")]),
    );
    let finding = scanned(std::slice::from_ref(&scan), &keys);
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
    assert_eq!(finding.signed_by, vec!["ci"]);

    let reason = |bundles: &[Bundle]| provenance(bundles, &keys).reason;
    assert_eq!(
        reason(&[attestation_bundle(
            &key,
            OTHER,
            SLSA_V1,
            slsa_v1(REPOSITORY, COMMIT, BUILDER)
        )]),
        FindingReason::WrongSubject
    );
    assert_eq!(
        reason(&[attestation_bundle(
            &stranger,
            DIGEST,
            SLSA_V1,
            slsa_v1(REPOSITORY, COMMIT, BUILDER)
        )]),
        FindingReason::UnknownKey,
        "the hint names a key not listed"
    );
    let anonymous = attestation_bundle(&stranger, DIGEST, SLSA_V1, slsa_v1(REPOSITORY, COMMIT, BUILDER))
        .edited(|value| value["verificationMaterial"]["publicKey"] = json!({}));
    assert_eq!(reason(&[anonymous]), FindingReason::UntrustedAttestation);
    let altered = slsa.with_statement_edited(|statement| {
        statement["predicate"]["runDetails"]["builder"]["id"] = json!("https://evil.example/builder");
    });
    assert_eq!(reason(&[altered]), FindingReason::UntrustedAttestation);
    let critical = scan.with_statement_edited(|statement| {
        statement["predicate"]["scanner"]["result"]["Results"][0]["Vulnerabilities"] = json!([]);
    });
    assert_eq!(
        scanned(&[critical], &keys).reason,
        FindingReason::UntrustedAttestation
    );
    let finding = provenance(&[signature_bundle(&key, DIGEST)], &keys);
    assert_eq!(finding.reason, FindingReason::AttestationMissing);
    assert!(
        finding
            .message
            .ends_with("(attached: https://sigstore.dev/cosign/sign/v1)"),
        "{}",
        finding.message
    );
}
