//! Images in an OCI image layout directory (as written by `skopeo copy
//! ... oci:DIR:REF`), looked up by their `org.opencontainers.image.ref.name`
//! annotation. `hoist render` uses one so an example or an air-gapped repo
//! resolves without a registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Reference name → manifest digest of one layout.
#[derive(Debug, Clone, Default)]
pub struct OciLayout {
    digests: BTreeMap<String, String>,
}

impl OciLayout {
    /// Reads `dir/index.json`.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let path = dir.join("index.json");
        let text = std::fs::read_to_string(&path).map_err(|source| LayoutError::Read {
            path: path.clone(),
            source,
        })?;
        let index: Index =
            serde_json::from_str(&text).map_err(|source| LayoutError::Parse { path, source })?;
        let digests = index
            .manifests
            .into_iter()
            .filter_map(|d| Some((d.annotations.get(REF_NAME)?.clone(), d.digest)))
            .collect();
        Ok(Self { digests })
    }

    /// Every layout under `dir` (directories holding an `oci-layout` file).
    pub fn discover(dir: &Path) -> Result<Self, LayoutError> {
        let mut layout = OciLayout::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            if current.join("oci-layout").is_file() {
                layout.digests.extend(Self::open(&current)?.digests);
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
        self.digests.get(reference).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}
