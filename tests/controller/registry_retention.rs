//! Registry retention through the operator, against real registries: the
//! one of `HOIST_TEST_REGISTRY_DELETABLE` deletes manifests, the one of
//! `HOIST_TEST_REGISTRY` answers 405 UNSUPPORTED (docker-registry's default).

use std::time::Duration;

use hoist::api::Artifact;
use hoist::controller::Settings;
use hoist::core::operator_config;
use hoist::core::registry_retention::FINALIZER;
use hoist_testkit::health;
use hoist_testkit::registry::{
    PushedImage, deletable_registry_address, manifest_status, push_deletable, push_image, registry_address,
    unique_repository,
};
use hoist_testkit::signing::{SigningKey, push_signatures, signature};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::retention::wait_gone;
use super::{Scenario, TIMEOUT};

/// Creates Artifact `name` of application shop in `namespace`, whose one
/// component runs `image`, and waits until it is resolved.
async fn backend_artifact(scenario: &Scenario, namespace: &str, name: &str, image: &PushedImage) {
    let body = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
        "metadata": {"name": name},
        "spec": {"application": "shop", "version": "1.0.0", "images": [{"component": "backend", "image": image.reference}]}
    });
    Api::<Artifact>::namespaced(scenario.client(), namespace)
        .patch(
            name,
            &PatchParams::apply("hoist-tests").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|error| panic!("apply {namespace}/{name}: {error}"));
    scenario
        .cluster
        .wait_for_in::<Artifact>(namespace, name, TIMEOUT, |artifact| {
            artifact
                .status
                .as_ref()
                .is_some_and(|status| !status.images.is_empty())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
}

/// Restarts the operator keeping one Artifact per application, passing
/// every second, with `registryRetention` allowing `registry`.
async fn restart_with_registry_retention(scenario: &mut Scenario, mut settings: Settings, registry: &str) {
    scenario.stop().await;
    settings.config = std::sync::Arc::new(
        operator_config::parse(&format!(
            "retention: {{artifacts: 1}}\nregistryRetention: {{registries: [\"{registry}\"]}}\n"
        ))
        .expect("configuration"),
    );
    settings.retention_interval = Duration::from_secs(1);
    scenario.start_with(settings).await;
}

fn deletions(registry: &str, outcome: &str) -> String {
    format!("hoist_registry_deletions_total{{registry=\"{registry}\",outcome=\"{outcome}\"}}")
}

async fn status(image: &PushedImage, tag_or_digest: &str) -> u16 {
    manifest_status(image, tag_or_digest)
        .await
        .expect("ask the registry")
}

#[tokio::test]
async fn retention_deletes_an_old_artifacts_manifest_and_signature_unless_another_namespace_shares_the_digest()
 {
    let deletable = deletable_registry_address().expect("HOIST_TEST_REGISTRY_DELETABLE (run scripts/test)");
    let mut scenario = Scenario::new().await;
    scenario.more_registries.push(deletable.clone());
    let other = scenario
        .cluster
        .watched_namespace("hoist-other")
        .await
        .expect("another tenant");
    let settings = Settings {
        namespaces: vec![scenario.namespace().to_owned(), other.clone()],
        ..scenario.settings()
    };
    scenario.start_with(settings.clone()).await;
    let repository = format!("{}/backend", unique_repository("shop"));
    let old = push_deletable(&repository, "1.0.0", 1).await.expect("push");
    let shared = push_deletable(&repository, "1.0.1", 2).await.expect("push");
    let newest = push_deletable(&repository, "1.0.2", 3).await.expect("push");
    let key = SigningKey::generate();
    push_signatures(&old, &[signature(&key, &old, &old.digest)])
        .await
        .expect("sign");
    let signature_tag = format!("{}.sig", old.digest.replace(':', "-"));
    assert_eq!(status(&old, &signature_tag).await, 200);
    // Oldest first; within one second, names break the tie the same way.
    let namespace = scenario.namespace().to_owned();
    for (name, image) in [
        ("shop-1-old", &old),
        ("shop-2-shared", &shared),
        ("shop-3-new", &newest),
    ] {
        backend_artifact(&scenario, &namespace, name, image).await;
    }
    // Another tenant releases the same digest.
    backend_artifact(&scenario, &other, "copy", &shared).await;

    restart_with_registry_retention(&mut scenario, settings, &deletable).await;

    wait_gone::<Artifact>(&scenario, "shop-1-old").await;
    wait_gone::<Artifact>(&scenario, "shop-2-shared").await;
    assert_eq!(status(&old, &old.digest).await, 404, "the old manifest stayed");
    assert_eq!(status(&old, &signature_tag).await, 404, "its signature stayed");
    assert_eq!(
        status(&shared, &shared.digest).await,
        200,
        "the shared manifest went"
    );
    assert_eq!(
        status(&newest, &newest.digest).await,
        200,
        "the newest manifest went"
    );
    assert_eq!(
        health::metric(scenario.health(), &deletions(&deletable, "Deleted")).await,
        1.0
    );
    let events = scenario.cluster.recent_events().await.expect("events");
    assert!(
        events.contains(&format!(
            "Normal dev RegistryManifestDeleted: Registry retention deleted the manifests of Artifact shop-1-old: \
             {deletable}/{repository}@{}",
            old.digest
        )),
        "{events}"
    );
    assert!(!events.contains("RegistryDeletionRefused"), "{events}");
    scenario.stop().await;
}

#[tokio::test]
async fn a_registry_that_refuses_deletion_is_reported_once_and_one_outside_the_allow_list_is_never_touched() {
    let refusing = registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
    let deletable = deletable_registry_address().expect("HOIST_TEST_REGISTRY_DELETABLE (run scripts/test)");
    let mut scenario = Scenario::new().await;
    scenario.more_registries.push(deletable.clone());
    let settings = scenario.settings();
    scenario.start_with(settings.clone()).await;
    let repository = format!("{}/backend", unique_repository("shop"));
    let refused = push_image(&repository, "1.0.0", 11).await.expect("push");
    let untouched = push_deletable(&repository, "1.0.1", 12).await.expect("push");
    let newest = push_image(&repository, "1.0.2", 13).await.expect("push");
    let namespace = scenario.namespace().to_owned();
    for (name, image) in [
        ("shop-1-refused", &refused),
        ("shop-2-elsewhere", &untouched),
        ("shop-3-new", &newest),
    ] {
        backend_artifact(&scenario, &namespace, name, image).await;
    }

    // Only the registry that refuses is allowed.
    restart_with_registry_retention(&mut scenario, settings, &refusing).await;

    wait_gone::<Artifact>(&scenario, "shop-1-refused").await;
    wait_gone::<Artifact>(&scenario, "shop-2-elsewhere").await;
    assert_eq!(status(&refused, &refused.digest).await, 200);
    assert_eq!(status(&untouched, &untouched.digest).await, 200);
    let unsupported = deletions(&refusing, "Unsupported");
    assert_eq!(health::metric(scenario.health(), &unsupported).await, 1.0);
    for outcome in ["Deleted", "NotFound", "Unsupported", "Denied", "Failed"] {
        assert_eq!(
            health::metric(scenario.health(), &deletions(&deletable, outcome)).await,
            0.0,
            "{outcome}"
        );
    }
    let events = scenario.cluster.recent_events().await.expect("events");
    let refusal = format!(
        "Warning dev RegistryDeletionRefused: Registry retention could not delete the manifests of Artifact \
         shop-1-refused and will not try again: {refusing}/{repository}@{}: the registry does not allow deletion \
         (HTTP 405, UNSUPPORTED): enable it there (docker-registry: storage.delete.enabled) or remove {refusing} \
         from registryRetention.registries",
        refused.digest
    );
    assert!(events.contains(&refusal), "{events}");
    // Later passes do not ask again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(health::metric(scenario.health(), &unsupported).await, 1.0);
    let events = scenario.cluster.recent_events().await.expect("events");
    assert_eq!(events.matches(&refusal).count(), 1, "{events}");
    scenario.stop().await;
}

#[tokio::test]
async fn a_deletion_pending_when_the_operator_stopped_is_finished_after_it_starts_again() {
    let deletable = deletable_registry_address().expect("HOIST_TEST_REGISTRY_DELETABLE (run scripts/test)");
    let mut scenario = Scenario::new().await;
    scenario.more_registries.push(deletable.clone());
    let settings = scenario.settings();
    scenario.start_with(settings.clone()).await;
    let repository = format!("{}/backend", unique_repository("shop"));
    let old = push_deletable(&repository, "1.0.0", 21).await.expect("push");
    let namespace = scenario.namespace().to_owned();
    backend_artifact(&scenario, &namespace, "shop-1-old", &old).await;
    scenario.stop().await;
    // Where an operator stopped right after retention held and deleted
    // the Artifact, before it asked the registry.
    let artifacts = Api::<Artifact>::namespaced(scenario.client(), &namespace);
    artifacts
        .patch(
            "shop-1-old",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": [FINALIZER]}})),
        )
        .await
        .expect("hold");
    artifacts
        .delete("shop-1-old", &DeleteParams::foreground())
        .await
        .expect("delete");

    restart_with_registry_retention(&mut scenario, settings, &deletable).await;

    wait_gone::<Artifact>(&scenario, "shop-1-old").await;
    assert_eq!(status(&old, &old.digest).await, 404, "the manifest stayed");
    assert_eq!(
        health::metric(scenario.health(), &deletions(&deletable, "Deleted")).await,
        1.0
    );
    scenario.stop().await;
}
