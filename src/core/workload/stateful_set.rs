//! A StatefulSet's rollout, judged like `kubectl rollout status statefulset`:
//! the spec observed, every replica ready, and then either the partitioned
//! update done (`updatedReplicas` ≥ replicas − partition) or, without a
//! rollingUpdate block, `currentRevision` caught up with `updateRevision`.
//! A StatefulSet has no progress deadline: spec.rollout.timeout bounds it.

use k8s_openapi::api::apps::v1::StatefulSet;

use super::Rollout;

pub(super) fn rollout(stateful_set: &StatefulSet) -> Rollout {
    let generation = stateful_set.metadata.generation.unwrap_or(0);
    let spec = stateful_set.spec.as_ref();
    let strategy = spec.and_then(|spec| spec.update_strategy.as_ref());
    let strategy_type = strategy
        .and_then(|strategy| strategy.type_.as_deref())
        .unwrap_or("RollingUpdate");
    if strategy_type != "RollingUpdate" {
        return Rollout::Failed(format!(
            "updateStrategy {strategy_type} replaces no pod by itself: Hoist rolls out StatefulSets with RollingUpdate"
        ));
    }
    let Some(status) = &stateful_set.status else {
        return Rollout::Progressing("waiting for the StatefulSet controller to report status".into());
    };
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || observed < generation {
        return Rollout::Progressing(format!(
            "waiting for the StatefulSet controller to observe generation {generation}"
        ));
    }
    let replicas = spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < replicas {
        return Rollout::Progressing(format!("{ready} of {replicas} replicas ready"));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(rolling) = strategy.and_then(|strategy| strategy.rolling_update.as_ref()) {
        let partition = rolling.partition.unwrap_or(0);
        let wanted = replicas - partition;
        if updated < wanted {
            return Rollout::Progressing(match partition {
                0 => format!("{updated} of {replicas} replicas updated"),
                _ => format!("{updated} of {wanted} replicas updated (partition {partition})"),
            });
        }
        return Rollout::Complete;
    }
    let update_revision = status.update_revision.as_deref().unwrap_or_default();
    if status.current_revision.as_deref().unwrap_or_default() != update_revision {
        return Rollout::Progressing(format!(
            "{updated} of {replicas} replicas at revision {update_revision}"
        ));
    }
    Rollout::Complete
}
