//! What is attached to an image digest, and opening it: cosign's simple
//! signing layers and DSSE envelopes around in-toto statements.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::keys::TrustedKey;

/// The media type of a cosign signature layer (its content is the payload).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding a simple-signing layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a cosign attestation layer (a DSSE envelope).
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// One layer of a signature or attestation manifest attached to a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
    pub content: Vec<u8>,
}

/// What the registry (or an OCI layout) holds for one digest: the layers of
/// its signature manifests and of its attestation manifests, and the
/// Sigstore bundles attached to it (each a signature or an attestation, as
/// what it signs says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachments {
    pub signatures: Vec<Layer>,
    pub attestations: Vec<Layer>,
    pub bundles: Vec<Layer>,
}

impl Attachments {
    /// The signature layers and the bundles, for the signatures check.
    pub fn signature_layers(&self) -> Vec<Layer> {
        self.signatures.iter().chain(&self.bundles).cloned().collect()
    }

    /// The attestation layers and the bundles, for the attestation checks.
    pub fn attestation_layers(&self) -> Vec<Layer> {
        self.attestations.iter().chain(&self.bundles).cloned().collect()
    }
}

/// What a simple-signing payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// critical.image.docker-manifest-digest.
    pub digest: String,
}

/// A layer that could not be opened, and why (for messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("layer of media type {0:?} is not a cosign signature")]
    MediaType(String),
    #[error("has no {SIGNATURE_ANNOTATION} annotation")]
    NoSignature,
    #[error("{what} is not base64")]
    Base64 { what: &'static str },
    #[error("{what} is not valid JSON: {detail}")]
    Json { what: &'static str, detail: String },
    #[error("payload type is {0:?}, not {IN_TOTO}")]
    PayloadType(String),
    #[error("envelope carries no signature")]
    Unsigned,
}

/// The payload of a simple-signing layer and its signature, unverified.
pub fn simple_signing(layer: &Layer) -> Result<(SimpleSigning, Vec<u8>), Malformed> {
    if layer.media_type != SIMPLE_SIGNING {
        return Err(Malformed::MediaType(layer.media_type.clone()));
    }
    let signature = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or(Malformed::NoSignature)?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| Malformed::Base64 { what: "signature" })?;
    #[derive(Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(Deserialize)]
    struct Critical {
        image: Image,
    }
    #[derive(Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        digest: String,
    }
    let payload: Payload = serde_json::from_slice(&layer.content).map_err(|error| Malformed::Json {
        what: "payload",
        detail: error.to_string(),
    })?;
    Ok((
        SimpleSigning {
            digest: payload.critical.image.digest,
        },
        signature,
    ))
}

/// A DSSE envelope, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    /// (keyid, signature) pairs.
    pub signatures: Vec<(String, Vec<u8>)>,
}

impl Envelope {
    pub fn parse(content: &[u8]) -> Result<Envelope, Malformed> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            payload_type: String,
            payload: String,
            #[serde(default)]
            signatures: Vec<RawSignature>,
        }
        #[derive(Deserialize)]
        struct RawSignature {
            #[serde(default)]
            keyid: String,
            sig: String,
        }
        let raw: Raw = serde_json::from_slice(content).map_err(|error| Malformed::Json {
            what: "envelope",
            detail: error.to_string(),
        })?;
        let payload = STANDARD
            .decode(raw.payload.trim())
            .map_err(|_| Malformed::Base64 { what: "payload" })?;
        let signatures = raw
            .signatures
            .into_iter()
            .map(|s| {
                STANDARD
                    .decode(s.sig.trim())
                    .map(|sig| (s.keyid, sig))
                    .map_err(|_| Malformed::Base64 { what: "signature" })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() {
            return Err(Malformed::Unsigned);
        }
        Ok(Envelope {
            payload_type: raw.payload_type,
            payload,
            signatures,
        })
    }

    /// DSSE's pre-authentication encoding: what each signature signs.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Who of `keys` signed it. A key id that names none of `keys` (by name
    /// or fingerprint) is returned in the second list.
    pub fn signers<'k>(&self, keys: &'k [TrustedKey]) -> Signers<'k> {
        let message = self.pae();
        let mut signers = Signers::default();
        for (keyid, signature) in &self.signatures {
            signers.add(
                keys.iter().find(|key| key.verifies(&message, signature)),
                keyid,
                keys,
            );
        }
        signers
    }
}

/// Who signed an envelope.
#[derive(Debug, Default)]
pub struct Signers<'k> {
    pub trusted: Vec<&'k TrustedKey>,
    /// Key ids of signatures by keys the policy does not list.
    pub unknown_ids: Vec<String>,
    /// Signatures that verify with no listed key and name none.
    pub untrusted: usize,
}

impl<'k> Signers<'k> {
    /// Counts one signature: made by `key` of `keys`, or by none of them
    /// (then named by `keyid` when it names none of `keys` either).
    pub fn add(&mut self, key: Option<&'k TrustedKey>, keyid: &str, keys: &[TrustedKey]) {
        match key {
            Some(key) => self.trusted.push(key),
            None if !keyid.is_empty()
                && !keys
                    .iter()
                    .any(|key| key.name == keyid || key.fingerprint == keyid) =>
            {
                self.unknown_ids.push(keyid.to_owned())
            }
            None => self.untrusted += 1,
        }
    }
}

/// `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    message.extend_from_slice(payload);
    message
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub predicate_type: String,
    /// The sha256 digests of its subjects, as `sha256:<hex>`.
    pub subjects: Vec<String>,
    pub predicate: serde_json::Value,
}

impl Statement {
    pub fn parse(envelope: &Envelope) -> Result<Statement, Malformed> {
        if envelope.payload_type != IN_TOTO {
            return Err(Malformed::PayloadType(envelope.payload_type.clone()));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            predicate_type: String,
            #[serde(default)]
            subject: Vec<Subject>,
            #[serde(default)]
            predicate: serde_json::Value,
        }
        #[derive(Deserialize)]
        struct Subject {
            #[serde(default)]
            digest: BTreeMap<String, String>,
        }
        let raw: Raw = serde_json::from_slice(&envelope.payload).map_err(|error| Malformed::Json {
            what: "statement",
            detail: error.to_string(),
        })?;
        Ok(Statement {
            predicate_type: raw.predicate_type,
            subjects: raw
                .subject
                .iter()
                .filter_map(|s| s.digest.get("sha256").map(|hex| format!("sha256:{hex}")))
                .collect(),
            predicate: raw.predicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_pre_authentication_encoding() {
        // The example from the DSSE protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn malformed_layers_say_what_is_wrong() {
        let layer = |media_type: &str, annotations: &[(&str, &str)], content: &str| Layer {
            media_type: media_type.into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            content: content.as_bytes().to_vec(),
        };
        assert_eq!(
            simple_signing(&layer("text/plain", &[], "")).unwrap_err(),
            Malformed::MediaType("text/plain".into())
        );
        assert_eq!(
            simple_signing(&layer(SIMPLE_SIGNING, &[], "{}")).unwrap_err(),
            Malformed::NoSignature
        );
        assert_eq!(
            simple_signing(&layer(SIMPLE_SIGNING, &[(SIGNATURE_ANNOTATION, "!!")], "{}")).unwrap_err(),
            Malformed::Base64 { what: "signature" }
        );
        assert!(matches!(
            simple_signing(&layer(SIMPLE_SIGNING, &[(SIGNATURE_ANNOTATION, "AAAA")], "{}")).unwrap_err(),
            Malformed::Json { what: "payload", .. }
        ));
        assert!(matches!(
            Envelope::parse(b"[]").unwrap_err(),
            Malformed::Json { what: "envelope", .. }
        ));
        assert_eq!(
            Envelope::parse(br#"{"payloadType":"x","payload":"e30=","signatures":[]}"#).unwrap_err(),
            Malformed::Unsigned
        );
        let envelope =
            Envelope::parse(br#"{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AAAA"}]}"#)
                .expect("parses");
        assert_eq!(
            Statement::parse(&envelope).unwrap_err(),
            Malformed::PayloadType("x".into())
        );
    }
}
