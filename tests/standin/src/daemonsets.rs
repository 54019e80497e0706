//! DaemonSets: the API server's defaults and validation, and an emulation of
//! kube-controller-manager's DaemonSet controller (`pkg/controller/daemon`)
//! on a stand-in cluster of `nodes` nodes (the builder's option), all of
//! which the Pods fit, with the Pods of [`crate::workloads::Pod`].
//!
//! A new DaemonSet starts a Pod on every node. A rolling update
//! (`RollingUpdate`, `maxSurge` 0) replaces Pods of the old template that are
//! not ready at once, then ready ones while fewer than `maxUnavailable`
//! nodes lack an available Pod; with `maxSurge` > 0 a new Pod starts beside
//! the old one on up to `maxSurge` nodes at a time, and the old one goes when
//! the new one is ready. `OnDelete` replaces nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::deployments::scaled;
use crate::emulation::{Emulation, Synced, object_key};
use crate::resources::ResourceKey;
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::statefulsets::revision_of;
use crate::store::ObjectKey;
use crate::workloads::{self, Pod, SelectorRules, default_field, insert_count, next_ready};

pub(crate) const GROUP: &str = "apps";
pub(crate) const PLURAL: &str = "daemonsets";

/// How many nodes a stand-in cluster has unless its builder says otherwise.
pub(crate) const DEFAULT_NODES: usize = 2;

/// `SetDefaults_DaemonSet` of `apps/v1`.
pub(crate) fn apply_defaults(daemon_set: &mut Value) {
    let Some(spec) = workloads::spec_mut(daemon_set) else {
        return;
    };
    default_field(spec, "revisionHistoryLimit", json!(10));
    workloads::default_rolling_update(spec, &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))]);
}

/// `ValidateDaemonSet` (selector, template) and, on update, the immutable
/// selector of `ValidateDaemonSetUpdate`.
pub(crate) fn validate(daemon_set: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = workloads::validate_selector_and_template(
        &daemon_set["spec"],
        &SelectorRules {
            required: false,
            kind: "daemonset",
        },
    );
    if let Some(old) = old
        && daemon_set["spec"]["selector"] != old["spec"]["selector"]
    {
        errors.push(field::invalid(
            "spec.selector",
            BadValue::Json(&daemon_set["spec"]["selector"]),
            "field is immutable",
        ));
    }
    errors
}

/// One node's Pods of the DaemonSet: the newest, and the old one a surge
/// keeps until the newest is ready.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    pod: Pod,
    outgoing: Option<Pod>,
}

impl Node {
    fn is_available(&self, now: Instant) -> bool {
        self.pod.is_ready(now) || self.outgoing.as_ref().is_some_and(|pod| pod.is_ready(now))
    }
}

/// What the controller knows of one DaemonSet: its Pod on each node.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Daemons {
    nodes: Vec<Node>,
}

impl Daemons {
    /// One sync at `now` on a cluster of `node_count` nodes.
    pub fn sync(&mut self, daemon_set: &Value, node_count: usize, now: Instant) -> Synced {
        let revision = revision_of(daemon_set);
        let strategy = &daemon_set["spec"]["updateStrategy"];
        self.nodes.truncate(node_count);
        while self.nodes.len() < node_count {
            self.nodes.push(Node {
                pod: Pod::start(&revision, daemon_set, now),
                outgoing: None,
            });
        }
        for node in &mut self.nodes {
            if node.pod.is_ready(now) {
                node.outgoing = None;
            }
        }
        if workloads::rolls(daemon_set) {
            let total = i64::try_from(node_count).unwrap_or(i64::MAX);
            let budget = |field: &str| {
                usize::try_from(scaled(&strategy["rollingUpdate"][field], total, true)).unwrap_or(0)
            };
            let (max_unavailable, max_surge) = (budget("maxUnavailable"), budget("maxSurge"));
            if max_surge > 0 {
                let mut surging = self.nodes.iter().filter(|node| node.outgoing.is_some()).count();
                for node in &mut self.nodes {
                    if surging < max_surge && node.pod.revision != revision && node.outgoing.is_none() {
                        node.outgoing = Some(node.pod.clone());
                        node.pod = Pod::start(&revision, daemon_set, now);
                        surging += 1;
                    }
                }
            } else {
                let mut unavailable = self.nodes.iter().filter(|node| !node.is_available(now)).count();
                for node in &mut self.nodes {
                    if node.pod.revision == revision {
                        continue;
                    }
                    if !node.is_available(now) {
                        node.pod = Pod::start(&revision, daemon_set, now);
                    } else if unavailable < max_unavailable {
                        node.pod = Pod::start(&revision, daemon_set, now);
                        unavailable += 1;
                    }
                }
            }
        }

        let ready = self.nodes.iter().filter(|node| node.is_available(now)).count();
        let updated = self
            .nodes
            .iter()
            .filter(|node| node.pod.revision == revision)
            .count();
        let mut status = Map::new();
        insert_count(&mut status, "currentNumberScheduled", node_count, false);
        insert_count(&mut status, "numberMisscheduled", 0, false);
        insert_count(&mut status, "desiredNumberScheduled", node_count, false);
        insert_count(&mut status, "numberReady", ready, false);
        status.insert(
            "observedGeneration".to_owned(),
            daemon_set["metadata"]["generation"].clone(),
        );
        insert_count(&mut status, "updatedNumberScheduled", updated, true);
        // `minReadySeconds` is not emulated: a ready Pod is available.
        insert_count(&mut status, "numberAvailable", ready, true);
        insert_count(&mut status, "numberUnavailable", node_count - ready, true);
        let pods = self
            .nodes
            .iter()
            .flat_map(|node| std::iter::once(&node.pod).chain(node.outgoing.as_ref()));
        Synced {
            status: Value::Object(status),
            wake: next_ready(pods, now),
        }
    }
}

/// The emulated DaemonSet controller: one [`Daemons`] per DaemonSet.
pub(crate) struct DaemonSetController {
    nodes: usize,
    daemons: BTreeMap<ObjectKey, Daemons>,
}

impl DaemonSetController {
    pub fn new(nodes: usize) -> Self {
        DaemonSetController {
            nodes,
            daemons: BTreeMap::new(),
        }
    }
}

impl Emulation for DaemonSetController {
    fn resource(&self) -> ResourceKey {
        ResourceKey::of(GROUP, PLURAL)
    }

    fn sync(&mut self, object: &Value, now: Instant) -> Synced {
        let nodes = self.nodes;
        self.daemons
            .entry(object_key(object))
            .or_default()
            .sync(object, nodes, now)
    }

    fn forget(&mut self, key: &ObjectKey) {
        self.daemons.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployments::POD_START;

    fn agent(image: &str) -> Value {
        let mut agent = json!({
            "metadata": {"name": "agent", "namespace": "shop", "generation": 1},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                             "spec": {"containers": [{"name": "agent", "image": image}]}},
            },
        });
        apply_defaults(&mut agent);
        agent
    }

    /// `(numberReady, updatedNumberScheduled, numberAvailable, numberUnavailable)`.
    fn counts(synced: &Synced) -> [i64; 4] {
        workloads::counts(
            &synced.status,
            [
                "numberReady",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
            ],
        )
    }

    #[test]
    fn defaults_are_the_api_servers() {
        assert_eq!(
            workloads::spec_defaults(apply_defaults),
            json!({
                "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            })
        );
    }

    #[test]
    fn the_selector_is_immutable() {
        let old = agent("nginx:1");
        let mut moved = old.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        moved["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        let messages: Vec<String> = validate(&moved, Some(&old))
            .into_iter()
            .map(|error| error.message)
            .collect();
        assert_eq!(
            messages,
            ["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: field is immutable"]
        );
    }

    #[test]
    fn a_rolling_update_replaces_one_node_at_a_time() {
        let old = agent("nginx:1");
        let start = Instant::now();
        let mut daemons = Daemons::default();
        let created = daemons.sync(&old, 3, start);
        assert_eq!(counts(&created), [0, 3, 0, 3]);
        assert_eq!(
            (
                &created.status["desiredNumberScheduled"],
                &created.status["currentNumberScheduled"],
                &created.status["numberMisscheduled"]
            ),
            (&json!(3), &json!(3), &json!(0))
        );
        assert_eq!(counts(&daemons.sync(&old, 3, start + POD_START)), [3, 3, 3, 0]);

        let new = agent("nginx:2");
        let mut at = start + 2 * POD_START;
        for updated in 1..=3 {
            let step = daemons.sync(&new, 3, at);
            assert_eq!(counts(&step), [2, updated, 2, 1]);
            assert_eq!(step.wake, Some(at + POD_START));
            at += POD_START;
        }
        let done = daemons.sync(&new, 3, at);
        assert_eq!(counts(&done), [3, 3, 3, 0]);
        assert_eq!(done.wake, None);
    }

    #[test]
    fn an_unpullable_update_stops_after_one_node_and_a_surge_keeps_the_old_pod() {
        let old = agent("nginx:1");
        let start = Instant::now();
        let mut daemons = Daemons::default();
        daemons.sync(&old, 2, start);
        daemons.sync(&old, 2, start + POD_START);
        let broken = agent("example.invalid/agent:2");
        let later = start + 2 * POD_START;
        daemons.sync(&broken, 2, later);
        assert_eq!(
            counts(&daemons.sync(&broken, 2, later + 100 * POD_START)),
            [1, 1, 1, 1]
        );

        let mut surging = agent("nginx:3");
        surging["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 1});
        let mut kept = Daemons::default();
        kept.sync(&old, 2, start);
        kept.sync(&old, 2, start + POD_START);
        assert_eq!(counts(&kept.sync(&surging, 2, later)), [2, 1, 2, 0]);
        assert_eq!(counts(&kept.sync(&surging, 2, later + POD_START)), [2, 2, 2, 0]);
        assert_eq!(
            counts(&kept.sync(&surging, 2, later + 2 * POD_START)),
            [2, 2, 2, 0]
        );
    }
}
