//! Shared caches: a kube reflector store per kind, with secondary indexes
//! fed by the same watch, and a signal on every change.
//!
//! Reconciles look objects up by index key (the Promotions of one
//! Environment, the Artifacts of one application) instead of scanning the
//! whole store, so their cost does not grow with the number of tenants.
//!
//! Each cache also says when it has listed once ([`Listed`]), from the
//! watch's own `InitDone` after the store swapped the list in. Readiness
//! and reconciles wait on that signal, never on `Store::wait_until_ready`:
//! that one wakes only the last of several tasks waiting at once, and
//! kube-runtime's controllers already wait there on their own stores.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, future};
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use super::namespaces::Watched;
use tokio::sync::{Notify, watch};

/// How many events a subscriber may lag behind before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// The index keys of an object.
pub type Keys<K> = fn(&K) -> Vec<String>;

/// An index key: `kind` of relation, then the namespace and name it points to.
pub fn key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// (namespace, name) of a cached object; the namespace is empty for
/// cluster-scoped kinds.
type Entry = (String, String);

#[derive(Default)]
struct Index {
    live: HashMap<String, HashSet<Entry>>,
    /// Filled during a re-list, swapped in when it completes (as the store does).
    relisting: Option<HashMap<String, HashSet<Entry>>>,
}

fn insert(map: &mut HashMap<String, HashSet<Entry>>, keys: Vec<String>, entry: &Entry) {
    for key in keys {
        map.entry(key).or_default().insert(entry.clone());
    }
}

/// Whether a cache has listed once, and the last error of its watch; any
/// number of tasks may wait on it.
#[derive(Clone)]
pub struct Listed {
    /// What the cache holds, for messages: `deployments`, `secrets`, ….
    pub name: &'static str,
    listed: watch::Receiver<bool>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Listed {
    /// Whether the first list has reached the store.
    pub fn is_listed(&self) -> bool {
        *self.listed.borrow()
    }

    /// Waits until the first list has reached the store. (The sender lives
    /// as long as the cache; were it dropped, this would wait on, and the
    /// start-up deadline would name the cache.)
    pub async fn wait(&self) {
        if self.listed.clone().wait_for(|listed| *listed).await.is_err() {
            futures::future::pending::<()>().await;
        }
    }

    /// The last error the watch reported (it retries with backoff), e.g. a
    /// list refused by RBAC.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A reflector store with secondary indexes and a change signal.
pub struct Cache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    keys: Keys<K>,
    index: Arc<RwLock<Index>>,
    changed: Arc<Notify>,
    listed: Arc<watch::Sender<bool>>,
    listed_signal: Listed,
    /// Counts deletions, and relists after the first list (which may have
    /// dropped objects unseen): kube-runtime's shared streams carry only
    /// objects that exist.
    removals: Arc<watch::Sender<u64>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            keys: self.keys,
            index: Arc::clone(&self.index),
            changed: Arc::clone(&self.changed),
            listed: Arc::clone(&self.listed),
            listed_signal: self.listed_signal.clone(),
            removals: Arc::clone(&self.removals),
        }
    }
}

impl<K: Resource<DynamicType = ()> + 'static> Deref for Cache<K> {
    type Target = Store<K>;
    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

fn entry_of<K: Resource>(object: &K) -> Entry {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl<K> Cache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// An empty cache named `name` (for messages) over `store`.
    pub fn new(name: &'static str, store: Store<K>, keys: Keys<K>) -> Self {
        let (listed, receiver) = watch::channel(false);
        Cache {
            store,
            keys,
            index: Default::default(),
            changed: Arc::new(Notify::new()),
            listed: Arc::new(listed),
            listed_signal: Listed {
                name,
                listed: receiver,
                last_error: Default::default(),
            },
            removals: Arc::new(watch::channel(0).0),
        }
    }

    /// A stream that yields after objects may have left the cache (a
    /// deletion, or a relist after the first list); several removals
    /// between two polls yield once.
    pub fn removals(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let mut removals = self.removals.subscribe();
        removals.mark_unchanged();
        futures::stream::unfold(removals, |mut removals| async move {
            removals.changed().await.ok()?;
            Some(((), removals))
        })
    }

    /// Whether (and when) this cache has listed once.
    pub fn listed(&self) -> Listed {
        self.listed_signal.clone()
    }

    /// Takes note of a watch event the store has just applied (or of the
    /// watch's error): the first `InitDone` marks the cache listed, and
    /// every change wakes [`Cache::wait_until`].
    pub fn applied(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        match event {
            Ok(watcher::Event::InitDone) => {
                let relisted = !self
                    .listed
                    .send_if_modified(|listed| !std::mem::replace(listed, true));
                if relisted {
                    self.removals.send_modify(|count| *count += 1);
                }
                *lock(&self.listed_signal.last_error) = None;
            }
            Ok(watcher::Event::Delete(_)) => self.removals.send_modify(|count| *count += 1),
            Ok(_) => {}
            Err(error) => *lock(&self.listed_signal.last_error) = Some(error.to_string()),
        }
        self.changed.notify_waiters();
    }

    /// The reflector store (what kube-runtime's `Controller` reads).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Cached objects with index key `key`, in no particular order.
    pub fn indexed(&self, key: &str) -> Vec<Arc<K>> {
        let entries: Vec<Entry> = {
            let index = self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            match index.live.get(key) {
                Some(entries) => entries.iter().cloned().collect(),
                None => return Vec::new(),
            }
        };
        let mut found = Vec::with_capacity(entries.len());
        let mut stale = Vec::new();
        for entry in entries {
            let object_ref = if entry.0.is_empty() {
                ObjectRef::<K>::new(&entry.1)
            } else {
                ObjectRef::<K>::new(&entry.1).within(&entry.0)
            };
            // An object whose keys changed stays listed under the old ones
            // until it is looked up there.
            match self.store.get(&object_ref) {
                Some(object) if (self.keys)(&object).iter().any(|k| k == key) => found.push(object),
                Some(_) => stale.push(entry),
                None => {}
            }
        }
        if !stale.is_empty() {
            let mut index = self
                .index
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(entries) = index.live.get_mut(key) {
                for entry in &stale {
                    entries.remove(entry);
                }
            }
        }
        found
    }

    /// Indexes a watch event before the store applies it.
    pub fn observe(&self, event: &watcher::Event<K>) {
        let mut index = self
            .index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            watcher::Event::Apply(object) => insert(&mut index.live, (self.keys)(object), &entry_of(object)),
            watcher::Event::Delete(object) => {
                let entry = entry_of(object);
                for key in (self.keys)(object) {
                    if let Some(entries) = index.live.get_mut(&key) {
                        entries.remove(&entry);
                        if entries.is_empty() {
                            index.live.remove(&key);
                        }
                    }
                }
            }
            watcher::Event::Init => index.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                let keys = (self.keys)(object);
                let entry = entry_of(object);
                match index.relisting.as_mut() {
                    Some(relisting) => insert(relisting, keys, &entry),
                    None => insert(&mut index.live, keys, &entry),
                }
            }
            watcher::Event::InitDone => {
                if let Some(relisting) = index.relisting.take() {
                    index.live = relisting;
                }
            }
        }
    }

    /// Waits until `done` holds for the cache, checking after every change;
    /// false if it still does not after `timeout`.
    pub async fn wait_until(&self, done: impl Fn(&Store<K>) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so no change between the two is missed.
            notified.as_mut().enable();
            if done(&self.store) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.store);
            }
        }
    }
}

/// No index keys.
pub fn no_keys<K>(_: &K) -> Vec<String> {
    Vec::new()
}

/// The operator's watches, each named once where it is added: the futures
/// that drive them (each to run as a task of its own) and the signals that
/// their caches have listed, in the order added.
#[derive(Default)]
pub struct Watches {
    pub drivers: Vec<(&'static str, future::BoxFuture<'static, ()>)>,
    pub listed: Vec<Listed>,
}

impl Watches {
    /// Adds a watch feeding a shared cache named `name`; returns the cache
    /// and one event stream per consumer (`subscribers` of them). `slim`
    /// trims every object before it is cached (fields Hoist never reads).
    pub fn add<K>(
        &mut self,
        name: &'static str,
        api: Api<K>,
        config: watcher::Config,
        subscribers: usize,
        keys: Keys<K>,
        slim: fn(&mut K),
    ) -> (Cache<K>, Vec<ReflectHandle<K>>)
    where
        K: Watched,
    {
        let events = |_: Store<K>| watcher(api, config).default_backoff().boxed();
        self.add_events(name, events, subscribers, keys, slim)
    }

    /// [`Watches::add`] of a namespaced kind in `namespaces` only (all of
    /// them when empty): one watch per namespace, merged into one cache
    /// ([`super::namespaces`]).
    #[allow(clippy::too_many_arguments)]
    pub fn add_in<K>(
        &mut self,
        name: &'static str,
        client: &Client,
        namespaces: &[String],
        config: watcher::Config,
        subscribers: usize,
        keys: Keys<K>,
        slim: fn(&mut K),
    ) -> (Cache<K>, Vec<ReflectHandle<K>>)
    where
        K: Watched + Resource<Scope = NamespaceResourceScope>,
    {
        let events = |store: Store<K>| super::namespaces::watch(client, namespaces, config, store);
        self.add_events(name, events, subscribers, keys, slim)
    }

    /// Adds a cache named `name` fed by `events` (given the cache's store).
    fn add_events<K>(
        &mut self,
        name: &'static str,
        events: impl FnOnce(Store<K>) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>,
        subscribers: usize,
        keys: Keys<K>,
        slim: fn(&mut K),
    ) -> (Cache<K>, Vec<ReflectHandle<K>>)
    where
        K: Watched,
    {
        let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        let handles = (0..subscribers).filter_map(|_| writer.subscribe()).collect();
        let cache = Cache::new(name, store.clone(), keys);
        let indexing = cache.clone();
        let applied = cache.clone();
        let driver = events(store)
            .modify(move |object: &mut K| {
                super::slim::metadata(object.meta_mut());
                slim(object);
            })
            // Indexed before the store and the subscribers see the change, so a
            // reconcile it triggers finds the object under its keys.
            .inspect(move |event| {
                if let Ok(event) = event {
                    indexing.observe(event);
                }
            })
            .reflect_shared(writer)
            // After the store: a cache marked listed holds the whole list.
            .for_each(move |event| {
                applied.applied(&event);
                future::ready(())
            })
            .boxed();
        self.listed.push(cache.listed());
        self.drivers.push((name, driver));
        (cache, handles)
    }
}

/// Leaves an object as it is.
pub fn keep<K>(_: &mut K) {}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store::Writer;

    use super::*;

    fn config_map(name: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.into());
        object.metadata.namespace = Some("shop".into());
        object
    }

    /// Whether the stream has yielded, without waiting.
    fn yielded(stream: &mut (impl futures::Stream<Item = ()> + Unpin)) -> bool {
        stream.next().now_or_never().flatten().is_some()
    }

    #[tokio::test]
    async fn removals_yield_for_deletions_and_relists_but_not_for_the_first_list_or_changes() {
        let cache = Cache::new("configmaps", Writer::<ConfigMap>::default().as_reader(), no_keys);
        let mut removals = Box::pin(cache.removals());
        let event = |event: watcher::Event<ConfigMap>| Ok(event);
        cache.applied(&event(watcher::Event::Init));
        cache.applied(&event(watcher::Event::InitApply(config_map("a"))));
        cache.applied(&event(watcher::Event::InitDone));
        assert!(!yielded(&mut removals), "the first list removes nothing");
        cache.applied(&event(watcher::Event::Apply(config_map("b"))));
        assert!(!yielded(&mut removals), "a change is not a removal");
        cache.applied(&event(watcher::Event::Delete(config_map("a"))));
        cache.applied(&event(watcher::Event::Delete(config_map("b"))));
        assert!(yielded(&mut removals), "deletions");
        assert!(!yielded(&mut removals), "two deletions between polls yield once");
        cache.applied(&event(watcher::Event::Init));
        cache.applied(&event(watcher::Event::InitDone));
        assert!(yielded(&mut removals), "a relist may have dropped objects unseen");
    }
}
