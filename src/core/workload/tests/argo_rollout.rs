use super::*;

const ROLLOUT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: backend, namespace: shop, generation: 2}
spec:
  replicas: 5
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: backend}}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
        - setWeight: 60
        - pause: {duration: 10m}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers: [{name: app, image: "registry.example.com/shop/backend:latest"}]"#;

fn at(status: &str) -> Rollout {
    with_status(WorkloadKind::Rollout, ROLLOUT, status).rollout()
}

/// The status Argo Rollouts writes once the rollout is complete.
const HEALTHY: &str = r#"  HPAReplicas: 5
  availableReplicas: 5
  blueGreen: {}
  canary: {}
  conditions:
    - {type: Available, status: "True", reason: AvailableReason, message: Rollout has minimum availability, lastTransitionTime: "2026-12-07T10:00:00Z", lastUpdateTime: "2026-12-07T10:00:00Z"}
    - {type: Paused, status: "False", reason: RolloutResumed, message: Rollout is resumed, lastTransitionTime: "2026-12-07T10:20:00Z", lastUpdateTime: "2026-12-07T10:20:00Z"}
    - {type: Progressing, status: "True", reason: NewReplicaSetAvailable, message: Rollout "backend" has successfully progressed., lastTransitionTime: "2026-12-07T10:30:00Z", lastUpdateTime: "2026-12-07T10:30:00Z"}
    - {type: Healthy, status: "True", reason: RolloutHealthy, message: Rollout is healthy, lastTransitionTime: "2026-12-07T10:30:00Z", lastUpdateTime: "2026-12-07T10:30:00Z"}
  currentPodHash: 6f8c4b7d9
  currentStepHash: 5f8d7c6b9
  currentStepIndex: 4
  observedGeneration: "2"
  phase: Healthy
  readyReplicas: 5
  replicas: 5
  selector: app=backend
  stableRS: 6f8c4b7d9
  updatedReplicas: 5"#;

#[test]
fn without_status_or_before_observing_the_spec_it_waits() {
    assert_eq!(
        workload(WorkloadKind::Rollout, ROLLOUT).rollout(),
        Rollout::Progressing("waiting for the Argo Rollouts controller to report status".into())
    );
    assert_eq!(
        at(&HEALTHY.replace("observedGeneration: \"2\"", "observedGeneration: \"1\"")),
        Rollout::Progressing("waiting for the Argo Rollouts controller to observe generation 2".into())
    );
}

#[test]
fn healthy_is_complete() {
    assert_eq!(at(HEALTHY), Rollout::Complete);
}

#[test]
fn progressing_and_paused_at_a_canary_step_keep_it_rolling() {
    assert_eq!(
        at(r#"  availableReplicas: 5
  canary: {}
  conditions:
    - {type: Progressing, status: "True", reason: ReplicaSetUpdated, message: Rollout "backend" is progressing., lastTransitionTime: "2026-12-07T10:00:05Z", lastUpdateTime: "2026-12-07T10:00:05Z"}
  currentPodHash: 6f8c4b7d9
  currentStepIndex: 0
  message: more replicas need to be updated
  observedGeneration: "2"
  phase: Progressing
  readyReplicas: 5
  replicas: 6
  stableRS: 7d9f5c6b8
  updatedReplicas: 1"#),
        Rollout::Progressing("Progressing: more replicas need to be updated".into())
    );
    assert_eq!(
        at(r#"  availableReplicas: 5
  canary: {}
  conditions:
    - {type: Paused, status: "True", reason: RolloutPaused, message: Rollout is paused, lastTransitionTime: "2026-12-07T10:01:00Z", lastUpdateTime: "2026-12-07T10:01:00Z"}
    - {type: Progressing, status: "Unknown", reason: RolloutPaused, message: Rollout is paused, lastTransitionTime: "2026-12-07T10:01:00Z", lastUpdateTime: "2026-12-07T10:01:00Z"}
  controllerPause: true
  currentPodHash: 6f8c4b7d9
  currentStepIndex: 1
  message: CanaryPauseStep
  observedGeneration: "2"
  pauseConditions:
    - {reason: CanaryPauseStep, startTime: "2026-12-07T10:01:00Z"}
  phase: Paused
  readyReplicas: 5
  replicas: 5
  stableRS: 7d9f5c6b8
  updatedReplicas: 1"#),
        Rollout::Progressing("paused at step 1 (CanaryPauseStep): waiting to be promoted".into())
    );
    // Paused by hand (spec.paused): no pause condition.
    assert_eq!(
        at(r#"  currentPodHash: 6f8c4b7d9
  message: manually paused
  observedGeneration: "2"
  phase: Paused"#),
        Rollout::Progressing("paused: manually paused".into())
    );
}

#[test]
fn aborted_analysis_failed_or_past_its_deadline_fails_it() {
    assert_eq!(
        at(r#"  abort: true
  abortedAt: "2026-12-07T10:05:00Z"
  availableReplicas: 5
  conditions:
    - {type: Progressing, status: "False", reason: RolloutAborted, message: Rollout aborted update to revision 2, lastTransitionTime: "2026-12-07T10:05:00Z", lastUpdateTime: "2026-12-07T10:05:00Z"}
  currentPodHash: 6f8c4b7d9
  currentStepIndex: 0
  message: "RolloutAborted: Rollout aborted update to revision 2"
  observedGeneration: "2"
  phase: Degraded
  readyReplicas: 5
  replicas: 5
  stableRS: 7d9f5c6b8
  updatedReplicas: 0"#),
        Rollout::Failed("aborted: RolloutAborted: Rollout aborted update to revision 2".into())
    );
    assert_eq!(
        at(r#"  abort: true
  message: "RolloutAborted: Rollout aborted update to revision 2: Metric \"error-rate\" assessed Failed due to failed (1) > failureLimit (0)"
  observedGeneration: "2"
  phase: Degraded"#),
        Rollout::Failed("aborted: RolloutAborted: Rollout aborted update to revision 2: Metric \"error-rate\" assessed Failed due to failed (1) > failureLimit (0)".into())
    );
    assert_eq!(
        at(r#"  conditions:
    - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: ReplicaSet "backend-6f8c4b7d9" has timed out progressing., lastTransitionTime: "2026-12-07T10:10:00Z", lastUpdateTime: "2026-12-07T10:10:00Z"}
  currentPodHash: 6f8c4b7d9
  message: "ProgressDeadlineExceeded: ReplicaSet \"backend-6f8c4b7d9\" has timed out progressing."
  observedGeneration: "2"
  phase: Degraded"#),
        Rollout::Failed(
            "degraded: ProgressDeadlineExceeded: ReplicaSet \"backend-6f8c4b7d9\" has timed out progressing."
                .into()
        )
    );
    assert_eq!(
        at(r#"  conditions:
    - {type: InvalidSpec, status: "True", reason: InvalidSpec, message: "The Rollout \"backend\" is invalid: spec.strategy.canary.steps[1].pause.duration: Invalid value", lastTransitionTime: "2026-12-07T10:00:00Z", lastUpdateTime: "2026-12-07T10:00:00Z"}
  observedGeneration: "2"
  phase: Degraded"#),
        Rollout::Failed("invalid spec: The Rollout \"backend\" is invalid: spec.strategy.canary.steps[1].pause.duration: Invalid value".into())
    );
}
