//! The operator: kube-runtime controllers for Artifacts, Environments and
//! Promotions over shared caches, the health and metrics server, and the
//! supervisor that runs and stops them. Reconcilers only fetch, call the
//! core and apply.
//!
//! - `cache`, `slim`, `keys`: the watched caches, what they drop, how they are indexed;
//! - `triggers`: which Environments a change of another object concerns;
//! - `namespaces`, `secret_watches`: watches over a list of namespaces, and
//!   a cluster-wide install's Secret watches of the namespaces where
//!   Environments read Secrets;
//! - `readiness`, `supervisor`, `server`: start-up, health, shutdown;
//! - `error`: reconcile errors and per-object backoff;
//! - `artifact`, `environment`, `promotion`: the reconcilers, over `context`;
//! - `agent`: the same engine in a workload cluster, for the Environments
//!   of that cluster, reading and writing Hoist's kinds on the hub;
//! - `agents`: on the hub, workload-cluster agents' heartbeats on their
//!   Environments and Promotions;
//! - `pull_secrets`, `supply_chain`, `prometheus`: what the reconcilers read
//!   besides the caches (registry credentials, attachments, measurements).

pub mod agent;
mod agents;
pub mod allocator;
mod artifact;
mod cache;
mod context;
mod environment;
mod error;
mod gitops;
mod keys;
pub mod leader;
mod metrics;
mod namespaces;
mod notifications;
mod outbound;
mod prometheus;
mod promotion;
mod pull_secrets;
mod readiness;
mod registry_retention;
mod requests;
mod retention;
mod secret_watches;
mod server;
mod slim;
mod supervisor;
mod supply_chain;
mod triggers;
mod workloads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt, future};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ReflectHandle;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;

use cache::{Cache, Watches, keep, no_keys};
pub use context::FIELD_MANAGER;
use context::{Context, Ctx, Reporter, Stores};
pub use error::Error;
pub use metrics::FAMILIES as METRIC_FAMILIES;
use metrics::Metrics;
pub use namespaces::list as namespace_list;
use readiness::Readiness;
pub use requests::ApiRequests;
pub use server::Health;
pub use supervisor::Stopped;
use supervisor::{Supervisor, Task};

use crate::api::{Artifact, Environment, Promotion};
use crate::core::clusters::{self, Scope};
use crate::core::destinations::{AllowList, Allowed};
use crate::core::operator_config::OperatorConfig;
use crate::core::workload::{ArgoRollout, LABEL_ENVIRONMENT, LABEL_TENANT};
use crate::registry::{Resolver, ResolverConfig};

/// Why the operator could not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve health and metrics on {address}")]
    Serve {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot learn the operator's own user name with a SelfSubjectReview, which the Promotions autoPromote \
         creates carry as spec.requestedBy (the operator's RBAC needs create on \
         selfsubjectreviews.authentication.k8s.io)"
    )]
    Identity {
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Operator settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub health_address: SocketAddr,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Concurrent registry requests per registry.
    pub registry_concurrency: std::num::NonZeroUsize,
    /// Reconciles run at once per controller (0: unlimited).
    pub concurrency: u16,
    /// Watch only these namespaces' Hoist resources, Jobs, base ConfigMaps
    /// and Secrets (and only Deployments and ConfigMaps Hoist labelled for
    /// them); all namespaces when empty.
    pub namespaces: Vec<String>,
    /// How long the caches may take to list before the operator gives up
    /// (and exits non-zero, so that Kubernetes restarts it).
    pub startup_timeout: Duration,
    /// How long in-flight reconciles may take to finish after the shutdown signal.
    pub shutdown_timeout: Duration,
    /// Exported as `hoist_api_requests_total`; counted by clients made with
    /// [`ApiRequests::client`].
    pub api_requests: ApiRequests,
    /// The ValidatingAdmissionPolicy (and binding) whose presence makes
    /// approvals verified; the chart installs `hoist-approvals`.
    pub approval_policy: String,
    /// The ValidatingAdmissionPolicy (and binding) whose presence lets the
    /// operator act on Environments' Job steps and Secret references; the
    /// chart installs `hoist-environments`.
    pub environment_policy: String,
    /// Act on them without that policy: the cluster admin accepts that
    /// whoever may edit an Environment has Jobs created and Secrets read
    /// with the operator's permissions.
    pub trust_environments_without_policy: bool,
    /// Act on Argo Rollouts' Rollouts where their CRD is installed (the
    /// operator is granted them); without it Rollout targets are invalid.
    pub argo_rollouts: bool,
    /// The Prometheus server of verification steps that name no address.
    pub prometheus_address: Option<String>,
    /// Where verification steps may send queries besides the host of
    /// `prometheus_address` (core/destinations): hosts, addresses, CIDRs.
    pub allowed_destinations: Vec<Allowed>,
    /// Take part in leader election: of the replicas that run, only the
    /// holder of the Lease reconciles. `None`: this replica always does.
    pub election: Option<leader::Election>,
    /// The trusted_root.json (`--trusted-root`) of keyless policies that
    /// name none of their own.
    pub trusted_root: Option<Arc<[u8]>>,
    /// Where workload-cluster agents renew their Leases on the hub; the
    /// client's default namespace (in a pod, its own) when `None`.
    pub agent_namespace: Option<String>,
    /// The operator's configuration (`--config`).
    pub config: Arc<OperatorConfig>,
    /// How often retention looks for old Artifacts and finished Promotions
    /// to delete (on the hub, while leading).
    pub retention_interval: Duration,
}

/// The start-up deadline unless configured: a large tenant lists in seconds.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
/// Retention's pace unless configured: deleting is never urgent.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(600);
/// Below Kubernetes' default grace period of 30 s, so the process ends on its own.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            health_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            insecure_registries: Vec::new(),
            registry_concurrency: ResolverConfig::default().max_concurrent_per_registry,
            concurrency: 16,
            namespaces: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            api_requests: ApiRequests::default(),
            approval_policy: crate::core::gates::approval::POLICY.to_string(),
            environment_policy: crate::core::tenancy::POLICY.to_string(),
            trust_environments_without_policy: false,
            argo_rollouts: false,
            prometheus_address: None,
            allowed_destinations: Vec::new(),
            election: None,
            trusted_root: None,
            config: Default::default(),
            agent_namespace: None,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

/// Retries a failed reconcile with the object's own exponential backoff.
fn error_policy<K>(controller: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action
where
    K: Resource,
{
    move |object, error, ctx| {
        let key = error::key(controller, object.meta().namespace.as_deref(), &object.name_any());
        let delay = ctx.backoff.failed(&key, &error::RECONCILE_RETRY);
        tracing::warn!(controller, object = key, %error, retry_in = ?delay, "reconcile failed; retrying");
        ctx.metrics.failure(controller, &error.label());
        Action::requeue(delay)
    }
}

/// `reconcile` as the controllers run it: only once every cache has listed
/// (absence means nothing before that), counted and timed, and resetting
/// the object's backoff when it succeeds.
fn reconciler<K, F, Fut>(
    controller: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<K>, Ctx) -> future::BoxFuture<'static, Result<Action, Error>>
where
    K: Resource + Send + Sync + 'static,
    F: Fn(Arc<K>, Ctx) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |object, ctx| {
        let key = error::key(controller, object.meta().namespace.as_deref(), &object.name_any());
        async move {
            if !ctx.stores.wait_until_synced().await {
                // Stopping: nothing new is decided; the next start looks again.
                return Ok(Action::await_change());
            }
            if !ctx.leadership.is_leading() {
                // A standby decides nothing; when it becomes the leader every
                // object is reconciled (`Leadership::acquired`).
                return Ok(Action::await_change());
            }
            let _timer = ctx.metrics.reconcile(controller);
            let result = reconcile(object, Arc::clone(&ctx)).await;
            if result.is_ok() {
                ctx.backoff.succeeded(&key);
            }
            result
        }
        .boxed()
    }
}

/// A subscriber's events, or none if the cache could not hand one out.
fn stream<K>(handle: Option<ReflectHandle<K>>) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    futures::stream::iter(handle).flatten()
}

/// A started operator: its watches and controllers run; [`Operator::run`]
/// supervises them until the shutdown signal. Dropping it stops everything
/// at once (as a crash would).
pub struct Operator {
    health_address: SocketAddr,
    supervisor: Supervisor,
    /// Stops the tasks if the operator is dropped unrun.
    tasks: supervisor::AbortOnDrop,
}

impl Operator {
    /// Where `/healthz`, `/readyz` and `/metrics` are served (the port bound
    /// when the settings asked for port 0).
    pub fn health_address(&self) -> SocketAddr {
        self.health_address
    }

    /// Supervises the operator until `shutdown` resolves; see
    /// [`supervisor`](self) for what ends it otherwise. Never `Ok` after a
    /// controller or watch was lost.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let Operator {
            supervisor, tasks, ..
        } = self;
        let result = supervisor.run(shutdown).await;
        drop(tasks);
        result.map_err(RunError::from)
    }
}

/// Runs the operator with `client` until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    start(client, settings).await?.run(shutdown).await
}

/// Whether the API server serves `admissionregistration.k8s.io/v1`
/// ValidatingAdmissionPolicy (Kubernetes 1.30+). When discovery fails for
/// another reason the watch is tried anyway: the start-up deadline names it
/// if it cannot list.
async fn serves_admission_policies(client: &Client) -> bool {
    match client
        .list_api_group_resources("admissionregistration.k8s.io/v1")
        .await
    {
        Ok(resources) => resources
            .resources
            .iter()
            .any(|resource| resource.name == "validatingadmissionpolicies"),
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether ValidatingAdmissionPolicy is served; watching it");
            true
        }
    }
}

/// A watch of the ValidatingAdmissionPolicy named `name` and one of its
/// binding, for readiness named `labels`.
#[allow(clippy::type_complexity)]
fn watch_policy(
    watches: &mut Watches,
    client: &Client,
    name: &str,
    labels: [&'static str; 2],
) -> (
    (
        Cache<ValidatingAdmissionPolicy>,
        Vec<ReflectHandle<ValidatingAdmissionPolicy>>,
    ),
    (
        Cache<ValidatingAdmissionPolicyBinding>,
        Vec<ReflectHandle<ValidatingAdmissionPolicyBinding>>,
    ),
) {
    let named = watcher::Config::default().fields(&format!("metadata.name={name}"));
    (
        watches.add(
            labels[0],
            Api::<ValidatingAdmissionPolicy>::all(client.clone()),
            named.clone(),
            1,
            no_keys,
            keep,
        ),
        watches.add(
            labels[1],
            Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()),
            named,
            1,
            no_keys,
            keep,
        ),
    )
}

/// The operator's own user name, as the API server authenticates it;
/// `None` where the API server does not serve SelfSubjectReview (older than
/// 1.28, which cannot run the admission policy either).
async fn identity(client: &Client) -> Result<Option<String>, RunError> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    match reviews
        .create(&Default::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => Ok(review.status.and_then(|s| s.user_info).and_then(|u| u.username)),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            tracing::warn!(
                "the API server does not serve SelfSubjectReview; Promotions autoPromote creates name no requester"
            );
            Ok(None)
        }
        Err(source) => Err(RunError::Identity { source }),
    }
}

/// Binds the health server, starts the watches and the controllers.
pub async fn start(client: Client, settings: Settings) -> Result<Operator, RunError> {
    start_scoped(client.clone(), client, Scope::Hub, settings).await
}

/// Starts the process that reconciles the Environments of `scope`, reading
/// and writing Hoist's kinds on `hub` and workload kinds on `local` (the
/// same client for the operator, see [`agent`] for the agent).
async fn start_scoped(
    hub: Client,
    local: Client,
    scope: Scope,
    settings: Settings,
) -> Result<Operator, RunError> {
    let started = Instant::now();
    let leadership = match &settings.election {
        Some(election) => leader::Leadership::candidate(&election.identity),
        None => leader::Leadership::sole(),
    };
    // With an election, writes leave the process only while this replica
    // leads, through either client; the Lease and the process's own
    // SelfSubjectReview go through the hub's client as given.
    let unfenced = hub.clone();
    let (hub, local) = match &settings.election {
        Some(_) => (
            leader::fenced(hub, leadership.clone()),
            leader::fenced(local, leadership.clone()),
        ),
        None => (hub, local),
    };
    let managed = watcher::Config::default().labels(&match settings.namespaces.as_slice() {
        [] => LABEL_ENVIRONMENT.to_string(),
        namespaces => format!("{LABEL_ENVIRONMENT},{LABEL_TENANT} in ({})", namespaces.join(",")),
    });
    let watched = settings.namespaces.as_slice();
    let mut watches = Watches::default();
    // Subscribers of the Hoist kinds' watches: the kind's own controller
    // and the Environment controller's triggers; an agent runs neither the
    // Artifact nor the Promotion controller (digests are resolved and
    // Promotions into missing Environments refused on the hub), and its
    // Environment controller is fed by a watch of its own Environments.
    // On the hub, the agents' controller also follows Environments (its
    // own and their upstream), Promotions and Artifacts (for the
    // Promotions autoPromote creates for workload clusters' Environments).
    let subscribers = match scope {
        Scope::Hub => 3,
        Scope::Agent { .. } => 1,
    };
    let followed = match scope {
        Scope::Hub => 4,
        Scope::Agent { .. } => 1,
    };
    // Every Environment, also those of other clusters: upstream, soak and
    // compatibility gates read their statuses wherever they run. (A
    // cluster-wide install's Secret watches follow them too.)
    let (environments, mut environment_events) = watches.add_in::<Environment>(
        "environments.hoist.dev",
        &hub,
        watched,
        Default::default(),
        followed + usize::from(watched.is_empty()),
        keys::environment,
        keep,
    );
    // An agent sees only the Promotions the hub labelled with its cluster.
    let promotions_of_scope = match scope.cluster() {
        Some(cluster) => watcher::Config::default().labels(&clusters::label_selector(cluster)),
        None => watcher::Config::default(),
    };
    let (promotions, mut promotion_events) = watches.add_in::<Promotion>(
        "promotions.hoist.dev",
        &hub,
        watched,
        promotions_of_scope,
        // And the notification sender, hub and agent alike.
        followed + 1,
        keys::promotion,
        slim::promotion,
    );
    let (artifacts, mut artifact_events) = watches.add_in::<Artifact>(
        "artifacts.hoist.dev",
        &hub,
        watched,
        Default::default(),
        subscribers,
        keys::artifact,
        keep,
    );
    let (deployments, mut deployment_events) = watches.add(
        "deployments.apps",
        Api::<Deployment>::all(local.clone()),
        managed.clone(),
        1,
        no_keys,
        slim::deployment,
    );
    // Target namespaces' labels opt them in for tenants; on the hub, where
    // Environments live, their own namespace's label names their tier.
    let (namespaces, mut namespace_events) = watches.add(
        "namespaces",
        Api::<Namespace>::all(local.clone()),
        Default::default(),
        1 + usize::from(matches!(scope, Scope::Hub)),
        no_keys,
        keep,
    );
    // An agent reads the tiers of its Environments' namespaces on the hub,
    // only when there are tiers (the hub RBAC for agents grants it).
    let (tenant_namespaces, tenant_namespace_events) = match scope {
        Scope::Hub => (Some(namespaces.clone()), namespace_events.pop()),
        Scope::Agent { .. } if settings.config.tiers.is_some() => {
            let (cache, mut events) = watches.add(
                "namespaces (hub)",
                Api::<Namespace>::all(hub.clone()),
                Default::default(),
                1,
                no_keys,
                keep,
            );
            (Some(cache), events.pop())
        }
        Scope::Agent { .. } => (None, None),
    };
    let (config_maps, mut config_map_events) = watches.add(
        "configmaps (labelled hoist.dev/environment)",
        Api::<ConfigMap>::all(local.clone()),
        managed.clone(),
        1,
        keys::config_map,
        keep,
    );
    // Verification Jobs run in their Environment's namespace: a
    // namespace-scoped install needs Jobs there only.
    let (jobs, mut job_events) = watches.add_in::<Job>(
        "jobs.batch (labelled hoist.dev/environment)",
        &local,
        watched,
        managed.clone(),
        1,
        keys::job,
        keep,
    );
    // Base ConfigMaps and referenced Secrets: the version is enough to notice a change.
    let (config_map_versions, mut config_map_version_events) = watches
        .add_in::<PartialObjectMeta<ConfigMap>>(
            "configmaps",
            &local,
            watched,
            Default::default(),
            1,
            no_keys,
            slim::versions,
        );
    let (secret_versions, secret_version_events) = match watched {
        [] => {
            let (per_namespace, changes) =
                secret_watches::PerNamespace::new(local.clone(), scope.clone(), environments.clone());
            let follow = per_namespace
                .clone()
                .follow(stream(environment_events.pop()), environments.removals());
            watches.drivers.push(("secrets (per namespace)", follow.boxed()));
            (
                secret_watches::SecretVersions::PerNamespace(per_namespace),
                changes,
            )
        }
        _ => {
            let (versions, mut events) = watches.add_in::<PartialObjectMeta<Secret>>(
                "secrets",
                &local,
                watched,
                Default::default(),
                1,
                no_keys,
                slim::versions,
            );
            (
                secret_watches::SecretVersions::Listed(versions),
                stream(events.pop()).boxed(),
            )
        }
    };
    // The Environments an agent reconciles, from a watch of its own.
    let own_environments = match scope.cluster() {
        Some(cluster) => Some(agent::watch_own_environments(&mut watches, &hub, watched, cluster).await),
        None => None,
    };
    // On the hub, workload-cluster agents' heartbeats, in the agent
    // namespace only (an agent reads no other agent's Lease).
    let agent_namespace = settings
        .agent_namespace
        .clone()
        .unwrap_or_else(|| hub.default_namespace().to_owned());
    let lease_watch = matches!(scope, Scope::Hub).then(|| {
        watches.add(
            "leases.coordination.k8s.io (labelled hoist.dev/cluster)",
            Api::<Lease>::namespaced(hub.clone(), &agent_namespace),
            watcher::Config::default().labels(crate::core::agents::LABEL_CLUSTER),
            1,
            no_keys,
            keep,
        )
    });
    // The admission policies that vouch for approvals and for Environments'
    // authors, where the API server serves the kind (Kubernetes 1.30+):
    // each watched by name, on the hub, where Environments and approvals
    // are written.
    let serves_policies = serves_admission_policies(&hub).await;
    // Target kinds the workload cluster does not serve: an Environment
    // targeting one says so in TargetsValid.
    let mut unserved_kinds = workloads::unserved_kinds(&local).await;
    if !settings.argo_rollouts {
        unserved_kinds.insert(crate::api::WorkloadKind::Rollout);
    }
    if !unserved_kinds.is_empty() {
        tracing::info!(
            ?unserved_kinds,
            "workload kinds not served here: targets of these kinds are invalid"
        );
    }
    let (workload_caches, workload_events) =
        workloads::watch(&mut watches, &local, &managed, &unserved_kinds);
    let approval_policy = serves_policies.then(|| {
        watch_policy(
            &mut watches,
            &hub,
            &settings.approval_policy,
            [
                "validatingadmissionpolicies.admissionregistration.k8s.io",
                "validatingadmissionpolicybindings.admissionregistration.k8s.io",
            ],
        )
    });
    let environment_policy = serves_policies.then(|| {
        watch_policy(
            &mut watches,
            &hub,
            &settings.environment_policy,
            [
                "validatingadmissionpolicies.admissionregistration.k8s.io (environments)",
                "validatingadmissionpolicybindings.admissionregistration.k8s.io (environments)",
            ],
        )
    });
    if settings.trust_environments_without_policy {
        tracing::warn!(
            policy = settings.environment_policy,
            "trusting Environments without the admission policy: whoever may edit an Environment has verification \
             Jobs created and Secrets read with the operator's permissions"
        );
    }
    let readiness = Readiness::new(watches.listed);
    let identity = identity(&unfenced).await?;

    // No prefix: `with_prefix("")` would export every name with a leading `_`.
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    Metrics::register_readiness(&mut registry, readiness.clone());
    if settings.election.is_some() {
        Metrics::register_leadership(&mut registry, leadership.clone());
    }
    if let secret_watches::SecretVersions::PerNamespace(watches) = &secret_versions {
        Metrics::register_secret_watches(&mut registry, watches.clone());
    }
    settings.api_requests.register(&mut registry);
    let resolver = Resolver::new(ResolverConfig {
        insecure_registries: settings.insecure_registries.clone(),
        max_concurrent_per_registry: settings.registry_concurrency,
        ..ResolverConfig::default()
    });
    Metrics::register_registry_lookups(&mut registry, resolver.clone());
    let health = Health::new(readiness.clone(), registry).with_unserved(&unserved_kinds);
    // One agent per cluster works; a standby says so.
    let health = Arc::new(match (&scope, &settings.election) {
        (Scope::Agent { .. }, Some(election)) => {
            let namespace = election
                .lease_namespace
                .clone()
                .unwrap_or_else(|| unfenced.default_namespace().to_owned());
            health.requiring_lead(leadership.clone(), format!("{namespace}/{}", election.lease_name))
        }
        _ => health,
    });
    let (health_address, server) = server::serve(settings.health_address, Arc::clone(&health))
        .await
        .map_err(|source| RunError::Serve {
            address: settings.health_address,
            source,
        })?;
    tracing::info!(%health_address, "serving /healthz, /readyz and /metrics");

    let stores = Stores {
        environments,
        promotions,
        artifacts,
        deployments,
        namespaces,
        tenant_namespaces,
        config_maps,
        jobs,
        config_map_versions,
        secret_versions,
        leases: lease_watch.as_ref().map(|(leases, _)| leases.clone()),
        agent_namespace,
        approval_policy_name: settings.approval_policy.clone(),
        approval_policy: approval_policy
            .as_ref()
            .map(|((policies, _), (bindings, _))| (policies.clone(), bindings.clone())),
        environment_policy_name: settings.environment_policy.clone(),
        environment_policy: environment_policy
            .as_ref()
            .map(|((policies, _), (bindings, _))| (policies.clone(), bindings.clone())),
        trust_environments_without_policy: settings.trust_environments_without_policy,
        readiness: readiness.clone(),
        workloads: workload_caches,
        unserved_kinds: unserved_kinds.clone(),
    };
    let destinations = AllowList::new(
        settings.allowed_destinations.clone(),
        settings.prometheus_address.as_deref(),
    );
    let ctx = Arc::new(Context {
        hub: hub.clone(),
        local: local.clone(),
        scope: scope.clone(),
        resolver,
        reporter: Reporter {
            controller: "hoist".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
        metrics: metrics.clone(),
        stores: stores.clone(),
        sources: Default::default(),
        backoff: Default::default(),
        identity,
        prometheus: prometheus::Prometheus::new(settings.prometheus_address.clone(), destinations.clone()),
        destinations,
        checks: Default::default(),
        pin_overwrites: Default::default(),
        leadership: leadership.clone(),
        trusted_root: settings.trusted_root.clone(),
        config: settings.config.clone(),
    });
    let controller_config = kube::runtime::controller::Config::default().concurrency(settings.concurrency);

    // One signal for the controllers: stop taking new work.
    let (graceful, _) = tokio::sync::broadcast::channel::<()>(1);
    let signal = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };

    // Digests are resolved and Promotions into missing Environments refused
    // on the hub only.
    let hub_controllers = matches!(scope, Scope::Hub).then(|| {
        let artifact_controller =
            Controller::for_shared_stream(stream(artifact_events.pop()), stores.artifacts.store())
                .with_config(controller_config.clone())
                .reconcile_all_on(leadership.acquired())
                .graceful_shutdown_on(signal(&graceful))
                .run(
                    reconciler("artifact", artifact::reconcile),
                    error_policy("artifact"),
                    Arc::clone(&ctx),
                )
                .for_each(|_| future::ready(()));
        let promotion_controller =
            Controller::for_shared_stream(stream(promotion_events.pop()), stores.promotions.store())
                .with_config(controller_config.clone())
                .reconcile_all_on(leadership.acquired())
                .graceful_shutdown_on(signal(&graceful))
                .run(
                    reconciler("promotion", promotion::reconcile),
                    error_policy("promotion"),
                    Arc::clone(&ctx),
                )
                .for_each(|_| future::ready(()));
        let retention = retention::run(Arc::clone(&ctx), settings.retention_interval, signal(&graceful));
        [
            Task::controller("artifact", tokio::spawn(artifact_controller)),
            Task::controller("promotion", tokio::spawn(promotion_controller)),
            Task::controller("retention", tokio::spawn(retention)),
        ]
    });

    let for_artifacts = (stores.promotions.clone(), stores.environments.clone());
    let agents_for_artifacts = for_artifacts.clone();
    let (reconciled, reconciled_store) = match own_environments {
        Some((own, mut own_events)) => (stream(own_events.pop()), own.store()),
        None => (stream(environment_events.pop()), stores.environments.store()),
    };
    let mut environment_controller = Controller::for_shared_stream(reconciled, reconciled_store)
        .with_config(controller_config.clone())
        .reconcile_all_on(leadership.acquired())
        .watches_shared_stream(
            stream(environment_events.pop()),
            triggers::over(stores.environments.clone(), triggers::downstream_of),
        )
        .watches_shared_stream(stream(promotion_events.pop()), |promotion: Arc<Promotion>| {
            triggers::environment_of_promotion(&promotion)
        })
        .watches_shared_stream(stream(artifact_events.pop()), move |artifact: Arc<Artifact>| {
            triggers::environments_for_artifact(&for_artifacts.0, &for_artifacts.1, &artifact)
        })
        .watches_shared_stream(stream(deployment_events.pop()), |deployment: Arc<Deployment>| {
            triggers::environment_of_labelled(deployment.as_ref())
        })
        .watches_shared_stream(
            stream(workload_events.stateful_sets.into_iter().next()),
            |object: Arc<StatefulSet>| triggers::environment_of_labelled(object.as_ref()),
        )
        .watches_shared_stream(
            stream(workload_events.daemon_sets.into_iter().next()),
            |object: Arc<DaemonSet>| triggers::environment_of_labelled(object.as_ref()),
        )
        .watches_shared_stream(
            stream(workload_events.cron_jobs.into_iter().next()),
            |object: Arc<CronJob>| triggers::environment_of_labelled(object.as_ref()),
        )
        .watches_shared_stream(
            stream(workload_events.rollouts.into_iter().next()),
            |object: Arc<ArgoRollout>| triggers::environment_of_labelled(object.as_ref()),
        )
        .watches_shared_stream(stream(config_map_events.pop()), |config_map: Arc<ConfigMap>| {
            triggers::environment_of_config_map(&config_map)
        })
        .watches_shared_stream(stream(job_events.pop()), |job: Arc<Job>| {
            triggers::environment_of_labelled(job.as_ref())
        })
        .watches_shared_stream(
            stream(namespace_events.pop()),
            triggers::over(stores.environments.clone(), triggers::environments_targeting),
        )
        .watches_shared_stream(
            stream(tenant_namespace_events),
            triggers::over(stores.environments.clone(), triggers::environments_in),
        )
        .watches_shared_stream(
            stream(config_map_version_events.pop()),
            triggers::over(stores.environments.clone(), triggers::environments_based_on),
        )
        .watches_shared_stream(
            secret_version_events,
            triggers::over(stores.environments.clone(), triggers::environments_referencing),
        );
    if let Some(((policies, mut policy_events), (bindings, mut binding_events))) = approval_policy {
        environment_controller = environment_controller
            // Shared streams carry no deletions: a policy or binding removed
            // reconciles every Environment.
            .reconcile_all_on(futures::stream::select(policies.removals(), bindings.removals()))
            .watches_shared_stream(
                stream(policy_events.pop()),
                triggers::over(
                    stores.environments.clone(),
                    triggers::environments_gated_by_approval,
                ),
            )
            .watches_shared_stream(
                stream(binding_events.pop()),
                triggers::over(
                    stores.environments.clone(),
                    triggers::environments_gated_by_approval,
                ),
            );
    }
    if let Some(((policies, mut policy_events), (bindings, mut binding_events))) = environment_policy {
        environment_controller = environment_controller
            .reconcile_all_on(futures::stream::select(policies.removals(), bindings.removals()))
            .watches_shared_stream(
                stream(policy_events.pop()),
                triggers::over(stores.environments.clone(), triggers::environments_delegating),
            )
            .watches_shared_stream(
                stream(binding_events.pop()),
                triggers::over(stores.environments.clone(), triggers::environments_delegating),
            );
    }
    let environment_controller = environment_controller
        .graceful_shutdown_on(signal(&graceful))
        .run(
            reconciler("environment", environment::reconcile),
            error_policy("environment"),
            Arc::clone(&ctx),
        )
        .for_each(|_| future::ready(()));

    // Webhooks are sent off the Environment reconcile's path, by a
    // controller of their own.
    let notifications_controller =
        Controller::for_shared_stream(stream(promotion_events.pop()), stores.promotions.store())
            .with_config(controller_config.clone())
            .reconcile_all_on(leadership.acquired())
            .graceful_shutdown_on(signal(&graceful))
            .run(
                reconciler("notifications", notifications::reconcile),
                error_policy("notifications"),
                Arc::clone(&ctx),
            )
            .for_each(|_| future::ready(()));

    // On the hub only: agents' heartbeats on their Environments and Promotions.
    let agents_controller = lease_watch.map(|(_, mut lease_events)| {
        let controller =
            Controller::for_shared_stream(stream(environment_events.pop()), stores.environments.store())
                .with_config(controller_config)
                .reconcile_all_on(leadership.acquired())
                .watches_shared_stream(
                    stream(lease_events.pop()),
                    triggers::over(stores.environments.clone(), agents::environments_of_lease),
                )
                .watches_shared_stream(stream(promotion_events.pop()), |promotion: Arc<Promotion>| {
                    triggers::environment_of_promotion(&promotion)
                })
                .watches_shared_stream(
                    stream(environment_events.pop()),
                    triggers::over(stores.environments.clone(), triggers::downstream_of),
                )
                .watches_shared_stream(stream(artifact_events.pop()), move |artifact: Arc<Artifact>| {
                    triggers::environments_for_artifact(
                        &agents_for_artifacts.0,
                        &agents_for_artifacts.1,
                        &artifact,
                    )
                })
                .graceful_shutdown_on(signal(&graceful))
                .run(
                    reconciler("agents", agents::reconcile),
                    error_policy("agents"),
                    Arc::clone(&ctx),
                )
                .for_each(|_| future::ready(()));
        Task::controller("agents", tokio::spawn(controller))
    });

    // Every watch and every controller is a task of its own, so the runtime
    // spreads decoding watch events, scheduling and reconciling over its
    // threads instead of running them all on the thread that awaits `run`.
    let watches = watches
        .drivers
        .into_iter()
        .map(|(name, driver)| Task::watch(name, tokio::spawn(driver)))
        .chain([Task::server(server)])
        .collect::<Vec<_>>();
    let controllers = hub_controllers
        .into_iter()
        .flatten()
        .chain([
            Task::controller("environment", tokio::spawn(environment_controller)),
            Task::controller("notifications", tokio::spawn(notifications_controller)),
        ])
        .chain(agents_controller)
        .collect::<Vec<_>>();
    let election = settings.election.clone().map(|election| {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(leader::run(unfenced, election, leadership, async move {
            let _ = released.await;
        }));
        (Task::election(handle), release)
    });
    let tasks = supervisor::AbortOnDrop::of(
        watches
            .iter()
            .chain(&controllers)
            .chain(election.as_ref().map(|(task, _)| task)),
    );
    Ok(Operator {
        health_address,
        tasks,
        supervisor: Supervisor {
            watches,
            controllers,
            readiness,
            health,
            metrics,
            graceful,
            startup_timeout: settings.startup_timeout,
            shutdown_timeout: settings.shutdown_timeout,
            started,
            election,
        },
    })
}
