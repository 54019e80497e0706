//! No write amplification: with a Deployment controller that takes 300 ms
//! from a Deployment write to its status update (as a loaded
//! kube-controller-manager does), a promotion of two components writes the
//! Promotion's status at most once per phase change (plus the first), patches
//! each Deployment exactly once, and creates one Event per transition.

use std::time::Duration;

use futures::StreamExt;
use hoist::api::{Phase, Promotion};
use hoist_testkit::cluster::{Request, TestCluster};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use super::{REVISION, Scenario, TIMEOUT, artifact_ready};

/// The stand-in Deployment controller's reaction delay in these tests.
const CONTROLLER_DELAY: Duration = Duration::from_millis(300);

/// `METHOD path` of each write among `requests` whose path contains `part`, in order.
fn writes_to(requests: &[Request], part: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|request| request.is_write() && request.path.contains(part))
        .map(|request| format!("{} {}", request.method, request.path))
        .collect()
}

/// Promotes `artifact` to dev as Promotion `name` once the operator is
/// quiet; answers the phases the Promotion passed through (as a watcher
/// saw them) and the operator's requests until it was quiet again.
async fn promote_counted(scenario: &Scenario, name: &str, artifact: &str) -> (Vec<Phase>, Vec<Request>) {
    artifact_ready(scenario, artifact).await;
    scenario.quiet().await;
    scenario.requests().reset();
    let promotions: Api<Promotion> = Api::namespaced(scenario.client(), scenario.namespace());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut seen = watcher(promotions, config).applied_objects().boxed();
    scenario.promote(name, artifact, "dev").await;
    let mut phases = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        while let Some(promotion) = seen.next().await {
            let phase = promotion.expect("watch").status.map(|status| status.phase);
            if let Some(phase) = phase
                && phases.last() != Some(&phase)
            {
                phases.push(phase);
            }
            if phase == Some(Phase::Succeeded) {
                return;
            }
        }
    })
    .await
    .expect("the promotion succeeds");
    scenario.quiet().await;
    (phases, scenario.requests().all())
}

/// The write counts the issue asks for, for Promotion `name` into dev.
fn assert_no_amplification(scenario: &Scenario, name: &str, phases: &[Phase], requests: &[Request]) {
    let namespace = scenario.namespace();
    let status_writes = writes_to(requests, &format!("/{namespace}/promotions/{name}/status"));
    assert!(
        status_writes.len() <= 1 + phases.len(),
        "{} status writes of {name} for the phases {phases:?}",
        status_writes.len()
    );
    let dev = &scenario.stages["dev"];
    assert_eq!(
        writes_to(requests, "/deployments/"),
        vec![
            format!("PATCH /apis/apps/v1/namespaces/{dev}/deployments/backend"),
            format!("PATCH /apis/apps/v1/namespaces/{dev}/deployments/frontend"),
        ],
        "one apply per target for {name}"
    );
    assert_eq!(
        writes_to(requests, "/events").len(),
        2,
        "one Event per transition of {name} (Promoting, Promoted)"
    );
}

#[tokio::test]
async fn a_slow_deployment_controller_adds_no_writes_to_promotions() {
    let cluster = TestCluster::with_deployment_controller_delay(CONTROLLER_DELAY)
        .await
        .expect("test cluster");
    let mut scenario = Scenario::on(cluster).await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let (phases, requests) = promote_counted(&scenario, "to-dev", "shop-1-0-0").await;
    assert_eq!(phases, [Phase::Verifying, Phase::Succeeded]);
    assert_no_amplification(&scenario, "to-dev", &phases, &requests);

    // The next release replaces one that runs: its pins are the only patches.
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    let (phases, requests) = promote_counted(&scenario, "to-dev-again", "shop-1-1-0").await;
    assert_eq!(phases, [Phase::Verifying, Phase::Succeeded]);
    assert_no_amplification(&scenario, "to-dev-again", &phases, &requests);
    scenario.stop().await;
}
