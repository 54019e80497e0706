//! Bundles in the shapes sigstore clients write them: protobuf JSON with
//! int64 as decimal strings and bytes as padded standard base64 (cosign,
//! sigstore-go), numbers and URL-safe base64 (which protobuf JSON parsers
//! also accept), and every field of the verification material.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::super::envelope::{IN_TOTO, pae};
use super::super::keys::test_keys::{SigningKey, Trusted};
use super::*;

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn parse(value: serde_json::Value) -> Result<Bundle, BundleError> {
    Bundle::parse(&serde_json::to_vec(&value).expect("JSON"))
}

/// A v0.2 message signature with a certificate chain and a Rekor entry
/// carrying an inclusion proof with its checkpoint, as sigstore-go's
/// examples have it.
#[test]
fn a_v0_2_message_signature_keeps_its_chain_log_entry_and_proof() {
    let bundle = parse(json!({
        "mediaType": BUNDLE_V0_2,
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": b64(b"leaf")}, {"rawBytes": b64(b"intermediate")}]},
            "tlogEntries": [{
                "logIndex": "27246492",
                "logId": {"keyId": b64(&[0xc0, 0xd2])},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": "1689177396",
                "inclusionProof": {
                    "logIndex": "23083061",
                    "rootHash": b64(b"root"),
                    "treeSize": "23083062",
                    "hashes": [b64(b"h1"), b64(b"h2")],
                    "checkpoint": {"envelope": "rekor.sigstore.dev - 2605736670972794746\n23083062\nroot\n\n\u{2014} rekor.sigstore.dev sig\n"}
                },
                "canonicalizedBody": b64(b"{\"kind\":\"hashedrekord\"}")
            }]
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&[0xa0; 32])},
            "signature": b64(b"signature")
        }
    }))
    .expect("parses");
    assert_eq!(bundle.version, BundleVersion::V0_2);
    assert_eq!(
        bundle.verification_material.signer,
        SignerMaterial::X509CertificateChain {
            certificates: vec![b"leaf".to_vec(), b"intermediate".to_vec()]
        }
    );
    assert_eq!(
        bundle.verification_material.tlog_entries,
        vec![TransparencyLogEntry {
            log_index: 27246492,
            log_id: vec![0xc0, 0xd2],
            kind_version: KindVersion {
                kind: "hashedrekord".into(),
                version: "0.0.1".into()
            },
            integrated_time: 1689177396,
            inclusion_promise: None,
            inclusion_proof: Some(InclusionProof {
                log_index: 23083061,
                root_hash: b"root".to_vec(),
                tree_size: 23083062,
                hashes: vec![b"h1".to_vec(), b"h2".to_vec()],
                checkpoint: "rekor.sigstore.dev - 2605736670972794746\n23083062\nroot\n\n\u{2014} rekor.sigstore.dev sig\n"
                    .into(),
            }),
            canonicalized_body: b"{\"kind\":\"hashedrekord\"}".to_vec(),
        }]
    );
    assert_eq!(
        bundle.verification_material.timestamp_verification_data,
        TimestampVerificationData::default()
    );
    let Content::MessageSignature(message) = &bundle.content else {
        panic!("a message signature: {:?}", bundle.content);
    };
    assert_eq!(message.signature, b"signature");
    let digest = message.message_digest.as_ref().expect("digest");
    assert_eq!(digest.algorithm, HashAlgorithm::Sha2_256);
    assert_eq!(digest.oci_digest(), Some(format!("sha256:{}", "a0".repeat(32))));
}

/// v0.3: a lone certificate, a log entry with a signed entry timestamp,
/// RFC 3161 timestamps; numbers where strings are usual and URL-safe
/// unpadded base64 are read as protobuf JSON parsers read them.
#[test]
fn a_v0_3_dsse_bundle_keeps_its_certificate_promise_and_timestamps() {
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
    let bundle = parse(json!({
        "mediaType": BUNDLE_V0_3,
        "verificationMaterial": {
            "certificate": {"rawBytes": URL_SAFE_NO_PAD.encode([0xfb, 0xff, 0x01])},
            "tlogEntries": [{
                "logIndex": 7,
                "logId": {"keyId": b64(b"log")},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "integratedTime": 1700000000,
                "inclusionPromise": {"signedEntryTimestamp": b64(b"set")},
                "canonicalizedBody": b64(b"body")
            }],
            "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": b64(b"tsr")}]}
        },
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": b64(b"sig"), "keyid": ""}]
        }
    }))
    .expect("parses");
    assert_eq!(bundle.version, BundleVersion::V0_3);
    let material = &bundle.verification_material;
    assert_eq!(
        material.signer,
        SignerMaterial::Certificate {
            raw_bytes: vec![0xfb, 0xff, 0x01]
        }
    );
    let entry = &material.tlog_entries[0];
    assert_eq!((entry.log_index, entry.integrated_time), (7, 1700000000));
    assert_eq!(
        entry.inclusion_promise,
        Some(InclusionPromise {
            signed_entry_timestamp: b"set".to_vec()
        })
    );
    assert_eq!(
        material.timestamp_verification_data.rfc3161_timestamps,
        vec![b"tsr".to_vec()]
    );
    let signed = bundle.signed();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].signature, b"sig");
    assert_eq!(signed[0].material, material);
    let Message::Dsse {
        envelope,
        pae: message,
    } = &signed[0].message
    else {
        panic!("a DSSE signature");
    };
    assert_eq!(envelope.payload, payload);
    assert_eq!(message, &pae(IN_TOTO, payload));
}

#[test]
fn each_media_type_names_its_version() {
    assert_eq!(BundleVersion::of(BUNDLE_V0_1), Some(BundleVersion::V0_1));
    assert_eq!(BundleVersion::of(BUNDLE_V0_2), Some(BundleVersion::V0_2));
    assert_eq!(BundleVersion::of(BUNDLE_V0_3), Some(BundleVersion::V0_3));
    assert_eq!(BundleVersion::of(BUNDLE_V0_3_LEGACY), Some(BundleVersion::V0_3));
    assert!(!is_bundle_media_type(
        "application/vnd.dev.sigstore.bundle.v0.4+json"
    ));
}

/// The keyed path: a v0.1 bundle with a public key hint, the shape
/// sigstore-go's public-key example has, and the message signature of an
/// artifact verified from its digest.
#[test]
fn keyed_signatures_verify_with_their_key_only() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#;
    let dsse = parse(json!({
        "mediaType": BUNDLE_V0_1,
        "verificationMaterial": {
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
            "publicKey": {"hint": "9a76331edc1cfd39"}
        },
        "dsseEnvelope": {
            "payload": b64(statement),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": b64(&key.sign(&pae(IN_TOTO, statement))), "keyid": ""}]
        }
    }))
    .expect("parses");
    assert_eq!(
        dsse.verification_material.signer,
        SignerMaterial::PublicKey {
            hint: "9a76331edc1cfd39".into()
        }
    );
    let signed = &dsse.signed()[0];
    assert!(signed.verifies_with(&key.trusted("release"), &[]));
    assert!(!signed.verifies_with(&other.trusted("other"), &[]));
    let release = [key.trusted("release")];
    let signers = dsse.keyed_signers(&release, &[]).expect("a keyed bundle");
    assert_eq!(signers.trusted, vec![&release[0]]);

    // A message signature is verified over the artifact the verifier names,
    // never over the digest the bundle claims.
    let artifact = b"the signed artifact";
    let claiming = |claimed: &[u8]| {
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": {"publicKey": {}},
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(claimed)},
                "signature": b64(&key.sign(artifact))
            }
        }))
        .expect("parses")
    };
    let bundle = claiming(&Sha256::digest(b"another artifact"));
    let signed = &bundle.signed()[0];
    assert!(signed.verifies_with(&key.trusted("release"), &Sha256::digest(artifact)));
    assert!(!signed.verifies_with(&other.trusted("other"), &Sha256::digest(artifact)));
    assert!(!signed.verifies_with(&key.trusted("release"), &Sha256::digest(b"another artifact")));
    assert!(!signed.verifies_with(&key.trusted("release"), b"not a digest"));
}

/// The hint tells a listed key that did not sign from a key not listed.
#[test]
fn a_hint_naming_a_listed_key_is_that_key() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let listed = [key.trusted("release")];
    let statement = b"{}";
    let bundle = |signer: &SigningKey, hint: &str| {
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": {"publicKey": {"hint": hint}},
            "dsseEnvelope": {
                "payload": b64(statement),
                "payloadType": IN_TOTO,
                "signatures": [{"sig": b64(&signer.sign(&pae(IN_TOTO, statement)))}]
            }
        }))
        .expect("parses")
    };
    let hint = listed[0].sigstore_hint();
    assert_eq!(hint.len(), 44);
    let unknown = bundle(&other, &other.trusted("x").sigstore_hint());
    let signers = unknown.keyed_signers(&listed, &[]).expect("keyed");
    assert_eq!(signers.unknown_ids, vec![other.trusted("x").sigstore_hint()]);
    let forged = bundle(&other, &hint);
    let signers = forged.keyed_signers(&listed, &[]).expect("keyed");
    assert_eq!(
        (
            signers.trusted.len(),
            signers.unknown_ids.len(),
            signers.untrusted
        ),
        (0, 0, 1)
    );
    let unnamed = bundle(&key, "");
    assert_eq!(
        unnamed.keyed_signers(&listed, &[]).expect("keyed").trusted.len(),
        1
    );
    let certificate = parse(json!({
        "mediaType": BUNDLE_V0_3,
        "verificationMaterial": {"certificate": {"rawBytes": b64(b"der")}},
        "dsseEnvelope": {"payload": b64(statement), "payloadType": IN_TOTO, "signatures": [{"sig": b64(b"s")}]}
    }))
    .expect("parses");
    assert!(certificate.keyed_signers(&listed, &[]).is_none());
}

#[test]
fn what_is_not_a_bundle_says_why() {
    let material = json!({"publicKey": {"hint": ""}});
    let envelope = json!({"payload": b64(b"{}"), "payloadType": IN_TOTO, "signatures": [{"sig": b64(b"s")}]});
    let message =
        json!({"messageDigest": {"algorithm": "SHA2_256", "digest": b64(&[0; 32])}, "signature": b64(b"s")});
    assert!(matches!(Bundle::parse(b"[]"), Err(BundleError::Json(_))));
    assert_eq!(
        parse(
            json!({"mediaType": "application/json", "verificationMaterial": material, "dsseEnvelope": envelope})
        ),
        Err(BundleError::UnsupportedMediaType("application/json".into()))
    );
    assert_eq!(
        parse(json!({"mediaType": BUNDLE_V0_3, "dsseEnvelope": envelope})),
        Err(BundleError::Content("no verificationMaterial"))
    );
    assert_eq!(
        parse(json!({"mediaType": BUNDLE_V0_3, "verificationMaterial": material})),
        Err(BundleError::Content("neither messageSignature nor dsseEnvelope"))
    );
    assert_eq!(
        parse(
            json!({"mediaType": BUNDLE_V0_3, "verificationMaterial": material, "dsseEnvelope": envelope, "messageSignature": message})
        ),
        Err(BundleError::Content("both messageSignature and dsseEnvelope"))
    );
    assert_eq!(
        parse(
            json!({"mediaType": BUNDLE_V0_3, "verificationMaterial": {"tlogEntries": []}, "dsseEnvelope": envelope})
        ),
        Err(BundleError::Material(
            "none of publicKey, x509CertificateChain and certificate"
        ))
    );
    assert_eq!(
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": {"publicKey": {}, "certificate": {"rawBytes": b64(b"c")}},
            "dsseEnvelope": envelope
        })),
        Err(BundleError::Material(
            "more than one of publicKey, x509CertificateChain and certificate"
        ))
    );
    assert_eq!(
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": material,
            "dsseEnvelope": {"payload": b64(b"{}"), "payloadType": IN_TOTO, "signatures": []}
        })),
        Err(BundleError::Unsigned)
    );
    assert!(matches!(
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": material,
            "dsseEnvelope": {"payload": "not base64!", "payloadType": IN_TOTO, "signatures": [{"sig": "AA=="}]}
        })),
        Err(BundleError::Json(detail)) if detail.contains("bytes are not base64")
    ));
    assert!(matches!(
        parse(json!({
            "mediaType": BUNDLE_V0_3,
            "verificationMaterial": {"publicKey": {}, "tlogEntries": [{"logIndex": "seven"}]},
            "dsseEnvelope": envelope
        })),
        Err(BundleError::Json(detail)) if detail.contains("\"seven\" is not an int64")
    ));
}
