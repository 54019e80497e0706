//! Keyless bundles through the checks and keyless policies as the
//! Environment names them: the testkit's Sigstore signs as a GitHub
//! Actions workflow would, and each way of failing has its reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::environment;
use crate::api::{ProvenancePredicate, Severity, Source};
use crate::core::reasons::FindingReason;
use crate::core::supply_chain::envelope::{Attachments, Layer};
use crate::core::supply_chain::keyless::{Identity, Keyless, Subject, TrustedRoot};
use crate::core::supply_chain::{
    Finding, KeySecrets, Policy, PolicyProblem, TrustSources, policies, provenance, scan, secret_data,
    signatures,
};
use hoist_testkit::keyless::{GITHUB_ISSUER, Proof, Sigstore, workflow};
use hoist_testkit::signing::{self as kit, SLSA_V1, VULN_V1, slsa_v1, trivy_scan};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const EPOCH: i64 = 1_800_000_000;
const REPOSITORY: &str = "https://github.com/acme/shop";
const COMMIT: &str = "3f2c9a1b4d5e6f708192a3b4c5d6e7f809102132";

fn release() -> String {
    workflow("acme/shop", "release.yml", "refs/heads/main")
}

fn keyless(sigstore: &Sigstore) -> Keyless {
    Keyless {
        identities: vec![Identity {
            issuer: GITHUB_ISSUER.to_owned(),
            subject: Subject::Exact(release()),
        }],
        root: TrustedRoot::from_json(&sigstore.trusted_root()).expect("the root reads"),
    }
}

fn attached(bundles: &[kit::Bundle]) -> Attachments {
    Attachments {
        bundles: bundles
            .iter()
            .map(|bundle| {
                let layer = bundle.layer();
                Layer {
                    media_type: layer.media_type.to_owned(),
                    annotations: layer.annotations,
                    content: layer.content,
                }
            })
            .collect(),
        ..Attachments::default()
    }
}

fn signed(bundles: &[kit::Bundle], policy: Option<&Keyless>) -> Finding {
    signatures::check(DIGEST, &attached(bundles).signature_layers(), &[], policy, 1)
}

#[test]
fn a_keyless_signature_of_the_workflow_counts_as_signed_by_its_identity() {
    let sigstore = Sigstore::generate(EPOCH);
    let leaf = sigstore.leaf(&release(), GITHUB_ISSUER, EPOCH);
    let bundle = sigstore.signature_bundle(&leaf, DIGEST, Proof::Logged(EPOCH + 20));
    let finding = signed(std::slice::from_ref(&bundle), Some(&keyless(&sigstore)));
    assert_eq!(finding.reason, FindingReason::Verified);
    assert_eq!(finding.signed_by, vec![release()]);
    assert_eq!(finding.message, format!("signed by {}", release()));
    let stamped = sigstore.signature_bundle(&leaf, DIGEST, Proof::Stamped(EPOCH + 20));
    assert_eq!(
        signed(&[stamped], Some(&keyless(&sigstore))).reason,
        FindingReason::Verified
    );
    // Two signers asked for: the message names keyless identities too.
    let policy = keyless(&sigstore);
    let two = signatures::check(
        DIGEST,
        &attached(std::slice::from_ref(&bundle)).signature_layers(),
        &[],
        Some(&policy),
        2,
    );
    assert_eq!(
        (two.reason, two.message),
        (
            FindingReason::NotEnoughSignatures,
            format!(
                "signed by {release} only; 2 distinct signers (keys of [], keyless identities \
                 [issuer={GITHUB_ISSUER};subject={release}]) must sign",
                release = release()
            )
        )
    );
    // Without keyless identities, keys do not verify a certificate.
    assert_eq!(signed(&[bundle], None).reason, FindingReason::UntrustedSignature);
}

#[test]
fn each_way_a_keyless_signature_fails_has_its_reason() {
    let sigstore = Sigstore::generate(EPOCH);
    let elsewhere = Sigstore::generate(EPOCH);
    let policy = keyless(&sigstore);
    let reason = |bundle: kit::Bundle| signed(&[bundle], Some(&policy)).reason;
    let leaf = sigstore.leaf(&release(), GITHUB_ISSUER, EPOCH);

    let other_branch = sigstore.leaf(
        &workflow("acme/shop", "release.yml", "refs/heads/dev"),
        GITHUB_ISSUER,
        EPOCH,
    );
    let finding = signed(
        &[sigstore.signature_bundle(&other_branch, DIGEST, Proof::Logged(EPOCH + 1))],
        Some(&policy),
    );
    assert_eq!(finding.reason, FindingReason::IdentityMismatch);
    assert_eq!(
        finding.message,
        format!(
            "keyless signature: the certificate names issuer={GITHUB_ISSUER};subject={}, not an identity of the policy (issuer={GITHUB_ISSUER};subject={})",
            workflow("acme/shop", "release.yml", "refs/heads/dev"),
            release()
        )
    );
    let other_repository = sigstore.leaf(
        &workflow("acme/other", "release.yml", "refs/heads/main"),
        GITHUB_ISSUER,
        EPOCH,
    );
    assert_eq!(
        reason(sigstore.signature_bundle(&other_repository, DIGEST, Proof::Logged(EPOCH + 1))),
        FindingReason::IdentityMismatch
    );
    let foreign = elsewhere.leaf(&release(), GITHUB_ISSUER, EPOCH);
    assert_eq!(
        reason(sigstore.signature_bundle(&foreign, DIGEST, Proof::Logged(EPOCH + 1))),
        FindingReason::UntrustedCertificate
    );
    assert_eq!(
        reason(sigstore.signature_bundle(&leaf, DIGEST, Proof::Logged(EPOCH + 601))),
        FindingReason::CertificateExpired
    );
    assert_eq!(
        reason(sigstore.signature_bundle(&leaf, DIGEST, Proof::Unproven)),
        FindingReason::NoTrustedTimestamp
    );
    assert_eq!(
        reason(sigstore.signature_bundle(&leaf, OTHER, Proof::Logged(EPOCH + 1))),
        FindingReason::WrongDigest
    );
    let tampered = sigstore
        .signature_bundle(&leaf, DIGEST, Proof::Logged(EPOCH + 1))
        .edited(|bundle| {
            let statement = json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "image", "digest": {"sha256": DIGEST.trim_start_matches("sha256:")}}],
                "predicateType": "https://sigstore.dev/cosign/sign/v1",
                "predicate": {"changed": true},
            });
            bundle["dsseEnvelope"]["payload"] = STANDARD
                .encode(serde_json::to_vec(&statement).expect("JSON"))
                .into();
        });
    assert_eq!(reason(tampered), FindingReason::UntrustedSignature);
}

#[test]
fn keyless_attestations_pass_the_provenance_and_vulnerability_gates() {
    let sigstore = Sigstore::generate(EPOCH);
    let policy = keyless(&sigstore);
    let leaf = sigstore.leaf(&release(), GITHUB_ISSUER, EPOCH);
    let source: Source =
        serde_json::from_value(json!({"repository": REPOSITORY, "revision": COMMIT})).expect("source");
    let provenance = sigstore.attestation_bundle(
        &leaf,
        DIGEST,
        SLSA_V1,
        slsa_v1(REPOSITORY, COMMIT, &release()),
        Proof::Logged(EPOCH + 5),
    );
    let finding = provenance::check(
        DIGEST,
        &attached(&[provenance]).attestation_layers(),
        &[],
        Some(&policy),
        ProvenancePredicate::SlsaV1,
        Some(&release()),
        Some(&source),
    );
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);
    assert_eq!(finding.signed_by, vec![release()]);

    let scan = sigstore.attestation_bundle(
        &leaf,
        DIGEST,
        VULN_V1,
        trivy_scan("2026-12-01T10:00:00Z", &[]),
        Proof::Stamped(EPOCH + 5),
    );
    let finding = scan::check(
        DIGEST,
        &attached(std::slice::from_ref(&scan)).attestation_layers(),
        &[],
        Some(&policy),
        Severity::Medium,
        &[],
    );
    assert_eq!(finding.reason, FindingReason::Verified, "{}", finding.message);

    let late = sigstore.attestation_bundle(
        &leaf,
        DIGEST,
        VULN_V1,
        trivy_scan("2026-12-01T10:00:00Z", &[]),
        Proof::Stamped(EPOCH + 3600),
    );
    let finding = scan::check(
        DIGEST,
        &attached(&[late]).attestation_layers(),
        &[],
        Some(&policy),
        Severity::Medium,
        &[],
    );
    assert_eq!(finding.reason, FindingReason::CertificateExpired);
    assert!(
        finding
            .message
            .starts_with("keyless vulnerability scan: the signature was made at"),
        "{}",
        finding.message
    );
}

const KEYLESS_GATE: &str = "{provenance: {signatures: {keyless: {identities: [{issuer: \"https://token.actions.githubusercontent.com\", subject: \"https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main\"}], trustedRoot: {configMapRef: {name: sigstore, key: trusted_root.json}}}}}}";

fn with_root(root: &[u8]) -> TrustSources {
    TrustSources {
        config_maps: BTreeMap::from([(
            "sigstore".to_owned(),
            BTreeMap::from([("trusted_root.json".to_owned(), root.to_vec())]),
        )]),
        ..TrustSources::default()
    }
}

fn only(policies: Vec<Result<Policy, PolicyProblem>>) -> Result<Policy, PolicyProblem> {
    let [policy] = <[_; 1]>::try_from(policies).expect("one policy");
    policy
}

#[test]
fn a_keyless_policy_reads_its_root_from_a_configmap_and_waits_for_it() {
    let sigstore = Sigstore::generate(EPOCH);
    let root = sigstore.trusted_root();
    let environment = environment(KEYLESS_GATE);
    let problem = only(policies(&environment, &TrustSources::default())).expect_err("no ConfigMap");
    assert_eq!(
        problem.message,
        "spec.gates.provenance.signatures.keyless.trustedRoot: ConfigMap shop/sigstore not found"
    );
    assert!(problem.waiting);
    let mut other_key = with_root(&root);
    other_key
        .config_maps
        .get_mut("sigstore")
        .expect("ConfigMap")
        .clear();
    let problem = only(policies(&environment, &other_key)).expect_err("no key");
    assert_eq!(
        problem.message,
        "spec.gates.provenance.signatures.keyless.trustedRoot: ConfigMap shop/sigstore has no key trusted_root.json"
    );
    assert!(problem.waiting);
    let problem = only(policies(&environment, &with_root(b"{}"))).expect_err("not a root");
    assert!(!problem.waiting);
    assert!(
        problem.message.starts_with(
            "spec.gates.provenance.signatures.keyless.trustedRoot: ConfigMap shop/sigstore key trusted_root.json is not a trusted root"
        ),
        "{}",
        problem.message
    );

    let policy = only(policies(&environment, &with_root(&root))).expect("policy");
    assert!(policy.keyless == Some(keyless(&sigstore)));
    assert!(policy.keys.is_empty());
}

#[test]
fn the_policy_id_covers_the_identities_and_the_root() {
    let sigstore = Sigstore::generate(EPOCH);
    let root = sigstore.trusted_root();
    let id = |gate: &str, root: &[u8]| {
        only(policies(&environment(gate), &with_root(root)))
            .expect("policy")
            .id
    };
    let same = id(KEYLESS_GATE, &root);
    assert_eq!(same, id(KEYLESS_GATE, &root));
    assert_ne!(same, id(KEYLESS_GATE, &Sigstore::generate(EPOCH).trusted_root()));
    let dev = KEYLESS_GATE.replace("refs/heads/main", "refs/heads/dev");
    assert_ne!(same, id(&dev, &root));
    let pattern = KEYLESS_GATE.replace("subject:", "subjectRegExp:");
    assert_ne!(same, id(&pattern, &root));
}

#[test]
fn without_a_trusted_root_the_operators_default_is_used() {
    let sigstore = Sigstore::generate(EPOCH);
    let gate = "{vulnerabilities: {keyless: {identities: [{issuer: \"https://token.actions.githubusercontent.com\", subjectRegExp: \"https://github\\\\.com/acme/.*\"}]}}}";
    let environment = environment(gate);
    let problem = only(policies(&environment, &TrustSources::default())).expect_err("no root");
    assert_eq!(
        problem.message,
        "spec.gates.vulnerabilities.keyless.trustedRoot: not set, and the operator was started without --trusted-root"
    );
    assert!(!problem.waiting);
    let trust = TrustSources {
        default_root: Some(Arc::from(sigstore.trusted_root())),
        ..TrustSources::default()
    };
    let policy = only(policies(&environment, &trust)).expect("policy");
    let keyless = policy.keyless.expect("keyless");
    assert!(keyless.root == TrustedRoot::from_json(&sigstore.trusted_root()).expect("root"));
    assert_eq!(
        keyless.identities[0].describe(),
        "issuer=https://token.actions.githubusercontent.com;subjectRegExp=https://github\\.com/acme/.*"
    );

    let broken = gate.replace("acme/.*", "acme/(");
    let problem = only(policies(&self::environment(&broken), &trust)).expect_err("a bad pattern");
    assert!(
        problem
            .message
            .starts_with("spec.gates.vulnerabilities.keyless.identities[0]: subjectRegExp \"https://github\\\\.com/acme/(\" is not a regular expression"),
        "{}",
        problem.message
    );
}

#[test]
fn a_trusted_root_in_a_secret_is_kept_as_a_public_key_is() {
    let sigstore = Sigstore::generate(EPOCH);
    let root = sigstore.trusted_root();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "sigstore"},
        "stringData": {
            "trusted_root.json": String::from_utf8(root.clone()).expect("UTF-8"),
            "token": "not public"
        }
    }))
    .expect("secret");
    let data = secret_data(&secret);
    assert_eq!(data["trusted_root.json"], root);
    assert!(data["token"].is_empty());
    let gate = KEYLESS_GATE.replace("configMapRef", "secretRef");
    let trust = TrustSources {
        secrets: KeySecrets::from([("sigstore".to_owned(), data)]),
        ..TrustSources::default()
    };
    let policy = only(policies(&environment(&gate), &trust)).expect("policy");
    assert!(policy.keyless == Some(keyless(&sigstore)));
    assert_eq!(
        crate::core::supply_chain::key_secret_names(&environment(&gate)),
        ["sigstore".to_owned()].into()
    );
    assert_eq!(
        crate::core::supply_chain::root_config_map_names(&environment(KEYLESS_GATE)),
        ["sigstore".to_owned()].into()
    );
}

/// The README's keyless policy is one the API takes: three policies, the
/// ones naming the ConfigMap read from it, the other from the operator's root.
#[test]
fn the_readmes_keyless_policy_reads() {
    let readme = include_str!("../../../../README.md");
    let section = &readme[readme
        .find("#### Keyless signatures")
        .expect("the README's keyless section")..];
    let start = section.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").expect("its end")];
    let gates = block.strip_prefix("gates:\n").expect("gates:");
    let indented: String = gates.lines().map(|line| format!("  {line}\n")).collect();
    let environment: crate::api::Environment = serde_yaml::from_str(&format!(
        "apiVersion: hoist.dev/v1alpha1\nkind: Environment\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  gates:\n{indented}"
    ))
    .expect("the README's gates parse");
    let sigstore = Sigstore::generate(EPOCH);
    let trust = TrustSources {
        default_root: Some(Arc::from(sigstore.trusted_root())),
        ..with_root(&sigstore.trusted_root())
    };
    let read: Vec<Policy> = policies(&environment, &trust)
        .into_iter()
        .map(|policy| policy.expect("a policy"))
        .collect();
    assert_eq!(read.len(), 3);
    assert!(
        read.iter()
            .all(|policy| policy.keys.is_empty() && policy.keyless.is_some())
    );
}
