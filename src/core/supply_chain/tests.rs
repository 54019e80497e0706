//! Policies, due checks and gate verdicts at exact instants; malformed
//! input thrown at every parser and check (`properties`).

mod bundles;
mod keyless;
mod properties;
mod recipes;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::keys::test_keys::SigningKey;
use super::*;
use crate::api::{Artifact, Environment, GateState};
use crate::core::gates::records;
use crate::core::reasons::FindingReason;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW_DIGEST: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

fn environment(gates: &str) -> Environment {
    serde_yaml::from_str(&format!(
        "apiVersion: hoist.dev/v1alpha1\nkind: Environment\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  gates: {gates}\n"
    ))
    .expect("environment parses")
}

fn artifact(records: Vec<SupplyChainRecord>) -> Artifact {
    let mut artifact: Artifact = serde_yaml::from_str(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: shop-1.0.0, namespace: shop}}
spec:
  application: shop
  version: 1.0.0
  images: [{{component: backend, image: "registry.example.com/shop/backend:1.0.0"}}]
status:
  images: [{{component: backend, image: "registry.example.com/shop/backend:1.0.0", digest: "{DIGEST}", resolvedAt: "2026-12-01T00:00:00Z"}}]
"#
    ))
    .expect("artifact parses");
    artifact.status.as_mut().expect("status").supply_chain = records;
    artifact
}

fn inline(key: &SigningKey) -> String {
    serde_json::to_string(&key.public_pem()).expect("json string")
}

/// The policies of an Environment that wants signatures by one new key.
fn signature_policies() -> Vec<Result<Policy, PolicyProblem>> {
    let key = SigningKey::generate();
    let env = environment(&format!(
        "{{provenance: {{signatures: {{keys: [{{name: release, pem: {}}}]}}}}}}",
        inline(&key)
    ));
    policies(&env, &TrustSources::default())
}

fn checked(check: &DueCheck, finding: Finding, when: &str) -> SupplyChainRecord {
    let attachments = Attachments::default();
    let mut record = record(check, Ok(&attachments), None, None, &Time(at(when)));
    record.verdict = finding.verdict;
    record.reason = finding.reason.as_str().into();
    record.message = finding.message;
    record.scanned_at = finding.scanned_at.map(Time);
    record
}

#[test]
fn a_policy_is_named_by_its_keys_and_rule_and_shared_by_environments_with_the_same() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let gates = |key: &SigningKey, min: u8| {
        format!(
            "{{provenance: {{signatures: {{minSignatures: {min}, keys: [{{name: release, pem: {}}}]}}}}}}",
            inline(key)
        )
    };
    let id = |gates: &str| {
        policies(&environment(gates), &TrustSources::default())[0]
            .clone()
            .expect("policy")
            .id
    };
    assert_eq!(id(&gates(&key, 1)), id(&gates(&key, 1)));
    assert_eq!(id(&gates(&key, 1)).len(), 16);
    assert_ne!(id(&gates(&key, 1)), id(&gates(&other, 1)));
    assert_ne!(id(&gates(&key, 1)), id(&gates(&key, 2)));
    // The same key from a Secret is the same policy.
    let from_secret =
        "{provenance: {signatures: {keys: [{name: release, secretRef: {name: cosign, key: cosign.pub}}]}}}";
    let secrets = TrustSources {
        secrets: KeySecrets::from([(
            "cosign".to_string(),
            [("cosign.pub".to_string(), key.public_pem().into_bytes())].into(),
        )]),
        ..TrustSources::default()
    };
    let policy = policies(&environment(from_secret), &secrets)[0]
        .clone()
        .expect("policy");
    assert_eq!(policy.id, id(&gates(&key, 1)));
}

#[test]
fn of_a_cosign_key_pair_secret_only_the_public_key_is_kept() {
    let key = SigningKey::generate();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cosign"},
        "stringData": {
            "cosign.pub": key.public_pem(),
            "cosign.key": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "cosign.password": "hunter2"
        }
    }))
    .expect("secret");
    let data = secret_data(&secret);
    assert_eq!(data["cosign.pub"], key.public_pem().into_bytes());
    assert_eq!((data["cosign.key"].len(), data["cosign.password"].len()), (0, 0));
    let private =
        "{provenance: {signatures: {keys: [{name: release, secretRef: {name: cosign, key: cosign.key}}]}}}";
    let problem = policies(
        &environment(private),
        &TrustSources {
            secrets: KeySecrets::from([("cosign".into(), data)]),
            ..TrustSources::default()
        },
    )[0]
    .clone()
    .unwrap_err();
    assert!(
        problem
            .message
            .starts_with("spec.gates.provenance.signatures.keys[release]: the key is not PEM"),
        "{}",
        problem.message
    );
}

#[test]
fn unusable_keys_are_named_by_field_and_a_missing_secret_is_waited_for() {
    let from_secret =
        "{provenance: {signatures: {keys: [{name: release, secretRef: {name: cosign, key: cosign.pub}}]}}}";
    let problem = policies(&environment(from_secret), &TrustSources::default())[0]
        .clone()
        .unwrap_err();
    assert_eq!(
        problem.message,
        "spec.gates.provenance.signatures.keys[release]: Secret shop/cosign not found"
    );
    assert!(problem.waiting);
    let bad = "{vulnerabilities: {keys: [{name: scanner, pem: not-a-key}]}}";
    let problem = policies(&environment(bad), &TrustSources::default())[0]
        .clone()
        .unwrap_err();
    assert!(!problem.waiting);
    assert!(
        problem
            .message
            .starts_with("spec.gates.vulnerabilities.keys[scanner]: the key is not PEM"),
        "{}",
        problem.message
    );
    let outcome = records::evaluate(
        SupplyChainCheck::Vulnerabilities,
        &policies(&environment(bad), &TrustSources::default()),
        &artifact(vec![]),
        at("2026-12-02T00:00:00Z"),
    )
    .expect("a policy");
    assert_eq!(outcome.state, GateState::Failed);
}

#[test]
fn a_digest_is_checked_once_and_a_new_digest_or_policy_is_checked_anew() {
    let policies = signature_policies();
    let now = at("2026-12-02T09:00:00Z");
    let (due_now, _) = due(&policies, &artifact(vec![]), now);
    assert_eq!(due_now.len(), 1);
    assert_eq!(due_now[0].digest, DIGEST);
    let done = checked(
        &due_now[0],
        Finding::verified("signed by release".into()),
        "2026-12-02T09:00:00Z",
    );
    let (again, next) = due(&policies, &artifact(vec![done.clone()]), now);
    assert!(again.is_empty());
    assert_eq!(next, None);
    let outcome = records::evaluate(
        SupplyChainCheck::Signatures,
        &policies,
        &artifact(vec![done.clone()]),
        now,
    )
    .expect("policy");
    assert_eq!(outcome.state, GateState::Passed);
    assert_eq!(outcome.message, "backend@sha256:111111111111: signed by release");
    // A record of another digest (never for a resolved Artifact, but a
    // copied status) or of another policy does not count.
    let mut other_digest = done.clone();
    other_digest.digest = NEW_DIGEST.into();
    assert_eq!(due(&policies, &artifact(vec![other_digest]), now).0.len(), 1);
    let mut other_policy = done;
    other_policy.policy = "0000000000000000".into();
    assert_eq!(due(&policies, &artifact(vec![other_policy]), now).0.len(), 1);
}

#[test]
fn an_unreadable_registry_is_retried_with_backoff_and_the_gate_waits() {
    let policies = signature_policies();
    let t0 = Time(at("2026-12-02T09:00:00Z"));
    let (checks, _) = due(&policies, &artifact(vec![]), t0.0);
    let first = record(
        &checks[0],
        Err("registry for image r is unavailable; will retry".into()),
        None,
        None,
        &t0,
    );
    assert_eq!(
        (first.verdict, first.attempts),
        (SupplyChainVerdict::Unavailable, 1)
    );
    let (now_due, next) = due(
        &policies,
        &artifact(vec![first.clone()]),
        at("2026-12-02T09:00:09Z"),
    );
    assert!(now_due.is_empty());
    assert_eq!(next, Some(at("2026-12-02T09:00:10Z")));
    let t1 = Time(at("2026-12-02T09:00:10Z"));
    assert_eq!(due(&policies, &artifact(vec![first.clone()]), t1.0).0.len(), 1);
    let second = record(&checks[0], Err("still down".into()), None, Some(&first), &t1);
    assert_eq!(second.attempts, 2);
    assert_eq!(
        due(&policies, &artifact(vec![second.clone()]), t1.0).1,
        Some(at("2026-12-02T09:00:30Z"))
    );
    let waiting = records::evaluate(
        SupplyChainCheck::Signatures,
        &policies,
        &artifact(vec![second]),
        t1.0,
    )
    .expect("policy");
    assert_eq!(waiting.state, GateState::Pending);
    assert_eq!(
        waiting.message,
        "backend@sha256:111111111111: still down; checking again (attempt 3)"
    );
    let mut worst = first;
    worst.attempts = 40;
    assert_eq!(
        due_at(&worst, &policies[0].clone().unwrap()),
        Some(at("2026-12-02T09:10:00Z"))
    );
}

#[test]
fn a_scan_older_than_max_age_holds_the_gate_from_that_instant_and_is_looked_for_again() {
    let key = SigningKey::generate();
    let env = environment(&format!(
        "{{vulnerabilities: {{maxAge: 168h, keys: [{{name: scanner, pem: {}}}]}}}}",
        inline(&key)
    ));
    let policies = policies(&env, &TrustSources::default());
    let checked_at = "2026-12-02T09:00:00Z";
    let (checks, _) = due(&policies, &artifact(vec![]), at(checked_at));
    let scan = Finding {
        scanned_at: Some(at("2026-12-01T12:00:00Z")),
        ..Finding::verified("trivy scan: 0 findings".into())
    };
    let done = checked(&checks[0], scan, checked_at);
    let artifact = artifact(vec![done]);
    let stale_at = at("2026-12-08T12:00:00Z");
    // Fresh until exactly 168 h after the scan finished; the gate says when.
    let before = records::evaluate(
        SupplyChainCheck::Vulnerabilities,
        &policies,
        &artifact,
        at("2026-12-08T11:59:59Z"),
    )
    .unwrap();
    assert_eq!(
        (before.state, before.next_check),
        (GateState::Passed, Some(stale_at))
    );
    assert_eq!(
        due(&policies, &artifact, at("2026-12-08T11:59:59Z")),
        (vec![], Some(stale_at))
    );
    let stale = records::evaluate(SupplyChainCheck::Vulnerabilities, &policies, &artifact, stale_at).unwrap();
    assert_eq!(stale.state, GateState::Pending);
    assert_eq!(
        stale.message,
        "backend@sha256:111111111111: the newest scan finished 2026-12-01T12:00:00Z, longer ago than maxAge 168h: push a newer scan (looked for again at 2026-12-08T12:00:00Z)"
    );
    // At that instant the registry is asked for a newer scan; if there is
    // none, hourly after that.
    assert_eq!(due(&policies, &artifact, stale_at).0.len(), 1);
    let mut rechecked = artifact.clone();
    rechecked.status.as_mut().unwrap().supply_chain[0].checked_at = Time(stale_at);
    assert_eq!(
        due(&policies, &rechecked, stale_at),
        (vec![], Some(at("2026-12-08T13:00:00Z")))
    );
}

#[test]
fn a_failed_record_fails_the_gate_with_its_reason_and_is_never_checked_again() {
    let key = SigningKey::generate();
    let env = environment(&format!(
        "{{provenance: {{attestation: {{keys: [{{name: ci, pem: {}}}]}}}}}}",
        inline(&key)
    ));
    let policies = policies(&env, &TrustSources::default());
    let now = at("2026-12-02T09:00:00Z");
    let (checks, _) = due(&policies, &artifact(vec![]), now);
    let done = checked(
        &checks[0],
        Finding::of(
            FindingReason::RevisionMismatch,
            "image sha256:111111111111 was built from 0123abc…, Artifact says 3f2c9a1…".into(),
        ),
        "2026-12-02T09:00:00Z",
    );
    let artifact = artifact(vec![done]);
    assert_eq!(
        due(&policies, &artifact, at("2027-01-01T00:00:00Z")),
        (vec![], None)
    );
    let failed = records::evaluate(SupplyChainCheck::Provenance, &policies, &artifact, now).unwrap();
    assert_eq!(failed.state, GateState::Failed);
    assert_eq!(
        failed.message,
        "backend@sha256:111111111111: image sha256:111111111111 was built from 0123abc…, Artifact says 3f2c9a1… (RevisionMismatch)"
    );
    assert_eq!(
        records::evaluate(SupplyChainCheck::Signatures, &policies, &artifact, now),
        None
    );
}

#[test]
fn a_record_is_told_when_its_digest_verdict_or_reason_is_new() {
    let policies = signature_policies();
    let (checks, _) = due(&policies, &artifact(vec![]), at("2026-12-02T09:00:00Z"));
    let verified = checked(
        &checks[0],
        Finding::verified("signed by release".into()),
        "2026-12-02T09:00:00Z",
    );
    assert_eq!(
        record_event(&verified, None),
        Some((
            EventReason::Verified(SupplyChainCheck::Signatures),
            "component backend (sha256:111111111111): signed by release".to_string()
        ))
    );
    assert_eq!(record_event(&verified, Some(&verified)), None);
    let copied = checked(
        &checks[0],
        Finding::of(FindingReason::WrongDigest, "copied from another image".into()),
        "2026-12-02T10:00:00Z",
    );
    let (reason, _) = record_event(&copied, Some(&verified)).expect("a new reason");
    assert_eq!(reason, EventReason::Finding(FindingReason::WrongDigest));
    assert!(reason.is_warning());
}
