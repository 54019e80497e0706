//! Attestations of a digest: DSSE envelopes around in-toto statements of a
//! predicate type, signed by a trusted key, whose subject is the digest;
//! attached as cosign's legacy DSSE layers or inside Sigstore bundles.

use std::collections::BTreeSet;

use super::bundle::{self, BundleRead, Content};
use super::envelope::{Envelope, Layer, Statement};
use super::keyless::{Keyless, KeylessError, signers as keyless_signers};
use super::keys::TrustedKey;
use super::{Finding, key_list, short};
use crate::core::reasons::FindingReason;

/// A statement that passed: signed by a trusted key, about the digest.
#[derive(Debug, Clone)]
pub struct Attested {
    pub statement: Statement,
    pub signed_by: Vec<String>,
}

/// The statements of `predicate_types` in `layers` that a key of `keys`
/// signed and whose subject is `digest`; when there are none, the failure
/// that says most about why (`what` names the attestation in messages).
/// A bundle's envelope counts when its material is a public key of
/// `keys`, or a certificate `keyless` verifies (its identity signed it).
pub fn verified(
    digest: &str,
    layers: &[Layer],
    keys: &[TrustedKey],
    keyless: Option<&Keyless>,
    predicate_types: &[&str],
    what: &str,
) -> Result<Vec<Attested>, Finding> {
    let mut passed = Vec::new();
    let mut malformed: Vec<String> = Vec::new();
    let mut unknown_ids: BTreeSet<String> = BTreeSet::new();
    let mut untrusted = 0;
    let mut other_subjects: BTreeSet<String> = BTreeSet::new();
    let mut seen_types: BTreeSet<String> = BTreeSet::new();
    let mut unverified_keyless = 0;
    let mut keyless_failures: Vec<KeylessError> = Vec::new();
    let mut bundles = BundleRead::default();
    for layer in layers {
        let (envelope, bundled) = if bundle::is_bundle_layer(&layer.media_type) {
            let Some(read) = bundles.read(layer) else {
                continue;
            };
            let Content::DsseEnvelope(envelope) = &read.content else {
                // A message signature says nothing of a predicate.
                continue;
            };
            (envelope.clone(), Some(read))
        } else {
            match Envelope::parse(&layer.content) {
                Ok(envelope) => (envelope, None),
                Err(problem) => {
                    malformed.push(problem.to_string());
                    continue;
                }
            }
        };
        let statement = match Statement::parse(&envelope) {
            Ok(statement) => statement,
            Err(problem) => {
                malformed.push(problem.to_string());
                continue;
            }
        };
        if !predicate_types.contains(&statement.predicate_type.as_str()) {
            seen_types.insert(statement.predicate_type.clone());
            continue;
        }
        let keyed = match &bundled {
            Some(bundle) => bundle.keyed_signers(keys, &[]),
            None => Some(envelope.signers(keys)),
        };
        let signed_by: BTreeSet<String> = match (keyed, &bundled, keyless) {
            (Some(signers), _, _) => {
                if signers.trusted.is_empty() {
                    unknown_ids.extend(signers.unknown_ids);
                    untrusted += signers.untrusted;
                    continue;
                }
                signers.trusted.iter().map(|k| k.name.clone()).collect()
            }
            (None, Some(bundle), Some(policy)) => match keyless_signers(policy, bundle, &[]) {
                Ok(found) => found.into_iter().map(|signer| signer.subject).collect(),
                Err(failure) => {
                    keyless_failures.push(failure);
                    continue;
                }
            },
            (None, _, _) => {
                unverified_keyless += 1;
                continue;
            }
        };
        if !statement.subjects.iter().any(|subject| subject == digest) {
            other_subjects.extend(statement.subjects.iter().cloned());
            continue;
        }
        passed.push(Attested {
            statement,
            signed_by: signed_by.into_iter().collect(),
        });
    }
    if !passed.is_empty() {
        return Ok(passed);
    }
    let wanted = predicate_types.join(" or ");
    Err(if !other_subjects.is_empty() {
        Finding::of(
            FindingReason::WrongSubject,
            format!(
                "the {what} signed by a trusted key is about {}, not {}",
                other_subjects
                    .iter()
                    .map(|d| short(d))
                    .collect::<Vec<_>>()
                    .join(", "),
                short(digest)
            ),
        )
    } else if let Some(failure) = keyless_failures.first() {
        Finding::of(failure.reason(), format!("keyless {what}: {failure}"))
    } else if !unknown_ids.is_empty() {
        Finding::of(
            FindingReason::UnknownKey,
            format!(
                "the {what} is signed by key {}, which is none of {}",
                unknown_ids.into_iter().collect::<Vec<_>>().join(", "),
                key_list(keys)
            ),
        )
    } else if untrusted > 0 {
        Finding::of(
            FindingReason::UntrustedAttestation,
            format!(
                "the {what} verifies with none of the keys {}: signed with another key, or changed after signing",
                key_list(keys)
            ),
        )
    } else if let Some(finding) = bundles.finding(what) {
        finding
    } else if unverified_keyless > 0 {
        Finding::of(
            FindingReason::UntrustedAttestation,
            format!(
                "{unverified_keyless} {what} bundle(s) are signed with a certificate (keyless), which the keys {} do not verify",
                key_list(keys)
            ),
        )
    } else if !malformed.is_empty() {
        Finding::of(
            FindingReason::MalformedAttestation,
            format!("no attestation could be read: {}", malformed.join("; ")),
        )
    } else {
        let seen = if seen_types.is_empty() {
            String::new()
        } else {
            format!(
                " (attached: {})",
                seen_types.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        Finding::of(
            FindingReason::AttestationMissing,
            format!("no {what} ({wanted}) is attached to {}{seen}", short(digest)),
        )
    })
}

#[cfg(test)]
pub(crate) mod test_envelopes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    use super::super::envelope::{DSSE, IN_TOTO, Layer, pae};
    use super::super::keys::test_keys::SigningKey;

    /// A DSSE attestation layer with `predicate` about `digest`, signed by `key`.
    pub fn attestation(
        key: &SigningKey,
        keyid: &str,
        digest: &str,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Layer {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "r/shop", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        });
        let payload = serde_json::to_vec(&statement).expect("statement");
        let signature = key.sign(&pae(IN_TOTO, &payload));
        let envelope = json!({
            "payloadType": IN_TOTO,
            "payload": STANDARD.encode(&payload),
            "signatures": [{"keyid": keyid, "sig": STANDARD.encode(signature)}],
        });
        Layer {
            media_type: DSSE.into(),
            annotations: [("predicateType".to_string(), predicate_type.to_string())].into(),
            content: serde_json::to_vec(&envelope).expect("envelope"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::keys::test_keys::{SigningKey, Trusted};
    use super::test_envelopes::attestation;
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const TYPE: &str = "https://slsa.dev/provenance/v1";

    fn reason(layers: &[Layer], keys: &[TrustedKey]) -> FindingReason {
        match verified(DIGEST, layers, keys, None, &[TYPE], "provenance") {
            Ok(_) => FindingReason::Verified,
            Err(finding) => finding.reason,
        }
    }

    #[test]
    fn a_signed_statement_about_the_digest_passes_and_every_other_is_named() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let keys = [key.trusted("ci")];
        assert_eq!(
            reason(&[attestation(&key, "", DIGEST, TYPE, json!({}))], &keys),
            FindingReason::Verified
        );
        assert_eq!(reason(&[], &keys), FindingReason::AttestationMissing);
        assert_eq!(
            reason(
                &[attestation(
                    &key,
                    "",
                    DIGEST,
                    "https://example.com/other",
                    json!({})
                )],
                &keys
            ),
            FindingReason::AttestationMissing
        );
        assert_eq!(
            reason(&[attestation(&key, "", OTHER, TYPE, json!({}))], &keys),
            FindingReason::WrongSubject
        );
        assert_eq!(
            reason(&[attestation(&other, "", DIGEST, TYPE, json!({}))], &keys),
            FindingReason::UntrustedAttestation
        );
        assert_eq!(
            reason(&[attestation(&other, "someone", DIGEST, TYPE, json!({}))], &keys),
            FindingReason::UnknownKey
        );
        let mut broken = attestation(&key, "", DIGEST, TYPE, json!({}));
        broken.content = b"{".to_vec();
        assert_eq!(reason(&[broken], &keys), FindingReason::MalformedAttestation);
        let message = verified(
            DIGEST,
            &[attestation(&other, "someone", DIGEST, TYPE, json!({}))],
            &keys,
            None,
            &[TYPE],
            "provenance",
        )
        .unwrap_err()
        .message;
        assert!(
            message.starts_with("the provenance is signed by key someone, which is none of [ci (sha256:"),
            "{message}"
        );
    }
}
