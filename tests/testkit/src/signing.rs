//! Supply-chain material made by the tests: a P-256 key pair per test run,
//! cosign simple-signing signatures and DSSE attestations (SLSA provenance,
//! vulnerability scans) signed with it, and the same as Sigstore bundles the
//! way cosign v3 writes them by default ([`signature_bundle`],
//! [`attestation_bundle`], attached as cosign's `specs/BUNDLE_SPEC.md` says by
//! [`push_bundles`] and [`push_bundle_native`]), pushed to the real test registry
//! with oci-client the way cosign lays them out: under the tags
//! `sha256-<hex>.sig` and `sha256-<hex>.att`, or as OCI 1.1 artifacts with a
//! `subject`, listed in the referrers tag-schema index `sha256-<hex>`
//! (what clients read where the registry has no referrers API, as Debian's
//! docker-registry 2.8 has none), or listed by the registry itself through
//! the referrers API ([`push_referrer_native`], through
//! [`crate::referrers::ReferrersRegistry`]).

use std::collections::BTreeMap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageIndex, OciImageManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::registry::PushedImage;

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
pub const VULN_V1: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// The Sigstore bundle media type cosign v3 writes (bundle, layer and
/// referrer artifactType alike).
pub const BUNDLE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The predicate type of the statement `cosign sign` signs in the bundle format.
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";
/// The OCI empty descriptor's media type: a bundle referrer's config.
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An ECDSA P-256 key pair, as `cosign generate-key-pair` makes.
pub struct SigningKey(EcdsaKeyPair);

impl SigningKey {
    pub fn generate() -> SigningKey {
        SigningKey(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key generation"))
    }

    /// A key written as unencrypted PKCS#8 PEM, as `openssl genpkey
    /// -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it.
    pub fn from_pkcs8_pem(text: &str) -> anyhow::Result<SigningKey> {
        let block = pem::parse(text).map_err(|error| anyhow::anyhow!("not a PEM block: {error}"))?;
        anyhow::ensure!(
            block.tag() == "PRIVATE KEY",
            "a PEM block of {} where an unencrypted PKCS#8 PRIVATE KEY was expected",
            block.tag()
        );
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, block.contents())
            .map(SigningKey)
            .map_err(|error| anyhow::anyhow!("not an ECDSA P-256 PKCS#8 key: {error}"))
    }

    /// `cosign.pub`.
    pub fn public_pem(&self) -> String {
        let der = self.0.public_key().as_der().expect("public key DER");
        pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0
            .sign(&SystemRandom::new(), message)
            .expect("signing")
            .as_ref()
            .to_vec()
    }

    /// Signs the message whose SHA-256 is `sha256` (a manifest, through the
    /// digest that names it).
    pub fn sign_sha256(&self, sha256: &[u8]) -> Vec<u8> {
        let digest = aws_lc_rs::digest::Digest::import_less_safe(sha256, &aws_lc_rs::digest::SHA256)
            .expect("a SHA-256 digest");
        self.0.sign_digest(&digest).expect("signing").as_ref().to_vec()
    }

    /// The public key hint sigstore-go's keypairs write into a bundle:
    /// the base64 SHA-256 of the DER public key.
    pub fn hint(&self) -> String {
        let der = self.0.public_key().as_der().expect("public key DER");
        STANDARD.encode(Sha256::digest(der.as_ref()))
    }
}

/// One layer of a signature or attestation manifest.
#[derive(Clone, Debug)]
pub struct Layer {
    pub media_type: &'static str,
    pub annotations: BTreeMap<String, String>,
    pub content: Vec<u8>,
}

/// A cosign signature of `image` whose payload names `names_digest`
/// (the image's own digest, or another for a tampered variant).
pub fn signature(key: &SigningKey, image: &PushedImage, names_digest: &str) -> Layer {
    let payload = serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": image.reference.rsplit_once(':').map_or(image.reference.as_str(), |(r, _)| r)},
            "image": {"docker-manifest-digest": names_digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .expect("payload");
    Layer {
        media_type: SIMPLE_SIGNING,
        annotations: BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            STANDARD.encode(key.sign(&payload)),
        )]),
        content: payload,
    }
}

/// An in-toto v1 statement of `predicate` about `subject_digest`.
pub(crate) fn statement(subject_digest: &str, predicate_type: &str, predicate: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": subject_digest.trim_start_matches("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
    .expect("statement")
}

/// A DSSE envelope of the in-toto `statement`, signed by `key`.
fn envelope(key: &SigningKey, statement: &[u8]) -> Value {
    let mut message = format!("DSSEv1 {} {IN_TOTO} {} ", IN_TOTO.len(), statement.len()).into_bytes();
    message.extend_from_slice(statement);
    json!({
        "payloadType": IN_TOTO,
        "payload": STANDARD.encode(statement),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(key.sign(&message))}],
    })
}

/// A DSSE attestation of `predicate` about `subject_digest`, signed by `key`.
pub fn attestation(key: &SigningKey, subject_digest: &str, predicate_type: &str, predicate: Value) -> Layer {
    statement_attestation(
        key,
        &statement(subject_digest, predicate_type, predicate),
        predicate_type,
    )
}

/// A DSSE attestation layer of `statement` (an in-toto statement of
/// `predicate_type`, as a tool wrote it), signed by `key`.
pub fn statement_attestation(key: &SigningKey, statement: &[u8], predicate_type: &str) -> Layer {
    let envelope = envelope(key, statement);
    Layer {
        media_type: DSSE,
        annotations: BTreeMap::from([("predicateType".to_string(), predicate_type.to_string())]),
        content: serde_json::to_vec(&envelope).expect("envelope"),
    }
}

/// A Sigstore bundle, and what cosign annotates its referrer manifest with.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The bundle JSON.
    pub json: Vec<u8>,
    /// `dev.sigstore.bundle.content`: `dsse-envelope` or `message-signature`.
    pub content: &'static str,
    /// `dev.sigstore.bundle.predicateType`, for an envelope.
    pub predicate_type: Option<String>,
}

impl Bundle {
    /// The referrer's one layer: the bundle JSON, titled by its digest.
    pub fn layer(&self) -> Layer {
        let title = format!("{}.sigstore.json", digest_of(&self.json).replace(':', "-"));
        Layer {
            media_type: BUNDLE_V0_3,
            annotations: BTreeMap::from([("org.opencontainers.image.title".to_string(), title)]),
            content: self.json.clone(),
        }
    }

    /// The referrer manifest's annotations (and its index entry's).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::from([
            (
                "dev.sigstore.bundle.content".to_string(),
                self.content.to_string(),
            ),
            (
                "org.opencontainers.image.created".to_string(),
                "2026-12-01T10:00:00.000Z".to_string(),
            ),
        ]);
        if let Some(predicate_type) = &self.predicate_type {
            annotations.insert(
                "dev.sigstore.bundle.predicateType".to_string(),
                predicate_type.clone(),
            );
        }
        annotations
    }

    /// The same bundle with `edit` applied to its envelope's statement
    /// after signing (a tampered payload).
    pub fn with_statement_edited(&self, edit: impl FnOnce(&mut Value)) -> Bundle {
        self.edited(|value| {
            let payload = value["dsseEnvelope"]["payload"]
                .as_str()
                .expect("an envelope's payload");
            let mut statement: Value =
                serde_json::from_slice(&STANDARD.decode(payload).expect("base64")).expect("statement JSON");
            edit(&mut statement);
            value["dsseEnvelope"]["payload"] =
                json!(STANDARD.encode(serde_json::to_vec(&statement).expect("JSON")));
        })
    }

    /// The same bundle with `edit` applied to its JSON (a tampered variant).
    pub fn edited(&self, edit: impl FnOnce(&mut Value)) -> Bundle {
        let mut value: Value = serde_json::from_slice(&self.json).expect("bundle JSON");
        edit(&mut value);
        Bundle {
            json: serde_json::to_vec(&value).expect("bundle JSON"),
            ..self.clone()
        }
    }
}

/// A v0.3 bundle signed with `key` (verification material: its public key
/// hint, no transparency-log entry, as `cosign … --key … --tlog-upload=false`
/// writes it; protobuf JSON leaves out empty fields).
fn keyed_bundle(key: &SigningKey, content: (&str, Value)) -> Vec<u8> {
    let (field, mut content) = content;
    // protobuf JSON leaves out the empty keyid the legacy envelope carries.
    for signature in content["signatures"].as_array_mut().into_iter().flatten() {
        if let Some(signature) = signature.as_object_mut() {
            signature.remove("keyid");
        }
    }
    let mut bundle = json!({
        "mediaType": BUNDLE_V0_3,
        "verificationMaterial": {"publicKey": {"hint": key.hint()}},
    });
    bundle[field] = content;
    serde_json::to_vec(&bundle).expect("bundle")
}

/// What `cosign sign --key` writes in the bundle format: a DSSE envelope
/// around an in-toto statement of [`COSIGN_SIGN_V1`], its subject the digest
/// (`names_digest`: the image's own, or another for a tampered variant),
/// its predicate empty.
pub fn signature_bundle(key: &SigningKey, names_digest: &str) -> Bundle {
    let statement = statement(names_digest, COSIGN_SIGN_V1, json!({}));
    Bundle {
        json: keyed_bundle(key, ("dsseEnvelope", envelope(key, &statement))),
        content: "dsse-envelope",
        predicate_type: Some(COSIGN_SIGN_V1.to_string()),
    }
}

/// What `cosign attest --key --type … --predicate FILE` writes in the bundle
/// format: a DSSE envelope around an in-toto statement of `predicate`
/// about `subject_digest`.
pub fn attestation_bundle(
    key: &SigningKey,
    subject_digest: &str,
    predicate_type: &str,
    predicate: Value,
) -> Bundle {
    statement_bundle(
        key,
        &statement(subject_digest, predicate_type, predicate),
        predicate_type,
    )
}

/// A v0.3 bundle of `statement` (an in-toto statement of `predicate_type`,
/// as a tool wrote it) in a DSSE envelope signed by `key`.
pub fn statement_bundle(key: &SigningKey, statement: &[u8], predicate_type: &str) -> Bundle {
    Bundle {
        json: keyed_bundle(key, ("dsseEnvelope", envelope(key, statement))),
        content: "dsse-envelope",
        predicate_type: Some(predicate_type.to_string()),
    }
}

/// A message-signature bundle over the manifest of `digest` (signed through
/// the digest, the manifest's SHA-256), as `cosign sign-blob` writes one for
/// a blob.
pub fn message_signature_bundle(key: &SigningKey, digest: &str) -> Bundle {
    let hex = digest.trim_start_matches("sha256:");
    let sha256: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("a hex digest"))
        .collect();
    let message = json!({
        "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(&sha256)},
        "signature": STANDARD.encode(key.sign_sha256(&sha256)),
    });
    Bundle {
        json: keyed_bundle(key, ("messageSignature", message)),
        content: "message-signature",
        predicate_type: None,
    }
}

/// SLSA v1 provenance of a build of `repository` at `commit` by `builder`.
pub fn slsa_v1(repository: &str, commit: &str, builder: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"repository": repository, "path": ".github/workflows/release.yml"}},
            "resolvedDependencies": [{"uri": format!("git+{repository}@refs/heads/main"), "digest": {"gitCommit": commit}}]
        },
        "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "1"}}
    })
}

/// Cosign's vulnerability predicate around a Trivy report finished at
/// `finished` (RFC 3339) with `findings` (id, severity, package).
pub fn trivy_scan(finished: &str, findings: &[(&str, &str, &str)]) -> Value {
    json!({
        "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@0.58.1",
            "version": "0.58.1",
            "db": {"uri": "", "version": ""},
            "result": {
                "SchemaVersion": 2,
                "ArtifactType": "container_image",
                "Results": [{
                    "Target": "image (debian 12.8)",
                    "Vulnerabilities": findings.iter().map(|(id, severity, package)| json!({
                        "VulnerabilityID": id, "PkgName": package, "InstalledVersion": "1.0.0", "Severity": severity
                    })).collect::<Vec<_>>()
                }]
            }
        },
        "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished}
    })
}

pub(crate) fn digest_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::from("sha256:"), |mut hex, byte| {
            hex.push_str(&format!("{byte:02x}"));
            hex
        })
}

fn client() -> Client {
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn repository_of(image: &PushedImage) -> anyhow::Result<(String, String)> {
    let reference: Reference = image.by_digest().parse()?;
    Ok((reference.registry().to_owned(), reference.repository().to_owned()))
}

/// Where a manifest is pushed.
enum At<'a> {
    Tag(&'a str),
    /// Its own digest, untagged: how referrers are pushed to a registry that
    /// lists them itself.
    OwnDigest,
}

/// How a pushed manifest looks beyond its layers.
struct Shape {
    /// The config's media type (the content is `{}` either way).
    config: &'static str,
    annotations: Option<BTreeMap<String, String>>,
}

/// cosign's legacy signature and attestation manifests.
const LEGACY: Shape = Shape {
    config: IMAGE_CONFIG,
    annotations: None,
};

/// Pushes a manifest holding `layers` (with an empty config) to the image's
/// repository, optionally as an artifact about `subject`; returns its
/// descriptor.
async fn push_manifest(
    image: &PushedImage,
    at: At<'_>,
    layers: &[Layer],
    subject: Option<(OciDescriptor, &str)>,
    shape: Shape,
) -> anyhow::Result<OciDescriptor> {
    let (registry, repository) = repository_of(image)?;
    let in_repository = Reference::with_digest(registry.clone(), repository.clone(), image.digest.clone());
    let client = client();
    client
        .store_auth_if_needed(&registry, &RegistryAuth::Anonymous)
        .await;
    let config = b"{}".to_vec();
    let config_digest = digest_of(&config);
    client
        .push_blob(&in_repository, config.clone(), &config_digest)
        .await?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = digest_of(&layer.content);
        client
            .push_blob(&in_repository, layer.content.clone(), &digest)
            .await?;
        descriptors.push(OciDescriptor {
            media_type: layer.media_type.to_owned(),
            digest,
            size: i64::try_from(layer.content.len())?,
            urls: None,
            annotations: Some(layer.annotations.clone()),
            artifact_type: None,
        });
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
        config: OciDescriptor {
            media_type: shape.config.to_owned(),
            digest: config_digest,
            size: i64::try_from(config.len())?,
            urls: None,
            annotations: None,
            artifact_type: None,
        },
        layers: descriptors,
        subject: subject.as_ref().map(|(s, _)| s.clone()),
        artifact_type: subject.as_ref().map(|(_, t)| (*t).to_owned()),
        annotations: shape.annotations,
    };
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = digest_of(&bytes);
    let size = i64::try_from(bytes.len())?;
    let reference = match at {
        At::Tag(tag) => Reference::with_tag(registry, repository, tag.to_owned()),
        At::OwnDigest => Reference::with_digest(registry, repository, digest.clone()),
    };
    client
        .push_manifest_raw(&reference, bytes, HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE))
        .await?;
    Ok(OciDescriptor {
        media_type: OCI_IMAGE_MEDIA_TYPE.to_owned(),
        digest,
        size,
        urls: None,
        annotations: None,
        artifact_type: None,
    })
}

/// The descriptor of the image's manifest, for a `subject` field.
async fn subject_of(image: &PushedImage) -> anyhow::Result<OciDescriptor> {
    let (registry, repository) = repository_of(image)?;
    let by_digest = Reference::with_digest(registry, repository, image.digest.clone());
    let (subject_bytes, _) = client()
        .pull_manifest_raw(
            &by_digest,
            &RegistryAuth::Anonymous,
            &[OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE],
        )
        .await?;
    Ok(OciDescriptor {
        media_type: OCI_IMAGE_MEDIA_TYPE.to_owned(),
        digest: image.digest.clone(),
        size: i64::try_from(subject_bytes.len())?,
        urls: None,
        annotations: None,
        artifact_type: None,
    })
}

/// Attaches signature layers the cosign way: tag `sha256-<hex>.sig`.
pub async fn push_signatures(image: &PushedImage, layers: &[Layer]) -> anyhow::Result<()> {
    let tag = format!("{}.sig", image.digest.replace(':', "-"));
    push_manifest(image, At::Tag(&tag), layers, None, LEGACY)
        .await
        .map(drop)
}

/// Attaches attestation layers the cosign way: tag `sha256-<hex>.att`.
pub async fn push_attestations(image: &PushedImage, layers: &[Layer]) -> anyhow::Result<()> {
    let tag = format!("{}.att", image.digest.replace(':', "-"));
    push_manifest(image, At::Tag(&tag), layers, None, LEGACY)
        .await
        .map(drop)
}

/// Attaches `layers` as an OCI 1.1 artifact of `artifact_type` whose subject
/// is the image, listed in the referrers tag-schema index `sha256-<hex>`
/// (replacing that index: one referrer per call).
pub async fn push_referrer(image: &PushedImage, artifact_type: &str, layers: &[Layer]) -> anyhow::Result<()> {
    let (registry, repository) = repository_of(image)?;
    let client = client();
    let subject = subject_of(image).await?;
    let referrer_tag = format!("referrer-{}", &digest_of(artifact_type.as_bytes())[7..19]);
    let referrer = push_manifest(
        image,
        At::Tag(&referrer_tag),
        layers,
        Some((subject, artifact_type)),
        LEGACY,
    )
    .await?;
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.to_owned()),
        manifests: vec![oci_client::manifest::ImageIndexEntry {
            media_type: referrer.media_type,
            digest: referrer.digest,
            size: referrer.size,
            platform: None,
            annotations: None,
            artifact_type: Some(artifact_type.to_owned()),
        }],
        artifact_type: None,
        annotations: None,
    };
    let index_reference = Reference::with_tag(registry, repository, image.digest.replace(':', "-"));
    push_index(&client, &index_reference, &index).await
}

/// Pushes `index` as the referrers tag-schema index `reference`.
async fn push_index(client: &Client, reference: &Reference, index: &OciImageIndex) -> anyhow::Result<()> {
    client
        .push_manifest_raw(
            reference,
            serde_json::to_vec(index)?,
            HeaderValue::from_static(OCI_IMAGE_INDEX_MEDIA_TYPE),
        )
        .await?;
    Ok(())
}

/// Attaches `layers` as an OCI 1.1 artifact of `artifact_type` whose subject
/// is the image, the way clients do where the registry has the referrers
/// API: the manifest, pushed untagged by its own digest, is listed by the
/// registry itself; no `sha256-<hex>` index is written, so a registry
/// without the API lists it nowhere. `image` is addressed through such a
/// registry ([`crate::referrers::ReferrersRegistry::image`]). Returns the
/// artifact's descriptor.
pub async fn push_referrer_native(
    image: &PushedImage,
    artifact_type: &str,
    layers: &[Layer],
) -> anyhow::Result<OciDescriptor> {
    let subject = subject_of(image).await?;
    let referrer = push_manifest(
        image,
        At::OwnDigest,
        layers,
        Some((subject, artifact_type)),
        LEGACY,
    )
    .await?;
    Ok(OciDescriptor {
        artifact_type: Some(artifact_type.to_owned()),
        ..referrer
    })
}

/// Pushes `bundle` as cosign does: a manifest of artifactType
/// [`BUNDLE_V0_3`] with the empty config, the bundle as its one layer, the
/// image as its subject and the bundle annotations, untagged.
async fn push_bundle_manifest(image: &PushedImage, bundle: &Bundle) -> anyhow::Result<OciDescriptor> {
    let subject = subject_of(image).await?;
    let shape = Shape {
        config: OCI_EMPTY,
        annotations: Some(bundle.annotations()),
    };
    push_manifest(
        image,
        At::OwnDigest,
        &[bundle.layer()],
        Some((subject, BUNDLE_V0_3)),
        shape,
    )
    .await
}

/// Attaches `bundles` to the image as cosign v3 does on a registry without
/// the referrers API: each bundle's referrer manifest, listed (with its
/// artifactType and annotations) in the referrers tag-schema index
/// `sha256-<hex>` next to what that index already lists.
pub async fn push_bundles(image: &PushedImage, bundles: &[Bundle]) -> anyhow::Result<()> {
    let (registry, repository) = repository_of(image)?;
    let index_reference = Reference::with_tag(registry, repository, image.digest.replace(':', "-"));
    let client = client();
    let mut index = match client
        .pull_manifest_raw(
            &index_reference,
            &RegistryAuth::Anonymous,
            &[OCI_IMAGE_INDEX_MEDIA_TYPE],
        )
        .await
    {
        Ok((bytes, _)) => serde_json::from_slice::<OciImageIndex>(&bytes)?,
        Err(_) => OciImageIndex {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.to_owned()),
            manifests: Vec::new(),
            artifact_type: None,
            annotations: None,
        },
    };
    for bundle in bundles {
        let referrer = push_bundle_manifest(image, bundle).await?;
        index.manifests.push(oci_client::manifest::ImageIndexEntry {
            media_type: referrer.media_type,
            digest: referrer.digest,
            size: referrer.size,
            platform: None,
            annotations: Some(bundle.annotations()),
            artifact_type: Some(BUNDLE_V0_3.to_owned()),
        });
    }
    push_index(&client, &index_reference, &index).await
}

/// Attaches `bundle` to the image as cosign v3 does where the registry has
/// the referrers API: the referrer manifest alone, which the registry lists
/// (`image` addressed through [`crate::referrers::ReferrersRegistry::image`]).
pub async fn push_bundle_native(image: &PushedImage, bundle: &Bundle) -> anyhow::Result<OciDescriptor> {
    push_bundle_manifest(image, bundle).await
}
