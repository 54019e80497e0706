//! The operator: kube-runtime controllers for Artifacts, Environments and
//! Promotions over shared caches, plus the health and metrics server.
//! Reconcilers only fetch, call the core and apply.

mod artifact;
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
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ReflectHandle;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;

pub use context::FIELD_MANAGER;
use context::{Context, Stores};
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

const SUBSCRIBER_BUFFER: usize = 1024;

/// A watch feeding a shared cache: its reader, one event stream per consumer
/// (`subscribers` of them) and the future that drives the watch.
fn shared<K>(
    api: Api<K>,
    config: watcher::Config,
    subscribers: usize,
) -> (Store<K>, Vec<ReflectHandle<K>>, future::BoxFuture<'static, ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
    let handles = (0..subscribers).filter_map(|_| writer.subscribe()).collect();
    let driver = watcher(api, config)
        .default_backoff()
        // managedFields are never read by Hoist; dropping them keeps the caches small.
        .modify(|object: &mut K| object.meta_mut().managed_fields = None)
        .reflect_shared(writer)
        .for_each(|_| future::ready(()))
        .boxed();
    (reader, handles, driver)
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

/// Environments of `namespace` whose spec uses `predicate`.
fn environments_where(
    store: &Store<Environment>,
    namespace: Option<String>,
    predicate: impl Fn(&Environment) -> bool,
) -> Vec<ObjectRef<Environment>> {
    store
        .state()
        .into_iter()
        .filter(|e| namespace.is_none() || e.namespace() == namespace)
        .filter(|e| predicate(e))
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
    let config_map_meta = scoped_api::<PartialObjectMeta<ConfigMap>>(&client, namespace);
    let secret_meta = scoped_api::<PartialObjectMeta<Secret>>(&client, namespace);
    let (environments, mut environment_events, environments_driver) = shared(
        scoped_api::<Environment>(&client, namespace),
        Default::default(),
        2,
    );
    let (promotions, mut promotion_events, promotions_driver) =
        shared(scoped_api::<Promotion>(&client, namespace), Default::default(), 2);
    let (artifacts, mut artifact_events, artifacts_driver) =
        shared(scoped_api::<Artifact>(&client, namespace), Default::default(), 2);
    let (deployments, mut deployment_events, deployments_driver) =
        shared(Api::<Deployment>::all(client.clone()), managed.clone(), 1);
    let (namespaces, mut namespace_events, namespaces_driver) =
        shared(Api::<Namespace>::all(client.clone()), Default::default(), 1);
    let (config_maps, mut config_map_events, config_maps_driver) =
        shared(Api::<ConfigMap>::all(client.clone()), managed, 1);

    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let stores = Stores {
        environments,
        promotions,
        artifacts,
        deployments,
        namespaces,
        config_maps,
        synced: synced_rx,
    };
    let reporter = Reporter {
        controller: "hoist".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        resolver,
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        stores: stores.clone(),
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
        Controller::for_shared_stream(stream(artifact_events.pop()), stores.artifacts.clone())
            .with_config(controller_config.clone())
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(artifact::reconcile, error_policy("artifact"), Arc::clone(&ctx))
            .for_each(|_| future::ready(()));

    let promotion_controller =
        Controller::for_shared_stream(stream(promotion_events.pop()), stores.promotions.clone())
            .with_config(controller_config.clone())
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(promotion::reconcile, error_policy("promotion"), Arc::clone(&ctx))
            .for_each(|_| future::ready(()));

    let envs = stores.environments.clone();
    let envs_for_artifacts = stores.environments.clone();
    let promotions_for_artifacts = stores.promotions.clone();
    let envs_for_namespaces = stores.environments.clone();
    let envs_for_config = stores.environments.clone();
    let environment_controller =
        Controller::for_shared_stream(stream(environment_events.pop()), stores.environments.clone())
            .with_config(controller_config)
            // A change of an Environment's status can open an upstream gate downstream.
            .watches_shared_stream(
                stream(environment_events.pop()),
                move |changed: Arc<Environment>| {
                    let name = changed.name_any();
                    environments_where(&envs, changed.namespace(), move |e| {
                        e.spec.upstream.contains(&name)
                    })
                },
            )
            .watches_shared_stream(stream(promotion_events.pop()), |promotion: Arc<Promotion>| {
                promotion
                    .namespace()
                    .map(|ns| ObjectRef::new(&promotion.spec.environment).within(&ns))
            })
            .watches_shared_stream(stream(artifact_events.pop()), move |artifact: Arc<Artifact>| {
                let name = artifact.name_any();
                let namespace = artifact.namespace();
                let mut refs: Vec<ObjectRef<Environment>> = promotions_for_artifacts
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == namespace && p.spec.artifact == name)
                    .filter_map(|p| Some(ObjectRef::new(&p.spec.environment).within(&p.namespace()?)))
                    .collect();
                let application = artifact.spec.application.clone();
                refs.extend(environments_where(&envs_for_artifacts, namespace, move |e| {
                    e.spec.auto_promote && e.spec.targets.iter().any(|t| t.application == application)
                }));
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
                    let name = namespace.name_any();
                    environments_where(&envs_for_namespaces, None, move |e| {
                        e.spec
                            .targets
                            .iter()
                            .any(|t| t.deployment.namespace.as_deref() == Some(name.as_str()))
                    })
                },
            )
            // Base ConfigMaps and referenced Secrets: metadata is enough to notice a change.
            .watches_stream(
                watcher(config_map_meta, Default::default())
                    .default_backoff()
                    .touched_objects(),
                {
                    let envs = envs_for_config.clone();
                    move |config_map| {
                        let name = config_map.name_any();
                        environments_where(&envs, config_map.namespace(), move |e| {
                            e.spec
                                .config
                                .iter()
                                .any(|c| c.base_config_map.as_deref() == Some(name.as_str()))
                        })
                    }
                },
            )
            .watches_stream(
                watcher(secret_meta, Default::default())
                    .default_backoff()
                    .touched_objects(),
                move |secret| {
                    let name = secret.name_any();
                    environments_where(&envs_for_config, secret.namespace(), move |e| {
                        e.spec
                            .config
                            .iter()
                            .any(|c| c.secret_refs.iter().any(|s| s.name == name))
                    })
                },
            )
            .graceful_shutdown_on(signal(&shutdown_tx))
            .run(
                environment::reconcile,
                error_policy("environment"),
                Arc::clone(&ctx),
            )
            .for_each(|_| future::ready(()));

    let drivers = future::join_all([
        environments_driver,
        promotions_driver,
        artifacts_driver,
        deployments_driver,
        namespaces_driver,
        config_maps_driver,
    ]);
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

    let controllers = future::join3(artifact_controller, promotion_controller, environment_controller);
    tokio::select! {
        _ = controllers => {}
        _ = drivers => {}
        _ = readiness.then(|_| future::pending::<()>()) => {}
        _ = shutdown => {
            tracing::info!("shutting down");
            let _ = shutdown_tx.send(());
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    Ok(())
}
