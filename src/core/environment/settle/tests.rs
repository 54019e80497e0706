use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{ApplicationStatus, ComponentDigest, Health, Phase};
use crate::core::environment::fixture::{
    A, B, Objects, after_pin, at, deployment, environment, pin, promotion, stalled,
};
use crate::core::environment::{self, Notice};
use crate::core::reasons::EventReason;

fn seen(workload: &Workload) -> BTreeMap<WorkloadId, &Workload> {
    [(workload.id(), workload)].into()
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
    objects.workloads = vec![pinned.clone()];
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
    next.workloads = vec![failed.clone()];
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
