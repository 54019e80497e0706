//! The operator's container image as `scripts/image` builds, signs and
//! pushes it (scripts/test does so into the test registry and exports
//! `HOIST_TEST_IMAGE`, the pushed `REGISTRY/hoist:TAG@sha256:…`, and
//! `HOIST_TEST_IMAGE_KEY`, the public key it was signed with): pulled back
//! with skopeo, its binary run from its own layers, its config checked, and
//! its signature and provenance verified by Hoist's own provenance gate.
//! The versions the chart and the Dockerfile name are the crate's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SOURCE: &str = "https://github.com/hoist-dev/hoist";
const NONROOT: &str = "65532:65532";

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).with_context(|| {
        format!("{name} is not set: run the suite with scripts/test, which builds the image with scripts/image and pushes it to the test registry")
    })
}

/// The pushed image: `REGISTRY/REPOSITORY:TAG` and its digest.
fn pushed() -> anyhow::Result<(String, String)> {
    let image = env("HOIST_TEST_IMAGE")?;
    let (tagged, digest) = image
        .split_once('@')
        .with_context(|| format!("HOIST_TEST_IMAGE={image} has no @sha256 digest"))?;
    Ok((tagged.to_owned(), digest.to_owned()))
}

fn run(command: &mut Command) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let output = command.output().with_context(|| format!("running {shown}"))?;
    ensure!(
        output.status.success(),
        "{shown} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The image pulled back from the registry by digest into an OCI layout:
/// the layout, its manifest and its config.
struct Pulled {
    layout: tempfile::TempDir,
    manifest: Value,
    config: Value,
}

fn pull() -> anyhow::Result<Pulled> {
    let (tagged, digest) = pushed()?;
    let repository = tagged.rsplit_once(':').map_or(tagged.as_str(), |(r, _)| r);
    let layout = tempfile::tempdir()?;
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{repository}@{digest}"),
        &format!("oci:{}:pulled", layout.path().display()),
    ]))?;
    let index = read_json(&layout.path().join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("the pulled layout's index names no manifest")?;
    ensure!(
        manifest_digest == digest,
        "pulled {manifest_digest}, pushed {digest}: the registry changed the manifest"
    );
    let manifest = read_json(&blob(layout.path(), manifest_digest))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("the manifest names no config")?;
    let config = read_json(&blob(layout.path(), config_digest))?;
    Ok(Pulled {
        layout,
        manifest,
        config,
    })
}

/// The image's layers unpacked, in order, into a directory.
fn unpack(pulled: &Pulled) -> anyhow::Result<tempfile::TempDir> {
    let root = tempfile::tempdir()?;
    for layer in pulled.manifest["layers"]
        .as_array()
        .context("the manifest has no layers")?
    {
        let digest = layer["digest"].as_str().context("a layer without a digest")?;
        run(Command::new("tar")
            .arg("-xzf")
            .arg(blob(pulled.layout.path(), digest))
            .arg("-C")
            .arg(root.path()))?;
    }
    Ok(root)
}

/// Runs `args` inside the unpacked image as its own user: nothing of this
/// machine's file system is there, so the binary runs only with what the
/// image carries.
fn in_image(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = run(Command::new("chroot")
        .arg(format!("--userspec={NONROOT}"))
        .arg(root)
        .args(args))?;
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn the_binary_runs_from_the_images_own_layers_as_its_user() -> anyhow::Result<()> {
    let pulled = pull()?;
    let root = unpack(&pulled)?;
    assert_eq!(
        in_image(root.path(), &["/hoist", "--version"])?,
        format!("hoist {VERSION}\n")
    );
    let help = in_image(root.path(), &["/hoist", "controller", "--help"])?;
    assert!(
        help.starts_with("Run the operator against the cluster") && help.contains("--health-address"),
        "hoist controller --help in the image printed:\n{help}"
    );
    // The operator reaches registries and the API server over TLS with the
    // image's CA bundle.
    let bundle = std::fs::read_to_string(root.path().join("etc/ssl/certs/ca-certificates.crt"))?;
    assert!(
        bundle.contains("BEGIN CERTIFICATE"),
        "the image carries no CA certificates"
    );
    Ok(())
}

#[test]
fn the_image_config_runs_the_controller_as_a_non_root_user_with_labels() -> anyhow::Result<()> {
    let config = pull()?.config;
    // The binary's machine, by its OCI name.
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(config["architecture"], architecture);
    assert_eq!(config["os"], "linux");
    let run = &config["config"];
    assert_eq!(run["User"], NONROOT);
    let uid: u32 = NONROOT.split(':').next().unwrap_or_default().parse()?;
    assert_ne!(uid, 0, "the image runs as root");
    assert_eq!(run["Entrypoint"], serde_json::json!(["/hoist", "controller"]));
    assert_eq!(run["Cmd"], Value::Null);
    let labels = &run["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.source"], SOURCE);
    assert_eq!(labels["org.opencontainers.image.revision"], head_commit()?);
    Ok(())
}

/// The commit the suite runs on, which scripts/image labels the image with.
fn head_commit() -> anyhow::Result<String> {
    let output = run(Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR")))?;
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A directory for `hoist render`: Hoist's own release as an Artifact and
/// an Environment whose provenance gate trusts `public_key`.
fn release_of_hoist(tagged: &str, revision: &str, public_key: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let key = public_key
        .lines()
        .map(|line| format!("              {line}\n"))
        .collect::<String>();
    let registry = tagged.split('/').next().context("the image names no registry")?;
    let manifests = format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: hoist-{VERSION}, namespace: hoist-system}}
spec:
  application: hoist
  version: {VERSION}
  images:
    - {{component: operator, image: "{tagged}"}}
  source: {{repository: "{SOURCE}", revision: "{revision}"}}
---
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: platform, namespace: hoist-system}}
spec:
  targets:
    - {{application: hoist, component: operator, deployment: {{name: hoist}}, container: hoist}}
  gates:
    provenance:
      requireSourceRevision: true
      allowedRegistries: ["{registry}"]
      signatures:
        keys:
          - name: hoist-release
            pem: |
{key}      attestation:
        keys:
          - name: hoist-release
            pem: |
{key}        builder: {{id: https://hoist.dev/scripts/image}}
---
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {{name: hoist-{VERSION}-platform, namespace: hoist-system}}
spec: {{artifact: hoist-{VERSION}, environment: platform, requestedBy: release-bot}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hoist, namespace: hoist-system}}
spec:
  selector: {{matchLabels: {{app: hoist}}}}
  template:
    metadata: {{labels: {{app: hoist}}}}
    spec:
      containers:
        - {{name: hoist, image: "{tagged}"}}
"#
    );
    std::fs::write(dir.path().join("release.yaml"), manifests)?;
    Ok(dir)
}

fn render(dir: &Path, registry: &str) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("render")
        .arg(dir)
        .args(["--insecure-registry", registry])
        .output()
        .context("running hoist render")
}

#[test]
fn hoists_own_provenance_gate_promotes_the_signed_image_and_refuses_another_key() -> anyhow::Result<()> {
    let (tagged, digest) = pushed()?;
    let registry = tagged.split('/').next().context("the image names no registry")?;
    let key_file = env("HOIST_TEST_IMAGE_KEY")?;
    let public_key = std::fs::read_to_string(&key_file).with_context(|| format!("reading {key_file}"))?;
    let revision = head_commit()?;

    let signed = render(
        release_of_hoist(&tagged, &revision, &public_key)?.path(),
        registry,
    )?;
    let stderr = String::from_utf8_lossy(&signed.stderr);
    let stdout = String::from_utf8_lossy(&signed.stdout);
    if !signed.status.success() {
        bail!(
            "hoist render refused Hoist's own signed image ({}):\n{stderr}",
            signed.status
        );
    }
    assert!(
        stdout.contains(&format!(
            "image: {}@{digest}",
            tagged.rsplit_once(':').map_or("", |(r, _)| r)
        )),
        "the Deployment is not pinned to the pushed digest:\n{stdout}"
    );

    let stranger = hoist_testkit::signing::SigningKey::generate().public_pem();
    let refused = render(release_of_hoist(&tagged, &revision, &stranger)?.path(), registry)?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "hoist render with another key:\n{stderr}"
    );
    assert!(
        stderr.contains("waiting for the Provenance gate") && stderr.contains("(UntrustedSignature)"),
        "hoist render with another key:\n{stderr}"
    );
    Ok(())
}

#[test]
fn the_chart_and_the_dockerfile_name_the_crates_version_and_the_built_repository() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("charts/hoist/Chart.yaml"))?)?;
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(VERSION),
        "charts/hoist/Chart.yaml appVersion"
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("charts/hoist/values.yaml"))?)?;
    assert_eq!(
        values["image"]["repository"].as_str(),
        Some("ghcr.io/hoist-dev/hoist")
    );
    assert_eq!(
        values["image"]["tag"].as_str(),
        Some(""),
        "the tag defaults to appVersion"
    );
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile"))?;
    assert!(
        dockerfile
            .lines()
            .any(|line| line == format!("ARG VERSION={VERSION}")),
        "the Dockerfile's ARG VERSION is not {VERSION}"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/hoist", "controller"]"#));
    assert!(dockerfile.contains("USER 65532:65532"));
    Ok(())
}
