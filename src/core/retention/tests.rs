use super::*;
use crate::core::environment::fixture::{at, yaml};
use crate::core::operator_config;

const DAY: i64 = 86_400;

/// Artifact `name` of `application`, created `created` seconds after `at(0)`.
fn artifact(name: &str, application: &str, created: i64) -> Artifact {
    let mut artifact: Artifact = yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: {name}, namespace: shop}}
spec:
  application: {application}
  version: 1.0.0
  images: [{{component: backend, image: registry.example.com/shop/backend:1.0.0}}]
"#
    ));
    artifact.metadata.creation_timestamp = Some(at(created));
    artifact
}

/// Environment `name` with `spec` and `status` (YAML mappings' bodies).
fn environment(name: &str, spec: &str, status: &str) -> Environment {
    yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: {name}, namespace: shop}}
spec: {{{spec}}}
status: {{{status}}}
"#
    ))
}

/// `status.applications` entry running `artifact` of `shop`, put there by `promotion`.
fn running(artifact: &str, promotion: &str) -> String {
    format!(
        "{{application: shop, artifact: {artifact}, version: 1.0.0, promotion: {promotion}, health: Healthy}}"
    )
}

/// A history entry of `shop`.
fn entry(artifact: &str, promotion: &str, outcome: &str) -> String {
    format!(
        "{{application: shop, artifact: {artifact}, version: 1.0.0, promotion: {promotion}, outcome: {outcome}}}"
    )
}

/// Promotion `name` of `artifact` into `environment` in `phase`, created at
/// `created` and completed at `completed` (terminal phases).
fn promotion(
    name: &str,
    artifact: &str,
    environment: &str,
    phase: &str,
    completed: Option<i64>,
) -> Promotion {
    let mut promotion: Promotion = yaml(&format!(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {{name: {name}, namespace: shop}}
spec: {{artifact: {artifact}, environment: {environment}}}
status: {{phase: {phase}}}
"#
    ));
    promotion.metadata.creation_timestamp = Some(at(0));
    if let Some(status) = promotion.status.as_mut() {
        status.completed_at = completed.map(at);
    }
    promotion
}

fn decide_at(
    now: i64,
    environments: &[Environment],
    artifacts: &[Artifact],
    promotions: &[Promotion],
    defaults: &RetentionDefaults,
) -> Decision {
    decide(&Snapshot {
        environments: environments.iter().collect(),
        artifacts: artifacts.iter().collect(),
        promotions: promotions.iter().collect(),
        defaults,
        now: at(now),
    })
}

/// The outcome of `kind` `name`.
fn outcome(decision: &Decision, kind: Kind, name: &str) -> Outcome {
    decision
        .verdicts
        .iter()
        .find(|verdict| verdict.kind == kind && verdict.name == name)
        .map(|verdict| verdict.outcome.clone())
        .unwrap_or_else(|| panic!("no verdict on {kind:?} {name}: {decision:?}"))
}

fn kept(reason: KeepReason, by: &str) -> Outcome {
    Outcome::Keep {
        reason,
        by: Some(by.to_owned()),
    }
}

const NEWEST: Outcome = Outcome::Keep {
    reason: KeepReason::Newest,
    by: None,
};
const DELETED: Outcome = Outcome::Delete(DeleteReason::BeyondNewest);

/// dev keeping one Artifact, running shop-5 (its newest history entry),
/// with `earlier` (Artifact, outcome) entries after it and `history_limit`.
fn dev_running_shop_5(history_limit: i32, earlier: &[(&str, &str)]) -> Environment {
    let entries: Vec<String> = std::iter::once(entry("shop-5", "p5", "Succeeded"))
        .chain(
            earlier
                .iter()
                .map(|(artifact, outcome)| entry(artifact, "earlier", outcome)),
        )
        .collect();
    let status = format!(
        "applications: [{}], history: [{}]",
        running("shop-5", "p5"),
        entries.join(", ")
    );
    environment(
        "dev",
        &format!("retention: {{artifacts: 1}}, historyLimit: {history_limit}"),
        &status,
    )
}

/// The decision on [`five_artifacts`] on day 10, with the built-in defaults.
fn decide_five(environments: &[Environment], promotions: &[Promotion]) -> Decision {
    decide_at(
        10 * DAY,
        environments,
        &five_artifacts(),
        promotions,
        &RetentionDefaults::default(),
    )
}

/// shop-1 … shop-5, one a day; shop-5 is the newest.
fn five_artifacts() -> Vec<Artifact> {
    (1..=5)
        .map(|n| artifact(&format!("shop-{n}"), "shop", n * DAY))
        .collect()
}

#[test]
fn keeps_the_newest_artifacts_per_application_and_deletes_older_unused_ones() {
    let environments = [environment("dev", "retention: {artifacts: 2}", "")];
    let mut artifacts = five_artifacts();
    artifacts.push(artifact("web-1", "web", DAY));
    let decision = decide_at(
        10 * DAY,
        &environments,
        &artifacts,
        &[],
        &RetentionDefaults::default(),
    );
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-5"), NEWEST);
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-4"), NEWEST);
    assert_eq!(outcome(&decision, Kind::Artifact, "web-1"), NEWEST);
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["shop-3", "shop-2", "shop-1"]);
    assert!(decision.deletions().all(|v| v.group == "shop"));
}

#[test]
fn the_default_keeps_thirty_artifacts() {
    let artifacts: Vec<Artifact> = (1..=31)
        .map(|n| artifact(&format!("shop-{n}"), "shop", n))
        .collect();
    let environments = [environment("dev", "", "")];
    let decision = decide_at(DAY, &environments, &artifacts, &[], &RetentionDefaults::default());
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["shop-1"]);
}

#[test]
fn the_namespace_keeps_the_most_artifacts_any_environment_asks_for() {
    let environments = [
        environment("dev", "retention: {artifacts: 1}", ""),
        environment("prod", "retention: {artifacts: 3}", ""),
    ];
    let decision = decide_five(&environments, &[]);
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["shop-2", "shop-1"]);
}

#[test]
fn the_operator_configuration_sets_the_default_and_the_spec_overrides_it() {
    let defaults = operator_config::parse("retention: {artifacts: 4, promotions: 1, promotionsMinAge: 1h}\n")
        .expect("parses")
        .retention;
    let decision = decide_at(
        10 * DAY,
        &[environment("dev", "", "")],
        &five_artifacts(),
        &[],
        &defaults,
    );
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["shop-1"]);
    assert_eq!(
        Limits::of(None, &defaults).expect("valid"),
        Limits {
            artifacts: 4,
            promotions: 1,
            promotions_min_age: SignedDuration::from_hours(1),
        }
    );
    let spec = Retention {
        artifacts: Some(2),
        promotions: Some(0),
        promotions_min_age: Some("30m".into()),
    };
    assert_eq!(
        Limits::of(Some(&spec), &defaults).expect("valid"),
        Limits {
            artifacts: 2,
            promotions: 0,
            promotions_min_age: SignedDuration::from_mins(30),
        }
    );
    assert_eq!(
        Limits::of(None, &RetentionDefaults::default()).expect("valid"),
        Limits {
            artifacts: 30,
            promotions: 20,
            promotions_min_age: SignedDuration::from_hours(336),
        }
    );
}

#[test]
fn a_configuration_with_an_unreadable_min_age_is_refused() {
    let error = operator_config::parse("retention: {promotionsMinAge: soon}\n").unwrap_err();
    assert_eq!(error.field, "retention.promotionsMinAge");
}

#[test]
fn an_artifact_an_environment_of_another_cluster_runs_stays() {
    let environments = [
        environment("dev", "retention: {artifacts: 1}", ""),
        environment(
            "prod",
            "cluster: eu-1, retention: {artifacts: 1}",
            &format!("applications: [{}]", running("shop-1", "p1")),
        ),
    ];
    let decision = decide_five(&environments, &[]);
    assert_eq!(
        outcome(&decision, Kind::Artifact, "shop-1"),
        kept(KeepReason::Runs, "prod")
    );
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-2"), DELETED);
}

#[test]
fn an_artifact_in_a_history_within_its_limit_stays() {
    // shop-2 failed (never a rollback target); shop-1 is beyond the limit
    // of 2 (a limit lowered since the history was written).
    let environments = [dev_running_shop_5(
        2,
        &[("shop-2", "Failed"), ("shop-1", "Failed")],
    )];
    let decision = decide_five(&environments, &[]);
    assert_eq!(
        outcome(&decision, Kind::Artifact, "shop-2"),
        kept(KeepReason::InHistory, "dev")
    );
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-1"), DELETED);
}

#[test]
fn an_artifact_an_open_promotion_refers_to_stays() {
    let environments = [environment("dev", "retention: {artifacts: 1}", "")];
    let promotions = [
        promotion("p1", "shop-1", "dev", "Waiting", None),
        promotion("p2", "shop-2", "dev", "Superseded", Some(DAY)),
    ];
    let decision = decide_five(&environments, &promotions);
    assert_eq!(
        outcome(&decision, Kind::Artifact, "shop-1"),
        kept(KeepReason::OpenPromotion, "p1")
    );
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-2"), DELETED);
}

#[test]
fn the_rollback_target_stays_even_beyond_the_history_limit() {
    // historyLimit 1 covers only shop-5's entry; shop-3 is where a rollback
    // of shop goes, shop-2 failed.
    let environments = [dev_running_shop_5(
        1,
        &[("shop-3", "Succeeded"), ("shop-2", "Failed")],
    )];
    let decision = decide_five(&environments, &[]);
    assert_eq!(
        outcome(&decision, Kind::Artifact, "shop-3"),
        kept(KeepReason::RollbackTarget, "dev")
    );
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-2"), DELETED);
    assert_eq!(outcome(&decision, Kind::Artifact, "shop-5"), NEWEST);
}

#[test]
fn an_artifact_being_deleted_is_not_decided_again() {
    let mut artifacts = five_artifacts();
    artifacts[0].metadata.deletion_timestamp = Some(at(DAY));
    let environments = [environment("dev", "retention: {artifacts: 1}", "")];
    let decision = decide_at(
        10 * DAY,
        &environments,
        &artifacts,
        &[],
        &RetentionDefaults::default(),
    );
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["shop-4", "shop-3", "shop-2"]);
}

/// Promotions p1 … p5 into dev, finished one a day (p5 last).
fn five_promotions() -> Vec<Promotion> {
    (1..=5)
        .map(|n| promotion(&format!("p{n}"), "shop-5", "dev", "Succeeded", Some(n * DAY)))
        .collect()
}

#[test]
fn keeps_the_newest_finished_promotions_and_those_younger_than_the_minimum_age() {
    let environments = [environment(
        "dev",
        "retention: {promotions: 2, promotionsMinAge: 72h}",
        "",
    )];
    let mut promotions = five_promotions();
    promotions.push(promotion("open", "shop-5", "dev", "Waiting", None));
    promotions.push(promotion("other", "shop-5", "prod", "Succeeded", Some(DAY)));
    // At day 5, p2 (finished on day 2) is exactly 72h old: old enough.
    let decision = decide_at(
        5 * DAY,
        &environments,
        &[],
        &promotions,
        &RetentionDefaults::default(),
    );
    assert_eq!(outcome(&decision, Kind::Promotion, "p5"), NEWEST);
    assert_eq!(outcome(&decision, Kind::Promotion, "p4"), NEWEST);
    let young = Outcome::Keep {
        reason: KeepReason::Young,
        by: None,
    };
    assert_eq!(outcome(&decision, Kind::Promotion, "p3"), young);
    assert_eq!(outcome(&decision, Kind::Promotion, "p2"), DELETED);
    assert_eq!(outcome(&decision, Kind::Promotion, "p1"), DELETED);
    assert_eq!(
        outcome(&decision, Kind::Promotion, "open"),
        Outcome::Keep {
            reason: KeepReason::Open,
            by: None
        }
    );
    // prod has no Environment here: its Promotions are not decided.
    assert!(decision.verdicts.iter().all(|v| v.name != "other"));
    // One second earlier p2 is younger than 72h.
    let decision = decide_at(
        5 * DAY - 1,
        &environments,
        &[],
        &promotions,
        &RetentionDefaults::default(),
    );
    assert_eq!(outcome(&decision, Kind::Promotion, "p2"), young);
}

#[test]
fn a_promotion_the_history_names_stays() {
    let status = format!(
        "applications: [{}], history: [{}]",
        running("shop-5", "p1"),
        entry("shop-5", "p2", "Succeeded"),
    );
    let environments = [environment(
        "dev",
        "retention: {promotions: 1, promotionsMinAge: 1h}",
        &status,
    )];
    let decision = decide_at(
        30 * DAY,
        &environments,
        &[],
        &five_promotions(),
        &RetentionDefaults::default(),
    );
    assert_eq!(
        outcome(&decision, Kind::Promotion, "p1"),
        kept(KeepReason::InHistory, "dev")
    );
    assert_eq!(
        outcome(&decision, Kind::Promotion, "p2"),
        kept(KeepReason::InHistory, "dev")
    );
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["p4", "p3"]);
}

#[test]
fn the_default_keeps_twenty_promotions_and_fourteen_days() {
    let environments = [environment("dev", "", "")];
    let promotions: Vec<Promotion> = (1..=22)
        .map(|n| promotion(&format!("p{n}"), "shop-5", "dev", "Succeeded", Some(n)))
        .collect();
    let decision = decide_at(
        14 * DAY + 2,
        &environments,
        &[],
        &promotions,
        &RetentionDefaults::default(),
    );
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["p2", "p1"]);
    let decision = decide_at(
        14 * DAY + 1,
        &environments,
        &[],
        &promotions,
        &RetentionDefaults::default(),
    );
    let deleted: Vec<&str> = decision.deletions().map(|v| v.name.as_str()).collect();
    assert_eq!(deleted, ["p1"]);
}
