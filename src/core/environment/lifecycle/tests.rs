use crate::api::{
    Change, Environment, EnvironmentStatus, GateName, GateState, GateStatus, Health, HistoryEntry, Phase,
    PromotionStatus, WorkloadKind,
};
use crate::core::environment::fixture::{
    A, B, Objects, after_pin, at, deployment, ended, environment, pin, promotion, running, stalled, verifying,
};
use crate::core::environment::{Notice, Plan, plan};
use crate::core::reasons::EventReason;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

fn notice(promotion: &str, reason: EventReason, note: &str) -> Notice {
    Notice {
        promotion: Some(promotion.into()),
        reason,
        note: note.into(),
    }
}

fn outcome(plan: &Plan, promotion: &str) -> (Phase, String) {
    let status = &plan.promotions[promotion];
    (status.phase, status.message.clone().unwrap_or_default())
}

fn passed(gate: GateName, message: &str, checked: i64) -> GateStatus {
    GateStatus {
        gate,
        state: GateState::Passed,
        message: message.into(),
        last_checked: Some(at(checked)),
        next_check: None,
    }
}

/// An Environment whose status says `shop-1` runs.
fn running_shop_1(spec: &str) -> Environment {
    let mut environment = environment("dev", spec);
    environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    environment
}

#[test]
fn a_promotion_whose_gates_pass_starts_with_exactly_this_plan() {
    let mut objects = Objects::new(environment("dev", ""));
    objects.promotions = vec![promotion("p1", "shop-1", 50)];
    let plan = plan(&objects.snapshot());
    let message = "rolling out shop-1 1.0.0 to dev";
    assert_eq!(
        plan.promotions["p1"],
        PromotionStatus {
            observed_generation: Some(1),
            conditions: vec![
                Condition {
                    type_: "Ready".into(),
                    status: "False".into(),
                    reason: "Verifying".into(),
                    message: message.into(),
                    observed_generation: Some(1),
                    last_transition_time: at(100),
                },
                Condition {
                    type_: "Reconciling".into(),
                    status: "True".into(),
                    reason: "Verifying".into(),
                    message: message.into(),
                    observed_generation: Some(1),
                    last_transition_time: at(100),
                }
            ],
            phase: Phase::Verifying,
            message: Some(message.into()),
            rollback: false,
            gates: vec![
                passed(GateName::ArtifactReady, "Artifact shop-1 is resolved", 100),
                passed(GateName::Upstream, "this environment has no upstream", 100),
                passed(GateName::Approval, "no approval required here", 100),
                passed(GateName::Provenance, "no provenance required here", 100),
                passed(
                    GateName::Vulnerabilities,
                    "no vulnerability scan required here",
                    100
                ),
                passed(GateName::Soak, "no soak required here", 100),
                passed(GateName::Windows, "no change windows here", 100),
                passed(GateName::Compatibility, "compatibility is not checked here", 100),
                passed(GateName::Verification, "no verification here", 100),
            ],
            approvals: Vec::new(),
            approval_rules: Vec::new(),
            changes: vec![Change {
                component: "backend".into(),
                kind: WorkloadKind::Deployment,
                namespace: "shop".into(),
                deployment: "backend".into(),
                container: "app".into(),
                from: None,
                to: A.into(),
            }],
            config: None,
            verification: Vec::new(),
            started_at: Some(at(100)),
            progress_reported_at: None,
            completed_at: None,
            notifications: Vec::new(),
        }
    );
    assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
    assert_eq!(
        plan.notices,
        vec![notice("p1", EventReason::Promoting, "rolling out shop-1 to dev")]
    );
    assert_eq!(
        plan.status.applications,
        Vec::new(),
        "nothing runs until the rollout is over"
    );
    assert_eq!(plan.new_promotions, Vec::new());
}

#[test]
fn a_slow_rollout_rewrites_its_promotions_message_at_most_every_thirty_seconds() {
    let rolling = |started: i64, reported: Option<i64>, message: &str, now: i64| {
        let mut objects = Objects::new(environment("dev", ""));
        let mut p1 = verifying(promotion("p1", "shop-1", 50));
        if let Some(status) = p1.status.as_mut() {
            status.started_at = Some(at(started));
            status.progress_reported_at = reported.map(at);
            status.message = Some(message.into());
        }
        objects.promotions = vec![p1];
        objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), false)];
        objects.now = at(now);
        let status = plan(&objects.snapshot()).promotions["p1"].clone();
        (status.message.unwrap_or_default(), status.progress_reported_at)
    };
    let started = "rolling out shop-1 1.0.0 to dev";
    let progress =
        "rolling out shop-1: shop/backend: waiting for the Deployment controller to observe generation 2";
    // 29 s after the start: the start's message stays, nothing to write.
    assert_eq!(rolling(71, None, started, 100), (started.into(), None));
    // 30 s: how far it got.
    assert_eq!(rolling(70, None, started, 100), (progress.into(), Some(at(100))));
    // Then at most once per 30 s after the last report.
    assert_eq!(
        rolling(
            10,
            Some(71),
            "rolling out shop-1: shop/backend: 0 of 1 replicas updated",
            100
        ),
        (
            "rolling out shop-1: shop/backend: 0 of 1 replicas updated".into(),
            Some(at(71))
        )
    );
    assert_eq!(
        rolling(10, Some(70), started, 100),
        (progress.into(), Some(at(100)))
    );
}

#[test]
fn a_promotion_waits_behind_the_one_rolling_out_its_application() {
    let mut objects = Objects::new(environment("dev", ""));
    objects.promotions = vec![
        verifying(promotion("p1", "shop-1", 50)),
        promotion("p2", "shop-2", 60),
    ];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), false)];
    let plan = plan(&objects.snapshot());
    assert_eq!(
        outcome(&plan, "p1"),
        (
            Phase::Verifying,
            "rolling out shop-1: shop/backend: waiting for the Deployment controller to observe generation 2"
                .into()
        )
    );
    assert_eq!(
        outcome(&plan, "p2"),
        (
            Phase::Waiting,
            "queued behind Promotion p1, which is rolling out shop".into()
        )
    );
    assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
    assert_eq!(plan.notices, Vec::new());
}

#[test]
fn an_older_promotion_is_superseded_only_by_a_success_after_it_was_created() {
    let environment = || {
        let mut environment = environment("dev", "");
        environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-2", "1.1.0", B, None)],
            ..Default::default()
        });
        environment
    };
    // shop-2 succeeded at the very instant the Promotion of shop-1 was created: not after it.
    let mut objects = Objects::new(environment());
    objects.promotions = vec![
        ended(promotion("new", "shop-2", 10), Phase::Succeeded, 50),
        promotion("old", "shop-1", 50),
    ];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
    let same_instant = plan(&objects.snapshot());
    assert_eq!(same_instant.promotions["old"].phase, Phase::Verifying);
    assert!(
        !same_instant.promotions.contains_key("new"),
        "terminal phases are not decided"
    );

    objects.promotions[0] = ended(promotion("new", "shop-2", 10), Phase::Succeeded, 51);
    let one_second_later = plan(&objects.snapshot());
    let message = "shop-2 succeeded in dev after this Promotion was created";
    assert_eq!(
        outcome(&one_second_later, "old"),
        (Phase::Superseded, message.into())
    );
    assert_eq!(one_second_later.promotions["old"].completed_at, Some(at(100)));
    assert_eq!(one_second_later.pins, vec![pin("shop-2", B, None)]);
    assert_eq!(
        one_second_later.notices,
        vec![notice("old", EventReason::Superseded, message)]
    );
}

#[test]
fn a_failed_rollout_without_automatic_rollback_is_recorded_as_failed_and_degraded() {
    let mut objects = Objects::new(running_shop_1(""));
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    objects.workloads = vec![stalled(after_pin(deployment(), &pin("shop-2", B, None), false))];
    let plan = plan(&objects.snapshot());
    let message = "rollout failed: shop/backend: rollout exceeded its progress deadline: no message";
    assert_eq!(outcome(&plan, "p2"), (Phase::Failed, message.into()));
    assert_eq!(plan.promotions["p2"].completed_at, Some(at(100)));
    let app = &plan.status.applications[0];
    assert_eq!(
        (app.artifact.as_str(), app.health, app.health_since.clone()),
        ("shop-2", Health::Degraded, Some(at(100)))
    );
    assert_eq!(
        plan.status.history,
        vec![HistoryEntry {
            application: "shop".into(),
            artifact: "shop-2".into(),
            version: "1.1.0".into(),
            change: crate::api::ChangeKind::Release,
            source_repository: None,
            source_revision: None,
            build_id: None,
            build_url: None,
            committed_at: None,
            built_at: None,
            images: app.images.clone(),
            config_hash: None,
            promotion: "p2".into(),
            promoted_at: Some(at(60)),
            approvers: Vec::new(),
            approvals: Vec::new(),
            outcome: Phase::Failed,
            completed_at: Some(at(100)),
            restored_at: None,
        }]
    );
    assert_eq!(
        plan.pins,
        vec![pin("shop-2", B, None)],
        "what failed stays for a human to look at"
    );
    assert_eq!(plan.notices, vec![notice("p2", EventReason::Failed, message)]);
}

#[test]
fn a_failed_rollout_with_automatic_rollback_pins_what_ran_before() {
    let mut objects = Objects::new(running_shop_1("  rollback: {automatic: true}"));
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    objects.workloads = vec![stalled(after_pin(deployment(), &pin("shop-2", B, None), false))];
    let plan = plan(&objects.snapshot());
    let message = "rollout failed (shop/backend: rollout exceeded its progress deadline: no message); \
                       rolled back to shop-1 1.0.0";
    assert_eq!(outcome(&plan, "p2"), (Phase::RolledBack, message.into()));
    assert_eq!(plan.promotions["p2"].conditions[0].reason, "RolledBack");
    let app = &plan.status.applications[0];
    assert_eq!(
        (app.artifact.as_str(), app.health, app.health_since.clone()),
        ("shop-1", Health::Progressing, Some(at(100)))
    );
    assert_eq!(
        plan.status
            .history
            .iter()
            .map(|h| (h.promotion.as_str(), h.artifact.as_str(), h.outcome))
            .collect::<Vec<_>>(),
        vec![("p2", "shop-2", Phase::RolledBack)]
    );
    assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
    assert_eq!(plan.notices, vec![notice("p2", EventReason::RolledBack, message)]);
    assert_eq!(plan.status.history[0].restored_at, None);

    // Once what ran before is healthy again, the failure is restored (time to restore ends).
    let mut restored = Objects::new(running_shop_1("  rollback: {automatic: true}"));
    restored.environment.status = Some(plan.status.clone());
    restored.promotions = vec![ended(promotion("p2", "shop-2", 50), Phase::RolledBack, 100)];
    restored.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), true)];
    let healthy = crate::core::environment::plan(&restored.snapshot());
    assert_eq!(healthy.status.applications[0].health, Health::Healthy);
    assert_eq!(
        healthy
            .status
            .history
            .iter()
            .map(|h| (h.promotion.as_str(), h.outcome, h.restored_at.clone()))
            .collect::<Vec<_>>(),
        vec![("p2", Phase::RolledBack, Some(at(100)))]
    );
}

#[test]
fn a_waiting_promotion_decided_again_later_keeps_its_status_to_the_field() {
    let mut objects = Objects::new(environment("dev", "  gates: {approval: {minApprovals: 1}}"));
    objects.promotions = vec![promotion("p1", "shop-1", 50)];
    let first = plan(&objects.snapshot());
    assert_eq!(first.promotions["p1"].phase, Phase::Waiting);
    let approval = &first.promotions["p1"].gates[2];
    assert_eq!(
        (approval.state, approval.last_checked.clone()),
        (GateState::Pending, Some(at(100)))
    );

    objects.promotions[0].status = Some(first.promotions["p1"].clone());
    objects.now = at(400);
    let later = plan(&objects.snapshot());
    assert_eq!(
        later.promotions["p1"], first.promotions["p1"],
        "no gate changed: nothing to write"
    );
    assert_eq!(
        later.notices,
        Vec::new(),
        "Blocked is told once, and a Pending gate is not blocked"
    );
}

#[test]
fn the_ready_reason_is_the_phase_as_the_status_spells_it() {
    for phase in [
        Phase::Pending,
        Phase::Waiting,
        Phase::Promoting,
        Phase::Verifying,
        Phase::Succeeded,
        Phase::Failed,
        Phase::RolledBack,
        Phase::Superseded,
        Phase::Rejected,
    ] {
        assert_eq!(
            serde_json::to_value(phase).unwrap(),
            serde_json::Value::String(phase.reason().as_str().into())
        );
    }
}

#[test]
fn a_freeze_holds_a_promotion_until_its_end_is_the_plans_next_check_and_an_override_waives_it() {
    let spec = format!(
        "  gates:\n    windows:\n      - {{name: freeze, type: Deny, start: \"{}\", end: \"{}\"}}",
        at(50).0,
        at(400).0
    );
    let mut objects = Objects::new(environment("dev", &spec));
    objects.promotions = vec![promotion("p1", "shop-1", 50)];
    let held = plan(&objects.snapshot());
    let message = format!(
        "change window freeze (Deny) is on until {}; no Promotion starts before then unless an override waives Windows",
        at(400).0
    );
    assert_eq!(
        outcome(&held, "p1"),
        (Phase::Waiting, format!("waiting for the Windows gate: {message}"))
    );
    let gate = &held.promotions["p1"].gates[6];
    assert_eq!(
        (gate.gate, gate.state, gate.next_check.clone()),
        (GateName::Windows, GateState::Pending, Some(at(400)))
    );
    assert_eq!(held.next_check, Some(at(400)));
    assert_eq!(
        held.next_check_in(&at(100)),
        Some(std::time::Duration::from_secs(300))
    );

    // At the end of the freeze the same Promotion starts, and nothing is left to wait for.
    objects.promotions[0].status = Some(held.promotions["p1"].clone());
    objects.now = at(400);
    let free = plan(&objects.snapshot());
    assert_eq!(free.promotions["p1"].phase, Phase::Verifying);
    assert_eq!(free.next_check, None);

    // An override waives the freeze, with an Event that carries the justification.
    objects.now = at(100);
    objects.promotions = vec![promotion("p2", "shop-1", 50)];
    objects.promotions[0].spec.r#override = Some(crate::api::Override {
        waive: vec![GateName::Windows],
        justification: "hotfix for INC-2211".into(),
    });
    // An override always needs an approval.
    objects.promotions[0].spec.approvals = vec![crate::api::ApprovalRequest {
        user: "dave".into(),
        groups: Vec::new(),
        decision: crate::api::ApprovalDecision::Approve,
        comment: None,
    }];
    let waived = plan(&objects.snapshot());
    assert_eq!(
        waived.promotions["p2"].phase,
        Phase::Verifying,
        "{:?}",
        waived.promotions["p2"].message
    );
    assert_eq!(waived.promotions["p2"].gates[6].state, GateState::Waived);
    assert_eq!(waived.promotions["p2"].gates[6].next_check, None);
    assert_eq!(
        waived.notices[1],
        notice(
            "p2",
            EventReason::GateWaived,
            &format!("Windows gate waived by override: {message} (justification: hotfix for INC-2211)")
        )
    );
}

/// A measurement of `result < 0.01` at [`at`]`(100)` with a scalar result.
fn scalar_measurement(value: &str) -> crate::api::Measurement {
    crate::core::gates::verification::measure(
        &serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, value]}}),
        None,
        "result < 0.01",
        at(100).0,
    )
}

#[test]
fn a_healthy_rollout_is_verified_before_it_succeeds_and_a_failed_measurement_rolls_it_back() {
    let spec = "  rollback: {automatic: true}\n  gates:\n    verification:\n      - name: error-rate\n        prometheus: {query: 'errors{env=\"{{environment}}\"}', condition: result < 0.01, interval: 30s, count: 2}";
    let mut objects = Objects::new(running_shop_1(spec));
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
    let measuring = plan(&objects.snapshot());
    assert_eq!(
        outcome(&measuring, "p2"),
        (
            Phase::Verifying,
            format!(
                "verifying shop-2: step error-rate: 0 of 2 measurement(s): 0 successful, 0 failed, 0 inconclusive; \
                     next measurement at {} (every 30s)",
                at(100).0
            )
        )
    );
    assert_eq!(
        measuring
            .queries
            .iter()
            .map(|q| (q.promotion.as_str(), q.step.as_str(), q.query.as_str()))
            .collect::<Vec<_>>(),
        vec![("p2", "error-rate", "errors{env=\"dev\"}")]
    );
    assert_eq!(
        measuring.pins,
        vec![pin("shop-2", B, None)],
        "the new release runs while it is verified"
    );
    assert!(
        measuring.status.applications[0].artifact == "shop-1",
        "and is not recorded as running yet"
    );

    // The controller measures and decides again at the same instant: the error rate is too high.
    let failed = scalar_measurement("0.5");
    objects
        .measurements
        .insert("p2".into(), ("error-rate".into(), failed));
    let decided = plan(&objects.snapshot());
    let message = "verification failed (step error-rate: 1 measurement(s) did not meet `result < 0.01` \
                       (failureLimit 0), the last was 0.5; 1 of 2 measurement(s): 0 successful, 1 failed, 0 inconclusive); \
                       rolled back to shop-1 1.0.0";
    assert_eq!(outcome(&decided, "p2"), (Phase::RolledBack, message.into()));
    assert_eq!(decided.pins, vec![pin("shop-1", A, None)]);
    assert_eq!(decided.queries, Vec::new());
    let gate = decided.promotions["p2"]
        .gates
        .iter()
        .find(|g| g.gate == GateName::Verification)
        .expect("verification gate");
    assert_eq!(gate.state, GateState::Failed);
    assert_eq!(decided.promotions["p2"].verification[0].measurements.len(), 1);
}

#[test]
fn while_verifying_only_the_next_measurement_wakes_the_environment_and_a_failed_rollback_stays() {
    let spec = "  rollback: {automatic: true}\n  gates:\n    verification:\n      - name: error-rate\n        prometheus: {query: up, condition: result < 0.01, interval: 30s, count: 2}";
    let mut objects = Objects::new(running_shop_1(spec));
    let mut started = verifying(promotion("p2", "shop-2", 50));
    // A change window's next opening, recorded before the rollout started, is no reason to wake.
    started.status.as_mut().unwrap().gates = vec![GateStatus {
        gate: GateName::Windows,
        state: GateState::Passed,
        message: "no Deny change window is on".into(),
        last_checked: Some(at(60)),
        next_check: Some(at(110)),
    }];
    objects.promotions = vec![started];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
    let due = plan(&objects.snapshot());
    assert_eq!(
        due.next_check, None,
        "the measurement due now is taken, not slept on"
    );
    let measured = scalar_measurement("0");
    objects
        .measurements
        .insert("p2".into(), ("error-rate".into(), measured));
    assert_eq!(plan(&objects.snapshot()).next_check, Some(at(130)));

    // A rollback whose verification fails is not rolled back to what it replaced.
    objects.promotions[0].status.as_mut().unwrap().rollback = true;
    let failed = scalar_measurement("0.5");
    objects
        .measurements
        .insert("p2".into(), ("error-rate".into(), failed));
    let decided = plan(&objects.snapshot());
    let (phase, message) = outcome(&decided, "p2");
    assert_eq!(phase, Phase::Failed);
    assert!(
        message.ends_with("(a rollback is not rolled back again)"),
        "{message}"
    );
    assert_eq!(decided.pins, vec![pin("shop-2", B, None)]);
}

#[test]
fn a_promotion_whose_end_the_environment_recorded_ends_so_without_pinning_again() {
    // The operator wrote the Environment's record of p2's rollback, then stopped
    // before p2's own status: p2 still says Verifying.
    let mut environment = running_shop_1("  rollback: {automatic: true}");
    environment.status.as_mut().unwrap().history = vec![HistoryEntry {
        application: "shop".into(),
        artifact: "shop-2".into(),
        version: "1.1.0".into(),
        change: crate::api::ChangeKind::Release,
        source_repository: None,
        source_revision: None,
        build_id: None,
        build_url: None,
        committed_at: None,
        built_at: None,
        images: Vec::new(),
        config_hash: None,
        promotion: "p2".into(),
        promoted_at: Some(at(60)),
        approvers: Vec::new(),
        approvals: Vec::new(),
        outcome: Phase::RolledBack,
        completed_at: Some(at(90)),
        restored_at: None,
    }];
    let mut objects = Objects::new(environment);
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), true)];
    let plan = plan(&objects.snapshot());
    assert_eq!(
        outcome(&plan, "p2"),
        (
            Phase::RolledBack,
            "RolledBack: shop-2 1.1.0 recorded in the history of Environment dev".into()
        )
    );
    assert_eq!(plan.promotions["p2"].completed_at, Some(at(90)));
    assert_eq!(
        plan.pins,
        vec![pin("shop-1", A, None)],
        "the failed release is not pinned again"
    );
    assert_eq!(plan.status.history.len(), 1, "and not recorded twice");
}

#[test]
fn without_the_environments_policy_no_job_is_created_and_no_query_sent_for_a_release_being_verified() {
    let spec = "  gates:\n    verification:\n      - name: smoke\n        job: {image: smoke:1}\n      - name: errors\n        prometheus: {query: errors, condition: result < 0.01, bearerTokenSecret: {name: token, key: t}}";
    let mut objects = Objects::new(running_shop_1(spec));
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
    let enforced = plan(&objects.snapshot());
    assert_eq!(
        enforced
            .jobs
            .iter()
            .map(|job| job.metadata.labels.is_some())
            .collect::<Vec<_>>(),
        [true],
        "the policy enforced, the smoke Job is created"
    );
    objects.boundaries = crate::core::tenancy::Boundaries::Unenforced {
        policy: "hoist-environments".into(),
        reason: "the ValidatingAdmissionPolicy hoist-environments is not installed".into(),
    };
    let held = plan(&objects.snapshot());
    assert_eq!(held.jobs, Vec::new());
    assert_eq!(held.queries, Vec::new());
    assert_eq!(held.pins, enforced.pins, "what runs stays pinned");
    assert_eq!(held.promotions["p2"].phase, Phase::Verifying);
    let message = held.promotions["p2"].message.clone().unwrap_or_default();
    assert!(
        message.starts_with(
            "verification waits: TenantBoundaries: Hoist creates no verification Job and reads no Secret for this \
             Environment (spec.gates.verification[0].job, spec.gates.verification[1].prometheus.bearerTokenSecret): \
             the ValidatingAdmissionPolicy hoist-environments is not installed"
        ),
        "{message}"
    );
    assert_ne!(enforced.promotions["p2"].message, held.promotions["p2"].message);
}

/// The tenant model's tiers (README "Tiers").
fn tenant_model() -> crate::core::tiers::Tiers {
    crate::core::environment::fixture::yaml(
        r#"
default: Low
tiers:
  Low: {environments: [prod]}
  Mid: {environments: [dev, prod]}
  High: {environments: [dev, staging, prod], custom: Unlimited}
"#,
    )
}

/// `staging` with autoPromote, whose status says `shop-1` runs, with
/// Promotion `p2` of `shop-2` into it, in a namespace of tier `tier`.
fn staging_in(tier: &str) -> Objects {
    let mut staging = environment("staging", "  autoPromote: true");
    staging.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    let mut objects = Objects::new(staging);
    objects.workloads = vec![after_pin(deployment(), &staging_pin("shop-1", A), true)];
    objects.promotions = vec![promotion("p2", "shop-2", 50)];
    objects.tiers = Some(tenant_model());
    objects.tenant_labels = [(crate::core::tiers::LABEL_TIER.to_string(), tier.to_string())].into();
    objects
}

/// What `staging` pins the backend to for `artifact` at `digest`.
fn staging_pin(artifact: &str, digest: &str) -> crate::core::workload::WorkloadPin {
    let mut pin = pin(artifact, digest, None);
    pin.environment = "staging".into();
    pin
}

const MID_FORBIDS_STAGING: &str = "tier Mid (label hoist.dev/tier) allows Environments dev, prod and no custom \
                                   ones: Environment staging is not one of them; a cluster admin can label the \
                                   namespace with a tier that allows it";

#[test]
fn an_environment_its_tier_forbids_is_not_ready_and_nothing_is_promoted_into_it() {
    let objects = staging_in("Mid");
    let plan = plan(&objects.snapshot());
    let ready = crate::core::conditions::find(&plan.status.conditions, "Ready").expect("Ready is set");
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("False", "TierForbidden", MID_FORBIDS_STAGING)
    );
    assert_eq!(
        outcome(&plan, "p2"),
        (
            Phase::Pending,
            format!("Environment staging is not allowed by its tier: {MID_FORBIDS_STAGING}")
        )
    );
    assert_eq!(plan.promotions["p2"].gates, Vec::new(), "no gate is decided");
    assert_eq!(plan.checks, Vec::new());
    assert_eq!(plan.new_promotions, Vec::new(), "autoPromote creates nothing");
    // Nothing is deleted: what runs keeps running, pinned as it was.
    assert_eq!(
        plan.status.applications,
        vec![running("shop-1", "1.0.0", A, None)]
    );
    assert_eq!(plan.pins, vec![staging_pin("shop-1", A)]);
    assert_eq!(plan.notices, Vec::new());
}

#[test]
fn the_waiting_promotion_starts_once_the_tier_allows_the_environment() {
    let mut objects = staging_in("Mid");
    let waiting = plan(&objects.snapshot());
    objects.promotions[0].status = Some(waiting.promotions["p2"].clone());
    objects.tenant_labels = [(crate::core::tiers::LABEL_TIER.to_string(), "High".to_string())].into();
    let plan = plan(&objects.snapshot());
    assert_eq!(
        outcome(&plan, "p2"),
        (Phase::Verifying, "rolling out shop-2 1.1.0 to staging".into())
    );
    assert_eq!(plan.pins, vec![staging_pin("shop-2", B)]);
    let ready = crate::core::conditions::find(&plan.status.conditions, "Ready").expect("Ready is set");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Ready"));
}

#[test]
fn a_rollout_under_way_when_the_tier_is_downgraded_finishes_and_a_configuration_change_waits() {
    let mut objects = staging_in("High");
    objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
    let allowed = plan(&objects.snapshot());
    objects.tenant_labels = [(crate::core::tiers::LABEL_TIER.to_string(), "Mid".to_string())].into();
    let forbidden = plan(&objects.snapshot());
    assert_eq!(forbidden.promotions["p2"].phase, allowed.promotions["p2"].phase);
    assert_eq!(forbidden.pins, allowed.pins);

    let mut objects = staging_in("Mid");
    objects.promotions = Vec::new();
    objects.configs = [(
        "shop".to_string(),
        Ok(crate::core::environment::fixture::rendered("two", B)),
    )]
    .into();
    let plan = plan(&objects.snapshot());
    assert_eq!(
        plan.pins,
        vec![staging_pin("shop-1", A)],
        "the configuration change is not rolled out"
    );
    assert_eq!(plan.notices, Vec::new());
}
