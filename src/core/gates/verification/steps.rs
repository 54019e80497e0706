//! The steps' state machine: in order, each Pending until the ones before
//! it passed, then Running until it Passed or Failed. A Prometheus step
//! counts its measurements against its limits; a job step reads how its Job
//! ended.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    JobCheck, JobReference, Measurement, MeasurementOutcome, PrometheusCheck, SecretKeyReference,
    VerificationPhase, VerificationStatus, VerificationStep,
};
use crate::core::duration;
use crate::core::reasons::KubernetesReason;

use super::job::{JobContext, LABEL_PROMOTION_UID, Release, job_name, verification_job};
use super::prometheus::inconclusive;

/// Measurements kept per step. Past it the oldest errors go first, so the
/// measurements that count (at most `count`, 60) are always all kept.
pub const MAX_MEASUREMENTS: usize = 128;

/// A query the decision needs measured now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueQuery {
    pub promotion: String,
    pub step: String,
    /// The step's server, if it names one (else the operator's default).
    pub address: Option<String>,
    pub bearer_token_secret: Option<SecretKeyReference>,
    pub query: String,
    /// The baseline query with the replaced release's values, if the step has one.
    pub baseline: Option<String>,
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

/// The baseline query with the replaced release's values in place of
/// `{{previousVersion}}` and `{{previousArtifact}}` (and the release's in
/// place of the others); `None` when nothing runs before this release.
pub fn baseline_text(template: &str, release: &Release<'_>) -> Option<String> {
    let previous = release.previous?;
    let text = template
        .replace("{{previousVersion}}", previous.version)
        .replace("{{previousArtifact}}", previous.artifact);
    Some(query_text(&text, release))
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
                        baseline: status.baseline_query.clone(),
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
        baseline_query: None,
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
            baseline_query: check
                .baseline
                .as_ref()
                .and_then(|baseline| baseline_text(&baseline.query, &input.release)),
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
    // A first release has nothing to compare with: each measurement of a
    // baseline step is inconclusive, taken here without asking Prometheus.
    let unmeasurable = (check.baseline.is_some() && input.release.previous.is_none())
        .then(|| status.next_measurement.clone())
        .flatten()
        .filter(|next| next.0 <= input.now)
        .map(|_| {
            inconclusive(
                input.now,
                None,
                "baseline: no release ran here before this one to compare with".into(),
            )
        });
    if let Some(measurement) = fresh.or(unmeasurable.as_ref()) {
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
    let last_value = match last.and_then(|m| m.baseline.as_deref()) {
        Some(baseline) => format!("{last_value} (baseline {baseline})"),
        None => last_value.to_string(),
    };
    let tally = format!(
        "{taken} of {} measurement(s): {successful} successful, {failed} failed, {inconclusive} inconclusive",
        check.count
    );
    let refused = status
        .measurements
        .iter()
        .rev()
        .find(|m| m.outcome == MeasurementOutcome::Refused);
    let failure = if let Some(refused) = refused {
        // Refused again next time: the allow-list is the operator's, not the step's.
        Some(format!(
            "destination refused: {}",
            refused
                .message
                .as_deref()
                .unwrap_or("not in the operator's allow-list")
        ))
    } else if failed > limit(check.failure_limit) {
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
    } else if check.baseline.is_some() && taken >= limit(check.count) && successful + failed == 0 {
        // Within the inconclusiveLimit, yet not once compared: no baseline is never a pass.
        Some(format!(
            "no measurement was compared with the baseline: {}",
            last.and_then(|m| m.message.as_deref()).unwrap_or("no sample")
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
        baseline_query: None,
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
        return (
            status,
            Some(verification_job(
                input.promotion,
                &input.release,
                &input.job,
                step,
                check,
                &name,
            )),
        );
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
        let reason = failure.reason.as_deref();
        let why = match reason.map(str::parse) {
            Some(Ok(KubernetesReason::DeadlineExceeded)) => {
                format!("ran longer than its timeout of {}", check.timeout)
            }
            Some(Ok(KubernetesReason::BackoffLimitExceeded)) => {
                format!("{failed} of {attempts} attempt(s) failed")
            }
            _ => format!(
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
