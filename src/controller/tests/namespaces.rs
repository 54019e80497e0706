//! The merge feeds one store from several namespaces' watches: listed only
//! once all have listed, a relist of one keeps the others' objects, and
//! deletions (seen, or missed and found by a relist) leave the store.

use futures::channel::mpsc;
use futures::{FutureExt, Stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector;

use super::*;

fn config_map(namespace: &str, name: &str) -> ConfigMap {
    let mut object = ConfigMap::default();
    object.metadata.name = Some(name.into());
    object.metadata.namespace = Some(namespace.into());
    object
}

/// A store fed by the merge of the watches of `shop` and `payments`, the
/// senders standing in for those watches, and the merged events.
struct Merged {
    store: Store<ConfigMap>,
    shop: mpsc::UnboundedSender<Item<ConfigMap>>,
    payments: mpsc::UnboundedSender<Item<ConfigMap>>,
    events: std::pin::Pin<Box<dyn Stream<Item = Item<ConfigMap>> + Send>>,
}

impl Merged {
    fn new() -> Self {
        let (writer, store) = {
            let writer = reflector::store::Writer::<ConfigMap>::default();
            let store = writer.as_reader();
            (writer, store)
        };
        let (shop, shop_events) = mpsc::unbounded();
        let (payments, payments_events) = mpsc::unbounded();
        let merged = merge(
            vec!["shop".to_string(), "payments".to_string()],
            vec![shop_events.boxed(), payments_events.boxed()],
            store.clone(),
        );
        Merged {
            store,
            shop,
            payments,
            events: Box::pin(reflector::reflector(writer, merged)),
        }
    }

    /// Sends `events` as the watch of `namespace` would.
    fn send(&self, namespace: &str, events: Vec<Event<ConfigMap>>) {
        let sender = if namespace == "shop" {
            &self.shop
        } else {
            &self.payments
        };
        for event in events {
            sender
                .unbounded_send(Ok(event))
                .expect("the merge holds the receiver");
        }
    }

    /// The merged events so far (each applied to the store), as
    /// `Init`, `InitApply ns/name`, …
    fn drain(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(Some(item)) = self.events.next().now_or_never() {
            seen.push(match item {
                Ok(Event::Init) => "Init".to_string(),
                Ok(Event::InitApply(object)) => format!("InitApply {}", id(&object)),
                Ok(Event::InitDone) => "InitDone".to_string(),
                Ok(Event::Apply(object)) => format!("Apply {}", id(&object)),
                Ok(Event::Delete(object)) => format!("Delete {}", id(&object)),
                Err(error) => format!("Err {error}"),
            });
        }
        seen
    }

    /// What the store holds, sorted.
    fn held(&self) -> Vec<String> {
        let mut held: Vec<String> = self.store.state().iter().map(|object| id(object)).collect();
        held.sort();
        held
    }
}

fn id(object: &ConfigMap) -> String {
    format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

fn listed(namespace: &str, names: &[&str]) -> Vec<Event<ConfigMap>> {
    let mut events = vec![Event::Init];
    events.extend(
        names
            .iter()
            .map(|name| Event::InitApply(config_map(namespace, name))),
    );
    events.push(Event::InitDone);
    events
}

/// Sorts the `InitApply` events between `Init` and `InitDone` (the
/// hand-over's order among objects is not defined).
fn sorted(mut events: Vec<String>) -> Vec<String> {
    if let (Some(first), Some(last)) = (
        events.iter().position(|event| event == "Init"),
        events.iter().position(|event| event == "InitDone"),
    ) {
        events[first + 1..last].sort();
    }
    events
}

#[test]
fn the_store_is_listed_once_when_every_namespace_has_listed() {
    let mut merged = Merged::new();
    merged.send("shop", listed("shop", &["a", "b"]));
    assert_eq!(
        merged.drain(),
        Vec::<String>::new(),
        "payments has not listed yet"
    );
    assert!(merged.held().is_empty());
    merged.send("payments", listed("payments", &["c"]));
    assert_eq!(
        sorted(merged.drain()),
        [
            "Init",
            "InitApply payments/c",
            "InitApply shop/a",
            "InitApply shop/b",
            "InitDone"
        ]
    );
    assert_eq!(merged.held(), ["payments/c", "shop/a", "shop/b"]);
}

#[test]
fn changes_and_relists_before_every_namespace_listed_reach_the_first_list() {
    let mut merged = Merged::new();
    merged.send("shop", listed("shop", &["a", "b"]));
    merged.send(
        "shop",
        vec![
            Event::Delete(config_map("shop", "a")),
            Event::Apply(config_map("shop", "c")),
        ],
    );
    assert_eq!(
        merged.drain(),
        Vec::<String>::new(),
        "payments has not listed yet"
    );
    merged.send(
        "payments",
        vec![Event::Init, Event::InitApply(config_map("payments", "d"))],
    );
    // The watch of payments was lost and lists again: d is gone.
    merged.send("payments", listed("payments", &["e"]));
    assert_eq!(
        sorted(merged.drain()),
        [
            "Init",
            "InitApply payments/e",
            "InitApply shop/b",
            "InitApply shop/c",
            "InitDone"
        ]
    );
    assert_eq!(merged.held(), ["payments/e", "shop/b", "shop/c"]);
}

#[test]
fn a_relist_of_one_namespace_keeps_the_others_objects_and_removes_what_it_no_longer_lists() {
    let mut merged = Merged::new();
    merged.send("shop", listed("shop", &["a", "b"]));
    merged.send("payments", listed("payments", &["c"]));
    merged.drain();
    // shop's watch was lost; meanwhile a was deleted and x created.
    merged.send("shop", listed("shop", &["b", "x"]));
    assert_eq!(merged.drain(), ["Apply shop/b", "Apply shop/x", "Delete shop/a"]);
    assert_eq!(merged.held(), ["payments/c", "shop/b", "shop/x"]);
}

#[test]
fn changes_after_the_first_list_pass_through() {
    let mut merged = Merged::new();
    merged.send("shop", listed("shop", &["a"]));
    merged.send("payments", listed("payments", &["c"]));
    merged.drain();
    merged.send("payments", vec![Event::Apply(config_map("payments", "d"))]);
    assert_eq!(merged.drain(), ["Apply payments/d"]);
    merged.send("shop", vec![Event::Delete(config_map("shop", "a"))]);
    assert_eq!(merged.drain(), ["Delete shop/a"]);
    merged
        .shop
        .unbounded_send(Err(watcher::Error::NoResourceVersion))
        .expect("the merge holds the receiver");
    assert_eq!(
        merged.drain(),
        [format!("Err {}", watcher::Error::NoResourceVersion)]
    );
    assert_eq!(merged.held(), ["payments/c", "payments/d"]);
}

#[test]
fn the_flag_lists_each_namespace_once_and_empty_means_all() {
    let given = |values: &[&str]| super::list(values.iter().map(|value| value.to_string()).collect());
    assert_eq!(given(&["shop", "payments", " shop "]), ["payments", "shop"]);
    assert_eq!(given(&[""]), Vec::<String>::new(), "HOIST_WATCH_NAMESPACE=\"\"");
}
