//! What is attached to a digest: cosign signature and attestation
//! manifests and Sigstore bundles (cosign v3's default: a manifest of
//! artifactType the bundle media type, one layer holding the bundle JSON),
//! found through the OCI referrers API (or its tag-schema fallback,
//! `sha256-<hex>` holding an index) and through cosign's tags
//! (`sha256-<hex>.sig`, `sha256-<hex>.att`), with the resolver's clients,
//! credentials and per-registry limits.

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::RegistryError;
use super::credentials::PullSecrets;
use super::resolver::{Resolver, classify};
use crate::core::reference::parse_image;
use crate::core::supply_chain::bundle::is_bundle_layer;
use crate::core::supply_chain::envelope::{DSSE, SIMPLE_SIGNING};
use crate::core::supply_chain::{Attachments, Layer};

/// Layers larger than this are not read (a scan report is a few MiB at most).
pub(super) const MAX_LAYER: i64 = 16 * 1024 * 1024;

impl Resolver {
    /// The signature and attestation layers attached to `image`'s `digest`.
    /// A registry without the referrers API, or without cosign tags for the
    /// digest, simply has none there.
    pub async fn attachments(
        &self,
        image: &str,
        digest: &str,
        pull_secrets: &PullSecrets,
    ) -> Result<Attachments, RegistryError> {
        let reference = parse_image(image)?;
        let registry = reference.resolve_registry().to_owned();
        let credentials = pull_secrets.credentials_for(&reference);
        let client = self.client_for(&registry, credentials, image)?;
        let auth: RegistryAuth = credentials.into();
        client.store_auth_if_needed(&registry, &auth).await;
        let subject = Reference::with_digest(
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            digest.to_owned(),
        );
        let fetch = Fetch {
            resolver: self,
            client: &client,
            auth: &auth,
            registry: &registry,
            image,
            reference: &reference,
        };
        let mut attachments = Attachments::default();

        let referrers = {
            let _permit = self.permit(&registry).await;
            fetch.timed(client.pull_referrers(&subject, None)).await
        };
        match referrers {
            Ok(index) => {
                for entry in index.manifests {
                    let manifest = fetch.manifest(&entry.digest).await?;
                    if let Some(manifest) = manifest {
                        fetch.layers(&manifest, &mut attachments).await?;
                    }
                }
            }
            // Registries that know neither the API nor its fallback index.
            Err(RegistryError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }

        for tag in cosign_tags(digest) {
            if let Some(manifest) = fetch.manifest(&tag).await? {
                fetch.layers(&manifest, &mut attachments).await?;
            }
        }
        Ok(attachments)
    }
}

/// cosign's tags for `digest`'s signatures and attestations.
pub(super) fn cosign_tags(digest: &str) -> [String; 2] {
    let tag = referrers_tag(digest);
    [format!("{tag}.sig"), format!("{tag}.att")]
}

/// The referrers API's tag-schema fallback for `digest`: `sha256-<hex>`.
pub(super) fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Whether `layer` is a signature, attestation or bundle layer small enough to read.
pub(super) fn is_read(layer: &OciDescriptor) -> bool {
    (layer.media_type == SIMPLE_SIGNING || layer.media_type == DSSE || is_bundle_layer(&layer.media_type))
        && layer.size <= MAX_LAYER
}

/// Adds a read layer to the signatures, the attestations or the bundles,
/// once: the same layer may be reachable several ways (referrers and
/// cosign's tags).
pub(super) fn add(into: &mut Attachments, layer: &OciDescriptor, content: Vec<u8>) {
    let read = Layer {
        media_type: layer.media_type.clone(),
        annotations: layer
            .annotations
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        content,
    };
    let list = if layer.media_type == SIMPLE_SIGNING {
        &mut into.signatures
    } else if is_bundle_layer(&layer.media_type) {
        &mut into.bundles
    } else {
        &mut into.attestations
    };
    if !list.contains(&read) {
        list.push(read);
    }
}

struct Fetch<'a> {
    resolver: &'a Resolver,
    client: &'a Client,
    auth: &'a RegistryAuth,
    registry: &'a str,
    image: &'a str,
    reference: &'a Reference,
}

impl Fetch<'_> {
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    ) -> Result<T, RegistryError> {
        let timeout = self.resolver.shared.config.request_timeout;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(self.image, self.registry, error)),
            Err(_elapsed) => Err(RegistryError::TimedOut {
                reference: self.image.to_owned(),
                after: timeout,
            }),
        }
    }

    /// The image manifest at `tag_or_digest` of the image's repository, or
    /// `None` where there is none.
    async fn manifest(&self, tag_or_digest: &str) -> Result<Option<OciImageManifest>, RegistryError> {
        let registry = self.reference.registry().to_owned();
        let repository = self.reference.repository().to_owned();
        let target = if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(registry, repository, tag_or_digest.to_owned())
        } else {
            Reference::with_tag(registry, repository, tag_or_digest.to_owned())
        };
        let _permit = self.resolver.permit(self.registry).await;
        match self
            .timed(self.client.pull_image_manifest(&target, self.auth))
            .await
        {
            Ok((manifest, _digest)) => Ok(Some(manifest)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads the signature and attestation layers of `manifest` into `into`.
    async fn layers(&self, manifest: &OciImageManifest, into: &mut Attachments) -> Result<(), RegistryError> {
        for layer in manifest.layers.iter().filter(|layer| is_read(layer)) {
            let content = self.blob(layer).await?;
            add(into, layer, content);
        }
        Ok(())
    }

    async fn blob(&self, layer: &OciDescriptor) -> Result<Vec<u8>, RegistryError> {
        let _permit = self.resolver.permit(self.registry).await;
        let mut content = Vec::new();
        self.timed(self.client.pull_blob(self.reference, layer, &mut content))
            .await?;
        Ok(content)
    }
}
