//! What the caches drop from objects, besides managedFields: only what
//! the decisions read is kept, so memory does not grow with fields Hoist
//! never looks at.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;

use crate::api::{Promotion, PromotionStatus};
use crate::core::gitops;
use crate::core::workload::{ANNOTATION_ARTIFACT, ANNOTATION_CONFIG_HASH};

/// Every cached object: of managedFields only who owns the fields Hoist
/// pins on workloads (to tell who overwrote one, see
/// [`crate::core::gitops`]), and the annotation of `kubectl apply` repeats
/// the whole object.
pub fn metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = meta.managed_fields.take().and_then(gitops::pinned_ownership);
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A finished Promotion never changes again; deciding the others reads
/// only its target, phase and completion time, and the notification sender
/// its deliveries. Its full status stays in the API (and `kubectl hoist`
/// reads it there).
pub fn promotion(promotion: &mut Promotion) {
    let Some(status) = promotion.status.as_mut() else {
        return;
    };
    if !status.phase.is_terminal() {
        return;
    }
    *status = PromotionStatus {
        phase: status.phase,
        completed_at: status.completed_at.take(),
        started_at: status.started_at.take(),
        observed_generation: status.observed_generation,
        notifications: std::mem::take(&mut status.notifications),
        ..Default::default()
    };
    let spec = &mut promotion.spec;
    spec.reason = None;
    spec.approvals = Vec::new();
    spec.r#override = None;
}

/// Hoist reads a target Deployment's labels, generation and status, its
/// replica count, its containers' names and images and its own two
/// pod-template annotations; everything else (pod spec, strategy, other
/// annotations) stays in the API. Pins are applied with only Hoist's
/// fields, so nothing dropped here is ever written back.
pub fn deployment(deployment: &mut Deployment) {
    let meta = &mut deployment.metadata;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let Some(spec) = deployment.spec.as_mut() else {
        return;
    };
    spec.selector = Default::default();
    spec.strategy = None;
    spec.revision_history_limit = None;
    spec.min_ready_seconds = None;
    spec.progress_deadline_seconds = None;
    if let Some(template) = spec.template.metadata.as_mut() {
        template.labels = None;
        if let Some(annotations) = template.annotations.as_mut() {
            annotations.retain(|key, _| key == ANNOTATION_ARTIFACT || key == ANNOTATION_CONFIG_HASH);
        }
    }
    if let Some(pod) = spec.template.spec.as_mut() {
        *pod = PodSpec {
            containers: std::mem::take(&mut pod.containers)
                .into_iter()
                .map(|container| Container {
                    name: container.name,
                    image: container.image,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
}

/// Only the name and the version are read, to notice a change.
pub fn versions<K>(object: &mut PartialObjectMeta<K>) {
    let meta = &mut object.metadata;
    meta.labels = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.uid = None;
    meta.creation_timestamp = None;
}

#[cfg(test)]
#[path = "tests/slim.rs"]
mod tests;
