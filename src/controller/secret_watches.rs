//! The versions of the Secrets Environments read, watched only where they
//! read them.
//!
//! With `--watch-namespace` the listed namespaces' Secrets are one cache,
//! listed before the operator is ready, as every other kind. A cluster-wide
//! install does not list or watch every Secret of the cluster: it watches
//! (metadata only) the namespaces in which some Environment it reconciles
//! reads a Secret (configuration `secretRefs`, supply-chain key and
//! trusted-root `secretRef`s: all read in the Environment's own namespace),
//! starting a namespace's watch when the first Environment there needs it
//! and stopping it when none does. The namespaces come and go with
//! Environments, which a fixed list cannot follow, and a field selector per
//! Secret name would restart a watch at every new reference; a watch per
//! namespace also serves every Environment of that namespace at once.
//!
//! A namespace's watch that has not listed yet knows nothing: a read there
//! goes to the API ([`Seen::Unknown`]), never concludes that the Secret does
//! not exist, and readiness never waits on these watches. Their changes
//! (and their first lists) reach the Environment controller through one
//! stream, as the single watch's did.
//!
//! (`prometheus.bearerTokenSecret` is read from the API at each query, and
//! triggers nothing: it needs no watch.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use kube::{Client, ResourceExt};

use super::cache::{Cache, Watches, no_keys};
use super::keys;
use super::slim;
use crate::api::Environment;
use crate::core::clusters::Scope;

type SecretMeta = PartialObjectMeta<Secret>;

/// How many Secret changes the Environment controller may lag behind
/// before the namespaces' watches wait for it.
const CHANGES_BUFFER: usize = 1024;

/// What the watches know of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It exists at this resourceVersion.
    Version(String),
    /// It does not exist.
    Absent,
    /// Nothing: its namespace's watch has not listed (or does not run).
    Unknown,
}

impl Seen {
    /// What a listed cache of versions holds of `namespace/name`.
    pub fn in_cache<K>(versions: &Cache<PartialObjectMeta<K>>, namespace: &str, name: &str) -> Seen
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        match versions.get(&ObjectRef::new(name).within(namespace)) {
            Some(meta) => Seen::Version(meta.resource_version().unwrap_or_default()),
            None => Seen::Absent,
        }
    }
}

/// The versions of the Secrets Environments read.
#[derive(Clone)]
pub enum SecretVersions {
    /// `--watch-namespace`: the listed namespaces' Secrets, one cache.
    Listed(Cache<SecretMeta>),
    /// A cluster-wide install: a watch per namespace where Environments read Secrets.
    PerNamespace(PerNamespace),
}

impl SecretVersions {
    /// What the watches know of Secret `namespace/name`.
    pub fn seen(&self, namespace: &str, name: &str) -> Seen {
        match self {
            SecretVersions::Listed(cache) => Seen::in_cache(cache, namespace, name),
            SecretVersions::PerNamespace(watches) => watches.seen(namespace, name),
        }
    }
}

/// A namespace's watch: its cache, and the task that feeds it (aborted
/// when dropped).
struct NamespaceWatch {
    cache: Cache<SecretMeta>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NamespaceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The per-namespace watches of a cluster-wide install.
#[derive(Clone)]
pub struct PerNamespace {
    client: Client,
    scope: Scope,
    environments: Cache<Environment>,
    watches: Arc<Mutex<HashMap<String, NamespaceWatch>>>,
    changes: mpsc::Sender<Arc<SecretMeta>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PerNamespace {
    /// No watch yet; the Secrets of `client` that the Environments of
    /// `environments` reconciled by `scope` read will be watched. Returns
    /// the stream of their changes, for the Environment controller.
    pub fn new(
        client: Client,
        scope: Scope,
        environments: Cache<Environment>,
    ) -> (PerNamespace, BoxStream<'static, Arc<SecretMeta>>) {
        let (changes, received) = mpsc::channel(CHANGES_BUFFER);
        let watches = PerNamespace {
            client,
            scope,
            environments,
            watches: Default::default(),
            changes,
        };
        (watches, received.boxed())
    }

    /// What the watch of `namespace` knows of Secret `name` there.
    fn seen(&self, namespace: &str, name: &str) -> Seen {
        match lock(&self.watches).get(namespace) {
            Some(watch) if watch.listed() => Seen::in_cache(&watch.cache, namespace, name),
            _ => Seen::Unknown,
        }
    }

    /// The namespaces watched now, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = lock(&self.watches).keys().cloned().collect();
        namespaces.sort();
        namespaces
    }

    /// Whether some Environment this process reconciles reads a Secret in `namespace`.
    fn needed(&self, namespace: &str) -> bool {
        self.environments
            .indexed(&keys::reads_secrets_in(namespace))
            .iter()
            .any(|environment| self.scope.reconciles(environment))
    }

    /// Starts or stops the watch of `namespace` as its Environments need.
    fn update(&self, namespace: &str) {
        let needed = self.needed(namespace);
        let mut watches = lock(&self.watches);
        match (needed, watches.contains_key(namespace)) {
            (true, false) => {
                tracing::info!(namespace, "watching Secrets: an Environment reads Secrets here");
                watches.insert(namespace.to_string(), self.start(namespace));
            }
            (false, true) => {
                tracing::info!(
                    namespace,
                    "no longer watching Secrets: no Environment reads Secrets here"
                );
                watches.remove(namespace);
            }
            _ => {}
        }
    }

    /// A metadata watch of `namespace`'s Secrets, its changes forwarded.
    fn start(&self, namespace: &str) -> NamespaceWatch {
        let mut one = Watches::default();
        let (cache, handles) = one.add_in::<SecretMeta>(
            "secrets",
            &self.client,
            &[namespace.to_string()],
            Default::default(),
            1,
            no_keys,
            slim::versions,
        );
        let forwarded = forward(handles, self.changes.clone());
        let drivers = one.drivers.into_iter().map(|(_, driver)| driver);
        let task = tokio::spawn(async move {
            futures::future::join(futures::future::join_all(drivers), forwarded).await;
        });
        NamespaceWatch { cache, task }
    }

    /// Follows the Environments (`changed`: those applied; `removals`: after
    /// some may have gone) and keeps the watches to the namespaces that
    /// need one. Runs until the operator stops.
    pub async fn follow(
        self,
        changed: impl futures::Stream<Item = Arc<Environment>> + Send,
        removals: impl futures::Stream<Item = ()> + Send,
    ) {
        // The watches stop with this task, even while the context that
        // reads them lives on.
        let _stop = StopOnDrop(Arc::clone(&self.watches));
        // An Environment's change can only start or stop the watch of its
        // own namespace; after a removal every watched one is looked at.
        let changed = changed.map(|environment| environment.namespace().into_iter().collect());
        let removed = removals.map(|()| self.namespaces());
        let mut events = std::pin::pin!(futures::stream::select(changed, removed));
        while let Some(namespaces) = events.next().await {
            let namespaces: Vec<String> = namespaces;
            for namespace in namespaces {
                self.update(&namespace);
            }
        }
    }
}

/// Stops every namespace's watch when dropped.
struct StopOnDrop(Arc<Mutex<HashMap<String, NamespaceWatch>>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        lock(&self.0).clear();
    }
}

impl NamespaceWatch {
    fn listed(&self) -> bool {
        self.cache.listed().is_listed()
    }
}

/// The objects of `handles` sent to `changes`.
async fn forward(handles: Vec<ReflectHandle<SecretMeta>>, changes: mpsc::Sender<Arc<SecretMeta>>) {
    let mut objects = futures::stream::iter(handles).flatten();
    let mut changes = changes;
    while let Some(object) = objects.next().await {
        if changes.send(object).await.is_err() {
            return;
        }
    }
}
