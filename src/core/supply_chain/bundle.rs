//! Sigstore bundles: the protobuf-specs `Bundle` message in its JSON form,
//! as cosign (since v3 by default), sigstore-go, Tekton Chains and GitHub's
//! attestations write it, read from the bytes Hoist fetched itself.
//!
//! A bundle carries one signed thing (a DSSE envelope or a message
//! signature) and the material to verify it with: a public key hint, or a
//! certificate (chain) with transparency-log entries and RFC 3161
//! timestamps. Every field is kept as the bundle has it (protobuf JSON:
//! `bytes` as base64, `int64` as strings), so that keyed verification here
//! and keyless verification of the certificate, log entries and timestamps
//! read the same parsed bundle. [`Bundle::signed`] says what each
//! signature covers.

use std::collections::BTreeSet;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::Finding;
use super::envelope::{Envelope, Layer, Signers};
use super::keys::TrustedKey;
use crate::core::reasons::FindingReason;

/// The bundle media types of protobuf-specs, oldest first.
pub const BUNDLE_V0_1: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
pub const BUNDLE_V0_2: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/// v0.3 as protobuf-specs names it and cosign v3 writes it (the media type
/// of the bundle, of the OCI layer holding it and the referrer's artifactType).
pub const BUNDLE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// v0.3 in the older spelling, which sigstore clients also read.
pub const BUNDLE_V0_3_LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// Whether an OCI layer of `media_type` holds a Sigstore bundle, of a
/// version Hoist reads or not (one it does not is reported, not skipped).
pub fn is_bundle_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.dev.sigstore.bundle")
}

/// The SHA-256 bytes of an OCI digest `sha256:<hex>` (empty for another
/// algorithm or text that is not hex: nothing verifies against that).
pub fn sha256_of(digest: &str) -> Vec<u8> {
    let Some(hex) = digest.strip_prefix("sha256:").filter(|hex| hex.len() == 64) else {
        return Vec::new();
    };
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            hex.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}

/// Bundle layers read by a check, and those that could not be.
#[derive(Debug, Default)]
pub struct BundleRead {
    unsupported: BTreeSet<String>,
    malformed: Vec<String>,
}

impl BundleRead {
    /// The bundle in `layer`, or `None` (kept for [`BundleRead::finding`]).
    pub fn read(&mut self, layer: &Layer) -> Option<Bundle> {
        match Bundle::parse(&layer.content) {
            Ok(bundle) => Some(bundle),
            Err(BundleError::UnsupportedMediaType(media_type)) => {
                self.unsupported.insert(media_type);
                None
            }
            Err(problem) => {
                self.malformed.push(problem.to_string());
                None
            }
        }
    }

    /// The finding when no bundle that was read counted: `what` names the
    /// bundles' kind in the message.
    pub fn finding(&self, what: &str) -> Option<Finding> {
        if !self.malformed.is_empty() {
            Some(Finding::of(
                FindingReason::MalformedBundle,
                format!("no {what} bundle could be read: {}", self.malformed.join("; ")),
            ))
        } else if !self.unsupported.is_empty() {
            Some(Finding::of(
                FindingReason::UnsupportedBundle,
                format!(
                    "the attached {what} bundle(s) have media type {}, which Hoist does not read (Sigstore bundle v0.1 to v0.3)",
                    self.unsupported.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        } else {
            None
        }
    }
}

/// Whether `media_type` is one of the bundle media types Hoist reads.
pub fn is_bundle_media_type(media_type: &str) -> bool {
    BundleVersion::of(media_type).is_some()
}

/// The bundle format version a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl BundleVersion {
    pub fn of(media_type: &str) -> Option<BundleVersion> {
        match media_type {
            BUNDLE_V0_1 => Some(BundleVersion::V0_1),
            BUNDLE_V0_2 => Some(BundleVersion::V0_2),
            BUNDLE_V0_3 | BUNDLE_V0_3_LEGACY => Some(BundleVersion::V0_3),
            _ => None,
        }
    }
}

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub media_type: String,
    pub version: BundleVersion,
    pub verification_material: VerificationMaterial,
    pub content: Content,
}

/// What verifies the bundle's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationMaterial {
    pub signer: SignerMaterial,
    pub tlog_entries: Vec<TransparencyLogEntry>,
    pub timestamp_verification_data: TimestampVerificationData,
}

/// The `content` oneof of `VerificationMaterial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerMaterial {
    /// `publicKey`: the signer is a key the verifier knows; the hint (often
    /// empty: cosign writes none for `--key`) may name it.
    PublicKey { hint: String },
    /// `x509CertificateChain` (v0.1, v0.2): DER certificates, leaf first.
    X509CertificateChain { certificates: Vec<Vec<u8>> },
    /// `certificate` (v0.3): the DER leaf certificate alone.
    Certificate { raw_bytes: Vec<u8> },
}

/// A Rekor entry (`dev.sigstore.rekor.v1.TransparencyLogEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogEntry {
    pub log_index: i64,
    /// `logId.keyId`: the SHA-256 of the log's public key.
    pub log_id: Vec<u8>,
    pub kind_version: KindVersion,
    /// Seconds since the epoch at which the log integrated the entry.
    pub integrated_time: i64,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct KindVersion {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub version: String,
}

/// The signed entry timestamp of a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionPromise {
    pub signed_entry_timestamp: Vec<u8>,
}

/// A Merkle inclusion proof of a log entry, with the log's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub log_index: i64,
    pub root_hash: Vec<u8>,
    pub tree_size: i64,
    pub hashes: Vec<Vec<u8>>,
    /// The signed note of the checkpoint (`checkpoint.envelope`).
    pub checkpoint: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampVerificationData {
    /// DER RFC 3161 `TimeStampResp`/token bytes (`signedTimestamp`).
    pub rfc3161_timestamps: Vec<Vec<u8>>,
}

/// The `content` oneof of `Bundle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    MessageSignature(MessageSignature),
    DsseEnvelope(Envelope),
}

/// A signature over an artifact the bundle names by its digest only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    pub message_digest: Option<HashOutput>,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashOutput {
    pub algorithm: HashAlgorithm,
    pub digest: Vec<u8>,
}

/// `dev.sigstore.common.v1.HashAlgorithm`, by its protobuf enum name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha2_256,
    Sha2_384,
    Sha2_512,
    Other(String),
}

impl HashAlgorithm {
    fn of(name: &str) -> HashAlgorithm {
        match name {
            "SHA2_256" => HashAlgorithm::Sha2_256,
            "SHA2_384" => HashAlgorithm::Sha2_384,
            "SHA2_512" => HashAlgorithm::Sha2_512,
            other => HashAlgorithm::Other(other.to_owned()),
        }
    }

    /// The OCI digest prefix of the algorithm (`sha256`, …).
    pub fn oci_name(&self) -> Option<&'static str> {
        match self {
            HashAlgorithm::Sha2_256 => Some("sha256"),
            HashAlgorithm::Sha2_384 => Some("sha384"),
            HashAlgorithm::Sha2_512 => Some("sha512"),
            HashAlgorithm::Other(_) => None,
        }
    }
}

impl HashOutput {
    /// As an OCI digest, `sha256:<hex>`, when the algorithm has one.
    pub fn oci_digest(&self) -> Option<String> {
        let name = self.algorithm.oci_name()?;
        Some(self.digest.iter().fold(format!("{name}:"), |mut text, byte| {
            text.push_str(&format!("{byte:02x}"));
            text
        }))
    }
}

/// Why bytes are not a bundle Hoist reads (for messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is not valid JSON of the Sigstore bundle format: {0}")]
    Json(String),
    #[error("bundle media type {0:?} is not one of Sigstore's bundle v0.1, v0.2 or v0.3")]
    UnsupportedMediaType(String),
    #[error("bundle has {0}")]
    Content(&'static str),
    #[error("bundle's verificationMaterial has {0}")]
    Material(&'static str),
    #[error("bundle's DSSE envelope carries no signature")]
    Unsigned,
}

impl Bundle {
    /// Reads a bundle from its JSON bytes.
    pub fn parse(json: &[u8]) -> Result<Bundle, BundleError> {
        let raw: RawBundle =
            serde_json::from_slice(json).map_err(|error| BundleError::Json(error.to_string()))?;
        let version = BundleVersion::of(&raw.media_type)
            .ok_or_else(|| BundleError::UnsupportedMediaType(raw.media_type.clone()))?;
        let material = raw
            .verification_material
            .ok_or(BundleError::Content("no verificationMaterial"))?;
        let signer = match (
            material.public_key,
            material.x509_certificate_chain,
            material.certificate,
        ) {
            (Some(key), None, None) => SignerMaterial::PublicKey { hint: key.hint },
            (None, Some(chain), None) => SignerMaterial::X509CertificateChain {
                certificates: chain.certificates.into_iter().map(|c| c.raw_bytes.0).collect(),
            },
            (None, None, Some(certificate)) => SignerMaterial::Certificate {
                raw_bytes: certificate.raw_bytes.0,
            },
            (None, None, None) => {
                return Err(BundleError::Material(
                    "none of publicKey, x509CertificateChain and certificate",
                ));
            }
            _ => {
                return Err(BundleError::Material(
                    "more than one of publicKey, x509CertificateChain and certificate",
                ));
            }
        };
        let tlog_entries = material
            .tlog_entries
            .into_iter()
            .map(TransparencyLogEntry::from)
            .collect();
        let timestamp_verification_data = TimestampVerificationData {
            rfc3161_timestamps: material
                .timestamp_verification_data
                .map(|data| data.rfc3161_timestamps)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.signed_timestamp.0)
                .collect(),
        };
        let content = match (raw.message_signature, raw.dsse_envelope) {
            (Some(message), None) => Content::MessageSignature(MessageSignature {
                message_digest: message.message_digest.map(|d| HashOutput {
                    algorithm: HashAlgorithm::of(&d.algorithm),
                    digest: d.digest.0,
                }),
                signature: message.signature.0,
            }),
            (None, Some(envelope)) => {
                if envelope.signatures.is_empty() {
                    return Err(BundleError::Unsigned);
                }
                Content::DsseEnvelope(Envelope {
                    payload_type: envelope.payload_type,
                    payload: envelope.payload.0,
                    signatures: envelope
                        .signatures
                        .into_iter()
                        .map(|s| (s.keyid, s.sig.0))
                        .collect(),
                })
            }
            (None, None) => return Err(BundleError::Content("neither messageSignature nor dsseEnvelope")),
            (Some(_), Some(_)) => return Err(BundleError::Content("both messageSignature and dsseEnvelope")),
        };
        Ok(Bundle {
            media_type: raw.media_type,
            version,
            verification_material: VerificationMaterial {
                signer,
                tlog_entries,
                timestamp_verification_data,
            },
            content,
        })
    }

    /// Each signature of the bundle with what it signs and the material to
    /// verify it with: a verifier (keyed: [`Signed::verifies_with`] each
    /// listed key; keyless: the certificate's key, once the certificate is
    /// trusted) needs nothing else of the bundle. What the signed thing says
    /// (the in-toto statement of an envelope, the artifact a message
    /// signature is about) is the caller's to compare with the image.
    pub fn signed(&self) -> Vec<Signed<'_>> {
        let material = &self.verification_material;
        match &self.content {
            Content::DsseEnvelope(envelope) => {
                let message = envelope.pae();
                envelope
                    .signatures
                    .iter()
                    .map(|(keyid, signature)| Signed {
                        signature,
                        keyid,
                        message: Message::Dsse {
                            envelope,
                            pae: message.clone(),
                        },
                        material,
                    })
                    .collect()
            }
            Content::MessageSignature(signature) => vec![Signed {
                signature: &signature.signature,
                keyid: "",
                message: Message::Artifact {
                    claimed: signature.message_digest.as_ref(),
                },
                material,
            }],
        }
    }

    /// Who of `keys` signed the bundle, when its material is a public key
    /// (`None`: a certificate, which keys do not verify). The key is found
    /// by trying each: the public key hint (sigstore-go writes the base64
    /// SHA-256 of the DER key, other signers may write none or a name of
    /// their own) only tells a listed key's failed signature from an
    /// unknown key's. `artifact` is as for [`Signed::verifies_with`].
    pub fn keyed_signers<'k>(&self, keys: &'k [TrustedKey], artifact: &[u8]) -> Option<Signers<'k>> {
        let SignerMaterial::PublicKey { hint } = &self.verification_material.signer else {
            return None;
        };
        let mut signers = Signers::default();
        for signed in self.signed() {
            let named: &str = if signed.keyid.is_empty() {
                hint
            } else {
                signed.keyid
            };
            let id = keys
                .iter()
                .find(|key| key.sigstore_hint() == named)
                .map_or(named, |key| key.fingerprint.as_str());
            let key = keys.iter().find(|key| signed.verifies_with(key, artifact));
            signers.add(key, id, keys);
        }
        Some(signers)
    }
}

/// One signature of a bundle and what it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'b> {
    pub signature: &'b [u8],
    /// The DSSE signature's keyid (empty when none, and for message signatures).
    pub keyid: &'b str,
    pub message: Message<'b>,
    pub material: &'b VerificationMaterial,
}

/// What a signature is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'b> {
    /// A DSSE envelope: the signature is over `pae`, DSSE's
    /// pre-authentication encoding of the payload type and payload; the
    /// payload (for cosign an in-toto statement) is what it says.
    Dsse { envelope: &'b Envelope, pae: Vec<u8> },
    /// A message signature: over an artifact the bundle does not carry.
    /// `claimed` (messageDigest) identifies it; protobuf-specs says it is
    /// never to verify the signature with, so the verifier names the
    /// artifact itself.
    Artifact { claimed: Option<&'b HashOutput> },
}

impl Signed<'_> {
    /// Whether `key` made this signature. `artifact` is the SHA-256 of the
    /// artifact the verifier holds a message signature to be about (for
    /// an image, the digest being checked: the hash of its manifest); a
    /// DSSE signature carries what it signs and ignores it.
    pub fn verifies_with(&self, key: &TrustedKey, artifact: &[u8]) -> bool {
        match &self.message {
            Message::Dsse { pae, .. } => key.verifies(pae, self.signature),
            Message::Artifact { .. } => {
                key.verifies_digest(&aws_lc_rs::digest::SHA256, artifact, self.signature)
            }
        }
    }
}

/// Bytes in protobuf JSON: base64, standard or URL-safe, padded or not.
#[derive(Debug, Default)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        const CONFIG: GeneralPurposeConfig =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
        const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(&text)
            .or_else(|_| URL_SAFE.decode(&text))
            .map(Bytes)
            .map_err(|_| de::Error::custom("bytes are not base64"))
    }
}

/// An `int64` in protobuf JSON: a decimal string, or a number.
#[derive(Debug, Default)]
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(Int64(n)),
            Either::Text(text) => text
                .parse()
                .map(Int64)
                .map_err(|_| de::Error::custom(format!("{text:?} is not an int64"))),
        }
    }
}

// The JSON shapes, lowerCamelCase as protobuf JSON writes them (parsers also
// accept the proto field names, so those are read too).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    #[serde(alias = "media_type")]
    media_type: String,
    #[serde(alias = "verification_material")]
    verification_material: Option<RawMaterial>,
    #[serde(alias = "message_signature")]
    message_signature: Option<RawMessageSignature>,
    #[serde(alias = "dsse_envelope")]
    dsse_envelope: Option<RawEnvelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    #[serde(alias = "public_key")]
    public_key: Option<RawPublicKey>,
    #[serde(alias = "x509_certificate_chain")]
    x509_certificate_chain: Option<RawChain>,
    certificate: Option<RawCertificate>,
    #[serde(default, alias = "tlog_entries")]
    tlog_entries: Vec<RawEntry>,
    #[serde(alias = "timestamp_verification_data")]
    timestamp_verification_data: Option<RawTimestamps>,
}

#[derive(Deserialize)]
struct RawPublicKey {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    #[serde(alias = "raw_bytes")]
    raw_bytes: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(default, alias = "log_index")]
    log_index: Int64,
    #[serde(alias = "log_id")]
    log_id: Option<RawLogId>,
    #[serde(default, alias = "kind_version")]
    kind_version: KindVersion,
    #[serde(default, alias = "integrated_time")]
    integrated_time: Int64,
    #[serde(alias = "inclusion_promise")]
    inclusion_promise: Option<RawPromise>,
    #[serde(alias = "inclusion_proof")]
    inclusion_proof: Option<RawProof>,
    #[serde(default, alias = "canonicalized_body")]
    canonicalized_body: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    #[serde(default, alias = "key_id")]
    key_id: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    #[serde(default, alias = "signed_entry_timestamp")]
    signed_entry_timestamp: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    #[serde(default, alias = "log_index")]
    log_index: Int64,
    #[serde(default, alias = "root_hash")]
    root_hash: Bytes,
    #[serde(default, alias = "tree_size")]
    tree_size: Int64,
    #[serde(default)]
    hashes: Vec<Bytes>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    #[serde(default)]
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamps {
    #[serde(default, alias = "rfc3161_timestamps")]
    rfc3161_timestamps: Vec<RawTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamp {
    #[serde(default, alias = "signed_timestamp")]
    signed_timestamp: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessageSignature {
    #[serde(alias = "message_digest")]
    message_digest: Option<RawHashOutput>,
    #[serde(default)]
    signature: Bytes,
}

#[derive(Deserialize)]
struct RawHashOutput {
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    digest: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    #[serde(default)]
    payload: Bytes,
    #[serde(default, alias = "payload_type")]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    sig: Bytes,
    #[serde(default)]
    keyid: String,
}

impl From<RawEntry> for TransparencyLogEntry {
    fn from(raw: RawEntry) -> TransparencyLogEntry {
        TransparencyLogEntry {
            log_index: raw.log_index.0,
            log_id: raw.log_id.map(|id| id.key_id.0).unwrap_or_default(),
            kind_version: raw.kind_version,
            integrated_time: raw.integrated_time.0,
            inclusion_promise: raw.inclusion_promise.map(|p| InclusionPromise {
                signed_entry_timestamp: p.signed_entry_timestamp.0,
            }),
            inclusion_proof: raw.inclusion_proof.map(|p| InclusionProof {
                log_index: p.log_index.0,
                root_hash: p.root_hash.0,
                tree_size: p.tree_size.0,
                hashes: p.hashes.into_iter().map(|h| h.0).collect(),
                checkpoint: p.checkpoint.map(|c| c.envelope).unwrap_or_default(),
            }),
            canonicalized_body: raw.canonicalized_body.0,
        }
    }
}

#[cfg(test)]
mod tests;
