//! X.509 certificates as keyless verification reads them: a Fulcio leaf
//! (its key, SAN and OIDC issuer extension), the certificate authorities and
//! timestamp authorities of a trusted root, and the signatures between them,
//! verified with aws-lc-rs.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1, ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ED25519,
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    VerificationAlgorithm,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_CE_EXT_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::{Decode, Encode};
use jiff::Timestamp;
use x509_cert::Certificate as X509;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};

/// Fulcio's OIDC issuer extension (deprecated form: the raw issuer bytes).
pub const OIDC_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension, a DER UTF8String.
pub const OIDC_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Extended key usage: code signing (every Fulcio leaf has it).
pub const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extended key usage: time stamping (RFC 3161's TSA certificates).
pub const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A certificate that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a DER X.509 certificate: {0}")]
pub struct CertificateError(String);

/// A parsed certificate with its DER bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    x509: X509,
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        let x509 = X509::from_der(der).map_err(|error| CertificateError(error.to_string()))?;
        Ok(Certificate {
            der: der.to_vec(),
            x509,
        })
    }

    /// Whether `at` is within notBefore..=notAfter.
    pub fn valid_at(&self, at: Timestamp) -> bool {
        let (not_before, not_after) = self.validity();
        not_before <= at && at <= not_after
    }

    /// notBefore and notAfter.
    pub fn validity(&self) -> (Timestamp, Timestamp) {
        let validity = &self.x509.tbs_certificate.validity;
        (
            instant(validity.not_before.to_unix_duration()),
            instant(validity.not_after.to_unix_duration()),
        )
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.x509
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap_or_default()
    }

    /// Whether `issuer` issued this certificate: names match, and the
    /// signature over the TBS part verifies with the issuer's key.
    pub fn issued_by(&self, issuer: &Certificate) -> bool {
        if self.x509.tbs_certificate.issuer != issuer.x509.tbs_certificate.subject {
            return false;
        }
        let Ok(tbs) = self.x509.tbs_certificate.to_der() else {
            return false;
        };
        let Some(signature) = self.x509.signature.as_bytes() else {
            return false;
        };
        let oid = self.x509.signature_algorithm.oid;
        issuer.verifies_with(oid, None, &tbs, signature)
    }

    /// Whether `signature` over `message` is this certificate's key's under
    /// the signature algorithm `oid` (for the bare key algorithms a CMS
    /// signer may name, the hash is `digest`).
    pub fn verifies_with(
        &self,
        oid: ObjectIdentifier,
        digest: Option<ObjectIdentifier>,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let spki = self.public_key_der();
        candidates(oid, digest).iter().any(|algorithm| {
            ParsedPublicKey::new(*algorithm, &spki)
                .is_ok_and(|key| key.verify_sig(message, signature).is_ok())
        })
    }

    /// Whether it may issue certificates: basicConstraints cA and, when
    /// keyUsage is present, keyCertSign.
    pub fn is_ca(&self) -> bool {
        let ca = self
            .extension::<BasicConstraints>(const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
            .is_some_and(|constraints| constraints.ca);
        let signs_certificates = self
            .extension::<KeyUsage>(const_oid::db::rfc5280::ID_CE_KEY_USAGE)
            .is_none_or(|usage| usage.0.contains(KeyUsages::KeyCertSign));
        ca && signs_certificates
    }

    /// Whether its extended key usage lists `purpose`.
    pub fn has_extended_key_usage(&self, purpose: ObjectIdentifier) -> bool {
        self.extension::<ExtendedKeyUsage>(ID_CE_EXT_KEY_USAGE)
            .is_some_and(|usage| usage.0.contains(&purpose))
    }

    /// The subject alternative names a Fulcio identity is: URIs and email
    /// addresses.
    pub fn identities(&self) -> Vec<String> {
        self.extension::<SubjectAltName>(ID_CE_SUBJECT_ALT_NAME)
            .map(|names| {
                names
                    .0
                    .into_iter()
                    .filter_map(|name| match name {
                        GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                        GeneralName::Rfc822Name(email) => Some(email.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The OIDC issuer Fulcio recorded: the v2 extension (a DER
    /// UTF8String), else the deprecated v1 one (the raw bytes).
    pub fn oidc_issuer(&self) -> Option<String> {
        if let Some(value) = self.extension_value(OIDC_ISSUER_V2) {
            return der::asn1::Utf8StringRef::from_der(value)
                .ok()
                .map(|text| text.as_str().to_owned());
        }
        self.extension_value(OIDC_ISSUER_V1)
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::to_owned)
    }

    fn extension_value(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.x509
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|extension| extension.extn_id == oid)
            .map(|extension| extension.extn_value.as_bytes())
    }

    fn extension<T: for<'a> Decode<'a>>(&self, oid: ObjectIdentifier) -> Option<T> {
        T::from_der(self.extension_value(oid)?).ok()
    }
}

/// Whether each certificate of `chain` is issued by the next, by a CA.
pub fn chained(chain: &[Certificate]) -> bool {
    chain
        .windows(2)
        .all(|pair| pair[1].is_ca() && pair[0].issued_by(&pair[1]))
}

fn instant(since_epoch: std::time::Duration) -> Timestamp {
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|seconds| Timestamp::from_second(seconds).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The aws-lc-rs algorithms a signature algorithm `oid` may be: ECDSA
/// names only its hash (the curve is the key's), and the bare key
/// algorithms take the hash from `digest`.
fn candidates(
    oid: ObjectIdentifier,
    digest: Option<ObjectIdentifier>,
) -> Vec<&'static dyn VerificationAlgorithm> {
    use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
    match (oid, digest) {
        (ECDSA_WITH_SHA_256, _) | (ID_EC_PUBLIC_KEY, Some(ID_SHA_256)) => {
            vec![&ECDSA_P256_SHA256_ASN1, &ECDSA_P384_SHA256_ASN1]
        }
        (ECDSA_WITH_SHA_384, _) | (ID_EC_PUBLIC_KEY, Some(ID_SHA_384)) => {
            vec![&ECDSA_P384_SHA384_ASN1, &ECDSA_P256_SHA384_ASN1]
        }
        (SHA_256_WITH_RSA_ENCRYPTION, _) | (RSA_ENCRYPTION, Some(ID_SHA_256)) => {
            vec![&RSA_PKCS1_2048_8192_SHA256]
        }
        (SHA_384_WITH_RSA_ENCRYPTION, _) | (RSA_ENCRYPTION, Some(ID_SHA_384)) => {
            vec![&RSA_PKCS1_2048_8192_SHA384]
        }
        (SHA_512_WITH_RSA_ENCRYPTION, _) | (RSA_ENCRYPTION, Some(ID_SHA_512)) => {
            vec![&RSA_PKCS1_2048_8192_SHA512]
        }
        (ED25519_OID, _) => vec![&ED25519],
        _ => Vec::new(),
    }
}
