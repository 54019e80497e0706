//! A Deployment's rollout, judged like `kubectl rollout status deployment`.

use k8s_openapi::api::apps::v1::Deployment;

use super::Rollout;
use crate::core::reasons::KubernetesReason;

pub(super) fn rollout(deployment: &Deployment) -> Rollout {
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
