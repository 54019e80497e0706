//! The two conditions of the kstatus convention (`sigs.k8s.io/cli-utils`
//! `pkg/kstatus`, which Flux's health checks and `kubectl wait` recipes
//! read): `Reconciling` is True while an object has not reached what its
//! spec asks, `Stalled` is True when it cannot get there without a change.
//! Both are "abnormal-true": an object that has arrived carries neither, so
//! kstatus calls it Current as soon as its `observedGeneration` is its
//! generation. The Argo CD health checks (deploy/argocd) read the same
//! conditions, so both tools tell the same story.
//!
//! Each kind's progress is a pure function of the status the core computes
//! anyway; [`set`] folds it into the conditions, so it changes only when the
//! phase, health or resolution it derives from changes: no extra writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{ApplicationStatus, Health, Phase, PromotionStatus};
use crate::core::conditions::{self, Wanted};
use crate::core::reasons::ConditionReason;

/// kstatus' "in progress" condition.
pub const RECONCILING: &str = "Reconciling";
/// kstatus' "failed" condition.
pub const STALLED: &str = "Stalled";

/// Where an object stands, in kstatus' words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Arrived: neither condition.
    Current,
    /// `Reconciling=True` with this reason and message.
    Reconciling {
        reason: ConditionReason,
        message: String,
    },
    /// `Stalled=True` with this reason and message.
    Stalled {
        reason: ConditionReason,
        message: String,
    },
}

/// `conditions` with `Reconciling` and `Stalled` as `progress` says
/// (absent when not True), keeping every other condition.
pub fn set(
    conditions: &[Condition],
    progress: Progress,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let wanted = match progress {
        Progress::Current => Vec::new(),
        Progress::Reconciling { reason, message } => vec![Wanted {
            type_: RECONCILING,
            status: true,
            reason,
            message,
        }],
        Progress::Stalled { reason, message } => vec![Wanted {
            type_: STALLED,
            status: true,
            reason,
            message,
        }],
    };
    conditions::set_all(conditions, wanted, &[RECONCILING, STALLED], generation, now)
}

/// A Promotion reconciles until it ends; it is stalled when it ended
/// without its Artifact running (Failed, RolledBack, Rejected). Superseded
/// is an arrival: a newer release succeeded in its place.
pub fn of_promotion(status: &PromotionStatus) -> Progress {
    let reason = status.phase.reason();
    let message = status
        .message
        .clone()
        .unwrap_or_else(|| reason.as_str().to_string());
    match status.phase {
        Phase::Succeeded | Phase::Superseded => Progress::Current,
        Phase::Failed | Phase::RolledBack | Phase::Rejected => Progress::Stalled { reason, message },
        Phase::Pending | Phase::Waiting | Phase::Promoting | Phase::Verifying => {
            Progress::Reconciling { reason, message }
        }
    }
}

/// An Environment is stalled while its spec cannot be acted on (`Ready`
/// False: its reason and message) or a release it runs is Degraded, and
/// reconciling while a rollout progresses.
pub fn of_environment(ready: &Wanted<'_>, applications: &[ApplicationStatus]) -> Progress {
    if !ready.status {
        return Progress::Stalled {
            reason: ready.reason,
            message: ready.message.clone(),
        };
    }
    let with = |health: Health| -> Vec<String> {
        applications
            .iter()
            .filter(|app| app.health == health)
            .map(|app| format!("{}@{}", app.application, app.version))
            .collect()
    };
    let degraded = with(Health::Degraded);
    if !degraded.is_empty() {
        return Progress::Stalled {
            reason: ConditionReason::Degraded,
            message: format!("degraded: {}", degraded.join(", ")),
        };
    }
    let progressing = with(Health::Progressing);
    if !progressing.is_empty() {
        return Progress::Reconciling {
            reason: ConditionReason::Progressing,
            message: format!("rolling out: {}", progressing.join(", ")),
        };
    }
    Progress::Current
}

/// An Artifact reconciles until every image resolved; it is stalled when a
/// failure no retry can mend (the spec cannot change: only a new Artifact
/// helps), and reconciling through failures it retries.
pub fn of_artifact(ready: &Wanted<'_>) -> Progress {
    if ready.status {
        return Progress::Current;
    }
    let terminal = matches!(ready.reason, ConditionReason::Unresolved(failure) if failure.is_terminal());
    if terminal {
        Progress::Stalled {
            reason: ready.reason,
            message: ready.message.clone(),
        }
    } else {
        Progress::Reconciling {
            reason: ready.reason,
            message: ready.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
