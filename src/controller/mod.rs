//! The operator: kube-runtime controllers for Artifacts, Environments and
//! Promotions over shared caches, plus the health and metrics server.
//! Reconcilers only fetch, call the core and apply.

mod artifact;
mod cache;
mod context;
mod environment;
mod metrics;
mod promotion;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt, future};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;

use cache::{Cache, keep, no_keys, shared};
pub use context::FIELD_MANAGER;
use context::{Context, Reporter, Stores};
use metrics::Metrics;
pub use server::Health;

use crate::api::{Artifact, Environment, Promotion};
use crate::core::deployment::{LABEL_ENVIRONMENT, LABEL_TENANT};
use crate::registry::{Resolver, ResolverConfig};

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),
}

impl Error {
    fn label(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(status)) => format!("api_{}", status.code),
            Error::Kube(_) => "api".into(),
        }
    }
}

/// Why the operator could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve health and metrics on {address}: {source}")]
    Serve {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
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
    /// Watch only this namespace's Hoist resources (and only Deployments and
    /// ConfigMaps Hoist labelled for it); all namespaces when `None`.
    pub namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            health_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            insecure_registries: Vec::new(),
            registry_concurrency: ResolverConfig::default().max_concurrent_per_registry,
            concurrency: 16,
            namespace: None,
        }
    }
}

fn error_policy<K>(controller: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |_, error, ctx| {
        tracing::warn!(controller, %error, "reconcile failed; retrying");
        ctx.metrics.failure(controller, &error.label());
        Action::requeue(Duration::from_secs(5))
    }
}

/// An Api over one namespace, or all of them.
fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A subscriber's events, or none if the cache could not hand one out.
fn stream<K>(handle: Option<ReflectHandle<K>>) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    futures::stream::iter(handle).flatten()
}

/// Index keys of the caches: which reconciles need which objects.
mod keys {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;

    use super::cache::key;
    use crate::api::{Artifact, Environment, Promotion};
    use crate::core::deployment::{LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT};
    use crate::core::environment::target_namespace;

    /// Environments of a namespace.
    pub fn in_namespace(namespace: &str) -> String {
        key("namespace", namespace, "")
    }
    /// Environments that name `environment` upstream.
    pub fn downstream_of(namespace: &str, environment: &str) -> String {
        key("downstream-of", namespace, environment)
    }
    /// Environments targeting, and Artifacts of, an application.
    pub fn application(namespace: &str, application: &str) -> String {
        key("application", namespace, application)
    }
    /// Environments with a target Deployment in `namespace`.
    pub fn targets_in(namespace: &str) -> String {
        key("targets-in", "", namespace)
    }
    /// Environments whose configuration is based on ConfigMap `name`.
    pub fn base(namespace: &str, name: &str) -> String {
        key("base", namespace, name)
    }
    /// Environments whose configuration references Secret `name`.
    pub fn secret(namespace: &str, name: &str) -> String {
        key("secret", namespace, name)
    }
    /// Promotions into an Environment.
    pub fn into_environment(namespace: &str, environment: &str) -> String {
        key("environment", namespace, environment)
    }
    /// Promotions of an Artifact.
    pub fn of_artifact(namespace: &str, artifact: &str) -> String {
        key("artifact", namespace, artifact)
    }
    /// Configuration snapshots of an Environment.
    pub fn snapshots(namespace: &str, environment: &str) -> String {
        key("snapshots", namespace, environment)
    }

    pub fn environment(environment: &Environment) -> Vec<String> {
        let namespace = environment.namespace().unwrap_or_default();
        let spec = &environment.spec;
        let mut keys = vec![in_namespace(&namespace)];
        keys.extend(spec.upstream.iter().map(|name| downstream_of(&namespace, name)));
        for target in &spec.targets {
            keys.push(application(&namespace, &target.application));
            keys.push(targets_in(&target_namespace(environment, target)));
        }
        for config in &spec.config {
            keys.extend(config.base_config_map.iter().map(|name| base(&namespace, name)));
            keys.extend(config.secret_refs.iter().map(|s| secret(&namespace, &s.name)));
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    pub fn promotion(promotion: &Promotion) -> Vec<String> {
        let namespace = promotion.namespace().unwrap_or_default();
        vec![
            into_environment(&namespace, &promotion.spec.environment),
            of_artifact(&namespace, &promotion.spec.artifact),
        ]
    }

    pub fn artifact(artifact: &Artifact) -> Vec<String> {
        let namespace = artifact.namespace().unwrap_or_default();
        vec![application(&namespace, &artifact.spec.application)]
    }

    pub fn config_map(config_map: &ConfigMap) -> Vec<String> {
        let labels = config_map.labels();
        if labels.get(LABEL_ROLE).map(String::as_str) != Some("config-snapshot") {
            return Vec::new();
        }
        let tenant = labels
            .get(LABEL_TENANT)
            .cloned()
            .or_else(|| config_map.namespace());
        match (tenant, labels.get(LABEL_ENVIRONMENT)) {
            (Some(tenant), Some(environment)) => vec![snapshots(&tenant, environment)],
            _ => Vec::new(),
        }
    }
}

/// What the caches drop from objects, besides managedFields.
mod slim {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use kube::core::PartialObjectMeta;

    use crate::api::{Promotion, PromotionStatus};
    use crate::core::deployment::{ANNOTATION_ARTIFACT, ANNOTATION_CONFIG_HASH};

    /// A finished Promotion never changes again; deciding the others reads
    /// only its target, phase and completion time. Its full status stays in
    /// the API (and `kubectl hoist` reads it there).
    pub fn promotion(promotion: &mut Promotion) {
        let Some(status) = promotion.status.as_mut() else {
            return;
        };
        if !status.phase.is_terminal() {
            return;
        }
        *status = PromotionStatus {
            phase: status.phase,
            completed_at: status.completed_at.take(),
            started_at: status.started_at.take(),
            observed_generation: status.observed_generation,
            ..Default::default()
        };
        let spec = &mut promotion.spec;
        spec.reason = None;
        spec.approvals = Vec::new();
        spec.r#override = None;
    }

    /// Hoist reads a target Deployment's labels, generation and status, its
    /// replica count, its containers' names and images and its own two
    /// pod-template annotations; everything else (pod spec, strategy, other
    /// annotations) stays in the API. Pins are applied with only Hoist's
    /// fields, so nothing dropped here is ever written back.
    pub fn deployment(deployment: &mut Deployment) {
        let meta = &mut deployment.metadata;
        meta.annotations = None;
        meta.owner_references = None;
        meta.finalizers = None;
        let Some(spec) = deployment.spec.as_mut() else {
            return;
        };
        spec.selector = Default::default();
        spec.strategy = None;
        spec.revision_history_limit = None;
        spec.min_ready_seconds = None;
        spec.progress_deadline_seconds = None;
        if let Some(template) = spec.template.metadata.as_mut() {
            template.labels = None;
            if let Some(annotations) = template.annotations.as_mut() {
                annotations.retain(|key, _| key == ANNOTATION_ARTIFACT || key == ANNOTATION_CONFIG_HASH);
            }
        }
        if let Some(pod) = spec.template.spec.as_mut() {
            *pod = PodSpec {
                containers: std::mem::take(&mut pod.containers)
                    .into_iter()
                    .map(|container| Container {
                        name: container.name,
                        image: container.image,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
        }
    }

    /// Only the name and the version are read, to notice a change.
    pub fn versions<K>(object: &mut PartialObjectMeta<K>) {
        let meta = &mut object.metadata;
        meta.labels = None;
        meta.annotations = None;
        meta.owner_references = None;
        meta.finalizers = None;
        meta.uid = None;
        meta.creation_timestamp = None;
    }
}

/// Environments under index key `key` in `cache`, as references to reconcile.
fn environments_under(cache: &Cache<Environment>, key: &str) -> Vec<ObjectRef<Environment>> {
    cache
        .indexed(key)
        .iter()
        .map(|e| ObjectRef::from_obj(e.as_ref()))
        .collect()
}

/// Runs the operator with `client` until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    // No prefix: `with_prefix("")` would export every name with a leading `_`.
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let resolver = Resolver::new(ResolverConfig {
        insecure_registries: settings.insecure_registries.clone(),
        max_concurrent_per_registry: settings.registry_concurrency,
        ..ResolverConfig::default()
    });
    Metrics::register_registry_lookups(&mut registry, resolver.clone());
    let health = Arc::new(Health {
        ready: Default::default(),
        registry,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (bound, server) = server::serve(settings.health_address, Arc::clone(&health), stop_rx)
        .await
        .map_err(|source| RunError::Serve {
            address: settings.health_address,
            source,
        })?;
    tracing::info!(%bound, "serving /healthz, /readyz and /metrics");

    let managed = watcher::Config::default().labels(&match &settings.namespace {
        Some(namespace) => format!("{LABEL_ENVIRONMENT},{LABEL_TENANT}={namespace}"),
        None => LABEL_ENVIRONMENT.to_string(),
    });
    let namespace = settings.namespace.as_deref();
    let (environments, mut environment_events, environments_driver) = shared(
        scoped_api::<Environment>(&client, namespace),
        Default::default(),
        2,
        keys::environment,
        keep,
    );
    let (promotions, mut promotion_events, promotions_driver) = shared(
        scoped_api::<Promotion>(&client, namespace),
        Default::default(),
        2,
        keys::promotion,
        slim::promotion,
    );
    let (artifacts, mut artifact_events, artifacts_driver) = shared(
        scoped_api::<Artifact>(&client, namespace),
        Default::default(),
        2,
        keys::artifact,
        keep,
    );
    let (deployments, mut deployment_events, deployments_driver) = shared(
        Api::<Deployment>::all(client.clone()),
        managed.clone(),
        1,
        no_keys,
        slim::deployment,
    );
    let (namespaces, mut namespace_events, namespaces_driver) = shared(
        Api::<Namespace>::all(client.clone()),
        Default::default(),
        1,
        no_keys,
        keep,
    );
    let (config_maps, mut config_map_events, config_maps_driver) = shared(
        Api::<ConfigMap>::all(client.clone()),
        managed,
        1,
        keys::config_map,
        keep,
    );
    // Base ConfigMaps and referenced Secrets: the version is enough to notice a change.
    let (config_map_versions, mut config_map_version_events, config_map_versions_driver) = shared(
        scoped_api::<PartialObjectMeta<ConfigMap>>(&client, namespace),
        Default::default(),
        1,
        no_keys,
        slim::versions,
    );
    let (secret_versions, mut secret_version_events, secret_versions_driver) = shared(
        scoped_api::<PartialObjectMeta<Secret>>(&client, namespace),
        Default::default(),
        1,
        no_keys,
        slim::versions,
    );

    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let stores = Stores {
        environments,
        promotions,
        artifacts,
        deployments,
        namespaces,
        config_maps,
        config_map_versions,
        secret_versions,
        synced: synced_rx,
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        resolver,
        reporter: Reporter {
            controller: "hoist".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
        metrics,
        stores: stores.clone(),
        sources: Default::default(),
    });
    let controller_config = kube::runtime::controller::Config::default().concurrency(settings.concurrency);

    // One shutdown signal, shared by the three controllers and the server.
    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let signal = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };

    let artifact_controller =
        Controller::for_shared_stream(stream(artifact_events.pop()), stores.artifacts.store())
            .with_config(controller_config.clone())
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(artifact::reconcile, error_policy("artifact"), Arc::clone(&ctx))
            .for_each(|_| future::ready(()));

    let promotion_controller =
        Controller::for_shared_stream(stream(promotion_events.pop()), stores.promotions.store())
            .with_config(controller_config.clone())
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(promotion::reconcile, error_policy("promotion"), Arc::clone(&ctx))
            .for_each(|_| future::ready(()));

    let envs = stores.environments.clone();
    let envs_for_artifacts = stores.environments.clone();
    let promotions_for_artifacts = stores.promotions.clone();
    let envs_for_namespaces = stores.environments.clone();
    let envs_for_config = stores.environments.clone();
    let envs_for_secrets = stores.environments.clone();
    let environment_controller =
        Controller::for_shared_stream(stream(environment_events.pop()), stores.environments.store())
            .with_config(controller_config)
            // A change of an Environment's status can open an upstream gate downstream.
            .watches_shared_stream(
                stream(environment_events.pop()),
                move |changed: Arc<Environment>| {
                    let namespace = changed.namespace().unwrap_or_default();
                    environments_under(&envs, &keys::downstream_of(&namespace, &changed.name_any()))
                },
            )
            .watches_shared_stream(stream(promotion_events.pop()), |promotion: Arc<Promotion>| {
                promotion
                    .namespace()
                    .map(|ns| ObjectRef::new(&promotion.spec.environment).within(&ns))
            })
            // A resolved Artifact can unblock its Promotions and qualify for autoPromote.
            .watches_shared_stream(stream(artifact_events.pop()), move |artifact: Arc<Artifact>| {
                let namespace = artifact.namespace().unwrap_or_default();
                let mut refs: Vec<ObjectRef<Environment>> = promotions_for_artifacts
                    .indexed(&keys::of_artifact(&namespace, &artifact.name_any()))
                    .iter()
                    .map(|p| ObjectRef::new(&p.spec.environment).within(&namespace))
                    .collect();
                refs.extend(
                    envs_for_artifacts
                        .indexed(&keys::application(&namespace, &artifact.spec.application))
                        .iter()
                        .filter(|e| e.spec.auto_promote)
                        .map(|e| ObjectRef::from_obj(e.as_ref())),
                );
                refs
            })
            .watches_shared_stream(stream(deployment_events.pop()), |deployment: Arc<Deployment>| {
                let labels = deployment.labels();
                Some(ObjectRef::new(labels.get(LABEL_ENVIRONMENT)?).within(labels.get(LABEL_TENANT)?))
            })
            .watches_shared_stream(stream(config_map_events.pop()), |config_map: Arc<ConfigMap>| {
                let labels = config_map.labels();
                let tenant = labels
                    .get(LABEL_TENANT)
                    .cloned()
                    .or_else(|| config_map.namespace())?;
                Some(ObjectRef::new(labels.get(LABEL_ENVIRONMENT)?).within(&tenant))
            })
            .watches_shared_stream(
                stream(namespace_events.pop()),
                move |namespace: Arc<Namespace>| {
                    environments_under(&envs_for_namespaces, &keys::targets_in(&namespace.name_any()))
                },
            )
            .watches_shared_stream(
                stream(config_map_version_events.pop()),
                move |config_map: Arc<PartialObjectMeta<ConfigMap>>| {
                    let namespace = config_map.namespace().unwrap_or_default();
                    environments_under(&envs_for_config, &keys::base(&namespace, &config_map.name_any()))
                },
            )
            .watches_shared_stream(
                stream(secret_version_events.pop()),
                move |secret: Arc<PartialObjectMeta<Secret>>| {
                    let namespace = secret.namespace().unwrap_or_default();
                    environments_under(&envs_for_secrets, &keys::secret(&namespace, &secret.name_any()))
                },
            )
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(
                environment::reconcile,
                error_policy("environment"),
                Arc::clone(&ctx),
            )
            .for_each(|_| future::ready(()));

    // Every watch and every controller is a task of its own, so the runtime
    // spreads decoding watch events, scheduling and reconciling over its
    // threads instead of running them all on the thread that awaits `run`.
    let drivers: Vec<tokio::task::JoinHandle<()>> = [
        environments_driver,
        promotions_driver,
        artifacts_driver,
        deployments_driver,
        namespaces_driver,
        config_maps_driver,
        config_map_versions_driver,
        secret_versions_driver,
    ]
    .into_iter()
    .map(tokio::spawn)
    .collect();
    let controllers = vec![
        tokio::spawn(artifact_controller),
        tokio::spawn(promotion_controller),
        tokio::spawn(environment_controller),
    ];
    // Stopped when `run` returns or is dropped (as a crash is simulated).
    let tasks = AbortOnDrop(
        drivers
            .iter()
            .chain(&controllers)
            .map(tokio::task::JoinHandle::abort_handle)
            .collect(),
    );
    let readiness = {
        let health = Arc::clone(&health);
        let stores = stores.clone();
        async move {
            if stores.all_listed().await {
                let _ = synced_tx.send(true);
                health.ready.store(true, Ordering::Relaxed);
                tracing::info!("caches synced; ready");
            }
        }
    };

    tokio::select! {
        _ = future::join_all(controllers) => {}
        _ = future::join_all(drivers) => {}
        _ = readiness.then(|_| future::pending::<()>()) => {}
        _ = shutdown => {
            tracing::info!("shutting down");
            let _ = shutdown_tx.send(());
        }
    }
    drop(tasks);
    let _ = stop_tx.send(true);
    let _ = server.await;
    Ok(())
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
