//! Sigstore's trusted root (`trusted_root.json`, protobuf-specs
//! `dev.sigstore.trustroot.v1.TrustedRoot` in its JSON form): the Fulcio
//! certificate authorities, the Rekor logs' keys, the timestamp authorities
//! and the CT logs, each valid for a time range. Sigstore distributes it
//! through its TUF repository; Hoist reads it as given and never fetches it.

use jiff::Timestamp;
use serde::Deserialize;

use super::super::bundle::Bytes;
use super::certificate::{Certificate, CertificateError};
use crate::core::supply_chain::keys::{self, TrustedKey};

/// The media type of the version read.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// A trusted root that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootError {
    #[error("is not a trusted root: {0}")]
    Json(String),
    #[error("has mediaType {0:?}, not {MEDIA_TYPE}")]
    MediaType(String),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("has no certificate authority")]
    NoAuthority,
}

/// The root's parts keyless verification uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    /// `sha256:` and the hex SHA-256 of the JSON as given: a policy's id
    /// changes with the root it trusts.
    pub fingerprint: String,
    pub certificate_authorities: Vec<Authority>,
    pub tlogs: Vec<TransparencyLog>,
    pub timestamp_authorities: Vec<Authority>,
}

/// A certificate authority (Fulcio) or timestamp authority: its chain, the
/// issuing certificate first and the root last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Its URI, else its subject's common name (for messages).
    pub name: String,
    pub chain: Vec<Certificate>,
    pub valid_for: TimeRange,
}

/// A transparency log (Rekor): its id and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLog {
    /// logId.keyId: the SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub log_id: Vec<u8>,
    pub key: TrustedKey,
    pub valid_for: TimeRange,
}

/// When an authority or key may be relied on; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl TimeRange {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start.is_none_or(|start| start <= at) && self.end.is_none_or(|end| at <= end)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    #[serde(default)]
    base_url: String,
    hash_algorithm: String,
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: Bytes,
    key_details: String,
    #[serde(default)]
    valid_for: Option<TimeRangeJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    subject: DistinguishedNameJson,
    #[serde(default)]
    uri: String,
    cert_chain: CertChainJson,
    #[serde(default)]
    valid_for: Option<TimeRangeJson>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DistinguishedNameJson {
    #[serde(default)]
    common_name: String,
}

#[derive(Deserialize)]
struct CertChainJson {
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: Bytes,
}

#[derive(Deserialize)]
struct TimeRangeJson {
    start: Timestamp,
    #[serde(default)]
    end: Option<Timestamp>,
}

/// The key algorithms (protobuf-specs `PublicKeyDetails`) a log key may have.
const KEY_DETAILS: [&str; 6] = [
    "PKIX_ECDSA_P256_SHA_256",
    "PKIX_ECDSA_P384_SHA_384",
    "PKIX_ED25519",
    "PKIX_RSA_PKCS1V15_2048_SHA256",
    "PKIX_RSA_PKCS1V15_3072_SHA256",
    "PKIX_RSA_PKCS1V15_4096_SHA256",
];

/// Whether `bytes` are a trusted root's JSON (by its media type), so a
/// Secret's value holding one is kept: it is public, like a key.
pub fn is_trusted_root(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaType {
        media_type: String,
    }
    serde_json::from_slice::<MediaType>(bytes).is_ok_and(|json| {
        json.media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot+json")
    })
}

impl TrustedRoot {
    /// Reads `trusted_root.json`.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, RootError> {
        let json: RootJson =
            serde_json::from_slice(bytes).map_err(|error| RootError::Json(error.to_string()))?;
        if json.media_type != MEDIA_TYPE {
            return Err(RootError::MediaType(json.media_type));
        }
        let certificate_authorities = authorities("certificateAuthorities", json.certificate_authorities)?;
        if certificate_authorities.is_empty() {
            return Err(RootError::NoAuthority);
        }
        // The CT logs are read so a root with a malformed one is refused;
        // a Rekor entry or a timestamp proves when a certificate was used.
        logs("ctlogs", json.ctlogs)?;
        Ok(TrustedRoot {
            fingerprint: keys::fingerprint(bytes),
            certificate_authorities,
            tlogs: logs("tlogs", json.tlogs)?,
            timestamp_authorities: authorities("timestampAuthorities", json.timestamp_authorities)?,
        })
    }

    /// The fingerprint's first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        let hex = self.fingerprint.trim_start_matches("sha256:");
        &hex[..hex.len().min(12)]
    }
}

fn field_error(field: String, message: impl ToString) -> RootError {
    RootError::Field {
        field,
        message: message.to_string(),
    }
}

fn time_range(json: Option<TimeRangeJson>) -> TimeRange {
    json.map_or_else(TimeRange::default, |range| TimeRange {
        start: Some(range.start),
        end: range.end,
    })
}

fn authorities(field: &str, json: Vec<AuthorityJson>) -> Result<Vec<Authority>, RootError> {
    json.into_iter()
        .enumerate()
        .map(|(index, authority)| {
            let field = format!("{field}[{index}]");
            let chain = authority
                .cert_chain
                .certificates
                .iter()
                .enumerate()
                .map(|(at, raw)| {
                    let field = format!("{field}.certChain.certificates[{at}]");
                    Certificate::from_der(&raw.raw_bytes.0)
                        .map_err(|error: CertificateError| field_error(field, error))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if chain.is_empty() {
                return Err(field_error(field, "certChain has no certificate"));
            }
            let name = if authority.uri.is_empty() {
                authority.subject.common_name
            } else {
                authority.uri
            };
            Ok(Authority {
                name,
                chain,
                valid_for: time_range(authority.valid_for),
            })
        })
        .collect()
}

fn logs(field: &str, json: Vec<LogJson>) -> Result<Vec<TransparencyLog>, RootError> {
    json.into_iter()
        .enumerate()
        .map(|(index, log)| {
            let field = format!("{field}[{index}]");
            if log.hash_algorithm != "SHA2_256" {
                return Err(field_error(
                    format!("{field}.hashAlgorithm"),
                    format!("{:?} is not SHA2_256", log.hash_algorithm),
                ));
            }
            if !KEY_DETAILS.contains(&log.public_key.key_details.as_str()) {
                return Err(field_error(
                    format!("{field}.publicKey.keyDetails"),
                    format!(
                        "{:?} is not one of {}",
                        log.public_key.key_details,
                        KEY_DETAILS.join(", ")
                    ),
                ));
            }
            let key = TrustedKey::from_der(&log.base_url, &log.public_key.raw_bytes.0)
                .map_err(|error| field_error(format!("{field}.publicKey.rawBytes"), error))?;
            Ok(TransparencyLog {
                log_id: log.log_id.key_id.0,
                key,
                valid_for: time_range(log.public_key.valid_for),
            })
        })
        .collect()
}
