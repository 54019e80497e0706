//! Objects for the engine's unit tests: tenant `shop`, Environment `dev`
//! running application `shop` (component `backend`, container `app` of
//! Deployment `shop/backend`), and the Snapshot they make.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, Artifact, ComponentDigest, Environment, Health, Phase, Promotion, PromotionSpec,
    PromotionStatus, WorkloadKind,
};
use crate::core::config::{ConfigError, RenderedConfig};
use crate::core::gates::approval::ApprovalTrust;
use crate::core::reasons::KubernetesReason;
use crate::core::tenancy::Boundaries;
use crate::core::workload::{Workload, WorkloadPin};

use super::Snapshot;

pub const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// The operator's user.
pub const OPERATOR: &str = "system:serviceaccount:hoist-system:hoist";

/// `seconds` after a fixed instant.
pub fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_795_000_000 + seconds).expect("valid time"))
}

pub fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_yaml::from_str(text).expect("fixture parses")
}

/// Environment `dev` of `shop` with `spec` (YAML) besides its one target.
pub fn environment(name: &str, spec: &str) -> Environment {
    yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: {name}, namespace: shop, generation: 1}}
spec:
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend}}, container: app}}
{spec}
"#
    ))
}

/// A Ready Artifact of `shop` whose backend resolved to `digest`, created
/// `created` seconds after [`at`]`(0)`.
pub fn artifact(name: &str, version: &str, digest: &str, created: i64) -> Artifact {
    let mut artifact: Artifact = yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: {name}, namespace: shop}}
spec:
  application: shop
  version: "{version}"
  images:
    - {{component: backend, image: "registry.example.com/shop/backend:{version}"}}
status:
  conditions:
    - {{type: Ready, status: "True", reason: Resolved, message: resolved, lastTransitionTime: "2026-11-01T00:00:00Z"}}
  images:
    - {{component: backend, image: "registry.example.com/shop/backend:{version}", digest: "{digest}", resolvedAt: "2026-11-01T00:00:00Z"}}
"#
    ));
    artifact.metadata.creation_timestamp = Some(at(created));
    artifact
}

/// The pinned reference of the backend image of `version` at `digest`.
pub fn pinned(digest: &str) -> String {
    format!("registry.example.com/shop/backend@{digest}")
}

/// A Promotion of `artifact` into `dev` requested by carol, created
/// `created` seconds after [`at`]`(0)`, with no status yet.
pub fn promotion(name: &str, artifact: &str, created: i64) -> Promotion {
    let mut promotion = Promotion::new(
        name,
        PromotionSpec {
            artifact: artifact.into(),
            environment: "dev".into(),
            reason: None,
            requested_by: Some("carol".into()),
            r#override: None,
            approvals: Vec::new(),
        },
    );
    promotion.metadata.namespace = Some("shop".into());
    promotion.metadata.generation = Some(1);
    promotion.metadata.creation_timestamp = Some(at(created));
    promotion
}

/// `promotion` as recorded when it started rolling out at [`at`]`(60)`.
pub fn verifying(mut promotion: Promotion) -> Promotion {
    promotion.status = Some(PromotionStatus {
        phase: Phase::Verifying,
        started_at: Some(at(60)),
        ..Default::default()
    });
    promotion
}

/// `promotion` as recorded when it ended in `phase` at `completed`.
pub fn ended(mut promotion: Promotion, phase: Phase, completed: i64) -> Promotion {
    promotion.status = Some(PromotionStatus {
        phase,
        started_at: Some(at(completed)),
        completed_at: Some(at(completed)),
        ..Default::default()
    });
    promotion
}

/// `shop` running `artifact` (backend at `digest`), healthy since [`at`]`(5)`.
pub fn running(artifact: &str, version: &str, digest: &str, config_hash: Option<&str>) -> ApplicationStatus {
    ApplicationStatus {
        application: "shop".into(),
        artifact: artifact.into(),
        version: version.into(),
        images: vec![ComponentDigest {
            component: "backend".into(),
            digest: digest.into(),
        }],
        source_revision: None,
        config_hash: config_hash.map(Into::into),
        spec_config_hash: config_hash.map(Into::into),
        promotion: format!("to-{artifact}"),
        promoted_at: Some(at(5)),
        approvers: Vec::new(),
        health: Health::Healthy,
        health_since: Some(at(5)),
    }
}

/// The Deployment `shop/backend`, not yet touched by Hoist, rolled out.
pub fn deployment() -> Workload {
    Workload::Deployment(yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: shop, generation: 1}
spec:
  replicas: 2
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers:
        - {name: app, image: "registry.example.com/shop/backend:latest"}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2}
"#,
    ))
}

/// The pin of `shop/backend` to `digest` of `artifact`.
pub fn pin(artifact: &str, digest: &str, config_hash: Option<&str>) -> WorkloadPin {
    WorkloadPin {
        kind: WorkloadKind::Deployment,
        namespace: "shop".into(),
        name: "backend".into(),
        images: [("app".to_string(), pinned(digest))].into(),
        artifact: artifact.into(),
        config_hash: config_hash.map(Into::into),
        environment: "dev".into(),
        tenant: "shop".into(),
    }
}

/// `workload` (a Deployment) after the API server took `pin` (a new
/// generation), with the Deployment controller's status `rolled_out` or
/// not looked at yet.
pub fn after_pin(mut workload: Workload, pin: &WorkloadPin, rolled_out: bool) -> Workload {
    pin.overlay(&mut workload);
    let generation = workload.generation().max(1) + 1;
    workload.metadata_mut().generation = Some(generation);
    if rolled_out && let Workload::Deployment(deployment) = &mut workload {
        deployment.status = Some(DeploymentStatus {
            observed_generation: Some(generation),
            replicas: Some(2),
            updated_replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        });
    }
    workload
}

/// `workload` (a Deployment) whose rollout exceeded its progress deadline.
pub fn stalled(mut workload: Workload) -> Workload {
    if let Workload::Deployment(deployment) = &mut workload {
        deployment.status = Some(DeploymentStatus {
            observed_generation: deployment.metadata.generation,
            replicas: Some(2),
            updated_replicas: Some(1),
            unavailable_replicas: Some(2),
            conditions: Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some(KubernetesReason::ProgressDeadlineExceeded.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
    }
    workload
}

/// A rendered configuration of `shop` with one key.
pub fn rendered(value: &str, hash: &str) -> RenderedConfig {
    RenderedConfig {
        application: "shop".into(),
        data: [("MODE".to_string(), value.to_string())].into(),
        binary_data: BTreeMap::new(),
        hash: hash.into(),
        secrets: BTreeMap::new(),
    }
}

/// Everything one Environment's reconcile would see.
pub struct Objects {
    pub environment: Environment,
    pub environments: Vec<Environment>,
    pub artifacts: Vec<Artifact>,
    pub promotions: Vec<Promotion>,
    pub workloads: Vec<Workload>,
    pub unserved: BTreeSet<WorkloadKind>,
    pub namespaces: Vec<Namespace>,
    pub configs: BTreeMap<String, Result<RenderedConfig, ConfigError>>,
    pub config_history: BTreeMap<String, RenderedConfig>,
    pub approvals: ApprovalTrust,
    pub boundaries: Boundaries,
    pub measurements: BTreeMap<String, (String, crate::api::Measurement)>,
    pub jobs: Vec<k8s_openapi::api::batch::v1::Job>,
    pub tiers: Option<crate::core::tiers::Tiers>,
    /// The labels of the Environment's namespace.
    pub tenant_labels: BTreeMap<String, String>,
    pub now: Time,
}

impl Objects {
    /// `environment` with the Deployment, Artifacts `shop-1` (1.0.0, digest
    /// A) and `shop-2` (1.1.0, digest B), no Promotions, approvals
    /// verified, the Environments policy enforced, at [`at`]`(100)`.
    pub fn new(environment: Environment) -> Self {
        Self {
            environment,
            environments: Vec::new(),
            artifacts: vec![
                artifact("shop-1", "1.0.0", A, 0),
                artifact("shop-2", "1.1.0", B, 10),
            ],
            promotions: Vec::new(),
            workloads: vec![deployment()],
            unserved: BTreeSet::new(),
            namespaces: Vec::new(),
            configs: BTreeMap::new(),
            config_history: BTreeMap::new(),
            approvals: ApprovalTrust::Verified,
            boundaries: Boundaries::Enforced,
            measurements: BTreeMap::new(),
            jobs: Vec::new(),
            tiers: None,
            tenant_labels: BTreeMap::new(),
            now: at(100),
        }
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        let mut environments: BTreeMap<String, &Environment> =
            self.environments.iter().map(|e| (e.name_any(), e)).collect();
        environments.insert(self.environment.name_any(), &self.environment);
        Snapshot {
            environment: &self.environment,
            environments,
            artifacts: self.artifacts.iter().map(|a| (a.name_any(), a)).collect(),
            promotions: self.promotions.iter().collect(),
            workloads: self.workloads.iter().map(|w| (w.id(), w)).collect(),
            unserved: self.unserved.clone(),
            namespaces: self.namespaces.iter().map(|n| (n.name_any(), n)).collect(),
            configs: self.configs.clone(),
            config_history: self.config_history.clone(),
            approvals: self.approvals.clone(),
            boundaries: self.boundaries.clone(),
            operator: Some(OPERATOR.into()),
            measurements: self.measurements.clone(),
            trust: Default::default(),
            tenant_notifications: Vec::new(),
            tiers: self.tiers.as_ref(),
            tenant_labels: &self.tenant_labels,
            jobs: self
                .jobs
                .iter()
                .map(|job| {
                    (
                        (
                            job.metadata.namespace.clone().unwrap_or_default(),
                            job.metadata.name.clone().unwrap_or_default(),
                        ),
                        job,
                    )
                })
                .collect(),
            now: self.now.clone(),
        }
    }
}
