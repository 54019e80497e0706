use super::*;
use crate::api::{EnvironmentStatus, Phase};
use crate::core::environment::fixture::{
    A, B, C, OPERATOR, Objects, after_pin, artifact, deployment, ended, environment, pin, promotion, running,
};
use crate::core::environment::plan;
use std::collections::BTreeMap;

fn auto(artifact: &str, name: &str) -> Promotion {
    let mut promotion = Promotion::new(
        name,
        PromotionSpec {
            artifact: artifact.into(),
            environment: "dev".into(),
            reason: Some("autoPromote".into()),
            requested_by: Some(OPERATOR.into()),
            r#override: None,
            approvals: Vec::new(),
        },
    );
    promotion.metadata.namespace = Some("shop".into());
    promotion.metadata.labels = Some([(AUTO_PROMOTED_LABEL.to_string(), "true".to_string())].into());
    promotion
}

fn not_ready(mut artifact: Artifact) -> Artifact {
    let status = artifact.status.as_mut().unwrap();
    status.conditions[0].status = "False".into();
    status.images.clear();
    artifact
}

#[test]
fn the_newest_ready_artifact_is_promoted_once() {
    let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
    objects
        .artifacts
        .push(not_ready(artifact("shop-3", "2.0.0", C, 20)));
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        vec![auto("shop-2", "shop-2-dev")],
        "shop-3 is newer but not Ready"
    );

    objects.promotions = vec![ended(auto("shop-2", "shop-2-dev"), Phase::Failed, 50)];
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        vec![auto("shop-1", "shop-1-dev")],
        "an Artifact promoted here once is not promoted again by itself"
    );
}

#[test]
fn nothing_while_the_application_is_busy_or_already_runs_the_newest() {
    let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
    objects.promotions = vec![promotion("manual", "shop-1", 50)];
    assert_eq!(plan(&objects.snapshot()).new_promotions, Vec::new(), "busy");

    let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-2", "1.1.0", B, None)],
        ..Default::default()
    });
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        Vec::new(),
        "shop-1 is older"
    );

    let objects = Objects::new(environment("dev", ""));
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        Vec::new(),
        "autoPromote is off"
    );
}

#[test]
fn a_workload_clusters_environment_creates_no_promotion_itself_but_says_what_the_hub_will_do() {
    let objects = Objects::new(environment("dev", "  autoPromote: true\n  cluster: eu"));
    let plan = plan(&objects.snapshot());
    assert_eq!(plan.new_promotions, Vec::new(), "the hub creates them");
    let ready = conditions::find(&plan.status.conditions, crate::api::CONDITION_READY).expect("Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Ready"));
    assert_eq!(
        condition(&plan.status.conditions),
        (
            "True",
            "Active",
            "promotes every newer Ready Artifact".to_string()
        )
    );
}

/// Opaque releases shop-abc (running) and shop-def (created 30 s later).
fn opaque_releases(objects: &mut Objects) {
    objects.artifacts = vec![
        artifact("shop-abc", "sha-abc1234", A, 0),
        artifact("shop-def", "sha-def5678", B, 30),
    ];
    for artifact in &mut objects.artifacts {
        artifact.spec.version_scheme = crate::api::VersionScheme::Opaque;
    }
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-abc", "sha-abc1234", A, None)],
        ..Default::default()
    });
}

#[test]
fn an_artifact_without_a_version_order_is_newer_when_created_later() {
    let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
    opaque_releases(&mut objects);
    objects.workloads = vec![after_pin(deployment(), &pin("shop-abc", A, None), true)];
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        vec![auto("shop-def", "shop-def-dev")]
    );
}

#[test]
fn a_long_name_is_cut_to_253_characters_without_a_trailing_dash() {
    let long = "s".repeat(251);
    let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
    objects.artifacts = vec![artifact(&long, "1.0.0", A, 0)];
    // 251 + "-dev" is 255; cut at 253 leaves "<long>-d".
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        vec![auto(&long, &format!("{long}-d"))]
    );
    let longer = "s".repeat(252);
    objects.artifacts = vec![artifact(&longer, "1.0.0", A, 0)];
    assert_eq!(
        plan(&objects.snapshot()).new_promotions,
        vec![auto(&longer, &longer)]
    );
}

/// The `AutoPromotion` condition's status, reason and message.
fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> (&str, &str, String) {
    let found = conditions::find(conditions, AUTO_PROMOTION).expect("AutoPromotion");
    (
        found.status.as_str(),
        found.reason.as_str(),
        found.message.clone(),
    )
}

/// `dev` with autoPromote and `policy` (YAML lines under autoPromotion),
/// running shop-1 (1.0.0).
fn with_policy(policy: &str) -> Objects {
    let mut objects = Objects::new(environment(
        "dev",
        &format!("  autoPromote: true\n  autoPromotion:\n{policy}"),
    ));
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), true)];
    objects
}

fn decide(objects: &Objects) -> AutoPromotions {
    let snapshot = objects.snapshot();
    let running: BTreeMap<String, ApplicationStatus> = objects
        .environment
        .status
        .iter()
        .flat_map(|s| &s.applications)
        .map(|app| (app.application.clone(), app.clone()))
        .collect();
    auto_promotions(&Inputs {
        environment: snapshot.environment,
        environments: &snapshot.environments,
        artifacts: &snapshot.artifacts,
        promotions: &snapshot.promotions,
        running: &running,
        operator: Some(OPERATOR),
    })
}

fn wanted(status: bool, reason: ConditionReason, message: &str) -> Option<Wanted<'static>> {
    Some(Wanted {
        type_: AUTO_PROMOTION,
        status,
        reason,
        message: message.into(),
    })
}

#[test]
fn a_patch_policy_promotes_the_patch_release_and_the_minor_one_waits_with_a_message() {
    let mut objects = with_policy("    versions: Patch");
    objects.artifacts.push(artifact("shop-3", "1.0.1", C, 20));
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: vec![auto("shop-3", "shop-3-dev")],
            condition: wanted(
                false,
                ConditionReason::StepTooLarge,
                "shop-2 (1.1.0) is a minor bump from 1.0.0 and autoPromotion.versions is Patch: it waits for \
                 a manual Promotion (kubectl hoist promote shop-2 dev)"
            ),
        },
        "shop-2 (1.1.0) is newer but a minor step; shop-3 (1.0.1) is a patch"
    );

    objects.artifacts.pop();
    assert_eq!(decide(&objects).promotions, Vec::new(), "only the minor release");
}

#[test]
fn minor_or_patch_takes_a_minor_release_and_leaves_a_major_one() {
    let mut objects = with_policy("    versions: MinorOrPatch");
    objects.artifacts.push(artifact("shop-4", "2.0.0", C, 30));
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: vec![auto("shop-2", "shop-2-dev")],
            condition: wanted(
                false,
                ConditionReason::StepTooLarge,
                "shop-4 (2.0.0) is a major bump from 1.0.0 and autoPromotion.versions is MinorOrPatch: it waits \
                 for a manual Promotion (kubectl hoist promote shop-4 dev)"
            ),
        }
    );
    let objects = with_policy("    versions: Any");
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: vec![auto("shop-2", "shop-2-dev")],
            condition: wanted(
                true,
                ConditionReason::Active,
                "promotes every newer Ready Artifact"
            ),
        }
    );
}

#[test]
fn a_first_release_or_an_opaque_version_is_a_step_only_any_takes() {
    let mut objects = with_policy("    versions: Patch");
    objects.environment.status = None;
    objects.artifacts.truncate(1);
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: Vec::new(),
            condition: wanted(
                false,
                ConditionReason::StepTooLarge,
                "shop-1 (1.0.0) would be the first release of shop here and autoPromotion.versions is Patch: \
                 it waits for a manual Promotion (kubectl hoist promote shop-1 dev)"
            ),
        }
    );

    let mut objects = with_policy("    versions: MinorOrPatch");
    opaque_releases(&mut objects);
    assert_eq!(
        decide(&objects).condition,
        wanted(
            false,
            ConditionReason::StepTooLarge,
            "shop-def (sha-def5678) is a major change from sha-abc1234 and autoPromotion.versions is \
             MinorOrPatch: it waits for a manual Promotion (kubectl hoist promote shop-def dev)"
        )
    );
}

#[test]
fn an_older_artifact_is_never_promoted_over_a_newer_one() {
    let mut objects = with_policy("    versions: Patch");
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-3", "1.0.2", C, None)],
        ..Default::default()
    });
    objects.artifacts = vec![
        artifact("shop-1", "1.0.1", A, 50),
        artifact("shop-3", "1.0.2", C, 10),
    ];
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: Vec::new(),
            condition: wanted(
                true,
                ConditionReason::Active,
                "promotes newer Ready Artifacts of the same major and minor version"
            ),
        },
        "shop-1 is created later but its version is older than what runs"
    );
}

#[test]
fn upstream_waits_until_the_release_runs_healthy_there() {
    let mut objects = with_policy("    versions: MinorOrPatch\n    upstream: [canary]");
    let mut canary = environment("canary", "");
    canary.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    objects.environments = vec![canary.clone()];
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: Vec::new(),
            condition: wanted(
                true,
                ConditionReason::Active,
                "promotes newer Ready Artifacts of the same major version once it runs healthy in canary; \
                 shop-2 waits: canary runs shop-1 (1.0.0), not shop-2; promote it there first"
            ),
        }
    );

    canary.status = Some(EnvironmentStatus {
        applications: vec![running("shop-2", "1.1.0", B, None)],
        ..Default::default()
    });
    objects.environments = vec![canary];
    assert_eq!(decide(&objects).promotions, vec![auto("shop-2", "shop-2-dev")]);

    objects.environments.clear();
    assert_eq!(
        decide(&objects).condition,
        wanted(
            true,
            ConditionReason::Active,
            "promotes newer Ready Artifacts of the same major version once it runs healthy in canary; \
             shop-2 waits: upstream Environment canary does not exist; promote it there first"
        )
    );
}

#[test]
fn a_hold_stops_auto_promotion_and_says_who_held_it_when_and_why() {
    let hold = "    hold: {reason: incident 42, by: alice, since: \"2026-11-18T09:00:00Z\"}";
    let objects = with_policy(hold);
    assert_eq!(
        decide(&objects),
        AutoPromotions {
            promotions: Vec::new(),
            condition: wanted(
                false,
                ConditionReason::Held,
                "held by alice since 2026-11-18T09:00:00Z: incident 42; manual Promotions still run; \
                 kubectl hoist unhold dev resumes it"
            ),
        }
    );
    let objects = with_policy("    hold: {reason: freeze}");
    assert_eq!(
        decide(&objects).condition,
        wanted(
            false,
            ConditionReason::Held,
            "held: freeze; manual Promotions still run; kubectl hoist unhold dev resumes it"
        )
    );
}

#[test]
fn a_hold_never_stops_a_manual_promotion() {
    let mut objects = with_policy("    hold: {reason: incident 42}");
    objects.promotions = vec![promotion("manual", "shop-2", 50)];
    let plan = plan(&objects.snapshot());
    assert_eq!(plan.new_promotions, Vec::new());
    assert_eq!(
        plan.promotions["manual"].phase,
        Phase::Verifying,
        "the manual Promotion rolled out while held"
    );
}

#[test]
fn the_condition_moves_only_when_auto_promotion_is_held_or_resumed_and_goes_with_auto_promote() {
    let mut objects = with_policy("    hold: {reason: incident 42}");
    objects.now = crate::core::environment::fixture::at(100);
    let held = plan(&objects.snapshot()).status;
    let transition = |status: &EnvironmentStatus| {
        conditions::find(&status.conditions, AUTO_PROMOTION).map(|c| c.last_transition_time.clone())
    };
    assert_eq!(
        transition(&held),
        Some(crate::core::environment::fixture::at(100))
    );

    objects.environment.status = Some(held.clone());
    objects.now = crate::core::environment::fixture::at(200);
    assert_eq!(
        transition(&plan(&objects.snapshot()).status),
        Some(crate::core::environment::fixture::at(100)),
        "still held"
    );

    objects.environment.spec.auto_promotion = None;
    objects.now = crate::core::environment::fixture::at(300);
    let resumed = plan(&objects.snapshot()).status;
    assert_eq!(
        transition(&resumed),
        Some(crate::core::environment::fixture::at(300))
    );

    objects.environment.status = Some(resumed);
    objects.environment.spec.auto_promote = false;
    assert_eq!(
        transition(&plan(&objects.snapshot()).status),
        None,
        "off: no condition"
    );
}

#[test]
fn a_policy_without_auto_promote_is_an_invalid_spec() {
    let objects = Objects::new(environment("dev", "  autoPromotion: {versions: Patch}"));
    let plan = plan(&objects.snapshot());
    let ready = conditions::find(&plan.status.conditions, crate::api::CONDITION_READY).expect("Ready");
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        (
            "False",
            "InvalidSpec",
            "spec.autoPromotion is the policy of autoPromote, which is false: set autoPromote: true, or \
             remove autoPromotion"
        )
    );
    assert_eq!(plan.new_promotions, Vec::new());
    assert_eq!(conditions::find(&plan.status.conditions, AUTO_PROMOTION), None);
}
