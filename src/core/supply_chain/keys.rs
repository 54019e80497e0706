//! Public keys a policy trusts, read from PEM, and the signatures they verify.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, VerificationAlgorithm,
};
use base64::Engine;
use sha2::{Digest, Sha256};

/// A public key a policy trusts.
#[derive(Clone)]
pub struct TrustedKey {
    /// The policy's name for it.
    pub name: String,
    /// `sha256:` and the hex SHA-256 of its DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// The algorithms tried, each with the key parsed for it.
    parsed: Vec<ParsedPublicKey>,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PartialEq for TrustedKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.fingerprint == other.fingerprint
    }
}

impl Eq for TrustedKey {}

/// Why a PEM text is not a usable key. The caller names the key and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is not PEM: {0}")]
    NotPem(String),
    #[error("is a PEM {0:?} block, not PUBLIC KEY")]
    WrongBlock(String),
    #[error("is not an ECDSA P-256/P-384, Ed25519 or RSA public key")]
    Unsupported,
}

/// The algorithms a key of each kind verifies with: cosign signs with
/// ECDSA over SHA-256 (P-256) or SHA-384 (P-384), Ed25519, or RSA PKCS#1
/// v1.5 / PSS over SHA-256.
const ALGORITHMS: [&'static dyn VerificationAlgorithm; 5] = [
    &ECDSA_P256_SHA256_ASN1,
    &ECDSA_P384_SHA384_ASN1,
    &ED25519,
    &RSA_PKCS1_2048_8192_SHA256,
    &RSA_PSS_2048_8192_SHA256,
];

impl TrustedKey {
    /// Reads the first `PUBLIC KEY` block of `text`.
    pub fn from_pem(name: &str, text: &str) -> Result<TrustedKey, KeyError> {
        let block = pem::parse(text.trim()).map_err(|error| KeyError::NotPem(error.to_string()))?;
        if block.tag() != "PUBLIC KEY" {
            return Err(KeyError::WrongBlock(block.tag().to_owned()));
        }
        TrustedKey::from_der(name, block.contents())
    }

    /// From a DER SubjectPublicKeyInfo, exactly: aws-lc would also take a
    /// raw 32-byte Ed25519 key and ignore bytes after the structure, which
    /// would give one key several fingerprints (and policies).
    pub fn from_der(name: &str, der: &[u8]) -> Result<TrustedKey, KeyError> {
        if !is_one_der_sequence(der) {
            return Err(KeyError::Unsupported);
        }
        let parsed: Vec<ParsedPublicKey> = ALGORITHMS
            .iter()
            .filter_map(|algorithm| ParsedPublicKey::new(*algorithm, der).ok())
            .collect();
        if parsed.is_empty() {
            return Err(KeyError::Unsupported);
        }
        Ok(TrustedKey {
            name: name.to_owned(),
            fingerprint: fingerprint(der),
            parsed,
        })
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .any(|key| key.verify_sig(message, signature).is_ok())
    }

    /// Whether `signature` is this key's over a message of which `digest`
    /// (by `algorithm`) is the hash: a Sigstore message signature names
    /// the signed artifact by its digest only.
    pub fn verifies_digest(
        &self,
        algorithm: &'static aws_lc_rs::digest::Algorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(digest) = aws_lc_rs::digest::Digest::import_less_safe(digest, algorithm) else {
            return false;
        };
        self.parsed
            .iter()
            .any(|key| key.verify_digest_sig(&digest, signature).is_ok())
    }

    /// The fingerprint as Sigstore clients write a bundle's public key
    /// hint: the base64 of the SHA-256 of the DER key.
    pub fn sigstore_hint(&self) -> String {
        let hex = self.fingerprint.trim_start_matches("sha256:");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|at| hex.get(at..at + 2))
            .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// The fingerprint's first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        let hex = self.fingerprint.trim_start_matches("sha256:");
        &hex[..hex.len().min(12)]
    }
}

/// Whether `der` is one DER SEQUENCE opening with another (a
/// SubjectPublicKeyInfo's AlgorithmIdentifier) and nothing more: the
/// header's length covers exactly the rest. 32 bytes are never one (an
/// Ed25519 SubjectPublicKeyInfo has 44), whatever they look like.
fn is_one_der_sequence(der: &[u8]) -> bool {
    if der.len() == 32 {
        return false;
    }
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (length, body) = if first & 0x80 == 0 {
        (usize::from(*first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return false;
        }
        let (length, body) = rest.split_at(octets);
        (
            length.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)),
            body,
        )
    };
    length == body.len() && body.first() == Some(&0x30)
}

/// `sha256:<hex>` of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::from("sha256:"), |mut hex, byte| {
            hex.push_str(&format!("{byte:02x}"));
            hex
        })
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys made per test run (the testkit's, which the scenarios sign with too).

    pub use hoist_testkit::signing::SigningKey;

    /// A test key as a policy trusts it.
    pub trait Trusted {
        fn trusted(&self, name: &str) -> super::TrustedKey;
    }

    impl Trusted for SigningKey {
        fn trusted(&self, name: &str) -> super::TrustedKey {
            super::TrustedKey::from_pem(name, &self.public_pem()).expect("own key parses")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::{SigningKey, Trusted};
    use super::*;

    #[test]
    fn a_p256_key_verifies_its_own_signatures_only() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let trusted = key.trusted("release");
        let signature = key.sign(b"payload");
        assert!(trusted.verifies(b"payload", &signature));
        assert!(!trusted.verifies(b"payload!", &signature));
        assert!(!trusted.verifies(b"payload", &other.sign(b"payload")));
        assert!(!trusted.verifies(b"payload", b"not a signature"));
        assert_eq!(trusted.fingerprint.len(), 71);
        assert_ne!(trusted.fingerprint, other.trusted("other").fingerprint);
    }

    #[test]
    fn what_is_not_a_public_key_says_what_it_is() {
        assert!(matches!(
            TrustedKey::from_pem("k", "hello"),
            Err(KeyError::NotPem(_))
        ));
        let private = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            TrustedKey::from_pem("k", private).unwrap_err(),
            KeyError::WrongBlock("EC PRIVATE KEY".into())
        );
        let garbage = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
        assert_eq!(
            TrustedKey::from_pem("k", &garbage).unwrap_err(),
            KeyError::Unsupported
        );
    }

    #[test]
    fn only_an_exact_subject_public_key_info_is_a_key() {
        let key = SigningKey::generate();
        let der = pem::parse(key.public_pem()).expect("PEM").into_contents();
        assert!(TrustedKey::from_der("k", &der).is_ok());
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(
            TrustedKey::from_der("k", &longer).unwrap_err(),
            KeyError::Unsupported
        );
        // aws-lc alone would read these as a raw Ed25519 key.
        assert_eq!(
            TrustedKey::from_der("k", &[7; 32]).unwrap_err(),
            KeyError::Unsupported
        );
        assert_eq!(
            TrustedKey::from_der("k", &der[..der.len() - 1]).unwrap_err(),
            KeyError::Unsupported
        );
        let mut sequence_of_32 = vec![0x30, 30, 0x30];
        sequence_of_32.resize(32, 0);
        assert_eq!(
            TrustedKey::from_der("k", &sequence_of_32).unwrap_err(),
            KeyError::Unsupported
        );
    }

    #[test]
    fn rsa_keys_whose_length_takes_two_octets_are_read_and_verify() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
        for size in [KeySize::Rsa2048, KeySize::Rsa4096] {
            let pair = KeyPair::generate(size).expect("RSA key");
            let der = pair.public_key().as_der().expect("SubjectPublicKeyInfo");
            assert_eq!(der.as_ref()[..2], [0x30, 0x82], "long-form length");
            let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()));
            let key = TrustedKey::from_pem("rsa", &pem).expect("an RSA key is read");
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                b"payload",
                &mut signature,
            )
            .expect("sign");
            assert!(key.verifies(b"payload", &signature));
            assert!(!key.verifies(b"payload!", &signature));
        }
    }
}
