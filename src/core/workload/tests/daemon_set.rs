use super::*;

/// As the API server stores it: RollingUpdate, maxUnavailable 1, maxSurge 0.
const DAEMON_SET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop, generation: 2}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: app, image: "registry.example.com/shop/agent:latest"}]"#;

fn at(status: &str) -> Rollout {
    with_status(WorkloadKind::DaemonSet, DAEMON_SET, status).rollout()
}

#[test]
fn without_status_or_before_observing_the_spec_it_waits() {
    assert_eq!(
        workload(WorkloadKind::DaemonSet, DAEMON_SET).rollout(),
        Rollout::Progressing("waiting for the DaemonSet controller to report status".into())
    );
    assert_eq!(
        at(
            "  currentNumberScheduled: 2\n  desiredNumberScheduled: 2\n  numberAvailable: 2\n  numberMisscheduled: 0\n  numberReady: 2\n  observedGeneration: 1\n  updatedNumberScheduled: 2"
        ),
        Rollout::Progressing("waiting for the DaemonSet controller to observe generation 2".into())
    );
}

#[test]
fn each_instant_of_a_rolling_update_node_by_node() {
    // One node's pod replaced and starting.
    assert_eq!(
        at(
            "  currentNumberScheduled: 2\n  desiredNumberScheduled: 2\n  numberAvailable: 1\n  numberMisscheduled: 0\n  numberReady: 1\n  numberUnavailable: 1\n  observedGeneration: 2\n  updatedNumberScheduled: 1"
        ),
        Rollout::Progressing("1 of 2 nodes run the new pod".into())
    );
    // Both replaced, the second still starting.
    assert_eq!(
        at(
            "  currentNumberScheduled: 2\n  desiredNumberScheduled: 2\n  numberAvailable: 1\n  numberMisscheduled: 0\n  numberReady: 1\n  numberUnavailable: 1\n  observedGeneration: 2\n  updatedNumberScheduled: 2"
        ),
        Rollout::Progressing("1 of 2 updated pods available".into())
    );
    assert_eq!(
        at(
            "  currentNumberScheduled: 2\n  desiredNumberScheduled: 2\n  numberAvailable: 2\n  numberMisscheduled: 0\n  numberReady: 2\n  observedGeneration: 2\n  updatedNumberScheduled: 2"
        ),
        Rollout::Complete
    );
}

#[test]
fn on_no_node_it_is_complete_and_on_delete_never_rolls() {
    assert_eq!(
        at(
            "  currentNumberScheduled: 0\n  desiredNumberScheduled: 0\n  numberMisscheduled: 0\n  numberReady: 0\n  observedGeneration: 2"
        ),
        Rollout::Complete
    );
    let on_delete = DAEMON_SET.replace(
        "    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}",
        "    type: OnDelete",
    );
    assert_eq!(
        with_status(WorkloadKind::DaemonSet, &on_delete, "  desiredNumberScheduled: 2\n  currentNumberScheduled: 2\n  numberMisscheduled: 0\n  numberReady: 2\n  observedGeneration: 2").rollout(),
        Rollout::Failed("updateStrategy OnDelete replaces no pod by itself: Hoist rolls out DaemonSets with RollingUpdate".into())
    );
}
