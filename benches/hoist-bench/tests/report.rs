//! The bench's report, from a small run on the API stand-in and the test
//! registry (`HOIST_TEST_REGISTRY`, as `scripts/test` starts it).

use std::time::Duration;

/// How long a small run may take.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the bench small with `args` and answers its report (stdout).
async fn small_run(args: &[&str]) -> String {
    hoist_testkit::registry::registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist-bench"))
        .args(["--base-environments", "1", "--factors", "1", "--timed", "4"])
        .args(["--registry-artifacts", "1", "--registry-references", "2"])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("a small run ends within five minutes")
        .expect("the bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The cells of the report's row for size `factor`.
fn row(report: &str, factor: &str) -> Vec<String> {
    let line = report
        .lines()
        .find(|line| line.starts_with(&format!("| {factor} |")))
        .unwrap_or_else(|| panic!("no row of {factor} in:\n{report}"));
    line.trim_matches('|')
        .split('|')
        .map(|cell| cell.trim().to_owned())
        .collect()
}

/// `p50 / p90 / p99` in milliseconds.
fn triple(cell: &str) -> [f64; 3] {
    let figures: Vec<f64> = cell
        .split('/')
        .map(|figure| figure.trim().parse().expect("a figure in ms"))
        .collect();
    figures.try_into().expect("three percentiles")
}

#[tokio::test]
async fn a_slow_deployment_controller_is_reported_as_such_not_as_the_operators_cost() {
    let report = small_run(&["--deployment-controller-delay", "300ms"]).await;
    assert!(
        report.contains(
            "API server: the in-process stand-in, the Deployment controller answering after 300 ms."
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "| size | Artifacts / Environments / Promotions | timed | operator p50 / p90 / p99 (ms) | \
             bare p50 / p90 / p99 (ms) | operator/bare p50, p99 | operator overhead p50 / p90 / p99 (ms) |"
        ),
        "{report}"
    );
    let cells = row(&report, "1×");
    assert_eq!(cells[1..3], ["10 / 1 / 10", "4"], "{report}");
    let [operator, _, _] = triple(&cells[3]);
    let [bare, _, _] = triple(&cells[4]);
    let [overhead, _, _] = triple(&cells[6]);
    // Both wait for the controller; the operator's own part is what is left.
    assert!(operator >= 300.0 && bare >= 300.0, "{report}");
    assert!(overhead < operator - 250.0, "{report}");
    assert!(
        report.contains("- operator overhead: from the Deployment controller having rolled out both pins"),
        "{report}"
    );
}

#[tokio::test]
async fn a_two_cluster_run_reports_the_same_figures_and_the_requests_by_cluster() {
    let report = small_run(&["--workload-cluster"]).await;
    assert!(
        report.contains(
            "API server: two in-process stand-ins: a hub (the operator) and a workload cluster (an agent, \
             `hoist agent`)."
        ),
        "{report}"
    );
    let cells = row(&report, "1×");
    assert_eq!(cells[1..3], ["10 / 1 / 10", "4"], "{report}");
    for latencies in [&cells[3], &cells[4], &cells[6]] {
        let [p50, p90, p99] = triple(latencies);
        assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{report}");
    }
    let requests = report
        .lines()
        .find(|line| line.starts_with("- 1×: "))
        .unwrap_or_else(|| panic!("no requests line in:\n{report}"));
    // Each promotion pins both Deployments in the workload cluster and
    // records its outcome on the hub, where the hub operator labels it
    // with the cluster.
    for part in [
        "agent → workload: patch deployments 2.00",
        "agent → hub: patch environments/status 1.00",
        "agent → hub: create events 2.00",
        "hub operator: patch promotions 1.00",
    ] {
        assert!(requests.contains(part), "{part} in {requests}");
    }
    assert!(
        !report.contains("Idle resync"),
        "the idle resync is the one-cluster run's: {report}"
    );
}

#[tokio::test]
async fn with_retention_what_nothing_needs_goes_and_the_memory_after_it_is_reported() {
    let report = small_run(&[
        "--retention",
        "--retention-interval",
        "1s",
        "--promotions-per-environment",
        "12",
    ])
    .await;
    let cells = row(&report, "1×");
    assert_eq!(cells[1..3], ["12 / 1 / 12", "4"], "{report}");
    let retained = report
        .lines()
        .find(|line| line.starts_with("- 1× with retention "))
        .unwrap_or_else(|| panic!("no retention line in:\n{report}"));
    // The newest three of each stay: the running release, its rollback
    // target and one more, and the Promotions that brought them.
    assert!(
        retained
            .contains("once retention deleted 18 objects; 3 of 12 Artifacts and 3 of 12 Promotions left."),
        "{retained}"
    );
    assert!(
        retained.contains(
            "every Environment keeps 3 Artifacts per application, 3 finished Promotions, none younger than 1s, \
             and 3 history entries; Artifacts published release by release; a pass every 1.0 s): RSS "
        ),
        "{retained}"
    );
    assert!(
        retained.ends_with("left. Code is the resident pages of the program's file (RssFile)."),
        "{retained}"
    );
    // Restarted on what retention left, the operator writes (and deletes) nothing.
    assert!(
        report.contains("Idle resync (operator restarted on the settled 1× store): 0 writes,"),
        "{report}"
    );
    assert!(
        report.contains(
            "| RSS ≤ 64 MiB at 12/1/12, retention on (the most of synced, after promotions, after retention \
             and at ready after a restart) | "
        ),
        "{report}"
    );
}
