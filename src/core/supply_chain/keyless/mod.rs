//! Keyless signatures, verified offline against a trusted root: the
//! signature verifies with the key of a short-lived Fulcio certificate;
//! the certificate chains to a certificate authority of the root and names
//! an identity of the policy (SAN and OIDC issuer); and a Rekor entry's
//! signed timestamp or an RFC 3161 timestamp, by a log or authority of the
//! root, proves the signature was made while the certificate was valid.
//! Nothing here contacts Fulcio, Rekor or a timestamp authority.

pub mod certificate;
pub mod identity;
pub mod root;
pub mod timestamp;
pub mod tlog;

use jiff::Timestamp;

use super::bundle::{Bundle, Signed, SignerMaterial};
use super::keys::TrustedKey;
use crate::core::reasons::FindingReason;
use certificate::{CODE_SIGNING, Certificate};
pub use identity::{Identity, Subject};
pub use root::TrustedRoot;

/// A keyless policy: the identities it trusts and the root it trusts them
/// through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyless {
    pub identities: Vec<Identity>,
    pub root: TrustedRoot,
}

/// Who made a verified keyless signature, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's SAN the policy's identity matched.
    pub subject: String,
    pub issuer: String,
    pub at: Timestamp,
}

/// Why a keyless signature is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    #[error("the bundle has no certificate")]
    NoCertificate,
    #[error("the bundle's certificate {0}")]
    MalformedCertificate(#[source] certificate::CertificateError),
    #[error(
        "the certificate of {subject} chains to no certificate authority of trusted root sha256:{root} ({authorities}), or is not for code signing"
    )]
    UntrustedCertificate {
        subject: String,
        root: String,
        authorities: String,
    },
    #[error("the certificate names {found}, not an identity of the policy ({expected})")]
    IdentityMismatch { found: String, expected: String },
    #[error(
        "the signature does not verify with the certificate's key: the payload was changed after signing"
    )]
    BadSignature,
    #[error("nothing proves when the signature was made: {0}")]
    NoTrustedTimestamp(String),
    #[error(
        "the signature was made at {at}, outside the certificate's validity {not_before} to {not_after} (or its authority's)"
    )]
    CertificateExpired {
        at: Timestamp,
        not_before: Timestamp,
        not_after: Timestamp,
    },
}

impl KeylessError {
    /// The finding's reason.
    pub fn reason(&self) -> FindingReason {
        match self {
            KeylessError::NoCertificate | KeylessError::MalformedCertificate(_) => {
                FindingReason::MalformedSignature
            }
            KeylessError::UntrustedCertificate { .. } => FindingReason::UntrustedCertificate,
            KeylessError::IdentityMismatch { .. } => FindingReason::IdentityMismatch,
            KeylessError::BadSignature => FindingReason::UntrustedSignature,
            KeylessError::NoTrustedTimestamp(_) => FindingReason::NoTrustedTimestamp,
            KeylessError::CertificateExpired { .. } => FindingReason::CertificateExpired,
        }
    }
}

/// Who of the policy's identities made `bundle`'s signatures (at least
/// one), else why the first did not verify. `artifact` is what a message
/// signature is about (the digest checked).
pub fn signers(keyless: &Keyless, bundle: &Bundle, artifact: &[u8]) -> Result<Vec<Signer>, KeylessError> {
    let mut signers = Vec::new();
    let mut first_error = None;
    for signed in bundle.signed() {
        match verify(keyless, &signed, artifact) {
            Ok(signer) => signers.push(signer),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) if signers.is_empty() => Err(error),
        _ => Ok(signers),
    }
}

/// The identity of the policy a bundle's `signed` was made by, verified
/// against the policy's root: chain, identity, signature, then time.
pub fn verify(keyless: &Keyless, signed: &Signed, artifact: &[u8]) -> Result<Signer, KeylessError> {
    let root = &keyless.root;
    let material = signed.material;
    let leaf_der = match &material.signer {
        SignerMaterial::Certificate { raw_bytes } => raw_bytes,
        SignerMaterial::X509CertificateChain { certificates } => {
            certificates.first().ok_or(KeylessError::NoCertificate)?
        }
        SignerMaterial::PublicKey { .. } => return Err(KeylessError::NoCertificate),
    };
    let leaf = Certificate::from_der(leaf_der).map_err(KeylessError::MalformedCertificate)?;
    let authorities: Vec<&root::Authority> = root
        .certificate_authorities
        .iter()
        .filter(|authority| {
            authority
                .chain
                .first()
                .is_some_and(|issuer| issuer.is_ca() && leaf.issued_by(issuer))
                && certificate::chained(&authority.chain)
        })
        .collect();
    if authorities.is_empty() || !leaf.has_extended_key_usage(CODE_SIGNING) {
        return Err(KeylessError::UntrustedCertificate {
            subject: leaf.identities().join(", "),
            root: root.short().to_owned(),
            authorities: root
                .certificate_authorities
                .iter()
                .map(|authority| authority.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let (identity, subject) = keyless
        .identities
        .iter()
        .find_map(|identity| identity.matched(&leaf).map(|subject| (identity, subject)))
        .ok_or_else(|| KeylessError::IdentityMismatch {
            found: format!(
                "issuer={};subject={}",
                leaf.oidc_issuer().unwrap_or_default(),
                leaf.identities().join(",")
            ),
            expected: keyless
                .identities
                .iter()
                .map(Identity::describe)
                .collect::<Vec<_>>()
                .join(" | "),
        })?;
    let key =
        TrustedKey::from_der(&subject, &leaf.public_key_der()).map_err(|_| KeylessError::BadSignature)?;
    if !signed.verifies_with(&key, artifact) {
        return Err(KeylessError::BadSignature);
    }
    let mut problems = Vec::new();
    let mut times = Vec::new();
    for entry in &material.tlog_entries {
        match tlog::verified_time(entry, root, signed.signature, &leaf) {
            Ok(at) => times.push(at),
            Err(problem) => problems.push(problem.to_string()),
        }
    }
    for token in &material.timestamp_verification_data.rfc3161_timestamps {
        match timestamp::verified_time(token, signed.signature, root) {
            Ok(at) => times.push(at),
            Err(problem) => problems.push(problem.to_string()),
        }
    }
    if times.is_empty() {
        if problems.is_empty() {
            problems.push("the bundle has no Rekor entry and no RFC 3161 timestamp".to_owned());
        }
        return Err(KeylessError::NoTrustedTimestamp(problems.join("; ")));
    }
    let (not_before, not_after) = leaf.validity();
    let during = |at: Timestamp| {
        leaf.valid_at(at)
            && authorities.iter().any(|authority| {
                authority.valid_for.contains(at) && authority.chain.iter().all(|issuer| issuer.valid_at(at))
            })
    };
    match times.iter().find(|at| during(**at)) {
        Some(at) => Ok(Signer {
            subject,
            issuer: identity.issuer.clone(),
            at: *at,
        }),
        None => Err(KeylessError::CertificateExpired {
            at: times[0],
            not_before,
            not_after,
        }),
    }
}

#[cfg(test)]
mod tests;
