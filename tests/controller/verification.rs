//! Verification steps: queries against the real Prometheus of scripts/test,
//! and Jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use hoist::api::{Environment, GateName, GateState, Health, Phase, Promotion};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{REVISION, Scenario, TIMEOUT, config_hash, pinned};

/// The error-ratio check of the verification scenarios, against the test Prometheus.
fn error_ratio_check(count: i32, failure_limit: i32) -> hoist::api::PrometheusCheck {
    hoist::api::PrometheusCheck {
        address: Some(
            hoist_testkit::prometheus::address().expect("HOIST_TEST_PROMETHEUS (run scripts/test)"),
        ),
        bearer_token_secret: None,
        query: ERROR_RATIO.into(),
        baseline: None,
        condition: "result < 0.01".into(),
        interval: "1s".into(),
        count,
        failure_limit,
        inconclusive_limit: 0,
        consecutive_error_limit: 4,
    }
}

/// dev verifies every release with `check`.
async fn verify_dev_with_prometheus(scenario: &Scenario, check: hoist::api::PrometheusCheck) {
    scenario
        .update_environment("dev", |spec| {
            spec.gates.verification = vec![hoist::api::VerificationStep {
                name: "error-rate".into(),
                job: None,
                prometheus: Some(check),
            }]
        })
        .await;
}

const ERROR_RATIO: &str = r#"max(hoist_test_error_ratio{namespace="{{namespace}}", environment="{{environment}}", artifact="{{artifact}}"})"#;

/// Pushes `metric{namespace, environment="dev", <label>="<release>"}` and
/// waits until `query` (its placeholders replaced for dev and `release`)
/// returns it. One Pushgateway group per metric and release: pushing one
/// does not replace another.
async fn push_dev(
    scenario: &Scenario,
    metric: &str,
    query: &str,
    (label, release): (&str, &str),
    value: f64,
) {
    let namespace = scenario.namespace();
    let labels = format!(r#"namespace="{namespace}",environment="dev",{label}="{release}""#);
    hoist_testkit::prometheus::push(&group(scenario, metric, release), metric, &labels, value)
        .await
        .expect("push");
    let query = query
        .replace("{{namespace}}", namespace)
        .replace("{{environment}}", "dev")
        .replace(&format!("{{{{{label}}}}}"), release);
    hoist_testkit::prometheus::wait_for(&query, Some(&value.to_string()))
        .await
        .expect("Prometheus scraped the value");
}

fn group(scenario: &Scenario, metric: &str, release: &str) -> String {
    format!("{}-{metric}-{release}", scenario.namespace())
}

/// Removes what [`push_dev`] pushed of `metric` for `releases`.
async fn forget(scenario: &Scenario, metric: &str, releases: &[&str]) {
    for release in releases {
        let _ = hoist_testkit::prometheus::delete(&group(scenario, metric, release)).await;
    }
}

/// Pushes the error ratio of `artifact` in dev and waits until Prometheus returns it.
async fn error_ratio(scenario: &Scenario, artifact: &str, value: f64) {
    push_dev(
        scenario,
        "hoist_test_error_ratio",
        ERROR_RATIO,
        ("artifact", artifact),
        value,
    )
    .await;
}

/// Waits until dev runs `artifact`, healthy (again, after a rollback).
async fn runs_healthy_in_dev(scenario: &Scenario, artifact: &str) -> Environment {
    scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.applications
                    .first()
                    .is_some_and(|a| a.artifact == artifact && a.health == Health::Healthy)
            })
        })
        .await
        .unwrap_or_else(|error| panic!("dev runs {artifact}: {error}"))
}

async fn forget_error_ratios(scenario: &Scenario, artifacts: &[&str]) {
    forget(scenario, "hoist_test_error_ratio", artifacts).await;
}

#[tokio::test]
async fn prometheus_verifies_a_release_and_a_regressed_error_rate_rolls_the_next_one_back() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_prometheus(&scenario, error_ratio_check(3, 1)).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let good = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    error_ratio(&scenario, "shop-1-0-0", 0.001).await;
    error_ratio(&scenario, "shop-1-1-0", 0.2).await;

    scenario.promote_and_wait("good", "shop-1-0-0", "dev").await;
    let good_promotion = scenario.wait_phase("good", Phase::Succeeded).await;
    let status = good_promotion.status.expect("status");
    let step = &status.verification[0];
    assert_eq!(
        (
            step.name.as_str(),
            step.phase,
            step.message.as_str(),
            step.query.clone(),
            step.next_measurement.clone()
        ),
        (
            "error-rate",
            hoist::api::VerificationPhase::Passed,
            "passed: 3 of 3 measurement(s): 3 successful, 0 failed, 0 inconclusive",
            Some(format!(
                r#"max(hoist_test_error_ratio{{namespace="{}", environment="dev", artifact="shop-1-0-0"}})"#,
                scenario.namespace()
            )),
            None
        )
    );
    assert_eq!(
        step.measurements
            .iter()
            .map(|m| (m.outcome, m.value.as_deref()))
            .collect::<Vec<_>>(),
        vec![(hoist::api::MeasurementOutcome::Successful, Some("0.001")); 3]
    );
    // Measurements are an interval apart: the operator comes back for each, it is not woken by anything else.
    let gaps: Vec<i64> = step
        .measurements
        .windows(2)
        .map(|pair| pair[1].at.0.as_second() - pair[0].at.0.as_second())
        .collect();
    assert!(gaps.iter().all(|gap| *gap >= 1), "{gaps:?}");
    let verification = status
        .gates
        .iter()
        .find(|g| g.gate == GateName::Verification)
        .expect("gate");
    assert_eq!(
        (verification.state, verification.message.as_str()),
        (GateState::Passed, "1 verification step(s) passed: error-rate")
    );

    scenario.promote("regressed", "shop-1-1-0", "dev").await;
    let rolled_back = scenario.wait_phase("regressed", Phase::RolledBack).await;
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(
            "verification failed (step error-rate: 2 measurement(s) did not meet `result < 0.01` (failureLimit 1), \
             the last was 0.2; 2 of 3 measurement(s): 0 successful, 2 failed, 0 inconclusive); rolled back to shop-1-0-0 1.0.0"
                .into()
        )
    );
    let dev = runs_healthy_in_dev(&scenario, "shop-1-0-0").await;
    assert_eq!(dev.status.expect("status").history[0].outcome, Phase::RolledBack);
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        pinned(&good["backend"])
    );
    forget_error_ratios(&scenario, &["shop-1-0-0", "shop-1-1-0"]).await;
    scenario.stop().await;
}

#[tokio::test]
async fn an_empty_query_result_is_inconclusive_and_fails_past_the_inconclusive_limit() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_prometheus(&scenario, error_ratio_check(1, 0)).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    // Nothing is pushed for shop-1-0-0: the query has no sample.
    scenario.promote("unmeasured", "shop-1-0-0", "dev").await;
    let failed = scenario.wait_phase("unmeasured", Phase::Failed).await;
    let status = failed.status.expect("status");
    assert_eq!(
        status.message.as_deref(),
        Some(
            "verification failed: step error-rate: 1 measurement(s) were inconclusive (inconclusiveLimit 0): the query \
             returned no sample; 1 of 1 measurement(s): 0 successful, 0 failed, 1 inconclusive"
        )
    );
    assert_eq!(
        status.verification[0]
            .measurements
            .iter()
            .map(|m| (m.outcome, m.message.as_deref()))
            .collect::<Vec<_>>(),
        vec![(
            hoist::api::MeasurementOutcome::Inconclusive,
            Some("the query returned no sample")
        )]
    );
    scenario.stop().await;
}

const P99_BY_VERSION: &str = r#"max(hoist_test_p99_seconds{namespace="{{namespace}}", environment="{{environment}}", version="{{version}}"})"#;

/// Pushes the p99 latency of shop `version` in dev, labelled by version,
/// and waits until Prometheus returns it.
async fn p99(scenario: &Scenario, version: &str, value: f64) {
    push_dev(
        scenario,
        "hoist_test_p99_seconds",
        P99_BY_VERSION,
        ("version", version),
        value,
    )
    .await;
}

/// Each measurement's outcome, value and baseline.
fn both_values(
    step: &hoist::api::VerificationStatus,
) -> Vec<(hoist::api::MeasurementOutcome, Option<&str>, Option<&str>)> {
    step.measurements
        .iter()
        .map(|m| (m.outcome, m.value.as_deref(), m.baseline.as_deref()))
        .collect()
}

/// p99 of the new version at most 10 % above the replaced version's, twice.
fn p99_no_slower() -> hoist::api::PrometheusCheck {
    hoist::api::PrometheusCheck {
        query: P99_BY_VERSION.into(),
        baseline: Some(hoist::api::BaselineQuery {
            query: P99_BY_VERSION.replace("{{version}}", "{{previousVersion}}"),
        }),
        condition: "result <= baseline * 1.1".into(),
        ..error_ratio_check(2, 0)
    }
}

/// dev runs shop 1.0.0, then verifies every release with [`p99_no_slower`].
/// The first release has nothing to compare with: it runs before the step exists.
async fn first_release_then_p99_no_slower() -> Scenario {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("first", "shop-1-0-0", "dev").await;
    verify_dev_with_prometheus(&scenario, p99_no_slower()).await;
    scenario
}

#[tokio::test]
async fn an_empty_baseline_is_inconclusive_never_a_pass() {
    let mut scenario = first_release_then_p99_no_slower().await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    // Only the new version has a value: 1.0.0's series is empty.
    p99(&scenario, "1.1.0", 0.1).await;
    scenario.promote("unmeasured", "shop-1-1-0", "dev").await;
    let rolled_back = scenario.wait_phase("unmeasured", Phase::RolledBack).await;
    let status = rolled_back.status.expect("status");
    assert_eq!(
        status.message.as_deref(),
        Some(
            "verification failed (step error-rate: 1 measurement(s) were inconclusive (inconclusiveLimit 0): \
             baseline: the query returned no sample; 1 of 2 measurement(s): 0 successful, 0 failed, 1 inconclusive); \
             rolled back to shop-1-0-0 1.0.0"
        )
    );
    assert_eq!(
        both_values(&status.verification[0]),
        vec![(hoist::api::MeasurementOutcome::Inconclusive, Some("0.1"), None)]
    );
    forget(&scenario, "hoist_test_p99_seconds", &["1.1.0"]).await;
    scenario.stop().await;
}

#[tokio::test]
async fn a_release_no_slower_than_the_one_it_replaces_passes_and_a_regressed_one_rolls_back() {
    let mut scenario = first_release_then_p99_no_slower().await;
    let kept = scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    scenario.release("shop-1-2-0", "1.2.0", Some(REVISION)).await;
    p99(&scenario, "1.0.0", 0.2).await;
    p99(&scenario, "1.1.0", 0.21).await;
    p99(&scenario, "1.2.0", 0.3).await;

    scenario.promote_and_wait("no-slower", "shop-1-1-0", "dev").await;
    let passed = scenario.wait_phase("no-slower", Phase::Succeeded).await;
    let step = passed.status.expect("status").verification[0].clone();
    let namespace = scenario.namespace();
    assert_eq!(
        (
            step.phase,
            step.message.as_str(),
            step.query.clone(),
            step.baseline_query.clone()
        ),
        (
            hoist::api::VerificationPhase::Passed,
            "passed: 2 of 2 measurement(s): 2 successful, 0 failed, 0 inconclusive",
            Some(format!(
                r#"max(hoist_test_p99_seconds{{namespace="{namespace}", environment="dev", version="1.1.0"}})"#
            )),
            Some(format!(
                r#"max(hoist_test_p99_seconds{{namespace="{namespace}", environment="dev", version="1.0.0"}})"#
            )),
        )
    );
    assert_eq!(
        both_values(&step),
        vec![
            (
                hoist::api::MeasurementOutcome::Successful,
                Some("0.21"),
                Some("0.2")
            );
            2
        ]
    );

    scenario.promote("slower", "shop-1-2-0", "dev").await;
    let rolled_back = scenario.wait_phase("slower", Phase::RolledBack).await;
    let status = rolled_back.status.expect("status");
    assert_eq!(
        status.message.as_deref(),
        Some(
            "verification failed (step error-rate: 1 measurement(s) did not meet `result <= baseline * 1.1` \
             (failureLimit 0), the last was 0.3 (baseline 0.21); 1 of 2 measurement(s): 0 successful, 1 failed, 0 inconclusive); \
             rolled back to shop-1-1-0 1.1.0"
        )
    );
    assert_eq!(
        both_values(&status.verification[0]),
        vec![(hoist::api::MeasurementOutcome::Failed, Some("0.3"), Some("0.21"))]
    );
    runs_healthy_in_dev(&scenario, "shop-1-1-0").await;
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        pinned(&kept["backend"])
    );
    forget(&scenario, "hoist_test_p99_seconds", &["1.0.0", "1.1.0", "1.2.0"]).await;
    scenario.stop().await;
}

// Verification Jobs: run by kube-controller-manager on a real cluster, by the
// stand-in's Job controller emulation otherwise (tests/standin/README.md).

/// dev verifies every release with a Job running `script` in busybox (or `image`).
async fn verify_dev_with_job(scenario: &Scenario, image: &str, script: &str, timeout: &str, retries: i32) {
    scenario
        .update_environment("dev", |spec| {
            spec.gates.verification = vec![hoist::api::VerificationStep {
                name: "smoke".into(),
                job: Some(hoist::api::JobCheck {
                    image: image.into(),
                    command: vec!["sh".into(), "-c".into(), script.into()],
                    args: Vec::new(),
                    env: vec![hoist::api::EnvValue {
                        name: "SUITE".into(),
                        value: "smoke".into(),
                    }],
                    service_account_name: None,
                    timeout: timeout.into(),
                    retries,
                }),
                prometheus: None,
            }]
        })
        .await;
}

fn step_of(promotion: &Promotion) -> hoist::api::VerificationStatus {
    promotion
        .status
        .as_ref()
        .and_then(|s| s.verification.first().cloned())
        .expect("a verification step")
}

#[tokio::test]
async fn a_smoke_test_job_passes_and_the_promotion_succeeds() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 0", "2m", 0).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("smoke-ok", "shop-1-0-0", "dev").await;
    let done = scenario.wait_phase("smoke-ok", Phase::Succeeded).await;
    // Verification Jobs run in the tenant's namespace, owned by their Promotion.
    let namespace = scenario.namespace().to_string();
    let name = hoist::core::gates::verification::job_name("smoke-ok", done.metadata.uid.as_deref(), "smoke");
    let step = step_of(&done);
    assert_eq!(
        (step.phase, step.message.clone(), step.job.clone()),
        (
            hoist::api::VerificationPhase::Passed,
            format!("Job {namespace}/{name} completed; logs: kubectl logs -n {namespace} job/{name}"),
            Some(hoist::api::JobReference {
                namespace: namespace.clone(),
                name: name.clone()
            })
        )
    );
    let job = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(scenario.client(), &namespace)
        .get(&name)
        .await
        .expect("the Job is kept for inspection");
    assert_eq!(
        job.metadata
            .owner_references
            .as_ref()
            .map(|o| (o[0].kind.clone(), o[0].name.clone())),
        Some(("Promotion".to_string(), "smoke-ok".to_string()))
    );
    let env: BTreeMap<String, String> = job.spec.expect("spec").template.spec.expect("pod").containers[0]
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["HOIST_IMAGE_BACKEND"], pinned(&images["backend"]));
    assert_eq!(env["HOIST_ENVIRONMENT"], "dev");
    assert_eq!(env["HOIST_SOURCE_REVISION"], REVISION);
    assert_eq!(env["SUITE"], "smoke");
    scenario.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_then_the_release_is_rolled_back() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 0", "2m", 1).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let good = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    scenario.promote_and_wait("first", "shop-1-0-0", "dev").await;
    let hash = config_hash(&scenario.deployment("dev", "backend").await);

    // The next release's smoke test fails on every attempt.
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 1", "2m", 1).await;
    scenario.environment_observed("dev").await;
    scenario.promote("second", "shop-1-1-0", "dev").await;
    let namespace = scenario.namespace().to_string();
    // One failed attempt, one retry after Kubernetes' 10-second back-off.
    let rolled_back = scenario
        .cluster
        .wait_for::<Promotion>("second", TIMEOUT + Duration::from_secs(30), |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::RolledBack)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let name =
        hoist::core::gates::verification::job_name("second", rolled_back.metadata.uid.as_deref(), "smoke");
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(format!(
            "verification failed (step smoke: Job {namespace}/{name} failed: 2 of 2 attempt(s) failed; \
             logs: kubectl logs -n {namespace} job/{name}); rolled back to shop-1-0-0 1.0.0"
        ))
    );
    let backend = scenario
        .cluster
        .wait_for_in::<Deployment>(&scenario.stages["dev"], "backend", TIMEOUT, |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .map(|p| p.containers[0].image.clone())
                == Some(Some(pinned(&good["backend"])))
        })
        .await
        .expect("the previous images are back");
    assert_eq!(config_hash(&backend), hash, "and the previous configuration");
    scenario.stop().await;
}

#[tokio::test]
async fn a_job_that_cannot_start_times_out_and_fails_the_promotion() {
    let mut scenario = Scenario::new().await;
    // The image's registry never resolves: the Pod never starts, on any cluster.
    verify_dev_with_job(&scenario, "example.invalid/smoke:1", "exit 0", "10s", 0).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("stuck", "shop-1-0-0", "dev").await;
    let running = scenario
        .cluster
        .wait_for::<Promotion>("stuck", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.verification
                    .first()
                    .is_some_and(|v| v.message.contains("is running"))
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(running.status.as_ref().map(|s| s.phase), Some(Phase::Verifying));
    let failed = scenario.wait_phase("stuck", Phase::Failed).await;
    let namespace = scenario.namespace().to_string();
    let name = hoist::core::gates::verification::job_name("stuck", failed.metadata.uid.as_deref(), "smoke");
    assert_eq!(
        failed.status.and_then(|s| s.message),
        Some(format!(
            "verification failed: step smoke: Job {namespace}/{name} failed: ran longer than its timeout of 10s; \
             logs: kubectl logs -n {namespace} job/{name}"
        ))
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_bearer_token_from_a_secret_reaches_prometheus_and_a_refused_one_fails_the_step() {
    let mut scenario = Scenario::new().await;
    let proxy = hoist_testkit::prometheus::bearer_proxy("s3cret-token")
        .await
        .expect("proxy");
    let secret = |token: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "prometheus-token"},
            "stringData": {"token": format!("{token}\n")}
        }))
        .expect("secret")
    };
    scenario
        .allowed_destinations
        .push(hoist_testkit::prometheus::destination(&proxy).expect("proxy destination"));
    let secrets = Api::<Secret>::namespaced(scenario.client(), scenario.namespace());
    secrets
        .create(&PostParams::default(), &secret("s3cret-token"))
        .await
        .expect("create secret");
    verify_dev_with_prometheus(
        &scenario,
        hoist::api::PrometheusCheck {
            address: Some(proxy.clone()),
            bearer_token_secret: Some(hoist::api::SecretKeyReference {
                name: "prometheus-token".into(),
                key: "token".into(),
            }),
            consecutive_error_limit: 0,
            ..error_ratio_check(1, 0)
        },
    )
    .await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    error_ratio(&scenario, "shop-1-0-0", 0.001).await;
    error_ratio(&scenario, "shop-1-1-0", 0.001).await;
    scenario.promote_and_wait("with-token", "shop-1-0-0", "dev").await;

    // The token is rotated to one the proxy refuses: the measurement is an error, and one is too many.
    let mut wrong = secret("expired-token");
    wrong.metadata.resource_version = secrets
        .get("prometheus-token")
        .await
        .expect("secret")
        .metadata
        .resource_version;
    secrets
        .replace("prometheus-token", &PostParams::default(), &wrong)
        .await
        .expect("rotate");
    scenario.promote("refused", "shop-1-1-0", "dev").await;
    let rolled_back = scenario.wait_phase("refused", Phase::RolledBack).await;
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(
            "verification failed (step error-rate: 1 error(s) in a row (consecutiveErrorLimit 0): Prometheus refused the \
             query: a valid bearer token is required; 0 of 1 measurement(s): 0 successful, 0 failed, 0 inconclusive); \
             rolled back to shop-1-0-0 1.0.0"
                .into()
        )
    );
    forget_error_ratios(&scenario, &["shop-1-0-0", "shop-1-1-0"]).await;
    scenario.stop().await;
}

// The operator's outbound allow-list (README, "Outbound requests").

/// Promotes `artifact` into dev as `name` and waits until its verification step failed.
async fn failed_step(scenario: &Scenario, name: &str, artifact: &str) -> hoist::api::VerificationStatus {
    scenario.promote(name, artifact, "dev").await;
    let failed = scenario
        .cluster
        .wait_for::<Promotion>(name, TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.verification
                    .first()
                    .is_some_and(|v| v.phase == hoist::api::VerificationPhase::Failed)
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    step_of(&failed)
}

/// dev's step now queries `address`.
async fn verify_dev_at(scenario: &Scenario, address: &str) {
    verify_dev_with_prometheus(
        scenario,
        hoist::api::PrometheusCheck {
            address: Some(address.into()),
            consecutive_error_limit: 0,
            ..error_ratio_check(1, 0)
        },
    )
    .await;
    scenario.environment_observed("dev").await;
}

#[tokio::test]
async fn destinations_outside_the_allow_list_the_metadata_address_and_a_name_resolving_to_loopback_are_refused()
 {
    let mut scenario = Scenario::new().await;
    // Permissive-looking: every public address, and nothing that names a
    // private, loopback or link-local one.
    scenario.allowed_destinations = vec!["0.0.0.0/0".into(), "::/0".into()];
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    scenario.release("shop-1-2-0", "1.2.0", Some(REVISION)).await;
    let flag = "add it with --allow-destination (chart value verification.allowedDestinations)";
    let refused = |message: &str| -> (
        hoist::api::VerificationPhase,
        String,
        Vec<hoist::api::MeasurementOutcome>,
    ) {
        (
            hoist::api::VerificationPhase::Failed,
            format!(
                "destination refused: {message}; 0 of 1 measurement(s): 0 successful, 0 failed, 0 inconclusive"
            ),
            vec![hoist::api::MeasurementOutcome::Refused],
        )
    };
    let seen = |step: hoist::api::VerificationStatus| {
        (
            step.phase,
            step.message,
            step.measurements.iter().map(|m| m.outcome).collect::<Vec<_>>(),
        )
    };

    verify_dev_at(&scenario, "http://10.0.0.1:9090").await;
    assert_eq!(
        seen(failed_step(&scenario, "private", "shop-1-0-0").await),
        refused(&format!(
            "10.0.0.1:9090 resolves to 10.0.0.1, not in the operator's allow-list (private address: list it by name, \
             address or CIDR); {flag}"
        ))
    );

    verify_dev_at(
        &scenario,
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    )
    .await;
    assert_eq!(
        seen(failed_step(&scenario, "metadata", "shop-1-1-0").await),
        refused(&format!(
            "169.254.169.254:80 resolves to 169.254.169.254, not in the operator's allow-list (link-local address: \
             list it by address or CIDR); {flag}"
        ))
    );

    // localhost is where the test Prometheus listens: only the allow-list keeps the operator away.
    let prometheus = hoist_testkit::prometheus::address().expect("HOIST_TEST_PROMETHEUS (run scripts/test)");
    let port = reqwest::Url::parse(&prometheus)
        .ok()
        .and_then(|url| url.port())
        .expect("the test Prometheus' port");
    verify_dev_at(&scenario, &format!("http://localhost:{port}")).await;
    let loopback = seen(failed_step(&scenario, "loopback", "shop-1-2-0").await);
    // localhost resolves to 127.0.0.1 or ::1 first, as the machine's resolver orders them.
    let refused_at = |ip: &str| {
        refused(&format!(
            "localhost:{port} resolves to {ip}, not in the operator's allow-list (loopback address: list it by name, \
             address or CIDR); {flag}"
        ))
    };
    assert!(
        [refused_at("127.0.0.1"), refused_at("::1")].contains(&loopback),
        "{loopback:?}"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn status_keeps_prometheus_errors_bounded_and_no_other_answer() {
    let mut scenario = Scenario::new().await;
    // An internal service answering JSON with a credential in it, and a
    // Prometheus answering an error longer than status keeps.
    let service = hoist_testkit::prometheus::answering(
        hyper::StatusCode::OK,
        json!({"status": "error", "error": "AccessKeyId=AKIAEXAMPLESECRET"}).to_string(),
    )
    .await
    .expect("service");
    let long_error = format!("parse error: {}", "unexpected identifier ".repeat(200));
    let prometheus = hoist_testkit::prometheus::answering(
        hyper::StatusCode::BAD_REQUEST,
        json!({"status": "error", "errorType": "bad_data", "error": long_error}).to_string(),
    )
    .await
    .expect("prometheus");
    // And one answering more than the operator reads.
    let flood = hoist_testkit::prometheus::answering(hyper::StatusCode::OK, " ".repeat(5 << 20))
        .await
        .expect("flood");
    for address in [&service, &prometheus, &flood] {
        scenario
            .allowed_destinations
            .push(hoist_testkit::prometheus::destination(address).expect("destination"));
    }
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    scenario.release("shop-1-2-0", "1.2.0", Some(REVISION)).await;
    let last_error = |step: &hoist::api::VerificationStatus| {
        step.measurements
            .last()
            .and_then(|m| m.message.clone())
            .expect("a measurement with a message")
    };

    verify_dev_at(&scenario, &service).await;
    let step = failed_step(&scenario, "service", "shop-1-0-0").await;
    assert_eq!(
        last_error(&step),
        "Prometheus refused the query: the answer is not a Prometheus query API response"
    );
    assert!(!step.message.contains("AKIA"), "{}", step.message);

    verify_dev_at(&scenario, &prometheus).await;
    let step = failed_step(&scenario, "prometheus", "shop-1-1-0").await;
    let kept =
        hoist::core::gates::verification::bounded(&format!("Prometheus refused the query: {long_error}"));
    assert_eq!(
        (last_error(&step).as_str(), kept.len()),
        (kept.as_str(), hoist::core::gates::verification::MESSAGE_LIMIT)
    );
    assert_eq!(
        step.message,
        format!(
            "1 error(s) in a row (consecutiveErrorLimit 0): {kept}; 0 of 1 measurement(s): 0 successful, 0 failed, \
             0 inconclusive"
        )
    );

    verify_dev_at(&scenario, &flood).await;
    let step = failed_step(&scenario, "flood", "shop-1-2-0").await;
    assert_eq!(
        last_error(&step),
        format!("{flood} answered HTTP 200 OK with more than 4194304 bytes")
    );
    scenario.stop().await;
}

#[tokio::test]
async fn without_the_environments_policy_no_verification_job_runs_unless_the_admin_trusts_environments() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 0", "2m", 0).await;
    // The operator looks for a policy nobody installed.
    let absent = format!("hoist-environments-absent-{}", scenario.namespace());
    scenario
        .start_with(hoist::controller::Settings {
            environment_policy: absent.clone(),
            ..scenario.settings()
        })
        .await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("held", "shop-1-0-0", "dev").await;
    let waiting = scenario.wait_phase("held", Phase::Waiting).await;
    let held = format!(
        "Hoist creates no verification Job and reads no Secret for this Environment \
         (spec.gates.verification[0].job): the ValidatingAdmissionPolicy {absent} is not installed, so the API \
         server does not check that its authors may do that themselves; a cluster admin must install the \
         ValidatingAdmissionPolicy {absent} and its ValidatingAdmissionPolicyBinding {absent} (Kubernetes 1.30+) \
         from the Hoist chart or deploy/admission/, or run the operator with --trust-environments-without-policy"
    );
    assert_eq!(
        waiting.status.and_then(|s| s.message).unwrap_or_default(),
        format!("Environment dev is not ready for shop: TenantBoundaries: {held}")
    );
    let dev = Api::<Environment>::namespaced(scenario.client(), scenario.namespace())
        .get("dev")
        .await
        .expect("dev");
    let condition = dev
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == "TenantBoundaries")
        .map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()));
    assert_eq!(condition, Some(("False", "PolicyMissing", held.as_str())));
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(scenario.client(), scenario.namespace())
        .list(&Default::default())
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 0, "no Job without the policy");
    scenario.stop().await;
    // The cluster admin accepts the risk: the same Promotion goes through.
    scenario
        .start_with(hoist::controller::Settings {
            environment_policy: absent,
            trust_environments_without_policy: true,
            ..scenario.settings()
        })
        .await;
    scenario.wait_phase("held", Phase::Succeeded).await;
    scenario.stop().await;
}
