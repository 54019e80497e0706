//! An approval gate's rules as it applies them: who each allows, how many
//! approvals each needs, and why an entry counts for none.

use crate::api::{Approval, ApprovalDecision, ApprovalGate};

/// The name of the one rule of a gate without `rules`.
const IMPLICIT_RULE: &str = "approvers";

/// A rule as the gate applies it.
pub(super) struct Rule<'g> {
    pub(super) name: &'g str,
    pub(super) users: &'g [String],
    pub(super) groups: &'g [String],
    pub(super) needed: usize,
    /// The implicit rule of a gate that lists nobody allows anyone.
    pub(super) anyone: bool,
}

impl Rule<'_> {
    pub(super) fn allows(&self, approval: &Approval) -> bool {
        // An explicit rule without users or groups (refused by the schema,
        // possible in files `hoist render` reads) allows nobody.
        self.anyone
            || self.users.contains(&approval.user)
            || self.groups.iter().any(|group| approval.groups.contains(group))
    }

    /// Who may approve for the rule, as in "from users alice, bob or group staff".
    pub(super) fn who(&self) -> String {
        let list = |one: &str, many: &str, names: &[String]| {
            format!(
                "{} {}",
                if names.len() == 1 { one } else { many },
                names.join(", ")
            )
        };
        match (self.users.is_empty(), self.groups.is_empty()) {
            (false, false) => format!(
                "{} or {}",
                list("user", "users", self.users),
                list("group", "groups", self.groups)
            ),
            (false, true) => list("user", "users", self.users),
            (true, false) => list("group", "groups", self.groups),
            (true, true) if self.anyone => "anyone".to_string(),
            (true, true) => "nobody (the rule names no users or groups)".to_string(),
        }
    }
}

pub(super) fn rules_of(gate: &ApprovalGate) -> Vec<Rule<'_>> {
    let needed = |min: i32| usize::try_from(min).unwrap_or(1).max(1);
    if gate.rules.is_empty() {
        return vec![Rule {
            name: IMPLICIT_RULE,
            users: &gate.users,
            groups: &gate.groups,
            needed: needed(gate.min_approvals),
            anyone: gate.users.is_empty() && gate.groups.is_empty(),
        }];
    }
    gate.rules
        .iter()
        .map(|rule| Rule {
            name: &rule.name,
            users: &rule.users,
            groups: &rule.groups,
            needed: needed(rule.min_approvals),
            anyone: false,
        })
        .collect()
}

pub(super) fn count_of_approvals(n: usize) -> String {
    format!("{n} approval{}", if n == 1 { "" } else { "s" })
}

/// Why an entry of spec.approvals does not count: its note in
/// status.approvals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCounted {
    #[error("identity not verified")]
    Unverified,

    #[error("self-approval: {requester} requested this Promotion")]
    SelfApproval { requester: String },

    #[error("requester unknown: spec.requestedBy is not set")]
    RequesterUnknown,

    /// The gate's one implicit rule does not allow the approver.
    #[error("not allowed to approve here: only {who}")]
    NotAllowed { who: String },

    #[error("not in the users or groups of any rule")]
    NoRule,
}

/// The rules that allow `approval`, or why it does not count.
pub(super) fn judge(
    gate: &ApprovalGate,
    rules: &[Rule<'_>],
    requested_by: Option<&str>,
    approval: &Approval,
) -> Result<Vec<usize>, NotCounted> {
    if !approval.verified && !gate.allow_unverified {
        return Err(NotCounted::Unverified);
    }
    if gate.forbid_self_approval && approval.decision == ApprovalDecision::Approve {
        match requested_by {
            Some(requester) if requester == approval.user => {
                return Err(NotCounted::SelfApproval {
                    requester: requester.to_owned(),
                });
            }
            None if !gate.allow_unverified => return Err(NotCounted::RequesterUnknown),
            _ => {}
        }
    }
    let allowed: Vec<usize> = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.allows(approval))
        .map(|(index, _)| index)
        .collect();
    if allowed.is_empty() {
        return Err(match rules {
            [rule] if gate.rules.is_empty() => NotCounted::NotAllowed { who: rule.who() },
            _ => NotCounted::NoRule,
        });
    }
    Ok(allowed)
}
