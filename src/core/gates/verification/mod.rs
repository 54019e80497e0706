//! The verification gate: steps run in order once a rollout is healthy,
//! before the Promotion succeeds. A step is a Prometheus query measured
//! every `interval` with Argo Rollouts' analysis semantics: it passes after
//! `count` measurements, fails once failed measurements exceed
//! `failureLimit`, inconclusive ones (no sample, or no baseline to compare
//! with) `inconclusiveLimit`, or
//! errors in a row `consecutiveErrorLimit`.
//!
//! Everything here is pure: the controller runs the queries the decision
//! asks for ([`DueQuery`]), turns each response into a
//! [`Measurement`](crate::api::Measurement) with
//! [`measure`], and decides again with the measurements in the snapshot.
//!
//! A job step runs a Job Hoist creates with the release in its environment,
//! and passes when the Job completes.

mod job;
mod prometheus;
mod steps;

use crate::api::VerificationStep;
use crate::core::duration;

use super::outcome::Outcome;
pub use job::{ANNOTATION_PROMOTION, JobContext, Previous, Release, job_name, jobs_to_delete};
use prometheus::parse_condition;
pub use prometheus::{MESSAGE_LIMIT, bounded, error, measure, refused};
pub use steps::{Decided, DueQuery, Progress, VerificationInput, evaluate};

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
                match parse_condition(&check.condition) {
                    Err(error) => problems.push(format!("{field}.prometheus.condition: {error}")),
                    Ok(condition) if condition.reads_baseline() && check.baseline.is_none() => problems.push(format!(
                        "{field}.prometheus.condition reads baseline: set {field}.prometheus.baseline.query, the \
                         query measuring the release being replaced"
                    )),
                    Ok(condition) if !condition.reads_baseline() && check.baseline.is_some() => problems.push(format!(
                        "{field}.prometheus.baseline is set but the condition does not read it: compare with baseline, \
                         e.g. `result <= baseline * 1.1`"
                    )),
                    Ok(_) => {}
                }
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

/// The Verification gate before the rollout: what will run after it.
pub fn before_rollout(steps: &[VerificationStep]) -> Outcome {
    if steps.is_empty() {
        return Outcome::passed("no verification here");
    }
    Outcome::pending(format!(
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
    ))
}

#[cfg(test)]
mod tests;
