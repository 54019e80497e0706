//! Retention through the operator: old Artifacts and finished Promotions
//! nothing needs go; what runs, is in a history, or is referenced by an
//! open Promotion stays.

use std::time::Duration;

use hoist::api::{Artifact, Phase, Promotion};
use hoist::core::operator_config;
use hoist_testkit::health;
use hoist_testkit::registry::push_multi;
use kube::api::Api;

use super::{REVISION, Scenario, TIMEOUT};

/// Whether `name` of kind `K` exists in the test namespace.
pub(super) async fn exists<K>(scenario: &Scenario, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(scenario.client(), scenario.namespace())
        .get_opt(name)
        .await
        .expect("get")
        .is_some()
}

/// Waits until `name` of kind `K` is gone.
pub(super) async fn wait_gone<K>(scenario: &Scenario, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while exists::<K>(scenario, name).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was not deleted; recent events:\n{}",
            scenario.cluster.recent_events().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn retention_deletes_what_nothing_needs_and_keeps_what_runs_is_in_history_or_is_promoted() {
    let mut scenario = Scenario::new().await;
    scenario
        .update_environment("dev", |spec| spec.history_limit = 1)
        .await;
    scenario.start().await;
    let images = push_multi("shop", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    // Six releases, oldest first (ties in creation order by name).
    for name in ["shop-a", "shop-b", "shop-c", "shop-d", "shop-e", "shop-f"] {
        scenario.artifact(name, "1.0.0", &images, Some(REVISION)).await;
    }
    for (promotion, artifact, environment) in [
        ("a-dev", "shop-a", "dev"),
        ("a-staging", "shop-a", "staging"),
        ("b-dev", "shop-b", "dev"),
        ("b-staging", "shop-b", "staging"),
        ("c-dev", "shop-c", "dev"),
    ] {
        scenario.promote_and_wait(promotion, artifact, environment).await;
    }
    // shop-d is asked for in prod, where it waits (approval, upstream).
    scenario.promote("d-prod", "shop-d", "prod").await;
    scenario.wait_phase("d-prod", Phase::Waiting).await;
    scenario.stop().await;
    // Every finished Promotion is now older than the minimum age below.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Keep one Artifact and one finished Promotion, each a second old.
    let mut settings = scenario.settings();
    settings.config = std::sync::Arc::new(
        operator_config::parse("retention: {artifacts: 1, promotions: 1, promotionsMinAge: 1s}\n")
            .expect("configuration"),
    );
    settings.retention_interval = Duration::from_secs(1);
    scenario.start_with(settings).await;

    // Nothing needs shop-e; dev's history (limit 1) names c-dev only.
    wait_gone::<Artifact>(&scenario, "shop-e").await;
    wait_gone::<Promotion>(&scenario, "a-dev").await;
    wait_gone::<Promotion>(&scenario, "b-dev").await;
    // shop-f is the newest, dev runs shop-c, staging runs shop-b and names
    // shop-a in its history, and d-prod (open) refers to shop-d.
    for kept in ["shop-a", "shop-b", "shop-c", "shop-d", "shop-f"] {
        assert!(exists::<Artifact>(&scenario, kept).await, "{kept} was deleted");
    }
    // c-dev is dev's newest, b-staging staging's; staging's history names
    // a-staging; d-prod is open.
    for kept in ["c-dev", "a-staging", "b-staging", "d-prod"] {
        assert!(exists::<Promotion>(&scenario, kept).await, "{kept} was deleted");
    }
    let events = scenario.cluster.recent_events().await.expect("events");
    assert!(
        events.contains(
            "Normal dev RetentionDeleted: Retention deleted 1 Artifacts (shop-e) and 2 finished Promotions \
             (b-dev, a-dev): older than what it keeps, and nothing needs them"
        ),
        "{events}"
    );
    let sample = |kind: &str| {
        format!(
            "hoist_retention_deletions_total{{kind=\"{kind}\",reason=\"BeyondNewest\",namespace=\"{}\"}}",
            scenario.namespace()
        )
    };
    assert_eq!(health::metric(scenario.health(), &sample("Artifact")).await, 1.0);
    assert_eq!(health::metric(scenario.health(), &sample("Promotion")).await, 2.0);
    // Later passes find nothing more to delete.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(health::metric(scenario.health(), &sample("Promotion")).await, 2.0);
    scenario.stop().await;
}
