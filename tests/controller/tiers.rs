//! Tiers through the operator: a Mid tenant's `staging` is TierForbidden
//! and nothing is promoted into it; relabelling the namespace High lets
//! the waiting Promotion run; downgrading again deletes nothing.

use hoist::core::operator_config;
use hoist::core::tiers::LABEL_TIER;
use k8s_openapi::api::core::v1::Namespace;

use super::*;

/// The tenant model's tiers, as the README configures them.
const TIERS: &str = r#"
tiers:
  default: Low
  tiers:
    Low: {environments: [prod]}
    Mid: {environments: [dev, prod]}
    High: {environments: [dev, staging, prod], custom: Unlimited}
    Business: {environments: [dev, staging, prod], custom: Unlimited}
"#;

pub(super) const MID_FORBIDS_STAGING: &str = "tier Mid (label hoist.dev/tier) allows Environments dev, prod and no custom \
                                   ones: Environment staging is not one of them; a cluster admin can label the \
                                   namespace with a tier that allows it";

/// Labels the tenant's namespace with `tier`, as a cluster admin would.
pub(super) async fn label_tier(scenario: &Scenario, tier: &str) {
    Api::<Namespace>::all(scenario.client())
        .patch(
            scenario.namespace(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {LABEL_TIER: tier}}})),
        )
        .await
        .expect("label the tenant's namespace");
}

/// Environment `name` once its `Ready` has `reason`; returns its message.
pub(super) async fn wait_ready_reason(scenario: &Scenario, name: &str, reason: &str) -> String {
    let environment = scenario
        .cluster
        .wait_for::<Environment>(name, TIMEOUT, |e| {
            e.status
                .iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.type_ == "Ready" && c.reason == reason)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let ready = environment
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.status, "False");
    ready.message.clone()
}

/// `scenario`'s settings with the tenant model's tiers.
pub(super) fn tier_settings(scenario: &Scenario) -> Settings {
    let mut settings = scenario.settings();
    settings.config = std::sync::Arc::new(operator_config::parse(TIERS).expect("configuration"));
    settings
}

#[tokio::test]
async fn a_mid_tenants_staging_is_forbidden_until_the_namespace_is_high_and_a_downgrade_deletes_nothing() {
    let mut scenario = Scenario::new().await;
    label_tier(&scenario, "Mid").await;
    scenario.start_with(tier_settings(&scenario)).await;

    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    assert_eq!(
        wait_ready_reason(&scenario, "staging", "TierForbidden").await,
        MID_FORBIDS_STAGING
    );

    // Nothing is promoted into staging: the Promotion waits with the message.
    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let waiting_message = format!("Environment staging is not allowed by its tier: {MID_FORBIDS_STAGING}");
    let waiting = scenario
        .cluster
        .wait_for::<Promotion>("to-staging", TIMEOUT, |p| {
            p.status.as_ref().and_then(|s| s.message.as_deref()) == Some(waiting_message.as_str())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(waiting.status.expect("status").phase, Phase::Pending);
    assert_eq!(
        scenario.images("staging", "backend").await,
        vec![
            ("app".to_string(), "example.invalid/backend:latest".to_string()),
            ("sidecar".to_string(), "example.invalid/sidecar:1".to_string()),
        ]
    );

    // High allows staging: the waiting Promotion runs.
    label_tier(&scenario, "High").await;
    scenario.wait_phase("to-staging", Phase::Succeeded).await;
    let pinned_backend = pinned(&images["backend"]);
    assert_eq!(scenario.images("staging", "backend").await[0].1, pinned_backend);

    // Back to Mid: staging is forbidden again, and nothing is deleted or
    // changed: the Environment, its Promotion and what runs stay.
    label_tier(&scenario, "Mid").await;
    assert_eq!(
        wait_ready_reason(&scenario, "staging", "TierForbidden").await,
        MID_FORBIDS_STAGING
    );
    let staging = scenario.environment("staging").await;
    let running: Vec<(String, String)> = staging
        .status
        .iter()
        .flat_map(|s| &s.applications)
        .map(|app| (app.application.clone(), app.artifact.clone()))
        .collect();
    assert_eq!(running, vec![("shop".to_string(), "shop-1-0-0".to_string())]);
    assert_eq!(
        scenario
            .wait_phase("to-staging", Phase::Succeeded)
            .await
            .metadata
            .name
            .as_deref(),
        Some("to-staging")
    );
    assert_eq!(scenario.images("staging", "backend").await[0].1, pinned_backend);
    scenario.stop().await;
}
