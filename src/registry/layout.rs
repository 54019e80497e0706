//! Images in an OCI image layout directory (as written by `skopeo copy
//! ... oci:DIR:REF`), looked up by their `org.opencontainers.image.ref.name`
//! annotation. `hoist render` uses one so an example or an air-gapped repo
//! resolves without a registry, and verifies what is attached to each
//! digest from it the way it would from a registry: cosign's tags
//! (`REPOSITORY:sha256-<hex>.sig`, `.att`), the referrers tag-schema index
//! (`REPOSITORY:sha256-<hex>`) and any manifest of the layout whose
//! `subject` is the digest (OCI 1.1 referrers kept in the layout).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageIndex, OciImageManifest};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::attachments::{self, MAX_LAYER};
use crate::core::supply_chain::Attachments;
use crate::core::supply_chain::keys::fingerprint;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why a layout cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read OCI layout index {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OCI layout index {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("OCI layout blob {path} cannot be read: {source}")]
    Blob {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OCI layout blob {path} is not a valid {what}: {source}")]
    BlobParse {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("OCI layout blob {path} does not hash to its name {digest} (the layout was altered)")]
    Tampered { path: PathBuf, digest: String },
    #[error(
        "OCI layout {layout} names blob {digest}, which is not sha256:<64 lowercase hex digits> (the only digests Hoist reads)"
    )]
    BadDigest { layout: PathBuf, digest: String },
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One manifest of a layout: its digest and the layout directory holding it.
#[derive(Debug, Clone)]
struct Entry {
    digest: String,
    dir: usize,
}

/// Reference name → manifest of one or more layouts.
#[derive(Debug, Clone, Default)]
pub struct OciLayout {
    dirs: Vec<PathBuf>,
    refs: BTreeMap<String, Entry>,
    /// Every image manifest the layouts' indexes list, named or not.
    manifests: Vec<Entry>,
    /// Subject digest → the manifests about it, read once when first asked.
    subjects: OnceLock<BTreeMap<String, Vec<Entry>>>,
}

impl OciLayout {
    /// Reads `dir/index.json`.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let mut layout = OciLayout::default();
        layout.add(dir)?;
        Ok(layout)
    }

    fn add(&mut self, dir: &Path) -> Result<(), LayoutError> {
        let path = dir.join("index.json");
        let text = std::fs::read_to_string(&path).map_err(|source| LayoutError::Read {
            path: path.clone(),
            source,
        })?;
        let index: Index =
            serde_json::from_str(&text).map_err(|source| LayoutError::Parse { path, source })?;
        let at = self.dirs.len();
        self.dirs.push(dir.to_path_buf());
        for descriptor in index.manifests {
            let entry = Entry {
                digest: descriptor.digest,
                dir: at,
            };
            if descriptor.media_type == OCI_IMAGE_MEDIA_TYPE {
                self.manifests.push(entry.clone());
            }
            if let Some(name) = descriptor.annotations.get(REF_NAME) {
                self.refs.insert(name.clone(), entry);
            }
        }
        Ok(())
    }

    /// Every layout under `dir` (directories holding an `oci-layout` file).
    pub fn discover(dir: &Path) -> Result<Self, LayoutError> {
        let mut layout = OciLayout::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            if current.join("oci-layout").is_file() {
                layout.add(&current)?;
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&current) else {
                continue;
            };
            pending.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        Ok(layout)
    }

    /// The manifest digest of `reference` (as written in the Artifact).
    pub fn digest(&self, reference: &str) -> Option<&str> {
        self.refs.get(reference).map(|entry| entry.digest.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Whether the layout holds anything of `image`'s repository (the image
    /// itself, or what is attached to one of its digests): then its
    /// attachments are read from here, even for an image pinned by digest.
    pub fn has_repository(&self, image: &str) -> bool {
        let wanted = repository(image);
        self.refs.keys().any(|name| repository(name) == wanted)
    }

    /// The signature, attestation and bundle layers attached to `image`'s `digest`
    /// in the layout, found as in a registry without the referrers API plus
    /// the layout's manifests whose subject is the digest. Every blob read
    /// is checked against its digest; a manifest the referrers index or
    /// the subject scan cannot read is passed over, as a registry's
    /// referrer that is gone.
    pub fn attachments(&self, image: &str, digest: &str) -> Result<Attachments, LayoutError> {
        let repository = repository(image);
        let mut manifests: Vec<(OciImageManifest, usize)> = Vec::new();
        for tag in attachments::cosign_tags(digest) {
            if let Some(entry) = self.refs.get(&format!("{repository}:{tag}")) {
                manifests.push((self.json(entry, "image manifest")?, entry.dir));
            }
        }
        if let Some(entry) = self
            .refs
            .get(&format!("{repository}:{}", attachments::referrers_tag(digest)))
        {
            let index: OciImageIndex = self.json(entry, "image index")?;
            for listed in index.manifests {
                let listed = Entry {
                    digest: listed.digest,
                    dir: entry.dir,
                };
                if let Ok(manifest) = self.json(&listed, "image manifest") {
                    manifests.push((manifest, entry.dir));
                }
            }
        }
        for entry in self.subjects().get(digest).into_iter().flatten() {
            if let Ok(manifest) = self.json(entry, "image manifest") {
                manifests.push((manifest, entry.dir));
            }
        }
        let mut found = Attachments::default();
        for (manifest, dir) in manifests {
            for layer in manifest.layers.iter().filter(|layer| attachments::is_read(layer)) {
                let content = self.blob(dir, &layer.digest)?;
                attachments::add(&mut found, layer, content);
            }
        }
        Ok(found)
    }

    /// The manifests of the layouts with a `subject`, by subject digest.
    fn subjects(&self) -> &BTreeMap<String, Vec<Entry>> {
        self.subjects.get_or_init(|| {
            let mut subjects: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
            for entry in &self.manifests {
                let manifest: Result<OciImageManifest, _> = self.json(entry, "image manifest");
                if let Some(subject) = manifest.ok().and_then(|m| m.subject) {
                    subjects.entry(subject.digest).or_default().push(entry.clone());
                }
            }
            subjects
        })
    }

    fn json<T: DeserializeOwned>(&self, entry: &Entry, what: &'static str) -> Result<T, LayoutError> {
        let content = self.blob(entry.dir, &entry.digest)?;
        serde_json::from_slice(&content).map_err(|source| LayoutError::BlobParse {
            path: self.blob_path(entry.dir, &entry.digest).unwrap_or_default(),
            what,
            source,
        })
    }

    fn blob_path(&self, dir: usize, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        (hex.len() == 64 && hex.bytes().all(lowercase_hex))
            .then(|| self.dirs[dir].join("blobs/sha256").join(hex))
    }

    /// The content of blob `digest`, a regular file of at most
    /// [`MAX_LAYER`] bytes, which must hash to it.
    fn blob(&self, dir: usize, digest: &str) -> Result<Vec<u8>, LayoutError> {
        let path = self
            .blob_path(dir, digest)
            .ok_or_else(|| LayoutError::BadDigest {
                layout: self.dirs[dir].clone(),
                digest: digest.to_owned(),
            })?;
        let error = |source| LayoutError::Blob {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(error)?;
        // Not a device, a FIFO or a directory, whatever a link points to.
        if !file.metadata().map_err(error)?.is_file() {
            return Err(error(std::io::Error::other("not a regular file")));
        }
        let mut content = Vec::new();
        file.take(MAX_LAYER.unsigned_abs() + 1)
            .read_to_end(&mut content)
            .map_err(error)?;
        if content.len() as u64 > MAX_LAYER.unsigned_abs() {
            return Err(error(std::io::Error::other(format!(
                "more than {MAX_LAYER} bytes, which are not read"
            ))));
        }
        if fingerprint(&content) != digest {
            return Err(LayoutError::Tampered {
                path,
                digest: digest.to_owned(),
            });
        }
        Ok(content)
    }
}

/// `image` without its tag or digest.
fn repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::repository;

    #[test]
    fn repository_drops_the_tag_and_digest_but_not_a_port() {
        assert_eq!(
            repository("registry.example.com/shop/backend:1.4.2"),
            "registry.example.com/shop/backend"
        );
        assert_eq!(
            repository("localhost:5000/shop/backend"),
            "localhost:5000/shop/backend"
        );
        assert_eq!(
            repository("localhost:5000/shop/backend:1@sha256:0123"),
            "localhost:5000/shop/backend"
        );
    }
}
