//! Keyless verification at exact instants, against a Sigstore the testkit
//! makes per run: certificates 10 minutes long from EPOCH, Rekor entries
//! and RFC 3161 timestamps at chosen seconds.

use der::{Decode, Encode};
use hoist_testkit::keyless::{DsseSigned, GITHUB_ISSUER, Leaf, Sigstore, dsse_bundle, workflow};
use jiff::Timestamp;
use serde_json::Value;

use super::*;
use crate::core::supply_chain::bundle::Bundle;

const EPOCH: i64 = 1_800_000_000;
const IN_TOTO: &str = "application/vnd.in-toto+json";

fn main_branch() -> String {
    workflow("acme/shop", "release.yml", "refs/heads/main")
}

fn exact(subject: &str) -> Identity {
    Identity {
        issuer: GITHUB_ISSUER.to_owned(),
        subject: Subject::Exact(subject.to_owned()),
    }
}

fn policy(sigstore: &Sigstore, identities: Vec<Identity>) -> Keyless {
    Keyless {
        identities,
        root: TrustedRoot::from_json(&sigstore.trusted_root()).expect("the test root reads"),
    }
}

/// A keyless DSSE bundle's parts: a statement signed by a leaf, logged by a
/// Rekor at a chosen second.
#[derive(Clone)]
struct Signed {
    certificate: Option<Vec<u8>>,
    dsse: DsseSigned,
    entries: Vec<Value>,
    timestamps: Vec<Vec<u8>>,
}

impl Signed {
    fn logged(leaf: &Leaf, rekor: &Sigstore, integrated: i64) -> Signed {
        let dsse = leaf.sign_dsse(IN_TOTO, b"{}");
        Signed {
            certificate: Some(leaf.der.clone()),
            entries: vec![rekor.log_entry(&leaf.dsse_body(&dsse), integrated, 42)],
            dsse,
            timestamps: Vec::new(),
        }
    }

    fn bundle(&self) -> Bundle {
        let json = dsse_bundle(
            self.certificate.as_deref(),
            &self.dsse.envelope,
            &self.entries,
            &self.timestamps,
        );
        Bundle::parse(&json).expect("the bundle reads")
    }

    fn verify(&self, keyless: &Keyless) -> Result<Signer, KeylessError> {
        let bundle = self.bundle();
        verify(keyless, &bundle.signed()[0], &[])
    }
}

/// A Sigstore, a leaf of the main branch's release workflow from EPOCH,
/// and a policy trusting that workflow through the Sigstore's root.
fn release_workflow() -> (Sigstore, Leaf, Keyless) {
    let sigstore = Sigstore::generate(EPOCH);
    let leaf = sigstore.leaf(&main_branch(), GITHUB_ISSUER, EPOCH);
    let keyless = policy(&sigstore, vec![exact(&main_branch())]);
    (sigstore, leaf, keyless)
}

fn reason(keyless: &Keyless, signed: &Signed) -> FindingReason {
    signed
        .verify(keyless)
        .map_or_else(|error| error.reason(), |_| FindingReason::Verified)
}

#[test]
fn a_certificate_of_the_workflow_logged_while_valid_verifies() {
    let sigstore = Sigstore::generate(EPOCH);
    let leaf = sigstore.leaf(&main_branch(), GITHUB_ISSUER, EPOCH);
    let signed = Signed::logged(&leaf, &sigstore, EPOCH + 60);
    assert_eq!(
        signed.verify(&policy(&sigstore, vec![exact(&main_branch())])),
        Ok(Signer {
            subject: main_branch(),
            issuer: GITHUB_ISSUER.to_owned(),
            at: Timestamp::from_second(EPOCH + 60).expect("an instant"),
        })
    );
}

#[test]
fn the_subject_pattern_matches_the_whole_san_and_the_issuer_exactly() {
    let sigstore = Sigstore::generate(EPOCH);
    let pattern = Identity {
        issuer: GITHUB_ISSUER.to_owned(),
        subject: Subject::pattern(r"https://github\.com/acme/shop/\.github/workflows/[^@]+@refs/heads/main")
            .expect("a pattern"),
    };
    let keyless = policy(&sigstore, vec![pattern]);
    let signed_by = |subject: &str, issuer: &str| {
        let leaf = sigstore.leaf(subject, issuer, EPOCH);
        reason(&keyless, &Signed::logged(&leaf, &sigstore, EPOCH + 1))
    };
    assert_eq!(signed_by(&main_branch(), GITHUB_ISSUER), FindingReason::Verified);
    assert_eq!(
        signed_by(&workflow("acme/shop", "ci.yml", "refs/heads/main"), GITHUB_ISSUER),
        FindingReason::Verified
    );
    assert_eq!(
        signed_by(
            &workflow("acme/shop", "release.yml", "refs/heads/dev"),
            GITHUB_ISSUER
        ),
        FindingReason::IdentityMismatch
    );
    assert_eq!(
        signed_by(
            &workflow("acme/shop-fork", "release.yml", "refs/heads/main"),
            GITHUB_ISSUER
        ),
        FindingReason::IdentityMismatch
    );
    assert_eq!(
        signed_by(&format!("{}x", main_branch()), GITHUB_ISSUER),
        FindingReason::IdentityMismatch
    );
    assert_eq!(
        signed_by(&main_branch(), "https://gitlab.com"),
        FindingReason::IdentityMismatch
    );
}

#[test]
fn the_issuer_is_read_from_fulcios_older_extension_and_an_email_is_a_subject() {
    let sigstore = Sigstore::generate(EPOCH);
    let old = sigstore.leaf_with_v1_issuer(&main_branch(), GITHUB_ISSUER, EPOCH);
    let keyless = policy(&sigstore, vec![exact(&main_branch())]);
    assert_eq!(
        reason(&keyless, &Signed::logged(&old, &sigstore, EPOCH + 1)),
        FindingReason::Verified
    );
    let person = Identity {
        issuer: "https://accounts.google.com".to_owned(),
        subject: Subject::Exact("alice@example.com".to_owned()),
    };
    let keyless = policy(&sigstore, vec![person]);
    let alice = sigstore.leaf("alice@example.com", "https://accounts.google.com", EPOCH);
    assert_eq!(
        reason(&keyless, &Signed::logged(&alice, &sigstore, EPOCH + 1)),
        FindingReason::Verified
    );
}

#[test]
fn an_identity_mismatch_names_what_the_certificate_says() {
    let sigstore = Sigstore::generate(EPOCH);
    let other = workflow("acme/other", "release.yml", "refs/heads/main");
    let leaf = sigstore.leaf(&other, GITHUB_ISSUER, EPOCH);
    let error = Signed::logged(&leaf, &sigstore, EPOCH + 1)
        .verify(&policy(&sigstore, vec![exact(&main_branch())]))
        .expect_err("another repository");
    assert_eq!(
        error.to_string(),
        format!(
            "the certificate names issuer={GITHUB_ISSUER};subject={other}, not an identity of the policy (issuer={GITHUB_ISSUER};subject={})",
            main_branch()
        )
    );
}

#[test]
fn a_certificate_of_another_authority_is_untrusted() {
    let sigstore = Sigstore::generate(EPOCH);
    let elsewhere = Sigstore::generate(EPOCH);
    let leaf = elsewhere.leaf(&main_branch(), GITHUB_ISSUER, EPOCH);
    let keyless = policy(&sigstore, vec![exact(&main_branch())]);
    assert_eq!(
        reason(&keyless, &Signed::logged(&leaf, &sigstore, EPOCH + 1)),
        FindingReason::UntrustedCertificate
    );
    let error = Signed::logged(&leaf, &sigstore, EPOCH + 1)
        .verify(&keyless)
        .expect_err("another CA");
    assert_eq!(
        error.to_string(),
        format!(
            "the certificate of {} chains to no certificate authority of trusted root sha256:{} (https://fulcio.hoist.test), or is not for code signing",
            main_branch(),
            keyless.root.short()
        )
    );
    let no_certificate = Signed {
        certificate: None,
        ..Signed::logged(&leaf, &sigstore, EPOCH + 1)
    };
    assert_eq!(
        reason(&keyless, &no_certificate),
        FindingReason::MalformedSignature
    );
}

#[test]
fn a_changed_payload_does_not_verify() {
    let sigstore = Sigstore::generate(EPOCH);
    let leaf = sigstore.leaf(&main_branch(), GITHUB_ISSUER, EPOCH);
    let mut signed = Signed::logged(&leaf, &sigstore, EPOCH + 1);
    signed.dsse.envelope["payload"] = "W10=".into();
    let error = signed
        .verify(&policy(&sigstore, vec![exact(&main_branch())]))
        .expect_err("changed");
    assert_eq!(error.reason(), FindingReason::UntrustedSignature);
}

#[test]
fn the_signature_must_be_made_within_the_certificates_ten_minutes() {
    let (sigstore, leaf, keyless) = release_workflow();
    let at = |integrated| reason(&keyless, &Signed::logged(&leaf, &sigstore, integrated));
    assert_eq!(at(EPOCH), FindingReason::Verified);
    assert_eq!(at(EPOCH + 600), FindingReason::Verified);
    assert_eq!(at(EPOCH + 601), FindingReason::CertificateExpired);
    assert_eq!(at(EPOCH - 1), FindingReason::CertificateExpired);
    let error = Signed::logged(&leaf, &sigstore, EPOCH + 3600)
        .verify(&keyless)
        .expect_err("an hour late");
    assert_eq!(
        error.to_string(),
        "the signature was made at 2027-01-15T09:00:00Z, outside the certificate's validity 2027-01-15T08:00:00Z to 2027-01-15T08:10:00Z (or its authority's)"
    );
}

#[test]
fn only_a_log_or_timestamp_authority_of_the_root_proves_the_time() {
    let (sigstore, leaf, keyless) = release_workflow();
    let elsewhere = Sigstore::generate(EPOCH);
    let unlogged = Signed {
        entries: Vec::new(),
        ..Signed::logged(&leaf, &sigstore, EPOCH + 1)
    };
    let error = unlogged.verify(&keyless).expect_err("no time");
    assert_eq!(error.reason(), FindingReason::NoTrustedTimestamp);
    assert_eq!(
        error.to_string(),
        "nothing proves when the signature was made: the bundle has no Rekor entry and no RFC 3161 timestamp"
    );
    let foreign_log = Signed::logged(&leaf, &elsewhere, EPOCH + 1);
    assert_eq!(reason(&keyless, &foreign_log), FindingReason::NoTrustedTimestamp);

    let mut forged = Signed::logged(&leaf, &sigstore, EPOCH + 1);
    forged.entries[0]["integratedTime"] = (EPOCH + 2).to_string().into();
    let error = forged.verify(&keyless).expect_err("a changed entry");
    assert_eq!(
        error.to_string(),
        "nothing proves when the signature was made: Rekor entry 42: the signed entry timestamp does not verify with the log's key"
    );

    // An entry of the log, but for another signature by the same certificate.
    let mut borrowed = Signed::logged(&leaf, &sigstore, EPOCH + 1);
    let other = leaf.sign(b"another artifact");
    borrowed.entries = vec![sigstore.log_entry(
        &leaf.hashedrekord_body(b"another artifact", &other),
        EPOCH + 1,
        43,
    )];
    let error = borrowed.verify(&keyless).expect_err("another signature");
    assert_eq!(
        error.to_string(),
        "nothing proves when the signature was made: Rekor entry 43 records another signature or certificate than the bundle's"
    );
}

#[test]
fn a_hashedrekord_entry_of_the_signature_proves_the_time() {
    let sigstore = Sigstore::generate(EPOCH);
    let leaf = sigstore.leaf(&main_branch(), GITHUB_ISSUER, EPOCH);
    let mut signed = Signed::logged(&leaf, &sigstore, EPOCH + 1);
    let pae = crate::core::supply_chain::envelope::pae(IN_TOTO, &signed.dsse.payload);
    signed.entries = vec![sigstore.log_entry(
        &leaf.hashedrekord_body(&pae, &signed.dsse.signature),
        EPOCH + 5,
        9,
    )];
    let verified = signed.verify(&policy(&sigstore, vec![exact(&main_branch())]));
    assert_eq!(verified.map(|signer| signer.at.as_second()), Ok(EPOCH + 5));
}

#[test]
fn an_rfc3161_timestamp_of_the_signature_by_the_roots_authority_proves_the_time() {
    let (sigstore, leaf, keyless) = release_workflow();
    let elsewhere = Sigstore::generate(EPOCH);
    let unlogged = Signed {
        entries: Vec::new(),
        ..Signed::logged(&leaf, &sigstore, EPOCH)
    };
    let signature = unlogged.dsse.signature.clone();
    let stamped = |tsa: &Sigstore, over: &[u8], at: i64| Signed {
        timestamps: vec![tsa.timestamp(over, at)],
        ..unlogged.clone()
    };
    let good = stamped(&sigstore, &signature, EPOCH + 30);
    assert_eq!(
        good.verify(&keyless).map(|signer| signer.at.as_second()),
        Ok(EPOCH + 30)
    );
    assert_eq!(
        reason(&keyless, &stamped(&sigstore, &signature, EPOCH + 900)),
        FindingReason::CertificateExpired
    );
    let error = stamped(&elsewhere, &signature, EPOCH + 30)
        .verify(&keyless)
        .expect_err("another TSA");
    assert_eq!(
        error.to_string(),
        "nothing proves when the signature was made: the RFC 3161 timestamp is signed by no timestamp authority of the trusted root"
    );
    let error = stamped(&sigstore, b"another signature", EPOCH + 30)
        .verify(&keyless)
        .expect_err("another signature");
    assert_eq!(
        error.to_string(),
        "nothing proves when the signature was made: the RFC 3161 timestamp is of another signature (messageImprint differs)"
    );
    // A bare TimeStampToken (the response's token alone) is read too.
    let mut bare = good.clone();
    bare.timestamps = vec![
        x509_tsp::TimeStampResp::from_der(&good.timestamps[0])
            .expect("a response")
            .time_stamp_token
            .expect("a token")
            .to_der()
            .expect("DER"),
    ];
    assert_eq!(reason(&keyless, &bare), FindingReason::Verified);
    let mut garbled = stamped(&sigstore, &signature, EPOCH + 30);
    garbled.timestamps = vec![b"not DER".to_vec()];
    assert_eq!(reason(&keyless, &garbled), FindingReason::NoTrustedTimestamp);
}

#[test]
fn a_trusted_root_is_read_as_protobuf_specs_json() {
    let sigstore = Sigstore::generate(EPOCH);
    let json = sigstore.trusted_root();
    let root = TrustedRoot::from_json(&json).expect("reads");
    assert_eq!(root.certificate_authorities.len(), 1);
    assert_eq!(root.certificate_authorities[0].name, "https://fulcio.hoist.test");
    assert_eq!(root.certificate_authorities[0].chain.len(), 2);
    assert_eq!(root.tlogs[0].log_id, sigstore.log_id());
    assert_eq!(
        root.tlogs[0].valid_for.start,
        Some(Timestamp::from_second(EPOCH - 86_400).expect("an instant"))
    );
    assert_eq!(root.timestamp_authorities.len(), 1);
    assert_eq!(
        root.fingerprint,
        crate::core::supply_chain::keys::fingerprint(&json)
    );

    let mut value: Value = serde_json::from_slice(&json).expect("JSON");
    value["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=0.2".into();
    assert_eq!(
        TrustedRoot::from_json(&serde_json::to_vec(&value).expect("JSON")),
        Err(root::RootError::MediaType(
            "application/vnd.dev.sigstore.trustedroot+json;version=0.2".to_owned()
        ))
    );
    let mut value: Value = serde_json::from_slice(&json).expect("JSON");
    value["certificateAuthorities"] = Value::Array(Vec::new());
    assert_eq!(
        TrustedRoot::from_json(&serde_json::to_vec(&value).expect("JSON")),
        Err(root::RootError::NoAuthority)
    );
    let mut value: Value = serde_json::from_slice(&json).expect("JSON");
    value["tlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ECDSA_P521_SHA_512".into();
    assert_eq!(
        TrustedRoot::from_json(&serde_json::to_vec(&value).expect("JSON"))
            .map_err(|error| error.to_string())
            .map(|_| ()),
        Err(
            "tlogs[0].publicKey.keyDetails: \"PKIX_ECDSA_P521_SHA_512\" is not one of PKIX_ECDSA_P256_SHA_256, PKIX_ECDSA_P384_SHA_384, PKIX_ED25519, PKIX_RSA_PKCS1V15_2048_SHA256, PKIX_RSA_PKCS1V15_3072_SHA256, PKIX_RSA_PKCS1V15_4096_SHA256"
                .to_owned()
        )
    );
    let mut value: Value = serde_json::from_slice(&json).expect("JSON");
    value["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = "AAAA".into();
    assert!(
        TrustedRoot::from_json(&serde_json::to_vec(&value).expect("JSON")).is_err_and(|error| error
            .to_string()
            .starts_with(
                "certificateAuthorities[0].certChain.certificates[0]: is not a DER X.509 certificate"
            ))
    );
}

#[test]
fn a_subject_pattern_that_does_not_compile_says_so() {
    assert_eq!(
        Subject::pattern("(").map(|_| ()).map_err(|error| error.pattern),
        Err("(".to_owned())
    );
}
