//! Signs the images of the shipped example (`deploy/examples/shop`) with a
//! new key: a cosign signature of each component's digest, its SLSA v1
//! provenance (the Artifact's repository and commit, built by the example's
//! builder) and a signed Trivy scan, written into the example's OCI layout
//! under cosign's tags; the new public key replaces every PEM block in
//! `environments.yaml`. The private key is thrown away.
//!
//!     cargo run -p hoist-testkit --bin sign-example [-- DIR]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hoist_testkit::layout;
use hoist_testkit::registry::PushedImage;
use hoist_testkit::signing::{SLSA_V1, SigningKey, VULN_V1, attestation, signature, slsa_v1, trivy_scan};

/// Who the example's provenance says built the images.
const BUILDER: &str = "https://ci.example.com/shop/release";
/// When the example's scan finished.
const SCANNED: &str = "2026-11-02T09:12:00Z";

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("deploy/examples/shop"), PathBuf::from);
    let artifact: serde_yaml::Value = serde_yaml::from_str(&read(&dir.join("artifact.yaml"))?)?;
    let spec = &artifact["spec"];
    let repository = spec["source"]["repository"]
        .as_str()
        .context("artifact.yaml has no spec.source.repository")?;
    let revision = spec["source"]["revision"]
        .as_str()
        .context("artifact.yaml has no spec.source.revision")?;
    let images = dir.join("images");
    // Material of earlier runs goes.
    layout::remove(&images, |name| name.ends_with(".sig") || name.ends_with(".att"))?;

    let key = SigningKey::generate();
    for image in spec["images"]
        .as_sequence()
        .context("artifact.yaml has no spec.images")?
    {
        let reference = image["image"]
            .as_str()
            .context("an image without spec.images[].image")?;
        let digest = layout::digest(&images, reference)?;
        let name = reference.rsplit_once(':').map_or(reference, |(name, _tag)| name);
        let tag = digest.replace(':', "-");
        let pushed = PushedImage {
            reference: reference.to_owned(),
            digest: digest.clone(),
        };
        layout::put(
            &images,
            &format!("{name}:{tag}.sig"),
            &[signature(&key, &pushed, &digest)],
        )?;
        let provenance = attestation(&key, &digest, SLSA_V1, slsa_v1(repository, revision, BUILDER));
        let scan = attestation(
            &key,
            &digest,
            VULN_V1,
            trivy_scan(SCANNED, &[("CVE-2024-45490", "LOW", "libexpat1")]),
        );
        layout::put(&images, &format!("{name}:{tag}.att"), &[provenance, scan])?;
        println!("signed {reference} ({digest})");
    }

    let environments = dir.join("environments.yaml");
    let text = read(&environments)?;
    let replaced = layout::replace_public_keys(&text, &key.public_pem());
    anyhow::ensure!(
        replaced != text,
        "{} holds no PEM public key to replace",
        environments.display()
    );
    std::fs::write(&environments, replaced).with_context(|| format!("writing {}", environments.display()))?;
    println!("public key written into {}", environments.display());
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
