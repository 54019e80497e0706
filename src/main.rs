//! The `hoist` command: the operator and its offline tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Build once, deploy many: promote digest-pinned artifacts through gated environments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig or service account.
    Controller {
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, env = "HOIST_HEALTH_ADDRESS", default_value = "0.0.0.0:8080")]
        health_address: std::net::SocketAddr,
        /// A registry (host[:port]) to reach over plain HTTP; repeatable.
        #[arg(
            long = "insecure-registry",
            env = "HOIST_INSECURE_REGISTRIES",
            value_delimiter = ','
        )]
        insecure_registries: Vec<String>,
        /// Concurrent requests per registry.
        #[arg(long, env = "HOIST_REGISTRY_CONCURRENCY", default_value = "4")]
        registry_concurrency: std::num::NonZeroUsize,
        /// Watch only this namespace (a namespace-scoped install); all when absent.
        #[arg(long = "watch-namespace", env = "HOIST_WATCH_NAMESPACE")]
        watch_namespace: Option<String>,
        /// Log as JSON lines.
        #[arg(long, env = "HOIST_LOG_JSON")]
        log_json: bool,
    },
    /// Print the CustomResourceDefinitions, or write one file per CRD into a directory.
    Crds {
        /// Directory to write `<plural>.yaml` files into (printed to stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read Artifacts, Environments, Promotions, Deployments and ConfigMaps from a
    /// directory and print the result, without a cluster.
    Render {
        /// Directory of YAML manifests (read recursively).
        dir: PathBuf,
        /// Namespace of objects that name none.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// A registry (host[:port]) to reach over plain HTTP; repeatable.
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
    },
}

/// jemalloc instead of glibc's allocator: with tens of thousands of cached
/// objects, glibc's free-list searches and consolidation took over a third
/// of the operator's CPU and the tail latency grew with the store; with
/// jemalloc both stay flat and resident memory is lower (README, Performance).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller {
            health_address,
            insecure_registries,
            registry_concurrency,
            watch_namespace,
            log_json,
        } => {
            let settings = hoist::controller::Settings {
                health_address,
                insecure_registries,
                registry_concurrency,
                namespace: watch_namespace,
                ..Default::default()
            };
            hoist::cli::controller(settings, log_json).await
        }
        Command::Crds { out } => hoist::cli::crds(out.as_deref()),
        Command::Render {
            dir,
            namespace,
            insecure_registries,
        } => hoist::cli::render(&dir, &namespace, insecure_registries).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hoist: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(2)
        }
    }
}
