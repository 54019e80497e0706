//! Restarts: an idle resync writes nothing, and a crash at any point neither
//! loses nor repeats a promotion.

use std::collections::BTreeSet;
use std::time::Duration;

use hoist::api::{Environment, Phase};
use hoist_testkit::{health, reconciles};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{REVISION, STAGES, Scenario, TIMEOUT, artifact_ready, history_of, pinned, wait_pinned};

#[tokio::test]
async fn a_full_resync_of_an_idle_system_writes_nothing() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(Some(REVISION)).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.wait_phase("to-prod", Phase::Waiting).await;
    // Let the operator finish what it was doing, then restart it: a restart
    // lists everything and reconciles every object.
    scenario.quiet().await;
    scenario.stop().await;
    let mark = reconciles::Mark::now();
    scenario.start().await;
    // Not vacuous: every Environment, the Artifact and the three Promotions
    // were reconciled again, without an error, and wrote nothing.
    let every: BTreeSet<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let health = scenario.operator.as_ref().expect("operator").health;
    let runs = |controller: &'static str| async move {
        health::metric(
            health,
            &format!("hoist_reconciliations_total{{controller=\"{controller}\"}}"),
        )
        .await
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !mark.since(scenario.namespace()).is_superset(&every)
        || runs("artifact").await < 1.0
        || runs("promotion").await < 3.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?} of {every:?}, {} Artifact and {} Promotion reconciles after the restart",
            mark.since(scenario.namespace()),
            runs("artifact").await,
            runs("promotion").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scenario.quiet().await;
    let metrics = health::get(health, "/metrics").await.expect("metrics").1;
    assert!(
        !metrics.contains("hoist_reconciliation_errors_total{"),
        "reconciles failed after the restart:\n{metrics}"
    );
    let requests = scenario.requests().all();
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "an idle resync writes nothing");
    assert!(
        requests.iter().any(|r| r.method == "GET"),
        "it did read: {requests:?}"
    );
    scenario.stop().await;
}

/// Kills the operator at `point` of a promotion to dev, starts it again,
/// and checks the promotion happened exactly once.
async fn crash_at(point: &str) {
    let mut scenario = Scenario::new().await;
    let deployments: Api<Deployment> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    if point == "while-verifying" {
        // One replica that never becomes available (its sidecar image cannot
        // be pulled) holds the rollout open for the 600-second deadline.
        let hold = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600}});
        deployments
            .patch("backend", &PatchParams::default(), &Patch::Merge(&hold))
            .await
            .expect("hold rollout");
    }
    let generation_before = deployments
        .get("backend")
        .await
        .expect("deployment")
        .metadata
        .generation
        .unwrap_or(0);
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let namespace = scenario.stages["dev"].clone();
    let expected = pinned(&images["backend"]);
    let mut template_changes = 1;
    match point {
        "after-resolution" => {
            artifact_ready(&scenario, "shop-1-0-0").await;
            scenario.kill().await;
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
        }
        "after-deployment-patch" => {
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
            wait_pinned(
                &scenario.cluster,
                &namespace,
                "backend",
                &expected,
                "deployment patched",
            )
            .await;
            scenario.kill().await;
        }
        _ => {
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
            scenario.wait_phase("to-dev", Phase::Verifying).await;
            scenario.kill().await;
            // With the operator down, the rollout completes: no replica has to run.
            let release = json!({"spec": {"replicas": 0}});
            deployments
                .patch("backend", &PatchParams::default(), &Patch::Merge(&release))
                .await
                .expect("scale down");
            template_changes += 1;
        }
    }
    scenario.start().await;
    scenario.wait_phase("to-dev", Phase::Succeeded).await;
    let dev = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| !s.history.is_empty())
        })
        .await
        .expect("history");
    assert_eq!(
        history_of(dev),
        vec![("to-dev".to_string(), Phase::Succeeded)],
        "{point}: exactly one release"
    );
    let deployment = scenario.deployment("dev", "backend").await;
    assert_eq!(
        deployment.metadata.generation,
        Some(generation_before + template_changes),
        "{point}: Hoist changed the Deployment once"
    );
    assert_eq!(scenario.images("dev", "backend").await[0].1, expected);
    scenario.stop().await;
}

#[tokio::test]
async fn a_crash_after_resolution_neither_loses_nor_repeats_the_promotion() {
    crash_at("after-resolution").await;
}

#[tokio::test]
async fn a_crash_after_the_deployment_patch_neither_loses_nor_repeats_the_promotion() {
    crash_at("after-deployment-patch").await;
}

#[tokio::test]
async fn a_crash_while_verifying_neither_loses_nor_repeats_the_promotion() {
    crash_at("while-verifying").await;
}
