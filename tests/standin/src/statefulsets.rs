//! StatefulSets: the API server's defaults and validation, and an emulation
//! of kube-controller-manager's StatefulSet controller (`pkg/controller/
//! statefulset`) with the Pods of [`crate::workloads::Pod`]: ready
//! [`crate::deployments::POD_START`] after creation when every image can be
//! pulled, never when one cannot.
//!
//! A rolling update replaces Pods from the highest ordinal down, one at a
//! time, each once every Pod is ready; Pods with an ordinal below
//! `updateStrategy.rollingUpdate.partition` keep the current revision.
//! `currentRevision` becomes `updateRevision` once every replica is updated
//! and ready. `OnDelete` replaces nothing (no Pod is ever deleted here). There
//! is no progress deadline: a stuck rollout stays stuck, as on a cluster.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::deployments::{pods_can_start, template_hash};
use crate::emulation::{Emulation, Synced, object_key};
use crate::meta;
use crate::resources::ResourceKey;
use crate::schema::FieldError;
use crate::schema::field;
use crate::store::ObjectKey;
use crate::workloads::{self, Pod, SelectorRules, default_field, insert_count, next_ready};

pub(crate) const GROUP: &str = "apps";
pub(crate) const PLURAL: &str = "statefulsets";

/// The spec fields an update may change (`ValidateStatefulSetUpdate`).
const MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
];

/// `SetDefaults_StatefulSet` of `apps/v1`.
pub(crate) fn apply_defaults(stateful_set: &mut Value) {
    let Some(spec) = workloads::spec_mut(stateful_set) else {
        return;
    };
    default_field(spec, "replicas", json!(1));
    default_field(spec, "podManagementPolicy", json!("OrderedReady"));
    default_field(spec, "revisionHistoryLimit", json!(10));
    default_field(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(policy) = spec
        .get_mut("persistentVolumeClaimRetentionPolicy")
        .and_then(Value::as_object_mut)
    {
        default_field(policy, "whenDeleted", json!("Retain"));
        default_field(policy, "whenScaled", json!("Retain"));
    }
    workloads::default_rolling_update(spec, &[("partition", json!(0))]);
}

/// `ValidateStatefulSet` (selector, template) and, on update,
/// `ValidateStatefulSetUpdate`: only some spec fields may change.
pub(crate) fn validate(stateful_set: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = workloads::validate_selector_and_template(
        &stateful_set["spec"],
        &SelectorRules {
            required: true,
            kind: "statefulset",
        },
    );
    if let Some(old) = old {
        let fixed = |object: &Value| -> Map<String, Value> {
            let mut spec = object["spec"].as_object().cloned().unwrap_or_default();
            spec.retain(|field, _| !MUTABLE.contains(&field.as_str()));
            spec
        };
        if fixed(stateful_set) != fixed(old) {
            errors.push(field::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', \
                 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and \
                 'minReadySeconds' are forbidden",
            ));
        }
    }
    errors
}

/// `<name>-<hash>` of the template alone, the ControllerRevision's name.
pub(crate) fn revision_of(object: &Value) -> String {
    let template = json!({"spec": {"template": object["spec"]["template"]}});
    format!("{}-{}", meta::name(object), template_hash(&template))
}

/// What the controller knows of one StatefulSet beyond the object: its Pods
/// (by ordinal) and its revisions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Set {
    pub pods: Vec<Pod>,
    pub current_revision: String,
    /// Whether the Pods of each revision seen can start.
    pub revisions: BTreeMap<String, bool>,
}

impl Set {
    /// The state before the first sync of `stateful_set`.
    pub fn new(stateful_set: &Value) -> Set {
        Set {
            pods: Vec::new(),
            current_revision: revision_of(stateful_set),
            revisions: BTreeMap::new(),
        }
    }

    /// One sync at `now` (`updateStatefulSet`): scale, roll one Pod, and
    /// answer the status.
    pub fn sync(&mut self, stateful_set: &Value, now: Instant) -> Synced {
        let spec = &stateful_set["spec"];
        let replicas = usize::try_from(spec["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
        let update_revision = revision_of(stateful_set);
        self.revisions
            .insert(update_revision.clone(), pods_can_start(stateful_set));
        let rolling = workloads::rolls(stateful_set);
        let partition = usize::try_from(
            spec["updateStrategy"]["rollingUpdate"]["partition"]
                .as_i64()
                .unwrap_or(0),
        )
        .unwrap_or(0);
        let ordered = spec["podManagementPolicy"].as_str() != Some("Parallel");

        self.pods.truncate(replicas);
        while self.pods.len() < replicas {
            if ordered && self.pods.iter().any(|pod| !pod.is_ready(now)) {
                break;
            }
            let ordinal = self.pods.len();
            let revision = if rolling && ordinal < partition {
                self.current_revision.clone()
            } else {
                update_revision.clone()
            };
            let can_start = self.revisions.get(&revision).copied().unwrap_or(true);
            self.pods.push(Pod::start_of(&revision, can_start, now));
        }
        let all_ready = self.pods.len() == replicas && self.pods.iter().all(|pod| pod.is_ready(now));
        if rolling
            && all_ready
            && let Some(ordinal) = (partition..self.pods.len())
                .rev()
                .find(|ordinal| self.pods[*ordinal].revision != update_revision)
        {
            self.pods[ordinal] = Pod::start(&update_revision, stateful_set, now);
        }

        let ready = self.pods.iter().filter(|pod| pod.is_ready(now)).count();
        let updated = self
            .pods
            .iter()
            .filter(|pod| pod.revision == update_revision)
            .count();
        if rolling && updated == replicas && ready == replicas {
            self.current_revision = update_revision.clone();
        }
        let current = self
            .pods
            .iter()
            .filter(|pod| pod.revision == self.current_revision)
            .count();

        let mut status = Map::new();
        status.insert(
            "observedGeneration".to_owned(),
            stateful_set["metadata"]["generation"].clone(),
        );
        insert_count(&mut status, "replicas", self.pods.len(), false);
        insert_count(&mut status, "readyReplicas", ready, true);
        insert_count(&mut status, "currentReplicas", current, true);
        insert_count(&mut status, "updatedReplicas", updated, true);
        status.insert("currentRevision".to_owned(), json!(self.current_revision));
        status.insert("updateRevision".to_owned(), json!(update_revision));
        status.insert(
            "collisionCount".to_owned(),
            stateful_set["status"]["collisionCount"]
                .as_i64()
                .map_or(json!(0), |count| json!(count)),
        );
        // `minReadySeconds` is not emulated: a ready Pod is available.
        insert_count(&mut status, "availableReplicas", ready, false);
        Synced {
            status: Value::Object(status),
            wake: next_ready(&self.pods, now),
        }
    }
}

/// The emulated StatefulSet controller: one [`Set`] per StatefulSet.
#[derive(Default)]
pub(crate) struct StatefulSetController {
    sets: BTreeMap<ObjectKey, Set>,
}

impl Emulation for StatefulSetController {
    fn resource(&self) -> ResourceKey {
        ResourceKey::of(GROUP, PLURAL)
    }

    fn sync(&mut self, object: &Value, now: Instant) -> Synced {
        self.sets
            .entry(object_key(object))
            .or_insert_with(|| Set::new(object))
            .sync(object, now)
    }

    fn forget(&mut self, key: &ObjectKey) {
        self.sets.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployments::POD_START;

    fn web(replicas: i64, image: &str, partition: i64) -> Value {
        let mut web = json!({
            "metadata": {"name": "web", "namespace": "shop", "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "serviceName": "web",
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "app", "image": image}]}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
            },
        });
        apply_defaults(&mut web);
        web
    }

    /// `(replicas, readyReplicas, currentReplicas, updatedReplicas)`, zeros for absent counts.
    fn counts(synced: &Synced) -> [i64; 4] {
        workloads::counts(
            &synced.status,
            ["replicas", "readyReplicas", "currentReplicas", "updatedReplicas"],
        )
    }

    #[test]
    fn defaults_are_the_api_servers() {
        assert_eq!(
            workloads::spec_defaults(apply_defaults),
            json!({
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            })
        );
        let mut on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        apply_defaults(&mut on_delete);
        assert_eq!(on_delete["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn only_some_spec_fields_may_change() {
        let old = web(2, "nginx:1", 0);
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(validate(&scaled, Some(&old)).is_empty());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("other");
        let messages: Vec<String> = validate(&renamed, Some(&old))
            .into_iter()
            .map(|error| error.message)
            .collect();
        assert_eq!(
            messages,
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', \
              'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' \
              and 'minReadySeconds' are forbidden"
            ]
        );
    }

    #[test]
    fn ordered_pods_start_one_after_another_then_the_revision_is_current() {
        let web = web(2, "nginx:1", 0);
        let start = Instant::now();
        let mut set = Set::new(&web);
        let first = set.sync(&web, start);
        assert_eq!(counts(&first), [1, 0, 1, 1]);
        assert_eq!(first.wake, Some(start + POD_START));
        let second = set.sync(&web, start + POD_START);
        assert_eq!(counts(&second), [2, 1, 2, 2]);
        let done = set.sync(&web, start + 2 * POD_START);
        assert_eq!(counts(&done), [2, 2, 2, 2]);
        assert_eq!(done.wake, None);
        assert_eq!(done.status["currentRevision"], done.status["updateRevision"]);
        assert_eq!(
            (&done.status["collisionCount"], &done.status["availableReplicas"]),
            (&json!(0), &json!(2))
        );
    }

    /// A Set whose Pods of `stateful_set` are all ready; answers when.
    fn settled(stateful_set: &Value, start: Instant) -> (Set, Instant) {
        let mut set = Set::new(stateful_set);
        let mut at = start;
        while set.sync(stateful_set, at).wake.is_some() {
            at += POD_START;
        }
        (set, at)
    }

    #[test]
    fn a_partitioned_rollout_updates_the_ordinals_above_the_partition_from_the_top() {
        let (mut set, mut at) = settled(&web(3, "nginx:1", 0), Instant::now());
        let new = web(3, "nginx:2", 1);
        let first = set.sync(&new, at);
        assert_eq!(counts(&first), [3, 2, 2, 1]);
        assert_eq!(set.pods[2].revision, first.status["updateRevision"]);
        at += POD_START;
        let second = set.sync(&new, at);
        assert_eq!(counts(&second), [3, 2, 1, 2]);
        assert_eq!(set.pods[1].revision, second.status["updateRevision"]);
        at += POD_START;
        let held = set.sync(&new, at);
        assert_eq!(counts(&held), [3, 3, 1, 2], "ordinal 0 stays below the partition");
        assert_ne!(held.status["currentRevision"], held.status["updateRevision"]);
        assert_eq!(held.wake, None);
    }

    #[test]
    fn an_unpullable_update_stays_stuck_and_on_delete_replaces_nothing() {
        let old = web(2, "nginx:1", 0);
        let (mut set, later) = settled(&old, Instant::now());
        let broken = web(2, "example.invalid/web:2", 0);
        set.sync(&broken, later);
        let stuck = set.sync(&broken, later + 100 * POD_START);
        assert_eq!(counts(&stuck), [2, 1, 1, 1]);
        assert_eq!(stuck.wake, None);

        let mut on_delete = web(2, "nginx:3", 0);
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        let (mut kept, later) = settled(&old, later);
        let untouched = kept.sync(&on_delete, later);
        assert_eq!(counts(&untouched), [2, 2, 2, 0]);
    }
}
