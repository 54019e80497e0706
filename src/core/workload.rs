//! What Hoist sets on a target workload, and how its rollout is going.
//!
//! Hoist owns only the fields it sets with server-side apply: the image of
//! each target container, two pod-template annotations and two labels. The
//! pod template is `spec.template` of every kind but CronJob's
//! (`spec.jobTemplate.spec.template`). Each kind's rollout is judged in a
//! module of its own, as `kubectl rollout status` (or, for Argo Rollouts,
//! Argo CD's health check) judges it.

mod argo_rollout;
mod cron_job;
mod daemon_set;
mod deployment;
mod stateful_set;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use crate::api::WorkloadKind;

pub use argo_rollout::{ArgoRollout, ArgoRolloutSpec, ArgoRolloutStatus, PauseCondition, RolloutCondition};

/// Pod-template annotation carrying the configuration hash; a new value rolls the pods.
pub const ANNOTATION_CONFIG_HASH: &str = "hoist.dev/config-hash";
/// Pod-template annotation naming the Artifact that runs.
pub const ANNOTATION_ARTIFACT: &str = "hoist.dev/artifact";
/// Label naming the Environment that manages a Deployment.
pub const LABEL_ENVIRONMENT: &str = "hoist.dev/environment";
/// Label naming the namespace (tenant) of that Environment.
pub const LABEL_TENANT: &str = "hoist.dev/tenant";
/// Label naming the application of a ConfigMap Hoist writes.
pub const LABEL_APPLICATION: &str = "hoist.dev/application";
/// Label telling what a ConfigMap Hoist writes is for: `config` (rendered for
/// the pods) or `config-snapshot` (kept for rollbacks).
pub const LABEL_ROLE: &str = "hoist.dev/role";

/// One target workload: its kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadId {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for WorkloadId {
    /// `shop/backend` for a Deployment (as before other kinds were
    /// targets), `StatefulSet shop/db` for the others.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            WorkloadKind::Deployment => write!(f, "{}/{}", self.namespace, self.name),
            kind => write!(f, "{kind} {}/{}", self.namespace, self.name),
        }
    }
}

/// A target workload as read from the cluster, of one of the kinds Hoist updates.
// Held one per target, by value in maps: the size of the largest kind is
// no cost worth a box per object.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
    CronJob(CronJob),
    Rollout(ArgoRollout),
}

impl Workload {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Deployment(_) => WorkloadKind::Deployment,
            Workload::StatefulSet(_) => WorkloadKind::StatefulSet,
            Workload::DaemonSet(_) => WorkloadKind::DaemonSet,
            Workload::CronJob(_) => WorkloadKind::CronJob,
            Workload::Rollout(_) => WorkloadKind::Rollout,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(object) => &object.metadata,
            Workload::StatefulSet(object) => &object.metadata,
            Workload::DaemonSet(object) => &object.metadata,
            Workload::CronJob(object) => &object.metadata,
            Workload::Rollout(object) => &object.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Workload::Deployment(object) => &mut object.metadata,
            Workload::StatefulSet(object) => &mut object.metadata,
            Workload::DaemonSet(object) => &mut object.metadata,
            Workload::CronJob(object) => &mut object.metadata,
            Workload::Rollout(object) => &mut object.metadata,
        }
    }

    pub fn id(&self) -> WorkloadId {
        WorkloadId {
            kind: self.kind(),
            namespace: self.metadata().namespace.clone().unwrap_or_default(),
            name: self.metadata().name.clone().unwrap_or_default(),
        }
    }

    /// The pod template: `spec.template`, or a CronJob's
    /// `spec.jobTemplate.spec.template`.
    pub fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(object) => object.spec.as_ref().map(|spec| &spec.template),
            Workload::StatefulSet(object) => object.spec.as_ref().map(|spec| &spec.template),
            Workload::DaemonSet(object) => object.spec.as_ref().map(|spec| &spec.template),
            Workload::CronJob(object) => object
                .spec
                .as_ref()
                .and_then(|spec| spec.job_template.spec.as_ref())
                .map(|spec| &spec.template),
            Workload::Rollout(object) => object.spec.as_ref().and_then(|spec| spec.template.as_ref()),
        }
    }

    /// The pod template, created empty where the object has none.
    pub fn pod_template_mut(&mut self) -> &mut PodTemplateSpec {
        match self {
            Workload::Deployment(object) => &mut object.spec.get_or_insert_with(Default::default).template,
            Workload::StatefulSet(object) => &mut object.spec.get_or_insert_with(Default::default).template,
            Workload::DaemonSet(object) => &mut object.spec.get_or_insert_with(Default::default).template,
            Workload::CronJob(object) => {
                &mut object
                    .spec
                    .get_or_insert_with(Default::default)
                    .job_template
                    .spec
                    .get_or_insert_with(Default::default)
                    .template
            }
            Workload::Rollout(object) => object
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default),
        }
    }

    /// How its rollout is going, by the rules of its kind.
    pub fn rollout(&self) -> Rollout {
        match self {
            Workload::Deployment(object) => deployment::rollout(object),
            Workload::StatefulSet(object) => stateful_set::rollout(object),
            Workload::DaemonSet(object) => daemon_set::rollout(object),
            Workload::CronJob(_) => cron_job::rollout(),
            Workload::Rollout(object) => argo_rollout::rollout(object),
        }
    }

    /// The generation of its spec (bumped by every template change).
    pub fn generation(&self) -> i64 {
        self.metadata().generation.unwrap_or(0)
    }
}

/// Whether a kind's own controller fails a rollout that makes no progress
/// (Deployments and Rollouts, by spec.progressDeadlineSeconds); for the
/// others Hoist applies the Environment's spec.rollout.timeout. CronJobs
/// need neither: a pinned CronJob is rolled out.
pub fn has_progress_deadline(kind: WorkloadKind) -> bool {
    matches!(kind, WorkloadKind::Deployment | WorkloadKind::Rollout)
}

/// The state Hoist wants for the fields it owns on one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPin {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// Container name → pinned image (`repo@sha256:…`).
    pub images: BTreeMap<String, String>,
    /// The Artifact, as `<name>`.
    pub artifact: String,
    pub config_hash: Option<String>,
    pub environment: String,
    pub tenant: String,
}

impl WorkloadPin {
    pub fn id(&self) -> WorkloadId {
        WorkloadId {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The server-side apply body: nothing but Hoist's fields.
    pub fn apply_body(&self) -> Value {
        let containers: Vec<Value> = self
            .images
            .iter()
            .map(|(name, image)| json!({"name": name, "image": image}))
            .collect();
        let mut annotations = serde_json::Map::new();
        annotations.insert(ANNOTATION_ARTIFACT.into(), Value::String(self.artifact.clone()));
        if let Some(hash) = &self.config_hash {
            annotations.insert(ANNOTATION_CONFIG_HASH.into(), Value::String(hash.clone()));
        }
        let template = json!({
            "metadata": {"annotations": annotations},
            "spec": {"containers": containers},
        });
        let spec = match self.kind {
            WorkloadKind::CronJob => json!({"jobTemplate": {"spec": {"template": template}}}),
            _ => json!({"template": template}),
        };
        json!({
            "apiVersion": self.kind.api_version(),
            "kind": self.kind.to_string(),
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {LABEL_ENVIRONMENT: self.environment, LABEL_TENANT: self.tenant},
            },
            "spec": spec,
        })
    }

    /// Whether `workload` already carries every value of this pin, so
    /// applying it would change nothing.
    pub fn is_satisfied_by(&self, workload: &Workload) -> bool {
        let empty = BTreeMap::new();
        let labels = workload.metadata().labels.as_ref().unwrap_or(&empty);
        let Some(template) = workload.pod_template().filter(|_| workload.kind() == self.kind) else {
            return false;
        };
        let annotations = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .unwrap_or(&empty);
        let containers = template
            .spec
            .as_ref()
            .map(|spec| spec.containers.as_slice())
            .unwrap_or_default();
        labels.get(LABEL_ENVIRONMENT) == Some(&self.environment)
            && labels.get(LABEL_TENANT) == Some(&self.tenant)
            && annotations.get(ANNOTATION_ARTIFACT) == Some(&self.artifact)
            && annotations.get(ANNOTATION_CONFIG_HASH) == self.config_hash.as_ref()
            && self.images.iter().all(|(name, image)| {
                containers
                    .iter()
                    .any(|c| &c.name == name && c.image.as_deref() == Some(image.as_str()))
            })
    }

    /// Overlays this pin on `workload` in memory, as the API server would
    /// after the apply (used by `hoist render`).
    pub fn overlay(&self, workload: &mut Workload) {
        let labels = workload
            .metadata_mut()
            .labels
            .get_or_insert_with(Default::default);
        labels.insert(LABEL_ENVIRONMENT.into(), self.environment.clone());
        labels.insert(LABEL_TENANT.into(), self.tenant.clone());
        let template = workload.pod_template_mut();
        let metadata = template.metadata.get_or_insert_with(Default::default);
        let annotations = metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert(ANNOTATION_ARTIFACT.into(), self.artifact.clone());
        match &self.config_hash {
            Some(hash) => annotations.insert(ANNOTATION_CONFIG_HASH.into(), hash.clone()),
            None => annotations.remove(ANNOTATION_CONFIG_HASH),
        };
        let pod = template.spec.get_or_insert_with(Default::default);
        for (name, image) in &self.images {
            match pod.containers.iter_mut().find(|c| &c.name == name) {
                Some(container) => container.image = Some(image.clone()),
                None => pod.containers.push(k8s_openapi::api::core::v1::Container {
                    name: name.clone(),
                    image: Some(image.clone()),
                    ..Default::default()
                }),
            }
        }
    }
}

/// How a workload's rollout is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still rolling; the text says what is awaited.
    Progressing(String),
    /// The rollout will not finish by itself (a deadline passed, it was
    /// aborted, its analysis failed).
    Failed(String),
}
