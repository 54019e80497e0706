use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::job::LABEL_PROMOTION_UID;
use super::prometheus::parse_condition;
use super::steps::query_text;
use super::*;
use crate::api::{GateState, Measurement, MeasurementOutcome, VerificationPhase, VerificationStatus};

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
    previous: Some(Previous {
        artifact: "shop-1.4.1",
        version: "1.4.1",
    }),
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
        let m = measure(&body, None, condition, at);
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
    decide_release(RELEASE, steps, recorded, fresh, now)
}

/// [`decide`] for `release`.
fn decide_release(
    release: Release<'_>,
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
        release,
        now: instant(now),
    });
    (decided.statuses, decided.progress)
}

fn at(now: &str, body: serde_json::Value) -> Measurement {
    measure(&body, None, "result < 0.01", instant(now))
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
        baseline: None,
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
    let ok = measure(&vector("0"), None, "result < 1", instant("2026-12-02T10:00:00Z"));
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
        vec!["spec.gates.verification[0].prometheus.interval: \"0s\" must be longer than zero".to_string()]
    );
    assert_eq!(
        parse_condition("value < 1").unwrap_err().to_string(),
        "condition \"value < 1\" must start with `result` or `result - baseline`"
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

#[test]
fn a_refused_destination_fails_the_step_at_once_naming_the_refusal() {
    let steps = steps(ERROR_RATE);
    let (statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
    let refusal = crate::core::destinations::Refusal::NotAllowed {
        target: "169.254.169.254:80".into(),
        ip: "169.254.169.254".parse().expect("ip"),
        range: Some(crate::core::destinations::RangeKind::LinkLocal),
    };
    let refused = refused(instant("2026-12-02T10:00:00Z"), &refusal);
    let (statuses, progress) = decide(&steps, &statuses, Some(&refused), "2026-12-02T10:00:00Z");
    let message = format!(
        "destination refused: {}; 0 of 3 measurement(s): 0 successful, 0 failed, 0 inconclusive",
        bounded(&refusal.to_string())
    );
    assert_eq!(
        (
            statuses[0].phase,
            statuses[0].message.as_str(),
            statuses[0].measurements[0].outcome
        ),
        (
            VerificationPhase::Failed,
            message.as_str(),
            MeasurementOutcome::Refused
        )
    );
    assert_eq!(
        progress,
        Progress::Failed {
            message: format!("step error-rate: {message}")
        }
    );
}

#[test]
fn what_a_server_answers_reaches_status_bounded_and_only_as_prometheus_errors() {
    let at = instant("2026-12-02T10:00:00Z");
    let message = |body: serde_json::Value| measure(&body, None, "result < 1", at).message.expect("message");
    // Prometheus' own error, however long, is cut on a character boundary.
    let long = "é".repeat(400);
    let cut = message(serde_json::json!({"status": "error", "errorType": "bad_data", "error": long}));
    assert_eq!(cut.len(), 255);
    assert_eq!(cut, format!("Prometheus refused the query: {}…", "é".repeat(111)));
    // Any other JSON's content is not shown.
    assert_eq!(
        message(serde_json::json!({"status": "error", "error": "AKIASECRET"})),
        "Prometheus refused the query: the answer is not a Prometheus query API response"
    );
    assert_eq!(
        message(serde_json::json!({"Code": "Success", "AccessKeyId": "AKIASECRET", "status": "ok"})),
        "Prometheus refused the query: the answer is not a Prometheus query API response"
    );
    let odd = message(
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "x".repeat(1000)]}
        ]}}),
    );
    assert_eq!((odd.len(), odd.ends_with('…')), (MESSAGE_LIMIT, true));
    assert_eq!(bounded("short"), "short");
    assert_eq!(bounded(&"a".repeat(MESSAGE_LIMIT)), "a".repeat(MESSAGE_LIMIT));
}

mod baseline;
