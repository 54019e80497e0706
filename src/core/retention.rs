//! Retention: which old Artifacts and finished Promotions of a namespace
//! go, decided from a snapshot of the namespace and `now`.
//!
//! Artifacts are shared by the Environments of a namespace, so they are
//! decided once per application: the newest `artifacts` (by creation) stay,
//! and an older one goes only when nothing needs it: no Environment (of any
//! cluster) runs it, names it in its history within `historyLimit`, or
//! would roll back to it, and no open Promotion refers to it. Finished
//! Promotions are decided per Environment: the newest `promotions` (by
//! completion) stay, so do those younger than `promotionsMinAge` and those
//! the Environment's status names. Every verdict carries its reason, so
//! the dry run (`kubectl hoist gc --dry-run`) can say why each survivor
//! stays.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Deserialize;

use crate::api::{Artifact, Environment, Promotion, Retention};
use crate::core::duration::{self, DurationError};
use crate::core::environment::rollback_target;
use crate::core::reasons::{DeleteReason, KeepReason};

/// Artifacts kept per application unless configured.
pub const DEFAULT_ARTIFACTS: usize = 30;
/// Finished Promotions kept per Environment unless configured.
pub const DEFAULT_PROMOTIONS: usize = 20;
/// Finished Promotions younger than this are kept unless configured.
pub const DEFAULT_PROMOTIONS_MIN_AGE: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The operator configuration's `retention`: the defaults of every
/// Environment's `spec.retention`, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionDefaults {
    /// Artifacts kept per application (default 30).
    #[serde(default)]
    pub artifacts: Option<usize>,
    /// Finished Promotions kept per Environment (default 20).
    #[serde(default)]
    pub promotions: Option<usize>,
    /// Finished Promotions younger than this are kept (default 336h).
    #[serde(default)]
    pub promotions_min_age: Option<MinAge>,
}

/// A minimum age, checked when the configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MinAge(pub SignedDuration);

impl TryFrom<String> for MinAge {
    type Error = DurationError;

    fn try_from(text: String) -> Result<Self, DurationError> {
        duration::parse(&text).map(MinAge)
    }
}

/// What one Environment keeps, every default applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub artifacts: usize,
    pub promotions: usize,
    pub promotions_min_age: SignedDuration,
}

/// Why an Environment's `spec.retention` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("spec.retention.promotionsMinAge of Environment {environment}")]
pub struct RetentionError {
    pub environment: String,
    #[source]
    pub source: DurationError,
}

impl Limits {
    /// The limits of `spec` (an Environment's `spec.retention`) over the
    /// operator's `defaults` over the built-in ones.
    pub fn of(spec: Option<&Retention>, defaults: &RetentionDefaults) -> Result<Limits, DurationError> {
        let count = |value: Option<i32>| value.and_then(|n| usize::try_from(n).ok());
        let min_age = match spec.and_then(|s| s.promotions_min_age.as_deref()) {
            Some(text) => duration::parse(text)?,
            None => defaults
                .promotions_min_age
                .map_or(DEFAULT_PROMOTIONS_MIN_AGE, |age| age.0),
        };
        Ok(Limits {
            artifacts: count(spec.and_then(|s| s.artifacts))
                .or(defaults.artifacts)
                .unwrap_or(DEFAULT_ARTIFACTS),
            promotions: count(spec.and_then(|s| s.promotions))
                .or(defaults.promotions)
                .unwrap_or(DEFAULT_PROMOTIONS),
            promotions_min_age: min_age,
        })
    }
}

/// A namespace as retention sees it.
pub struct Snapshot<'a> {
    /// Every Environment of the namespace, whichever cluster runs it.
    pub environments: Vec<&'a Environment>,
    pub artifacts: Vec<&'a Artifact>,
    pub promotions: Vec<&'a Promotion>,
    /// The operator configuration's `retention`.
    pub defaults: &'a RetentionDefaults,
    pub now: Time,
}

/// Which kind of object a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Artifact,
    Promotion,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Artifact => "Artifact",
            Kind::Promotion => "Promotion",
        }
    }
}

/// Whether an object stays, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It stays; `by` names the Environment or Promotion that needs it,
    /// where one does.
    Keep {
        reason: KeepReason,
        by: Option<String>,
    },
    Delete(DeleteReason),
}

/// The decision about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: Kind,
    pub name: String,
    /// The application of an Artifact, the Environment of a Promotion.
    pub group: String,
    pub outcome: Outcome,
}

impl Verdict {
    pub fn deletes(&self) -> bool {
        matches!(self.outcome, Outcome::Delete(_))
    }
}

/// Every verdict of a namespace, Artifacts by application then
/// Promotions by Environment, newest first within each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub verdicts: Vec<Verdict>,
    /// Environments whose `spec.retention` cannot be read: their Promotions
    /// are not decided, and their Artifact count is left out.
    pub errors: Vec<String>,
}

impl Decision {
    pub fn deletions(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|verdict| verdict.deletes())
    }
}

/// Decides a namespace.
pub fn decide(snapshot: &Snapshot<'_>) -> Decision {
    let mut decision = Decision::default();
    let mut limits = BTreeMap::new();
    for environment in &snapshot.environments {
        match Limits::of(environment.spec.retention.as_ref(), snapshot.defaults) {
            Ok(found) => {
                limits.insert(environment.name_any(), found);
            }
            Err(source) => {
                let error = RetentionError {
                    environment: environment.name_any(),
                    source,
                };
                decision.errors.push(format!("{error}: {}", error.source));
            }
        }
    }
    let artifacts_kept = limits
        .values()
        .map(|found| found.artifacts)
        .max()
        .or(snapshot.defaults.artifacts)
        .unwrap_or(DEFAULT_ARTIFACTS);
    decision
        .verdicts
        .extend(decide_artifacts(snapshot, artifacts_kept));
    for environment in &snapshot.environments {
        if let Some(found) = limits.get(&environment.name_any()) {
            decision
                .verdicts
                .extend(decide_promotions(snapshot, environment, found));
        }
    }
    decision
}

fn created(meta: &impl ResourceExt) -> Option<Time> {
    meta.creation_timestamp()
}

fn being_deleted(object: &impl ResourceExt) -> bool {
    object.meta().deletion_timestamp.is_some()
}

fn decide_artifacts(snapshot: &Snapshot<'_>, kept: usize) -> Vec<Verdict> {
    let mut by_application: BTreeMap<&str, Vec<&Artifact>> = BTreeMap::new();
    for artifact in snapshot.artifacts.iter().filter(|a| !being_deleted(**a)) {
        by_application
            .entry(artifact.spec.application.as_str())
            .or_default()
            .push(artifact);
    }
    let mut verdicts = Vec::new();
    for (application, mut artifacts) in by_application {
        artifacts.sort_by_key(|artifact| Reverse((created(*artifact).map(|t| t.0), artifact.name_any())));
        for (rank, artifact) in artifacts.into_iter().enumerate() {
            let name = artifact.name_any();
            let outcome = if rank < kept {
                Outcome::Keep {
                    reason: KeepReason::Newest,
                    by: None,
                }
            } else {
                artifact_guard(snapshot, application, &name)
                    .map_or(Outcome::Delete(DeleteReason::BeyondNewest), |(reason, by)| {
                        Outcome::Keep { reason, by: Some(by) }
                    })
            };
            verdicts.push(Verdict {
                kind: Kind::Artifact,
                name,
                group: application.to_owned(),
                outcome,
            });
        }
    }
    verdicts
}

/// What keeps an Artifact beyond the newest, and who needs it.
fn artifact_guard(snapshot: &Snapshot<'_>, application: &str, name: &str) -> Option<(KeepReason, String)> {
    let statuses = || {
        snapshot
            .environments
            .iter()
            .filter_map(|environment| environment.status.as_ref().map(|status| (*environment, status)))
    };
    if let Some((environment, _)) =
        statuses().find(|(_, status)| status.applications.iter().any(|app| app.artifact == name))
    {
        return Some((KeepReason::Runs, environment.name_any()));
    }
    if let Some((environment, _)) = statuses().find(|(environment, status)| {
        let limit = usize::try_from(environment.spec.history_limit).unwrap_or(0);
        status
            .history
            .iter()
            .take(limit)
            .any(|entry| entry.artifact == name)
    }) {
        return Some((KeepReason::InHistory, environment.name_any()));
    }
    if let Some(promotion) = snapshot.promotions.iter().find(|promotion| {
        promotion.spec.artifact == name && !promotion.status.as_ref().is_some_and(|s| s.phase.is_terminal())
    }) {
        return Some((KeepReason::OpenPromotion, promotion.name_any()));
    }
    statuses()
        .find(|(_, status)| rollback_target(status, application).is_some_and(|entry| entry.artifact == name))
        .map(|(environment, _)| (KeepReason::RollbackTarget, environment.name_any()))
}

fn decide_promotions(snapshot: &Snapshot<'_>, environment: &Environment, limits: &Limits) -> Vec<Verdict> {
    let environment_name = environment.name_any();
    let mut promotions: Vec<&Promotion> = snapshot
        .promotions
        .iter()
        .copied()
        .filter(|promotion| promotion.spec.environment == environment_name && !being_deleted(*promotion))
        .collect();
    let finished_at = |promotion: &Promotion| {
        promotion
            .status
            .as_ref()
            .and_then(|status| status.completed_at.clone())
            .or_else(|| created(promotion))
    };
    promotions.sort_by_key(|promotion| Reverse((finished_at(promotion).map(|t| t.0), promotion.name_any())));
    let named: Vec<&str> = environment
        .status
        .iter()
        .flat_map(|status| {
            status
                .history
                .iter()
                .map(|entry| entry.promotion.as_str())
                .chain(status.applications.iter().map(|app| app.promotion.as_str()))
        })
        .collect();
    let mut finished = 0;
    promotions
        .into_iter()
        .map(|promotion| {
            let name = promotion.name_any();
            let terminal = promotion.status.as_ref().is_some_and(|s| s.phase.is_terminal());
            let keep = |reason| Outcome::Keep { reason, by: None };
            let outcome = if !terminal {
                keep(KeepReason::Open)
            } else {
                finished += 1;
                let young = finished_at(promotion)
                    .is_some_and(|at| snapshot.now.0.duration_since(at.0) < limits.promotions_min_age);
                if finished <= limits.promotions {
                    keep(KeepReason::Newest)
                } else if named.contains(&name.as_str()) {
                    Outcome::Keep {
                        reason: KeepReason::InHistory,
                        by: Some(environment_name.clone()),
                    }
                } else if young {
                    keep(KeepReason::Young)
                } else {
                    Outcome::Delete(DeleteReason::BeyondNewest)
                }
            };
            Verdict {
                kind: Kind::Promotion,
                name,
                group: environment_name.clone(),
                outcome,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
