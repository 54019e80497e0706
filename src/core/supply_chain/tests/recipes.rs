//! The README's CI recipes, checked with the documents they produce: the
//! fixtures are in exactly the shape the tools write (Trivy's
//! `--format cosign-vuln` writer, GitHub Actions' SLSA v1 provenance), and
//! each is wrapped as `cosign attest` wraps its `--predicate` file before it
//! reaches the gates, both as cosign v3 attaches it (a bundle) and as
//! `--new-bundle-format=false` does (a DSSE layer).

use serde_json::{Value, json};

use crate::api::{ProvenancePredicate, Severity, Source};
use crate::core::reasons::FindingReason;
use crate::core::supply_chain::envelope::Layer;
use crate::core::supply_chain::keys::test_keys::{SigningKey, Trusted};
use crate::core::supply_chain::provenance::{self, SLSA_V1};
use crate::core::supply_chain::scan::{self, VULN_V1};
use hoist_testkit::signing::{self as kit, statement_attestation, statement_bundle};

/// `trivy image --format cosign-vuln --output scan.json IMAGE` (Trivy 0.58).
const TRIVY_COSIGN_VULN: &str = include_str!("fixtures/trivy-cosign-vuln.json");
/// The SLSA v1 provenance GitHub Actions writes for a workflow run.
const SLSA_PROVENANCE: &str = include_str!("fixtures/slsa-provenance-v1.json");

const REPOSITORY: &str = "registry.example.com/shop/backend";
const DIGEST: &str = "sha256:372fadd787891e0f4d2b5d8c1e0d0d1f2a3b4c5d6e7f8091a2b3c4d5e6f70819";

/// The in-toto statement cosign signs for `--type` (`predicate_type`) with
/// `predicate`: v0.1, the repository and digest as subject.
fn cosign_statement(predicate_type: &str, predicate: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": REPOSITORY, "digest": {"sha256": DIGEST.trim_start_matches("sha256:")}}],
        "predicate": predicate,
    }))
    .expect("statement")
}

/// What `cosign attest --type vuln --predicate FILE` makes of FILE: cosign
/// reads it into its vulnerability predicate (invocation, scanner and
/// metadata; anything else is dropped, anything missing is empty and the
/// times Go's zero time) and signs the statement of that.
fn cosign_attest_vuln(file: &str) -> Vec<u8> {
    let file: Value = serde_json::from_str(file).expect("the predicate file is JSON");
    let text = |value: &Value| json!(value.as_str().unwrap_or_default());
    let time = |value: &Value| json!(value.as_str().unwrap_or("0001-01-01T00:00:00Z"));
    let predicate = json!({
        "invocation": {
            "parameters": file["invocation"]["parameters"],
            "uri": text(&file["invocation"]["uri"]),
            "event_id": text(&file["invocation"]["event_id"]),
            "builder.id": text(&file["invocation"]["builder.id"]),
        },
        "scanner": {
            "uri": text(&file["scanner"]["uri"]),
            "version": text(&file["scanner"]["version"]),
            "db": {"uri": text(&file["scanner"]["db"]["uri"]), "version": text(&file["scanner"]["db"]["version"])},
            "result": file["scanner"]["result"],
        },
        "metadata": {
            "scanStartedOn": time(&file["metadata"]["scanStartedOn"]),
            "scanFinishedOn": time(&file["metadata"]["scanFinishedOn"]),
        },
    });
    cosign_statement(VULN_V1, predicate)
}

/// The statement as a legacy DSSE layer and as a v0.3 bundle, signed by `key`.
fn attached(key: &SigningKey, statement: &[u8], predicate_type: &str) -> [Layer; 2] {
    let layer = |from: kit::Layer| Layer {
        media_type: from.media_type.to_owned(),
        annotations: from.annotations,
        content: from.content,
    };
    [
        layer(statement_attestation(key, statement, predicate_type)),
        layer(statement_bundle(key, statement, predicate_type).layer()),
    ]
}

#[test]
fn trivys_cosign_vuln_document_attested_by_cosign_passes_the_gate_with_its_severities_counted() {
    let key = SigningKey::generate();
    let keys = [key.trusted("ci")];
    let statement = cosign_attest_vuln(TRIVY_COSIGN_VULN);
    for layer in attached(&key, &statement, VULN_V1) {
        let kind = layer.media_type.clone();
        let check = |max, ignore: &[String]| {
            scan::check(DIGEST, std::slice::from_ref(&layer), &keys, None, max, ignore)
        };
        let passed = check(Severity::High, &[]);
        assert_eq!(
            passed.reason,
            FindingReason::Verified,
            "{kind}: {}",
            passed.message
        );
        assert_eq!(
            passed.message,
            "trivy@0.58.1 scan of 2026-12-01T10:04:05.418230511Z: 4 findings, none above High"
        );
        assert_eq!(passed.signed_by, vec!["ci"]);
        assert_eq!(
            passed.scanned_at,
            Some("2026-12-01T10:04:05.418230511Z".parse().expect("time"))
        );
        let blocked = check(Severity::Medium, &[]);
        assert_eq!(blocked.reason, FindingReason::VulnerabilitiesFound, "{kind}");
        assert_eq!(
            blocked.message,
            "trivy@0.58.1 scan of 2026-12-01T10:04:05.418230511Z of sha256:372fadd78789: 2 above Medium: \
             CVE-2024-34156 (High, stdlib v1.22.5), CVE-2024-45490 (High, libexpat1 2.5.0-1)"
        );
        let low = check(
            Severity::Low,
            &["CVE-2024-34156".to_string(), "CVE-2024-45490".to_string()],
        );
        assert_eq!(
            low.message,
            "trivy@0.58.1 scan of 2026-12-01T10:04:05.418230511Z of sha256:372fadd78789: 1 above Low: \
             CVE-2023-50495 (Medium, libtinfo6 6.4-4) (2 ignored: CVE-2024-34156, CVE-2024-45490)"
        );
    }
}

/// The recipe the README had: `trivy image --format json` gives the bare
/// report, which cosign reads as a vulnerability predicate with nothing in
/// it. The gate says what is wrong instead of passing it.
#[test]
fn a_bare_trivy_json_report_attested_as_vuln_is_refused_as_malformed() {
    let key = SigningKey::generate();
    let keys = [key.trusted("ci")];
    let document: Value = serde_json::from_str(TRIVY_COSIGN_VULN).expect("fixture");
    let bare_report = serde_json::to_string(&document["scanner"]["result"]).expect("report");
    let statement = cosign_attest_vuln(&bare_report);
    for layer in attached(&key, &statement, VULN_V1) {
        let finding = scan::check(DIGEST, &[layer], &keys, None, Severity::High, &[]);
        assert_eq!(finding.reason, FindingReason::MalformedAttestation);
        assert_eq!(
            finding.message,
            "no vulnerability scan could be read: scanner.result is neither a Trivy nor a Grype JSON report"
        );
    }
}

#[test]
fn github_actions_slsa_provenance_attested_by_cosign_names_the_commit_and_builder() {
    let key = SigningKey::generate();
    let keys = [key.trusted("ci")];
    let predicate: Value = serde_json::from_str(SLSA_PROVENANCE).expect("fixture");
    let statement = cosign_statement(SLSA_V1, predicate);
    let source: Source = serde_json::from_value(json!({
        "repository": "https://github.com/acme/shop",
        "revision": "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f",
    }))
    .expect("source");
    for layer in attached(&key, &statement, SLSA_V1) {
        let finding = provenance::check(
            DIGEST,
            &[layer],
            &keys,
            None,
            ProvenancePredicate::SlsaV1,
            Some("https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main"),
            Some(&source),
        );
        assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
        assert_eq!(
            finding.message,
            "built from https://github.com/acme/shop@3f2c9a1b7e4d… by \
             https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main, attested by ci"
        );
    }
}
