//! Signs an image of an OCI image layout the way Hoist's provenance gate
//! checks it: a cosign signature of its digest and a signed SLSA v1
//! provenance naming the source repository, the commit and the builder,
//! attached under cosign's names `hoist:sha256-<hex>.sig` and `.att` (what
//! `scripts/image --sign-key` pushes beside the image).
//!
//!     sign-image --layout DIR --name hoist:TAG --identity REGISTRY/REPOSITORY \
//!         --key KEY.pem --repository URL --commit SHA --builder URI

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use hoist_testkit::layout::{self, Attach};
use hoist_testkit::registry::PushedImage;
use hoist_testkit::signing::{SLSA_V1, SigningKey, attestation, signature, slsa_v1};

const OPTIONS: [&str; 7] = [
    "--layout",
    "--name",
    "--identity",
    "--key",
    "--repository",
    "--commit",
    "--builder",
];

fn main() -> anyhow::Result<()> {
    let mut options = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(option) = args.next() {
        anyhow::ensure!(
            OPTIONS.contains(&option.as_str()),
            "unknown option {option}; expected {}",
            OPTIONS.join(", ")
        );
        let value = args.next().with_context(|| format!("{option} needs a value"))?;
        options.insert(option, value);
    }
    let get = |option: &str| {
        options
            .get(option)
            .map(String::as_str)
            .with_context(|| format!("{option} is required"))
    };
    let dir = PathBuf::from(get("--layout")?);
    let name = get("--name")?;
    let key_file = get("--key")?;
    let key = SigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(key_file).with_context(|| format!("reading {key_file}"))?,
    )
    .with_context(|| format!("reading the signing key {key_file}"))?;
    let digest = layout::digest(&dir, name)?;
    // The signature names the repository the image is pushed to, as cosign's does.
    let image = PushedImage {
        reference: format!(
            "{}:{}",
            get("--identity")?,
            name.rsplit_once(':').map_or("", |(_, tag)| tag)
        ),
        digest: digest.clone(),
    };
    let provenance = attestation(
        &key,
        &digest,
        SLSA_V1,
        slsa_v1(get("--repository")?, get("--commit")?, get("--builder")?),
    );
    let repository = name
        .rsplit_once(':')
        .map_or(name, |(repository, _tag)| repository);
    layout::attach(
        &dir,
        repository,
        &digest,
        &[signature(&key, &image, &digest)],
        &[provenance],
        Attach::CosignTags,
    )?;
    println!("signed {name} ({digest})");
    Ok(())
}
