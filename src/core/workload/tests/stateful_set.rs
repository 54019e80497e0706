use super::*;

/// As the API server stores it: updateStrategy defaulted to RollingUpdate
/// with partition 0.
const STATEFUL_SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: queue, namespace: shop, generation: 2}
spec:
  replicas: 3
  serviceName: queue
  podManagementPolicy: OrderedReady
  selector: {matchLabels: {app: queue}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 0}
  template:
    metadata: {labels: {app: queue}}
    spec:
      containers: [{name: app, image: "registry.example.com/shop/queue:latest"}]"#;

fn at(spec: &str, status: &str) -> Rollout {
    with_status(WorkloadKind::StatefulSet, spec, status).rollout()
}

#[test]
fn without_status_or_before_observing_the_spec_it_waits() {
    assert_eq!(
        workload(WorkloadKind::StatefulSet, STATEFUL_SET).rollout(),
        Rollout::Progressing("waiting for the StatefulSet controller to report status".into())
    );
    assert_eq!(
        at(
            STATEFUL_SET,
            "  observedGeneration: 1\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 3\n  updatedReplicas: 3\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-7c9f8d6b5d\n  collisionCount: 0"
        ),
        Rollout::Progressing("waiting for the StatefulSet controller to observe generation 2".into())
    );
}

#[test]
fn each_instant_of_a_rolling_update_from_the_highest_ordinal_down() {
    // queue-2 replaced and starting: two ready, none updated and ready yet.
    assert_eq!(
        at(
            STATEFUL_SET,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 2\n  availableReplicas: 2\n  currentReplicas: 2\n  updatedReplicas: 1\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-5b7d9c4f8c\n  collisionCount: 0"
        ),
        Rollout::Progressing("2 of 3 replicas ready".into())
    );
    // queue-2 ready on the new revision, queue-1 next.
    assert_eq!(
        at(
            STATEFUL_SET,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 2\n  updatedReplicas: 1\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-5b7d9c4f8c\n  collisionCount: 0"
        ),
        Rollout::Progressing("1 of 3 replicas updated".into())
    );
    // Every pod updated: the controller moved currentRevision on.
    assert_eq!(
        at(
            STATEFUL_SET,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 3\n  updatedReplicas: 3\n  currentRevision: queue-5b7d9c4f8c\n  updateRevision: queue-5b7d9c4f8c\n  collisionCount: 0"
        ),
        Rollout::Complete
    );
}

#[test]
fn a_partitioned_update_is_complete_once_the_ordinals_above_the_partition_run_it() {
    let partitioned = STATEFUL_SET.replace("partition: 0", "partition: 2");
    assert_eq!(
        at(
            &partitioned,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 3\n  updatedReplicas: 0\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-5b7d9c4f8c\n  collisionCount: 0"
        ),
        Rollout::Progressing("0 of 1 replicas updated (partition 2)".into())
    );
    // currentRevision stays behind with a partition: complete all the same.
    assert_eq!(
        at(
            &partitioned,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 2\n  updatedReplicas: 1\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-5b7d9c4f8c\n  collisionCount: 0"
        ),
        Rollout::Complete
    );
}

#[test]
fn without_a_rolling_update_block_the_revisions_decide() {
    let plain = STATEFUL_SET.replace("    rollingUpdate: {partition: 0}\n", "");
    assert_eq!(
        at(
            &plain,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 1\n  updatedReplicas: 2\n  currentRevision: queue-7c9f8d6b5d\n  updateRevision: queue-5b7d9c4f8c"
        ),
        Rollout::Progressing("2 of 3 replicas at revision queue-5b7d9c4f8c".into())
    );
    assert_eq!(
        at(
            &plain,
            "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3\n  availableReplicas: 3\n  currentReplicas: 3\n  updatedReplicas: 3\n  currentRevision: queue-5b7d9c4f8c\n  updateRevision: queue-5b7d9c4f8c"
        ),
        Rollout::Complete
    );
}

#[test]
fn on_delete_never_rolls_by_itself() {
    let on_delete = STATEFUL_SET.replace(
        "    type: RollingUpdate\n    rollingUpdate: {partition: 0}",
        "    type: OnDelete",
    );
    assert_eq!(
        at(&on_delete, "  observedGeneration: 2\n  replicas: 3\n  readyReplicas: 3"),
        Rollout::Failed(
            "updateStrategy OnDelete replaces no pod by itself: Hoist rolls out StatefulSets with RollingUpdate".into()
        )
    );
}
