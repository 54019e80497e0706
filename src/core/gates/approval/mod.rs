//! The approval gate: which entries of a Promotion's spec.approvals count,
//! whether the gate's rules are met by distinct people, and whether an
//! allowed approver rejected the Promotion.
//!
//! Identity is worth what the API server vouches for. With the admission
//! policy hoist-approvals installed, an entry added to spec.approvals names
//! the user who added it and their groups, and spec.requestedBy the user
//! who created the Promotion. Whether an entry is verified is fixed when
//! Hoist first sees it (kept in status.approvals), since an entry written
//! before the policy was installed was never checked. An entry counts when
//! it is verified or the gate says `allowUnverified`, it is not a
//! self-approval the gate forbids, a rule allows its user or one of its
//! groups, and it is its user's first entry of that decision that would
//! count. A rejection is never a self-approval: a requester who may approve
//! may withdraw their own Promotion, and an approver who approved may still
//! reject it.

mod matching;
mod rules;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{
    Approval, ApprovalDecision, ApprovalGate, ApprovalRequired, ApprovalRuleStatus, Environment, Promotion,
};
use crate::core::reasons::EventReason;
use crate::core::version::{Bump, Direction};

use super::outcome::Outcome;
use matching::assign;
use rules::{Rule, count_of_approvals, judge, rules_of};

/// The name of the admission policy, and of its binding, the chart ships.
pub const POLICY: &str = "hoist-approvals";

/// What the operator found out about the admission policy that vouches for
/// approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalTrust {
    /// The policy and its binding are installed as shipped: entries added
    /// now name the user who added them, with their groups.
    Verified,
    /// Nothing vouches for what an entry says, and why: the policy (and
    /// binding) of this name is missing or not as shipped.
    Unverified { policy: String, reason: String },
}

impl ApprovalTrust {
    pub fn is_verified(&self) -> bool {
        matches!(self, ApprovalTrust::Verified)
    }
}

/// What a cluster admin must do for approvals to be verified.
pub fn admin_message(policy: &str, reason: &str) -> String {
    format!(
        "approvals cannot be verified ({reason}): a cluster admin must install the ValidatingAdmissionPolicy \
         {policy} and its ValidatingAdmissionPolicyBinding {policy} (Kubernetes 1.30+), from the Hoist chart \
         or deploy/admission/; on older clusters, set spec.gates.approval.allowUnverified: true to count \
         approvals nobody verified"
    )
}

/// The approval gate a Promotion into `environment` must pass: the
/// Environment's, always required for a break-glass override; for an
/// override into an Environment without one, one approval by anyone but
/// the requester (a second pair of eyes is the point of the rule).
pub fn policy(environment: &Environment, promotion: &Promotion) -> Option<ApprovalGate> {
    match (&environment.spec.gates.approval, &promotion.spec.r#override) {
        (Some(gate), Some(_)) => Some(ApprovalGate {
            required: ApprovalRequired::Always,
            ..gate.clone()
        }),
        (Some(gate), None) => Some(gate.clone()),
        (None, Some(_)) => Some(ApprovalGate {
            required: ApprovalRequired::Always,
            min_approvals: 1,
            users: Vec::new(),
            groups: Vec::new(),
            forbid_self_approval: true,
            rules: Vec::new(),
            allow_unverified: false,
        }),
        (None, None) => None,
    }
}

/// Everything the approval gate of one Promotion looks at.
pub struct ApprovalInput<'a> {
    /// The gate that applies ([`policy`]), if any.
    pub gate: Option<&'a ApprovalGate>,
    /// The Environment's name, for messages.
    pub environment: &'a str,
    pub promotion: &'a Promotion,
    /// The size of the version change against what runs.
    pub bump: Bump,
    /// And its direction: `required: MinorOrMajor` and `Major` count a
    /// downgrade by its size, like an upgrade.
    pub direction: Direction,
    pub trust: &'a ApprovalTrust,
    /// status.approvals as last recorded: when each entry was first seen,
    /// and whether it was verified then.
    pub previous: &'a [Approval],
    pub now: &'a Time,
}

/// A rejection by an approver the gate allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub user: String,
    pub comment: Option<String>,
}

impl Rejection {
    /// Who rejected and why, for the Promotion's message and Event.
    pub fn message(&self) -> String {
        match &self.comment {
            Some(comment) => format!("rejected by {}: {comment}", self.user),
            None => format!("rejected by {} (no reason given)", self.user),
        }
    }
}

/// An Event the approval gate asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNotice {
    pub reason: EventReason,
    pub note: String,
}

/// What the approval gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalVerdict {
    /// The gate's state, what it saw and what would make it pass.
    pub outcome: Outcome,
    /// One per entry of spec.approvals, in order.
    pub approvals: Vec<Approval>,
    /// One per rule.
    pub rules: Vec<ApprovalRuleStatus>,
    /// The first rejection that counts: the Promotion ends Rejected.
    pub rejection: Option<Rejection>,
    /// Approved or ApprovalIgnored, once per entry seen for the first time.
    pub notices: Vec<ApprovalNotice>,
}

/// status.approvals for spec.approvals: an entry seen before (same user,
/// groups and decision, matched in order) keeps its time and whether it
/// was verified; a new one is stamped now, verified as the trust is now.
/// Returns the indices of the new ones too.
fn record(input: &ApprovalInput<'_>) -> (Vec<Approval>, Vec<usize>) {
    let mut used = vec![false; input.previous.len()];
    let mut new = Vec::new();
    let approvals = input
        .promotion
        .spec
        .approvals
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let earlier = input.previous.iter().enumerate().find(|(at, old)| {
                !used[*at]
                    && old.user == entry.user
                    && old.groups == entry.groups
                    && old.decision == entry.decision
            });
            let (at, verified) = match earlier {
                Some((position, old)) => {
                    used[position] = true;
                    (old.at.clone(), old.verified)
                }
                None => {
                    new.push(index);
                    (input.now.clone(), input.trust.is_verified())
                }
            };
            Approval {
                user: entry.user.clone(),
                groups: entry.groups.clone(),
                decision: entry.decision,
                at,
                verified,
                counted: false,
                note: None,
            }
        })
        .collect();
    (approvals, new)
}

/// Decides the approval gate of `input.promotion`.
pub fn evaluate(input: &ApprovalInput<'_>) -> ApprovalVerdict {
    let (mut approvals, new) = record(input);
    let entries = &input.promotion.spec.approvals;
    let Some(gate) = input.gate else {
        for approval in &mut approvals {
            approval.note = Some(format!("Environment {} has no approval gate", input.environment));
        }
        let notices = new
            .iter()
            .map(|index| ignored_notice(&approvals[*index]))
            .collect();
        return ApprovalVerdict {
            outcome: Outcome::passed("no approval required here"),
            approvals,
            rules: Vec::new(),
            rejection: None,
            notices,
        };
    };
    let rules = rules_of(gate);
    let requested_by = input.promotion.spec.requested_by.as_deref();

    // The entry of each user and decision that counts: their first that would.
    let mut first_entry: BTreeMap<(String, ApprovalDecision), usize> = BTreeMap::new();
    // Approvers that count, by entry index, with the rules that allow them.
    let mut approvers: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut rejection = None;
    for (index, (entry, approval)) in entries.iter().zip(approvals.iter_mut()).enumerate() {
        let allowed = match judge(gate, &rules, requested_by, approval) {
            Ok(allowed) => allowed,
            Err(note) => {
                approval.note = Some(note.to_string());
                continue;
            }
        };
        let key = (approval.user.clone(), approval.decision);
        if let Some(first) = first_entry.get(&key) {
            approval.note = Some(format!(
                "duplicate: only the first {} of {} (spec.approvals[{first}]) counts",
                match approval.decision {
                    ApprovalDecision::Approve => "approval",
                    ApprovalDecision::Reject => "rejection",
                },
                approval.user
            ));
            continue;
        }
        first_entry.insert(key, index);
        approval.counted = true;
        match approval.decision {
            ApprovalDecision::Reject => {
                approval.note = Some(format!(
                    "rejection by an allowed approver (rule {})",
                    rules[allowed[0]].name
                ));
                rejection.get_or_insert_with(|| Rejection {
                    user: approval.user.clone(),
                    comment: entry.comment.clone(),
                });
            }
            ApprovalDecision::Approve => approvers.push((index, allowed)),
        }
    }

    let allowed: Vec<Vec<usize>> = approvers.iter().map(|(_, allowed)| allowed.clone()).collect();
    let needed: Vec<usize> = rules.iter().map(|rule| rule.needed).collect();
    let assignment = assign(&allowed, &needed);
    let mut holders: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    let mut counted_for: BTreeMap<usize, &str> = BTreeMap::new();
    for ((index, _), rule) in approvers.iter().zip(&assignment) {
        if let Some(rule) = *rule {
            approvals[*index].note = Some(format!("counted for rule {}", rules[rule].name));
            holders[rule].push(approvals[*index].user.clone());
            counted_for.insert(*index, rules[rule].name);
        }
    }
    let statuses: Vec<ApprovalRuleStatus> = rules
        .iter()
        .zip(&holders)
        .map(|(rule, holders)| ApprovalRuleStatus {
            name: rule.name.to_string(),
            needed: i32::try_from(rule.needed).unwrap_or(i32::MAX),
            approvers: holders.clone(),
            met: holders.len() >= rule.needed,
        })
        .collect();

    // The implicit rule goes unnamed in Events: there is only the one.
    let named = |index: usize| {
        counted_for
            .get(&index)
            .copied()
            .filter(|_| !gate.rules.is_empty())
    };
    let notices = new
        .iter()
        .filter_map(|index| notice(&approvals[*index], named(*index)))
        .collect();
    let total = approvers.len();
    let min_total = usize::try_from(gate.min_approvals).unwrap_or(1).max(1);
    let met = statuses.iter().all(|status| status.met) && total >= min_total;
    let needs_approval = match gate.required {
        ApprovalRequired::Always => true,
        ApprovalRequired::MinorOrMajor => input.bump >= Bump::Minor,
        ApprovalRequired::Major => input.bump >= Bump::Major,
    };
    let mut outcome = if let Some(rejection) = &rejection {
        Outcome::failed(rejection.message())
    } else if !needs_approval {
        Outcome::passed(if input.direction == Direction::Downgrade {
            format!("a {:?} downgrade needs no approval here", input.bump)
        } else {
            format!("a {:?} version change needs no approval here", input.bump)
        })
    } else if met {
        let mut message = if gate.rules.is_empty() {
            format!("approved by {}", holders[0].join(", "))
        } else {
            format!(
                "approved: {}",
                rules
                    .iter()
                    .zip(&holders)
                    .map(|(rule, holders)| format!("{} ({})", rule.name, holders.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if approvers.iter().any(|(index, _)| !approvals[*index].verified) {
            message.push_str("; identities not verified, counted because of allowUnverified");
        }
        Outcome::passed(message)
    } else {
        waiting(input, gate, &rules, &statuses, total, min_total, &approvals)
    };
    // Say how a size rule treats a step back, so nobody takes it for a bump.
    if needs_approval
        && rejection.is_none()
        && gate.required != ApprovalRequired::Always
        && input.direction == Direction::Downgrade
    {
        outcome.message = format!(
            "{} (a {:?} downgrade needs approval like a {:?} bump: required {:?})",
            outcome.message, input.bump, input.bump, gate.required
        );
    }
    ApprovalVerdict {
        outcome,
        approvals,
        rules: statuses,
        rejection,
        notices,
    }
}

/// The gate's verdict while its rules are not met.
fn waiting(
    input: &ApprovalInput<'_>,
    gate: &ApprovalGate,
    rules: &[Rule<'_>],
    statuses: &[ApprovalRuleStatus],
    total: usize,
    min_total: usize,
    approvals: &[Approval],
) -> Outcome {
    let mut parts = Vec::new();
    let blocked_by_trust = match input.trust {
        ApprovalTrust::Unverified { policy, reason } if !gate.allow_unverified => {
            parts.push(admin_message(policy, reason));
            true
        }
        _ => false,
    };
    if gate.rules.is_empty() {
        let (rule, status) = (&rules[0], &statuses[0]);
        let mut progress = format!("{} of {} approvals", status.approvers.len(), rule.needed);
        if !rule.anyone {
            progress.push_str(&format!(" from {}", rule.who()));
        }
        if !status.approvers.is_empty() {
            progress.push_str(&format!(": {} approved", status.approvers.join(", ")));
        }
        parts.push(progress);
    } else {
        let met: Vec<String> = rules
            .iter()
            .zip(statuses)
            .filter(|(_, status)| status.met)
            .map(|(rule, status)| format!("{} ({})", rule.name, status.approvers.join(", ")))
            .collect();
        let mut progress = format!("{} of {} rules met", met.len(), rules.len());
        if !met.is_empty() {
            progress.push_str(&format!(": {}", met.join(", ")));
        }
        parts.push(progress);
        for (rule, status) in rules.iter().zip(statuses).filter(|(_, status)| !status.met) {
            let missing = rule.needed - status.approvers.len();
            parts.push(if status.approvers.is_empty() {
                format!(
                    "{} needs {} from {}",
                    rule.name,
                    count_of_approvals(missing),
                    rule.who()
                )
            } else {
                format!(
                    "{} needs {missing} more approval{} from {} ({} counted)",
                    rule.name,
                    if missing == 1 { "" } else { "s" },
                    rule.who(),
                    status.approvers.join(", ")
                )
            });
        }
        // Rules that need as many people as the total are the whole story.
        if total < min_total && min_total > rules.iter().map(|rule| rule.needed).sum() {
            parts.push(format!("{total} of {min_total} approvers in total"));
        }
    }
    let ignored: Vec<String> = approvals
        .iter()
        .filter(|approval| !approval.counted)
        .map(|approval| {
            format!(
                "{} ({})",
                approval.user,
                approval.note.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if !ignored.is_empty() {
        parts.push(format!("not counted: {}", ignored.join(", ")));
    }
    let requester_unknown =
        gate.forbid_self_approval && input.promotion.spec.requested_by.is_none() && !gate.allow_unverified;
    if requester_unknown && !blocked_by_trust {
        // requestedBy cannot be added later: no approval of this Promotion can ever count.
        parts.push(
            "this gate forbids self-approval and the Promotion does not say who requested it: create a new \
             Promotion with kubectl hoist promote, which records spec.requestedBy"
                .into(),
        );
        return Outcome::failed(parts.join("; "));
    }
    parts.push(format!(
        "approve with: kubectl hoist approve {} -n {}",
        input.promotion.name_any(),
        input.promotion.namespace().unwrap_or_default()
    ));
    Outcome::pending(parts.join("; "))
}

fn ignored_notice(approval: &Approval) -> ApprovalNotice {
    let what = match approval.decision {
        ApprovalDecision::Approve => "approval",
        ApprovalDecision::Reject => "rejection",
    };
    ApprovalNotice {
        reason: EventReason::ApprovalIgnored,
        note: format!(
            "{what} by {} ignored: {}",
            approval.user,
            approval.note.as_deref().unwrap_or_default()
        ),
    }
}

/// The Event for an entry seen for the first time: Approved when it counts
/// (for `rule`, when the gate names its rules), ApprovalIgnored when it
/// does not. A rejection that counts is told by the Promotion's Rejected
/// Event instead.
fn notice(approval: &Approval, rule: Option<&str>) -> Option<ApprovalNotice> {
    match (approval.counted, approval.decision) {
        (false, _) => Some(ignored_notice(approval)),
        (true, ApprovalDecision::Reject) => None,
        (true, ApprovalDecision::Approve) => Some(ApprovalNotice {
            reason: EventReason::Approved,
            note: format!(
                "approved by {}{} ({})",
                approval.user,
                rule.map(|rule| format!(" for rule {rule}")).unwrap_or_default(),
                if approval.verified {
                    "verified"
                } else {
                    "identity not verified"
                }
            ),
        }),
    }
}

#[cfg(test)]
mod tests;
