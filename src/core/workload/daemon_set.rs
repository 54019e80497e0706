//! A DaemonSet's rollout, judged like `kubectl rollout status daemonset`:
//! the spec observed, a new pod on every node that should run one
//! (`updatedNumberScheduled`), and each available (`numberAvailable`). A
//! DaemonSet has no progress deadline: spec.rollout.timeout bounds it.

use k8s_openapi::api::apps::v1::DaemonSet;

use super::Rollout;

pub(super) fn rollout(daemon_set: &DaemonSet) -> Rollout {
    let generation = daemon_set.metadata.generation.unwrap_or(0);
    let strategy_type = daemon_set
        .spec
        .as_ref()
        .and_then(|spec| spec.update_strategy.as_ref())
        .and_then(|strategy| strategy.type_.as_deref())
        .unwrap_or("RollingUpdate");
    if strategy_type != "RollingUpdate" {
        return Rollout::Failed(format!(
            "updateStrategy {strategy_type} replaces no pod by itself: Hoist rolls out DaemonSets with RollingUpdate"
        ));
    }
    let Some(status) = &daemon_set.status else {
        return Rollout::Progressing("waiting for the DaemonSet controller to report status".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!(
            "waiting for the DaemonSet controller to observe generation {generation}"
        ));
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        Rollout::Progressing(format!("{updated} of {desired} nodes run the new pod"))
    } else if available < desired {
        Rollout::Progressing(format!("{available} of {desired} updated pods available"))
    } else {
        Rollout::Complete
    }
}
