//! Patches: JSON merge, JSON patch, server-side apply, and the refused
//! strategic merge patch.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_standin::{PatchType, RequestMatch, StandIn, Verb};
use serde_json::json;

use crate::common::{Widget, config_map, deployment, labels, raw, resource_version, status_of, widget};

#[tokio::test]
async fn merge_patch_follows_rfc_7386() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &config_map("cm", &[("a", "1"), ("b", "2")]),
        )
        .await?;
    let patch = json!({"data": {"a": "10", "b": null, "c": "3"}});
    let patched = config_maps
        .patch("cm", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    assert_eq!(patched.data, Some(labels(&[("a", "10"), ("c", "3")])));
    let record = server.requests().records().last().cloned().expect("recorded");
    assert_eq!(
        (record.verb, record.patch_type, record.changed),
        (Some(Verb::Patch), Some(PatchType::Merge), true)
    );
    Ok(())
}

#[tokio::test]
async fn json_patch_follows_rfc_6902_and_failed_tests_are_invalid() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("cm", &[("a", "1")]))
        .await?;
    let client = server.client();
    let path = "/api/v1/namespaces/default/configmaps/cm";
    let operations = json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "add", "path": "/data/b", "value": "3"},
    ]);
    let patched: ConfigMap = raw(&client, "PATCH", path, "application/json-patch+json", &operations).await?;
    assert_eq!(patched.data, Some(labels(&[("a", "2"), ("b", "3")])));
    assert_eq!(config_maps.get("cm").await?, patched);

    let failing = json!([{"op": "test", "path": "/data/a", "value": "1"}]);
    let status =
        status_of(raw::<ConfigMap>(&client, "PATCH", path, "application/json-patch+json", &failing).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    Ok(())
}

#[tokio::test]
async fn patching_a_missing_object_is_not_found() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let patch = json!({"data": {"a": "1"}});
    let status = status_of(
        config_maps
            .patch("absent", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "configmaps \"absent\" not found")
    );
    Ok(())
}

#[tokio::test]
async fn strategic_merge_patch_is_refused_with_415() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let patch = json!({"spec": {"size": 2}});
    let status = status_of(
        widgets
            .patch("w", &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    assert_eq!(
        status.message,
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );

    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await?;
    let status = status_of(
        deployments
            .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    assert!(
        status
            .message
            .contains("strategic merge patch is not implemented"),
        "{}",
        status.message
    );
    Ok(())
}

#[tokio::test]
async fn apply_creates_then_updates_and_identical_applies_write_nothing() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let params = PatchParams::apply("hoist");
    let desired = deployment("web", "nginx:1");
    let created = deployments.patch("web", &params, &Patch::Apply(&desired)).await?;
    assert_eq!(created.metadata.generation, Some(1));
    let record = server.requests().records().last().cloned().expect("recorded");
    assert_eq!((record.code, record.patch_type), (201, Some(PatchType::Apply)));

    let updated_config = deployment("web", "nginx:2");
    let updated = deployments
        .patch("web", &params, &Patch::Apply(&updated_config))
        .await?;
    let image = |deployment: &Deployment| {
        deployment
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
            .and_then(|pod| pod.containers[0].image.clone())
    };
    assert_eq!(image(&updated).as_deref(), Some("nginx:2"));
    assert_eq!(updated.metadata.generation, Some(2));

    let version = server.resource_version();
    let again = deployments
        .patch("web", &params, &Patch::Apply(&updated_config))
        .await?;
    assert_eq!(resource_version(&again), version);
    assert_eq!(server.resource_version(), version);
    let applies = server.requests();
    let applies = applies.matching(
        &RequestMatch::any()
            .patch_type(PatchType::Apply)
            .resource("deployments"),
    );
    let changed: Vec<bool> = applies.iter().map(|record| record.changed).collect();
    assert_eq!(changed, vec![true, true, false]);
    Ok(())
}

#[tokio::test]
async fn apply_requires_a_field_manager() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let status = status_of(
        config_maps
            .patch(
                "cm",
                &PatchParams::default(),
                &Patch::Apply(&config_map("cm", &[])),
            )
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    Ok(())
}

#[tokio::test]
async fn apply_conflicts_name_the_other_manager_and_force_takes_over() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("other-manager"),
            &Patch::Apply(&deployment("web", "nginx:1")),
        )
        .await?;

    let mut scaled = deployment("web", "nginx:1");
    if let Some(spec) = scaled.spec.as_mut() {
        spec.replicas = Some(5);
    }
    let status = status_of(
        deployments
            .patch("web", &PatchParams::apply("hoist"), &Patch::Apply(&scaled))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"other-manager\": .spec.replicas"
    );
    let causes = status.details.map(|details| details.causes).unwrap_or_default();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].message, "conflict with \"other-manager\"");

    let forced = deployments
        .patch(
            "web",
            &PatchParams::apply("hoist").force(),
            &Patch::Apply(&scaled),
        )
        .await?;
    assert_eq!(forced.spec.and_then(|spec| spec.replicas), Some(5));
    Ok(())
}

#[tokio::test]
async fn apply_removes_fields_the_manager_no_longer_applies() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let params = PatchParams::apply("hoist");
    config_maps
        .patch(
            "cm",
            &params,
            &Patch::Apply(&config_map("cm", &[("a", "1"), ("b", "2")])),
        )
        .await?;
    let applied = config_maps
        .patch("cm", &params, &Patch::Apply(&config_map("cm", &[("a", "1")])))
        .await?;
    assert_eq!(applied.data, Some(labels(&[("a", "1")])));
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.manager)
        .collect();
    assert_eq!(managers, vec!["hoist"]);
    Ok(())
}
