//! Signatures and attestations written into an OCI image layout the way a
//! registry holds them (`skopeo copy docker://REPO:sha256-<hex>.sig
//! oci:DIR:REPO:sha256-<hex>.sig` gives the same): a manifest with an empty
//! config and the given layers, named `REPOSITORY:TAG` in `index.json`.
//! Blobs nothing names any more are removed.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::signing::{Layer, digest_of};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn write_blob(layout: &Path, bytes: &[u8]) -> anyhow::Result<(String, usize)> {
    let digest = digest_of(bytes);
    let path = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok((digest, bytes.len()))
}

fn read_index(layout: &Path) -> anyhow::Result<Value> {
    let path = layout.join("index.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The manifest digest `name` has in the layout.
pub fn digest(layout: &Path, name: &str) -> anyhow::Result<String> {
    let index = read_index(layout)?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME] == name)
        .and_then(|m| m["digest"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("{name} is not in the layout {}", layout.display()))
}

/// Writes a manifest of `layers` named `name` (`REPOSITORY:TAG`) into the
/// layout, replacing what had that name.
pub fn put(layout: &Path, name: &str, layers: &[Layer]) -> anyhow::Result<()> {
    let (config, config_size) = write_blob(layout, b"{}")?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let (digest, size) = write_blob(layout, &layer.content)?;
        descriptors.push(json!({
            "mediaType": layer.media_type,
            "digest": digest,
            "size": size,
            "annotations": layer.annotations,
        }));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": descriptors,
    }))?;
    let (digest, size) = write_blob(layout, &manifest)?;
    let mut index = read_index(layout)?;
    let manifests = index["manifests"]
        .as_array_mut()
        .context("index.json has no manifests list")?;
    manifests.retain(|m| m["annotations"][REF_NAME] != name);
    manifests.push(json!({
        "mediaType": MANIFEST,
        "digest": digest,
        "size": size,
        "annotations": {REF_NAME: name},
    }));
    write_index(layout, &index)
}

/// Removes every manifest whose name satisfies `doomed`.
pub fn remove(layout: &Path, doomed: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let mut index = read_index(layout)?;
    index["manifests"]
        .as_array_mut()
        .context("index.json has no manifests list")?
        .retain(|m| !m["annotations"][REF_NAME].as_str().is_some_and(&doomed));
    write_index(layout, &index)
}

fn write_index(layout: &Path, index: &Value) -> anyhow::Result<()> {
    let path = layout.join("index.json");
    let mut text = serde_json::to_string_pretty(index)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    collect_garbage(layout, index)
}

/// Deletes the blobs no manifest of the index reaches.
fn collect_garbage(layout: &Path, index: &Value) -> anyhow::Result<()> {
    let mut live = BTreeSet::new();
    let mut pending: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["digest"].as_str().map(str::to_owned))
        .collect();
    while let Some(digest) = pending.pop() {
        if !live.insert(digest.clone()) {
            continue;
        }
        let path = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        // A manifest or an index (the mediaType field is optional in both).
        if value.get("layers").is_none() && value.get("manifests").is_none() {
            continue;
        }
        let children = value["layers"]
            .as_array()
            .into_iter()
            .chain(value["manifests"].as_array())
            .flatten()
            .chain(std::iter::once(&value["config"]));
        pending.extend(children.filter_map(|d| d["digest"].as_str().map(str::to_owned)));
    }
    for entry in std::fs::read_dir(layout.join("blobs/sha256"))? {
        let entry = entry?;
        let name = format!("sha256:{}", entry.file_name().to_string_lossy());
        if !live.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const END: &str = "-----END PUBLIC KEY-----";

/// `text` (an example's YAML) with every PEM public key block replaced by `pem`, indented as
/// the block it replaces.
pub fn replace_public_keys(text: &str, pem: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END).map(|at| start + at + END.len()) else {
            break;
        };
        let line_start = rest[..start].rfind('\n').map_or(0, |at| at + 1);
        let indent = &rest[line_start..start];
        out.push_str(&rest[..start]);
        let lines: Vec<&str> = pem.trim_end().lines().collect();
        out.push_str(&lines.join(&format!("\n{indent}")));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
