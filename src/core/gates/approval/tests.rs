use super::*;
use crate::api::GateState;
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
        reason: EventReason::Approved,
        note: note.into(),
    }
}

fn ignored(note: &str) -> ApprovalNotice {
    ApprovalNotice {
        reason: EventReason::ApprovalIgnored,
        note: note.into(),
    }
}

fn outcome(verdict: &ApprovalVerdict) -> (GateState, &str) {
    (verdict.outcome.state, verdict.outcome.message.as_str())
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
            outcome: Outcome::passed("approved by alice, bob"),
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
                ignored("approval by mallory ignored: not allowed to approve here: only users alice, bob"),
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
    assert_eq!(verdict.outcome.state, GateState::Pending);

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
fn a_rejection_by_an_allowed_approver_ends_it_even_after_their_approval_and_one_by_anyone_else_is_ignored() {
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
            outcome: Outcome::failed("rejected by alice (no reason given)"),
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
                ignored("rejection by mallory ignored: not allowed to approve here: only users alice, bob"),
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
    assert_eq!(
        (verdict.outcome.state, verdict.rejection),
        (GateState::Pending, None)
    );
}

#[test]
fn without_a_gate_nothing_is_needed_and_nothing_counts() {
    let promotion = promotion(Some("carol"), "[{user: alice}]");
    let verdict = decide(None, &promotion, Bump::Major, &ApprovalTrust::Verified, &[]);
    assert_eq!(
        verdict,
        ApprovalVerdict {
            outcome: Outcome::passed("no approval required here"),
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
