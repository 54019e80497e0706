//! The promotion path: one build through dev, staging and prod, what it pins
//! and renders, and the Promotions the operator refuses or holds.

use hoist::api::{Artifact, Environment, GateName, GateState, Health, Phase, Promotion};
use hoist_testkit::registry::PushedImage;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{REVISION, STAGES, Scenario, TIMEOUT, artifact_ready, config_hash, deployment, pinned};

#[tokio::test]
async fn one_build_goes_dev_staging_prod_with_an_approval_and_prod_runs_the_dev_digests() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let images = scenario.release_through_staging(Some(REVISION)).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    // Staging's own status may lag its Promotion's by a moment; wait until only approval holds.
    let waiting = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Phase::Waiting
                    && s.gates
                        .iter()
                        .any(|g| g.gate == GateName::Upstream && g.state == GateState::Passed)
            })
        })
        .await
        .expect("to-prod waits for approval");
    let status = waiting.status.expect("status");
    let gates: Vec<(GateName, GateState)> = status.gates.iter().map(|g| (g.gate, g.state)).collect();
    assert_eq!(
        gates,
        vec![
            (GateName::ArtifactReady, GateState::Passed),
            (GateName::Upstream, GateState::Passed),
            (GateName::Approval, GateState::Pending),
            (GateName::Provenance, GateState::Passed),
            (GateName::Vulnerabilities, GateState::Passed),
            (GateName::Soak, GateState::Passed),
            (GateName::Windows, GateState::Passed),
            (GateName::Compatibility, GateState::Passed),
            (GateName::Verification, GateState::Passed),
        ]
    );
    assert_eq!(
        status.message.as_deref(),
        Some(format!("waiting for the Approval gate: 0 of 1 approvals from users alice, bob; approve with: kubectl hoist approve to-prod -n {}", scenario.namespace()).as_str())
    );
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        "example.invalid/backend:latest",
        "untouched while waiting"
    );

    scenario.approve("to-prod", "alice").await;
    let done = scenario.wait_phase("to-prod", Phase::Succeeded).await;
    let status = done.status.expect("status");
    assert_eq!(
        status
            .approvals
            .iter()
            .map(|a| (a.user.as_str(), a.verified))
            .collect::<Vec<_>>(),
        vec![("alice", true)]
    );
    let changes: Vec<(String, String, Option<String>, String)> = status
        .changes
        .iter()
        .map(|c| {
            (
                c.deployment.clone(),
                c.container.clone(),
                c.from.clone(),
                c.to.clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "backend".into(),
                "app".into(),
                None,
                images["backend"].digest.clone()
            ),
            (
                "frontend".into(),
                "web".into(),
                None,
                images["frontend"].digest.clone()
            ),
        ]
    );

    for stage in STAGES {
        assert_eq!(
            scenario.images(stage, "backend").await,
            vec![
                ("app".to_string(), pinned(&images["backend"])),
                ("sidecar".to_string(), "example.invalid/sidecar:1".to_string())
            ],
            "{stage} backend"
        );
        assert_eq!(
            scenario.images(stage, "frontend").await[0],
            ("web".to_string(), pinned(&images["frontend"]))
        );
        assert_eq!(
            scenario
                .annotation(stage, "backend", "hoist.dev/artifact")
                .await
                .as_deref(),
            Some("shop-1-0-0")
        );
    }
    let prod = scenario
        .cluster
        .wait_for::<Environment>("prod", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.applications
                    .first()
                    .is_some_and(|a| a.health == Health::Healthy)
            })
        })
        .await
        .expect("prod healthy");
    let status = prod.status.expect("status");
    assert_eq!(status.summary.as_deref(), Some("shop@1.0.0"));
    let app = &status.applications[0];
    assert_eq!(
        (
            app.artifact.as_str(),
            app.version.as_str(),
            app.promotion.as_str(),
            app.approvers.clone(),
            app.source_revision.as_deref()
        ),
        (
            "shop-1-0-0",
            "1.0.0",
            "to-prod",
            vec!["alice".to_string()],
            Some(REVISION)
        )
    );
    // The history keeps who approved, whether the API server vouched for them, and when.
    let approved: Vec<(String, bool)> = status.history[0]
        .approvals
        .iter()
        .map(|a| (a.user.clone(), a.verified))
        .collect();
    assert_eq!(approved, vec![("alice".to_string(), true)]);
    let digests: Vec<(String, String)> = app
        .images
        .iter()
        .map(|i| (i.component.clone(), i.digest.clone()))
        .collect();
    assert_eq!(
        digests,
        vec![
            ("backend".into(), images["backend"].digest.clone()),
            ("frontend".into(), images["frontend"].digest.clone())
        ]
    );
    let events = scenario.cluster.recent_events().await.expect("events");
    for expected in [
        "Normal to-prod Approved: approved by alice (verified)",
        "Normal to-prod Promoting: rolling out shop-1-0-0 to prod",
        "Normal to-prod Promoted: shop-1-0-0 runs in prod",
        "Normal shop-1-0-0 Resolved: all 2 images resolved to digests",
    ] {
        assert!(
            events.lines().any(|line| line.trim() == expected),
            "missing event {expected:?} in:\n{events}"
        );
    }
    scenario.stop().await;
}

/// `hoist-test/…/backend` from `host:port/hoist-test/…/backend:tag`.
fn repository_path(image: &PushedImage) -> String {
    let without_tag = image.reference.rsplit_once(':').expect("tagged").0;
    without_tag.split_once('/').expect("host/path").1.to_string()
}

#[tokio::test]
async fn a_tag_moved_after_resolution_is_never_followed() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let resolved = artifact_ready(&scenario, "shop-1-0-0").await;
    let moved = hoist_testkit::registry::move_tag(&repository_path(&images["backend"]), "1.0.0", 999)
        .await
        .expect("move tag");
    assert_ne!(
        moved.digest, images["backend"].digest,
        "the tag now names other content"
    );

    for (name, stage) in [("to-dev", "dev"), ("to-staging", "staging"), ("to-prod", "prod")] {
        scenario.promote(name, "shop-1-0-0", stage).await;
        if stage == "prod" {
            scenario.approve(name, "bob").await;
        }
        scenario.wait_phase(name, Phase::Succeeded).await;
    }
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        pinned(&images["backend"])
    );
    let artifact: Artifact = Api::namespaced(scenario.client(), scenario.namespace())
        .get("shop-1-0-0")
        .await
        .expect("artifact");
    assert_eq!(
        artifact.status.expect("status").images,
        resolved.status.expect("status").images,
        "never re-resolved"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_config_change_alone_rolls_the_pods_with_the_same_images() {
    let mut scenario = Scenario::new().await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "shop-token"}, "stringData": {"TOKEN": "one"}}))
            .expect("secret");
    let secrets: Api<Secret> = Api::namespaced(scenario.client(), scenario.namespace());
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].secret_refs = vec![hoist::api::SecretReference {
                name: "shop-token".into(),
            }];
        })
        .await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    let first_hash = scenario
        .annotation("dev", "backend", "hoist.dev/config-hash")
        .await
        .expect("config hash");
    let first_images = scenario.images("dev", "backend").await;
    let rendered: Api<ConfigMap> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        vec![
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("STAGE".to_string(), "dev".to_string())
        ]
    );

    // Only the overlay changes.
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("FEATURE_X".into(), "on".into());
        })
        .await;
    let namespace = scenario.stages["dev"].clone();
    let rolled = scenario
        .cluster
        .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
            config_hash(d).as_ref() != Some(&first_hash)
        })
        .await
        .expect("config change rolls the Deployment");
    let second_hash = config_hash(&rolled).expect("config hash");
    assert_eq!(
        scenario.images("dev", "backend").await,
        first_images,
        "images unchanged"
    );
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(data.get("FEATURE_X").map(String::as_str), Some("on"));

    // Rotating the referenced Secret rolls them again; its content never lands in the ConfigMap.
    let rotated = json!({"stringData": {"TOKEN": "two"}});
    secrets
        .patch("shop-token", &PatchParams::default(), &Patch::Merge(&rotated))
        .await
        .expect("rotate");
    scenario
        .cluster
        .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
            let hash = config_hash(d);
            hash.is_some() && hash != Some(second_hash.clone()) && hash != Some(first_hash.clone())
        })
        .await
        .expect("secret rotation rolls the Deployment");
    assert_eq!(scenario.images("dev", "backend").await, first_images);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert!(
        !data.values().any(|value| value == "two" || value == "one"),
        "no Secret content in {data:?}"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn missing_provenance_blocks_prod_with_the_reason() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(None).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.approve("to-prod", "alice").await;
    // Once the approval counts, provenance is the one gate left.
    let blocked = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            // Approved, so only provenance holds the Promotion.
            p.status.as_ref().is_some_and(|s| {
                let state = |gate| s.gates.iter().find(|g| g.gate == gate).map(|g| g.state);
                state(GateName::Provenance) == Some(GateState::Failed)
                    && state(GateName::Approval) == Some(GateState::Passed)
            })
        })
        .await
        .expect("provenance gate fails");
    let status = blocked.status.expect("status");
    assert_eq!(status.phase, Phase::Waiting);
    assert_eq!(
        status.message.as_deref(),
        Some(
            "waiting for the Provenance gate: spec.source.revision is not set; build a new Artifact that meets spec.gates.provenance"
        )
    );
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        "example.invalid/backend:latest"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn unknown_artifact_cross_tenant_target_and_digest_mismatch_are_refused_by_name() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let namespace = scenario.namespace().to_string();

    scenario.promote("ghost", "shop-9-9-9", "dev").await;
    let ghost = scenario.wait_phase("ghost", Phase::Rejected).await;
    assert_eq!(
        ghost.status.expect("status").message,
        Some(format!(
            "Artifact shop-9-9-9 not found in namespace {namespace}; create it, then a new Promotion"
        ))
    );
    scenario.promote("nowhere", "shop-9-9-9", "qa").await;
    let nowhere = scenario.wait_phase("nowhere", Phase::Rejected).await;
    assert_eq!(
        nowhere.status.expect("status").message,
        Some(format!(
            "Environment qa not found in namespace {namespace}; create it, then a new Promotion"
        ))
    );

    // Another tenant's namespace.
    let foreign = scenario
        .cluster
        .extra_namespace("hoist-other", &[("hoist.dev/tenant", "someone-else")])
        .await
        .expect("namespace");
    let deployment: Deployment = serde_json::from_value(deployment("backend", "app", 0)).expect("deployment");
    Api::<Deployment>::namespaced(scenario.client(), &foreign)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create");
    scenario
        .apply::<Environment>("rogue", json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "rogue"},
            "spec": {"targets": [{"application": "shop", "component": "backend", "deployment": {"name": "backend", "namespace": foreign}, "container": "app"}]}
        }))
        .await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("steal", "shop-1-0-0", "rogue").await;
    let steal = scenario.wait_phase("steal", Phase::Rejected).await;
    assert_eq!(
        steal.status.expect("status").message,
        Some(format!(
            "refused: spec.targets[0].deployment.namespace: namespace {foreign} is not opted in for tenant {namespace}; a cluster admin must label it hoist.dev/tenant={namespace}"
        ))
    );
    let untouched: Deployment = Api::namespaced(scenario.client(), &foreign)
        .get("backend")
        .await
        .expect("deployment");
    assert_eq!(
        untouched
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0]
            .image
            .as_deref(),
        Some("example.invalid/backend:latest")
    );

    // A spec digest the registry does not have for the tag.
    let wrong = format!("sha256:{}", "0".repeat(64));
    scenario
        .apply::<Artifact>(
            "shop-bad",
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "shop-bad"},
                "spec": {"application": "shop", "version": "1.0.1", "images": [
                    {"component": "backend", "image": images["backend"].reference, "digest": wrong},
                    {"component": "frontend", "image": images["frontend"].reference}
                ]}
            }),
        )
        .await;
    let bad = scenario
        .cluster
        .wait_for::<Artifact>("shop-bad", TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "DigestMismatch")
            })
        })
        .await
        .expect("digest mismatch reported");
    let ready = bad
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("ready");
    assert_eq!(ready.status, "False");
    assert_eq!(
        ready.message,
        format!(
            "component backend: image {} has digest {} in the registry, but {wrong} was expected; the spec cannot change: create a new Artifact",
            images["backend"].reference, images["backend"].digest
        )
    );
    scenario.promote("bad-dev", "shop-bad", "dev").await;
    let held = scenario
        .wait_gate("bad-dev", GateName::ArtifactReady, GateState::Failed)
        .await;
    assert_eq!(held.status.expect("status").phase, Phase::Waiting);
    scenario.stop().await;
}
