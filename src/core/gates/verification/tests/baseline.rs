//! Analysis against a baseline: the condition's grammar, measurements that
//! read the release being replaced, and a first release with nothing to
//! compare with.

use super::super::steps::baseline_text;
use super::*;

/// A release with none before it in the Environment.
const FIRST: Release<'static> = Release {
    previous: None,
    ..RELEASE
};

const NOT_WORSE: &str = r#"
- name: error-rate
  prometheus:
    query: 'max(errors{version="{{version}}"})'
    baseline: {query: 'max(errors{version="{{previousVersion}}", artifact="{{previousArtifact}}", env="{{environment}}"})'}
    condition: result <= baseline * 1.1
    interval: 30s
    count: 2
"#;

/// A measurement at 10:00 of `condition` with both answers vectors of one sample.
fn compared(condition: &str, result: &str, baseline: &str) -> Measurement {
    measure(
        &vector(result),
        Some(Ok(&vector(baseline))),
        condition,
        instant("2026-12-02T10:00:00Z"),
    )
}

fn reading(condition: &str, result: &str, baseline: &str) -> MeasurementOutcome {
    compared(condition, result, baseline).outcome
}

#[test]
fn a_condition_compares_result_with_the_baseline_scaled_offset_or_by_their_difference() {
    for (condition, result, baseline, holds) in [
        ("result <= baseline * 1.1", "0.011", "0.01", true),
        ("result <= baseline * 1.1", "0.0111", "0.01", false),
        ("result<=baseline", "0.01", "0.01", true),
        ("result < baseline", "0.01", "0.01", false),
        ("result <= baseline + 0.005", "0.015", "0.01", true),
        ("result <= baseline + 0.005", "0.0151", "0.01", false),
        ("result >= baseline - 0.05", "0.95", "0.99", true),
        ("result >= baseline - 0.05", "0.93", "0.99", false),
        ("result >= baseline * 9e-1", "0.9", "1", true),
        ("result - baseline < 0.005", "0.014", "0.01", true),
        ("result - baseline < 0.005", "0.0151", "0.01", false),
        ("result-baseline<=-1", "1", "2", true),
    ] {
        let expected = if holds {
            MeasurementOutcome::Successful
        } else {
            MeasurementOutcome::Failed
        };
        assert_eq!(
            reading(condition, result, baseline),
            expected,
            "{condition} with result {result}, baseline {baseline}"
        );
    }
}

#[test]
fn a_condition_outside_the_grammar_is_named_with_what_may_follow() {
    let error = |text: &str| parse_condition(text).unwrap_err().to_string();
    assert_eq!(
        error("result - baseline < baseline"),
        "condition \"result - baseline < baseline\": `result - baseline` is compared with a number, not with \
         baseline again"
    );
    assert_eq!(
        error("result < baseline / 2"),
        "condition \"result < baseline / 2\": after `baseline` only `* <number>`, `+ <number>` or `- <number>` may \
         follow, not \"/ 2\""
    );
    assert_eq!(
        error("result < baseline * x"),
        "condition \"result < baseline * x\": \"x\" is not a number"
    );
    assert_eq!(
        error("result - 1 < 2"),
        "condition \"result - 1 < 2\" must compare with <, <=, >, >=, == or !="
    );
}

#[test]
fn both_values_are_recorded_and_a_baseline_without_a_number_is_inconclusive_never_a_pass() {
    let at = instant("2026-12-02T10:00:00Z");
    let condition = "result <= baseline * 1.1";
    let read = |baseline: Option<Result<&serde_json::Value, String>>| {
        let m = measure(&vector("0.002"), baseline, condition, at);
        (m.outcome, m.value, m.baseline, m.message)
    };
    assert_eq!(
        read(Some(Ok(&vector("0.002")))),
        (
            MeasurementOutcome::Successful,
            Some("0.002".into()),
            Some("0.002".into()),
            None
        )
    );
    let inconclusive = |message: &str| {
        (
            MeasurementOutcome::Inconclusive,
            Some("0.002".to_string()),
            None,
            Some(message.to_string()),
        )
    };
    let empty = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}});
    assert_eq!(
        read(Some(Ok(&empty))),
        inconclusive("baseline: the query returned no sample")
    );
    let refused =
        serde_json::json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"});
    assert_eq!(
        read(Some(Ok(&refused))),
        inconclusive("baseline: Prometheus refused the query: parse error at char 5")
    );
    assert_eq!(
        read(Some(Ok(&vector("NaN")))),
        inconclusive("baseline: the query returned NaN")
    );
    assert_eq!(
        read(Some(Err(
            "cannot reach http://prometheus:9090: connection refused".into()
        ))),
        inconclusive("baseline: cannot reach http://prometheus:9090: connection refused")
    );
    assert_eq!(
        read(None),
        inconclusive("baseline: the step has no baseline query")
    );
    // A condition that does not read the baseline ignores one given.
    assert_eq!(
        measure(&vector("0.002"), Some(Ok(&empty)), "result < 0.01", at).outcome,
        MeasurementOutcome::Successful
    );
    // The result's own trouble comes first: an error stays an error.
    assert_eq!(
        measure(&refused, Some(Ok(&vector("1"))), condition, at).outcome,
        MeasurementOutcome::Error
    );
}

#[test]
fn the_baseline_query_measures_the_release_being_replaced() {
    assert_eq!(
        baseline_text(
            r#"errors{v="{{previousVersion}}",a="{{previousArtifact}}",env="{{environment}}",new="{{version}}"}"#,
            &RELEASE
        ),
        Some(r#"errors{v="1.4.1",a="shop-1.4.1",env="prod",new="1.4.2"}"#.into())
    );
    assert_eq!(baseline_text("errors", &FIRST), None);
    // The step's own query knows no previous release.
    assert_eq!(
        query_text(r#"errors{v="{{previousVersion}}"}"#, &RELEASE),
        r#"errors{v="{{previousVersion}}"}"#
    );
}

#[test]
fn a_baseline_step_asks_for_both_queries_and_records_both_values() {
    let steps = steps(NOT_WORSE);
    let (statuses, progress) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
    let baseline = r#"max(errors{version="1.4.1", artifact="shop-1.4.1", env="prod"})"#;
    assert_eq!(statuses[0].baseline_query.as_deref(), Some(baseline));
    match progress {
        Progress::Running { due: Some(due), .. } => assert_eq!(
            (
                due.query.as_str(),
                due.baseline.as_deref(),
                due.condition.as_str()
            ),
            (
                r#"max(errors{version="1.4.2"})"#,
                Some(baseline),
                "result <= baseline * 1.1"
            )
        ),
        other => panic!("{other:?}"),
    }
    let measured = compared("result <= baseline * 1.1", "0.0105", "0.01");
    let (statuses, _) = decide(&steps, &statuses, Some(&measured), "2026-12-02T10:00:00Z");
    assert_eq!(
        statuses[0]
            .measurements
            .iter()
            .map(|m| (m.outcome, m.value.as_deref(), m.baseline.as_deref()))
            .collect::<Vec<_>>(),
        vec![(MeasurementOutcome::Successful, Some("0.0105"), Some("0.01"))]
    );
}

#[test]
fn a_first_release_has_no_baseline_each_measurement_is_inconclusive_and_the_step_fails_past_the_limit() {
    let steps = steps(&NOT_WORSE.replace("count: 2", "count: 2\n    inconclusiveLimit: 1"));
    let (statuses, progress) = decide_release(FIRST, &steps, &[], None, "2026-12-02T10:00:00Z");
    // Nothing is asked of Prometheus: there is nothing to compare with.
    assert_eq!(statuses[0].baseline_query, None);
    assert!(
        matches!(progress, Progress::Running { due: None, .. }),
        "{progress:?}"
    );
    let no_baseline = "baseline: no release ran here before this one to compare with";
    assert_eq!(
        statuses[0]
            .measurements
            .iter()
            .map(|m| (m.at.clone(), m.outcome, m.message.as_deref()))
            .collect::<Vec<_>>(),
        vec![(
            Time(instant("2026-12-02T10:00:00Z")),
            MeasurementOutcome::Inconclusive,
            Some(no_baseline)
        )]
    );
    assert_eq!(
        statuses[0].next_measurement,
        Some(Time(instant("2026-12-02T10:00:30Z")))
    );
    // Not before the interval.
    let (early, _) = decide_release(FIRST, &steps, &statuses, None, "2026-12-02T10:00:29Z");
    assert_eq!(early[0].measurements.len(), 1);
    let (statuses, progress) = decide_release(FIRST, &steps, &statuses, None, "2026-12-02T10:00:30Z");
    assert_eq!(statuses[0].phase, VerificationPhase::Failed);
    assert_eq!(
        progress,
        Progress::Failed {
            message: format!(
                "step error-rate: 2 measurement(s) were inconclusive (inconclusiveLimit 1): {no_baseline}; 2 of 2 \
                 measurement(s): 0 successful, 0 failed, 2 inconclusive"
            )
        }
    );
}

#[test]
fn a_condition_and_a_baseline_query_go_together() {
    let unread = steps(
        r#"
- name: a
  prometheus: {query: up, baseline: {query: up}, condition: result < 1}
- name: b
  prometheus: {query: up, condition: result - baseline < 1}
- name: c
  prometheus: {query: up, baseline: {query: up}, condition: result < baseline}
"#,
    );
    assert_eq!(
        problems(&unread),
        vec![
            "spec.gates.verification[0].prometheus.baseline is set but the condition does not read it: compare with \
             baseline, e.g. `result <= baseline * 1.1`"
                .to_string(),
            "spec.gates.verification[1].prometheus.condition reads baseline: set \
             spec.gates.verification[1].prometheus.baseline.query, the query measuring the release being replaced"
                .to_string(),
        ]
    );
}

#[test]
fn inconclusive_measurements_within_the_limit_do_not_pass_a_baseline_step() {
    let steps = steps(&NOT_WORSE.replace("count: 2", "count: 1\n    inconclusiveLimit: 5"));
    let (statuses, progress) = decide_release(FIRST, &steps, &[], None, "2026-12-02T10:00:00Z");
    assert_eq!(statuses[0].phase, VerificationPhase::Failed);
    assert_eq!(
        progress,
        Progress::Failed {
            message: "step error-rate: no measurement was compared with the baseline: baseline: no release ran here \
                      before this one to compare with; 1 of 1 measurement(s): 0 successful, 0 failed, 1 inconclusive"
                .into()
        }
    );
}

#[test]
fn a_failed_step_names_the_last_result_and_its_baseline() {
    let steps = steps(NOT_WORSE);
    let (statuses, _) = decide(&steps, &[], None, "2026-12-02T10:00:00Z");
    let regressed = compared("result <= baseline * 1.1", "0.3", "0.21");
    let (_, progress) = decide(&steps, &statuses, Some(&regressed), "2026-12-02T10:00:00Z");
    assert_eq!(
        progress,
        Progress::Failed {
            message: "step error-rate: 1 measurement(s) did not meet `result <= baseline * 1.1` (failureLimit 0), the \
                      last was 0.3 (baseline 0.21); 1 of 2 measurement(s): 0 successful, 1 failed, 0 inconclusive"
                .into()
        }
    );
}
