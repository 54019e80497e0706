//! Rekor entries as a bundle carries them, and the signed entry timestamp
//! (SET, the bundle's `inclusionPromise`) that proves when an entry was
//! integrated: the log's signature over the canonical JSON of
//! `{body, integratedTime, logID, logIndex}`, as Rekor signs it and
//! sigstore-go and sigstore-rs check it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::bundle::TransparencyLogEntry;
use super::certificate::Certificate;
use super::root::{TransparencyLog, TrustedRoot};

/// Why an entry proves no time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("Rekor entry {0}: its log is not in the trusted root")]
    UnknownLog(i64),
    #[error("Rekor entry {0} has no signed entry timestamp (inclusionPromise)")]
    NoPromise(i64),
    #[error("Rekor entry {0}: the signed entry timestamp does not verify with the log's key")]
    BadPromise(i64),
    #[error("Rekor entry {0}: integratedTime {1} is outside the log key's validFor")]
    KeyNotValid(i64, i64),
    #[error("Rekor entry {0} records another signature or certificate than the bundle's")]
    OtherSignature(i64),
}

/// The payload Rekor signs; the fields in the canonical (sorted) order, so
/// serde_json's compact output is that canonical JSON.
#[derive(Serialize)]
struct Promised<'a> {
    body: &'a str,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: &'a str,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

/// The instant `entry`'s SET proves, if it verifies with a log of `root`
/// and the entry records `signature` made by `leaf`.
pub fn verified_time(
    entry: &TransparencyLogEntry,
    root: &TrustedRoot,
    signature: &[u8],
    leaf: &Certificate,
) -> Result<Timestamp, EntryError> {
    let index = entry.log_index;
    let log: &TransparencyLog = root
        .tlogs
        .iter()
        .find(|log| log.log_id == entry.log_id)
        .ok_or(EntryError::UnknownLog(index))?;
    let promise = entry
        .inclusion_promise
        .as_ref()
        .map(|promise| promise.signed_entry_timestamp.as_slice())
        .ok_or(EntryError::NoPromise(index))?;
    let body = STANDARD.encode(&entry.canonicalized_body);
    let log_id: String = entry.log_id.iter().map(|byte| format!("{byte:02x}")).collect();
    let payload = serde_json::to_vec(&Promised {
        body: &body,
        integrated_time: entry.integrated_time,
        log_id: &log_id,
        log_index: index,
    })
    .map_err(|_| EntryError::BadPromise(index))?;
    if !log.key.verifies(&payload, promise) {
        return Err(EntryError::BadPromise(index));
    }
    let at = Timestamp::from_second(entry.integrated_time)
        .map_err(|_| EntryError::KeyNotValid(index, entry.integrated_time))?;
    if !log.valid_for.contains(at) {
        return Err(EntryError::KeyNotValid(index, entry.integrated_time));
    }
    if !records(&entry.canonicalized_body, signature, leaf) {
        return Err(EntryError::OtherSignature(index));
    }
    Ok(at)
}

/// A Rekor entry body: its kind and that kind's spec.
#[derive(Deserialize)]
struct Body {
    kind: String,
    spec: serde_json::Value,
}

/// The spec of a message signature's entry (`hashedrekord` 0.0.1).
#[derive(Deserialize)]
struct HashedrekordSpec {
    signature: HashedSignature,
}

/// The spec of a DSSE envelope's entry (`dsse` 0.0.1).
#[derive(Deserialize)]
struct DsseSpec {
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedSignature {
    content: String,
    public_key: HashedKey,
}

#[derive(Deserialize)]
struct HashedKey {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSignature {
    signature: String,
    /// The signer's PEM, base64 (`verifier`; early entries said `publicKey`).
    #[serde(alias = "publicKey")]
    verifier: String,
}

/// Whether `body` records `signature` by `leaf`: the log entry is about
/// this very signature, not one of another artifact.
fn records(body: &[u8], signature: &[u8], leaf: &Certificate) -> bool {
    let Ok(body) = serde_json::from_slice::<Body>(body) else {
        return false;
    };
    let pairs: Vec<(String, String)> = match body.kind.as_str() {
        "hashedrekord" => serde_json::from_value::<HashedrekordSpec>(body.spec)
            .map(|spec| vec![(spec.signature.content, spec.signature.public_key.content)])
            .unwrap_or_default(),
        "dsse" => serde_json::from_value::<DsseSpec>(body.spec)
            .map(|spec| {
                spec.signatures
                    .into_iter()
                    .map(|entry| (entry.signature, entry.verifier))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    pairs.iter().any(|(logged_signature, logged_key)| {
        STANDARD
            .decode(logged_signature)
            .is_ok_and(|bytes| bytes == signature)
            && STANDARD
                .decode(logged_key)
                .ok()
                .and_then(|pem_text| pem::parse(pem_text).ok())
                .is_some_and(|block| block.contents() == leaf.der.as_slice())
    })
}
