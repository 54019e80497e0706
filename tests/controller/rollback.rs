//! Rollbacks: automatic after a failed rollout, and asked for by hand.

use hoist::api::{GateName, GateState, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{REVISION, Scenario, pinned};

#[tokio::test]
async fn a_failed_rollout_rolls_back_images_and_config() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-2-0-0", "2.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    let v1_hash = scenario
        .annotation("dev", "backend", "hoist.dev/config-hash")
        .await
        .expect("hash");
    let v1_images = scenario.images("dev", "backend").await;
    scenario.stop().await;

    // While the operator is down: one replica (which never becomes available:
    // its sidecar image cannot be pulled, so 2.0.0's rollout fails after the
    // one-second progress deadline), a configuration change, and the
    // promotion of 2.0.0.
    let scale = json!({"spec": {"replicas": 1}});
    Api::<Deployment>::namespaced(scenario.client(), &scenario.stages["dev"])
        .patch("backend", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale");
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("FEATURE_X".into(), "on".into());
        })
        .await;
    scenario.promote("v2", "shop-2-0-0", "dev").await;
    scenario.start().await;

    let rolled_back = scenario.wait_phase("v2", Phase::RolledBack).await;
    let status = rolled_back.status.expect("status");
    let message = status.message.expect("message");
    assert!(
        message.starts_with(&format!(
            "rollout failed ({}/backend: rollout exceeded its progress deadline",
            scenario.stages["dev"]
        )),
        "{message}"
    );
    assert!(message.ends_with("rolled back to shop-1-0-0 1.0.0"), "{message}");
    let to_hash = status.config.expect("config change").to;
    assert_ne!(to_hash, v1_hash, "2.0.0 shipped the new configuration");

    assert_eq!(scenario.images("dev", "backend").await, v1_images);
    assert_eq!(
        scenario
            .annotation("dev", "backend", "hoist.dev/config-hash")
            .await,
        Some(v1_hash.clone())
    );
    let rendered: Api<ConfigMap> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(data.get("FEATURE_X"), None, "the previous configuration is back");
    let environment = scenario.environment("dev").await.status.expect("status");
    let history: Vec<(String, Phase)> = environment
        .history
        .iter()
        .map(|h| (h.promotion.clone(), h.outcome))
        .collect();
    assert_eq!(
        history,
        vec![
            ("v2".to_string(), Phase::RolledBack),
            ("v1".to_string(), Phase::Succeeded)
        ]
    );
    assert_eq!(environment.applications[0].artifact, "shop-1-0-0");
    scenario.stop().await;
}

#[tokio::test]
async fn a_manual_rollback_skips_upstream_and_restores_the_release() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let v1 = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let v2 = scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    for (name, artifact, stage) in [
        ("v1-dev", "shop-1-0-0", "dev"),
        ("v1-staging", "shop-1-0-0", "staging"),
        ("v2-dev", "shop-1-1-0", "dev"),
        ("v2-staging", "shop-1-1-0", "staging"),
    ] {
        scenario.promote(name, artifact, stage).await;
        scenario.wait_phase(name, Phase::Succeeded).await;
    }
    assert_eq!(
        scenario.images("staging", "backend").await[0].1,
        pinned(&v2["backend"])
    );

    // 1.0.0 no longer runs in dev, so only a rollback may bring it back to staging.
    scenario.promote("back", "shop-1-0-0", "staging").await;
    let back = scenario.wait_phase("back", Phase::Succeeded).await;
    let status = back.status.expect("status");
    assert!(status.rollback);
    let upstream = status
        .gates
        .iter()
        .find(|g| g.gate == GateName::Upstream)
        .expect("upstream gate");
    assert_eq!(
        (upstream.state, upstream.message.as_str()),
        (
            GateState::Passed,
            "rollback: shop-1-0-0 ran here before, upstream does not apply"
        )
    );
    assert_eq!(
        scenario.images("staging", "backend").await[0].1,
        pinned(&v1["backend"])
    );
    let history: Vec<String> = scenario
        .environment("staging")
        .await
        .status
        .expect("status")
        .history
        .iter()
        .map(|h| h.promotion.clone())
        .collect();
    assert_eq!(history, vec!["back", "v2-staging", "v1-staging"]);
    scenario.stop().await;
}
