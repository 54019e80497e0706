//! Trimming can never change a decision: `plan` gives the same Plan on
//! the objects as the caches hold them as on the objects the API holds.

use super::*;
use crate::api::{Phase, Promotion};
use crate::core::environment::fixture::{self, A, B, C, Objects, at, yaml};
use crate::core::environment::{Plan, plan};
use crate::core::workload::Workload;

/// The Deployment as the API holds it: everything a real one carries.
fn full_deployment(image: &str, annotations: &str, status: &str) -> Workload {
    Workload::Deployment(yaml(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  namespace: shop
  generation: 4
  uid: 0b5e0ab4-5f0e-4c45-9a8e-3a1f3d6c1a11
  resourceVersion: "812"
  labels: {{app: backend, team: payments, hoist.dev/environment: dev, hoist.dev/tenant: shop}}
  annotations:
    deployment.kubernetes.io/revision: "3"
    kubectl.kubernetes.io/last-applied-configuration: '{{"apiVersion":"apps/v1","kind":"Deployment"}}'
  ownerReferences:
    - {{apiVersion: argoproj.io/v1alpha1, kind: Application, name: shop, uid: 7d0c, controller: true}}
  finalizers: [example.com/keep]
  managedFields:
    - {{manager: kubectl, operation: Update, apiVersion: apps/v1, fieldsType: FieldsV1, fieldsV1: {{f:spec: {{}}}}}}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 120
  minReadySeconds: 3
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  selector: {{matchLabels: {{app: backend}}}}
  template:
    metadata:
      labels: {{app: backend}}
      annotations: {{prometheus.io/scrape: "true"{annotations}}}
    spec:
      serviceAccountName: backend
      terminationGracePeriodSeconds: 45
      containers:
        - name: app
          image: "{image}"
          ports: [{{containerPort: 8080, name: http}}]
          env: [{{name: MODE, value: live}}]
          envFrom: [{{configMapRef: {{name: shop-config}}}}]
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}
          readinessProbe: {{httpGet: {{path: /ready, port: http}}}}
        - {{name: proxy, image: "registry.example.com/proxy:2", args: [--port, "9090"]}}
      volumes: [{{name: config, configMap: {{name: shop-config}}}}]
status: {status}
"#
    )))
}

/// A Promotion as the API holds it once ended: full status and spec.
fn full_ended(name: &str, artifact: &str, phase: &str, completed: &str) -> Promotion {
    yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata:
  name: {name}
  namespace: shop
  generation: 2
  creationTimestamp: "{created}"
  managedFields: [{{manager: kubectl-hoist, operation: Update, apiVersion: hoist.dev/v1alpha1}}]
spec:
  artifact: {artifact}
  environment: dev
  reason: release train 42
  override: {{waive: [Upstream], justification: "hotfix for incident 7"}}
  approvals: [{{user: alice, comment: looks good}}, {{user: bob}}]
status:
  observedGeneration: 2
  phase: {phase}
  message: "{artifact} runs in dev"
  rollback: false
  startedAt: "{completed}"
  completedAt: "{completed}"
  conditions:
    - {{type: Ready, status: "True", reason: {phase}, message: done, observedGeneration: 2, lastTransitionTime: "{completed}"}}
  gates:
    - {{gate: ArtifactReady, state: Passed, message: resolved, lastChecked: "{completed}"}}
    - {{gate: Approval, state: Passed, message: approved by alice, lastChecked: "{completed}"}}
  approvals: [{{user: alice, at: "{completed}", verified: false}}]
  changes: [{{component: backend, namespace: shop, deployment: backend, container: app, to: "{A}"}}]
  config: {{to: "sha256:1111"}}
"#,
        created = at(1).0,
    ))
}

/// What the caches make of `objects`.
fn cached(objects: &Objects) -> Objects {
    let mut slimmed = Objects::new(objects.environment.clone());
    slimmed.environments = objects.environments.clone();
    slimmed.artifacts = objects.artifacts.clone();
    slimmed.namespaces = objects.namespaces.clone();
    slimmed.configs = objects.configs.clone();
    slimmed.config_history = objects.config_history.clone();
    slimmed.now = objects.now.clone();
    slimmed.promotions = objects
        .promotions
        .iter()
        .cloned()
        .map(|mut p| {
            metadata(&mut p.metadata);
            promotion(&mut p);
            p
        })
        .collect();
    slimmed.workloads = objects
        .workloads
        .iter()
        .cloned()
        .map(|mut workload| {
            metadata(workload.metadata_mut());
            if let Workload::Deployment(d) = &mut workload {
                deployment(d);
            }
            workload
        })
        .collect();
    slimmed.environment.metadata.managed_fields = None;
    slimmed
}

fn same_plan(objects: &Objects) -> Plan {
    let cached = cached(objects);
    assert_ne!(
        cached.workloads, objects.workloads,
        "the fixture carries fields the cache drops"
    );
    let full = plan(&objects.snapshot());
    assert_eq!(plan(&cached.snapshot()), full, "trimming changed a decision");
    full
}

const ROLLED_OUT: &str =
    "{observedGeneration: 4, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}";

#[test]
fn a_queue_behind_finished_promotions_is_decided_the_same() {
    let mut objects = Objects::new(fixture::environment(
        "dev",
        "  gates: {approval: {users: [carol]}}",
    ));
    objects
        .artifacts
        .push(fixture::artifact("shop-3", "1.2.0", C, 20));
    let mut environment = objects.environment.clone();
    environment.status = Some(crate::api::EnvironmentStatus {
        applications: vec![fixture::running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    objects.environment = environment;
    objects.workloads = vec![full_deployment(
        &fixture::pinned(A),
        r#", hoist.dev/artifact: shop-1"#,
        ROLLED_OUT,
    )];
    objects.promotions = vec![
        full_ended("to-shop-1", "shop-1", "Succeeded", &at(5).0.to_string()),
        full_ended("old", "shop-1", "Superseded", &at(6).0.to_string()),
        fixture::promotion("to-shop-2", "shop-2", 30),
        fixture::promotion("to-shop-3", "shop-3", 40),
    ];
    let plan = same_plan(&objects);
    let waiting = |name: &str| plan.promotions.get(name).map(|s| s.phase);
    assert_eq!(
        waiting("to-shop-2"),
        Some(Phase::Waiting),
        "held by the approval gate"
    );
    assert_eq!(waiting("to-shop-3"), Some(Phase::Waiting));
}

#[test]
fn a_rollout_in_flight_and_its_failure_are_decided_the_same() {
    let mut objects = Objects::new(fixture::environment("dev", "  rollback: {automatic: true}"));
    let mut environment = objects.environment.clone();
    environment.status = Some(crate::api::EnvironmentStatus {
        applications: vec![fixture::running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    objects.environment = environment;
    objects.promotions = vec![
        full_ended("to-shop-1", "shop-1", "Succeeded", &at(5).0.to_string()),
        fixture::verifying(fixture::promotion("to-shop-2", "shop-2", 30)),
    ];
    for (status, phase) in [
        (ROLLED_OUT, Phase::Succeeded),
        (
            "{observedGeneration: 4, replicas: 2, updatedReplicas: 1, unavailableReplicas: 2, conditions: [{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}]}",
            Phase::RolledBack,
        ),
        ("{observedGeneration: 3}", Phase::Verifying),
    ] {
        objects.workloads = vec![full_deployment(
            &fixture::pinned(B),
            r#", hoist.dev/artifact: shop-2"#,
            status,
        )];
        let plan = same_plan(&objects);
        assert_eq!(
            plan.promotions.get("to-shop-2").map(|s| s.phase),
            Some(phase),
            "{status}"
        );
        assert!(!plan.pins.is_empty());
    }
}

#[test]
fn auto_promotion_after_finished_promotions_is_decided_the_same() {
    let mut objects = Objects::new(fixture::environment("dev", "  autoPromote: true"));
    objects.workloads = vec![full_deployment(
        "registry.example.com/shop/backend:latest",
        "",
        ROLLED_OUT,
    )];
    objects.promotions = vec![full_ended(
        "to-shop-1",
        "shop-1",
        "Succeeded",
        &at(5).0.to_string(),
    )];
    let plan = same_plan(&objects);
    let created: Vec<String> = plan
        .new_promotions
        .iter()
        .map(|p| p.spec.artifact.clone())
        .collect();
    assert_eq!(created, vec!["shop-2".to_string()]);
}
