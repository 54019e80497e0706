//! `spec.autoPromote` and its policy `spec.autoPromotion`: which Promotions
//! an Environment creates by itself, and its `AutoPromotion` condition
//! saying what waits and why.
//!
//! A pure function of the Environment, what runs in it and the namespace's
//! Artifacts, Promotions and Environments, so the hub decides the same for
//! an Environment of a workload cluster (from the status its agent writes)
//! as the agent does for the condition.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, Artifact, AutoPromotion, AutoPromotionHold, Environment, GateState, Promotion,
    PromotionSpec, VersionPolicy,
};
use crate::core::conditions::{self, Wanted};
use crate::core::gates::upstream;
use crate::core::reasons::ConditionReason;
use crate::core::version::{self, Bump};

/// Label on Promotions created by autoPromote.
pub const AUTO_PROMOTED_LABEL: &str = "hoist.dev/auto-promoted";
/// The Environment's condition of autoPromote, present while it is on.
pub const AUTO_PROMOTION: &str = "AutoPromotion";

/// What autoPromote needs to see of one Environment's namespace.
pub struct Inputs<'s, 'a> {
    pub environment: &'a Environment,
    /// Every Environment of the namespace, by name.
    pub environments: &'s BTreeMap<String, &'a Environment>,
    /// Every Artifact of the namespace, by name.
    pub artifacts: &'s BTreeMap<String, &'a Artifact>,
    /// Every Promotion into the Environment.
    pub promotions: &'s [&'a Promotion],
    /// What runs in the Environment, per application.
    pub running: &'s BTreeMap<String, ApplicationStatus>,
    /// The operator's user, recorded as the Promotions' spec.requestedBy.
    pub operator: Option<&'s str>,
}

/// What autoPromote decides.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoPromotions {
    /// Promotions to create.
    pub promotions: Vec<Promotion>,
    /// The `AutoPromotion` condition; `None` while autoPromote is off.
    pub condition: Option<Wanted<'static>>,
}

/// Why the newest release of an application is not promoted by itself.
enum Waits {
    /// A larger version step than the policy takes.
    Step(String),
    /// It has not run, healthy, in autoPromotion.upstream yet.
    Upstream(String),
}

/// With spec.autoPromote and no hold, a Promotion per targeted application
/// that has none under way: of the newest Ready Artifact newer than what
/// runs, never promoted here, within autoPromotion.versions of what runs
/// and healthy in autoPromotion.upstream, requested by the operator's user.
pub fn auto_promotions(inputs: &Inputs<'_, '_>) -> AutoPromotions {
    let environment = inputs.environment;
    if !environment.spec.auto_promote {
        return AutoPromotions {
            promotions: Vec::new(),
            condition: None,
        };
    }
    let policy = environment.spec.auto_promotion.clone().unwrap_or_default();
    if let Some(hold) = &policy.hold {
        return AutoPromotions {
            promotions: Vec::new(),
            condition: Some(Wanted {
                type_: AUTO_PROMOTION,
                status: false,
                reason: ConditionReason::Held,
                message: held(&environment.name_any(), hold),
            }),
        };
    }
    let applications: BTreeSet<&str> = environment
        .spec
        .targets
        .iter()
        .map(|t| t.application.as_str())
        .collect();
    let promoted: BTreeSet<&str> = inputs
        .promotions
        .iter()
        .map(|p| p.spec.artifact.as_str())
        .collect();
    let busy: BTreeSet<&str> = inputs
        .promotions
        .iter()
        .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .filter_map(|p| inputs.artifacts.get(&p.spec.artifact))
        .map(|a| a.spec.application.as_str())
        .collect();
    let mut promotions = Vec::new();
    let mut waiting = Vec::new();
    for application in applications.into_iter().filter(|a| !busy.contains(a)) {
        let current = inputs.running.get(application);
        let mut candidates: Vec<&Artifact> = inputs
            .artifacts
            .values()
            .copied()
            .filter(|a| a.spec.application == application)
            .filter(|a| {
                conditions::is_true(
                    &a.status.clone().unwrap_or_default().conditions,
                    crate::api::CONDITION_READY,
                )
            })
            .filter(|a| !promoted.contains(a.name_any().as_str()))
            .filter(|a| current.is_none_or(|current| newer(inputs, a, current)))
            .collect();
        candidates.sort_by(|a, b| order(b, a));
        // The newest that qualifies; the newest release, if it does not,
        // says why it waits.
        let mut chosen = None;
        for (index, artifact) in candidates.iter().enumerate() {
            match waits(inputs, &policy, artifact, current) {
                None => {
                    chosen = Some(*artifact);
                    break;
                }
                Some(why) if index == 0 => waiting.push(why),
                Some(_) => {}
            }
        }
        if let Some(artifact) = chosen {
            promotions.push(promotion(environment, artifact, inputs.operator));
        }
    }
    let steps: Vec<&str> = waiting
        .iter()
        .filter_map(|why| match why {
            Waits::Step(message) => Some(message.as_str()),
            Waits::Upstream(_) => None,
        })
        .collect();
    let condition = if steps.is_empty() {
        let mut message = describe(&policy);
        for why in &waiting {
            if let Waits::Upstream(note) = why {
                message.push_str("; ");
                message.push_str(note);
            }
        }
        Wanted {
            type_: AUTO_PROMOTION,
            status: true,
            reason: ConditionReason::Active,
            message,
        }
    } else {
        Wanted {
            type_: AUTO_PROMOTION,
            status: false,
            reason: ConditionReason::StepTooLarge,
            message: steps.join("; "),
        }
    };
    AutoPromotions {
        promotions,
        condition: Some(condition),
    }
}

/// Whether `artifact` is newer than what runs: by version, else (versions
/// that cannot be ordered) by creation time.
fn newer(inputs: &Inputs<'_, '_>, artifact: &Artifact, current: &ApplicationStatus) -> bool {
    match version::compare(
        artifact.spec.version_scheme,
        &artifact.spec.version,
        &current.version,
    ) {
        Some(order) => order.is_gt(),
        None => inputs
            .artifacts
            .get(&current.artifact)
            .is_none_or(|running| artifact.metadata.creation_timestamp > running.metadata.creation_timestamp),
    }
}

/// Older to newer: by version, else by creation time.
fn order(a: &Artifact, b: &Artifact) -> Ordering {
    version::compare(a.spec.version_scheme, &a.spec.version, &b.spec.version)
        .unwrap_or_else(|| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
}

/// Why the policy keeps `artifact` from being promoted by itself, if it does.
fn waits(
    inputs: &Inputs<'_, '_>,
    policy: &AutoPromotion,
    artifact: &Artifact,
    current: Option<&ApplicationStatus>,
) -> Option<Waits> {
    let step = version::bump(
        artifact.spec.version_scheme,
        current.map(|c| c.version.as_str()),
        &artifact.spec.version,
    );
    let largest = match policy.versions {
        VersionPolicy::Any => Bump::Major,
        VersionPolicy::MinorOrPatch => Bump::Minor,
        VersionPolicy::Patch => Bump::Patch,
    };
    let name = artifact.name_any();
    let environment = inputs.environment.name_any();
    if step > largest {
        let from = match current {
            Some(current) => format!(
                "is a {} from {}",
                version::describe(
                    step,
                    version::direction(
                        artifact.spec.version_scheme,
                        Some(&current.version),
                        &artifact.spec.version
                    )
                ),
                current.version
            ),
            None => format!("would be the first release of {} here", artifact.spec.application),
        };
        return Some(Waits::Step(format!(
            "{name} ({}) {from} and autoPromotion.versions is {:?}: it waits for a manual Promotion \
             (kubectl hoist promote {name} {environment})",
            artifact.spec.version, policy.versions
        )));
    }
    let upstream: Vec<(&str, Option<&Environment>)> = policy
        .upstream
        .iter()
        .map(|name| (name.as_str(), inputs.environments.get(name).copied()))
        .collect();
    let outcome = upstream::evaluate(artifact, false, &upstream);
    (outcome.state != GateState::Passed)
        .then(|| Waits::Upstream(format!("{name} waits: {}", outcome.message)))
}

/// What autoPromote does, as the condition says it.
fn describe(policy: &AutoPromotion) -> String {
    let versions = match policy.versions {
        VersionPolicy::Any => "every newer Ready Artifact",
        VersionPolicy::MinorOrPatch => "newer Ready Artifacts of the same major version",
        VersionPolicy::Patch => "newer Ready Artifacts of the same major and minor version",
    };
    if policy.upstream.is_empty() {
        format!("promotes {versions}")
    } else {
        format!(
            "promotes {versions} once it runs healthy in {}",
            policy.upstream.join(", ")
        )
    }
}

/// The `AutoPromotion` message of a hold.
fn held(environment: &str, hold: &AutoPromotionHold) -> String {
    let by = hold
        .by
        .as_deref()
        .map(|user| format!(" by {user}"))
        .unwrap_or_default();
    let since = hold
        .since
        .as_ref()
        .map(|time| format!(" since {}", time.0))
        .unwrap_or_default();
    format!(
        "held{by}{since}: {}; manual Promotions still run; kubectl hoist unhold {environment} resumes it",
        hold.reason
    )
}

/// The Promotion autoPromote creates for `artifact`.
fn promotion(environment: &Environment, artifact: &Artifact, operator: Option<&str>) -> Promotion {
    let mut name = format!("{}-{}", artifact.name_any(), environment.name_any());
    name.truncate(253);
    let mut promotion = Promotion::new(
        name.trim_end_matches(['-', '.']),
        PromotionSpec {
            artifact: artifact.name_any(),
            environment: environment.name_any(),
            reason: Some("autoPromote".into()),
            requested_by: operator.map(str::to_string),
            r#override: None,
            approvals: Vec::new(),
        },
    );
    promotion.metadata.namespace = environment.namespace();
    promotion.metadata.labels = Some([(AUTO_PROMOTED_LABEL.to_string(), "true".to_string())].into());
    promotion
}

#[cfg(test)]
mod tests;
