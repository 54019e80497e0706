//! RFC 3161 timestamp tokens (a bundle's
//! `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`): a CMS
//! SignedData whose content is a TSTInfo, signed by a timestamp authority
//! of the trusted root. Its messageImprint is the hash of the bundle's
//! signature, as sigstore-go and cosign make and check it.

use cmpv2::status::PkiStatus;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNED_DATA};
use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
use der::asn1::OctetString;
use der::{Decode, Encode};
use jiff::Timestamp;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_tsp::{TimeStampResp, TstInfo};

use super::certificate::{TIME_STAMPING, chained};
use super::root::{Authority, TrustedRoot};

/// The content type of a TSTInfo (RFC 3161 `id-ct-TSTInfo`).
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// Why a timestamp token proves no time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("the RFC 3161 timestamp is not a CMS SignedData holding a TSTInfo: {0}")]
    Malformed(String),
    #[error("the RFC 3161 timestamp is of another signature (messageImprint differs)")]
    OtherSignature,
    #[error("the RFC 3161 timestamp is signed by no timestamp authority of the trusted root")]
    UnknownAuthority,
    #[error("the RFC 3161 timestamp's time {0} is outside its authority's validity")]
    AuthorityNotValid(Timestamp),
}

fn malformed(error: impl ToString) -> TimestampError {
    TimestampError::Malformed(error.to_string())
}

/// The hash of `data` under the digest algorithm `oid`, if one of SHA-2.
fn hash(oid: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    match oid {
        ID_SHA_256 => Some(Sha256::digest(data).to_vec()),
        ID_SHA_384 => Some(Sha384::digest(data).to_vec()),
        ID_SHA_512 => Some(Sha512::digest(data).to_vec()),
        _ => None,
    }
}

/// The token of `signed_timestamp`: protobuf-specs has the TSA's whole
/// `TimeStampResp` there (status and token), which sigstore clients write;
/// a bare `TimeStampToken` is read too.
fn token(signed_timestamp: &[u8]) -> Result<ContentInfo, TimestampError> {
    if let Ok(response) = TimeStampResp::from_der(signed_timestamp) {
        if !matches!(
            response.status.status,
            PkiStatus::Accepted | PkiStatus::GrantedWithMods
        ) {
            return Err(malformed(format!(
                "the TSA answered {:?}",
                response.status.status
            )));
        }
        return response
            .time_stamp_token
            .ok_or_else(|| malformed("the TSA's response has no token"));
    }
    ContentInfo::from_der(signed_timestamp).map_err(malformed)
}

/// The time `signed_timestamp` proves `signature` existed at, if a
/// timestamp authority of `root` signed it.
pub fn verified_time(
    signed_timestamp: &[u8],
    signature: &[u8],
    root: &TrustedRoot,
) -> Result<Timestamp, TimestampError> {
    let content = token(signed_timestamp)?;
    if content.content_type != ID_SIGNED_DATA {
        return Err(malformed(format!(
            "content type {} is not signedData",
            content.content_type
        )));
    }
    let signed: SignedData = content.content.decode_as().map_err(malformed)?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(malformed("the content is not a TSTInfo"));
    }
    let tst_der = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("no TSTInfo"))?
        .decode_as::<OctetString>()
        .map_err(malformed)?
        .into_bytes();
    let tst = TstInfo::from_der(&tst_der).map_err(malformed)?;
    let imprint = &tst.message_imprint;
    if hash(imprint.hash_algorithm.oid, signature).as_deref() != Some(imprint.hashed_message.as_bytes()) {
        return Err(TimestampError::OtherSignature);
    }
    let at =
        Timestamp::from_second(i64::try_from(tst.gen_time.to_unix_duration().as_secs()).map_err(malformed)?)
            .map_err(malformed)?;
    let authority = root
        .timestamp_authorities
        .iter()
        .find(|authority| {
            signed
                .signer_infos
                .0
                .iter()
                .any(|signer| signed_by(signer, &tst_der, authority))
        })
        .ok_or(TimestampError::UnknownAuthority)?;
    let signer = &authority.chain[0];
    if !authority.valid_for.contains(at) || !signer.valid_at(at) {
        return Err(TimestampError::AuthorityNotValid(at));
    }
    Ok(at)
}

/// Whether `signer` is `authority`'s signature over the TSTInfo: signed
/// attributes naming the TSTInfo's content type and digest, signed by the
/// authority's first certificate (a time-stamping one, issued along the
/// authority's chain).
fn signed_by(signer: &SignerInfo, tst_der: &[u8], authority: &Authority) -> bool {
    let Some(attributes) = &signer.signed_attrs else {
        return false;
    };
    let attribute = |oid: ObjectIdentifier| {
        attributes
            .iter()
            .find(|attribute| attribute.oid == oid)
            .and_then(|attribute| attribute.values.iter().next())
    };
    let content_type =
        attribute(ID_CONTENT_TYPE).and_then(|value| value.decode_as::<ObjectIdentifier>().ok());
    let digest = attribute(ID_MESSAGE_DIGEST).and_then(|value| value.decode_as::<OctetString>().ok());
    if content_type != Some(ID_CT_TST_INFO)
        || digest.as_ref().map(OctetString::as_bytes) != hash(signer.digest_alg.oid, tst_der).as_deref()
    {
        return false;
    }
    let Ok(signed_attributes) = attributes.to_der() else {
        return false;
    };
    let Some(leaf) = authority.chain.first() else {
        return false;
    };
    leaf.has_extended_key_usage(TIME_STAMPING)
        && chained(&authority.chain)
        && leaf.verifies_with(
            signer.signature_algorithm.oid,
            Some(signer.digest_alg.oid),
            &signed_attributes,
            signer.signature.as_bytes(),
        )
}
