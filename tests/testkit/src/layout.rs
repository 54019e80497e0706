//! Signatures and attestations written into an OCI image layout the way a
//! registry holds them (`skopeo copy docker://REPO:sha256-<hex>.sig
//! oci:DIR:REPO:sha256-<hex>.sig` gives the same): a manifest with an empty
//! config and the given layers, named `REPOSITORY:TAG` in `index.json`, or
//! as OCI 1.1 artifacts with a subject (listed by the referrers index tag
//! or unnamed in `index.json`), and Sigstore bundles as cosign v3 attaches
//! them (`oras copy` of a registry's referrers gives the same). Blobs
//! nothing names any more are removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::registry::PushedImage;
use crate::signing::{
    Bundle, Layer, SLSA_V1, SigningKey, VULN_V1, attestation, attestation_bundle, digest_of, signature,
    signature_bundle, slsa_v1, trivy_scan,
};

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

/// Writes a manifest of `layers` (with an empty config), about `subject`
/// (a manifest of the layout) when given, into the blobs; returns its
/// descriptor.
fn write_manifest(layout: &Path, layers: &[Layer], subject: Option<&str>) -> anyhow::Result<Value> {
    write_shaped(
        layout,
        layers,
        subject,
        "application/vnd.oci.image.config.v1+json",
        None,
    )
}

/// Writes `bundle`'s referrer manifest about `subject` as cosign does (the
/// empty descriptor's media type for config, the bundle annotations);
/// returns its descriptor with the artifactType and annotations an index
/// lists it with.
fn write_bundle(layout: &Path, bundle: &Bundle, subject: &str) -> anyhow::Result<Value> {
    let annotations = bundle.annotations();
    let mut descriptor = write_shaped(
        layout,
        &[bundle.layer()],
        Some(subject),
        "application/vnd.oci.empty.v1+json",
        Some(&annotations),
    )?;
    descriptor["artifactType"] = json!(crate::signing::BUNDLE_V0_3);
    descriptor["annotations"] = json!(annotations);
    Ok(descriptor)
}

fn write_shaped(
    layout: &Path,
    layers: &[Layer],
    subject: Option<&str>,
    config_media_type: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> anyhow::Result<Value> {
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
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": config_media_type, "digest": config, "size": config_size},
        "layers": descriptors,
    });
    if let Some(annotations) = annotations {
        manifest["annotations"] = json!(annotations);
    }
    if let Some(subject) = subject {
        let path = layout
            .join("blobs/sha256")
            .join(subject.trim_start_matches("sha256:"));
        let size = std::fs::metadata(&path)
            .with_context(|| format!("subject {subject} is not in the layout"))?
            .len();
        manifest["subject"] = json!({"mediaType": MANIFEST, "digest": subject, "size": size});
        manifest["artifactType"] = json!(layers.first().map_or(MANIFEST, |l| l.media_type));
    }
    let (digest, size) = write_blob(layout, &serde_json::to_vec(&manifest)?)?;
    Ok(json!({"mediaType": MANIFEST, "digest": digest, "size": size}))
}

/// Adds `descriptor` to the layout's index, named `name` (replacing what
/// had that name) or unnamed.
fn list(layout: &Path, mut descriptor: Value, name: Option<&str>) -> anyhow::Result<()> {
    let mut index = read_index(layout)?;
    let manifests = index["manifests"]
        .as_array_mut()
        .context("index.json has no manifests list")?;
    if let Some(name) = name {
        manifests.retain(|m| m["annotations"][REF_NAME] != name);
        descriptor["annotations"] = json!({REF_NAME: name});
    }
    manifests.push(descriptor);
    write_index(layout, &index)
}

/// Writes a manifest of `layers` named `name` (`REPOSITORY:TAG`) into the
/// layout, replacing what had that name.
pub fn put(layout: &Path, name: &str, layers: &[Layer]) -> anyhow::Result<()> {
    let descriptor = write_manifest(layout, layers, None)?;
    list(layout, descriptor, Some(name))
}

/// Where attachments of a digest go in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// cosign's names: `REPOSITORY:sha256-<hex>.sig` and `.att`.
    CosignTags,
    /// OCI 1.1 artifacts with a subject, listed by the referrers
    /// tag-schema index `REPOSITORY:sha256-<hex>`.
    ReferrersIndex,
    /// OCI 1.1 artifacts with a subject, listed unnamed in `index.json`.
    Subjects,
    /// Sigstore bundles as cosign v3 writes them by default, listed by the
    /// referrers tag-schema index `REPOSITORY:sha256-<hex>`.
    Bundles,
}

/// Attaches `bundles` to `digest` of `repository` in the layout as cosign
/// v3 does on a registry without the referrers API: each a referrer
/// manifest, listed in the index `REPOSITORY:sha256-<hex>`.
pub fn attach_bundles(
    layout: &Path,
    repository: &str,
    digest: &str,
    bundles: &[Bundle],
) -> anyhow::Result<()> {
    let referrers = bundles
        .iter()
        .map(|bundle| write_bundle(layout, bundle, digest))
        .collect::<anyhow::Result<Vec<_>>>()?;
    list_referrers(layout, repository, digest, referrers)
}

/// Names an index of `referrers` `REPOSITORY:sha256-<hex>` (the referrers tag schema).
fn list_referrers(
    layout: &Path,
    repository: &str,
    digest: &str,
    referrers: Vec<Value>,
) -> anyhow::Result<()> {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": referrers,
    }))?;
    let (index, size) = write_blob(layout, &index)?;
    let descriptor =
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index, "size": size});
    list(
        layout,
        descriptor,
        Some(&format!("{repository}:{}", digest.replace(':', "-"))),
    )
}

/// Attaches `signatures` and `attestations` (a manifest each) to
/// `digest` of `repository` in the layout, as `how` says.
pub fn attach(
    layout: &Path,
    repository: &str,
    digest: &str,
    signatures: &[Layer],
    attestations: &[Layer],
    how: Attach,
) -> anyhow::Result<()> {
    let tag = digest.replace(':', "-");
    match how {
        Attach::CosignTags => {
            put(layout, &format!("{repository}:{tag}.sig"), signatures)?;
            put(layout, &format!("{repository}:{tag}.att"), attestations)
        }
        Attach::ReferrersIndex => {
            let referrers = vec![
                write_manifest(layout, signatures, Some(digest))?,
                write_manifest(layout, attestations, Some(digest))?,
            ];
            list_referrers(layout, repository, digest, referrers)
        }
        Attach::Bundles => anyhow::bail!("bundles are attached with attach_bundles"),
        Attach::Subjects => {
            list(layout, write_manifest(layout, signatures, Some(digest))?, None)?;
            list(layout, write_manifest(layout, attestations, Some(digest))?, None)
        }
    }
}

/// Who the example's provenance says built the images.
pub const EXAMPLE_BUILDER: &str = "https://ci.example.com/shop/release";
/// When the example's scan finished.
pub const EXAMPLE_SCANNED: &str = "2026-11-02T09:12:00Z";

/// What the example's gates check for `image`, signed with `key`: its
/// signature, and its SLSA v1 provenance (`repository` at `revision`, built
/// by [`EXAMPLE_BUILDER`]) with a Trivy scan of one Low finding.
pub fn example_material(
    key: &SigningKey,
    image: &PushedImage,
    repository: &str,
    revision: &str,
) -> (Vec<Layer>, Vec<Layer>) {
    let provenance = attestation(
        key,
        &image.digest,
        SLSA_V1,
        slsa_v1(repository, revision, EXAMPLE_BUILDER),
    );
    let scan = attestation(
        key,
        &image.digest,
        VULN_V1,
        trivy_scan(EXAMPLE_SCANNED, &[("CVE-2024-45490", "LOW", "libexpat1")]),
    );
    (vec![signature(key, image, &image.digest)], vec![provenance, scan])
}

/// [`example_material`] as cosign v3 writes it by default: a signature
/// bundle and two attestation bundles.
pub fn example_bundles(
    key: &SigningKey,
    image: &PushedImage,
    repository: &str,
    revision: &str,
) -> Vec<Bundle> {
    vec![
        signature_bundle(key, &image.digest),
        attestation_bundle(
            key,
            &image.digest,
            SLSA_V1,
            slsa_v1(repository, revision, EXAMPLE_BUILDER),
        ),
        attestation_bundle(
            key,
            &image.digest,
            VULN_V1,
            trivy_scan(EXAMPLE_SCANNED, &[("CVE-2024-45490", "LOW", "libexpat1")]),
        ),
    ]
}

/// Signs the images of an example directory (`deploy/examples/shop` or a
/// copy) with `key`: a cosign signature of each component's digest, its
/// SLSA v1 provenance (the Artifact's repository and commit, built by
/// [`EXAMPLE_BUILDER`]) and a signed Trivy scan with one Low finding,
/// attached in `DIR/images` as `how` says after what earlier runs attached
/// is removed; `key`'s public key replaces every PEM block in
/// `environments.yaml`. Returns each signed reference and digest.
pub fn sign_example(dir: &Path, key: &SigningKey, how: Attach) -> anyhow::Result<Vec<(String, String)>> {
    let read =
        |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    let artifact: serde_yaml::Value = serde_yaml::from_str(&read(&dir.join("artifact.yaml"))?)?;
    let spec = &artifact["spec"];
    let repository = spec["source"]["repository"]
        .as_str()
        .context("artifact.yaml has no spec.source.repository")?;
    let revision = spec["source"]["revision"]
        .as_str()
        .context("artifact.yaml has no spec.source.revision")?;
    let images = dir.join("images");
    let mut index = read_index(&images)?;
    index["manifests"]
        .as_array_mut()
        .context("index.json has no manifests list")?
        .retain(|m| {
            let name = m["annotations"][REF_NAME].as_str();
            let attached =
                name.is_none_or(|n| n.ends_with(".sig") || n.ends_with(".att") || n.contains(":sha256-"));
            !attached
        });
    write_index(&images, &index)?;

    let mut signed = Vec::new();
    for image in spec["images"]
        .as_sequence()
        .context("artifact.yaml has no spec.images")?
    {
        let reference = image["image"]
            .as_str()
            .context("an image without spec.images[].image")?;
        let digest = self::digest(&images, reference)?;
        let name = reference.rsplit_once(':').map_or(reference, |(name, _tag)| name);
        let pushed = PushedImage {
            reference: reference.to_owned(),
            digest: digest.clone(),
        };
        if how == Attach::Bundles {
            let bundles = example_bundles(key, &pushed, repository, revision);
            attach_bundles(&images, name, &digest, &bundles)?;
        } else {
            let (signatures, attestations) = example_material(key, &pushed, repository, revision);
            attach(&images, name, &digest, &signatures, &attestations, how)?;
        }
        signed.push((reference.to_owned(), digest));
    }

    let environments = dir.join("environments.yaml");
    let text = read(&environments)?;
    let replaced = replace_public_keys(&text, &key.public_pem());
    anyhow::ensure!(
        text.contains(BEGIN),
        "{} holds no PEM public key to replace",
        environments.display()
    );
    std::fs::write(&environments, replaced).with_context(|| format!("writing {}", environments.display()))?;
    Ok(signed)
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
