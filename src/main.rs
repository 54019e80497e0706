//! The `hoist` command: the operator and its offline tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hoist::core::duration;

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
        /// Where workload-cluster agents renew their Leases on this hub
        /// (default: the operator's own namespace, or the kubeconfig's).
        #[arg(long, env = "HOIST_AGENT_NAMESPACE")]
        agent_namespace: Option<String>,
        #[command(flatten)]
        engine: Box<EngineArgs>,
        #[command(flatten)]
        election: Box<ElectionArgs>,
    },
    /// Run the agent of a workload cluster: reconcile the Environments of the
    /// hub whose spec.cluster names this cluster, with Deployments, ConfigMaps,
    /// Secrets, Namespaces and Jobs of the cluster of the current kubeconfig
    /// or service account.
    Agent {
        /// A kubeconfig of the hub (its current context), where Artifacts,
        /// Environments and Promotions live.
        #[arg(long, env = "HOIST_HUB_KUBECONFIG")]
        hub_kubeconfig: PathBuf,
        /// This workload cluster's name, as Environments' spec.cluster give it.
        #[arg(long, env = "HOIST_CLUSTER")]
        cluster: String,
        /// The hub namespace of the heartbeat Lease hoist-agent-<cluster>
        /// (default: the hub kubeconfig's namespace).
        #[arg(long, env = "HOIST_AGENT_NAMESPACE")]
        agent_namespace: Option<String>,
        #[command(flatten)]
        engine: Box<EngineArgs>,
        #[command(flatten)]
        replica: Box<ReplicaArgs>,
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
        /// Decide as at this instant (RFC 3339, e.g. 2026-12-04T17:30:00Z)
        /// instead of now: change windows and soak times are read against it.
        #[arg(long, value_parser = instant)]
        at: Option<k8s_openapi::jiff::Timestamp>,
    },
}

/// What `hoist controller` and `hoist agent` share: the engine's settings.
#[derive(clap::Args)]
struct EngineArgs {
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
    /// Watch only these namespaces (a namespace-scoped install): repeat
    /// the flag or separate them with commas; all when absent.
    #[arg(
        long = "watch-namespace",
        env = "HOIST_WATCH_NAMESPACE",
        value_delimiter = ','
    )]
    watch_namespace: Vec<String>,
    /// Give up (and exit non-zero, so Kubernetes restarts the pod) when the
    /// caches have not listed within this time, e.g. 3m or 90s.
    #[arg(long, env = "HOIST_STARTUP_TIMEOUT", default_value = "3m", value_parser = duration::parse_flag)]
    startup_timeout: std::time::Duration,
    /// How long in-flight reconciles may take to finish after SIGTERM;
    /// keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "HOIST_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = duration::parse_flag)]
    shutdown_timeout: std::time::Duration,
    /// How often retention deletes old Artifacts and finished Promotions
    /// nothing needs (README, "Retention"), e.g. 10m.
    #[arg(long, env = "HOIST_RETENTION_INTERVAL", default_value = "10m", value_parser = duration::parse_flag)]
    retention_interval: std::time::Duration,
    /// The ValidatingAdmissionPolicy (and binding) whose presence makes
    /// approvals verified.
    #[arg(long, env = "HOIST_APPROVAL_POLICY", default_value = hoist::core::gates::approval::POLICY)]
    approval_policy: String,
    /// The ValidatingAdmissionPolicy (and binding) whose presence lets
    /// the operator create Environments' verification Jobs and read the
    /// Secrets they reference.
    #[arg(long, env = "HOIST_ENVIRONMENT_POLICY", default_value = hoist::core::tenancy::POLICY)]
    environment_policy: String,
    /// Create verification Jobs and read referenced Secrets even while
    /// that policy is not installed as shipped: whoever may edit an
    /// Environment then acts with the operator's permissions.
    #[arg(long, env = "HOIST_TRUST_ENVIRONMENTS_WITHOUT_POLICY")]
    trust_environments_without_policy: bool,
    /// Act on Argo Rollouts' Rollouts (where their CRD is installed): the
    /// operator is granted them (chart value argoRollouts.enabled).
    #[arg(long, env = "HOIST_ARGO_ROLLOUTS")]
    argo_rollouts: bool,
    /// The Prometheus server of verification steps that name no address.
    #[arg(long, env = "HOIST_PROMETHEUS_ADDRESS")]
    prometheus_address: Option<String>,
    /// A destination verification steps may query besides the host of
    /// --prometheus-address: HOST, HOST:PORT, an IP address, ADDRESS:PORT
    /// or a CIDR; repeatable. Loopback and private addresses need an entry
    /// naming them, link-local ones (cloud metadata) an address or CIDR.
    #[arg(
        long = "allow-destination",
        env = "HOIST_ALLOWED_DESTINATIONS",
        value_delimiter = ','
    )]
    allowed_destinations: Vec<hoist::core::destinations::Allowed>,
    /// A Sigstore trusted_root.json that keyless policies naming no
    /// trustedRoot of their own verify against.
    #[arg(long, env = "HOIST_TRUSTED_ROOT")]
    trusted_root: Option<PathBuf>,
    /// The operator's configuration file (YAML; README "Operator
    /// configuration"): settings for every tenant of this install.
    #[arg(long, env = "HOIST_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, env = "HOIST_LOG_JSON")]
    log_json: bool,
}

/// Leader election among replicas of `hoist controller`.
#[derive(clap::Args)]
struct ElectionArgs {
    /// Take part in leader election over a coordination.k8s.io Lease: of the
    /// replicas that run, only the holder reconciles and writes; the others
    /// keep their caches warm and take over when it goes away.
    #[arg(long = "leader-election", env = "HOIST_LEADER_ELECTION")]
    enabled: bool,
    /// The Lease's name.
    #[arg(long, env = "HOIST_LEASE_NAME", default_value = "hoist")]
    lease_name: String,
    /// The Lease's namespace (default: the pod's own, or the kubeconfig's).
    #[arg(long, env = "HOIST_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    #[command(flatten)]
    replica: ReplicaArgs,
}

/// A replica's part in an election: its name and the Lease's timing.
#[derive(clap::Args)]
struct ReplicaArgs {
    /// This replica's name in the Lease (default: the host name, a pod's name).
    #[arg(long, env = "POD_NAME")]
    leader_identity: Option<String>,
    /// A Lease not renewed for this long is taken over (whole seconds).
    #[arg(long, env = "HOIST_LEASE_DURATION", default_value = "15s", value_parser = duration::parse_flag)]
    lease_duration: std::time::Duration,
    /// A leader that could not renew for this long stops reconciling;
    /// shorter than the lease duration.
    #[arg(long, env = "HOIST_RENEW_DEADLINE", default_value = "10s", value_parser = duration::parse_flag)]
    renew_deadline: std::time::Duration,
    /// How often the leader renews the Lease and standbys look at it.
    #[arg(long, env = "HOIST_RETRY_PERIOD", default_value = "1s", value_parser = duration::parse_flag)]
    retry_period: std::time::Duration,
}

impl ReplicaArgs {
    fn timing(&self) -> hoist::core::lease::Timing {
        hoist::core::lease::Timing {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

impl EngineArgs {
    /// The settings these flags give, with `election`; `Err` after printing
    /// why they cannot be used.
    fn settings(
        self,
        election: Option<hoist::controller::leader::Election>,
    ) -> Result<(hoist::controller::Settings, bool), ExitCode> {
        let trusted_root = match self
            .trusted_root
            .as_deref()
            .map(hoist::cli::trusted_root)
            .transpose()
        {
            Ok(root) => root,
            Err(error) => {
                eprintln!("hoist: {error}");
                return Err(ExitCode::from(2));
            }
        };
        let config = match self
            .config
            .as_deref()
            .map(hoist::cli::operator_config)
            .transpose()
        {
            Ok(config) => config.unwrap_or_default(),
            Err(error) => {
                eprintln!("hoist: {error}");
                return Err(ExitCode::from(2));
            }
        };
        let settings = hoist::controller::Settings {
            health_address: self.health_address,
            insecure_registries: self.insecure_registries,
            registry_concurrency: self.registry_concurrency,
            namespaces: hoist::controller::namespace_list(self.watch_namespace),
            startup_timeout: self.startup_timeout,
            shutdown_timeout: self.shutdown_timeout,
            retention_interval: self.retention_interval,
            approval_policy: self.approval_policy,
            environment_policy: self.environment_policy,
            trust_environments_without_policy: self.trust_environments_without_policy,
            argo_rollouts: self.argo_rollouts,
            prometheus_address: self.prometheus_address,
            allowed_destinations: self.allowed_destinations,
            election,
            trusted_root,
            config: std::sync::Arc::new(config),
            ..Default::default()
        };
        Ok((settings, self.log_json))
    }
}

/// An instant in RFC 3339, such as `2026-12-04T17:30:00Z`.
fn instant(text: &str) -> Result<k8s_openapi::jiff::Timestamp, String> {
    text.parse()
        .map_err(|error| format!("{text:?} is not an RFC 3339 instant such as 2026-12-04T17:30:00Z: {error}"))
}

/// jemalloc instead of glibc's allocator: with tens of thousands of cached
/// objects, glibc's free-list searches and consolidation took over a third
/// of the operator's CPU and the tail latency grew with the store; with
/// jemalloc both stay flat and resident memory is lower (README, Performance).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator's options ([`hoist::controller::allocator`]), read by
/// jemalloc under its prefixed name before `main`.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&std::ffi::c_char> =
    // SAFETY: a pointer to a NUL-terminated string that lives as long as the program.
    Some(unsafe { &*hoist::controller::allocator::MALLOC_CONF.as_ptr() });

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller {
            agent_namespace,
            engine,
            election,
        } => {
            let election = if election.enabled {
                match hoist::cli::election(
                    election.lease_name,
                    election.lease_namespace,
                    election.replica.leader_identity.clone(),
                    election.replica.timing(),
                ) {
                    Ok(election) => Some(election),
                    Err(error) => {
                        eprintln!("hoist: {error}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                None
            };
            let (mut settings, log_json) = match engine.settings(election) {
                Ok(settings) => settings,
                Err(code) => return code,
            };
            settings.agent_namespace = agent_namespace;
            hoist::cli::controller(settings, log_json).await
        }
        Command::Agent {
            hub_kubeconfig,
            cluster,
            agent_namespace,
            engine,
            replica,
        } => {
            let agent = match hoist::cli::agent(
                cluster,
                agent_namespace,
                replica.leader_identity.clone(),
                replica.timing(),
            ) {
                Ok(agent) => agent,
                Err(error) => {
                    eprintln!("hoist: {error}");
                    return ExitCode::from(2);
                }
            };
            let (settings, log_json) = match engine.settings(None) {
                Ok(settings) => settings,
                Err(code) => return code,
            };
            hoist::cli::agent_run(&hub_kubeconfig, agent, settings, log_json).await
        }
        Command::Crds { out } => hoist::cli::crds(out.as_deref()),
        Command::Render {
            dir,
            namespace,
            insecure_registries,
            at,
        } => hoist::cli::render(&dir, &namespace, insecure_registries, at).await,
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
