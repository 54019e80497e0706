//! An emulation of kube-controller-manager's Deployment controller in a
//! cluster with nodes: the new ReplicaSet's Pods become ready [`POD_START`]
//! after they are created when every image of their template can be pulled,
//! and never when one cannot. An image whose registry host ends in
//! `.invalid` (RFC 2606: it never resolves) cannot be pulled; every other
//! image can. So a rollout with pullable images completes, and one with an
//! unpullable image progresses until its progress deadline and then fails
//! with `ProgressDeadlineExceeded`, as on a real cluster. Rollouts to zero
//! replicas complete at once.
//!
//! [`sync`] is the decision, a pure function of the stored Deployment (its
//! current status included, as the real controller computes from it) and of
//! how many of its Pods are ready; [`DeploymentController`] keeps what the
//! real controller learns from its ReplicaSets and their Pods (which template
//! was last rolled out, when progress was last made, which Pods are ready)
//! and the timers that look again when Pods become ready or a deadline
//! passes. The store feeds it every stored change of a Deployment and writes
//! the status it answers.

use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::meta;
use crate::store::{EventType, ObjectKey, Store, StoredEvent, wake_at};

/// The field manager of the real controller's status updates.
pub(crate) const MANAGER: &str = "kube-controller-manager";

/// The API server's default `spec.progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;

/// `progressDeadlineSeconds: 2147483647` (Go's `math.MaxInt32`) means "no
/// deadline": the controller then keeps no `Progressing` condition.
const NO_PROGRESS_DEADLINE: i64 = i32::MAX as i64;

/// How long a Pod whose images can be pulled takes from creation to ready
/// (scheduling, pulling, starting): rollouts take time, as on a real cluster.
pub(crate) const POD_START: Duration = Duration::from_secs(1);

/// The alphabet of `rand.SafeEncodeString`, which encodes template hashes.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Fills in the defaults of the API server that the controller depends on
/// (`spec.replicas: 1`, `spec.progressDeadlineSeconds: 600`). The real server
/// defaults on every write, so a write that drops a field gets it back.
pub(crate) fn apply_defaults(deployment: &mut Value) {
    let Some(object) = deployment.as_object_mut() else {
        return;
    };
    let Some(spec) = object.entry("spec").or_insert_with(|| json!({})).as_object_mut() else {
        return;
    };
    for (field, default) in [
        ("replicas", 1),
        ("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS),
    ] {
        if spec.get(field).is_none_or(Value::is_null) {
            spec.insert(field.to_owned(), json!(default));
        }
    }
}

/// FNV-1a with 32 bits, the hash of the real controller's template hasher.
struct Fnv32(u32);

impl Fnv32 {
    fn new() -> Self {
        Fnv32(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u32::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }

    /// Feeds a JSON value with object keys sorted, so that equal templates
    /// hash alike whatever order their keys were written in.
    fn write_value(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                self.write(b"{");
                for key in keys {
                    self.write(Value::String(key.clone()).to_string().as_bytes());
                    self.write(b":");
                    self.write_value(&map[key]);
                    self.write(b",");
                }
                self.write(b"}");
            }
            Value::Array(items) => {
                self.write(b"[");
                for item in items {
                    self.write_value(item);
                    self.write(b",");
                }
                self.write(b"]");
            }
            scalar => self.write(scalar.to_string().as_bytes()),
        }
    }
}

/// The `pod-template-hash` of the Deployment's current template: a stable
/// hash of `spec.template` and `status.collisionCount`, printed in decimal and
/// encoded with `rand.SafeEncodeString` as the real controller does.
pub(crate) fn template_hash(deployment: &Value) -> String {
    let mut hash = Fnv32::new();
    hash.write_value(&deployment["spec"]["template"]);
    if let Some(collisions) = deployment["status"]["collisionCount"].as_i64() {
        hash.write(collisions.to_string().as_bytes());
    }
    hash.0
        .to_string()
        .bytes()
        .map(|digit| char::from(SAFE_ALPHABET[usize::from(digit) % SAFE_ALPHABET.len()]))
        .collect()
}

/// `spec.replicas` (defaulted on every write; 1 if a stored object lacks it).
fn desired_replicas(deployment: &Value) -> i64 {
    deployment["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

/// The progress deadline, `None` when the Deployment has none.
fn progress_deadline(deployment: &Value) -> Option<Duration> {
    let seconds = deployment["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    (seconds != NO_PROGRESS_DEADLINE).then(|| Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// Whether a node can pull `image`: not when its registry host ends in
/// `.invalid`. The host is the first path component when it looks like one
/// (has a `.` or a `:`, or is `localhost`), as in Docker's reference
/// grammar; otherwise the image is on Docker Hub.
pub(crate) fn can_pull(image: &str) -> bool {
    let host = match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    };
    let host = host
        .rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase();
    !(host == "invalid" || host.ends_with(".invalid"))
}

/// Whether the Pods of the Deployment's template can start: every container
/// and init container names an image a node can pull.
pub(crate) fn pods_can_start(deployment: &Value) -> bool {
    let pod = &deployment["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| pod[*list].as_array())
        .flatten()
        .all(|container| container["image"].as_str().is_some_and(can_pull))
}

/// An int-or-percent of the rolling update strategy, scaled to `total` like
/// `intstr.GetScaledValueFromIntOrPercent`; absent fields take the API
/// server's default of 25%.
pub(crate) fn scaled(value: &Value, total: i64, round_up: bool) -> i64 {
    let percent = match value {
        Value::Null => 25,
        Value::Number(number) => return number.as_i64().unwrap_or(0),
        // Validation on a real server refuses anything but `N%`; the
        // stand-in does not validate built-ins, so treat the rest as zero.
        Value::String(text) => match text
            .strip_suffix('%')
            .and_then(|digits| digits.parse::<i64>().ok())
        {
            Some(percent) => percent,
            None => return 0,
        },
        _ => return 0,
    };
    if round_up {
        (percent * total + 99) / 100
    } else {
        percent * total / 100
    }
}

/// `deploymentutil.MaxUnavailable`: how many replicas may be unavailable
/// while the Deployment still counts as available.
fn max_unavailable(deployment: &Value, replicas: i64) -> i64 {
    let strategy = &deployment["spec"]["strategy"];
    let rolling = strategy["type"]
        .as_str()
        .is_none_or(|kind| kind == "RollingUpdate");
    if !rolling || replicas == 0 {
        return 0;
    }
    let surge = scaled(&strategy["rollingUpdate"]["maxSurge"], replicas, true);
    let unavailable = scaled(&strategy["rollingUpdate"]["maxUnavailable"], replicas, false);
    // Both fenceposts at zero would block the rollout; the controller then allows one.
    let unavailable = if surge == 0 && unavailable == 0 {
        1
    } else {
        unavailable
    };
    unavailable.min(replicas)
}

pub(crate) fn condition(kind: &str, status: &str, reason: &str, message: String, now: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    })
}

fn find<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|condition| condition["type"] == kind)
}

/// `deploymentutil.SetDeploymentCondition`: nothing changes when status and
/// reason are the same; `lastTransitionTime` is kept when only the reason
/// changes; the condition moves to the end of the list.
pub(crate) fn set_condition(conditions: &mut Vec<Value>, mut new: Value) {
    if let Some(current) = find(conditions, new["type"].as_str().unwrap_or_default()) {
        if current["status"] == new["status"] && current["reason"] == new["reason"] {
            return;
        }
        if current["status"] == new["status"]
            && let Some(time) = current.get("lastTransitionTime")
        {
            new["lastTransitionTime"] = time.clone();
        }
    }
    conditions.retain(|condition| condition["type"] != new["type"]);
    conditions.push(new);
}

fn count(status: &Value, field: &str) -> i64 {
    status[field].as_i64().unwrap_or(0)
}

/// What the controller knows beyond the Deployment object.
pub(crate) struct SyncInput<'a> {
    /// The stored Deployment, with its current status.
    pub deployment: &'a Value,
    /// The template changed since the last sync, so a new ReplicaSet takes over.
    pub new_replica_set: bool,
    /// How many Pods of the new ReplicaSet are ready (and so available:
    /// `minReadySeconds` is not emulated).
    pub ready_replicas: i64,
    /// The progress deadline has passed since the last progress.
    pub deadline_passed: bool,
    pub now: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncOutcome {
    pub status: Value,
    /// The rollout made progress: the deadline counts from now.
    pub progressed: bool,
    /// The rollout is still progressing against its deadline, so the
    /// controller must look again when the deadline passes.
    pub awaiting_deadline: bool,
}

/// One sync of the real controller's rolling update (`calculateStatus` and
/// `syncRolloutStatus`): the new ReplicaSet is scaled to `spec.replicas`
/// (old ones are gone), `ready_replicas` of its Pods are ready.
pub(crate) fn sync(input: &SyncInput<'_>) -> SyncOutcome {
    let deployment = input.deployment;
    let old = &deployment["status"];
    let replicas = desired_replicas(deployment);
    let ready = input.ready_replicas.clamp(0, replicas);
    let replica_set = format!("{}-{}", meta::name(deployment), template_hash(deployment));
    let deadline = progress_deadline(deployment);
    let mut conditions: Vec<Value> = old["conditions"].as_array().cloned().unwrap_or_default();

    if deadline.is_some() && input.new_replica_set {
        let created = condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set {replica_set:?}"),
            input.now,
        );
        set_condition(&mut conditions, created);
    }
    let availability = if ready >= replicas - max_unavailable(deployment, replicas) {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".to_owned(),
            input.now,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".to_owned(),
            input.now,
        )
    };
    set_condition(&mut conditions, availability);

    let mut progressed = false;
    if deadline.is_none() {
        conditions.retain(|condition| condition["type"] != "Progressing");
    } else {
        let current = find(&conditions, "Progressing").cloned();
        let reason = current.as_ref().map(|current| current["reason"].clone());
        // `replicas == updatedReplicas` always holds here: old ReplicaSets are gone.
        let already_complete = reason
            .as_ref()
            .is_some_and(|reason| reason == "NewReplicaSetAvailable");
        // `DeploymentComplete`: every replica updated and available (and
        // `observedGeneration` is the generation: it is set below).
        let complete = ready == replicas;
        // `DeploymentProgressing`: more updated, ready or available replicas,
        // or fewer old ones.
        let old_pending = count(old, "replicas") - count(old, "updatedReplicas");
        let counts_progressed = replicas > count(old, "updatedReplicas")
            || old_pending > 0
            || ready > count(old, "readyReplicas")
            || ready > count(old, "availableReplicas");
        if already_complete {
            // A complete rollout scaled up stays "successfully progressed", as on a real cluster.
        } else if complete {
            let complete = condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet {replica_set:?} has successfully progressed."),
                input.now,
            );
            set_condition(&mut conditions, complete);
        } else if input.new_replica_set || counts_progressed {
            let mut updating = condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet {replica_set:?} is progressing."),
                input.now,
            );
            if let Some(current) = current.filter(|current| current["status"] == "True")
                && let Some(time) = current.get("lastTransitionTime")
            {
                updating["lastTransitionTime"] = time.clone();
            }
            conditions.retain(|condition| condition["type"] != "Progressing");
            conditions.push(updating);
            progressed = true;
        } else if input.deadline_passed
            || reason
                .as_ref()
                .is_some_and(|reason| reason == "ProgressDeadlineExceeded")
        {
            let timed_out = condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet {replica_set:?} has timed out progressing."),
                input.now,
            );
            set_condition(&mut conditions, timed_out);
        }
    }
    let awaiting_deadline = find(&conditions, "Progressing").is_some_and(|progressing| {
        progressing["status"] == "True" && progressing["reason"] != "NewReplicaSetAvailable"
    });

    // Zero counts are omitted, as Go's `omitempty` prints them.
    let mut status = serde_json::Map::new();
    status.insert(
        "observedGeneration".to_owned(),
        deployment["metadata"]["generation"].clone(),
    );
    for (field, value) in [
        ("replicas", replicas),
        ("updatedReplicas", replicas),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("unavailableReplicas", replicas - ready),
    ] {
        if value > 0 {
            status.insert(field.to_owned(), json!(value));
        }
    }
    if let Some(collisions) = old.get("collisionCount") {
        status.insert("collisionCount".to_owned(), collisions.clone());
    }
    if !conditions.is_empty() {
        status.insert("conditions".to_owned(), Value::Array(conditions));
    }
    SyncOutcome {
        status: Value::Object(status),
        progressed,
        awaiting_deadline,
    }
}

/// What the controller remembers of one Deployment, as the real one reads it
/// from the Deployment's ReplicaSets, their Pods and its `Progressing`
/// condition.
struct Rollout {
    /// The template hash of the last sync: the newest ReplicaSet.
    template_hash: String,
    /// When the rollout last made progress.
    progress_at: Instant,
    /// The Pods of the newest ReplicaSet, as of the last sync.
    pods: i64,
    /// How many of them are ready.
    ready: i64,
    /// When the Pods that are not ready yet become ready; `None` when every
    /// Pod is ready or none ever will be (an image cannot be pulled).
    ready_at: Option<Instant>,
    /// The pending timer and its id (a stale timer that already woke up
    /// when it was replaced must not sync).
    timer: Option<(u64, AbortHandle)>,
}

impl Rollout {
    /// Brings the Pods up to date at `now`: a new template replaces them all,
    /// a scale-up adds Pods that start now, a scale-down removes some, and
    /// starting Pods whose time has come are ready.
    fn observe_pods(&mut self, deployment: &Value, new_replica_set: bool, now: Instant) {
        let replicas = desired_replicas(deployment);
        if new_replica_set {
            self.pods = 0;
            self.ready = 0;
            self.ready_at = None;
        }
        if replicas > self.pods {
            self.ready_at = pods_can_start(deployment).then_some(now + POD_START);
        }
        self.pods = replicas;
        self.ready = self.ready.min(replicas);
        if self.ready_at.is_some_and(|at| at <= now) {
            self.ready = replicas;
            self.ready_at = None;
        }
        if self.ready == replicas {
            self.ready_at = None;
        }
    }
}

/// The controller's state: one [`Rollout`] per Deployment and the timers
/// that look at stuck rollouts again when their deadline passes.
pub(crate) struct DeploymentController {
    store: Weak<Mutex<Store>>,
    rollouts: BTreeMap<ObjectKey, Rollout>,
    next_timer: u64,
}

impl Drop for DeploymentController {
    fn drop(&mut self) {
        for rollout in self.rollouts.values() {
            if let Some((_, timer)) = &rollout.timer {
                timer.abort();
            }
        }
    }
}

impl DeploymentController {
    /// Timers lock `store` when they fire; it must be the store that owns
    /// this controller.
    pub fn new(store: Weak<Mutex<Store>>) -> Self {
        DeploymentController {
            store,
            rollouts: BTreeMap::new(),
            next_timer: 0,
        }
    }

    /// Takes note of a stored change of a Deployment (forgetting Deployments
    /// that are gone); answers whether it calls for a sync: a new object or
    /// a new generation. Status and metadata-only changes do not.
    pub fn observe(&mut self, event: &StoredEvent) -> bool {
        match event.event_type {
            EventType::Added => true,
            EventType::Modified => event.previous.as_ref().is_none_or(|previous| {
                previous["metadata"]["generation"] != event.object["metadata"]["generation"]
            }),
            EventType::Deleted => {
                let key = (
                    meta::namespace(&event.object).to_owned(),
                    meta::name(&event.object).to_owned(),
                );
                if let Some(Rollout {
                    timer: Some((_, timer)),
                    ..
                }) = self.rollouts.remove(&key)
                {
                    timer.abort();
                }
                false
            }
        }
    }

    /// Whether the timer `id` is the pending deadline check of `key`.
    pub fn is_current_timer(&self, key: &ObjectKey, id: u64) -> bool {
        self.rollouts
            .get(key)
            .and_then(|rollout| rollout.timer.as_ref())
            .is_some_and(|(current, _)| *current == id)
    }

    /// Syncs a stored Deployment; answers the status to write and (re)arms
    /// or cancels its timer, which fires when the starting Pods become ready
    /// or the progress deadline passes, whichever comes first.
    pub fn sync(&mut self, deployment: &Value) -> Value {
        let key = (
            meta::namespace(deployment).to_owned(),
            meta::name(deployment).to_owned(),
        );
        let hash = template_hash(deployment);
        let started = Instant::now();
        // Deleted Deployments are forgotten, so a new entry is a new Deployment.
        let rollout = self.rollouts.entry(key.clone()).or_insert_with(|| Rollout {
            template_hash: String::new(),
            progress_at: started,
            pods: 0,
            ready: 0,
            ready_at: None,
            timer: None,
        });
        let new_replica_set = rollout.template_hash != hash;
        rollout.observe_pods(deployment, new_replica_set, started);
        let deadline = progress_deadline(deployment);
        let deadline_passed = deadline.is_some_and(|deadline| rollout.progress_at + deadline <= started);
        let now = meta::now();
        let outcome = sync(&SyncInput {
            deployment,
            new_replica_set,
            ready_replicas: rollout.ready,
            deadline_passed,
            now: &now,
        });
        rollout.template_hash = hash;
        if outcome.progressed {
            rollout.progress_at = started;
        }
        if let Some((_, timer)) = rollout.timer.take() {
            timer.abort();
        }
        let deadline_at = deadline
            .filter(|_| outcome.awaiting_deadline)
            .map(|deadline| rollout.progress_at + deadline);
        let wake = match (rollout.ready_at, deadline_at) {
            (Some(ready), Some(deadline)) => Some(ready.min(deadline)),
            (ready, deadline) => ready.or(deadline),
        };
        if let Some(at) = wake {
            self.next_timer += 1;
            let id = self.next_timer;
            let timer = wake_at(&self.store, at, key.clone(), id, Store::deployment_timer_fired);
            rollout.timer = Some((id, timer));
        }
        outcome.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-01T00:00:10Z";
    const BEFORE: &str = "2025-01-01T00:00:00Z";

    fn deployment(replicas: i64, image: &str, status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": 600,
                "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
            },
            "status": status,
        })
    }

    fn sync_once(deployment: &Value, new_replica_set: bool, deadline_passed: bool) -> SyncOutcome {
        sync_ready(deployment, new_replica_set, 0, deadline_passed)
    }

    fn sync_ready(
        deployment: &Value,
        new_replica_set: bool,
        ready_replicas: i64,
        deadline_passed: bool,
    ) -> SyncOutcome {
        sync(&SyncInput {
            deployment,
            new_replica_set,
            ready_replicas,
            deadline_passed,
            now: NOW,
        })
    }

    fn progressing_status(replicas: i64) -> Value {
        json!({
            "observedGeneration": 2,
            "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability.",
                 "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": "ReplicaSet \"web-x\" is progressing.",
                 "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
            ],
        })
    }

    fn condition_of<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|conditions| find(conditions, kind))
            .unwrap_or(&Value::Null)
    }

    fn replica_set(deployment: &Value) -> String {
        format!("web-{}", template_hash(deployment))
    }

    #[test]
    fn template_hashes_are_stable_and_ignore_key_order() {
        let template = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1"}]}});
        let reordered: Value =
            serde_json::from_str(r#"{"spec":{"containers":[{"image":"nginx:1","name":"app"}]}}"#)
                .unwrap_or_default();
        let of = |template: &Value| template_hash(&json!({"spec": {"template": template}}));
        assert_eq!(of(&template), "65754899cb");
        assert_eq!(of(&reordered), of(&template));
        let other = json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}});
        assert_eq!(of(&other), "85c55f9d49");
        let collided = json!({"spec": {"template": template}, "status": {"collisionCount": 1}});
        assert_eq!(template_hash(&collided), "7ff989889f");
    }

    #[test]
    fn defaults_fill_replicas_and_deadline_but_keep_given_values() {
        let mut empty = json!({"metadata": {"name": "web"}});
        apply_defaults(&mut empty);
        assert_eq!(
            empty["spec"],
            json!({"replicas": 1, "progressDeadlineSeconds": 600})
        );
        let mut given = json!({"spec": {"replicas": 0, "progressDeadlineSeconds": 5}});
        apply_defaults(&mut given);
        assert_eq!(
            given["spec"],
            json!({"replicas": 0, "progressDeadlineSeconds": 5})
        );
    }

    #[test]
    fn a_new_rollout_to_zero_replicas_completes() {
        let deployment = deployment(0, "nginx:1", json!({}));
        let outcome = sync_once(&deployment, true, false);
        let message = format!(
            "ReplicaSet \"{}\" has successfully progressed.",
            replica_set(&deployment)
        );
        assert_eq!(
            outcome,
            SyncOutcome {
                status: json!({
                    "observedGeneration": 2,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "message": "Deployment has minimum availability.",
                         "lastUpdateTime": NOW, "lastTransitionTime": NOW},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                         "message": message, "lastUpdateTime": NOW, "lastTransitionTime": NOW},
                    ],
                }),
                progressed: false,
                awaiting_deadline: false,
            }
        );
    }

    #[test]
    fn a_rollout_with_replicas_progresses_then_times_out_keeping_availability_times() {
        let deployment = deployment(
            2,
            "nginx:1",
            json!({
                "observedGeneration": 1,
                "replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                     "message": "Deployment does not have minimum availability.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                    {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                     "message": "ReplicaSet \"web-old\" is progressing.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                ],
            }),
        );
        let progressing = sync_once(&deployment, true, false);
        let name = replica_set(&deployment);
        assert_eq!(
            progressing.status["conditions"],
            json!([
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability.",
                 "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": format!("ReplicaSet \"{name}\" is progressing."),
                 "lastUpdateTime": NOW, "lastTransitionTime": BEFORE},
            ])
        );
        assert_eq!(
            (progressing.progressed, progressing.awaiting_deadline),
            (true, true)
        );
        assert_eq!(
            (
                &progressing.status["replicas"],
                &progressing.status["updatedReplicas"],
                &progressing.status["unavailableReplicas"],
                progressing.status.get("availableReplicas"),
            ),
            (&json!(2), &json!(2), &json!(2), None)
        );

        let mut stuck_deployment = deployment.clone();
        stuck_deployment["status"] = progressing.status.clone();
        let still = sync_once(&stuck_deployment, false, false);
        assert_eq!(
            still.status, progressing.status,
            "no progress, no deadline yet: nothing changes"
        );
        assert_eq!((still.progressed, still.awaiting_deadline), (false, true));

        let timed_out = sync_once(&stuck_deployment, false, true);
        assert_eq!(
            timed_out.status["conditions"][1],
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                   "message": format!("ReplicaSet \"{name}\" has timed out progressing."),
                   "lastUpdateTime": NOW, "lastTransitionTime": NOW})
        );
        assert_eq!(
            (timed_out.progressed, timed_out.awaiting_deadline),
            (false, false)
        );
    }

    #[test]
    fn a_timed_out_rollout_stays_timed_out_until_a_new_template() {
        let mut timed_out = deployment(
            2,
            "nginx:1",
            json!({
                "observedGeneration": 1,
                "replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                     "message": "Deployment does not have minimum availability.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                     "message": "ReplicaSet \"web-x\" has timed out progressing.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                ],
            }),
        );
        let annotated = sync_once(&timed_out, false, false);
        assert_eq!(
            annotated.status["conditions"][1]["reason"],
            "ProgressDeadlineExceeded"
        );
        assert_eq!(annotated.status["conditions"][1]["lastUpdateTime"], BEFORE);
        assert_eq!(annotated.status["observedGeneration"], 2);

        timed_out["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        let resumed = sync_once(&timed_out, true, false);
        assert_eq!(
            resumed.status["conditions"][1],
            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                   "message": format!("ReplicaSet \"{}\" is progressing.", replica_set(&timed_out)),
                   "lastUpdateTime": NOW, "lastTransitionTime": NOW})
        );
        assert_eq!((resumed.progressed, resumed.awaiting_deadline), (true, true));
    }

    #[test]
    fn scaling_a_complete_rollout_up_keeps_it_complete_but_unavailable() {
        let complete = deployment(
            3,
            "nginx:1",
            json!({
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": "ReplicaSet \"web-x\" has successfully progressed.",
                     "lastUpdateTime": BEFORE, "lastTransitionTime": BEFORE},
                ],
            }),
        );
        let scaled = sync_once(&complete, false, false);
        let reasons: Vec<&Value> = scaled.status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|condition| &condition["reason"])
            .collect();
        assert_eq!(
            reasons,
            [
                &json!("NewReplicaSetAvailable"),
                &json!("MinimumReplicasUnavailable")
            ]
        );
        assert_eq!((scaled.progressed, scaled.awaiting_deadline), (false, false));
    }

    #[test]
    fn availability_follows_max_unavailable_of_the_strategy() {
        let mut tolerant = deployment(2, "nginx:1", json!({}));
        tolerant["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}});
        assert_eq!(
            condition_of(&sync_once(&tolerant, true, false).status, "Available")["status"],
            "True"
        );
        tolerant["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}});
        assert_eq!(
            condition_of(&sync_once(&tolerant, true, false).status, "Available")["status"],
            "True"
        );
        tolerant["spec"]["strategy"] = json!({"type": "Recreate"});
        assert_eq!(
            condition_of(&sync_once(&tolerant, true, false).status, "Available")["status"],
            "False"
        );
        let one = deployment(1, "nginx:1", json!({}));
        // 25% of 1 rounds down to 0 unavailable (and up to 1 surge).
        assert_eq!(
            condition_of(&sync_once(&one, true, false).status, "Available")["status"],
            "False"
        );
    }

    #[test]
    fn a_rollout_whose_pods_are_all_ready_completes() {
        let deployment = deployment(2, "nginx:1", progressing_status(2));
        let outcome = sync_ready(&deployment, false, 2, false);
        let message = format!(
            "ReplicaSet \"{}\" has successfully progressed.",
            replica_set(&deployment)
        );
        assert_eq!(
            outcome,
            SyncOutcome {
                status: json!({
                    "observedGeneration": 2,
                    "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "message": "Deployment has minimum availability.",
                         "lastUpdateTime": NOW, "lastTransitionTime": NOW},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                         "message": message, "lastUpdateTime": NOW, "lastTransitionTime": BEFORE},
                    ],
                }),
                progressed: false,
                awaiting_deadline: false,
            }
        );
    }

    #[test]
    fn more_ready_pods_are_progress_and_availability_counts_them() {
        let deployment = deployment(4, "nginx:1", progressing_status(4));
        let outcome = sync_ready(&deployment, false, 3, true);
        assert_eq!(
            (
                &outcome.status["readyReplicas"],
                &outcome.status["availableReplicas"],
                &outcome.status["unavailableReplicas"]
            ),
            (&json!(3), &json!(3), &json!(1))
        );
        // 25% of 4 may be unavailable.
        assert_eq!(condition_of(&outcome.status, "Available")["status"], "True");
        let progressing = condition_of(&outcome.status, "Progressing");
        assert_eq!(
            (&progressing["reason"], &progressing["lastUpdateTime"]),
            (&json!("ReplicaSetUpdated"), &json!(NOW)),
            "progress, so no timeout though the deadline passed"
        );
        assert_eq!((outcome.progressed, outcome.awaiting_deadline), (true, true));

        let mut stuck = deployment.clone();
        stuck["status"] = outcome.status.clone();
        let timed_out = sync_ready(&stuck, false, 3, true);
        assert_eq!(
            condition_of(&timed_out.status, "Progressing")["reason"],
            "ProgressDeadlineExceeded"
        );
    }

    #[test]
    fn images_on_invalid_hosts_cannot_be_pulled() {
        let pullable = [
            "nginx:1",
            "library/nginx@sha256:0123",
            "registry.example.com/shop/backend:1.4.2",
            "127.0.0.1:5000/shop/backend@sha256:0123",
            "localhost/x:1",
            "invalid/x:1",
        ];
        let unpullable = [
            "example.invalid/sidecar:1",
            "Registry.Example.INVALID/x",
            "example.invalid:5000/x:1",
            "invalid:5000/x",
        ];
        assert_eq!(pullable.map(can_pull), [true; 6]);
        assert_eq!(unpullable.map(can_pull), [false; 4]);

        let mut web = deployment(1, "nginx:1", json!({}));
        assert!(pods_can_start(&web));
        web["spec"]["template"]["spec"]["initContainers"] =
            json!([{"name": "init", "image": "example.invalid/init:1"}]);
        assert!(!pods_can_start(&web), "an init container's image counts too");
        web["spec"]["template"]["spec"]["initContainers"] = json!([]);
        if let Some(containers) = web["spec"]["template"]["spec"]["containers"].as_array_mut() {
            containers.push(json!({"name": "no-image"}));
        }
        assert!(!pods_can_start(&web), "a container without an image never starts");
    }

    #[test]
    fn pods_become_ready_after_they_start_unless_an_image_cannot_be_pulled() {
        let start = Instant::now();
        let mut rollout = Rollout {
            template_hash: String::new(),
            progress_at: start,
            pods: 0,
            ready: 0,
            ready_at: None,
            timer: None,
        };
        let web = deployment(2, "nginx:1", json!({}));
        rollout.observe_pods(&web, true, start);
        assert_eq!(
            (rollout.pods, rollout.ready, rollout.ready_at),
            (2, 0, Some(start + POD_START))
        );
        rollout.observe_pods(&web, false, start + POD_START);
        assert_eq!((rollout.ready, rollout.ready_at), (2, None));

        let scaled_up = deployment(3, "nginx:1", json!({}));
        let later = start + 2 * POD_START;
        rollout.observe_pods(&scaled_up, false, later);
        assert_eq!(
            (rollout.pods, rollout.ready, rollout.ready_at),
            (3, 2, Some(later + POD_START)),
            "the new Pod starts, the others stay ready"
        );
        rollout.observe_pods(&web, false, later);
        assert_eq!((rollout.pods, rollout.ready, rollout.ready_at), (2, 2, None));

        let unpullable = deployment(2, "example.invalid/web:1", json!({}));
        rollout.observe_pods(&unpullable, true, later);
        assert_eq!((rollout.pods, rollout.ready, rollout.ready_at), (2, 0, None));
        rollout.observe_pods(&unpullable, false, later + 10 * POD_START);
        assert_eq!(rollout.ready, 0, "never ready");
    }

    #[test]
    fn without_a_deadline_there_is_no_progressing_condition() {
        let mut endless = deployment(2, "nginx:1", json!({}));
        endless["spec"]["progressDeadlineSeconds"] = json!(NO_PROGRESS_DEADLINE);
        let outcome = sync_once(&endless, true, false);
        let types: Vec<&Value> = outcome.status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|condition| &condition["type"])
            .collect();
        assert_eq!(types, [&json!("Available")]);
        assert_eq!((outcome.progressed, outcome.awaiting_deadline), (false, false));
    }
}
