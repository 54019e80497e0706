//! What the `hoist` subcommands do, kept out of `main.rs` so it is testable.

// These errors end a command and carry the file, document and field they
// name; their size is irrelevant next to the I/O that produced them.
// `main` prints each error's sources after it, so messages do not repeat them.
#![allow(clippy::result_large_err)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::registry::{Resolver, ResolverConfig};
use crate::render::RenderError;

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serialize the CRDs")]
    Serialize(#[source] serde_yaml::Error),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot connect to Kubernetes")]
    Connect(#[source] kube::Error),
    #[error("cannot find a kubeconfig or an in-cluster service account")]
    Config(#[source] kube::config::InferConfigError),
    #[error(transparent)]
    Run(#[from] crate::controller::RunError),
    #[error("leader election: {0}")]
    Election(String),
    #[error("{0}")]
    Cluster(String),
    #[error("cannot read the hub kubeconfig {path}")]
    HubKubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot read the configuration file {path}")]
    ReadConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {source}")]
    OperatorConfig {
        path: String,
        source: crate::core::operator_config::ConfigError,
    },
    #[error("cannot read the trusted root {path}")]
    ReadTrustedRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the trusted root {path} {source}")]
    TrustedRoot {
        path: String,
        #[source]
        source: crate::core::supply_chain::keyless::root::RootError,
    },
}

/// `--trusted-root FILE`: a Sigstore trusted_root.json, read and checked
/// once at start, for keyless policies that name no root of their own.
pub fn trusted_root(path: &Path) -> Result<std::sync::Arc<[u8]>, CliError> {
    let shown = path.display().to_string();
    let json = std::fs::read(path).map_err(|source| CliError::ReadTrustedRoot {
        path: shown.clone(),
        source,
    })?;
    crate::core::supply_chain::keyless::TrustedRoot::from_json(&json)
        .map_err(|source| CliError::TrustedRoot { path: shown, source })?;
    Ok(json.into())
}

/// `--config FILE`: the operator's configuration, read and checked once at
/// start.
pub fn operator_config(path: &Path) -> Result<crate::core::operator_config::OperatorConfig, CliError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadConfig {
        path: shown.clone(),
        source,
    })?;
    crate::core::operator_config::parse(&text)
        .map_err(|source| CliError::OperatorConfig { path: shown, source })
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

/// `hoist render DIR`: prints the pinned Deployments and rendered ConfigMaps
/// on stdout and a line per Promotion on stderr; exit code 3 when a
/// Promotion did not succeed (rolled out with only its in-cluster
/// verification left counts as done). Decides as at `at`, else now.
pub async fn render(
    dir: &Path,
    namespace: &str,
    insecure_registries: Vec<String>,
    at: Option<Timestamp>,
) -> Result<ExitCode, CliError> {
    let resolver = Resolver::new(ResolverConfig {
        insecure_registries,
        ..ResolverConfig::default()
    });
    let now = Time(at.unwrap_or_else(Timestamp::now));
    let rendered = crate::render::render(dir, namespace, &resolver, now).await?;
    print!("{}", rendered.yaml);
    for promotion in &rendered.promotions {
        eprintln!(
            "Promotion {}/{}: {:?}: {}",
            promotion.namespace, promotion.name, promotion.phase, promotion.message
        );
    }
    Ok(if rendered.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The leader election `hoist controller` takes part in, from its options:
/// `identity` defaults to the host name (a pod's name).
pub fn election(
    lease_name: String,
    lease_namespace: Option<String>,
    identity: Option<String>,
    timing: crate::core::lease::Timing,
) -> Result<crate::controller::leader::Election, CliError> {
    let (identity, timing) = replica(identity, timing)?;
    Ok(crate::controller::leader::Election {
        lease_name,
        lease_namespace,
        identity,
        timing,
        labels: Default::default(),
        annotations: Default::default(),
    })
}

/// A replica's identity in an election (default: the host name, a pod's
/// name) and its checked timing.
fn replica(
    identity: Option<String>,
    timing: crate::core::lease::Timing,
) -> Result<(String, crate::core::lease::Timing), CliError> {
    let timing = timing
        .validate()
        .map_err(|error| CliError::Election(error.to_string()))?;
    let identity = identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|identity| !identity.is_empty())
        .ok_or_else(|| {
            CliError::Election(
                "this replica has no identity: set --leader-identity or POD_NAME (the chart sets it)".into(),
            )
        })?;
    Ok((identity, timing))
}

/// The agent `hoist agent` runs, from its options: `identity` defaults to
/// the host name (a pod's name).
pub fn agent(
    cluster: String,
    namespace: Option<String>,
    identity: Option<String>,
    timing: crate::core::lease::Timing,
) -> Result<crate::controller::agent::Agent, CliError> {
    if let Some(why) = crate::core::clusters::invalid_name(&cluster) {
        return Err(CliError::Cluster(why));
    }
    let (identity, timing) = replica(identity, timing)?;
    Ok(crate::controller::agent::Agent {
        cluster,
        namespace,
        identity,
        timing,
    })
}

fn init_logging(log_json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if log_json {
        builder.json().init()
    } else {
        builder.init()
    }
}

/// `hoist agent`: runs the agent with the hub of `hub_kubeconfig` and the
/// cluster of the current kubeconfig or service account until SIGTERM or
/// Ctrl-C.
pub async fn agent_run(
    hub_kubeconfig: &Path,
    agent: crate::controller::agent::Agent,
    settings: crate::controller::Settings,
    log_json: bool,
) -> Result<ExitCode, CliError> {
    init_logging(log_json);
    let path = hub_kubeconfig.display().to_string();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(hub_kubeconfig).map_err(|source| CliError::HubKubeconfig {
            path: path.clone(),
            source,
        })?;
    let hub_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|source| CliError::HubKubeconfig { path, source })?;
    let hub = settings
        .api_requests
        .client(hub_config)
        .map_err(CliError::Connect)?;
    let config = kube::Config::infer().await.map_err(CliError::Config)?;
    let local = settings.api_requests.client(config).map_err(CliError::Connect)?;
    crate::controller::agent::run(hub, local, agent, settings, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `hoist controller`: runs the operator until SIGTERM or Ctrl-C.
pub async fn controller(settings: crate::controller::Settings, log_json: bool) -> Result<ExitCode, CliError> {
    init_logging(log_json);
    let config = kube::Config::infer().await.map_err(CliError::Config)?;
    let client = settings.api_requests.client(config).map_err(CliError::Connect)?;
    crate::controller::run(client, settings, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
