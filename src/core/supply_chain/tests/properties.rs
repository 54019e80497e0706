//! Malformed input thrown at every parser and check of the supply chain.
//! What a registry hands over is never trusted: no input may panic, every
//! rejection names a reason its parser makes and says something, and no
//! change to signed bytes verifies.

use std::fmt::{Debug, Display};
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};

use crate::api::{ProvenancePredicate, Severity, Source, SupplyChainVerdict};
use crate::core::reasons::FindingReason;
use crate::core::supply_chain::attestations::{self, test_envelopes::attestation};
use crate::core::supply_chain::bundle::{
    BUNDLE_V0_1, BUNDLE_V0_2, BUNDLE_V0_3, BUNDLE_V0_3_LEGACY, Bundle, BundleError,
};
use crate::core::supply_chain::envelope::{
    self, DSSE, Envelope, IN_TOTO, Layer, Malformed, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Statement, pae,
};
use crate::core::supply_chain::keys::test_keys::{SigningKey, Trusted};
use crate::core::supply_chain::keys::{KeyError, TrustedKey};
use crate::core::supply_chain::provenance::{self, SLSA_V1, SLSA_V02};
use crate::core::supply_chain::scan::{self, VULN_V1};
use crate::core::supply_chain::signatures::COSIGN_SIGN_V1;
use crate::core::supply_chain::{Finding, signatures};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const REPOSITORY: &str = "https://github.com/acme/shop";
const COMMIT: &str = "3f2c9a1b4d5e6f708192a3b4c5d6e7f809102132";

/// The key the policies trust, and one they do not: made once per run.
static TRUSTED: LazyLock<SigningKey> = LazyLock::new(SigningKey::generate);
static STRANGER: LazyLock<SigningKey> = LazyLock::new(SigningKey::generate);

fn keys() -> Vec<TrustedKey> {
    vec![TRUSTED.trusted("release")]
}

const SIGNATURE_REASONS: &[FindingReason] = &[
    FindingReason::Verified,
    FindingReason::SignatureMissing,
    FindingReason::WrongDigest,
    FindingReason::NotEnoughSignatures,
    FindingReason::UntrustedSignature,
    FindingReason::MalformedSignature,
    FindingReason::MalformedBundle,
    FindingReason::UnsupportedBundle,
];
const ATTESTATION_REASONS: &[FindingReason] = &[
    FindingReason::WrongSubject,
    FindingReason::UnknownKey,
    FindingReason::UntrustedAttestation,
    FindingReason::MalformedAttestation,
    FindingReason::MalformedBundle,
    FindingReason::UnsupportedBundle,
    FindingReason::AttestationMissing,
];
const PROVENANCE_REASONS: &[FindingReason] = &[
    FindingReason::Verified,
    FindingReason::SourceMissing,
    FindingReason::BuilderMismatch,
    FindingReason::RepositoryMismatch,
    FindingReason::RevisionMismatch,
    FindingReason::WrongSubject,
    FindingReason::UnknownKey,
    FindingReason::UntrustedAttestation,
    FindingReason::MalformedAttestation,
    FindingReason::MalformedBundle,
    FindingReason::UnsupportedBundle,
    FindingReason::AttestationMissing,
];
const SCAN_REASONS: &[FindingReason] = &[
    FindingReason::Verified,
    FindingReason::VulnerabilitiesFound,
    FindingReason::WrongSubject,
    FindingReason::UnknownKey,
    FindingReason::UntrustedAttestation,
    FindingReason::MalformedAttestation,
    FindingReason::MalformedBundle,
    FindingReason::UnsupportedBundle,
    FindingReason::AttestationMissing,
];

/// Proptest's defaults but for the number of cases, and no regression files
/// (a failure found is kept as a plain unit test below).
fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// A finding as the gates read it: a reason of its check, a message, and a
/// verdict that agrees with the reason (a check never says Unavailable:
/// only the registry does).
fn reasoned(finding: &Finding, reasons: &[FindingReason]) -> Result<(), TestCaseError> {
    prop_assert!(
        reasons.contains(&finding.reason),
        "reason {:?} is none of {reasons:?}",
        finding.reason
    );
    prop_assert!(
        !finding.message.trim().is_empty(),
        "{} has no message",
        finding.reason
    );
    prop_assert_eq!(
        finding.verdict == SupplyChainVerdict::Verified,
        finding.reason == FindingReason::Verified
    );
    prop_assert_ne!(finding.verdict, SupplyChainVerdict::Unavailable);
    Ok(())
}

/// A rejection the parser makes (`known`), with a message that says something.
fn rejected(error: &(impl Display + Debug), known: bool) -> Result<(), TestCaseError> {
    prop_assert!(known, "{error:?} is not a rejection of this parser");
    prop_assert!(!error.to_string().trim().is_empty(), "{error:?} says nothing");
    Ok(())
}

fn malformed(error: &Malformed, known: bool) -> Result<(), TestCaseError> {
    if let Malformed::Json { detail, .. } = error {
        prop_assert!(!detail.trim().is_empty(), "{error:?} has no detail");
    }
    rejected(error, known)
}

fn key_rejected(error: &KeyError, known: bool) -> Result<(), TestCaseError> {
    if let KeyError::NotPem(detail) = error {
        prop_assert!(!detail.trim().is_empty(), "{error:?} has no detail");
    }
    rejected(error, known)
}

// Strategies: raw bytes, arbitrary JSON, and JSON shaped like each format
// with fields missing, of the wrong type, huge or nested too deep.

/// Any bytes, short ones (and none) as often as long ones.
fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..4), vec(any::<u8>(), 0..512)].boxed()
}

/// The field names of the formats read, so that arbitrary objects hit them.
const FIELDS: &[&str] = &[
    "critical",
    "image",
    "docker-manifest-digest",
    "payloadType",
    "payload",
    "signatures",
    "keyid",
    "sig",
    "subject",
    "digest",
    "sha256",
    "predicateType",
    "predicate",
    "buildDefinition",
    "resolvedDependencies",
    "runDetails",
    "builder",
    "id",
    "uri",
    "gitCommit",
    "sha1",
    "materials",
    "invocation",
    "configSource",
    "metadata",
    "scanFinishedOn",
    "scanner",
    "result",
    "SchemaVersion",
    "Results",
    "Vulnerabilities",
    "VulnerabilityID",
    "PkgName",
    "Severity",
    "matches",
    "vulnerability",
    "severity",
    "artifact",
    "name",
];

/// Strings as they come: the formats' own words, digests and commits cut
/// anywhere, base64-looking text, and anything at all.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        select(vec![
            IN_TOTO,
            SLSA_V1,
            SLSA_V02,
            VULN_V1,
            DIGEST,
            OTHER,
            REPOSITORY,
            COMMIT,
            "CRITICAL",
            "Negligible",
            "2026-12-01T10:00:00Z",
            "",
        ])
        .prop_map(str::to_owned),
        "sha256:\\PC{0,70}",
        "[0-9a-f]{0,11}\\PC{0,4}",
        "[A-Za-z0-9+/=_-]{0,40}",
    ]
    .boxed()
}

fn string() -> BoxedStrategy<Value> {
    text().prop_map(Value::String).boxed()
}

fn json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        string(),
    ];
    let key = prop_oneof![3 => select(FIELDS).prop_map(str::to_owned), 1 => any::<String>()];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `[[[…null…]]]`, `depth` deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

/// What a field holds instead of what it should: another type, too much,
/// nested deeper than serde_json reads (128).
fn wrong() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => json(),
        1 => (1usize..100_000).prop_map(|n| Value::String("A".repeat(n))),
        1 => (1usize..5_000).prop_map(|n| Value::Array(vec![json!({"id": "x"}); n])),
        1 => (100usize..200).prop_map(nested),
    ]
    .boxed()
}

/// A field of a shaped object: mostly right, else missing or wrong.
fn field(right: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![5 => right.prop_map(Some), 1 => Just(None), 2 => wrong().prop_map(Some)].boxed()
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect(),
    )
}

fn list(of: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    vec(of, 0..4).prop_map(Value::Array).boxed()
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a Value serialises")
}

fn simple_signing_payload() -> BoxedStrategy<Value> {
    let named = prop_oneof![3 => Just(Value::from(DIGEST)), 1 => string()].boxed();
    let image = field(named).prop_map(|digest| object(vec![("docker-manifest-digest", digest)]));
    let critical = (field(image.boxed()), field(string()))
        .prop_map(|(image, kind)| object(vec![("image", image), ("type", kind)]));
    (field(critical.boxed()), field(json()))
        .prop_map(|(critical, optional)| object(vec![("critical", critical), ("optional", optional)]))
        .boxed()
}

/// An in-toto statement of `predicate_type` (mostly): subject a list of
/// digest sets (or a string, …).
fn statement(predicate_type: &'static str, predicate: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let algorithm = prop_oneof![select(vec!["sha256", "sha512"]).prop_map(str::to_owned), text()];
    let hex = prop_oneof![
        4 => Just(Value::from(DIGEST.trim_start_matches("sha256:"))),
        1 => "[0-9a-f]{0,11}\\PC{0,4}".prop_map(Value::from),
        1 => string(),
    ];
    let digest_set = btree_map(algorithm, wrong_or(hex.boxed()), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed();
    let subject = (field(string()), field(digest_set))
        .prop_map(|(name, digest)| object(vec![("name", name), ("digest", digest)]));
    let predicate_type = prop_oneof![
        3 => Just(Value::from(predicate_type)),
        1 => select(vec![SLSA_V1, SLSA_V02, VULN_V1, "https://example.com/other"]).prop_map(Value::from),
    ]
    .boxed();
    (
        field(list(subject.boxed())),
        field(predicate_type),
        field(predicate),
    )
        .prop_map(|(subject, predicate_type, predicate)| {
            object(vec![
                ("_type", Some(json!("https://in-toto.io/Statement/v1"))),
                ("subject", subject),
                ("predicateType", predicate_type),
                ("predicate", predicate),
            ])
        })
        .boxed()
}

fn wrong_or(right: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![3 => right, 1 => wrong()].boxed()
}

/// A DSSE envelope: payload base64 of a statement or not base64 at all,
/// payloadType in-toto or not, signatures a list or not.
fn envelope_json() -> BoxedStrategy<Value> {
    let payload = prop_oneof![
        3 => statement(SLSA_V1, json()).prop_map(|s| Value::String(STANDARD.encode(to_bytes(&s)))),
        2 => string(),
        1 => vec(any::<u8>(), 0..4).prop_map(|b| Value::String(STANDARD.encode(b))),
    ];
    let sig = prop_oneof![
        bytes().prop_map(|b| Value::String(STANDARD.encode(b))),
        string(),
        Just(Value::from("")),
    ];
    let signature = (field(string()), field(sig.boxed()))
        .prop_map(|(keyid, sig)| object(vec![("keyid", keyid), ("sig", sig)]));
    let payload_type = prop_oneof![Just(Value::from(IN_TOTO)), string()];
    (
        field(payload_type.boxed()),
        field(payload.boxed()),
        field(list(signature.boxed())),
    )
        .prop_map(|(payload_type, payload, signatures)| {
            object(vec![
                ("payloadType", payload_type),
                ("payload", payload),
                ("signatures", signatures),
            ])
        })
        .boxed()
}

/// A bundle: a media type of the four (mostly), verification material with
/// a key hint, a certificate or a chain (or several, or none) and log
/// entries of any shape, and a DSSE envelope or a message signature (or
/// both, or neither).
fn bundle_json() -> BoxedStrategy<Value> {
    let media_type = prop_oneof![
        4 => select(vec![BUNDLE_V0_1, BUNDLE_V0_2, BUNDLE_V0_3, BUNDLE_V0_3_LEGACY]).prop_map(Value::from),
        1 => string(),
    ];
    let b64 = prop_oneof![
        3 => bytes().prop_map(|b| Value::String(STANDARD.encode(b))),
        1 => string(),
    ]
    .boxed();
    let int64 = prop_oneof![
        any::<i64>().prop_map(|n| Value::String(n.to_string())),
        any::<i64>().prop_map(Value::from),
        string(),
    ]
    .boxed();
    let certificate = field(b64.clone()).prop_map(|raw| object(vec![("rawBytes", raw)]));
    let entry = (
        field(int64.clone()),
        field(b64.clone()),
        field(int64),
        field(b64.clone()),
    )
        .prop_map(|(index, key_id, time, body)| {
            object(vec![
                ("logIndex", index),
                ("logId", key_id.map(|k| json!({"keyId": k}))),
                ("integratedTime", time),
                ("canonicalizedBody", body),
            ])
        });
    let material = (
        proptest::option::of(field(string()).prop_map(|hint| object(vec![("hint", hint)]))),
        proptest::option::of(certificate.clone()),
        proptest::option::of(
            list(certificate.boxed()).prop_map(|certificates| json!({"certificates": certificates})),
        ),
        field(list(entry.boxed())),
    )
        .prop_map(|(key, certificate, chain, entries)| {
            object(vec![
                ("publicKey", key),
                ("certificate", certificate),
                ("x509CertificateChain", chain),
                ("tlogEntries", entries),
            ])
        });
    let message = (field(b64.clone()), field(b64)).prop_map(|(digest, signature)| {
        object(vec![
            (
                "messageDigest",
                digest.map(|d| json!({"algorithm": "SHA2_256", "digest": d})),
            ),
            ("signature", signature),
        ])
    });
    (
        field(media_type.boxed()),
        field(material.boxed()),
        proptest::option::of(envelope_json()),
        proptest::option::weighted(0.3, message),
    )
        .prop_map(|(media_type, material, envelope, message)| {
            object(vec![
                ("mediaType", media_type),
                ("verificationMaterial", material),
                ("dsseEnvelope", envelope),
                ("messageSignature", message),
            ])
        })
        .boxed()
}

/// Bundle layers: bytes, shaped bundles, and bundles of a statement of
/// `predicate_type` signed by the trusted key or another.
fn bundle_layer(predicate_type: &'static str, predicate: BoxedStrategy<Value>) -> BoxedStrategy<Layer> {
    let layer = |content: Vec<u8>| Layer {
        media_type: BUNDLE_V0_3.into(),
        annotations: Default::default(),
        content,
    };
    let shaped = prop_oneof![bytes(), bundle_json().prop_map(|v| to_bytes(&v))].prop_map(layer);
    let signed = (signer(), statement(predicate_type, predicate)).prop_map(move |(signer, statement)| {
        let key = signer.key().unwrap_or(&STRANGER);
        let bundle = hoist_testkit::signing::statement_bundle(key, &to_bytes(&statement), predicate_type);
        layer(bundle.layer().content)
    });
    prop_oneof![1 => shaped, 1 => signed].boxed()
}

/// A source entry of a provenance: uri and digest set.
fn dependency() -> BoxedStrategy<Value> {
    let uri = prop_oneof![
        select(vec![
            "git+https://github.com/acme/shop@refs/heads/main",
            "git+https://GitHub.com/acme/shop.git",
            "https://github.com/acme/other",
        ])
        .prop_map(Value::from),
        string(),
    ];
    let algorithm = select(vec!["gitCommit", "sha1", "sha256", "md5"]).prop_map(str::to_owned);
    let commit = wrong_or(prop_oneof![Just(Value::from(COMMIT)), string()].boxed());
    let digest = btree_map(algorithm, commit, 0..3).prop_map(|m| Value::Object(m.into_iter().collect()));
    (field(uri.boxed()), field(digest.boxed()))
        .prop_map(|(uri, digest)| object(vec![("uri", uri), ("digest", digest)]))
        .boxed()
}

fn builder() -> BoxedStrategy<Value> {
    field(string()).prop_map(|id| object(vec![("id", id)])).boxed()
}

fn slsa_v1() -> BoxedStrategy<Value> {
    let definition = field(list(dependency()))
        .prop_map(|dependencies| object(vec![("resolvedDependencies", dependencies)]));
    let run = field(builder()).prop_map(|builder| object(vec![("builder", builder)]));
    (field(definition.boxed()), field(run.boxed()))
        .prop_map(|(definition, run)| object(vec![("buildDefinition", definition), ("runDetails", run)]))
        .boxed()
}

fn slsa_v02() -> BoxedStrategy<Value> {
    let invocation = field(dependency()).prop_map(|source| object(vec![("configSource", source)]));
    (
        field(builder()),
        field(list(dependency())),
        field(invocation.boxed()),
    )
        .prop_map(|(builder, materials, invocation)| {
            object(vec![
                ("builder", builder),
                ("materials", materials),
                ("invocation", invocation),
            ])
        })
        .boxed()
}

fn severity_text() -> BoxedStrategy<Value> {
    prop_oneof![
        select(vec!["CRITICAL", "High", "medium", "Negligible", "UNKNOWN"]).prop_map(Value::from),
        string(),
    ]
    .boxed()
}

/// Trivy: Results (null, …) of Vulnerabilities (severity a number, …).
fn trivy() -> BoxedStrategy<Value> {
    let vulnerability =
        (field(string()), field(string()), field(severity_text())).prop_map(|(id, package, severity)| {
            object(vec![
                ("VulnerabilityID", id),
                ("PkgName", package),
                ("Severity", severity),
            ])
        });
    let result = field(list(vulnerability.boxed())).prop_map(|v| object(vec![("Vulnerabilities", v)]));
    (field(Just(json!(2)).boxed()), field(list(result.boxed())))
        .prop_map(|(schema, results)| object(vec![("SchemaVersion", schema), ("Results", results)]))
        .boxed()
}

/// Grype: matches (missing vulnerability, …).
fn grype() -> BoxedStrategy<Value> {
    let vulnerability = (field(string()), field(severity_text()))
        .prop_map(|(id, severity)| object(vec![("id", id), ("severity", severity)]));
    let artifact = (field(string()), field(string()))
        .prop_map(|(name, version)| object(vec![("name", name), ("version", version)]));
    let found =
        (field(vulnerability.boxed()), field(artifact.boxed())).prop_map(|(vulnerability, artifact)| {
            object(vec![("vulnerability", vulnerability), ("artifact", artifact)])
        });
    field(list(found.boxed()))
        .prop_map(|matches| object(vec![("matches", matches)]))
        .boxed()
}

/// Cosign's vulnerability predicate around either report.
fn scan_predicate() -> BoxedStrategy<Value> {
    let finished = prop_oneof![
        3 => select(vec![
            "2026-12-01T10:00:00Z",
            "2026-12-01T10:00:00.123456789+02:00",
            "9999-12-31T23:59:59Z",
        ])
        .prop_map(Value::from),
        1 => select(vec!["-009999-01-01T00:00:00Z", "2026-13-01T10:00:00Z", "2026-12-01"]).prop_map(Value::from),
        1 => string(),
    ];
    let metadata = field(finished.boxed()).prop_map(|f| object(vec![("scanFinishedOn", f)]));
    let result = prop_oneof![trivy(), grype(), json()];
    let scanner = (field(string()), field(result.boxed()))
        .prop_map(|(uri, result)| object(vec![("uri", uri), ("result", result)]));
    (field(scanner.boxed()), field(metadata.boxed()))
        .prop_map(|(scanner, metadata)| object(vec![("scanner", scanner), ("metadata", metadata)]))
        .boxed()
}

fn media_type() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(vec![SIMPLE_SIGNING, DSSE]).prop_map(str::to_owned),
        1 => text(),
    ]
    .boxed()
}

/// A DSSE layer around `payload`, signed by `key` as `keyid` (or unsigned).
fn dsse(key: Option<&SigningKey>, keyid: &str, payload_type: &str, payload: &[u8]) -> Layer {
    let signatures = key.map_or_else(Vec::new, |key| {
        vec![json!({"keyid": keyid, "sig": STANDARD.encode(key.sign(&pae(payload_type, payload)))})]
    });
    Layer {
        media_type: DSSE.into(),
        annotations: Default::default(),
        content: to_bytes(&json!({
            "payloadType": payload_type,
            "payload": STANDARD.encode(payload),
            "signatures": signatures,
        })),
    }
}

/// Who signs what a strategy makes.
#[derive(Debug, Clone, Copy)]
enum Signer {
    Trusted,
    Stranger,
    Nobody,
}

impl Signer {
    fn key(self) -> Option<&'static SigningKey> {
        match self {
            Signer::Trusted => Some(&TRUSTED),
            Signer::Stranger => Some(&STRANGER),
            Signer::Nobody => None,
        }
    }
}

fn signer() -> impl Strategy<Value = Signer> {
    prop_oneof![
        3 => Just(Signer::Trusted),
        1 => Just(Signer::Stranger),
        1 => Just(Signer::Nobody),
    ]
}

/// Attestation layers: bytes, shaped envelopes, shaped statements signed,
/// and well-formed statements about the digest (mostly) signed by the
/// trusted key (mostly) around `predicate`, so that the checks read it.
fn attestation_layer(predicate_type: &'static str, predicate: BoxedStrategy<Value>) -> BoxedStrategy<Layer> {
    let raw = (media_type(), bytes()).prop_map(|(media_type, content)| Layer {
        media_type,
        annotations: Default::default(),
        content,
    });
    let shaped = envelope_json().prop_map(|envelope| Layer {
        media_type: DSSE.into(),
        annotations: Default::default(),
        content: to_bytes(&envelope),
    });
    let payload = prop_oneof![
        3 => statement(predicate_type, predicate.clone()).prop_map(|s| to_bytes(&s)),
        1 => bytes(),
    ];
    let signed = (signer(), text(), payload)
        .prop_map(|(signer, keyid, payload)| dsse(signer.key(), &keyid, IN_TOTO, &payload));
    let key = prop_oneof![4 => Just(Signer::Trusted), 1 => Just(Signer::Stranger)];
    let about = prop_oneof![
        4 => Just(DIGEST.to_owned()),
        1 => Just(OTHER.to_owned()),
        1 => "sha256:[0-9a-f]{0,11}\\PC{0,4}",
    ];
    let readable = (key, text(), about, predicate).prop_map(move |(signer, keyid, about, predicate)| {
        let key = signer.key().expect("a signer");
        attestation(key, &keyid, &about, predicate_type, predicate)
    });
    let bundled = bundle_layer(predicate_type, predicate_strategy_of(predicate_type));
    prop_oneof![1 => raw, 1 => shaped, 2 => signed, 4 => readable, 1 => bundled].boxed()
}

/// The predicates a bundle strategy of `predicate_type` signs.
fn predicate_strategy_of(predicate_type: &str) -> BoxedStrategy<Value> {
    match predicate_type {
        SLSA_V1 => slsa_v1(),
        SLSA_V02 => slsa_v02(),
        VULN_V1 => scan_predicate(),
        _ => json(),
    }
}

fn signature_layer() -> BoxedStrategy<Layer> {
    let raw = (
        media_type(),
        proptest::option::of(text()),
        prop_oneof![bytes(), json().prop_map(|v| to_bytes(&v))],
    )
        .prop_map(|(media_type, signature, content)| Layer {
            media_type,
            annotations: signature
                .map(|s| (SIGNATURE_ANNOTATION.to_owned(), s))
                .into_iter()
                .collect(),
            content,
        });
    let signed = (signer(), simple_signing_payload()).prop_map(|(signer, payload)| {
        let content = to_bytes(&payload);
        let signature = signer
            .key()
            .map_or_else(|| b"unsigned".to_vec(), |key| key.sign(&content));
        Layer {
            media_type: SIMPLE_SIGNING.into(),
            annotations: [(SIGNATURE_ANNOTATION.to_owned(), STANDARD.encode(signature))].into(),
            content,
        }
    });
    let bundled = bundle_layer(COSIGN_SIGN_V1, Just(json!({})).boxed());
    prop_oneof![1 => raw, 3 => signed, 1 => bundled].boxed()
}

fn digest() -> BoxedStrategy<String> {
    prop_oneof![3 => Just(DIGEST.to_owned()), 1 => text()].boxed()
}

fn source() -> BoxedStrategy<Option<Source>> {
    let repository = prop_oneof![Just(REPOSITORY.to_owned()), text()];
    let revision = prop_oneof![Just(COMMIT.to_owned()), text()];
    proptest::option::weighted(
        0.9,
        (repository, revision).prop_map(|(repository, revision)| Source {
            repository,
            revision,
            build_id: None,
            build_url: None,
            built_at: None,
            committed_at: None,
        }),
    )
    .boxed()
}

// Mutations of valid signed material.

/// A change to a run of bytes.
#[derive(Debug, Clone)]
enum Change {
    Flip {
        at: Index,
        bit: u8,
    },
    Truncate(Index),
    /// Truncated to nothing, the edge a uniform cut rarely hits.
    Emptied,
    Append(Vec<u8>),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Change::Flip { at, bit }),
        any::<Index>().prop_map(Change::Truncate),
        Just(Change::Emptied),
        vec(any::<u8>(), 1..16).prop_map(Change::Append),
    ]
}

fn changed(mut bytes: Vec<u8>, change: &Change) -> Vec<u8> {
    match change {
        Change::Flip { at, bit } => {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
        }
        Change::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
        Change::Emptied => bytes.clear(),
        Change::Append(extra) => bytes.extend_from_slice(extra),
    }
    bytes
}

/// Base64 of the same bytes written otherwise.
#[derive(Debug, Clone)]
enum Encoding {
    UrlSafe,
    Unpadded,
    Broken(Index),
    Spaced(String),
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::UrlSafe),
        Just(Encoding::Unpadded),
        any::<Index>().prop_map(Encoding::Broken),
        "[ \t\r\n]{1,3}".prop_map(Encoding::Spaced),
    ]
}

fn encoded(bytes: &[u8], encoding: &Encoding) -> String {
    match encoding {
        Encoding::UrlSafe => URL_SAFE.encode(bytes),
        Encoding::Unpadded => STANDARD_NO_PAD.encode(bytes),
        Encoding::Broken(at) => {
            let mut text = STANDARD.encode(bytes);
            text.insert(at.index(text.len() + 1), '\n');
            text
        }
        Encoding::Spaced(space) => format!("{space}{}{space}", STANDARD.encode(bytes)),
    }
}

#[derive(Debug, Clone)]
enum SignatureMutation {
    Payload(Change),
    Signature(Change),
    SignedByStranger,
    /// The trusted key's signature of a payload naming another digest.
    SignatureOf(String),
    /// The payload names another digest; the signature stays.
    Names(String),
    Reencoded(Encoding),
}

fn signature_mutation() -> impl Strategy<Value = SignatureMutation> {
    prop_oneof![
        3 => change().prop_map(SignatureMutation::Payload),
        2 => change().prop_map(SignatureMutation::Signature),
        1 => Just(SignatureMutation::SignedByStranger),
        1 => digest().prop_map(SignatureMutation::SignatureOf),
        1 => digest().prop_map(SignatureMutation::Names),
        2 => encoding().prop_map(SignatureMutation::Reencoded),
    ]
}

fn simple_signing_payload_of(reference: &str, digest: &str) -> Vec<u8> {
    to_bytes(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
}

fn signature_layer_of(content: Vec<u8>, signature: String) -> Layer {
    Layer {
        media_type: SIMPLE_SIGNING.into(),
        annotations: [(SIGNATURE_ANNOTATION.to_owned(), signature)].into(),
        content,
    }
}

#[derive(Debug, Clone)]
enum EnvelopeMutation {
    /// The envelope's JSON itself.
    Envelope(Change),
    Statement(Change),
    Signature(Change),
    PayloadType(String),
    SignedByStranger(String),
    /// The trusted key's signature of a statement about another digest.
    SignatureOf(String),
    /// The statement is about another digest; the signature stays.
    About(String),
    PayloadReencoded(Encoding),
    SignatureReencoded(Encoding),
    /// One more signature beside the trusted one: the signed bytes stay.
    Countersigned(String),
}

fn envelope_mutation() -> impl Strategy<Value = EnvelopeMutation> {
    prop_oneof![
        3 => change().prop_map(EnvelopeMutation::Envelope),
        3 => change().prop_map(EnvelopeMutation::Statement),
        2 => change().prop_map(EnvelopeMutation::Signature),
        1 => text().prop_map(EnvelopeMutation::PayloadType),
        1 => text().prop_map(EnvelopeMutation::SignedByStranger),
        1 => digest().prop_map(EnvelopeMutation::SignatureOf),
        1 => digest().prop_map(EnvelopeMutation::About),
        1 => encoding().prop_map(EnvelopeMutation::PayloadReencoded),
        1 => encoding().prop_map(EnvelopeMutation::SignatureReencoded),
        1 => text().prop_map(EnvelopeMutation::Countersigned),
    ]
}

fn provenance_of(commit: &str) -> Value {
    json!({
        "buildDefinition": {
            "resolvedDependencies": [{"uri": format!("git+{REPOSITORY}@refs/heads/main"), "digest": {"gitCommit": commit}}]
        },
        "runDetails": {"builder": {"id": "https://github.com/acme/shop/.github/workflows/release.yml"}}
    })
}

fn statement_about(name: &str, digest: &str) -> Vec<u8> {
    to_bytes(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": SLSA_V1,
        "predicate": provenance_of(COMMIT),
    }))
}

/// The envelope of `layer` with `edit` applied to its JSON.
fn edited(layer: &Layer, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(&layer.content).expect("the original parses");
    edit(&mut envelope);
    to_bytes(&envelope)
}

fn mutated_envelope(original: &Layer, mutation: &EnvelopeMutation) -> Layer {
    let envelope = Envelope::parse(&original.content).expect("the original parses");
    let (_, signature) = envelope.signatures[0].clone();
    let content = match mutation {
        EnvelopeMutation::Envelope(change) => changed(original.content.clone(), change),
        EnvelopeMutation::Statement(change) => edited(original, |e| {
            e["payload"] = STANDARD.encode(changed(envelope.payload.clone(), change)).into()
        }),
        EnvelopeMutation::Signature(change) => edited(original, |e| {
            e["signatures"][0]["sig"] = STANDARD.encode(changed(signature.clone(), change)).into()
        }),
        EnvelopeMutation::PayloadType(payload_type) => {
            edited(original, |e| e["payloadType"] = payload_type.clone().into())
        }
        EnvelopeMutation::SignedByStranger(keyid) => {
            dsse(Some(&STRANGER), keyid, IN_TOTO, &envelope.payload).content
        }
        EnvelopeMutation::SignatureOf(digest) => {
            let other = TRUSTED.sign(&pae(IN_TOTO, &statement_about("r/other", digest)));
            edited(original, |e| {
                e["signatures"][0]["sig"] = STANDARD.encode(other).into()
            })
        }
        EnvelopeMutation::About(digest) => edited(original, |e| {
            e["payload"] = STANDARD.encode(statement_about("r/shop", digest)).into()
        }),
        EnvelopeMutation::PayloadReencoded(encoding) => edited(original, |e| {
            e["payload"] = encoded(&envelope.payload, encoding).into()
        }),
        EnvelopeMutation::SignatureReencoded(encoding) => edited(original, |e| {
            e["signatures"][0]["sig"] = encoded(&signature, encoding).into()
        }),
        EnvelopeMutation::Countersigned(keyid) => {
            let other = STRANGER.sign(&envelope.pae());
            edited(original, |e| {
                e["signatures"]
                    .as_array_mut()
                    .expect("a list")
                    .push(json!({"keyid": keyid, "sig": STANDARD.encode(other)}))
            })
        }
    };
    Layer {
        content,
        ..original.clone()
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn a_simple_signing_layer_of_any_bytes_is_opened_or_named_malformed(
        media_type in media_type(),
        signature in proptest::option::of(prop_oneof![text(), bytes().prop_map(|b| STANDARD.encode(b))]),
        content in prop_oneof![bytes(), simple_signing_payload().prop_map(|v| to_bytes(&v)), json().prop_map(|v| to_bytes(&v))],
    ) {
        let layer = Layer {
            media_type: media_type.clone(),
            annotations: signature.map(|s| (SIGNATURE_ANNOTATION.to_owned(), s)).into_iter().collect(),
            content,
        };
        match envelope::simple_signing(&layer) {
            Ok(_) => prop_assert_eq!(media_type, SIMPLE_SIGNING),
            Err(error) => {
                let known = matches!(
                    &error,
                    Malformed::MediaType(_)
                        | Malformed::NoSignature
                        | Malformed::Base64 { what: "signature" }
                        | Malformed::Json { what: "payload", .. }
                );
                malformed(&error, known)?;
                if media_type != SIMPLE_SIGNING {
                    prop_assert_eq!(error, Malformed::MediaType(media_type));
                }
            }
        }
    }

    #[test]
    fn an_envelope_of_any_bytes_and_its_statement_are_read_or_named_malformed(
        content in prop_oneof![bytes(), envelope_json().prop_map(|v| to_bytes(&v)), json().prop_map(|v| to_bytes(&v))],
    ) {
        match Envelope::parse(&content) {
            Ok(envelope) => {
                prop_assert!(!envelope.signatures.is_empty());
                if let Err(error) = Statement::parse(&envelope) {
                    let known = matches!(
                        &error,
                        Malformed::PayloadType(_) | Malformed::Json { what: "statement", .. }
                    );
                    malformed(&error, known)?;
                }
            }
            Err(error) => {
                let known = matches!(
                    &error,
                    Malformed::Json { what: "envelope", .. }
                        | Malformed::Base64 { what: "payload" | "signature" }
                        | Malformed::Unsigned
                );
                malformed(&error, known)?;
            }
        }
    }

    #[test]
    fn a_bundle_of_any_bytes_is_read_or_named_malformed(
        content in prop_oneof![bytes(), bundle_json().prop_map(|v| to_bytes(&v)), json().prop_map(|v| to_bytes(&v))],
    ) {
        match Bundle::parse(&content) {
            Ok(bundle) => prop_assert!(!bundle.signed().is_empty()),
            Err(error) => {
                let known = match &error {
                    BundleError::Json(detail) => !detail.trim().is_empty(),
                    BundleError::UnsupportedMediaType(media_type) => {
                        ![BUNDLE_V0_1, BUNDLE_V0_2, BUNDLE_V0_3, BUNDLE_V0_3_LEGACY].contains(&media_type.as_str())
                    }
                    BundleError::Content(_) | BundleError::Material(_) | BundleError::Unsigned => true,
                };
                rejected(&error, known)?;
            }
        }
    }

    #[test]
    fn a_statement_of_any_payload_is_read_or_named_malformed(
        payload_type in prop_oneof![3 => Just(IN_TOTO.to_owned()), 1 => text()],
        payload in prop_oneof![
            bytes(),
            statement(VULN_V1, prop_oneof![json(), slsa_v1(), scan_predicate()].boxed()).prop_map(|v| to_bytes(&v)),
            json().prop_map(|v| to_bytes(&v)),
        ],
    ) {
        let envelope = Envelope { payload_type: payload_type.clone(), payload, signatures: Vec::new() };
        match Statement::parse(&envelope) {
            Ok(statement) => {
                prop_assert_eq!(payload_type, IN_TOTO);
                prop_assert!(statement.subjects.iter().all(|s| s.starts_with("sha256:")));
            }
            Err(error) => {
                let known = matches!(
                    &error,
                    Malformed::PayloadType(_) | Malformed::Json { what: "statement", .. }
                );
                malformed(&error, known)?;
                if payload_type != IN_TOTO {
                    prop_assert_eq!(error, Malformed::PayloadType(payload_type));
                }
            }
        }
    }

    #[test]
    fn a_severity_of_any_text_is_one_of_the_five(text in any::<String>()) {
        let severity = scan::severity(&text);
        let known = ["critical", "high", "medium", "moderate", "low", "negligible"];
        prop_assert_eq!(
            severity == Severity::Unknown,
            !known.contains(&text.to_ascii_lowercase().as_str())
        );
        prop_assert_eq!(severity, scan::severity(&text.to_ascii_uppercase()));
    }

    #[test]
    fn a_key_of_any_text_is_refused_as_not_pem(text in any::<String>()) {
        match TrustedKey::from_pem("k", &text) {
            Ok(key) => prop_assert!(false, "{text:?} is read as key {key:?}"),
            Err(error) => key_rejected(&error, matches!(error, KeyError::NotPem(_)))?,
        }
    }

    #[test]
    fn a_pem_block_of_any_label_and_body_is_a_public_key_or_refused(
        label in prop_oneof![
            select(vec!["PUBLIC KEY", "EC PRIVATE KEY", "CERTIFICATE", "public key"]).prop_map(str::to_owned),
            "[A-Z ]{0,20}",
        ],
        body in prop_oneof![bytes(), Just(Vec::new())],
        spacing in "[ \t\r\n]{0,3}",
    ) {
        let text = format!(
            "{spacing}-----BEGIN {label}-----\n{}\n-----END {label}-----{spacing}",
            STANDARD.encode(&body)
        );
        match TrustedKey::from_pem("k", &text) {
            Ok(_) => prop_assert_eq!(label, "PUBLIC KEY"),
            Err(error) => {
                let known = matches!(
                    &error,
                    KeyError::NotPem(_) | KeyError::WrongBlock(_) | KeyError::Unsupported
                );
                key_rejected(&error, known)?;
                if let KeyError::WrongBlock(tag) = &error {
                    prop_assert_ne!(tag, "PUBLIC KEY");
                }
            }
        }
    }

    #[test]
    fn a_key_of_any_der_is_refused_as_unsupported(der in bytes()) {
        match TrustedKey::from_der("k", &der) {
            Ok(_) => prop_assert!(false, "random bytes read as a key: {der:?}"),
            Err(error) => key_rejected(&error, error == KeyError::Unsupported)?,
        }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn the_signatures_check_of_any_layers_names_its_reason(
        layers in vec(signature_layer(), 0..4),
        digest in digest(),
        min in 1usize..3,
    ) {
        let finding = signatures::check(&digest, &layers, &keys(), None, min);
        reasoned(&finding, SIGNATURE_REASONS)?;
        if finding.verdict == SupplyChainVerdict::Verified {
            prop_assert!(finding.signed_by.len() >= min);
        }
    }

    #[test]
    fn an_attestation_of_any_layers_passes_only_signed_and_about_the_digest(
        layers in vec(
            prop_oneof![
                attestation_layer(SLSA_V1, slsa_v1()),
                attestation_layer(VULN_V1, scan_predicate()),
                attestation_layer(SLSA_V1, json()),
            ],
            0..4,
        ),
        digest in digest(),
    ) {
        let keys = keys();
        match attestations::verified(&digest, &layers, &keys, None, &[SLSA_V1, VULN_V1], "attestation") {
            Ok(attested) => {
                prop_assert!(!attested.is_empty());
                for attestation in attested {
                    prop_assert_eq!(attestation.signed_by, vec!["release".to_owned()]);
                    prop_assert!(attestation.statement.subjects.contains(&digest));
                }
            }
            Err(finding) => {
                reasoned(&finding, ATTESTATION_REASONS)?;
                prop_assert_eq!(finding.verdict, SupplyChainVerdict::Failed);
            }
        }
    }

    #[test]
    fn the_provenance_check_of_any_layers_names_its_reason(
        v1 in vec(attestation_layer(SLSA_V1, slsa_v1()), 0..3),
        v02 in vec(attestation_layer(SLSA_V02, slsa_v02()), 0..3),
        digest in digest(),
        builder in proptest::option::weighted(0.3, text()),
        source in source(),
    ) {
        let layers = [v1, v02].concat();
        for predicate in [ProvenancePredicate::SlsaV1, ProvenancePredicate::SlsaV02] {
            let finding = provenance::check(
                &digest, &layers, &keys(), None, predicate, builder.as_deref(), source.as_ref(),
            );
            reasoned(&finding, PROVENANCE_REASONS)?;
        }
    }

    #[test]
    fn the_scan_check_of_any_layers_names_its_reason(
        layers in vec(attestation_layer(VULN_V1, scan_predicate()), 0..4),
        digest in digest(),
        max in select(vec![Severity::Unknown, Severity::Low, Severity::Medium, Severity::High, Severity::Critical]),
        ignore in vec(text(), 0..3),
    ) {
        let finding = scan::check(&digest, &layers, &keys(), None, max, &ignore);
        reasoned(&finding, SCAN_REASONS)?;
        prop_assert_eq!(
            finding.scanned_at.is_some(),
            matches!(finding.reason, FindingReason::Verified | FindingReason::VulnerabilitiesFound)
        );
    }

    #[test]
    fn a_changed_signature_layer_verifies_only_when_the_signed_bytes_are_the_same(
        mutation in signature_mutation(),
    ) {
        let content = simple_signing_payload_of("r/shop", DIGEST);
        let signature = TRUSTED.sign(&content);
        let mutated = match &mutation {
            SignatureMutation::Payload(change) => {
                signature_layer_of(changed(content.clone(), change), STANDARD.encode(&signature))
            }
            SignatureMutation::Signature(change) => {
                signature_layer_of(content.clone(), STANDARD.encode(changed(signature.clone(), change)))
            }
            SignatureMutation::SignedByStranger => {
                signature_layer_of(content.clone(), STANDARD.encode(STRANGER.sign(&content)))
            }
            SignatureMutation::SignatureOf(digest) => signature_layer_of(
                content.clone(),
                STANDARD.encode(TRUSTED.sign(&simple_signing_payload_of("r/other", digest))),
            ),
            SignatureMutation::Names(digest) => {
                signature_layer_of(simple_signing_payload_of("r/shop", digest), STANDARD.encode(&signature))
            }
            SignatureMutation::Reencoded(encoding) => {
                signature_layer_of(content.clone(), encoded(&signature, encoding))
            }
        };
        let finding = signatures::check(DIGEST, std::slice::from_ref(&mutated), &keys(), None, 1);
        reasoned(&finding, SIGNATURE_REASONS)?;
        let same = mutated.content == content
            && envelope::simple_signing(&mutated).is_ok_and(|(_, read)| read == signature);
        prop_assert_eq!(
            finding.verdict == SupplyChainVerdict::Verified,
            same,
            "{}: {}", finding.reason, finding.message
        );
    }

    #[test]
    fn a_changed_attestation_verifies_only_when_the_signed_bytes_are_the_same(
        mutation in envelope_mutation(),
    ) {
        let original = attestation(&TRUSTED, "", DIGEST, SLSA_V1, provenance_of(COMMIT));
        let envelope = Envelope::parse(&original.content).expect("the original parses");
        let mutated = mutated_envelope(&original, &mutation);
        let source = Source {
            repository: REPOSITORY.into(),
            revision: COMMIT.into(),
            build_id: None,
            build_url: None,
            built_at: None,
            committed_at: None,
        };
        let finding = provenance::check(
            DIGEST,
            std::slice::from_ref(&mutated),
            &keys(), None,
            ProvenancePredicate::SlsaV1,
            None,
            Some(&source),
        );
        reasoned(&finding, PROVENANCE_REASONS)?;
        let same = Envelope::parse(&mutated.content).is_ok_and(|read| {
            read.pae() == envelope.pae() && read.signatures.iter().any(|(_, s)| *s == envelope.signatures[0].1)
        });
        prop_assert_eq!(
            finding.verdict == SupplyChainVerdict::Verified,
            same,
            "{}: {}", finding.reason, finding.message
        );
    }

    #[test]
    fn a_changed_public_key_verifies_the_real_keys_signatures_only_while_it_holds_that_key(
        change in change(),
    ) {
        let pem = pem::parse(TRUSTED.public_pem()).expect("own key is PEM");
        let der = changed(pem.contents().to_vec(), &change);
        let message = b"payload";
        let signature = TRUSTED.sign(message);
        match TrustedKey::from_der("k", &der) {
            Ok(key) => {
                // A changed encoding may still hold the same key (aws-lc reads
                // an EC point's hybrid form 0x06/0x07 as well as 0x04): then it
                // verifies the real key's signatures and no one else's, under
                // a fingerprint of its own bytes.
                if key.verifies(message, &signature) {
                    prop_assert!(key.verifies(b"other", &TRUSTED.sign(b"other")));
                    prop_assert!(!key.verifies(message, &STRANGER.sign(message)));
                } else {
                    prop_assert_ne!(der.as_slice(), pem.contents());
                }
                prop_assert_eq!(key.fingerprint == TRUSTED.trusted("k").fingerprint, der == pem.contents());
            }
            Err(error) => key_rejected(&error, error == KeyError::Unsupported)?,
        }
    }
}

// Inputs the properties found: messages cut digests and commits at a byte,
// which panicked inside a character.

/// 11 hex digits and a 4-byte character across byte 19, where `short` cut.
const CUT_INSIDE_A_CHARACTER: &str = "sha256:00000000000🉢0";

#[test]
fn a_trusted_signature_naming_a_digest_with_a_wide_character_is_a_wrong_digest() {
    let content = simple_signing_payload_of("r/shop", CUT_INSIDE_A_CHARACTER);
    let layer = signature_layer_of(content.clone(), STANDARD.encode(TRUSTED.sign(&content)));
    let finding = signatures::check(DIGEST, &[layer], &keys(), None, 1);
    assert_eq!(finding.reason, FindingReason::WrongDigest);
    assert_eq!(
        finding.message,
        "a trusted signature names sha256:00000000000🉢, not sha256:111111111111: it was copied from another image"
    );
}

#[test]
fn a_statement_about_a_digest_with_a_wide_character_is_a_wrong_subject() {
    let layer = attestation(&TRUSTED, "", CUT_INSIDE_A_CHARACTER, SLSA_V1, json!({}));
    let finding =
        attestations::verified(DIGEST, &[layer], &keys(), None, &[SLSA_V1], "provenance").unwrap_err();
    assert_eq!(finding.reason, FindingReason::WrongSubject);
    assert_eq!(
        finding.message,
        "the provenance signed by a trusted key is about sha256:00000000000🉢, not sha256:111111111111"
    );
}

#[test]
fn a_provenance_commit_with_a_wide_character_is_a_revision_mismatch() {
    let layer = attestation(&TRUSTED, "", DIGEST, SLSA_V1, provenance_of("00000000000🉢0"));
    let source = Source {
        repository: REPOSITORY.into(),
        revision: COMMIT.into(),
        build_id: None,
        build_url: None,
        built_at: None,
        committed_at: None,
    };
    let finding = provenance::check(
        DIGEST,
        &[layer],
        &keys(),
        None,
        ProvenancePredicate::SlsaV1,
        None,
        Some(&source),
    );
    assert_eq!(finding.reason, FindingReason::RevisionMismatch);
    assert_eq!(
        finding.message,
        "image sha256:111111111111 was built from 00000000000🉢…, Artifact says 3f2c9a1b4d5e…"
    );
}
