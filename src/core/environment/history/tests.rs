use crate::api::{ChangeKind, EnvironmentStatus, Health, HistoryEntry, Phase};
use crate::core::environment::fixture::{
    A, B, Objects, after_pin, at, deployment, environment, pin, promotion, rendered, running, stalled,
    verifying,
};
use crate::core::environment::{Notice, RenderedConfigMap, plan};
use crate::core::reasons::EventReason;

const H1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn a_configuration_change_rolls_what_runs_with_its_images_unchanged() {
    let mut objects = Objects::new(environment("dev", ""));
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, Some(H1))],
        ..Default::default()
    });
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, Some(H1)), true)];
    objects.configs = [("shop".to_string(), Ok(rendered("two", H2)))].into();
    let plan = plan(&objects.snapshot());

    let app = &plan.status.applications[0];
    assert_eq!(
        (
            app.artifact.as_str(),
            app.config_hash.as_deref(),
            app.spec_config_hash.as_deref(),
            app.health,
            app.health_since.clone()
        ),
        ("shop-1", Some(H2), Some(H2), Health::Progressing, Some(at(100)))
    );
    assert_eq!(plan.pins, vec![pin("shop-1", A, Some(H2))]);
    assert_eq!(
        plan.config_maps,
        vec![RenderedConfigMap {
            namespace: "shop".into(),
            name: "shop-config".into(),
            application: "shop".into(),
            config: rendered("two", H2),
        }]
    );
    assert_eq!(
        plan.notices,
        vec![Notice {
            promotion: None,
            reason: EventReason::ConfigChanged,
            note: "configuration of shop changed; rolling its Deployments".into(),
        }]
    );
    let entry = HistoryEntry {
        application: "shop".into(),
        artifact: "shop-1".into(),
        version: "1.0.0".into(),
        change: ChangeKind::Configuration,
        images: app.images.clone(),
        source_repository: None,
        source_revision: None,
        build_id: None,
        build_url: None,
        committed_at: None,
        built_at: None,
        config_hash: Some(H2.into()),
        promotion: "to-shop-1".into(),
        promoted_at: Some(at(100)),
        approvers: Vec::new(),
        approvals: Vec::new(),
        outcome: Phase::Succeeded,
        completed_at: None,
        restored_at: None,
    };
    assert_eq!(
        plan.status.history,
        vec![entry.clone()],
        "the history records the configuration change, not yet complete"
    );

    // Decided again at 100 with the Deployments rolled out: the change is complete.
    objects.environment.status = Some(plan.status.clone());
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, Some(H2)), true)];
    let again = crate::core::environment::plan(&objects.snapshot());
    assert_eq!(again.status.applications[0].health, Health::Healthy);
    assert_eq!(
        again.status.history,
        vec![HistoryEntry {
            completed_at: Some(at(100)),
            ..entry
        }],
        "once, and complete when its Deployments are healthy"
    );
    assert_eq!(again.notices, Vec::new());
}

#[test]
fn a_configuration_change_waits_while_a_release_rolls_out() {
    let mut objects = Objects::new(environment("dev", ""));
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, Some(H1))],
        ..Default::default()
    });
    let mut p2 = verifying(promotion("p2", "shop-2", 50));
    p2.status.as_mut().unwrap().config = Some(crate::api::ConfigChange {
        from: Some(H1.into()),
        to: H1.into(),
    });
    objects.promotions = vec![p2];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, Some(H1)), false)];
    objects.configs = [("shop".to_string(), Ok(rendered("two", H2)))].into();
    let plan = plan(&objects.snapshot());
    assert_eq!(plan.pins, vec![pin("shop-2", B, Some(H1))]);
    assert_eq!(plan.status.applications[0].spec_config_hash.as_deref(), Some(H1));
    assert_eq!(plan.notices, Vec::new());
}

#[test]
fn health_since_moves_only_when_the_health_does() {
    let mut objects = Objects::new(environment("dev", ""));
    objects.environment.status = Some(EnvironmentStatus {
        applications: vec![running("shop-1", "1.0.0", A, None)],
        ..Default::default()
    });
    let pinned = after_pin(deployment(), &pin("shop-1", A, None), true);
    objects.workloads = vec![pinned.clone()];
    let healthy = plan(&objects.snapshot());
    assert_eq!(
        (
            healthy.status.applications[0].health,
            healthy.status.applications[0].health_since.clone()
        ),
        (Health::Healthy, Some(at(5)))
    );

    objects.workloads = vec![stalled(pinned)];
    let degraded = plan(&objects.snapshot());
    assert_eq!(
        (
            degraded.status.applications[0].health,
            degraded.status.applications[0].health_since.clone()
        ),
        (Health::Degraded, Some(at(100)))
    );
    assert_eq!(degraded.pins, healthy.pins, "health alone changes no pin");
    assert_eq!(degraded.notices, Vec::new());
}

#[test]
fn history_keeps_the_newest_entries_up_to_its_limit() {
    let old = |promotion: &str, completed: i64| HistoryEntry {
        application: "shop".into(),
        artifact: "shop-0".into(),
        version: "0.9.0".into(),
        change: ChangeKind::Release,
        source_repository: None,
        source_revision: None,
        build_id: None,
        build_url: None,
        committed_at: None,
        built_at: None,
        images: Vec::new(),
        config_hash: None,
        promotion: promotion.into(),
        promoted_at: Some(at(completed)),
        approvers: Vec::new(),
        approvals: Vec::new(),
        outcome: Phase::Succeeded,
        completed_at: Some(at(completed)),
        restored_at: None,
    };
    let mut objects = Objects::new(environment("dev", "  historyLimit: 2"));
    objects.environment.status = Some(EnvironmentStatus {
        history: vec![old("second", 2), old("first", 1)],
        ..Default::default()
    });
    objects.promotions = vec![verifying(promotion("p1", "shop-1", 50))];
    objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, None), true)];
    let plan = plan(&objects.snapshot());
    assert_eq!(
        plan.status
            .history
            .iter()
            .map(|h| (h.promotion.as_str(), h.outcome))
            .collect::<Vec<_>>(),
        vec![("p1", Phase::Succeeded), ("second", Phase::Succeeded)]
    );
    assert_eq!(plan.status.summary.as_deref(), Some("shop@1.0.0"));
}
