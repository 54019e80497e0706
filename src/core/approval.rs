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

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{
    Approval, ApprovalDecision, ApprovalGate, ApprovalRequired, ApprovalRuleStatus, Environment, GateState,
    Promotion,
};
use crate::core::version::{Bump, Direction};

/// The name of the admission policy, and of its binding, the chart ships.
pub const POLICY: &str = "hoist-approvals";

/// The name of the one rule of a gate without `rules`.
pub const IMPLICIT_RULE: &str = "approvers";

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
    pub warning: bool,
    /// PascalCase.
    pub reason: &'static str,
    pub note: String,
}

/// What the approval gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalVerdict {
    pub state: GateState,
    /// What the gate saw and what would make it pass.
    pub message: String,
    /// One per entry of spec.approvals, in order.
    pub approvals: Vec<Approval>,
    /// One per rule.
    pub rules: Vec<ApprovalRuleStatus>,
    /// The first rejection that counts: the Promotion ends Rejected.
    pub rejection: Option<Rejection>,
    /// Approved or ApprovalIgnored, once per entry seen for the first time.
    pub notices: Vec<ApprovalNotice>,
}

/// A rule as the gate applies it.
struct Rule<'g> {
    name: &'g str,
    users: &'g [String],
    groups: &'g [String],
    needed: usize,
    /// The implicit rule of a gate that lists nobody allows anyone.
    anyone: bool,
}

impl Rule<'_> {
    fn allows(&self, approval: &Approval) -> bool {
        // An explicit rule without users or groups (refused by the schema,
        // possible in files `hoist render` reads) allows nobody.
        self.anyone
            || self.users.contains(&approval.user)
            || self.groups.iter().any(|group| approval.groups.contains(group))
    }

    /// Who may approve for the rule, as in "from users alice, bob or group staff".
    fn who(&self) -> String {
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

fn rules_of(gate: &ApprovalGate) -> Vec<Rule<'_>> {
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

fn count_of_approvals(n: usize) -> String {
    format!("{n} approval{}", if n == 1 { "" } else { "s" })
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

/// The rules that allow `approval`, or why it does not count.
fn judge(
    gate: &ApprovalGate,
    rules: &[Rule<'_>],
    requested_by: Option<&str>,
    approval: &Approval,
) -> Result<Vec<usize>, String> {
    if !approval.verified && !gate.allow_unverified {
        return Err("identity not verified".into());
    }
    if gate.forbid_self_approval && approval.decision == ApprovalDecision::Approve {
        match requested_by {
            Some(requester) if requester == approval.user => {
                return Err(format!("self-approval: {requester} requested this Promotion"));
            }
            None if !gate.allow_unverified => {
                return Err("requester unknown: spec.requestedBy is not set".into());
            }
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
            [rule] if gate.rules.is_empty() => format!("not allowed to approve here: only {}", rule.who()),
            _ => "not in the users or groups of any rule".into(),
        });
    }
    Ok(allowed)
}

/// Gives each approver (by the rules that allow them) at most one rule, so
/// that as many rules as possible get what they need: a maximum bipartite
/// matching with `needed[rule]` places per rule, found with augmenting
/// paths (Kuhn's algorithm), approvers taken in order so that earlier ones
/// keep their place. Greedy assignment is not enough: an approver allowed by
/// two rules may take the only place another approver could fill.
/// Approvers left over then count for the first rule that allows them,
/// which is met already: had it a free place, the matching would have
/// used it.
fn assign(allowed: &[Vec<usize>], needed: &[usize]) -> Vec<Option<usize>> {
    fn augment(
        person: usize,
        allowed: &[Vec<usize>],
        needed: &[usize],
        holders: &mut [Vec<usize>],
        assignment: &mut [Option<usize>],
        visited: &mut [bool],
    ) -> bool {
        for &rule in &allowed[person] {
            if visited[rule] {
                continue;
            }
            visited[rule] = true;
            if holders[rule].len() < needed[rule] {
                holders[rule].push(person);
                assignment[person] = Some(rule);
                return true;
            }
            for place in 0..holders[rule].len() {
                let other = holders[rule][place];
                if augment(other, allowed, needed, holders, assignment, visited) {
                    holders[rule][place] = person;
                    assignment[person] = Some(rule);
                    return true;
                }
            }
        }
        false
    }
    let mut holders = vec![Vec::new(); needed.len()];
    let mut assignment = vec![None; allowed.len()];
    for person in 0..allowed.len() {
        let mut visited = vec![false; needed.len()];
        augment(
            person,
            allowed,
            needed,
            &mut holders,
            &mut assignment,
            &mut visited,
        );
    }
    for (person, rule) in assignment.iter_mut().enumerate() {
        if rule.is_none() {
            *rule = allowed[person].first().copied();
        }
    }
    assignment
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
            state: GateState::Passed,
            message: "no approval required here".into(),
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
                approval.note = Some(note);
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
    let (state, message) = if let Some(rejection) = &rejection {
        (GateState::Failed, rejection.message())
    } else if !needs_approval {
        (
            GateState::Passed,
            if input.direction == Direction::Downgrade {
                format!("a {:?} downgrade needs no approval here", input.bump)
            } else {
                format!("a {:?} version change needs no approval here", input.bump)
            },
        )
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
        (GateState::Passed, message)
    } else {
        waiting(input, gate, &rules, &statuses, total, min_total, &approvals)
    };
    // Say how a size rule treats a step back, so nobody takes it for a bump.
    let message = if needs_approval
        && rejection.is_none()
        && gate.required != ApprovalRequired::Always
        && input.direction == Direction::Downgrade
    {
        format!(
            "{message} (a {:?} downgrade needs approval like a {:?} bump: required {:?})",
            input.bump, input.bump, gate.required
        )
    } else {
        message
    };
    ApprovalVerdict {
        state,
        message,
        approvals,
        rules: statuses,
        rejection,
        notices,
    }
}

/// The gate's state and message while its rules are not met.
fn waiting(
    input: &ApprovalInput<'_>,
    gate: &ApprovalGate,
    rules: &[Rule<'_>],
    statuses: &[ApprovalRuleStatus],
    total: usize,
    min_total: usize,
    approvals: &[Approval],
) -> (GateState, String) {
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
        return (GateState::Failed, parts.join("; "));
    }
    parts.push(format!(
        "approve with: kubectl hoist approve {} -n {}",
        input.promotion.name_any(),
        input.promotion.namespace().unwrap_or_default()
    ));
    (GateState::Pending, parts.join("; "))
}

fn ignored_notice(approval: &Approval) -> ApprovalNotice {
    let what = match approval.decision {
        ApprovalDecision::Approve => "approval",
        ApprovalDecision::Reject => "rejection",
    };
    ApprovalNotice {
        warning: true,
        reason: "ApprovalIgnored",
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
            warning: false,
            reason: "Approved",
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
mod tests {
    use super::*;
    use crate::core::environment::fixture::{at, yaml};

    const ADMIN: &str = "approvals cannot be verified (ValidatingAdmissionPolicy hoist-approvals not found): \
        a cluster admin must install the ValidatingAdmissionPolicy hoist-approvals and its \
        ValidatingAdmissionPolicyBinding hoist-approvals (Kubernetes 1.30+), from the Hoist chart or \
        deploy/admission/; on older clusters, set spec.gates.approval.allowUnverified: true to count \
        approvals nobody verified";
    const HINT: &str = "approve with: kubectl hoist approve shop-1-prod -n shop";

    fn unverified() -> ApprovalTrust {
        ApprovalTrust::Unverified {
            policy: "hoist-approvals".into(),
            reason: "ValidatingAdmissionPolicy hoist-approvals not found".into(),
        }
    }

    fn gate(spec: &str) -> ApprovalGate {
        yaml(spec)
    }

    /// Promotion shop-1-prod requested by `requested_by`, with `approvals`
    /// (a YAML list).
    fn promotion(requested_by: Option<&str>, approvals: &str) -> Promotion {
        let requested_by = requested_by
            .map(|user| format!("  requestedBy: {user}\n"))
            .unwrap_or_default();
        yaml(&format!(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {{name: shop-1-prod, namespace: shop}}
spec:
  artifact: shop-1
  environment: prod
{requested_by}  approvals: {approvals}
"#
        ))
    }

    fn decide(
        gate: Option<&ApprovalGate>,
        promotion: &Promotion,
        bump: Bump,
        trust: &ApprovalTrust,
        previous: &[Approval],
    ) -> ApprovalVerdict {
        evaluate(&ApprovalInput {
            gate,
            environment: "prod",
            promotion,
            bump,
            direction: Direction::Upgrade,
            trust,
            previous,
            now: &at(100),
        })
    }

    /// An approval first seen at `seen`, verified then, as judged.
    fn entry(user: &str, groups: &[&str], seen: i64, verified: bool, counted: bool, note: &str) -> Approval {
        Approval {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            decision: ApprovalDecision::Approve,
            at: at(seen),
            verified,
            counted,
            note: Some(note.into()),
        }
    }

    fn rejecting(mut approval: Approval) -> Approval {
        approval.decision = ApprovalDecision::Reject;
        approval
    }

    fn rule(name: &str, needed: i32, approvers: &[&str], met: bool) -> ApprovalRuleStatus {
        ApprovalRuleStatus {
            name: name.into(),
            needed,
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            met,
        }
    }

    fn approved(note: &str) -> ApprovalNotice {
        ApprovalNotice {
            warning: false,
            reason: "Approved",
            note: note.into(),
        }
    }

    fn ignored(note: &str) -> ApprovalNotice {
        ApprovalNotice {
            warning: true,
            reason: "ApprovalIgnored",
            note: note.into(),
        }
    }

    fn outcome(verdict: &ApprovalVerdict) -> (GateState, &str) {
        (verdict.state, verdict.message.as_str())
    }

    #[test]
    fn verified_approvals_of_allowed_users_count_once_and_every_other_entry_says_why_not() {
        let gate = gate("{users: [alice, bob], minApprovals: 2}");
        let promotion = promotion(
            Some("carol"),
            "[{user: mallory}, {user: alice}, {user: carol}, {user: alice, comment: again}, {user: bob}]",
        );
        let verdict = decide(
            Some(&gate),
            &promotion,
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            verdict,
            ApprovalVerdict {
                state: GateState::Passed,
                message: "approved by alice, bob".into(),
                approvals: vec![
                    entry(
                        "mallory",
                        &[],
                        100,
                        true,
                        false,
                        "not allowed to approve here: only users alice, bob"
                    ),
                    entry("alice", &[], 100, true, true, "counted for rule approvers"),
                    entry(
                        "carol",
                        &[],
                        100,
                        true,
                        false,
                        "self-approval: carol requested this Promotion"
                    ),
                    entry(
                        "alice",
                        &[],
                        100,
                        true,
                        false,
                        "duplicate: only the first approval of alice (spec.approvals[1]) counts"
                    ),
                    entry("bob", &[], 100, true, true, "counted for rule approvers"),
                ],
                rules: vec![rule("approvers", 2, &["alice", "bob"], true)],
                rejection: None,
                notices: vec![
                    ignored(
                        "approval by mallory ignored: not allowed to approve here: only users alice, bob"
                    ),
                    approved("approved by alice (verified)"),
                    ignored("approval by carol ignored: self-approval: carol requested this Promotion"),
                    ignored(
                        "approval by alice ignored: duplicate: only the first approval of alice (spec.approvals[1]) counts"
                    ),
                    approved("approved by bob (verified)"),
                ],
            }
        );
    }

    #[test]
    fn unverified_approvals_hold_the_gate_with_what_the_admin_must_install_unless_the_gate_allows_them() {
        let strict = gate("{users: [alice]}");
        let promotion = promotion(Some("carol"), "[{user: alice}]");
        let verdict = decide(Some(&strict), &promotion, Bump::Major, &unverified(), &[]);
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!(
                    "{ADMIN}; 0 of 1 approvals from user alice; not counted: alice (identity not verified); {HINT}"
                )
                .as_str()
            )
        );
        assert_eq!(
            verdict.approvals,
            vec![entry("alice", &[], 100, false, false, "identity not verified")]
        );
        assert_eq!(
            verdict.notices,
            vec![ignored("approval by alice ignored: identity not verified")]
        );

        let lenient = gate("{users: [alice], allowUnverified: true}");
        let verdict = decide(Some(&lenient), &promotion, Bump::Major, &unverified(), &[]);
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Passed,
                "approved by alice; identities not verified, counted because of allowUnverified"
            )
        );
        assert_eq!(
            verdict.notices,
            vec![approved("approved by alice (identity not verified)")]
        );
    }

    #[test]
    fn whether_an_entry_is_verified_is_fixed_when_it_is_first_seen() {
        let gate = gate("{users: [alice, bob], minApprovals: 2}");
        let promotion = promotion(Some("carol"), "[{user: alice}, {user: bob}]");
        // alice approved before the policy was installed; bob after.
        let before_policy = [entry("alice", &[], 10, false, false, "identity not verified")];
        let verdict = decide(
            Some(&gate),
            &promotion,
            Bump::Major,
            &ApprovalTrust::Verified,
            &before_policy,
        );
        assert_eq!(
            verdict.approvals,
            vec![
                entry("alice", &[], 10, false, false, "identity not verified"),
                entry("bob", &[], 100, true, true, "counted for rule approvers"),
            ]
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!(
                    "1 of 2 approvals from users alice, bob: bob approved; not counted: alice (identity not verified); {HINT}"
                )
                .as_str()
            )
        );
        assert_eq!(
            verdict.notices,
            vec![approved("approved by bob (verified)")],
            "only the entry seen for the first time is told"
        );

        // The policy went away later: what it checked still counts, nothing new does.
        let one = self::gate("{users: [alice, bob]}");
        let promotion = self::promotion(Some("carol"), "[{user: bob}, {user: alice}]");
        let verified_then = [entry("bob", &[], 50, true, true, "counted for rule approvers")];
        let verdict = decide(Some(&one), &promotion, Bump::Major, &unverified(), &verified_then);
        assert_eq!(outcome(&verdict), (GateState::Passed, "approved by bob"));
        assert_eq!(
            verdict.approvals[1],
            entry("alice", &[], 100, false, false, "identity not verified")
        );
    }

    #[test]
    fn without_spec_requested_by_a_gate_that_forbids_self_approval_counts_nothing_and_fails() {
        let promotion = promotion(None, "[{user: alice}]");
        let verdict = decide(
            Some(&gate("{users: [alice]}")),
            &promotion,
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Failed,
                "0 of 1 approvals from user alice; not counted: alice (requester unknown: spec.requestedBy is not set); \
                 this gate forbids self-approval and the Promotion does not say who requested it: create a new \
                 Promotion with kubectl hoist promote, which records spec.requestedBy"
            )
        );
        for lenient in [
            "{users: [alice], forbidSelfApproval: false}",
            "{users: [alice], allowUnverified: true}",
        ] {
            let verdict = decide(
                Some(&gate(lenient)),
                &promotion,
                Bump::Major,
                &ApprovalTrust::Verified,
                &[],
            );
            assert_eq!(
                outcome(&verdict),
                (GateState::Passed, "approved by alice"),
                "{lenient}"
            );
        }
    }

    #[test]
    fn groups_come_from_the_entry_and_each_rule_needs_its_own_people() {
        let gate = gate("{rules: [{name: staff, groups: [staff]}, {name: client, groups: [client]}]}");
        // The example of the brief: staff is met, client is not.
        let verdict = decide(
            Some(&gate),
            &promotion(Some("carol"), "[{user: alice, groups: [staff]}]"),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!("1 of 2 rules met: staff (alice); client needs 1 approval from group client; {HINT}")
                    .as_str()
            )
        );
        assert_eq!(
            verdict.notices,
            vec![approved("approved by alice for rule staff (verified)")]
        );

        // One person in both groups counts for one rule only.
        let verdict = decide(
            Some(&gate),
            &promotion(Some("carol"), "[{user: alice, groups: [staff, client]}]"),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            verdict.rules,
            vec![rule("staff", 1, &["alice"], true), rule("client", 1, &[], false)]
        );
        assert_eq!(verdict.state, GateState::Pending);

        let verdict = decide(
            Some(&gate),
            &promotion(
                Some("carol"),
                "[{user: alice, groups: [staff, client]}, {user: bob, groups: [staff]}, {user: mallory, groups: [dev]}]",
            ),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Passed, "approved: staff (bob), client (alice)"),
            "alice moves to client so that bob can count for staff"
        );
        assert_eq!(
            verdict.approvals,
            vec![
                entry(
                    "alice",
                    &["staff", "client"],
                    100,
                    true,
                    true,
                    "counted for rule client"
                ),
                entry("bob", &["staff"], 100, true, true, "counted for rule staff"),
                entry(
                    "mallory",
                    &["dev"],
                    100,
                    true,
                    false,
                    "not in the users or groups of any rule"
                ),
            ]
        );
        assert_eq!(
            verdict.rules,
            vec![
                rule("staff", 1, &["bob"], true),
                rule("client", 1, &["alice"], true)
            ]
        );
    }

    #[test]
    fn the_matching_finds_what_greedy_assignment_misses() {
        // alice may count for staff or client, bob only for staff.
        let allowed = [vec![0, 1], vec![0]];
        let greedy: Vec<Option<usize>> = allowed.iter().map(|rules| rules.first().copied()).collect();
        assert_eq!(
            greedy,
            vec![Some(0), Some(0)],
            "greedy puts both on staff, client stays unmet"
        );
        assert_eq!(assign(&allowed, &[1, 1]), vec![Some(1), Some(0)]);
        // A longer path: for carol (rule 0 only), alice moves from 0 to 1, and
        // bob from 1 to 2.
        assert_eq!(
            assign(&[vec![0, 1], vec![1, 2], vec![0]], &[1, 1, 1]),
            vec![Some(1), Some(2), Some(0)]
        );
        // bob takes rule 0 from alice, who moves to 1; carol gets 2.
        assert_eq!(
            assign(&[vec![0, 1], vec![0, 1], vec![1, 2]], &[1, 1, 1]),
            vec![Some(1), Some(0), Some(2)]
        );
        // Two places on rule 0: carol can only have one, so alice moves to 1.
        assert_eq!(
            assign(&[vec![0, 1], vec![0, 1], vec![0]], &[2, 1]),
            vec![Some(1), Some(0), Some(0)]
        );
        // Leftovers count for the first rule that allows them; nobody counts twice.
        assert_eq!(
            assign(&[vec![0], vec![0], vec![1]], &[1, 2]),
            vec![Some(0), Some(0), Some(1)]
        );
        assert_eq!(assign(&[vec![0], vec![0]], &[1, 1]), vec![Some(0), Some(0)]);
    }

    #[test]
    fn a_rule_short_of_people_and_the_gate_short_of_a_total_say_what_is_missing() {
        // The rules need 3 people together: the total of 3 says nothing more.
        let gate = gate(
            "{minApprovals: 3, rules: [{name: staff, groups: [staff]}, {name: client, users: [dave], groups: [client], minApprovals: 2}]}",
        );
        let verdict = decide(
            Some(&gate),
            &promotion(
                Some("carol"),
                "[{user: alice, groups: [staff]}, {user: dave, groups: [dev]}]",
            ),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!(
                    "1 of 2 rules met: staff (alice); client needs 1 more approval from user dave or group client \
                     (dave counted); {HINT}"
                )
                .as_str()
            )
        );

        let gate = self::gate(
            "{minApprovals: 3, rules: [{name: staff, groups: [staff]}, {name: client, groups: [client]}]}",
        );
        let two = "[{user: alice, groups: [staff]}, {user: dave, groups: [client]}]";
        let verdict = decide(
            Some(&gate),
            &promotion(Some("carol"), two),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!("2 of 2 rules met: staff (alice), client (dave); 2 of 3 approvers in total; {HINT}")
                    .as_str()
            )
        );
        let three =
            "[{user: alice, groups: [staff]}, {user: dave, groups: [client]}, {user: erin, groups: [staff]}]";
        let verdict = decide(
            Some(&gate),
            &promotion(Some("carol"), three),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Passed, "approved: staff (alice, erin), client (dave)")
        );
    }

    #[test]
    fn a_smaller_bump_than_the_gate_requires_needs_no_approval() {
        let gate = gate("{required: MinorOrMajor, users: [alice]}");
        let promotion = promotion(Some("carol"), "[]");
        let verdict = decide(
            Some(&gate),
            &promotion,
            Bump::Patch,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Passed, "a Patch version change needs no approval here")
        );
        let verdict = decide(
            Some(&gate),
            &promotion,
            Bump::Minor,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!("0 of 1 approvals from user alice; {HINT}").as_str()
            )
        );
        let major = self::gate("{required: Major}");
        let verdict = decide(Some(&major), &promotion, Bump::Minor, &unverified(), &[]);
        assert_eq!(
            outcome(&verdict),
            (GateState::Passed, "a Minor version change needs no approval here")
        );
        let verdict = decide(
            Some(&major),
            &promotion,
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Pending, format!("0 of 1 approvals; {HINT}").as_str()),
            "a gate that lists nobody takes anyone"
        );
    }

    #[test]
    fn a_rejection_by_an_allowed_approver_ends_it_even_after_their_approval_and_one_by_anyone_else_is_ignored()
     {
        let gate = gate("{users: [alice, bob]}");
        let promotion = promotion(
            Some("carol"),
            "[{user: mallory, decision: Reject, comment: no}, {user: alice}, {user: alice, decision: Reject}, \
              {user: bob, decision: Reject, comment: breaks checkout}]",
        );
        let verdict = decide(
            Some(&gate),
            &promotion,
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            verdict,
            ApprovalVerdict {
                state: GateState::Failed,
                message: "rejected by alice (no reason given)".into(),
                approvals: vec![
                    rejecting(entry(
                        "mallory",
                        &[],
                        100,
                        true,
                        false,
                        "not allowed to approve here: only users alice, bob"
                    )),
                    entry("alice", &[], 100, true, true, "counted for rule approvers"),
                    rejecting(entry(
                        "alice",
                        &[],
                        100,
                        true,
                        true,
                        "rejection by an allowed approver (rule approvers)"
                    )),
                    rejecting(entry(
                        "bob",
                        &[],
                        100,
                        true,
                        true,
                        "rejection by an allowed approver (rule approvers)"
                    )),
                ],
                rules: vec![rule("approvers", 1, &["alice"], true)],
                rejection: Some(Rejection {
                    user: "alice".into(),
                    comment: None
                }),
                notices: vec![
                    ignored(
                        "rejection by mallory ignored: not allowed to approve here: only users alice, bob"
                    ),
                    approved("approved by alice (verified)"),
                ],
            }
        );
        // The requester may withdraw their own Promotion where they may approve:
        // forbidSelfApproval is about approvals.
        let verdict = decide(
            Some(&self::gate("{users: [carol, bob]}")),
            &self::promotion(
                Some("carol"),
                "[{user: carol, decision: Reject, comment: withdrawn}]",
            ),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Failed, "rejected by carol: withdrawn")
        );
        // A rejection holds even where this bump needs no approval.
        let verdict = decide(
            Some(&self::gate("{required: Major, users: [bob]}")),
            &self::promotion(Some("carol"), "[{user: bob, decision: Reject}]"),
            Bump::Patch,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (GateState::Failed, "rejected by bob (no reason given)")
        );
        // Nor does an unverified rejection count.
        let verdict = decide(
            Some(&self::gate("{users: [bob]}")),
            &self::promotion(Some("carol"), "[{user: bob, decision: Reject}]"),
            Bump::Major,
            &unverified(),
            &[],
        );
        assert_eq!((verdict.state, verdict.rejection), (GateState::Pending, None));
    }

    #[test]
    fn without_a_gate_nothing_is_needed_and_nothing_counts() {
        let promotion = promotion(Some("carol"), "[{user: alice}]");
        let verdict = decide(None, &promotion, Bump::Major, &ApprovalTrust::Verified, &[]);
        assert_eq!(
            verdict,
            ApprovalVerdict {
                state: GateState::Passed,
                message: "no approval required here".into(),
                approvals: vec![entry(
                    "alice",
                    &[],
                    100,
                    true,
                    false,
                    "Environment prod has no approval gate"
                )],
                rules: Vec::new(),
                rejection: None,
                notices: vec![ignored(
                    "approval by alice ignored: Environment prod has no approval gate"
                )],
            }
        );
    }

    #[test]
    fn a_rule_that_names_nobody_allows_nobody() {
        // The schema refuses it; files given to hoist render are not checked by one.
        let verdict = decide(
            Some(&gate("{rules: [{name: staff}]}")),
            &promotion(Some("carol"), "[{user: alice, groups: [staff]}]"),
            Bump::Major,
            &ApprovalTrust::Verified,
            &[],
        );
        assert_eq!(
            outcome(&verdict),
            (
                GateState::Pending,
                format!(
                    "0 of 1 rules met; staff needs 1 approval from nobody (the rule names no users or groups); \
                     not counted: alice (not in the users or groups of any rule); {HINT}"
                )
                .as_str()
            )
        );
    }

    #[test]
    fn an_override_always_needs_a_second_persons_approval() {
        let environment: Environment = yaml(
            "{apiVersion: hoist.dev/v1alpha1, kind: Environment, metadata: {name: prod, namespace: shop}, spec: {}}",
        );
        let mut promotion = promotion(Some("carol"), "[]");
        assert_eq!(policy(&environment, &promotion), None);
        promotion.spec.r#override = Some(yaml(
            "{waive: [Provenance], justification: hotfix for the outage}",
        ));
        assert_eq!(
            policy(&environment, &promotion),
            Some(gate("{required: Always, forbidSelfApproval: true}"))
        );
        let mut gated = environment.clone();
        gated.spec.gates.approval = Some(gate("{required: Major, users: [alice]}"));
        assert_eq!(
            policy(&gated, &promotion),
            Some(gate("{required: Always, users: [alice]}"))
        );
    }

    #[test]
    fn a_downgrade_is_counted_by_its_size_and_said_to_be_one() {
        let gate = gate("{required: MinorOrMajor, users: [alice]}");
        let promotion = promotion(Some("carol"), "[]");
        let step = |bump: Bump| {
            evaluate(&ApprovalInput {
                gate: Some(&gate),
                environment: "prod",
                promotion: &promotion,
                bump,
                direction: Direction::Downgrade,
                trust: &ApprovalTrust::Verified,
                previous: &[],
                now: &at(100),
            })
        };
        assert_eq!(
            outcome(&step(Bump::Patch)),
            (GateState::Passed, "a Patch downgrade needs no approval here")
        );
        assert_eq!(
            outcome(&step(Bump::Minor)),
            (
                GateState::Pending,
                format!(
                    "0 of 1 approvals from user alice; {HINT} (a Minor downgrade needs approval like a Minor bump: \
                     required MinorOrMajor)"
                )
                .as_str()
            )
        );
    }
}
