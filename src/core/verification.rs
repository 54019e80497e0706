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

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    GateState, Measurement, MeasurementOutcome, PrometheusCheck, SecretKeyReference, VerificationPhase,
    VerificationStatus, VerificationStep,
};

use super::gates::Outcome;
use super::windows::parse_duration;

/// Measurements kept per step: enough for the largest count and limits.
pub const MAX_MEASUREMENTS: usize = 64;

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
            let field = format!("spec.gates.verification[{index}].prometheus");
            let check = &step.prometheus;
            let condition = parse_condition(&check.condition)
                .err()
                .map(|error| format!("{field}.condition: {error}"));
            let interval = parse_duration(&check.interval)
                .err()
                .map(|error| format!("{field}.interval: {error}"));
            condition.into_iter().chain(interval)
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

/// Everything one decision of a Promotion's verification looks at.
pub struct VerificationInput<'a> {
    pub promotion: &'a str,
    pub steps: &'a [VerificationStep],
    /// The statuses recorded so far (status.verification).
    pub recorded: &'a [VerificationStatus],
    /// A measurement taken for this decision, by step name.
    pub fresh: Option<(&'a str, &'a Measurement)>,
    pub release: Release<'a>,
    pub now: Timestamp,
}

/// Decides verification once the rollout is healthy: the statuses to
/// record and where it stands.
pub fn evaluate(input: &VerificationInput<'_>) -> (Vec<VerificationStatus>, Progress) {
    let mut statuses = Vec::new();
    let mut progress = None;
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
        let status = decide_step(input, step, recorded, fresh);
        match status.phase {
            VerificationPhase::Passed => {}
            VerificationPhase::Failed => {
                progress = Some(Progress::Failed {
                    message: format!("step {}: {}", step.name, status.message),
                })
            }
            _ => {
                let due = status
                    .next_measurement
                    .as_ref()
                    .is_some_and(|next| next.0 <= input.now)
                    .then(|| DueQuery {
                        promotion: input.promotion.to_string(),
                        step: step.name.clone(),
                        address: step.prometheus.address.clone(),
                        bearer_token_secret: step.prometheus.bearer_token_secret.clone(),
                        query: query_text(&step.prometheus.query, &input.release),
                        condition: step.prometheus.condition.clone(),
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
    (statuses, progress)
}

fn pending(step: &VerificationStep) -> VerificationStatus {
    VerificationStatus {
        name: step.name.clone(),
        phase: VerificationPhase::Pending,
        message: "waits for the rollout and the steps before it".into(),
        query: None,
        measurements: Vec::new(),
        next_measurement: None,
    }
}

fn decide_step(
    input: &VerificationInput<'_>,
    step: &VerificationStep,
    recorded: Option<&VerificationStatus>,
    fresh: Option<&Measurement>,
) -> VerificationStatus {
    let check = &step.prometheus;
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
            measurements: Vec::new(),
            next_measurement: Some(Time(input.now)),
        },
    };
    let interval = match parse_duration(&check.interval) {
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
        let excess = status.measurements.len().saturating_sub(MAX_MEASUREMENTS);
        status.measurements.drain(..excess);
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
                .map(|s| format!("{} (Prometheus)", s.name))
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
        evaluate(&VerificationInput {
            promotion: "to-prod",
            steps,
            recorded,
            fresh: fresh.map(|m| ("error-rate", m)),
            release: RELEASE,
            now: instant(now),
        })
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
}
