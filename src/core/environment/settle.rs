//! The second look right after Deployments were pinned: whether a plan's
//! rollout can be recorded as over (or failed) at once, without first
//! recording it as under way.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;

use crate::api::Promotion;

use super::{Plan, Snapshot};

/// Decides again as the next reconcile would, with `plan`'s statuses taken
/// as written and the target Deployments as `deployments_seen` holds them
/// after the pins (the same keys as `snapshot.deployments`).
///
/// The second plan is taken only when every pin is seen and it writes
/// nothing but statuses; otherwise `plan` stands and the watch events that
/// follow carry on. Promotions the first plan ended keep their status.
pub fn settle(
    snapshot: &Snapshot<'_>,
    plan: Plan,
    deployments_seen: BTreeMap<(String, String), &Deployment>,
) -> Plan {
    let pins_seen = plan.pins.iter().all(|pin| {
        deployments_seen
            .get(&(pin.namespace.clone(), pin.name.clone()))
            .is_some_and(|d| pin.is_satisfied_by(d))
    });
    if !pins_seen {
        return plan;
    }
    let mut environment = snapshot.environment.clone();
    environment.status = Some(plan.status.clone());
    let promotions: Vec<Promotion> = snapshot
        .promotions
        .iter()
        .map(|promotion| {
            let mut promotion = (*promotion).clone();
            if let Some(status) = plan.promotions.get(&promotion.name_any()) {
                promotion.status = Some(status.clone());
            }
            promotion
        })
        .collect();
    let mut environments = snapshot.environments.clone();
    environments.insert(environment.name_any(), &environment);
    let mut config_history = snapshot.config_history.clone();
    for rendered in &plan.config_history {
        config_history.insert(rendered.hash.clone(), rendered.clone());
    }
    let again = super::plan(&Snapshot {
        environment: &environment,
        environments,
        artifacts: snapshot.artifacts.clone(),
        promotions: promotions.iter().collect(),
        deployments: deployments_seen,
        namespaces: snapshot.namespaces.clone(),
        configs: snapshot.configs.clone(),
        config_history,
        approvals: snapshot.approvals.clone(),
        operator: snapshot.operator.clone(),
        jobs: snapshot.jobs.clone(),
        // Measurements of the first look are in its statuses already.
        measurements: BTreeMap::new(),
        key_secrets: snapshot.key_secrets.clone(),
        now: snapshot.now.clone(),
    });
    let created: BTreeSet<String> = plan.new_promotions.iter().map(|p| p.name_any()).collect();
    // Jobs and queries were written or taken for the first plan only.
    let only_statuses = again.pins == plan.pins
        && again.jobs.iter().all(|job| plan.jobs.contains(job))
        && again.queries.is_empty()
        && again.checks.is_empty()
        && again.config_maps == plan.config_maps
        && again
            .config_history
            .iter()
            .all(|c| plan.config_history.iter().any(|known| known.hash == c.hash))
        && again
            .new_promotions
            .iter()
            .all(|p| created.contains(&p.name_any()));
    if !only_statuses {
        return plan;
    }
    // Promotions the first plan ended are not decided again: theirs stand.
    let mut promotions = plan.promotions;
    promotions.extend(again.promotions);
    let mut notices = plan.notices;
    notices.extend(again.notices);
    Plan {
        promotions,
        notices,
        ..again
    }
}

#[cfg(test)]
mod tests {
    use crate::core::reasons::EventReason;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::{ApplicationStatus, ComponentDigest, Health, Phase};
    use crate::core::environment::fixture::{
        A, B, Objects, after_pin, at, deployment, environment, pin, promotion, stalled,
    };
    use crate::core::environment::{self, Notice};

    fn seen(deployment: &Deployment) -> BTreeMap<(String, String), &Deployment> {
        [(("shop".to_string(), "backend".to_string()), deployment)].into()
    }

    fn notice(promotion: &str, reason: EventReason, note: &str) -> Notice {
        Notice {
            promotion: Some(promotion.into()),
            reason,
            note: note.into(),
        }
    }

    fn phase_of(plan: &Plan, promotion: &str) -> (Phase, Option<String>, Option<Time>) {
        let status = &plan.promotions[promotion];
        (status.phase, status.message.clone(), status.completed_at.clone())
    }

    #[test]
    fn a_rollout_already_complete_after_the_pin_is_recorded_succeeded_at_once() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.promotions = vec![promotion("p1", "shop-1", 50)];
        let snapshot = objects.snapshot();
        let first = environment::plan(&snapshot);
        assert_eq!(first.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(first.promotions["p1"].phase, Phase::Verifying);

        let pinned = after_pin(deployment(), &first.pins[0], true);
        let settled = settle(&snapshot, first.clone(), seen(&pinned));
        assert_eq!(
            phase_of(&settled, "p1"),
            (Phase::Succeeded, Some("shop-1 runs in dev".into()), Some(at(100)))
        );
        assert_eq!(settled.promotions["p1"].started_at, Some(at(100)));
        assert_eq!(settled.pins, first.pins, "the pins stay as written");
        assert_eq!(
            settled.status.applications,
            vec![ApplicationStatus {
                application: "shop".into(),
                artifact: "shop-1".into(),
                version: "1.0.0".into(),
                images: vec![ComponentDigest {
                    component: "backend".into(),
                    digest: A.into(),
                }],
                source_revision: None,
                config_hash: None,
                spec_config_hash: None,
                promotion: "p1".into(),
                promoted_at: Some(at(100)),
                approvers: Vec::new(),
                health: Health::Healthy,
                health_since: Some(at(100)),
            }]
        );
        assert_eq!(
            settled
                .status
                .history
                .iter()
                .map(|h| (h.promotion.as_str(), h.outcome))
                .collect::<Vec<_>>(),
            vec![("p1", Phase::Succeeded)]
        );
        assert_eq!(
            settled.notices,
            vec![
                notice("p1", EventReason::Promoting, "rolling out shop-1 to dev"),
                notice("p1", EventReason::Promoted, "shop-1 runs in dev"),
            ]
        );
    }

    #[test]
    fn when_the_pins_are_not_seen_yet_the_first_plan_stands() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.promotions = vec![promotion("p1", "shop-1", 50)];
        let snapshot = objects.snapshot();
        let first = environment::plan(&snapshot);
        let unpinned = deployment();
        assert_eq!(settle(&snapshot, first.clone(), seen(&unpinned)), first);
        assert_eq!(settle(&snapshot, first.clone(), BTreeMap::new()), first);
    }

    #[test]
    fn a_second_plan_that_writes_more_than_statuses_is_not_taken() {
        // shop-1 runs; shop-2's rollout fails right after the pin, and the
        // automatic rollback would pin shop-1 again: that waits for the next reconcile.
        let mut before = Objects::new(environment("dev", "  rollback: {automatic: true}"));
        before.promotions = vec![promotion("p1", "shop-1", 50)];
        let first = environment::plan(&before.snapshot());
        let pinned = after_pin(deployment(), &first.pins[0], true);
        let running = settle(&before.snapshot(), first, seen(&pinned));
        assert_eq!(running.promotions["p1"].phase, Phase::Succeeded);

        let mut objects = Objects::new(environment("dev", "  rollback: {automatic: true}"));
        objects.environment.status = Some(running.status.clone());
        let mut p1 = promotion("p1", "shop-1", 50);
        p1.status = Some(running.promotions["p1"].clone());
        objects.promotions = vec![p1, promotion("p2", "shop-2", 60)];
        objects.deployments = vec![pinned.clone()];
        let snapshot = objects.snapshot();
        let first = environment::plan(&snapshot);
        assert_eq!(first.pins, vec![pin("shop-2", B, None)]);
        assert_eq!(first.promotions["p2"].phase, Phase::Verifying);

        let failed = stalled(after_pin(pinned, &first.pins[0], false));
        // What the next reconcile decides: the rollback, which pins shop-1 again.
        let mut next = Objects::new(environment("dev", "  rollback: {automatic: true}"));
        next.environment.status = Some(first.status.clone());
        next.promotions = objects.promotions.clone();
        next.promotions[1].status = Some(first.promotions["p2"].clone());
        next.deployments = vec![failed.clone()];
        let again = environment::plan(&next.snapshot());
        assert_eq!(again.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(again.promotions["p2"].phase, Phase::RolledBack);

        assert_eq!(settle(&snapshot, first.clone(), seen(&failed)), first);
    }

    #[test]
    fn promotions_the_first_plan_ended_keep_their_status() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.promotions = vec![promotion("ghost", "shop-9", 40), promotion("p1", "shop-1", 50)];
        let snapshot = objects.snapshot();
        let first = environment::plan(&snapshot);
        let rejected = "Artifact shop-9 not found in namespace shop; create it, then a new Promotion";
        assert_eq!(
            phase_of(&first, "ghost"),
            (Phase::Rejected, Some(rejected.into()), Some(at(100)))
        );

        let pinned = after_pin(deployment(), &first.pins[0], true);
        let settled = settle(&snapshot, first.clone(), seen(&pinned));
        assert_eq!(settled.promotions["ghost"], first.promotions["ghost"]);
        assert_eq!(settled.promotions["p1"].phase, Phase::Succeeded);
        assert_eq!(
            settled.notices,
            vec![
                notice("ghost", EventReason::Rejected, rejected),
                notice("p1", EventReason::Promoting, "rolling out shop-1 to dev"),
                notice("p1", EventReason::Promoted, "shop-1 runs in dev"),
            ]
        );
    }
}
