//! What Hoist sets on a Deployment, and how its rollout is going.
//!
//! Hoist owns only the fields it sets with server-side apply: the image of
//! each target container, two pod-template annotations and two labels.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::core::reasons::KubernetesReason;

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

/// The state Hoist wants for the fields it owns on one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentPin {
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

impl DeploymentPin {
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
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {LABEL_ENVIRONMENT: self.environment, LABEL_TENANT: self.tenant},
            },
            "spec": {"template": {
                "metadata": {"annotations": annotations},
                "spec": {"containers": containers},
            }},
        })
    }

    /// Whether `deployment` already carries every value of this pin, so
    /// applying it would change nothing.
    pub fn is_satisfied_by(&self, deployment: &Deployment) -> bool {
        let empty = BTreeMap::new();
        let labels = deployment.metadata.labels.as_ref().unwrap_or(&empty);
        let Some(template) = deployment.spec.as_ref().map(|spec| &spec.template) else {
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

    /// Overlays this pin on `deployment` in memory, as the API server would
    /// after the apply (used by `hoist render`).
    pub fn overlay(&self, deployment: &mut Deployment) {
        let labels = deployment.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LABEL_ENVIRONMENT.into(), self.environment.clone());
        labels.insert(LABEL_TENANT.into(), self.tenant.clone());
        let spec = deployment.spec.get_or_insert_with(Default::default);
        let metadata = spec.template.metadata.get_or_insert_with(Default::default);
        let annotations = metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert(ANNOTATION_ARTIFACT.into(), self.artifact.clone());
        match &self.config_hash {
            Some(hash) => annotations.insert(ANNOTATION_CONFIG_HASH.into(), hash.clone()),
            None => annotations.remove(ANNOTATION_CONFIG_HASH),
        };
        let pod = spec.template.spec.get_or_insert_with(Default::default);
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

/// How a Deployment's rollout is going, judged like `kubectl rollout status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still rolling; the text says what is awaited.
    Progressing(String),
    /// The Deployment controller gave up (ProgressDeadlineExceeded).
    Failed(String),
}

/// The rollout state of `deployment`.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return Rollout::Progressing("waiting for the Deployment controller to report status".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!(
            "waiting for the Deployment controller to observe generation {generation}"
        ));
    }
    let deadline_exceeded = status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "Progressing"
            && KubernetesReason::ProgressDeadlineExceeded.is(condition.reason.as_deref())
    });
    if let Some(condition) = deadline_exceeded {
        return Rollout::Failed(format!(
            "rollout exceeded its progress deadline: {}",
            condition.message.as_deref().unwrap_or("no message")
        ));
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        Rollout::Progressing(format!("{updated} of {desired} replicas updated"))
    } else if total > updated {
        Rollout::Progressing(format!("{} old replicas pending termination", total - updated))
    } else if available < updated {
        Rollout::Progressing(format!("{available} of {updated} updated replicas available"))
    } else {
        Rollout::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

    fn deployment(generation: i64, replicas: i32, status: Option<DeploymentStatus>) -> Deployment {
        let mut deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "backend", "namespace": "shop", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "image": "registry.example.com/shop/backend:latest"},
                {"name": "proxy", "image": "envoy:1"}
            ]}}}
        }))
        .unwrap();
        deployment.status = status;
        deployment
    }

    fn pin() -> DeploymentPin {
        DeploymentPin {
            namespace: "shop".into(),
            name: "backend".into(),
            images: [(
                "app".to_string(),
                format!("registry.example.com/shop/backend@sha256:{}", "a".repeat(64)),
            )]
            .into(),
            artifact: "shop-1.4.2".into(),
            config_hash: Some("sha256:beef".into()),
            environment: "dev".into(),
            tenant: "shop".into(),
        }
    }

    #[test]
    fn apply_body_holds_only_hoist_fields() {
        assert_eq!(
            pin().apply_body(),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "backend", "namespace": "shop",
                             "labels": {"hoist.dev/environment": "dev", "hoist.dev/tenant": "shop"}},
                "spec": {"template": {
                    "metadata": {"annotations": {"hoist.dev/artifact": "shop-1.4.2", "hoist.dev/config-hash": "sha256:beef"}},
                    "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/shop/backend@sha256:{}", "a".repeat(64))}]}
                }}
            })
        );
    }

    #[test]
    fn overlay_then_satisfied_and_other_containers_untouched() {
        let mut live = deployment(1, 1, None);
        assert!(!pin().is_satisfied_by(&live));
        pin().overlay(&mut live);
        assert!(pin().is_satisfied_by(&live));
        let containers = &live
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers;
        assert_eq!(containers[1].image.as_deref(), Some("envoy:1"));
        let mut other_hash = pin();
        other_hash.config_hash = Some("sha256:cafe".into());
        assert!(!other_hash.is_satisfied_by(&live));
    }

    #[test]
    fn rollout_states() {
        let status = |observed, replicas, updated, available| DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..Default::default()
        };
        assert!(matches!(
            rollout(&deployment(2, 1, None)),
            Rollout::Progressing(_)
        ));
        assert_eq!(
            rollout(&deployment(2, 1, Some(status(1, 1, 1, 1)))),
            Rollout::Progressing("waiting for the Deployment controller to observe generation 2".into())
        );
        assert_eq!(
            rollout(&deployment(2, 3, Some(status(2, 3, 1, 1)))),
            Rollout::Progressing("1 of 3 replicas updated".into())
        );
        assert_eq!(
            rollout(&deployment(2, 3, Some(status(2, 4, 3, 3)))),
            Rollout::Progressing("1 old replicas pending termination".into())
        );
        assert_eq!(
            rollout(&deployment(2, 3, Some(status(2, 3, 3, 2)))),
            Rollout::Progressing("2 of 3 updated replicas available".into())
        );
        assert_eq!(
            rollout(&deployment(2, 3, Some(status(2, 3, 3, 3)))),
            Rollout::Complete
        );
        assert_eq!(
            rollout(&deployment(2, 0, Some(status(2, 0, 0, 0)))),
            Rollout::Complete
        );
        let mut failed = status(2, 1, 1, 0);
        failed.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some(KubernetesReason::ProgressDeadlineExceeded.to_string()),
            message: Some("ReplicaSet \"backend-5d\" has timed out progressing.".into()),
            ..Default::default()
        }]);
        assert_eq!(
            rollout(&deployment(2, 1, Some(failed))),
            Rollout::Failed("rollout exceeded its progress deadline: ReplicaSet \"backend-5d\" has timed out progressing.".into())
        );
    }
}
