//! Signs the images of the shipped example (`deploy/examples/shop`) with a
//! new key: a cosign signature of each component's digest, its SLSA v1
//! provenance (the Artifact's repository and commit, built by the example's
//! builder) and a signed Trivy scan, written into the example's OCI layout
//! under cosign's tags; the new public key replaces every PEM block in
//! `environments.yaml`. The private key is thrown away.
//!
//!     cargo run -p hoist-testkit --bin sign-example [-- DIR]

use std::path::PathBuf;

use hoist_testkit::layout::{self, Attach};
use hoist_testkit::signing::SigningKey;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("deploy/examples/shop"), PathBuf::from);
    for (reference, digest) in layout::sign_example(&dir, &SigningKey::generate(), Attach::CosignTags)? {
        println!("signed {reference} ({digest})");
    }
    println!(
        "public key written into {}",
        dir.join("environments.yaml").display()
    );
    Ok(())
}
