//! DORA metrics through the operator: a release that succeeds, one whose
//! rollout fails and is rolled back, and the restore when what ran before
//! is healthy again produce exactly these samples on /metrics, each once;
//! a restarted operator counts none of them again; the real Prometheus of
//! the tests scrapes them with the tenant's labels. The chart's dashboard
//! names only metrics this /metrics exports.

use std::collections::BTreeSet;

use hoist_testkit::{dashboard, health, prometheus};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;

/// Artifact `name` of freshly pushed images, committed `committed_ago` before now.
async fn committed_release(scenario: &Scenario, name: &str, version: &str, committed_ago: SignedDuration) {
    let images = push_multi("shop", &[("backend", version), ("frontend", version)])
        .await
        .expect("push images");
    let committed = Timestamp::now() - committed_ago;
    let source = json!({"source": {"repository": "https://github.com/acme/shop", "revision": REVISION,
        "committedAt": committed.to_string()}});
    scenario.artifact_of(name, version, &images, source).await;
}

async fn scale(scenario: &Scenario, replicas: i32) {
    Api::<Deployment>::namespaced(scenario.client(), &scenario.stages["dev"])
        .patch(
            "backend",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("scale");
}

/// The value of sample `name{labels}` of `/metrics`.
async fn labelled(scenario: &Scenario, name: &str, labels: &str) -> f64 {
    health::metric(scenario.health(), &format!("{name}{{{labels}}}")).await
}

/// The samples of `/metrics` whose name starts with `prefix`, as lines, sorted
/// (a family lists its label sets in no fixed order).
fn samples(metrics: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = metrics
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_success_a_rollback_and_its_restore_are_counted_once_on_metrics() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    committed_release(&scenario, "shop-1-0-0", "1.0.0", SignedDuration::from_hours(1)).await;
    committed_release(&scenario, "shop-2-0-0", "2.0.0", SignedDuration::from_hours(1)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;

    // One replica never becomes available (its sidecar cannot be pulled):
    // 2.0.0's rollout fails and dev rolls back to 1.0.0, which is healthy
    // again once scaled back to none.
    scale(&scenario, 1).await;
    scenario.promote("v2", "shop-2-0-0", "dev").await;
    scenario.wait_phase("v2", Phase::RolledBack).await;
    scale(&scenario, 0).await;
    let restored = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |environment| {
            environment
                .status
                .as_ref()
                .and_then(|status| status.history.first())
                .is_some_and(|entry| entry.restored_at.is_some())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let history = restored.status.expect("status").history;
    let (rolled_back, released) = (&history[0], &history[1]);
    assert_eq!(
        (
            rolled_back.promotion.as_str(),
            rolled_back.outcome,
            released.outcome
        ),
        ("v2", Phase::RolledBack, Phase::Succeeded)
    );
    assert!(
        released.committed_at.is_some(),
        "the history keeps the commit's time"
    );

    let (_, metrics) = health::get(scenario.health(), "/metrics").await.expect("metrics");
    let ns = scenario.namespace().to_string();
    let labels = format!("namespace=\"{ns}\",application=\"shop\",environment=\"dev\"");
    assert_eq!(
        samples(&metrics, "hoist_deployments_total"),
        vec![
            format!("hoist_deployments_total{{{labels},outcome=\"RolledBack\"}} 1"),
            format!("hoist_deployments_total{{{labels},outcome=\"Succeeded\"}} 1"),
        ]
    );
    assert_eq!(
        labelled(&scenario, "hoist_lead_time_seconds_count", &labels).await,
        1.0
    );
    // Committed an hour before the release succeeded (within the test's minute).
    let lead_time = labelled(&scenario, "hoist_lead_time_seconds_sum", &labels).await;
    assert!((3600.0..3660.0).contains(&lead_time), "{lead_time}");
    assert_eq!(
        samples(&metrics, "hoist_lead_time_seconds_bucket")
            .iter()
            .filter(|line| line.contains("le=\"3600.0\"") || line.contains("le=\"7200.0\""))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            format!("hoist_lead_time_seconds_bucket{{le=\"3600.0\",{labels}}} 0"),
            format!("hoist_lead_time_seconds_bucket{{le=\"7200.0\",{labels}}} 1"),
        ]
    );
    let restore = rolled_back
        .restored_at
        .as_ref()
        .expect("restored")
        .0
        .duration_since(rolled_back.completed_at.as_ref().expect("completed").0);
    assert_eq!(
        labelled(&scenario, "hoist_time_to_restore_seconds_count", &labels).await,
        1.0
    );
    // The status keeps whole seconds; the metric was observed before they were cut.
    let time_to_restore = labelled(&scenario, "hoist_time_to_restore_seconds_sum", &labels).await;
    assert!(
        (time_to_restore - restore.as_secs_f64()).abs() < 1.0,
        "{time_to_restore} observed, {restore:?} recorded"
    );

    // Every sample of this /metrics is of a family the operator lists as
    // exported, and the chart's dashboard names only samples of those.
    let listed: BTreeSet<String> = hoist::controller::METRIC_FAMILIES
        .iter()
        .flat_map(|(name, kind)| dashboard::samples_of(name, kind.as_str()))
        .collect();
    let exported = dashboard::exported(&metrics);
    assert_eq!(
        exported.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "samples of families METRIC_FAMILIES does not list"
    );
    let queries = dashboard::queries(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/hoist/dashboards/hoist.json"
    )))
    .expect("the dashboard");
    let named: BTreeSet<String> = queries
        .iter()
        .flat_map(|query| dashboard::metric_names(&dashboard::substituted(&query.expr)))
        .collect();
    assert_eq!(
        named.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the dashboard names metrics the operator does not export"
    );
    for shown in [
        "hoist_deployments_total",
        "hoist_lead_time_seconds_bucket",
        "hoist_time_to_restore_seconds_bucket",
        "hoist_reconciliation_errors_total",
        "hoist_reconcile_duration_seconds_bucket",
        "hoist_caches_unlisted",
        "hoist_leader",
    ] {
        assert!(named.contains(shown), "the dashboard shows no {shown}: {named:?}");
    }
    // A panel naming a metric nobody exports would be found.
    assert_eq!(
        dashboard::metric_names("sum by (le) (rate(hoist_deploys_total{outcome=\"Failed\"}[5m])) / 2")
            .difference(&listed)
            .collect::<Vec<_>>(),
        vec!["hoist_deploys_total"]
    );

    // A real Prometheus scraping this /metrics as the chart's
    // ServiceMonitor has it (honorLabels) keeps the tenant's namespace
    // label, and the change failure rate comes out of its query.
    let job = format!("hoist-dora-{ns}");
    let target = prometheus::scrape(scenario.health(), &job).expect("scrape target");
    let of_dev = format!("job=\"{job}\",namespace=\"{ns}\",application=\"shop\",environment=\"dev\"");
    prometheus::wait_for(
        &format!(
            "sum(hoist_deployments_total{{{of_dev},outcome=~\"Failed|RolledBack\"}}) / sum(hoist_deployments_total{{{of_dev}}})"
        ),
        Some("0.5"),
    )
    .await
    .expect("the change failure rate scraped by Prometheus");
    prometheus::wait_for(&format!("hoist_lead_time_seconds_count{{{of_dev}}}"), Some("1"))
        .await
        .expect("the lead time scraped by Prometheus");
    drop(target);

    // A restart reads the same history: nothing is counted again.
    scenario.stop().await;
    scenario.start().await;
    scenario.quiet().await;
    let (_, metrics) = health::get(scenario.health(), "/metrics").await.expect("metrics");
    assert!(
        health::metric(
            scenario.health(),
            "hoist_reconciliations_total{controller=\"environment\"}"
        )
        .await
            > 0.0,
        "{metrics}"
    );
    assert_eq!(samples(&metrics, "hoist_deployments_total"), Vec::<String>::new());
    assert_eq!(
        samples(&metrics, "hoist_lead_time_seconds_count"),
        Vec::<String>::new()
    );
    scenario.stop().await;
}
