//! An emulation of the Argo Rollouts controller (`argoproj.io/v1alpha1`
//! `rollouts`), run once a test installs the project's Rollout CRD
//! (`crds/rollouts.yaml`) with [`crate::StandIn::install_argo_rollouts`]. It
//! writes the status fields Argo CD's Rollout health check and `kubectl argo
//! rollouts` read, in Argo Rollouts' shape, with the Pods of
//! [`crate::workloads::Pod`].
//!
//! Canary: a first template, or one equal to the stable one, is fully
//! promoted at once; a new one walks `spec.strategy.canary.steps`:
//! `setWeight` scales the canary to `ceil(weight × replicas / 100)` Pods and
//! waits for them to be ready; `pause: {}` pauses with `CanaryPauseStep`
//! until `status.pauseConditions` is cleared (`kubectl argo rollouts
//! promote`); `pause: {duration}` pauses that long. After the last step the
//! canary becomes stable. `status.abort: true` (`kubectl argo rollouts
//! abort`) scales the canary away and degrades the Rollout; a canary that
//! makes no progress for `spec.progressDeadlineSeconds` (600) degrades it
//! with `ProgressDeadlineExceeded`. Blue-green: the new Pods start beside the
//! active ones and, once ready, are promoted (`autoPromotionEnabled`, the
//! default) or paused with `BlueGreenPause` until promoted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::deployments::{condition, pods_can_start, scaled, set_condition, template_hash};
use crate::emulation::{Emulation, Synced, generation_changed, object_key};
use crate::meta;
use crate::resources::ResourceKey;
use crate::store::{ObjectKey, StoredEvent};
use crate::workloads::{Pod, next_ready};

pub(crate) const GROUP: &str = "argoproj.io";
pub(crate) const PLURAL: &str = "rollouts";

/// The field manager of the Argo Rollouts controller's status updates.
const MANAGER: &str = "rollouts-controller";

/// Argo's default `spec.progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: u64 = 600;

/// The status fields a client writes to steer a Rollout (`kubectl argo
/// rollouts promote` and `abort`).
const STEERING: [&str; 4] = ["pauseConditions", "controllerPause", "abort", "currentStepIndex"];

/// A Go duration of a pause step (`30s`, `1m`, `1h`, `500ms`) or a number of seconds.
fn pause_duration(value: &Value) -> Option<Duration> {
    if let Some(seconds) = value.as_u64() {
        return Some(Duration::from_secs(seconds));
    }
    let text = value.as_str()?;
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number * 60)),
        "h" => Some(Duration::from_secs(number * 3600)),
        _ => None,
    }
}

/// `matchLabels` of the selector as the `status.selector` label query.
fn selector_text(rollout: &Value) -> String {
    rollout["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Grows or shrinks `pods` to `count`; new Pods start `now`.
fn scale(pods: &mut Vec<Pod>, count: usize, revision: &str, can_start: bool, now: Instant) {
    pods.truncate(count);
    while pods.len() < count {
        pods.push(Pod::start_of(revision, can_start, now));
    }
}

fn ready(pods: &[Pod], now: Instant) -> usize {
    pods.iter().filter(|pod| pod.is_ready(now)).count()
}

/// What the controller knows of one Rollout beyond its object: the stable
/// and the canary (or preview) Pods, the revisions, the running pause, and
/// when progress was last made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Track {
    stable_hash: String,
    stable_can_start: bool,
    stable: Vec<Pod>,
    current_hash: String,
    canary: Vec<Pod>,
    /// `rollout.argoproj.io/revision`: one more for each new template.
    revision: u64,
    /// The pause of the current step: when it began, by the clock and as text.
    pause: Option<(Instant, String)>,
    progress_at: Instant,
    /// `(replicas, updated, ready, step)` of the last sync, to see progress.
    last_counts: (usize, usize, usize, usize),
}

/// How one sync ends for the phase and the conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Progressing,
    Paused,
    Healthy,
    Aborted,
    TimedOut,
}

impl Track {
    /// The state before the first sync: the first template is stable at once.
    pub fn new(rollout: &Value, now: Instant) -> Track {
        let hash = template_hash(&json!({"spec": {"template": rollout["spec"]["template"]}}));
        Track {
            stable_hash: hash.clone(),
            stable_can_start: pods_can_start(rollout),
            stable: Vec::new(),
            current_hash: hash,
            canary: Vec::new(),
            revision: 1,
            pause: None,
            progress_at: now,
            last_counts: (0, 0, 0, 0),
        }
    }

    pub fn sync(&mut self, rollout: &Value, now: Instant) -> Synced {
        let spec = &rollout["spec"];
        let old = &rollout["status"];
        let replicas = usize::try_from(spec["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
        let hash = template_hash(&json!({"spec": {"template": spec["template"]}}));
        let can_start = pods_can_start(rollout);
        let steps: Vec<Value> = spec["strategy"]["canary"]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let blue_green = spec["strategy"]["blueGreen"].is_object();
        let mut step = usize::try_from(old["currentStepIndex"].as_i64().unwrap_or(0)).unwrap_or(0);
        let mut abort = old["abort"].as_bool().unwrap_or(false);
        let mut pause_conditions = old["pauseConditions"].as_array().cloned().unwrap_or_default();
        let mut controller_pause = old["controllerPause"].as_bool().unwrap_or(false);

        let new_template = hash != self.current_hash;
        if new_template {
            // A new template: its canary starts over, an abort is forgotten.
            self.current_hash = hash.clone();
            self.canary.clear();
            self.revision += 1;
            self.pause = None;
            self.progress_at = now;
            step = 0;
            abort = false;
            pause_conditions.clear();
            controller_pause = false;
        }

        let mut stage = Stage::Progressing;
        let mut wake = None;
        if hash == self.stable_hash {
            self.canary.clear();
            self.pause = None;
            step = steps.len();
            abort = false;
            pause_conditions.clear();
            controller_pause = false;
        } else if abort {
            self.canary.clear();
            self.pause = None;
            pause_conditions.clear();
            controller_pause = false;
            stage = Stage::Aborted;
        } else if blue_green {
            scale(&mut self.canary, replicas, &hash, can_start, now);
            if ready(&self.canary, now) == replicas {
                let auto = spec["strategy"]["blueGreen"]["autoPromotionEnabled"]
                    .as_bool()
                    .unwrap_or(true);
                let promoted = controller_pause && pause_conditions.is_empty();
                if auto || promoted {
                    self.promote(replicas, can_start);
                    controller_pause = false;
                    pause_conditions.clear();
                } else {
                    self.hold("BlueGreenPause", &mut pause_conditions, now);
                    controller_pause = true;
                    stage = Stage::Paused;
                }
            }
        } else {
            while step < steps.len() {
                let current = &steps[step];
                if let Some(weight) = current["setWeight"].as_u64() {
                    let weight = usize::try_from(weight.min(100)).unwrap_or(100);
                    let canary = (weight * replicas).div_ceil(100);
                    scale(&mut self.canary, canary, &hash, can_start, now);
                    let stable = replicas.saturating_sub(canary);
                    scale(
                        &mut self.stable,
                        stable,
                        &self.stable_hash,
                        self.stable_can_start,
                        now,
                    );
                    if ready(&self.canary, now) < canary {
                        break;
                    }
                } else if current.get("pause").is_some() {
                    let duration = pause_duration(&current["pause"]["duration"]);
                    let resumed = controller_pause && pause_conditions.is_empty() && self.pause.is_some();
                    let elapsed = match (&self.pause, duration) {
                        (Some((started, _)), Some(duration)) => (*started + duration <= now).then_some(()),
                        _ => None,
                    };
                    if !resumed && elapsed.is_none() {
                        self.hold("CanaryPauseStep", &mut pause_conditions, now);
                        controller_pause = true;
                        stage = Stage::Paused;
                        wake = self
                            .pause
                            .as_ref()
                            .zip(duration)
                            .map(|((started, _), duration)| *started + duration);
                        break;
                    }
                    self.pause = None;
                    pause_conditions.clear();
                    controller_pause = false;
                }
                step += 1;
            }
            if step >= steps.len() {
                self.promote(replicas, can_start);
            }
        }
        if self.canary.is_empty() {
            scale(
                &mut self.stable,
                replicas,
                &self.stable_hash,
                self.stable_can_start,
                now,
            );
        }

        let updated_pods: &[Pod] = if hash == self.stable_hash {
            &self.stable
        } else {
            &self.canary
        };
        let updated = updated_pods.len();
        let updated_ready = ready(updated_pods, now);
        let total = self.stable.len() + self.canary.len();
        let total_ready = ready(&self.stable, now) + ready(&self.canary, now);
        let counts = (total, updated, total_ready, step);
        if counts != self.last_counts {
            self.progress_at = now;
            self.last_counts = counts;
        }
        let complete = hash == self.stable_hash && updated_ready == replicas && total == replicas;
        if complete && stage == Stage::Progressing {
            stage = Stage::Healthy;
        }
        let deadline = Duration::from_secs(
            spec["progressDeadlineSeconds"]
                .as_u64()
                .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
        );
        let timed_out = !new_template
            && old["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|condition| condition["reason"] == "ProgressDeadlineExceeded");
        if stage == Stage::Progressing {
            if timed_out || self.progress_at + deadline <= now {
                stage = Stage::TimedOut;
            } else {
                let at = self.progress_at + deadline;
                wake = Some(wake.map_or(at, |other: Instant| other.min(at)));
            }
        }
        let pods = self.stable.iter().chain(&self.canary);
        if let Some(at) = next_ready(pods, now) {
            wake = Some(wake.map_or(at, |other| other.min(at)));
        }

        let status = self.status(
            rollout,
            &Counts {
                replicas: total,
                updated,
                ready: total_ready,
                desired: replicas,
            },
            &Steering {
                step: (!steps.is_empty() && !blue_green).then_some(step),
                abort,
                pause_conditions,
                controller_pause,
            },
            stage,
        );
        Synced { status, wake }
    }

    /// The canary (or preview) becomes stable.
    fn promote(&mut self, replicas: usize, can_start: bool) {
        self.stable = std::mem::take(&mut self.canary);
        self.stable_hash = self.current_hash.clone();
        self.stable_can_start = can_start;
        self.stable.truncate(replicas);
        self.pause = None;
    }

    /// Pauses (once) with `reason`, as the controller adds a pause condition.
    fn hold(&mut self, reason: &str, pause_conditions: &mut Vec<Value>, now: Instant) {
        if self.pause.is_none() {
            self.pause = Some((now, meta::now()));
        }
        if pause_conditions.is_empty()
            && let Some((_, since)) = &self.pause
        {
            pause_conditions.push(json!({"reason": reason, "startTime": since}));
        }
    }

    fn status(&self, rollout: &Value, counts: &Counts, steering: &Steering, stage: Stage) -> Value {
        let old = &rollout["status"];
        let now = meta::now();
        let replica_set = format!("{}-{}", meta::name(rollout), self.current_hash);
        let mut conditions: Vec<Value> = old["conditions"].as_array().cloned().unwrap_or_default();
        let progressing = match stage {
            Stage::Healthy => condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet {replica_set:?} has successfully progressed."),
                &now,
            ),
            Stage::Paused => condition(
                "Progressing",
                "Unknown",
                "RolloutPaused",
                "Rollout is paused".to_owned(),
                &now,
            ),
            Stage::Aborted => condition(
                "Progressing",
                "False",
                "RolloutAborted",
                format!("Rollout aborted update to revision {}", self.revision),
                &now,
            ),
            Stage::TimedOut => condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet {replica_set:?} has timed out progressing."),
                &now,
            ),
            Stage::Progressing => condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet {replica_set:?} is progressing."),
                &now,
            ),
        };
        set_condition(&mut conditions, progressing);
        let max_unavailable = scaled(
            &rollout["spec"]["strategy"]["canary"]["maxUnavailable"],
            i64::try_from(counts.desired).unwrap_or(i64::MAX),
            false,
        );
        let minimum = i64::try_from(counts.desired).unwrap_or(i64::MAX) - max_unavailable;
        let available = i64::try_from(counts.ready).unwrap_or(i64::MAX) >= minimum;
        let (status, message) = if available {
            ("True", "Rollout has minimum availability")
        } else {
            ("False", "Rollout does not have minimum availability")
        };
        set_condition(
            &mut conditions,
            condition("Available", status, "AvailableReason", message.to_owned(), &now),
        );
        let paused = if stage == Stage::Paused {
            condition(
                "Paused",
                "True",
                "RolloutPaused",
                "Rollout is paused".to_owned(),
                &now,
            )
        } else {
            condition(
                "Paused",
                "False",
                "RolloutResumed",
                "Rollout is resumed".to_owned(),
                &now,
            )
        };
        set_condition(&mut conditions, paused);
        let healthy = if stage == Stage::Healthy {
            condition(
                "Healthy",
                "True",
                "RolloutHealthy",
                "Rollout is healthy".to_owned(),
                &now,
            )
        } else {
            condition(
                "Healthy",
                "False",
                "RolloutHealthy",
                "Rollout is not healthy".to_owned(),
                &now,
            )
        };
        set_condition(&mut conditions, healthy);

        let (phase, message) = match stage {
            Stage::Aborted | Stage::TimedOut => {
                let progressing = conditions
                    .iter()
                    .find(|condition| condition["type"] == "Progressing")
                    .cloned()
                    .unwrap_or(Value::Null);
                (
                    "Degraded",
                    format!(
                        "{}: {}",
                        progressing["reason"].as_str().unwrap_or_default(),
                        progressing["message"].as_str().unwrap_or_default()
                    ),
                )
            }
            Stage::Paused => (
                "Paused",
                steering
                    .pause_conditions
                    .first()
                    .and_then(|pause| pause["reason"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Stage::Healthy => ("Healthy", String::new()),
            Stage::Progressing if counts.updated < counts.desired => {
                ("Progressing", "more replicas need to be updated".to_owned())
            }
            Stage::Progressing if counts.ready < counts.updated => (
                "Progressing",
                "updated replicas are still becoming available".to_owned(),
            ),
            Stage::Progressing if counts.replicas > counts.updated => {
                ("Progressing", "old replicas are pending termination".to_owned())
            }
            Stage::Progressing => ("Progressing", "waiting for all steps to complete".to_owned()),
        };

        // Go's `omitempty` leaves out zero counts, false flags and empty strings.
        let mut status = Map::new();
        if steering.abort {
            status.insert("abort".to_owned(), json!(true));
            let aborted_at = old["abortedAt"].as_str().map_or(now.clone(), str::to_owned);
            status.insert("abortedAt".to_owned(), json!(aborted_at));
        }
        if !steering.pause_conditions.is_empty() {
            status.insert(
                "pauseConditions".to_owned(),
                Value::Array(steering.pause_conditions.clone()),
            );
        }
        if steering.controller_pause {
            status.insert("controllerPause".to_owned(), json!(true));
        }
        status.insert("currentPodHash".to_owned(), json!(self.current_hash));
        if let Some(step) = steering.step {
            status.insert("currentStepIndex".to_owned(), json!(step));
            let steps = &rollout["spec"]["strategy"]["canary"]["steps"];
            status.insert(
                "currentStepHash".to_owned(),
                json!(template_hash(&json!({"spec": {"template": steps}}))),
            );
        }
        for (field, count) in [
            ("replicas", counts.replicas),
            ("updatedReplicas", counts.updated),
            ("readyReplicas", counts.ready),
            ("availableReplicas", counts.ready),
        ] {
            if count > 0 {
                status.insert(field.to_owned(), json!(count));
            }
        }
        status.insert(
            "observedGeneration".to_owned(),
            json!(
                rollout["metadata"]["generation"]
                    .as_i64()
                    .unwrap_or(0)
                    .to_string()
            ),
        );
        status.insert("conditions".to_owned(), Value::Array(conditions));
        status.insert("canary".to_owned(), json!({}));
        let blue_green = if rollout["spec"]["strategy"]["blueGreen"].is_object() {
            json!({"activeSelector": self.stable_hash})
        } else {
            json!({})
        };
        status.insert("blueGreen".to_owned(), blue_green);
        status.insert("selector".to_owned(), json!(selector_text(rollout)));
        status.insert("stableRS".to_owned(), json!(self.stable_hash));
        status.insert("phase".to_owned(), json!(phase));
        if !message.is_empty() {
            status.insert("message".to_owned(), json!(message));
        }
        Value::Object(status)
    }
}

/// The Pod counts of one sync.
struct Counts {
    replicas: usize,
    updated: usize,
    ready: usize,
    desired: usize,
}

/// The status fields clients steer with, as the sync leaves them.
struct Steering {
    step: Option<usize>,
    abort: bool,
    pause_conditions: Vec<Value>,
    controller_pause: bool,
}

/// The emulated Argo Rollouts controller: one [`Track`] per Rollout.
#[derive(Default)]
pub(crate) struct RolloutController {
    tracks: BTreeMap<ObjectKey, Track>,
}

impl Emulation for RolloutController {
    fn resource(&self) -> ResourceKey {
        ResourceKey::of(GROUP, PLURAL)
    }

    fn manager(&self) -> &'static str {
        MANAGER
    }

    /// A new generation, or a client's change of the steering status fields.
    fn wants_sync(&self, event: &StoredEvent) -> bool {
        generation_changed(event)
            || event.previous.as_ref().is_some_and(|previous| {
                STEERING
                    .iter()
                    .any(|field| previous["status"][field] != event.object["status"][field])
            })
    }

    fn sync(&mut self, object: &Value, now: Instant) -> Synced {
        self.tracks
            .entry(object_key(object))
            .or_insert_with(|| Track::new(object, now))
            .sync(object, now)
    }

    fn forget(&mut self, key: &ObjectKey) {
        self.tracks.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployments::POD_START;
    use crate::workloads::counts;

    fn web(image: &str, steps: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "shop", "generation": 1},
            "spec": {
                "replicas": 4,
                "progressDeadlineSeconds": 5,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "app", "image": image}]}},
                "strategy": {"canary": {"steps": steps}},
            },
        })
    }

    /// Runs syncs as the store would: the written status is stored, timers fire.
    fn run(track: &mut Track, rollout: &mut Value, at: Instant) -> Synced {
        let synced = track.sync(rollout, at);
        rollout["status"] = synced.status.clone();
        synced
    }

    fn settle(track: &mut Track, rollout: &mut Value, mut at: Instant) -> (Synced, Instant) {
        loop {
            let synced = run(track, rollout, at);
            match synced.wake {
                Some(next) if next <= at + POD_START => at = next,
                _ => return (synced, at),
            }
        }
    }

    const FIELDS: [&str; 4] = [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ];

    #[test]
    fn durations_are_go_durations_or_seconds() {
        assert_eq!(pause_duration(&json!(30)), Some(Duration::from_secs(30)));
        assert_eq!(pause_duration(&json!("2m")), Some(Duration::from_secs(120)));
        assert_eq!(pause_duration(&json!("500ms")), Some(Duration::from_millis(500)));
        assert_eq!(pause_duration(&json!("1d")), None);
    }

    #[test]
    fn a_canary_pauses_at_a_step_then_a_promotion_completes_it() {
        let steps = json!([{"setWeight": 25}, {"pause": {}}]);
        let mut rollout = web("nginx:1", steps.clone());
        let start = Instant::now();
        let mut track = Track::new(&rollout, start);
        let (first, at) = settle(&mut track, &mut rollout, start);
        assert_eq!(first.status["phase"], "Healthy");
        assert_eq!(counts(&first.status, FIELDS), [4, 4, 4, 4]);
        assert_eq!(
            first.status["currentStepIndex"], 2,
            "a first template skips the steps"
        );

        rollout["spec"] = web("nginx:2", steps)["spec"].clone();
        rollout["metadata"]["generation"] = json!(2);
        let (paused, at) = settle(&mut track, &mut rollout, at);
        assert_eq!(
            (
                &paused.status["phase"],
                &paused.status["message"],
                &paused.status["currentStepIndex"]
            ),
            (&json!("Paused"), &json!("CanaryPauseStep"), &json!(1))
        );
        assert_eq!(counts(&paused.status, FIELDS), [4, 1, 4, 4]);
        assert_eq!(paused.status["pauseConditions"][0]["reason"], "CanaryPauseStep");
        assert_eq!(paused.status["controllerPause"], true);
        assert_ne!(paused.status["stableRS"], paused.status["currentPodHash"]);
        assert_eq!(paused.wake, None, "an indefinite pause waits for a promotion");

        rollout["status"]["pauseConditions"] = Value::Null;
        let (promoted, _) = settle(&mut track, &mut rollout, at);
        assert_eq!(promoted.status["phase"], "Healthy");
        assert_eq!(promoted.status["stableRS"], promoted.status["currentPodHash"]);
        assert_eq!(promoted.status["currentStepIndex"], 2);
        assert_eq!(promoted.status.get("controllerPause"), None);
    }

    #[test]
    fn an_abort_degrades_and_an_unpullable_canary_times_out() {
        let steps = json!([{"setWeight": 50}, {"pause": {"duration": "1h"}}]);
        let mut rollout = web("nginx:1", steps.clone());
        let start = Instant::now();
        let mut track = Track::new(&rollout, start);
        let (_, at) = settle(&mut track, &mut rollout, start);
        rollout["spec"] = web("example.invalid/web:2", steps)["spec"].clone();
        rollout["metadata"]["generation"] = json!(2);
        let (stuck, at) = settle(&mut track, &mut rollout, at);
        assert_eq!(counts(&stuck.status, FIELDS), [4, 2, 2, 2]);
        assert_eq!(stuck.status["phase"], "Progressing");
        let deadline = stuck.wake.unwrap_or(at);
        let timed_out = run(&mut track, &mut rollout, deadline);
        assert_eq!(timed_out.status["phase"], "Degraded");
        assert!(
            timed_out.status["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("ProgressDeadlineExceeded: ReplicaSet \"web-")),
            "{}",
            timed_out.status["message"]
        );

        rollout["status"]["abort"] = json!(true);
        let aborted = run(&mut track, &mut rollout, deadline);
        assert_eq!(
            (
                &aborted.status["phase"],
                &aborted.status["message"],
                &aborted.status["abort"]
            ),
            (
                &json!("Degraded"),
                &json!("RolloutAborted: Rollout aborted update to revision 2"),
                &json!(true)
            )
        );
        assert_eq!(counts(&aborted.status, FIELDS), [4, 0, 2, 2]);
    }
}
