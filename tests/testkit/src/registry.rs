//! Images pushed to a real OCI registry for tests.
//!
//! The test command starts a throwaway registry with `scripts/registry start`
//! and exports its address as `HOIST_TEST_REGISTRY`. Every helper here builds
//! a tiny synthetic single-layer OCI image and pushes it with `oci-client`.
//! Tests pick unique repository names ([`unique_repository`]) so they never
//! see each other's tags.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::config::{Architecture, ConfigFile, Os, Rootfs};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, ParseError, Reference};
use sha2::{Digest, Sha256};

/// Environment variable holding the test registry's `host:port`. It
/// refuses to delete manifests (405), as docker-registry does by default.
pub const REGISTRY_ENV: &str = "HOIST_TEST_REGISTRY";

/// Environment variable holding the `host:port` of a second test registry,
/// one that deletes manifests when asked (`scripts/registry start DIR --delete`).
pub const DELETABLE_REGISTRY_ENV: &str = "HOIST_TEST_REGISTRY_DELETABLE";

#[derive(Debug, thiserror::Error)]
pub enum TestRegistryError {
    #[error(
        "{REGISTRY_ENV} is not set: run the project's test command, or start a registry with \
         `eval \"$(scripts/registry start /tmp/hoist-registry)\"; export {REGISTRY_ENV}`"
    )]
    NotConfigured,

    #[error(
        "{DELETABLE_REGISTRY_ENV} is not set: run the project's test command, or start a registry that deletes \
         manifests with `r=$(scripts/registry start /tmp/hoist-registry-deletable --delete); \
         export {DELETABLE_REGISTRY_ENV}=${{r#*=}}`"
    )]
    DeletableNotConfigured,

    #[error("GET {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{reference:?} is not a valid image reference")]
    InvalidReference {
        reference: String,
        #[source]
        source: ParseError,
    },

    #[error("cannot encode the image config of {reference}")]
    Encode {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("cannot encode the manifest of {reference}")]
    EncodeManifest {
        reference: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("pushing {reference} failed")]
    Push {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("{action} failed")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed: {stderr}")]
    Script { command: String, stderr: String },
}

/// An image in the test registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedImage {
    /// `host:port/repository:tag`, as a tenant would write it in an Artifact.
    pub reference: String,
    /// Manifest digest, computed from the bytes pushed (not asked of the registry).
    pub digest: String,
}

impl PushedImage {
    /// `host:port/repository@digest`.
    pub fn by_digest(&self) -> String {
        let repository = self
            .reference
            .rsplit_once(':')
            .map_or(self.reference.as_str(), |(repository, _tag)| repository);
        format!("{repository}@{}", self.digest)
    }
}

/// The test registry's `host:port`, from `HOIST_TEST_REGISTRY`.
pub fn registry_address() -> Result<String, TestRegistryError> {
    std::env::var(REGISTRY_ENV)
        .ok()
        .filter(|address| !address.is_empty())
        .ok_or(TestRegistryError::NotConfigured)
}

/// The `host:port` of the test registry that deletes manifests, from
/// `HOIST_TEST_REGISTRY_DELETABLE`.
pub fn deletable_registry_address() -> Result<String, TestRegistryError> {
    std::env::var(DELETABLE_REGISTRY_ENV)
        .ok()
        .filter(|address| !address.is_empty())
        .ok_or(TestRegistryError::DeletableNotConfigured)
}

/// Pushes like [`push_image`], to the registry that deletes manifests.
pub async fn push_deletable(
    repository: &str,
    tag: &str,
    content_seed: u64,
) -> Result<PushedImage, TestRegistryError> {
    push_to(
        &deletable_registry_address()?,
        &RegistryAuth::Anonymous,
        repository,
        tag,
        content_seed,
    )
    .await
}

/// The HTTP status of `GET /v2/<name>/manifests/<tag_or_digest>` in
/// `image`'s repository, anonymously: 200 while the manifest is there, 404
/// once it is deleted.
pub async fn manifest_status(image: &PushedImage, tag_or_digest: &str) -> Result<u16, TestRegistryError> {
    let by_digest = image.by_digest();
    let (host, rest) = by_digest.split_once('/').unwrap_or((by_digest.as_str(), ""));
    let repository = rest.split_once('@').map_or(rest, |(repository, _)| repository);
    let url = format!("http://{host}/v2/{repository}/manifests/{tag_or_digest}");
    let answer = reqwest::Client::new()
        .get(&url)
        .header(reqwest::header::ACCEPT, OCI_IMAGE_MEDIA_TYPE)
        .send()
        .await
        .map_err(|source| TestRegistryError::Http {
            url: url.clone(),
            source,
        })?;
    Ok(answer.status().as_u16())
}

/// `hoist-test/<name>-<random suffix>`: a repository no other test uses.
/// `name` must be a valid repository path component (lowercase, digits, `-`).
pub fn unique_repository(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    // RandomState is seeded randomly per process; the counter separates calls
    // within one process.
    let suffix =
        RandomState::new().hash_one((NEXT.fetch_add(1, Ordering::Relaxed), nanos, std::process::id()));
    format!("hoist-test/{name}-{suffix:016x}")
}

/// Pushes a synthetic image whose only layer is derived from `content_seed`
/// (same seed, same digest) to `repository:tag` in the test registry.
pub async fn push_image(
    repository: &str,
    tag: &str,
    content_seed: u64,
) -> Result<PushedImage, TestRegistryError> {
    push_to(
        &registry_address()?,
        &RegistryAuth::Anonymous,
        repository,
        tag,
        content_seed,
    )
    .await
}

/// Re-pushes `repository:tag` as a different image (use a seed the tag was
/// not pushed with), as CI does when a tag moves after Hoist resolved it.
pub async fn move_tag(repository: &str, tag: &str, new_seed: u64) -> Result<PushedImage, TestRegistryError> {
    push_image(repository, tag, new_seed).await
}

/// Pushes one image per `(component, tag)` of one application, each to
/// `hoist-test/<application>-<random>/<component>`, with distinct content.
/// Returns the images by component.
pub async fn push_multi(
    application: &str,
    components: &[(&str, &str)],
) -> Result<BTreeMap<String, PushedImage>, TestRegistryError> {
    let application_repository = unique_repository(application);
    let mut pushed = BTreeMap::new();
    for (component, tag) in components {
        let repository = format!("{application_repository}/{component}");
        let image = push_image(&repository, tag, seed_for(component, tag)).await?;
        pushed.insert((*component).to_owned(), image);
    }
    Ok(pushed)
}

/// A second registry, started for one test, that requires HTTP basic auth
/// (htpasswd). Stopped and deleted on drop.
pub struct AuthRegistry {
    dir: PathBuf,
    address: String,
}

impl AuthRegistry {
    pub const USERNAME: &str = "hoist";
    pub const PASSWORD: &str = "hoist-test-password";
    /// bcrypt (cost 4, the cheapest the registry accepts) of [`Self::PASSWORD`],
    /// generated once with Python's `crypt` (`htpasswd -nbB -C 4` makes an
    /// equivalent line); fixed so tests need no htpasswd tool.
    const HTPASSWD: &str = "hoist:$2b$04$nD2BwQmR3VCZfOFo2UTTI.6.4dtOilKTl8oa3.0OpMhU2yKm0lbM2\n";

    pub fn start() -> Result<Self, TestRegistryError> {
        let dir = std::env::temp_dir().join(unique_repository("auth-registry").replace('/', "-"));
        let htpasswd = dir.join("htpasswd");
        std::fs::create_dir_all(&dir).map_err(|source| TestRegistryError::Io {
            action: format!("creating {}", dir.display()),
            source,
        })?;
        std::fs::write(&htpasswd, Self::HTPASSWD).map_err(|source| TestRegistryError::Io {
            action: format!("writing {}", htpasswd.display()),
            source,
        })?;
        let started = run_script(&[
            "start".as_ref(),
            dir.as_os_str(),
            "--htpasswd".as_ref(),
            htpasswd.as_os_str(),
        ])?;
        let address = started
            .trim()
            .strip_prefix(&format!("{REGISTRY_ENV}="))
            .map(str::to_owned)
            .ok_or_else(|| TestRegistryError::Script {
                command: "scripts/registry start".to_owned(),
                stderr: format!("unexpected output {started:?}"),
            })?;
        Ok(Self { dir, address })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Pushes like [`push_image`], authenticated.
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        content_seed: u64,
    ) -> Result<PushedImage, TestRegistryError> {
        let auth = RegistryAuth::Basic(Self::USERNAME.to_owned(), Self::PASSWORD.to_owned());
        push_to(&self.address, &auth, repository, tag, content_seed).await
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        // Best effort: a failed stop must not hide the test's own outcome.
        let _ = run_script(&["stop".as_ref(), self.dir.as_os_str()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_script(args: &[&std::ffi::OsStr]) -> Result<String, TestRegistryError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/registry");
    let output = Command::new(&script)
        .args(args)
        .output()
        .map_err(|source| TestRegistryError::Io {
            action: format!("running {}", script.display()),
            source,
        })?;
    if !output.status.success() {
        return Err(TestRegistryError::Script {
            command: format!("{} {args:?}", script.display()),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn push_to(
    registry: &str,
    auth: &RegistryAuth,
    repository: &str,
    tag: &str,
    content_seed: u64,
) -> Result<PushedImage, TestRegistryError> {
    let reference_text = format!("{registry}/{repository}:{tag}");
    let reference = Reference::try_from(reference_text.as_str()).map_err(|source| {
        TestRegistryError::InvalidReference {
            reference: reference_text.clone(),
            source,
        }
    })?;
    let push_failed = |source| TestRegistryError::Push {
        reference: reference_text.clone(),
        source,
    };

    let layer = ImageLayer::oci_v1(layer_tar(content_seed), None);
    let config = Config::oci_v1_from_config_file(
        ConfigFile {
            architecture: Architecture::Amd64,
            os: Os::Linux,
            rootfs: Rootfs {
                r#type: "layers".to_owned(),
                // The layer is an uncompressed tar, so its diff ID is its digest.
                diff_ids: vec![layer.sha256_digest()],
            },
            ..ConfigFile::default()
        },
        None,
    )
    .map_err(|source| TestRegistryError::Encode {
        reference: reference_text.clone(),
        source,
    })?;
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|source| TestRegistryError::EncodeManifest {
            reference: reference_text.clone(),
            source,
        })?;
    let digest = Sha256::digest(&manifest_bytes)
        .iter()
        .fold(String::from("sha256:"), |mut hex, byte| {
            hex.push_str(&format!("{byte:02x}"));
            hex
        });

    // The test registries speak plain HTTP on 127.0.0.1.
    let client = Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
    .map_err(push_failed)?;
    client
        .store_auth_if_needed(reference.resolve_registry(), auth)
        .await;
    let layer_digest = layer.sha256_digest();
    client
        .push_blob(&reference, layer.data, &layer_digest)
        .await
        .map_err(push_failed)?;
    let config_digest = config.sha256_digest();
    client
        .push_blob(&reference, config.data, &config_digest)
        .await
        .map_err(push_failed)?;
    client
        .push_manifest_raw(
            &reference,
            manifest_bytes,
            HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(push_failed)?;
    Ok(PushedImage {
        reference: reference_text,
        digest,
    })
}

fn seed_for(component: &str, tag: &str) -> u64 {
    // DefaultHasher::new() is unseeded, so the same component and tag give the
    // same image on every run.
    let mut hasher = DefaultHasher::new();
    (component, tag).hash(&mut hasher);
    hasher.finish()
}

/// An uncompressed tar archive holding one file whose content names the seed.
fn layer_tar(seed: u64) -> Vec<u8> {
    const BLOCK: usize = 512;
    let content = format!("hoist test image, seed {seed}\n").into_bytes();
    let mut header = [0u8; BLOCK];
    let mut field = |offset: usize, value: &[u8]| {
        header[offset..offset + value.len()].copy_from_slice(value);
    };
    field(0, b"hoist-seed.txt");
    field(100, b"0000644\0");
    field(108, b"0000000\0");
    field(116, b"0000000\0");
    field(124, format!("{:011o}\0", content.len()).as_bytes());
    field(136, b"00000000000\0");
    // The checksum is computed with its own field read as spaces.
    field(148, b"        ");
    field(156, b"0");
    field(257, b"ustar\0");
    field(263, b"00");
    let checksum: u32 = header.iter().map(|&byte| u32::from(byte)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());

    let padded_content = content.len().div_ceil(BLOCK) * BLOCK;
    let mut tar = Vec::with_capacity(BLOCK + padded_content + 2 * BLOCK);
    tar.extend_from_slice(&header);
    tar.extend_from_slice(&content);
    tar.resize(BLOCK + padded_content, 0);
    // Two zero blocks end the archive.
    tar.resize(BLOCK + padded_content + 2 * BLOCK, 0);
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_digest_drops_the_tag_but_keeps_the_port() {
        let image = PushedImage {
            reference: "127.0.0.1:5000/hoist-test/api-1/backend:v1".to_owned(),
            digest: "sha256:abc".to_owned(),
        };
        assert_eq!(
            image.by_digest(),
            "127.0.0.1:5000/hoist-test/api-1/backend@sha256:abc"
        );
    }

    #[test]
    fn unique_repositories_differ() {
        assert_ne!(unique_repository("api"), unique_repository("api"));
    }

    #[test]
    fn layer_is_a_whole_number_of_tar_blocks_and_depends_on_the_seed() {
        let first = layer_tar(1);
        assert_eq!(first.len(), 4 * 512);
        assert_eq!(&first[257..263], b"ustar\0");
        assert_ne!(first, layer_tar(2));
        assert_eq!(first, layer_tar(1));
    }
}
