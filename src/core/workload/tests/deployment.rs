use super::*;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: shop, generation: 2}
spec:
  replicas: 3
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers: [{name: app, image: "registry.example.com/shop/backend:latest"}]"#;

fn at(status: &str) -> Rollout {
    with_status(WorkloadKind::Deployment, DEPLOYMENT, status).rollout()
}

#[test]
fn without_status_it_waits_for_the_controller() {
    assert_eq!(
        workload(WorkloadKind::Deployment, DEPLOYMENT).rollout(),
        Rollout::Progressing("waiting for the Deployment controller to report status".into())
    );
}

#[test]
fn each_instant_of_a_rolling_update() {
    assert_eq!(
        at(
            "  observedGeneration: 1\n  replicas: 3\n  updatedReplicas: 3\n  readyReplicas: 3\n  availableReplicas: 3"
        ),
        Rollout::Progressing("waiting for the Deployment controller to observe generation 2".into())
    );
    assert_eq!(
        at(
            "  observedGeneration: 2\n  replicas: 4\n  updatedReplicas: 1\n  readyReplicas: 3\n  availableReplicas: 3\n  unavailableReplicas: 1"
        ),
        Rollout::Progressing("1 of 3 replicas updated".into())
    );
    assert_eq!(
        at(
            "  observedGeneration: 2\n  replicas: 4\n  updatedReplicas: 3\n  readyReplicas: 4\n  availableReplicas: 4"
        ),
        Rollout::Progressing("1 old replicas pending termination".into())
    );
    assert_eq!(
        at(
            "  observedGeneration: 2\n  replicas: 3\n  updatedReplicas: 3\n  readyReplicas: 2\n  availableReplicas: 2\n  unavailableReplicas: 1"
        ),
        Rollout::Progressing("2 of 3 updated replicas available".into())
    );
    assert_eq!(
        at(
            "  observedGeneration: 2\n  replicas: 3\n  updatedReplicas: 3\n  readyReplicas: 3\n  availableReplicas: 3"
        ),
        Rollout::Complete
    );
}

#[test]
fn scaled_to_zero_is_complete() {
    let text = DEPLOYMENT.replace("replicas: 3", "replicas: 0");
    assert_eq!(
        with_status(WorkloadKind::Deployment, &text, "  observedGeneration: 2").rollout(),
        Rollout::Complete
    );
}

#[test]
fn its_progress_deadline_fails_it() {
    assert_eq!(
        at(r#"  observedGeneration: 2
  replicas: 4
  updatedReplicas: 1
  readyReplicas: 3
  availableReplicas: 3
  unavailableReplicas: 1
  conditions:
    - type: Available
      status: "True"
      reason: MinimumReplicasAvailable
      message: Deployment has minimum availability.
      lastTransitionTime: "2026-12-07T10:00:00Z"
      lastUpdateTime: "2026-12-07T10:00:00Z"
    - type: Progressing
      status: "False"
      reason: ProgressDeadlineExceeded
      message: ReplicaSet "backend-5d" has timed out progressing.
      lastTransitionTime: "2026-12-07T10:10:00Z"
      lastUpdateTime: "2026-12-07T10:10:00Z""#),
        Rollout::Failed(
            "rollout exceeded its progress deadline: ReplicaSet \"backend-5d\" has timed out progressing."
                .into()
        )
    );
}
