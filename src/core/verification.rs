//! The verification gate: steps run in order once a rollout is healthy,
//! before the Promotion succeeds. A step is a Prometheus query measured
//! every `interval` with Argo Rollouts' analysis semantics: it passes after
//! `count` measurements, fails once failed measurements exceed
//! `failureLimit`, inconclusive ones (no sample) `inconclusiveLimit`, or
//! errors in a row `consecutiveErrorLimit`.
//!
//! Everything here is pure: the controller runs the queries the decision
//! asks for ([`DueQuery`]), turns each response into a [`Measurement`] with
//! [`measure`], and decides again with the measurements in the snapshot.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use sha2::{Digest, Sha256};

use crate::api::{
    GateState, JobCheck, JobReference, Measurement, MeasurementOutcome, PrometheusCheck, SecretKeyReference,
    VerificationPhase, VerificationStatus, VerificationStep,
};
use crate::core::deployment::{LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT};

use super::duration;
use super::gates::Outcome;

/// Measurements kept per step. Past it the oldest errors go first, so the
/// measurements that count (at most `count`, 60) are always all kept.
pub const MAX_MEASUREMENTS: usize = 128;

/// The release a query is about, for the placeholders of its text.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub namespace: &'a str,
    pub environment: &'a str,
    pub application: &'a str,
    pub artifact: &'a str,
    pub version: &'a str,
}

/// A query the decision needs measured now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueQuery {
    pub promotion: String,
    pub step: String,
    /// The step's server, if it names one (else the operator's default).
    pub address: Option<String>,
    pub bearer_token_secret: Option<SecretKeyReference>,
    pub query: String,
    pub condition: String,
}

/// The query with the release's values in place of its placeholders.
pub fn query_text(template: &str, release: &Release<'_>) -> String {
    [
        ("{{namespace}}", release.namespace),
        ("{{environment}}", release.environment),
        ("{{application}}", release.application),
        ("{{artifact}}", release.artifact),
        ("{{version}}", release.version),
    ]
    .iter()
    .fold(template.to_string(), |text, (placeholder, value)| {
        text.replace(placeholder, value)
    })
}

/// `result <op> <number>`, read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Condition {
    op: &'static str,
    threshold: f64,
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    let rest = text
        .strip_prefix("result")
        .ok_or_else(|| format!("condition {text:?} must start with `result`"))?
        .trim_start();
    let op = ["<=", ">=", "==", "!=", "<", ">"]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("condition {text:?} must compare result with <, <=, >, >=, == or !="))?;
    let number = rest[op.len()..].trim();
    let threshold = number
        .parse::<f64>()
        .map_err(|_| format!("condition {text:?}: {number:?} is not a number"))?;
    Ok(Condition { op, threshold })
}

impl Condition {
    fn holds(&self, value: f64) -> bool {
        match self.op {
            "<" => value < self.threshold,
            "<=" => value <= self.threshold,
            ">" => value > self.threshold,
            ">=" => value >= self.threshold,
            "==" => value == self.threshold,
            _ => value != self.threshold,
        }
    }
}

/// The problems of spec.gates.verification the schema cannot see, each
/// naming its field.
pub fn problems(steps: &[VerificationStep]) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .flat_map(|(index, step)| {
            let field = format!("spec.gates.verification[{index}]");
            let mut problems = Vec::new();
            if let Some(check) = &step.prometheus {
                problems.extend(
                    parse_condition(&check.condition)
                        .err()
                        .map(|error| format!("{field}.prometheus.condition: {error}")),
                );
                problems.extend(
                    duration::parse(&check.interval)
                        .err()
                        .map(|error| format!("{field}.prometheus.interval: {error}")),
                );
            }
            if let Some(job) = &step.job {
                problems.extend(
                    duration::parse(&job.timeout)
                        .err()
                        .map(|error| format!("{field}.job.timeout: {error}")),
                );
                problems.extend(job.env.iter().enumerate().filter(|(_, v)| v.name.starts_with("HOIST_")).map(
                    |(i, v)| format!("{field}.job.env[{i}].name: {} is reserved: HOIST_ variables describe the release", v.name),
                ));
            }
            problems
        })
        .collect()
}

/// A measurement of the Prometheus query API's JSON response `body` at `at`.
pub fn measure(body: &serde_json::Value, condition: &str, at: Timestamp) -> Measurement {
    let error = |message: String| Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Error,
        value: None,
        message: Some(message),
    };
    if body["status"] != "success" {
        let reason = body["error"].as_str().unwrap_or("no error message");
        return error(format!("Prometheus refused the query: {reason}"));
    }
    let data = &body["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => {
                return Measurement {
                    at: Time(at),
                    outcome: MeasurementOutcome::Inconclusive,
                    value: None,
                    message: Some("the query returned no sample".into()),
                };
            }
            Some([one]) => &one["value"],
            Some(many) => {
                return error(format!(
                    "the query returned {} series; aggregate them to one (sum, max, avg)",
                    many.len()
                ));
            }
            None => return error("the response has no result list".into()),
        },
        other => {
            return error(format!(
                "the query returned a {}, not a scalar or a vector of one sample",
                other.unwrap_or("result of no type")
            ));
        }
    };
    let Some(text) = sample[1].as_str() else {
        return error("the sample has no value".into());
    };
    let Ok(value) = text.parse::<f64>() else {
        return error(format!("the sample value {text:?} is not a number"));
    };
    let condition = match parse_condition(condition) {
        Ok(condition) => condition,
        Err(problem) => return error(problem),
    };
    if value.is_nan() {
        return Measurement {
            at: Time(at),
            outcome: MeasurementOutcome::Inconclusive,
            value: Some(text.to_string()),
            message: Some("the query returned NaN".into()),
        };
    }
    Measurement {
        at: Time(at),
        outcome: if condition.holds(value) {
            MeasurementOutcome::Successful
        } else {
            MeasurementOutcome::Failed
        },
        value: Some(text.to_string()),
        message: None,
    }
}

/// A measurement that could not be taken (server unreachable, refused).
pub fn error(at: Timestamp, message: String) -> Measurement {
    Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Error,
        value: None,
        message: Some(message),
    }
}

/// Where verification stands after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still measuring; `due` is the query to run now, if any.
    Running {
        message: String,
        due: Option<DueQuery>,
    },
    Passed {
        message: String,
    },
    Failed {
        message: String,
    },
}

/// What a verification Job is told about the release, and where it runs.
pub struct JobContext<'a> {
    /// The namespace the Job runs in: the Environment's (and Promotion's) own.
    pub namespace: &'a str,
    /// The Promotion's uid: the Job's owner, and part of its name.
    pub promotion_uid: Option<&'a str>,
    /// (component, digest-pinned image) of the release.
    pub images: &'a [(String, String)],
    pub source_repository: Option<&'a str>,
    pub source_revision: Option<&'a str>,
    /// The verification Jobs that exist in that namespace, by name.
    pub jobs: &'a BTreeMap<String, &'a Job>,
}

/// Everything one decision of a Promotion's verification looks at.
pub struct VerificationInput<'a> {
    pub promotion: &'a str,
    pub job: JobContext<'a>,
    pub steps: &'a [VerificationStep],
    /// The statuses recorded so far (status.verification).
    pub recorded: &'a [VerificationStatus],
    /// A measurement taken for this decision, by step name.
    pub fresh: Option<(&'a str, &'a Measurement)>,
    pub release: Release<'a>,
    pub now: Timestamp,
}

/// What one decision of verification comes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// status.verification.
    pub statuses: Vec<VerificationStatus>,
    pub progress: Progress,
    /// A Job to create for the step that runs now.
    pub create: Option<Job>,
}

/// Decides verification once the rollout is healthy: the statuses to
/// record, where it stands, and the Job to create.
pub fn evaluate(input: &VerificationInput<'_>) -> Decided {
    let mut statuses = Vec::new();
    let mut progress = None;
    let mut create = None;
    for step in input.steps {
        let recorded = input.recorded.iter().find(|s| s.name == step.name);
        if progress.is_some() {
            // A step after the one running, or after a failure, waits.
            statuses.push(recorded.cloned().unwrap_or_else(|| pending(step)));
            continue;
        }
        let fresh = input
            .fresh
            .filter(|(name, _)| *name == step.name)
            .map(|(_, measurement)| measurement);
        let (status, job) = match (&step.job, &step.prometheus) {
            (Some(job), _) => job_step(input, step, job, recorded),
            (None, Some(check)) => (decide_step(input, step, check, recorded, fresh), None),
            (None, None) => (
                VerificationStatus {
                    phase: VerificationPhase::Failed,
                    message: "names neither a job nor a prometheus query; fix the Environment".into(),
                    ..pending(step)
                },
                None,
            ),
        };
        create = create.or(job);
        match status.phase {
            VerificationPhase::Passed => {}
            VerificationPhase::Failed => {
                progress = Some(Progress::Failed {
                    message: format!("step {}: {}", step.name, status.message),
                })
            }
            _ => {
                let due = step
                    .prometheus
                    .as_ref()
                    .filter(|_| {
                        status
                            .next_measurement
                            .as_ref()
                            .is_some_and(|next| next.0 <= input.now)
                    })
                    .map(|check| DueQuery {
                        promotion: input.promotion.to_string(),
                        step: step.name.clone(),
                        address: check.address.clone(),
                        bearer_token_secret: check.bearer_token_secret.clone(),
                        query: query_text(&check.query, &input.release),
                        condition: check.condition.clone(),
                    });
                progress = Some(Progress::Running {
                    message: format!("step {}: {}", step.name, status.message),
                    due,
                });
            }
        }
        statuses.push(status);
    }
    let progress = progress.unwrap_or_else(|| Progress::Passed {
        message: format!(
            "{} verification step(s) passed: {}",
            input.steps.len(),
            input
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    Decided {
        statuses,
        progress,
        create,
    }
}

fn pending(step: &VerificationStep) -> VerificationStatus {
    VerificationStatus {
        name: step.name.clone(),
        phase: VerificationPhase::Pending,
        message: "waits for the rollout and the steps before it".into(),
        query: None,
        job: None,
        measurements: Vec::new(),
        next_measurement: None,
        started_at: None,
    }
}

fn decide_step(
    input: &VerificationInput<'_>,
    step: &VerificationStep,
    check: &PrometheusCheck,
    recorded: Option<&VerificationStatus>,
    fresh: Option<&Measurement>,
) -> VerificationStatus {
    let mut status = match recorded {
        Some(recorded)
            if matches!(
                recorded.phase,
                VerificationPhase::Passed | VerificationPhase::Failed
            ) =>
        {
            return recorded.clone();
        }
        Some(recorded) if recorded.phase == VerificationPhase::Running => recorded.clone(),
        // Starting now: the first measurement is due at once.
        _ => VerificationStatus {
            name: step.name.clone(),
            phase: VerificationPhase::Running,
            message: String::new(),
            query: Some(query_text(&check.query, &input.release)),
            job: None,
            measurements: Vec::new(),
            next_measurement: Some(Time(input.now)),
            started_at: Some(Time(input.now)),
        },
    };
    let interval = match duration::parse(&check.interval) {
        Ok(interval) => interval,
        Err(problem) => {
            status.phase = VerificationPhase::Failed;
            status.message = format!("interval: {problem}; fix the Environment");
            status.next_measurement = None;
            return status;
        }
    };
    if let Some(measurement) = fresh {
        status.measurements.push(measurement.clone());
        while status.measurements.len() > MAX_MEASUREMENTS {
            let oldest_error = status
                .measurements
                .iter()
                .position(|m| m.outcome == MeasurementOutcome::Error)
                .unwrap_or(0);
            status.measurements.remove(oldest_error);
        }
        status.next_measurement = Some(Time(
            measurement.at.0.checked_add(interval).unwrap_or(measurement.at.0),
        ));
    }
    judge(check, &mut status);
    status
}

/// Sets phase and message from the measurements.
fn judge(check: &PrometheusCheck, status: &mut VerificationStatus) {
    let count = |outcome| {
        status
            .measurements
            .iter()
            .filter(|m| m.outcome == outcome)
            .count()
    };
    let successful = count(MeasurementOutcome::Successful);
    let failed = count(MeasurementOutcome::Failed);
    let inconclusive = count(MeasurementOutcome::Inconclusive);
    let errors_in_a_row = status
        .measurements
        .iter()
        .rev()
        .take_while(|m| m.outcome == MeasurementOutcome::Error)
        .count();
    let taken = successful + failed + inconclusive;
    let limit = |value: i32| usize::try_from(value).unwrap_or(0);
    let last = status.measurements.last();
    let last_value = last.and_then(|m| m.value.as_deref()).unwrap_or("none");
    let tally = format!(
        "{taken} of {} measurement(s): {successful} successful, {failed} failed, {inconclusive} inconclusive",
        check.count
    );
    let failure = if failed > limit(check.failure_limit) {
        Some(format!(
            "{failed} measurement(s) did not meet `{}` (failureLimit {}), the last was {last_value}",
            check.condition, check.failure_limit
        ))
    } else if inconclusive > limit(check.inconclusive_limit) {
        Some(format!(
            "{inconclusive} measurement(s) were inconclusive (inconclusiveLimit {}): {}",
            check.inconclusive_limit,
            last.and_then(|m| m.message.as_deref()).unwrap_or("no sample")
        ))
    } else if errors_in_a_row > limit(check.consecutive_error_limit) {
        Some(format!(
            "{errors_in_a_row} error(s) in a row (consecutiveErrorLimit {}): {}",
            check.consecutive_error_limit,
            last.and_then(|m| m.message.as_deref()).unwrap_or("unknown error")
        ))
    } else {
        None
    };
    if let Some(failure) = failure {
        status.phase = VerificationPhase::Failed;
        status.message = format!("{failure}; {tally}");
        status.next_measurement = None;
    } else if taken >= limit(check.count) {
        status.phase = VerificationPhase::Passed;
        status.message = format!("passed: {tally}");
        status.next_measurement = None;
    } else {
        status.phase = VerificationPhase::Running;
        let next = status
            .next_measurement
            .as_ref()
            .map_or_else(|| "now".to_string(), |t| t.0.to_string());
        let error = match (errors_in_a_row, last) {
            (0, _) | (_, None) => String::new(),
            (_, Some(m)) => format!("; last error: {}", m.message.as_deref().unwrap_or("unknown")),
        };
        status.message = format!(
            "{tally}; next measurement at {next} (every {}){error}",
            check.interval
        );
    }
}

/// The name of a step's Job: `<promotion>-<step>-<hash>`, a DNS label of
/// at most 63 characters. The hash is of the Promotion's uid (its name where
/// the uid is unknown) and the step, so a Promotion created again under the
/// same name, or names that read alike (`a.b`, `a-b`), never share a Job.
pub fn job_name(promotion: &str, uid: Option<&str>, step: &str) -> String {
    let readable = format!("{promotion}-{step}").replace('.', "-");
    let readable = readable[..readable.len().min(52)].trim_end_matches('-');
    let hash = Sha256::digest(format!("{}/{step}", uid.unwrap_or(promotion)).as_bytes());
    let suffix: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{readable}-{suffix}")
}

/// `COMPONENT` of HOIST_IMAGE_<COMPONENT>.
fn variable(component: &str) -> String {
    component.to_ascii_uppercase().replace('-', "_")
}

fn job_step(
    input: &VerificationInput<'_>,
    step: &VerificationStep,
    check: &JobCheck,
    recorded: Option<&VerificationStatus>,
) -> (VerificationStatus, Option<Job>) {
    if let Some(recorded) =
        recorded.filter(|r| matches!(r.phase, VerificationPhase::Passed | VerificationPhase::Failed))
    {
        return (recorded.clone(), None);
    }
    let name = job_name(input.promotion, input.job.promotion_uid, &step.name);
    let namespace = input.job.namespace;
    let logs = format!("logs: kubectl logs -n {namespace} job/{name}");
    let started = recorded
        .and_then(|r| r.started_at.clone())
        .unwrap_or(Time(input.now));
    let mut status = VerificationStatus {
        name: step.name.clone(),
        phase: VerificationPhase::Running,
        message: String::new(),
        query: None,
        job: Some(JobReference {
            namespace: namespace.to_string(),
            name: name.clone(),
        }),
        measurements: Vec::new(),
        next_measurement: None,
        started_at: Some(started.clone()),
    };
    let timeout = duration::parse(&check.timeout).unwrap_or(SignedDuration::from_mins(10));
    let Some(job) = input.job.jobs.get(&name) else {
        // A Job the API server keeps refusing (quota, admission) fails the step in time.
        if started.0.checked_add(timeout).is_ok_and(|end| input.now >= end) {
            status.phase = VerificationPhase::Failed;
            status.message = format!(
                "Job {namespace}/{name} could not be created within its timeout of {} (see the Promotion's \
                 VerificationJobRefused Events)",
                check.timeout
            );
            return (status, None);
        }
        status.message = format!("Job {namespace}/{name} created; waiting for it to run; {logs}");
        return (status, Some(verification_job(input, step, check, &name)));
    };
    let ours = job
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(LABEL_PROMOTION_UID))
        .map(String::as_str);
    if input.job.promotion_uid.is_some() && ours != input.job.promotion_uid {
        status.phase = VerificationPhase::Failed;
        status.message =
            format!("Job {namespace}/{name} exists but is not this Promotion's; delete it and promote again");
        return (status, None);
    }
    let job_status = job.status.clone().unwrap_or_default();
    let condition = |kind: &str| {
        job_status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
            .cloned()
    };
    let failed = job_status.failed.unwrap_or(0);
    let attempts = check.retries + 1;
    if condition("Complete").is_some() {
        status.phase = VerificationPhase::Passed;
        status.message = format!(
            "Job {namespace}/{name} completed{}; {logs}",
            if failed > 0 {
                format!(" after {failed} failed attempt(s)")
            } else {
                String::new()
            }
        );
    } else if let Some(failure) = condition("Failed") {
        status.phase = VerificationPhase::Failed;
        let why = match failure.reason.as_deref() {
            Some("DeadlineExceeded") => format!("ran longer than its timeout of {}", check.timeout),
            Some("BackoffLimitExceeded") => format!("{failed} of {attempts} attempt(s) failed"),
            reason => format!(
                "{}: {}",
                reason.unwrap_or("Failed"),
                failure.message.as_deref().unwrap_or("no message")
            ),
        };
        status.message = format!("Job {namespace}/{name} failed: {why}; {logs}");
    } else {
        status.message = format!(
            "Job {namespace}/{name} is running ({} active, {failed} of {attempts} attempt(s) failed so far); {logs}",
            job_status.active.unwrap_or(0)
        );
    }
    (status, None)
}

/// The Job of a job step, as Hoist creates it.
fn verification_job(
    input: &VerificationInput<'_>,
    step: &VerificationStep,
    check: &JobCheck,
    name: &str,
) -> Job {
    let release = &input.release;
    let mut env: Vec<EnvVar> = [
        ("HOIST_ARTIFACT", release.artifact),
        ("HOIST_VERSION", release.version),
        ("HOIST_APPLICATION", release.application),
        ("HOIST_ENVIRONMENT", release.environment),
        ("HOIST_NAMESPACE", release.namespace),
        ("HOIST_PROMOTION", input.promotion),
        (
            "HOIST_SOURCE_REPOSITORY",
            input.job.source_repository.unwrap_or_default(),
        ),
        (
            "HOIST_SOURCE_REVISION",
            input.job.source_revision.unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    })
    .collect();
    env.extend(input.job.images.iter().map(|(component, image)| EnvVar {
        name: format!("HOIST_IMAGE_{}", variable(component)),
        value: Some(image.clone()),
        ..Default::default()
    }));
    env.extend(check.env.iter().map(|v| EnvVar {
        name: v.name.clone(),
        value: Some(v.value.clone()),
        ..Default::default()
    }));
    let labels: BTreeMap<String, String> = [
        (LABEL_TENANT, release.namespace),
        (LABEL_ENVIRONMENT, release.environment),
        (LABEL_ROLE, VERIFICATION_ROLE),
        (LABEL_STEP, step.name.as_str()),
        (LABEL_PROMOTION_UID, input.job.promotion_uid.unwrap_or_default()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let timeout = duration::parse(&check.timeout)
        .map(|d| d.as_secs().max(1))
        .unwrap_or(600);
    let owner = input
        .job
        .promotion_uid
        .filter(|_| input.job.namespace == release.namespace)
        .map(|uid| OwnerReference {
            api_version: "hoist.dev/v1alpha1".into(),
            kind: "Promotion".into(),
            name: input.promotion.into(),
            uid: uid.into(),
            ..Default::default()
        });
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(input.job.namespace.into()),
            labels: Some(labels.clone()),
            annotations: Some([(ANNOTATION_PROMOTION.to_string(), input.promotion.to_string())].into()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(check.retries),
            active_deadline_seconds: Some(timeout),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    service_account_name: check.service_account_name.clone(),
                    containers: vec![Container {
                        name: "verify".into(),
                        image: Some(check.image.clone()),
                        command: (!check.command.is_empty()).then(|| check.command.clone()),
                        args: (!check.args.is_empty()).then(|| check.args.clone()),
                        env: Some(env),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The `hoist.dev/role` of verification Jobs.
pub const VERIFICATION_ROLE: &str = "verification";
/// The label naming a verification Job's step.
pub const LABEL_STEP: &str = "hoist.dev/verification-step";
/// The label holding the uid of a verification Job's Promotion.
pub const LABEL_PROMOTION_UID: &str = "hoist.dev/promotion-uid";
/// The annotation naming a verification Job's Promotion (names may be
/// longer than a label value).
pub const ANNOTATION_PROMOTION: &str = "hoist.dev/promotion";

/// Finished verification Jobs kept per Environment for inspection.
pub const KEPT_JOBS: usize = 10;

/// Finished verification Jobs beyond the newest [`KEPT_JOBS`], except those
/// of `running` Promotions: to delete.
pub fn jobs_to_delete<'a>(jobs: impl Iterator<Item = &'a Job>, running: &[String]) -> Vec<(String, String)> {
    let finished = |job: &Job| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            })
    };
    let mut done: Vec<&Job> = jobs
        .filter(|job| finished(job))
        .filter(|job| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PROMOTION))
                .is_none_or(|p| !running.contains(p))
        })
        .collect();
    done.sort_by_key(|job| {
        std::cmp::Reverse((
            job.metadata.creation_timestamp.clone().map(|t| t.0),
            job.metadata.name.clone(),
        ))
    });
    done.into_iter()
        .skip(KEPT_JOBS)
        .filter_map(|job| Some((job.metadata.namespace.clone()?, job.metadata.name.clone()?)))
        .collect()
}

/// The Verification gate before the rollout: what will run after it.
pub fn before_rollout(steps: &[VerificationStep]) -> Outcome {
    if steps.is_empty() {
        return Outcome::passed("no verification here");
    }
    Outcome {
        state: GateState::Pending,
        message: format!(
            "runs once the rollout is healthy: {}",
            steps
                .iter()
                .map(|s| format!(
                    "{} ({})",
                    s.name,
                    if s.job.is_some() { "Job" } else { "Prometheus" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        next_check: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<VerificationStep> {
        serde_yaml::from_str(yaml).expect("fixture parses")
    }

    fn instant(text: &str) -> Timestamp {
        text.parse().expect("instant")
    }

    const RELEASE: Release<'static> = Release {
        namespace: "shop",
        environment: "prod",
        application: "shop",
        artifact: "shop-1.4.2",
        version: "1.4.2",
    };

    fn vector(value: &str) -> serde_json::Value {
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"env": "prod"}, "value": [1795000000.0, value]}
        ]}})
    }

    #[test]
    fn placeholders_are_replaced_and_nothing_else_is_a_template() {
        assert_eq!(
            query_text(
                r#"sum(rate(errors{env="{{environment}}",ns="{{namespace}}",app="{{application}}",v="{{version}}",a="{{artifact}}"}[5m])) {{other}}"#,
                &RELEASE
            ),
            r#"sum(rate(errors{env="prod",ns="shop",app="shop",v="1.4.2",a="shop-1.4.2"}[5m])) {{other}}"#
        );
    }

    #[test]
    fn a_response_becomes_a_measurement_for_every_shape_prometheus_returns() {
        let at = instant("2026-12-02T10:00:00Z");
        let outcome = |body: serde_json::Value, condition: &str| {
            let m = measure(&body, condition, at);
            (m.outcome, m.value, m.message)
        };
        assert_eq!(
            outcome(vector("0.002"), "result < 0.01"),
            (MeasurementOutcome::Successful, Some("0.002".into()), None)
        );
        assert_eq!(
            outcome(vector("0.02"), "result < 0.01"),
            (MeasurementOutcome::Failed, Some("0.02".into()), None)
        );
        assert_eq!(
            outcome(
                serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.995"]}}),
                "result >= 0.99"
            ),
            (MeasurementOutcome::Successful, Some("0.995".into()), None)
        );
        assert_eq!(
            outcome(
                serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
                "result < 1"
            ),
            (
                MeasurementOutcome::Inconclusive,
                None,
                Some("the query returned no sample".into())
            )
        );
        assert_eq!(
            outcome(vector("NaN"), "result < 1").0,
            MeasurementOutcome::Inconclusive
        );
        let two = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "1"]}, {"metric": {}, "value": [1.0, "2"]}
        ]}});
        assert_eq!(
            outcome(two, "result < 1"),
            (
                MeasurementOutcome::Error,
                None,
                Some("the query returned 2 series; aggregate them to one (sum, max, avg)".into())
            )
        );
        assert_eq!(
            outcome(
                serde_json::json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}),
                "result < 1"
            ),
            (
                MeasurementOutcome::Error,
                None,
                Some("Prometheus refused the query: parse error at char 5".into())
            )
        );
        assert_eq!(
            outcome(
                serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
                "result < 1"
            )
            .0,
            MeasurementOutcome::Error
        );
        for (condition, value, holds) in [
            ("result<=1", "1", true),
            ("result > 1", "1", false),
            ("result == 0", "0", true),
            ("result != 0", "0", false),
            ("result >= -2.5e-1", "-0.25", true),
        ] {
            assert_eq!(
                outcome(vector(value), condition).0 == MeasurementOutcome::Successful,
                holds,
                "{condition} with {value}"
            );
        }
    }

    /// Decides at `now` with `recorded` and an optional fresh measurement of step `error-rate`.
    fn decide(
        steps: &[VerificationStep],
        recorded: &[VerificationStatus],
        fresh: Option<&Measurement>,
        now: &str,
    ) -> (Vec<VerificationStatus>, Progress) {
        let jobs = BTreeMap::new();
        let decided = evaluate(&VerificationInput {
            promotion: "to-prod",
            job: JobContext {
                namespace: "shop",
                promotion_uid: None,
                images: &[],
                source_repository: None,
                source_revision: None,
                jobs: &jobs,
            },
            steps,
            recorded,
            fresh: fresh.map(|m| ("error-rate", m)),
            release: RELEASE,
            now: instant(now),
        });
        (decided.statuses, decided.progress)
    }

    fn at(now: &str, body: serde_json::Value) -> Measurement {
        measure(&body, "result < 0.01", instant(now))
    }

    const ERROR_RATE: &str = r#"
- name: error-rate
  prometheus:
    query: 'sum(rate(errors{env="{{environment}}"}[5m]))'
    condition: result < 0.01
    interval: 30s
    count: 3
    failureLimit: 1
"#;

    #[test]
    fn a_step_measures_at_once_then_every_interval_and_passes_after_count() {
        let steps = steps(ERROR_RATE);
        let (statuses, progress) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
        let due = DueQuery {
            promotion: "to-prod".into(),
            step: "error-rate".into(),
            address: None,
            bearer_token_secret: None,
            query: r#"sum(rate(errors{env="prod"}[5m]))"#.into(),
            condition: "result < 0.01".into(),
        };
        assert_eq!(
            progress,
            Progress::Running {
                message: "step error-rate: 0 of 3 measurement(s): 0 successful, 0 failed, 0 inconclusive; \
                          next measurement at 2026-12-02T10:00:00Z (every 30s)"
                    .into(),
                due: Some(due.clone())
            }
        );
        let first = at("2026-12-02T10:00:00Z", vector("0.001"));
        let (statuses, progress) = decide(&steps, &statuses, Some(&first), "2026-12-02T10:00:00Z");
        assert_eq!(
            statuses[0].next_measurement,
            Some(Time(instant("2026-12-02T10:00:30Z")))
        );
        assert!(
            matches!(progress, Progress::Running { due: None, .. }),
            "{progress:?}"
        );
        // Not due a second early; due at the instant.
        let (_, early) = decide(&steps, &statuses, None, "2026-12-02T10:00:29Z");
        assert!(matches!(early, Progress::Running { due: None, .. }));
        let (_, on_time) = decide(&steps, &statuses, None, "2026-12-02T10:00:30Z");
        assert_eq!(
            on_time,
            Progress::Running {
                message: "step error-rate: 1 of 3 measurement(s): 1 successful, 0 failed, 0 inconclusive; \
                          next measurement at 2026-12-02T10:00:30Z (every 30s)"
                    .into(),
                due: Some(due)
            }
        );
        // One failure is within failureLimit 1.
        let second = at("2026-12-02T10:00:30Z", vector("0.5"));
        let (statuses, _) = decide(&steps, &statuses, Some(&second), "2026-12-02T10:00:30Z");
        let third = at("2026-12-02T10:01:00Z", vector("0.002"));
        let (statuses, progress) = decide(&steps, &statuses, Some(&third), "2026-12-02T10:01:00Z");
        assert_eq!(
            progress,
            Progress::Passed {
                message: "1 verification step(s) passed: error-rate".into()
            }
        );
        assert_eq!(
            (
                statuses[0].phase,
                statuses[0].message.as_str(),
                statuses[0].measurements.len()
            ),
            (
                VerificationPhase::Passed,
                "passed: 3 of 3 measurement(s): 2 successful, 1 failed, 0 inconclusive",
                3
            )
        );
    }

    #[test]
    fn failures_beyond_the_limit_fail_at_once_naming_the_last_value() {
        let steps = steps(ERROR_RATE);
        let (statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
        let (statuses, _) = decide(
            &steps,
            &statuses,
            Some(&at("2026-12-02T10:00:00Z", vector("0.2"))),
            "2026-12-02T10:00:00Z",
        );
        let (statuses, progress) = decide(
            &steps,
            &statuses,
            Some(&at("2026-12-02T10:00:30Z", vector("0.3"))),
            "2026-12-02T10:00:30Z",
        );
        assert_eq!(
            progress,
            Progress::Failed {
                message: "step error-rate: 2 measurement(s) did not meet `result < 0.01` (failureLimit 1), \
                          the last was 0.3; 2 of 3 measurement(s): 0 successful, 2 failed, 0 inconclusive"
                    .into()
            }
        );
        assert_eq!(statuses[0].next_measurement, None);
        // A failed step stays failed.
        assert_eq!(
            decide(&steps, &statuses, None, "2026-12-02T11:00:00Z").0,
            statuses
        );
    }

    #[test]
    fn an_inconclusive_result_fails_after_the_inconclusive_limit_and_errors_after_theirs() {
        let steps = steps(
            r#"
- name: error-rate
  prometheus: {query: up, condition: result < 0.01, interval: 10s, count: 5, inconclusiveLimit: 1, consecutiveErrorLimit: 1}
"#,
        );
        let empty = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        let (mut statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
        let mut progress = None;
        for second in ["00", "10"] {
            let now = format!("2026-12-02T10:00:{second}Z");
            let (next, p) = decide(&steps, &statuses, Some(&at(&now, empty.clone())), &now);
            statuses = next;
            progress = Some(p);
        }
        assert_eq!(
            progress,
            Some(Progress::Failed {
                message: "step error-rate: 2 measurement(s) were inconclusive (inconclusiveLimit 1): \
                          the query returned no sample; 2 of 5 measurement(s): 0 successful, 0 failed, 2 inconclusive"
                    .into()
            })
        );

        let (mut statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
        let unreachable = |now: &str| {
            error(
                instant(now),
                "cannot reach http://127.0.0.1:9: connection refused".into(),
            )
        };
        let (next, running) = decide(
            &steps,
            &statuses,
            Some(&unreachable("2026-12-02T10:00:00Z")),
            "2026-12-02T10:00:00Z",
        );
        statuses = next;
        assert_eq!(
            running,
            Progress::Running {
                message: "step error-rate: 0 of 5 measurement(s): 0 successful, 0 failed, 0 inconclusive; \
                          next measurement at 2026-12-02T10:00:10Z (every 10s); \
                          last error: cannot reach http://127.0.0.1:9: connection refused"
                    .into(),
                due: None
            }
        );
        let (_, failed) = decide(
            &steps,
            &statuses,
            Some(&unreachable("2026-12-02T10:00:10Z")),
            "2026-12-02T10:00:10Z",
        );
        assert_eq!(
            failed,
            Progress::Failed {
                message: "step error-rate: 2 error(s) in a row (consecutiveErrorLimit 1): cannot reach \
                          http://127.0.0.1:9: connection refused; 0 of 5 measurement(s): 0 successful, 0 failed, 0 inconclusive"
                    .into()
            }
        );
    }

    #[test]
    fn steps_run_in_order_and_a_later_one_waits() {
        let steps = steps(
            r#"
- name: error-rate
  prometheus: {query: a, condition: result < 1, count: 1}
- name: latency
  prometheus: {query: b, condition: result < 1, count: 1}
"#,
        );
        let (statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
        assert_eq!(
            statuses.iter().map(|s| s.phase).collect::<Vec<_>>(),
            vec![VerificationPhase::Running, VerificationPhase::Pending]
        );
        let ok = measure(&vector("0"), "result < 1", instant("2026-12-02T10:00:00Z"));
        let (statuses, progress) = decide(&steps, &statuses, Some(&ok), "2026-12-02T10:00:00Z");
        assert_eq!(
            statuses.iter().map(|s| s.phase).collect::<Vec<_>>(),
            vec![VerificationPhase::Passed, VerificationPhase::Running]
        );
        match progress {
            Progress::Running { due: Some(due), .. } => {
                assert_eq!((due.step.as_str(), due.query.as_str()), ("latency", "b"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conditions_and_intervals_the_schema_cannot_read_are_named() {
        let bad = steps(
            r#"
- name: a
  prometheus: {query: up, condition: "result < 1e999999", interval: 0s}
"#,
        );
        // 1e999999 parses as infinity: a number, if a useless one; the interval is refused.
        assert_eq!(
            problems(&bad),
            vec![
                "spec.gates.verification[0].prometheus.interval: \"0s\" must be longer than zero".to_string()
            ]
        );
        assert_eq!(
            parse_condition("value < 1").unwrap_err(),
            "condition \"value < 1\" must start with `result`"
        );
        assert_eq!(
            before_rollout(&steps(ERROR_RATE)),
            Outcome {
                state: GateState::Pending,
                message: "runs once the rollout is healthy: error-rate (Prometheus)".into(),
                next_check: None
            }
        );
    }

    fn job_decision(jobs: &BTreeMap<String, &Job>, recorded: &[VerificationStatus]) -> Decided {
        let steps = steps(
            r#"
- name: smoke
  job: {image: "registry.example.com/shop/smoke:1", command: [sh, -c, "./smoke.sh"], env: [{name: TARGET, value: "http://backend"}], timeout: 5m, retries: 1}
"#,
        );
        evaluate(&VerificationInput {
            promotion: "shop-1.4.2-prod",
            job: JobContext {
                namespace: "shop",
                promotion_uid: Some("uid-1"),
                images: &[(
                    "backend".into(),
                    "registry.example.com/shop/backend@sha256:aa".into(),
                )],
                source_repository: Some("https://git.example.com/shop"),
                source_revision: Some("3f2c9a1b"),
                jobs,
            },
            steps: &steps,
            recorded,
            fresh: None,
            release: RELEASE,
            now: instant("2026-12-02T10:00:00Z"),
        })
    }

    fn with_condition(job: &Job, kind: &str, reason: &str, failed: i32) -> Job {
        let mut job = job.clone();
        job.status = Some(
            serde_json::from_value(serde_json::json!({
                "failed": failed,
                "conditions": [{"type": kind, "status": "True", "reason": reason, "message": "m"}]
            }))
            .unwrap(),
        );
        job
    }

    #[test]
    fn a_job_step_creates_its_job_with_the_release_in_its_environment_and_reads_how_it_ended() {
        let none = BTreeMap::new();
        let first = job_decision(&none, &[]);
        let job = first.create.clone().expect("a Job to create");
        let name = job_name("shop-1.4.2-prod", Some("uid-1"), "smoke");
        assert!(
            name.starts_with("shop-1-4-2-prod-smoke-") && name.len() == 32,
            "{name}"
        );
        assert_eq!(job.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(
            job.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PROMOTION_UID))
                .map(String::as_str),
            Some("uid-1")
        );
        assert_eq!(
            job.metadata.owner_references.as_ref().map(|o| o[0].uid.as_str()),
            Some("uid-1"),
            "in the Promotion's namespace the Job is the Promotion's"
        );
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(
            (spec.backoff_limit, spec.active_deadline_seconds),
            (Some(1), Some(300))
        );
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let env: Vec<(String, String)> = pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            env.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
            vec![
                "HOIST_ARTIFACT=shop-1.4.2",
                "HOIST_VERSION=1.4.2",
                "HOIST_APPLICATION=shop",
                "HOIST_ENVIRONMENT=prod",
                "HOIST_NAMESPACE=shop",
                "HOIST_PROMOTION=shop-1.4.2-prod",
                "HOIST_SOURCE_REPOSITORY=https://git.example.com/shop",
                "HOIST_SOURCE_REVISION=3f2c9a1b",
                "HOIST_IMAGE_BACKEND=registry.example.com/shop/backend@sha256:aa",
                "TARGET=http://backend",
            ]
        );
        let logs = format!("logs: kubectl logs -n shop job/{name}");
        assert_eq!(
            first.progress,
            Progress::Running {
                message: format!("step smoke: Job shop/{name} created; waiting for it to run; {logs}"),
                due: None
            }
        );

        let mut running = job.clone();
        running.status = Some(serde_json::from_value(serde_json::json!({"active": 1, "failed": 1})).unwrap());
        let jobs: BTreeMap<String, &Job> = [(name.clone(), &running)].into();
        let decided = job_decision(&jobs, &first.statuses);
        assert_eq!(decided.create, None, "a Job that exists is not created again");
        assert_eq!(
            decided.progress,
            Progress::Running {
                message: format!(
                    "step smoke: Job shop/{name} is running (1 active, 1 of 2 attempt(s) failed so far); {logs}"
                ),
                due: None
            }
        );

        let outcomes = [
            (
                with_condition(&job, "Complete", "CompletionsReached", 1),
                Progress::Passed {
                    message: "1 verification step(s) passed: smoke".into(),
                },
            ),
            (
                with_condition(&job, "Failed", "BackoffLimitExceeded", 2),
                Progress::Failed {
                    message: format!("step smoke: Job shop/{name} failed: 2 of 2 attempt(s) failed; {logs}"),
                },
            ),
            (
                with_condition(&job, "Failed", "DeadlineExceeded", 0),
                Progress::Failed {
                    message: format!(
                        "step smoke: Job shop/{name} failed: ran longer than its timeout of 5m; {logs}"
                    ),
                },
            ),
        ];
        for (ended, expected) in outcomes {
            let jobs: BTreeMap<String, &Job> = [(name.clone(), &ended)].into();
            assert_eq!(job_decision(&jobs, &first.statuses).progress, expected);
        }

        // A Job of that name that another Promotion made is never taken for this one's.
        let mut foreign = with_condition(&job, "Complete", "CompletionsReached", 0);
        foreign
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(LABEL_PROMOTION_UID.into(), "uid-0".into());
        let jobs: BTreeMap<String, &Job> = [(name.clone(), &foreign)].into();
        assert_eq!(
            job_decision(&jobs, &first.statuses).progress,
            Progress::Failed {
                message: format!(
                    "step smoke: Job shop/{name} exists but is not this Promotion's; delete it and promote again"
                ),
            }
        );
    }

    #[test]
    fn a_job_the_api_server_keeps_refusing_fails_the_step_once_its_timeout_passed() {
        let none = BTreeMap::new();
        let first = job_decision(&none, &[]);
        assert_eq!(
            first.statuses[0].started_at,
            Some(Time(instant("2026-12-02T10:00:00Z")))
        );
        let mut started_earlier = first.statuses.clone();
        started_earlier[0].started_at = Some(Time(instant("2026-12-02T09:55:00Z")));
        let decided = job_decision(&none, &started_earlier);
        let name = job_name("shop-1.4.2-prod", Some("uid-1"), "smoke");
        assert_eq!(
            decided.progress,
            Progress::Failed {
                message: format!(
                    "step smoke: Job shop/{name} could not be created within its timeout of 5m (see the Promotion's \
                     VerificationJobRefused Events)"
                )
            }
        );
        assert_eq!(decided.create, None);
    }

    #[test]
    fn job_names_are_dns_labels_of_at_most_63_characters_and_differ_per_promotion() {
        assert!(job_name("to-prod", Some("u1"), "smoke").starts_with("to-prod-smoke-"));
        assert_ne!(
            job_name("to-prod", Some("u1"), "smoke"),
            job_name("to-prod", Some("u2"), "smoke")
        );
        assert_ne!(job_name("a.b", None, "s"), job_name("a-b", None, "s"));
        let long = job_name(&"p".repeat(60), None, "smoke");
        assert_eq!(long.len(), 63);
        assert_ne!(
            long,
            job_name(&"p".repeat(61), None, "smoke"),
            "the hash keeps long names apart"
        );
    }

    #[test]
    fn finished_jobs_beyond_the_kept_number_are_deleted_oldest_first_but_never_a_running_promotions() {
        let job = |name: &str, second: i64, promotion: &str, finished: bool| -> Job {
            let mut job: Job = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop", "annotations": {ANNOTATION_PROMOTION: promotion},
                             "creationTimestamp": Timestamp::from_second(1_795_000_000 + second).unwrap().to_string()}
            }))
            .unwrap();
            if finished {
                job = with_condition(&job, "Complete", "CompletionsReached", 0);
            }
            job
        };
        let mut jobs: Vec<Job> = (0..12)
            .map(|i| job(&format!("j{i:02}"), i, &format!("p{i}"), true))
            .collect();
        jobs.push(job("old-running", -5, "p-running", true));
        jobs.push(job("unfinished", -10, "p-x", false));
        assert_eq!(
            jobs_to_delete(jobs.iter(), &["p-running".to_string()]),
            vec![
                ("shop".to_string(), "j01".to_string()),
                ("shop".to_string(), "j00".to_string())
            ]
        );
    }
}
