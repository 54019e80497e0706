//! An emulation of kube-controller-manager's Job controller for Jobs of one
//! Pod (completions 1, parallelism 1, the only Jobs Hoist creates), with
//! Pods whose outcome the Job's own spec decides, so the same Job ends the
//! same way here and on a real cluster:
//!
//! - a Pod whose image cannot be pulled (registry host ending in
//!   `.invalid`, as for Deployments) never starts: the Job runs until
//!   `activeDeadlineSeconds`, then fails with `DeadlineExceeded`;
//! - a Pod whose container runs `sh -c "exit N"` (command, or command `sh`
//!   `-c` and args `exit N`) ends after [`POD_START`] with exit code N: 0
//!   completes the Job, anything else is a failed Pod;
//! - a Pod running anything else fails after [`POD_START`] (the stand-in runs
//!   no containers: it refuses to pretend a command succeeded).
//!
//! A failed Pod is replaced after the controller's back-off (10 s, doubling
//! per failure, at most 6 minutes) until `backoffLimit` (default 6) failures
//! are exceeded: then the Job fails with `BackoffLimitExceeded`. The status
//! carries what the real controller writes: `startTime`, `active`,
//! `succeeded`, `failed`, `ready`, `terminating`, `uncountedTerminatedPods`,
//! `completionTime`, and the conditions `SuccessCriteriaMet` then `Complete`,
//! or `FailureTarget` then `Failed`, with the real reasons and messages.
//! No Pod objects are stored.

use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::deployments::{POD_START, can_pull};
use crate::meta;
use crate::schema::FieldError;
use crate::status::{FieldReason, field_error};
use crate::store::{EventType, ObjectKey, Store, StoredEvent, wake_at};
use crate::workloads::validate_pod_spec;

pub(crate) const GROUP: &str = "batch";
pub(crate) const PLURAL: &str = "jobs";

/// The API server's default `spec.backoffLimit`.
const DEFAULT_BACKOFF_LIMIT: i64 = 6;
/// The Job controller's first back-off before replacing a failed Pod.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// Its longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(360);

/// Defaults of the real server the controller depends on: a Pod template's
/// `restartPolicy` (Always, which validation then refuses for a Job),
/// `backoffLimit`, `completions`, `parallelism`.
pub(crate) fn apply_defaults(job: &mut Value) {
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, default) in [
        ("backoffLimit", DEFAULT_BACKOFF_LIMIT),
        ("completions", 1),
        ("parallelism", 1),
    ] {
        spec.entry(field).or_insert(json!(default));
    }
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod.entry("restartPolicy").or_insert(json!("Always"));
    }
}

/// The real server's refusals the emulation relies on: a Pod template that
/// restarts always, and Jobs of more than one Pod (which it does not run).
pub(crate) fn validate(job: &Value) -> Vec<FieldError> {
    let mut errors = validate_pod_spec(
        &job["spec"]["template"]["spec"],
        "spec.template.spec",
        &["OnFailure", "Never"],
    );
    for field in ["completions", "parallelism"] {
        let value = &job["spec"][field];
        if value.as_i64().is_some_and(|n| n != 1) {
            errors.push(field_error(
                &format!("spec.{field}"),
                FieldReason::Forbidden,
                "the stand-in's Job controller runs Jobs of one Pod only",
                Some(value),
            ));
        }
    }
    errors
}

/// How the container of a Job's Pod ends, read from the Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodOutcome {
    /// Its image cannot be pulled: it never starts.
    NeverStarts,
    /// It exits with this code after starting.
    Exits(i64),
}

fn pod_outcome(job: &Value) -> PodOutcome {
    let containers = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if containers
        .iter()
        .any(|c| !c["image"].as_str().is_some_and(can_pull))
    {
        return PodOutcome::NeverStarts;
    }
    let words = |field: &str, container: &Value| -> Vec<String> {
        container[field]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let exit = |container: &Value| -> i64 {
        let line: Vec<String> = [words("command", container), words("args", container)].concat();
        match line.as_slice() {
            [sh, c, script] if sh == "sh" && c == "-c" => script
                .trim()
                .strip_prefix("exit ")
                .and_then(|code| code.trim().parse::<i64>().ok())
                .unwrap_or(127),
            _ => 127,
        }
    };
    // The Pod fails when any container does.
    let code = containers.iter().map(exit).find(|code| *code != 0).unwrap_or(0);
    PodOutcome::Exits(code)
}

/// One Job's run, as the real controller tracks it through its Pods.
struct Run {
    /// When the controller first saw the Job (`status.startTime`).
    started: Instant,
    start_time: String,
    /// When the current Pod is created (after a back-off, in the future).
    pod_created: Instant,
    failed: i64,
    /// Set once the Job finished: (`conditions`, `succeeded`, `completionTime`).
    finished: Option<(Value, i64, Option<String>)>,
    timer: Option<(u64, AbortHandle)>,
}

fn condition(kind: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now,
    })
}

fn backoff(failures: i64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF)
}

impl Run {
    /// Moves the run forward to `now`; answers when it must be looked at next.
    fn advance(&mut self, job: &Value, now: Instant) -> Option<Instant> {
        let deadline = job["spec"]["activeDeadlineSeconds"]
            .as_u64()
            .map(|seconds| self.started + Duration::from_secs(seconds));
        let backoff_limit = job["spec"]["backoffLimit"]
            .as_i64()
            .unwrap_or(DEFAULT_BACKOFF_LIMIT);
        let outcome = pod_outcome(job);
        loop {
            if self.finished.is_some() {
                return None;
            }
            let pod_ends = match outcome {
                PodOutcome::NeverStarts => None,
                PodOutcome::Exits(_) => Some(self.pod_created + POD_START),
            };
            let next = match (deadline, pod_ends) {
                (Some(d), Some(p)) => d.min(p),
                (d, p) => d.or(p)?,
            };
            if next > now {
                return Some(next);
            }
            let stamp = meta::now();
            if deadline.is_some_and(|d| d <= next && pod_ends.is_none_or(|p| d <= p)) {
                let message = "Job was active longer than specified deadline";
                self.finished = Some((
                    json!([
                        condition("FailureTarget", "DeadlineExceeded", message, &stamp),
                        condition("Failed", "DeadlineExceeded", message, &stamp),
                    ]),
                    0,
                    None,
                ));
                continue;
            }
            match outcome {
                PodOutcome::Exits(0) => {
                    let message = "Reached expected number of succeeded pods";
                    self.finished = Some((
                        json!([
                            condition("SuccessCriteriaMet", "CompletionsReached", message, &stamp),
                            condition("Complete", "CompletionsReached", message, &stamp),
                        ]),
                        1,
                        Some(stamp),
                    ));
                }
                _ => {
                    self.failed += 1;
                    if self.failed > backoff_limit {
                        let message = "Job has reached the specified backoff limit";
                        self.finished = Some((
                            json!([
                                condition("FailureTarget", "BackoffLimitExceeded", message, &stamp),
                                condition("Failed", "BackoffLimitExceeded", message, &stamp),
                            ]),
                            0,
                            None,
                        ));
                    } else {
                        self.pod_created = next + backoff(self.failed);
                    }
                }
            }
        }
    }

    fn status(&self, now: Instant) -> Value {
        let mut status = json!({
            "startTime": self.start_time,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        });
        if self.failed > 0 {
            status["failed"] = json!(self.failed);
        }
        match &self.finished {
            Some((conditions, succeeded, completion)) => {
                status["conditions"] = conditions.clone();
                if *succeeded > 0 {
                    status["succeeded"] = json!(succeeded);
                }
                if let Some(completion) = completion {
                    status["completionTime"] = json!(completion);
                }
            }
            None => {
                // During a back-off no Pod exists.
                status["active"] = json!(if self.pod_created <= now { 1 } else { 0 });
            }
        }
        status
    }
}

/// The controller's state: one [`Run`] per Job, and the timers that look
/// at a Job again when its Pod ends, a back-off ends or its deadline passes.
pub(crate) struct JobController {
    store: Weak<Mutex<Store>>,
    runs: BTreeMap<ObjectKey, Run>,
    next_timer: u64,
}

impl Drop for JobController {
    fn drop(&mut self) {
        for run in self.runs.values() {
            if let Some((_, timer)) = &run.timer {
                timer.abort();
            }
        }
    }
}

impl JobController {
    pub fn new(store: Weak<Mutex<Store>>) -> Self {
        JobController {
            store,
            runs: BTreeMap::new(),
            next_timer: 0,
        }
    }

    /// Takes note of a stored change of a Job; answers whether it calls for
    /// a sync (a new Job: a Job's Pod template cannot change).
    pub fn observe(&mut self, event: &StoredEvent) -> bool {
        let key = (
            meta::namespace(&event.object).to_owned(),
            meta::name(&event.object).to_owned(),
        );
        match event.event_type {
            EventType::Added => true,
            EventType::Modified => false,
            EventType::Deleted => {
                if let Some(Run {
                    timer: Some((_, timer)),
                    ..
                }) = self.runs.remove(&key)
                {
                    timer.abort();
                }
                false
            }
        }
    }

    pub fn is_current_timer(&self, key: &ObjectKey, id: u64) -> bool {
        self.runs
            .get(key)
            .and_then(|run| run.timer.as_ref())
            .is_some_and(|(current, _)| *current == id)
    }

    /// Syncs a stored Job; answers the status to write and arms its timer.
    pub fn sync(&mut self, job: &Value) -> Value {
        let key = (meta::namespace(job).to_owned(), meta::name(job).to_owned());
        let now = Instant::now();
        let run = self.runs.entry(key.clone()).or_insert_with(|| Run {
            started: now,
            start_time: meta::now(),
            pod_created: now,
            failed: 0,
            finished: None,
            timer: None,
        });
        if let Some((_, timer)) = run.timer.take() {
            timer.abort();
        }
        let wake = run.advance(job, now);
        let status = run.status(now);
        if let Some(at) = wake {
            self.next_timer += 1;
            let id = self.next_timer;
            let timer = wake_at(&self.store, at, key.clone(), id, Store::job_timer_fired);
            run.timer = Some((id, timer));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(command: Value, image: &str, backoff_limit: i64, deadline: Option<u64>) -> Value {
        let mut job = json!({
            "metadata": {"name": "verify", "namespace": "shop"},
            "spec": {
                "backoffLimit": backoff_limit,
                "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "verify", "image": image, "command": command}
                ]}}
            }
        });
        if let Some(deadline) = deadline {
            job["spec"]["activeDeadlineSeconds"] = json!(deadline);
        }
        job
    }

    fn run(now: Instant) -> Run {
        Run {
            started: now,
            start_time: "2026-12-02T10:00:00Z".into(),
            pod_created: now,
            failed: 0,
            finished: None,
            timer: None,
        }
    }

    fn reasons(status: &Value) -> Vec<(String, String)> {
        status["conditions"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|c| {
                        (
                            c["type"].as_str().unwrap().to_owned(),
                            c["reason"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn exit_zero_completes_after_the_pod_ran() {
        let job = job(json!(["sh", "-c", "exit 0"]), "busybox:1.36", 0, None);
        let start = Instant::now();
        let mut run = run(start);
        assert_eq!(run.advance(&job, start), Some(start + POD_START));
        assert_eq!(run.status(start)["active"], 1);
        assert_eq!(run.advance(&job, start + POD_START), None);
        let status = run.status(start + POD_START);
        assert_eq!(
            reasons(&status),
            vec![
                ("SuccessCriteriaMet".into(), "CompletionsReached".into()),
                ("Complete".into(), "CompletionsReached".into())
            ]
        );
        assert_eq!(
            (status["succeeded"].clone(), status.get("active")),
            (json!(1), None)
        );
    }

    #[test]
    fn failures_are_retried_after_a_doubling_back_off_until_the_limit() {
        let job = job(json!(["sh", "-c", "exit 3"]), "busybox:1.36", 2, None);
        let start = Instant::now();
        let mut run = run(start);
        let first_end = start + POD_START;
        let second_start = first_end + Duration::from_secs(10);
        assert_eq!(run.advance(&job, first_end), Some(second_start + POD_START));
        assert_eq!(
            (run.failed, run.status(first_end)["active"].clone()),
            (1, json!(0))
        );
        let third_start = second_start + POD_START + Duration::from_secs(20);
        assert_eq!(
            run.advance(&job, second_start + POD_START),
            Some(third_start + POD_START)
        );
        assert_eq!(run.advance(&job, third_start + POD_START), None);
        let status = run.status(third_start + POD_START);
        assert_eq!(status["failed"], 3);
        assert_eq!(
            reasons(&status),
            vec![
                ("FailureTarget".into(), "BackoffLimitExceeded".into()),
                ("Failed".into(), "BackoffLimitExceeded".into())
            ]
        );
    }

    #[test]
    fn a_pod_that_never_starts_runs_into_the_deadline_and_other_commands_fail() {
        let stuck = job(
            json!(["sh", "-c", "exit 0"]),
            "example.invalid/runner:1",
            0,
            Some(2),
        );
        let start = Instant::now();
        let mut run_stuck = run(start);
        assert_eq!(
            run_stuck.advance(&stuck, start),
            Some(start + Duration::from_secs(2))
        );
        assert_eq!(run_stuck.advance(&stuck, start + Duration::from_secs(2)), None);
        assert_eq!(
            reasons(&run_stuck.status(start + Duration::from_secs(2)))[1],
            ("Failed".into(), "DeadlineExceeded".into())
        );
        let other = job(json!(["/bin/run-tests"]), "busybox:1.36", 0, None);
        assert_eq!(pod_outcome(&other), PodOutcome::Exits(127));
        let split = {
            let mut job = job(json!(["sh", "-c"]), "busybox:1.36", 0, None);
            job["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["exit 1"]);
            job
        };
        assert_eq!(pod_outcome(&split), PodOutcome::Exits(1));
    }

    #[test]
    fn a_job_that_restarts_always_or_runs_several_pods_is_refused() {
        let mut job =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}});
        apply_defaults(&mut job);
        let messages: Vec<String> = validate(&job).into_iter().map(|e| e.message).collect();
        assert_eq!(
            messages,
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".to_string()]
        );
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        job["spec"]["completions"] = json!(2);
        assert_eq!(validate(&job).len(), 1);
    }
}
