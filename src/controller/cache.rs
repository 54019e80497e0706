//! Shared caches: a kube reflector store per kind, with secondary indexes
//! fed by the same watch, and a signal on every change.
//!
//! Reconciles look objects up by index key (the Promotions of one
//! Environment, the Artifacts of one application) instead of scanning the
//! whole store, so their cost does not grow with the number of tenants.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{FutureExt, StreamExt, future};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

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

/// A reflector store with secondary indexes and a change signal.
pub struct Cache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    keys: Keys<K>,
    index: Arc<RwLock<Index>>,
    changed: Arc<Notify>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            keys: self.keys,
            index: Arc::clone(&self.index),
            changed: Arc::clone(&self.changed),
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

    fn observe(&self, event: &watcher::Event<K>) {
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

/// A watch feeding a shared cache: the cache, one event stream per consumer
/// (`subscribers` of them) and the future that drives the watch. `slim`
/// trims every object before it is cached (fields Hoist never reads).
pub fn shared<K>(
    api: Api<K>,
    config: watcher::Config,
    subscribers: usize,
    keys: Keys<K>,
    slim: fn(&mut K),
) -> (Cache<K>, Vec<ReflectHandle<K>>, future::BoxFuture<'static, ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
    let handles = (0..subscribers).filter_map(|_| writer.subscribe()).collect();
    let cache = Cache {
        store,
        keys,
        index: Default::default(),
        changed: Arc::new(Notify::new()),
    };
    let indexing = cache.clone();
    let changed = Arc::clone(&cache.changed);
    let driver = watcher(api, config)
        .default_backoff()
        .modify(move |object: &mut K| {
            // managedFields are never read by Hoist, and the annotation of
            // `kubectl apply` repeats the whole object.
            let meta = object.meta_mut();
            meta.managed_fields = None;
            if let Some(annotations) = meta.annotations.as_mut() {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                if annotations.is_empty() {
                    meta.annotations = None;
                }
            }
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
        .for_each(move |_| {
            changed.notify_waiters();
            future::ready(())
        })
        .boxed();
    (cache, handles, driver)
}

/// Leaves an object as it is.
pub fn keep<K>(_: &mut K) {}
