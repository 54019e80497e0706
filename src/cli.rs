//! What the `hoist` subcommands do, kept out of `main.rs` so it is testable.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::api;
use crate::render::{LoadError, Manifests};

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serialize the CRDs: {0}")]
    Serialize(#[source] serde_yaml::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// `hoist crds`: the generated CRDs, printed or written one file each.
pub fn crds(out: Option<&Path>) -> Result<ExitCode, CliError> {
    let files = api::crds_yaml().map_err(CliError::Serialize)?;
    match out {
        Some(dir) => {
            for (file, yaml) in files {
                let path = dir.join(file);
                std::fs::write(&path, yaml).map_err(|source| CliError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for (_, yaml) in files {
                write!(out, "---\n{yaml}").map_err(|source| CliError::Write {
                    path: "stdout".into(),
                    source,
                })?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist render DIR`.
pub fn render(dir: &Path, namespace: &str) -> Result<ExitCode, CliError> {
    let manifests = Manifests::load(dir, namespace)?;
    let yaml = crate::render::normalized_yaml(&manifests).map_err(CliError::Serialize)?;
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
