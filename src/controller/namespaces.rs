//! One cache over a list of namespaces: a watch per namespace (the API
//! serves a watch of one namespace or of all of them), merged into the
//! single event stream a reflector store expects.
//!
//! Each namespace's watch lists on its own (`Init`, `InitApply`…,
//! `InitDone`), again after a lost watch, and a store swaps its whole
//! content on `InitDone`: passing those through would drop the other
//! namespaces' objects at every relist of one. So the merge
//! - holds each namespace's first list back until every namespace has
//!   listed, then hands the store one `Init`, every object, one `InitDone`
//!   (the cache is listed only when all are);
//! - after that, turns a relist of one namespace into `Apply` of each
//!   object listed and `Delete` of each object the store holds in that
//!   namespace that the relist no longer had.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, BoxStream, StreamExt};
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// What a watch can feed a cache with.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

type Item<K> = Result<Event<K>, watcher::Error>;

/// Where one namespace's watch is.
enum Listing<K> {
    /// Listing for the first time; the objects so far, by name.
    First(HashMap<String, K>),
    /// Listed, before every namespace had: its objects, by name.
    Held(HashMap<String, K>),
    /// Listed and handed to the store.
    Live,
    /// Relisting after the store had it: the names listed so far.
    Relisting(HashSet<String>),
}

/// The merge's state: one [`Listing`] per namespace, in the order given.
struct Merge<K: Resource<DynamicType = ()> + 'static> {
    namespaces: Vec<String>,
    listings: Vec<Listing<K>>,
    /// The store the merged events feed (read for what a relist dropped).
    store: Store<K>,
    /// Whether the store has had its one `Init`…`InitDone`.
    handed: bool,
}

impl<K> Merge<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// The merged events for `event` of the watch of namespace `index`.
    fn on(&mut self, index: usize, event: Event<K>) -> Vec<Item<K>> {
        let listing = &mut self.listings[index];
        match event {
            Event::Init => {
                *listing = if self.handed {
                    Listing::Relisting(HashSet::new())
                } else {
                    Listing::First(HashMap::new())
                };
                Vec::new()
            }
            Event::InitApply(object) => match listing {
                Listing::First(objects) | Listing::Held(objects) => {
                    objects.insert(object.name_any(), object);
                    Vec::new()
                }
                Listing::Relisting(names) => {
                    names.insert(object.name_any());
                    vec![Ok(Event::Apply(object))]
                }
                Listing::Live => vec![Ok(Event::Apply(object))],
            },
            Event::InitDone => match std::mem::replace(listing, Listing::Live) {
                Listing::First(objects) | Listing::Held(objects) => {
                    *listing = Listing::Held(objects);
                    self.hand_over()
                }
                Listing::Relisting(names) => self.dropped(index, &names),
                Listing::Live => Vec::new(),
            },
            Event::Apply(object) => match listing {
                Listing::First(objects) | Listing::Held(objects) => {
                    objects.insert(object.name_any(), object);
                    Vec::new()
                }
                Listing::Relisting(_) | Listing::Live => vec![Ok(Event::Apply(object))],
            },
            Event::Delete(object) => match listing {
                Listing::First(objects) | Listing::Held(objects) => {
                    objects.remove(&object.name_any());
                    Vec::new()
                }
                Listing::Relisting(names) => {
                    names.remove(&object.name_any());
                    vec![Ok(Event::Delete(object))]
                }
                Listing::Live => vec![Ok(Event::Delete(object))],
            },
        }
    }

    /// Once every namespace has listed: one list of all their objects.
    fn hand_over(&mut self) -> Vec<Item<K>> {
        if self.handed
            || self
                .listings
                .iter()
                .any(|listing| matches!(listing, Listing::First(_)))
        {
            return Vec::new();
        }
        self.handed = true;
        let mut events = vec![Ok(Event::Init)];
        for listing in &mut self.listings {
            if let Listing::Held(objects) = std::mem::replace(listing, Listing::Live) {
                events.extend(objects.into_values().map(|object| Ok(Event::InitApply(object))));
            }
        }
        events.push(Ok(Event::InitDone));
        events
    }

    /// Deletions of the objects of namespace `index` the store holds and
    /// its relist (`listed`) did not.
    fn dropped(&self, index: usize, listed: &HashSet<String>) -> Vec<Item<K>> {
        let namespace = &self.namespaces[index];
        self.store
            .state()
            .into_iter()
            .filter(|object| {
                object.namespace().as_deref() == Some(namespace.as_str())
                    && !listed.contains(&object.name_any())
            })
            .map(|object| Ok(Event::Delete(K::clone(&object))))
            .collect()
    }
}

/// The namespaces of `--watch-namespace`, each once, sorted, empty
/// entries dropped (`HOIST_WATCH_NAMESPACE=""` watches all namespaces).
pub fn list(given: Vec<String>) -> Vec<String> {
    let mut namespaces: Vec<String> = given
        .into_iter()
        .map(|namespace| namespace.trim().to_string())
        .filter(|namespace| !namespace.is_empty())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

/// The events of a watch of `K` in `namespaces` (all of them when empty)
/// for `store`: one watch, or one per namespace merged.
pub fn watch<K>(
    client: &Client,
    namespaces: &[String],
    config: watcher::Config,
    store: Store<K>,
) -> BoxStream<'static, Item<K>>
where
    K: Watched + Resource<Scope = NamespaceResourceScope>,
{
    let in_namespace = |namespace: &String| {
        watcher(Api::<K>::namespaced(client.clone(), namespace), config.clone())
            .default_backoff()
            .boxed()
    };
    match namespaces {
        [] => watcher(Api::<K>::all(client.clone()), config)
            .default_backoff()
            .boxed(),
        [namespace] => in_namespace(namespace),
        namespaces => merge(
            namespaces.to_vec(),
            namespaces.iter().map(in_namespace).collect(),
            store,
        ),
    }
}

/// The events of `watches` (one per namespace of `namespaces`, in the same
/// order) merged for the one `store` they feed. Errors pass through.
pub fn merge<K>(
    namespaces: Vec<String>,
    watches: Vec<BoxStream<'static, Item<K>>>,
    store: Store<K>,
) -> BoxStream<'static, Item<K>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut merge = Merge {
        listings: namespaces
            .iter()
            .map(|_| Listing::First(HashMap::new()))
            .collect(),
        namespaces,
        store,
        handed: false,
    };
    let tagged = watches
        .into_iter()
        .enumerate()
        .map(|(index, watch)| watch.map(move |item| (index, item)));
    stream::select_all(tagged)
        .flat_map(move |(index, item)| {
            let events = match item {
                Ok(event) => merge.on(index, event),
                Err(error) => vec![Err(error)],
            };
            stream::iter(events)
        })
        .boxed()
}

#[cfg(test)]
#[path = "tests/namespaces.rs"]
mod tests;
