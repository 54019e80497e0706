//! A Sigstore of the tests' own, made per run: a Fulcio-like certificate
//! authority (root and intermediate) issuing short-lived leaf certificates
//! with Fulcio's extensions, a Rekor key signing entry timestamps, a
//! timestamp authority making RFC 3161 tokens, and the `trusted_root.json`
//! naming them all, in the shapes Fulcio, Rekor and protobuf-specs give them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cmpv2::status::{PkiStatus, PkiStatusInfo};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNED_DATA};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_SHA_256};
use der::asn1::{GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PublicKeyData,
    SanType, SigningKey,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::attr::Attribute;
use x509_tsp::{MessageImprint, TimeStampResp, TspVersion, TstInfo};

use crate::signing::{BUNDLE_V0_3, Bundle, COSIGN_SIGN_V1, IN_TOTO, statement};

/// GitHub Actions' OIDC issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The SAN Fulcio gives a GitHub Actions workflow run:
/// `https://github.com/{repository}/.github/workflows/{file}@{git_ref}`.
pub fn workflow(repository: &str, file: &str, git_ref: &str) -> String {
    format!("https://github.com/{repository}/.github/workflows/{file}@{git_ref}")
}

/// A certificate and the key it certifies.
struct Authority {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

/// A leaf certificate Fulcio-like issued, and its private key.
pub struct Leaf {
    pub der: Vec<u8>,
    key: KeyPair,
}

impl Leaf {
    /// ECDSA P-256 over SHA-256, ASN.1 DER, as cosign signs.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).expect("the leaf key signs")
    }

    /// A DSSE envelope of `payload` (of `payload_type`) signed by this leaf.
    pub fn sign_dsse(&self, payload_type: &str, payload: &[u8]) -> DsseSigned {
        let mut message =
            format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
        message.extend_from_slice(payload);
        let signature = self.sign(&message);
        let envelope = json!({
            "payloadType": payload_type,
            "payload": STANDARD.encode(payload),
            "signatures": [{"sig": STANDARD.encode(&signature)}],
        });
        DsseSigned {
            envelope,
            payload: payload.to_vec(),
            signature,
        }
    }

    /// The canonicalized body of Rekor's `dsse` 0.0.1 entry for `signed`.
    pub fn dsse_body(&self, signed: &DsseSigned) -> Vec<u8> {
        let envelope = serde_json::to_vec(&signed.envelope).expect("JSON");
        serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": sha256_hex(&envelope)},
                "payloadHash": {"algorithm": "sha256", "value": sha256_hex(&signed.payload)},
                "signatures": [{
                    "signature": STANDARD.encode(&signed.signature),
                    "verifier": STANDARD.encode(self.pem()),
                }],
            },
        }))
        .expect("JSON")
    }

    /// The canonicalized body of Rekor's `hashedrekord` 0.0.1 entry for a
    /// message signature: the message's SHA-256, `signature` and this leaf.
    pub fn hashedrekord_body(&self, message: &[u8], signature: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": sha256_hex(message)}},
                "signature": {
                    "content": STANDARD.encode(signature),
                    "publicKey": {"content": STANDARD.encode(self.pem())},
                },
            },
        }))
        .expect("JSON")
    }

    /// The certificate as PEM (as Rekor records a verifier).
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }
}

/// The test Sigstore: everything is valid from a day before `epoch` on.
pub struct Sigstore {
    epoch: i64,
    ca_root: Authority,
    ca_intermediate: Authority,
    rekor: KeyPair,
    ct_log: KeyPair,
    tsa_root: Authority,
    tsa_leaf: Authority,
}

fn instant(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("a representable instant")
}

fn rfc3339(seconds: i64) -> String {
    instant(seconds).format(&Rfc3339).expect("RFC 3339")
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "hoist.test");
    name.push(DnType::CommonName, common_name);
    name
}

fn authority(common_name: &str, epoch: i64, issuer: Option<&Authority>) -> Authority {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("a P-384 key");
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = instant(epoch - 86_400);
    params.not_after = instant(epoch + 10 * 365 * 86_400);
    let certificate = match issuer {
        None => params.self_signed(&key),
        Some(issuer) => params.signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key)),
    }
    .expect("a CA certificate");
    Authority {
        der: certificate.der().to_vec(),
        params,
        key,
    }
}

fn tsa_leaf(epoch: i64, root: &Authority) -> Authority {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let mut params = CertificateParams::default();
    params.distinguished_name = name("hoist test timestamp authority");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::TimeStamping];
    params.not_before = instant(epoch - 86_400);
    params.not_after = instant(epoch + 10 * 365 * 86_400);
    let certificate = params
        .signed_by(&key, &Issuer::from_params(&root.params, &root.key))
        .expect("a TSA certificate");
    Authority {
        der: certificate.der().to_vec(),
        params,
        key,
    }
}

/// Fulcio's OIDC issuer extensions: 1.3.6.1.4.1.57264.1.1 holds the raw
/// issuer (deprecated), 1.3.6.1.4.1.57264.1.8 a DER UTF8String.
fn issuer_extensions(issuer: &str) -> Vec<CustomExtension> {
    let utf8 = der::asn1::Utf8StringRef::new(issuer)
        .and_then(|text| text.to_der())
        .expect("a UTF8String");
    vec![
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 1], issuer.as_bytes().to_vec()),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8),
    ]
}

impl Sigstore {
    /// A new Sigstore whose authorities are valid around `epoch` (Unix seconds).
    pub fn generate(epoch: i64) -> Sigstore {
        let ca_root = authority("hoist test fulcio root", epoch, None);
        let ca_intermediate = authority("hoist test fulcio intermediate", epoch, Some(&ca_root));
        let tsa_root = authority("hoist test tsa root", epoch, None);
        let tsa_leaf = tsa_leaf(epoch, &tsa_root);
        Sigstore {
            epoch,
            ca_root,
            ca_intermediate,
            rekor: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key"),
            ct_log: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key"),
            tsa_root,
            tsa_leaf,
        }
    }

    /// The Rekor log's id: the SHA-256 of its key's DER SubjectPublicKeyInfo.
    pub fn log_id(&self) -> Vec<u8> {
        Sha256::digest(self.rekor.subject_public_key_info()).to_vec()
    }

    /// `trusted_root.json` as Sigstore's TUF repository serves it.
    pub fn trusted_root(&self) -> Vec<u8> {
        let start = rfc3339(self.epoch - 86_400);
        let raw = |der: &[u8]| json!({"rawBytes": STANDARD.encode(der)});
        let rekor_key = self.rekor.subject_public_key_info();
        let log = |url: &str, key: &[u8]| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(key),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start}
                },
                "logId": {"keyId": STANDARD.encode(Sha256::digest(key))}
            })
        };
        let root = json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log("https://rekor.hoist.test", &rekor_key)],
            "certificateAuthorities": [{
                "subject": {"organization": "hoist.test", "commonName": "hoist test fulcio"},
                "uri": "https://fulcio.hoist.test",
                "certChain": {"certificates": [raw(&self.ca_intermediate.der), raw(&self.ca_root.der)]},
                "validFor": {"start": start}
            }],
            "ctlogs": [log("https://ctfe.hoist.test/test", &self.ct_log.subject_public_key_info())],
            "timestampAuthorities": [{
                "subject": {"organization": "hoist.test", "commonName": "hoist test tsa"},
                "uri": "https://tsa.hoist.test/api/v1/timestamp",
                "certChain": {"certificates": [raw(&self.tsa_leaf.der), raw(&self.tsa_root.der)]},
                "validFor": {"start": start}
            }]
        });
        serde_json::to_vec_pretty(&root).expect("JSON")
    }

    /// A leaf certificate for `subject` (a URI, or an email with `@` and
    /// no scheme) from `issuer`, valid from `not_before` for 10 minutes,
    /// as Fulcio issues them.
    pub fn leaf(&self, subject: &str, issuer: &str, not_before: i64) -> Leaf {
        self.issue(subject, issuer_extensions(issuer), not_before)
    }

    /// A leaf as Fulcio issued them before 1.2: the OIDC issuer only in the
    /// deprecated extension 1.3.6.1.4.1.57264.1.1 (the raw issuer).
    pub fn leaf_with_v1_issuer(&self, subject: &str, issuer: &str, not_before: i64) -> Leaf {
        let mut extensions = issuer_extensions(issuer);
        extensions.truncate(1);
        self.issue(subject, extensions, not_before)
    }

    fn issue(&self, subject: &str, extensions: Vec<CustomExtension>, not_before: i64) -> Leaf {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        let san = subject.to_owned().try_into().expect("an IA5 subject");
        params.subject_alt_names = vec![if subject.contains("://") {
            SanType::URI(san)
        } else {
            SanType::Rfc822Name(san)
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.custom_extensions = extensions;
        params.not_before = instant(not_before);
        params.not_after = instant(not_before + 600);
        let certificate = params
            .signed_by(
                &key,
                &Issuer::from_params(&self.ca_intermediate.params, &self.ca_intermediate.key),
            )
            .expect("a leaf certificate");
        Leaf {
            der: certificate.der().to_vec(),
            key,
        }
    }

    /// A bundle's `tlogEntries[]` element for `body` (see
    /// [`Leaf::dsse_body`], [`Leaf::hashedrekord_body`]) integrated at
    /// `integrated_time`, with the
    /// log's signed entry timestamp over it.
    pub fn log_entry(&self, body: &[u8], integrated_time: i64, log_index: i64) -> Value {
        let log_id = self.log_id();
        let hex: String = log_id.iter().map(|byte| format!("{byte:02x}")).collect();
        let canonical = json!({
            "body": STANDARD.encode(body),
            "integratedTime": integrated_time,
            "logID": hex,
            "logIndex": log_index,
        });
        let set = self
            .rekor
            .sign(&serde_json::to_vec(&canonical).expect("JSON"))
            .expect("the log key signs");
        let kind = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|body| body["kind"].as_str().map(str::to_owned))
            .unwrap_or_default();
        json!({
            "logIndex": log_index.to_string(),
            "logId": {"keyId": STANDARD.encode(&log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(set)},
            "canonicalizedBody": STANDARD.encode(body),
        })
    }

    /// The timestamp authority's RFC 3161 response (DER `TimeStampResp`,
    /// status granted, with its token) over `signature`, made at `at`, as a
    /// bundle's `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`
    /// holds it.
    pub fn timestamp(&self, signature: &[u8], at: i64) -> Vec<u8> {
        let sha256 = AlgorithmIdentifierOwned {
            oid: ID_SHA_256,
            parameters: None,
        };
        let gen_time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            u64::try_from(at).expect("an instant after 1970"),
        ))
        .expect("a GeneralizedTime");
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.2"),
            message_imprint: MessageImprint {
                hash_algorithm: sha256.clone(),
                hashed_message: OctetString::new(Sha256::digest(signature).to_vec()).expect("an imprint"),
            },
            serial_number: Int::new(&serial(at)).expect("a serial"),
            gen_time,
            accuracy: None,
            ordering: false,
            nonce: None,
            tsa: None,
            extensions: None,
        }
        .to_der()
        .expect("a TSTInfo");
        let attribute = |oid, value: Any| Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).expect("one value"),
        };
        let signed_attributes = SetOfVec::try_from(vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&TST_INFO).expect("an OID")),
            attribute(
                ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(Sha256::digest(&tst).to_vec()).expect("a digest"))
                    .expect("a digest"),
            ),
        ])
        .expect("signed attributes");
        let signature_value = self
            .tsa_leaf
            .key
            .sign(&signed_attributes.to_der().expect("DER"))
            .expect("the TSA key signs");
        let leaf = x509_cert::Certificate::from_der(&self.tsa_leaf.der).expect("the TSA certificate");
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: leaf.tbs_certificate.issuer.clone(),
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: Some(signed_attributes),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: OctetString::new(signature_value).expect("a signature"),
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![sha256]).expect("one algorithm"),
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: TST_INFO,
                econtent: Some(Any::encode_from(&OctetString::new(tst).expect("a TSTInfo")).expect("DER")),
            },
            certificates: None,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).expect("one signer")),
        };
        TimeStampResp {
            status: PkiStatusInfo {
                status: PkiStatus::Accepted,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(ContentInfo {
                content_type: ID_SIGNED_DATA,
                content: Any::encode_from(&signed_data).expect("DER"),
            }),
        }
        .to_der()
        .expect("a timestamp response")
    }
}

/// The minimal two's complement bytes of a positive `number`, as DER
/// INTEGERs are encoded.
fn serial(number: i64) -> Vec<u8> {
    let bytes = number.to_be_bytes();
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len() - 1);
    let mut minimal = bytes[first..].to_vec();
    if minimal[0] & 0x80 != 0 {
        minimal.insert(0, 0);
    }
    minimal
}

/// RFC 3161's `id-ct-TSTInfo`.
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// How a keyless bundle proves when it was signed.
#[derive(Debug, Clone, Copy)]
pub enum Proof {
    /// A Rekor entry integrated at this second, with its signed entry timestamp.
    Logged(i64),
    /// An RFC 3161 timestamp of this second.
    Stamped(i64),
    /// Neither.
    Unproven,
}

impl Sigstore {
    /// What `cosign sign` writes keyless in the bundle format (its default
    /// since v3): a DSSE envelope around a cosign/sign/v1 statement about
    /// `names_digest`, signed by `leaf`, with the proof of time.
    pub fn signature_bundle(&self, leaf: &Leaf, names_digest: &str, proof: Proof) -> Bundle {
        self.attestation_bundle(leaf, names_digest, COSIGN_SIGN_V1, json!({}), proof)
    }

    /// What `cosign attest --type … --predicate FILE` writes keyless: a DSSE
    /// envelope around a statement of `predicate` about `subject_digest`.
    pub fn attestation_bundle(
        &self,
        leaf: &Leaf,
        subject_digest: &str,
        predicate_type: &str,
        predicate: Value,
        proof: Proof,
    ) -> Bundle {
        let statement = statement(subject_digest, predicate_type, predicate);
        let dsse = leaf.sign_dsse(IN_TOTO, &statement);
        let (entries, timestamps) = match proof {
            Proof::Logged(at) => (vec![self.log_entry(&leaf.dsse_body(&dsse), at, 1)], Vec::new()),
            Proof::Stamped(at) => (Vec::new(), vec![self.timestamp(&dsse.signature, at)]),
            Proof::Unproven => (Vec::new(), Vec::new()),
        };
        Bundle {
            json: dsse_bundle(Some(&leaf.der), &dsse.envelope, &entries, &timestamps),
            content: "dsse-envelope",
            predicate_type: Some(predicate_type.to_owned()),
        }
    }
}

/// A DSSE envelope (its JSON) signed by a leaf, with its payload and signature.
#[derive(Debug, Clone)]
pub struct DsseSigned {
    pub envelope: Value,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A Sigstore bundle v0.3 of a keyless DSSE signature, as cosign v3 writes
/// it: the leaf `certificate` (none: a `publicKey` hint instead), the
/// Rekor entries and the RFC 3161 timestamps.
pub fn dsse_bundle(
    certificate: Option<&[u8]>,
    envelope: &Value,
    tlog_entries: &[Value],
    timestamps: &[Vec<u8>],
) -> Vec<u8> {
    let signer = match certificate {
        Some(der) => json!({"certificate": {"rawBytes": STANDARD.encode(der)}}),
        None => json!({"publicKey": {"hint": ""}}),
    };
    let mut material = signer;
    material["tlogEntries"] = Value::Array(tlog_entries.to_vec());
    material["timestampVerificationData"] = json!({
        "rfc3161Timestamps": timestamps
            .iter()
            .map(|token| json!({"signedTimestamp": STANDARD.encode(token)}))
            .collect::<Vec<_>>(),
    });
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE_V0_3,
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    }))
    .expect("JSON")
}
