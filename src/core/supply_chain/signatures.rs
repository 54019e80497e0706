//! The signatures check: cosign signatures of a digest by enough distinct
//! trusted keys, in the legacy simple-signing layout or as Sigstore bundles
//! (cosign v3's default).

use std::collections::BTreeSet;

use super::bundle::{self, BundleRead, Content};
use super::envelope::{self, Layer, Statement};
use super::keyless::{Keyless, KeylessError, signers as keyless_signers};
use super::keys::TrustedKey;
use super::{Finding, key_list, short};
use crate::core::reasons::FindingReason;

/// The predicate type of the in-toto statement `cosign sign` signs in the
/// bundle format: its subject is the image digest, its predicate empty.
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

/// Whether `layers` (the signature layers and Sigstore bundles attached to
/// `digest`) hold signatures naming `digest` by at least `min` distinct
/// keys of `keys`. A bundle signs the image as a DSSE envelope around a
/// [`COSIGN_SIGN_V1`] statement about the digest, or as a message signature
/// over the image manifest (verified against `digest` itself); bundles of
/// other statements are attestations. A bundle signed with a certificate
/// counts when `keyless` verifies it: its identity is the signer.
pub fn check(
    digest: &str,
    layers: &[Layer],
    keys: &[TrustedKey],
    keyless: Option<&Keyless>,
    min: usize,
) -> Finding {
    if layers.is_empty() {
        return Finding::of(
            FindingReason::SignatureMissing,
            format!(
                "no cosign signature is attached to {} (tag sha256-….sig or referrers)",
                short(digest)
            ),
        );
    }
    let mut signers: BTreeSet<String> = BTreeSet::new();
    let mut other_digests: BTreeSet<String> = BTreeSet::new();
    let mut untrusted = 0;
    let mut unverified_keyless = 0;
    let mut keyless_failures: Vec<KeylessError> = Vec::new();
    let mut malformed: Vec<String> = Vec::new();
    let mut bundles = BundleRead::default();
    let artifact = bundle::sha256_of(digest);
    for layer in layers {
        if bundle::is_bundle_layer(&layer.media_type) {
            let Some(bundle) = bundles.read(layer) else {
                continue;
            };
            let names = match &bundle.content {
                Content::DsseEnvelope(envelope) => match Statement::parse(envelope) {
                    Ok(statement) if statement.predicate_type == COSIGN_SIGN_V1 => statement.subjects,
                    Ok(_) => continue,
                    Err(problem) => {
                        malformed.push(problem.to_string());
                        continue;
                    }
                },
                Content::MessageSignature(_) => vec![digest.to_owned()],
            };
            let Some(found) = bundle.keyed_signers(keys, &artifact) else {
                match keyless.map(|policy| keyless_signers(policy, &bundle, &artifact)) {
                    None => unverified_keyless += 1,
                    Some(Err(failure)) => keyless_failures.push(failure),
                    Some(Ok(found)) if names.iter().any(|name| name == digest) => {
                        signers.extend(found.into_iter().map(|signer| signer.subject));
                    }
                    Some(Ok(_)) => other_digests.extend(names),
                }
                continue;
            };
            if found.trusted.is_empty() {
                untrusted += 1;
            } else if names.iter().any(|name| name == digest) {
                signers.extend(found.trusted.iter().map(|key| key.name.clone()));
            } else {
                other_digests.extend(names);
            }
            continue;
        }
        let (payload, signature) = match envelope::simple_signing(layer) {
            Ok(opened) => opened,
            Err(problem) => {
                malformed.push(problem.to_string());
                continue;
            }
        };
        let Some(key) = keys.iter().find(|key| key.verifies(&layer.content, &signature)) else {
            untrusted += 1;
            continue;
        };
        if payload.digest == digest {
            signers.insert(key.name.clone());
        } else {
            other_digests.insert(payload.digest);
        }
    }
    let signed_by: Vec<String> = signers.into_iter().collect();
    if signed_by.len() >= min {
        return Finding {
            signed_by: signed_by.clone(),
            ..Finding::verified(format!("signed by {}", signed_by.join(", ")))
        };
    }
    let finding = if !other_digests.is_empty() {
        Finding::of(
            FindingReason::WrongDigest,
            format!(
                "a trusted signature names {}, not {}: it was copied from another image",
                other_digests
                    .iter()
                    .map(|d| short(d))
                    .collect::<Vec<_>>()
                    .join(", "),
                short(digest)
            ),
        )
    } else if !signed_by.is_empty() {
        Finding::of(
            FindingReason::NotEnoughSignatures,
            match keyless {
                None => format!(
                    "signed by {} only; {min} distinct keys of {} must sign",
                    signed_by.join(", "),
                    key_list(keys)
                ),
                Some(keyless) => format!(
                    "signed by {} only; {min} distinct signers (keys of {}, keyless identities [{}]) must sign",
                    signed_by.join(", "),
                    key_list(keys),
                    keyless
                        .identities
                        .iter()
                        .map(|identity| identity.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        )
    } else if let Some(failure) = keyless_failures.first() {
        Finding::of(failure.reason(), format!("keyless signature: {failure}"))
    } else if untrusted > 0 {
        Finding::of(
            FindingReason::UntrustedSignature,
            format!(
                "{untrusted} signature(s) verify with none of the keys {}: made with another key, or the payload was changed after signing",
                key_list(keys)
            ),
        )
    } else if let Some(finding) = bundles.finding("signature") {
        finding
    } else if unverified_keyless > 0 {
        Finding::of(
            FindingReason::UntrustedSignature,
            format!(
                "{unverified_keyless} signature bundle(s) are signed with a certificate (keyless), which the keys {} do not verify",
                key_list(keys)
            ),
        )
    } else if malformed.is_empty() {
        Finding::of(
            FindingReason::SignatureMissing,
            format!(
                "no cosign signature is attached to {} (tag sha256-….sig or referrers; attached bundles are attestations)",
                short(digest)
            ),
        )
    } else {
        Finding::of(
            FindingReason::MalformedSignature,
            format!("no signature could be read: {}", malformed.join("; ")),
        )
    };
    Finding { signed_by, ..finding }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::envelope::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
    use super::super::keys::test_keys::{SigningKey, Trusted};
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn payload(digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/shop"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn signed(key: &SigningKey, payload: Vec<u8>) -> Layer {
        let signature = STANDARD.encode(key.sign(&payload));
        Layer {
            media_type: SIMPLE_SIGNING.into(),
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature)]),
            content: payload,
        }
    }

    #[test]
    fn a_signature_by_a_listed_key_naming_the_digest_verifies() {
        let key = SigningKey::generate();
        let finding = check(
            DIGEST,
            &[signed(&key, payload(DIGEST))],
            &[key.trusted("release")],
            None,
            1,
        );
        assert_eq!(finding.reason, FindingReason::Verified);
        assert_eq!(finding.message, "signed by release");
        assert_eq!(finding.signed_by, vec!["release"]);
    }

    #[test]
    fn each_way_of_failing_has_its_reason() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let trusted = [key.trusted("release")];
        let reason = |layers: &[Layer], min| check(DIGEST, layers, &trusted, None, min).reason;
        assert_eq!(reason(&[], 1), FindingReason::SignatureMissing);
        assert_eq!(
            reason(&[signed(&other, payload(DIGEST))], 1),
            FindingReason::UntrustedSignature
        );
        let mut altered = signed(&key, payload(DIGEST));
        altered.content = payload(OTHER);
        assert_eq!(reason(&[altered], 1), FindingReason::UntrustedSignature);
        assert_eq!(
            reason(&[signed(&key, payload(OTHER))], 1),
            FindingReason::WrongDigest
        );
        let mut unsigned = signed(&key, payload(DIGEST));
        unsigned.annotations.clear();
        assert_eq!(reason(&[unsigned], 1), FindingReason::MalformedSignature);
        let message = check(DIGEST, &[signed(&key, payload(OTHER))], &trusted, None, 1).message;
        assert_eq!(
            message,
            "a trusted signature names sha256:222222222222, not sha256:111111111111: it was copied from another image"
        );
    }

    #[test]
    fn min_signatures_counts_distinct_keys() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let keys = [a.trusted("release"), b.trusted("security")];
        let twice_by_a = [signed(&a, payload(DIGEST)), signed(&a, payload(DIGEST))];
        let finding = check(DIGEST, &twice_by_a, &keys, None, 2);
        assert_eq!(finding.reason, FindingReason::NotEnoughSignatures);
        assert!(
            finding
                .message
                .starts_with("signed by release only; 2 distinct keys of [release (sha256:"),
            "{}",
            finding.message
        );
        let both = [signed(&a, payload(DIGEST)), signed(&b, payload(DIGEST))];
        assert_eq!(
            check(DIGEST, &both, &keys, None, 2).signed_by,
            vec!["release", "security"]
        );
    }
}
