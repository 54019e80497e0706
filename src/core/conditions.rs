//! `metav1.Condition` bookkeeping in the kstatus style: every condition
//! carries the generation it describes, and `lastTransitionTime` moves only
//! when the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::core::reasons::ConditionReason;

/// The wanted state of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: ConditionReason,
    /// What happened and what to do next.
    pub message: String,
}

/// Sets `wanted` in `conditions`, keeping `lastTransitionTime` when the status
/// does not change. Returns the updated list in a stable order (by type).
pub fn set(
    conditions: &[Condition],
    wanted: Wanted<'_>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let status = if wanted.status { "True" } else { "False" }.to_string();
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ != wanted.type_)
        .cloned()
        .collect();
    let transition = conditions
        .iter()
        .find(|c| c.type_ == wanted.type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    out.push(Condition {
        type_: wanted.type_.to_string(),
        status,
        reason: wanted.reason.as_str().to_owned(),
        message: wanted.message,
        observed_generation: generation,
        last_transition_time: transition,
    });
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Sets every wanted condition and drops conditions of the given managed
/// types that are not wanted any more.
pub fn set_all(
    conditions: &[Condition],
    wanted: Vec<Wanted<'_>>,
    managed: &[&str],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| !managed.contains(&c.type_.as_str()) || wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    for condition in wanted {
        out = set(&out, condition, generation, now);
    }
    out
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reasons::ResolutionFailure;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: bool, reason: ConditionReason) -> Wanted<'static> {
        Wanted {
            type_: "Ready",
            status,
            reason,
            message: format!("{reason} happened"),
        }
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let first = set(&[], ready(false, ConditionReason::Resolving), Some(1), &at(100));
        assert_eq!(first[0].last_transition_time, at(100));
        let same_status = set(
            &first,
            ready(false, ResolutionFailure::RegistryUnavailable.reason()),
            Some(2),
            &at(200),
        );
        assert_eq!(same_status[0].last_transition_time, at(100));
        assert_eq!(
            (same_status[0].reason.as_str(), same_status[0].observed_generation),
            ("RegistryUnavailable", Some(2))
        );
        let flipped = set(
            &same_status,
            ready(true, ConditionReason::Resolved),
            Some(2),
            &at(300),
        );
        assert_eq!(
            (
                flipped[0].status.as_str(),
                flipped[0].last_transition_time.clone()
            ),
            ("True", at(300))
        );
    }

    #[test]
    fn set_all_drops_managed_conditions_no_longer_wanted() {
        let mut existing = set(&[], ready(true, ConditionReason::Ready), Some(1), &at(1));
        existing = set(
            &existing,
            Wanted {
                type_: "TargetsValid",
                status: false,
                reason: ConditionReason::InvalidTarget,
                message: "x".into(),
            },
            Some(1),
            &at(1),
        );
        existing = set(
            &existing,
            Wanted {
                type_: "Foreign",
                status: true,
                reason: ConditionReason::Valid,
                message: "y".into(),
            },
            Some(1),
            &at(1),
        );
        let out = set_all(
            &existing,
            vec![ready(true, ConditionReason::Ready)],
            &["Ready", "TargetsValid"],
            Some(1),
            &at(2),
        );
        let types: Vec<&str> = out.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["Foreign", "Ready"]);
        assert_eq!(out[1].last_transition_time, at(1));
    }
}
