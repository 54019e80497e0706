//! Argo Rollouts' Rollout (`argoproj.io/v1alpha1`), as far as Hoist reads
//! it, and its rollout judged as Argo CD's health check for Rollouts judges
//! it: `status.phase` as the Argo Rollouts controller reports it, Healthy
//! → complete, Progressing or Paused (a canary step or an analysis waits,
//! or someone paused it) → still rolling, Degraded (aborted, analysis
//! failed, progress deadline exceeded) or an InvalidSpec condition →
//! failed. The Argo Rollouts controller enforces the Rollout's
//! spec.progressDeadlineSeconds itself.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Rollout;

/// A Rollout: the fields Hoist pins and reads; everything else is kept as written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ArgoRollout {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ArgoRolloutSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ArgoRolloutStatus>,
}

impl kube::Resource for ArgoRollout {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Rollout".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "argoproj.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "rollouts".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A Rollout's spec as Hoist reads it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgoRolloutSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Absent when the Rollout references a Deployment's template
    /// (spec.workloadRef), which Hoist does not pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// canary or blueGreen, with their steps: read by Argo Rollouts, not Hoist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Value>,
    /// The other fields (selector, workloadRef, minReadySeconds, …), kept
    /// as written so that a Rollout read and written again (by `hoist
    /// render`) loses nothing.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A Rollout's status, in the shape the Argo Rollouts controller writes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgoRolloutStatus {
    /// The spec generation observed, written as a string by Argo Rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    /// Healthy, Progressing, Paused or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Set by `kubectl argo rollouts abort`.
    #[serde(default)]
    pub abort: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    #[serde(default)]
    pub controller_pause: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_pod_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_rs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
}

/// Why a Rollout paused (CanaryPauseStep, BlueGreenPause,
/// InconclusiveAnalysisRun, …) and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    pub reason: String,
    pub start_time: Time,
}

/// One condition of a Rollout (Progressing, Available, Paused, Healthy, InvalidSpec, …).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub(super) fn rollout(rollout: &ArgoRollout) -> Rollout {
    let generation = rollout.metadata.generation.unwrap_or(0);
    let Some(status) = &rollout.status else {
        return Rollout::Progressing("waiting for the Argo Rollouts controller to report status".into());
    };
    if let Some(invalid) = status.conditions.iter().find(|c| c.type_ == "InvalidSpec") {
        return Rollout::Failed(format!(
            "invalid spec: {}",
            invalid.message.as_deref().unwrap_or("no message")
        ));
    }
    let observed = status
        .observed_generation
        .as_deref()
        .and_then(|observed| observed.parse::<i64>().ok())
        .unwrap_or(0);
    if observed < generation {
        return Rollout::Progressing(format!(
            "waiting for the Argo Rollouts controller to observe generation {generation}"
        ));
    }
    let message = status.message.as_deref().filter(|m| !m.is_empty());
    if status.abort {
        return Rollout::Failed(format!("aborted: {}", message.unwrap_or("no message")));
    }
    match status.phase.as_deref() {
        Some("Healthy") => Rollout::Complete,
        Some("Degraded") => Rollout::Failed(format!("degraded: {}", message.unwrap_or("no message"))),
        Some("Paused") => {
            let reasons: Vec<&str> = status
                .pause_conditions
                .iter()
                .map(|c| c.reason.as_str())
                .collect();
            let step = status
                .current_step_index
                .map(|index| format!(" at step {index}"))
                .unwrap_or_default();
            Rollout::Progressing(match reasons.is_empty() {
                true => format!("paused{step}: {}", message.unwrap_or("spec.paused is set")),
                false => format!("paused{step} ({}): waiting to be promoted", reasons.join(", ")),
            })
        }
        Some(phase) => Rollout::Progressing(format!("{phase}: {}", message.unwrap_or("rolling out"))),
        None => Rollout::Progressing("waiting for the Argo Rollouts controller to report a phase".into()),
    }
}
