//! The status subresource and generation.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_standin::{StandIn, Verb};
use serde_json::json;

use crate::common::{Widget, WidgetStatus, deployment, labels, resource_version, widget};

async fn widgets() -> anyhow::Result<(StandIn, Api<Widget>)> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let widgets = Api::namespaced(server.client(), "default");
    Ok((server, widgets))
}

#[tokio::test]
async fn status_is_dropped_on_create() -> anyhow::Result<()> {
    let (_server, widgets) = widgets().await?;
    let mut desired = widget("w", "red", 1);
    desired.status = Some(WidgetStatus { ready: true });
    let created = widgets.create(&PostParams::default(), &desired).await?;
    assert_eq!(created.status, None);
    assert_eq!(created.metadata.generation, Some(1));
    Ok(())
}

#[tokio::test]
async fn status_writes_change_only_status_and_never_generation() -> anyhow::Result<()> {
    let (_server, widgets) = widgets().await?;
    let created = widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;

    let mut attempt = created.clone();
    attempt.spec.color = "blue".to_owned();
    attempt.metadata.labels = Some(labels(&[("sneaky", "yes")]));
    attempt.status = Some(WidgetStatus { ready: true });
    let updated = widgets
        .replace_status("w", &PostParams::default(), &attempt)
        .await?;

    assert_eq!(updated.status, Some(WidgetStatus { ready: true }));
    assert_eq!(updated.spec.color, "red", "spec is not written through /status");
    assert_eq!(
        updated.metadata.labels, None,
        "metadata is not written through /status"
    );
    assert_eq!(updated.metadata.generation, Some(1));
    assert!(resource_version(&updated) > resource_version(&created));
    Ok(())
}

#[tokio::test]
async fn main_writes_keep_stored_status_and_bump_generation_on_spec_changes() -> anyhow::Result<()> {
    let (_server, widgets) = widgets().await?;
    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let status_patch = json!({"status": {"ready": true}});
    let with_status = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await?;

    let mut attempt = with_status.clone();
    attempt.status = Some(WidgetStatus { ready: false });
    attempt.metadata.labels = Some(labels(&[("team", "a")]));
    let labelled = widgets.replace("w", &PostParams::default(), &attempt).await?;
    assert_eq!(
        labelled.status,
        Some(WidgetStatus { ready: true }),
        "status kept from storage"
    );
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );

    let mut respec = labelled.clone();
    respec.spec.size = 2;
    let respecced = widgets.replace("w", &PostParams::default(), &respec).await?;
    assert_eq!(respecced.metadata.generation, Some(2));
    assert_eq!(respecced.status, Some(WidgetStatus { ready: true }));
    Ok(())
}

#[tokio::test]
async fn deployment_generation_follows_spec_and_annotations_not_status() -> anyhow::Result<()> {
    // The status is written by hand and must stay as written.
    let server = StandIn::builder().deployment_controller(false).start().await?;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await?;

    let status = json!({"status": {"replicas": 1, "observedGeneration": 1}});
    let after_status = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    assert_eq!(after_status.metadata.generation, Some(1));
    assert_eq!(
        after_status.status.as_ref().and_then(|status| status.replicas),
        Some(1)
    );

    let spec = json!({"spec": {"replicas": 3}});
    let after_spec = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&spec))
        .await?;
    assert_eq!(after_spec.metadata.generation, Some(2));
    assert_eq!(
        after_spec.status.as_ref().and_then(|status| status.replicas),
        Some(1)
    );

    let annotation = json!({"metadata": {"annotations": {"note": "x"}}});
    let after_annotation = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&annotation))
        .await?;
    assert_eq!(
        after_annotation.metadata.generation,
        Some(3),
        "Deployments count annotation changes"
    );

    let label = json!({"metadata": {"labels": {"team": "a"}}});
    let after_label = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    assert_eq!(after_label.metadata.generation, Some(3));
    Ok(())
}

#[tokio::test]
async fn no_op_patches_keep_the_resource_version_and_record_no_change() -> anyhow::Result<()> {
    // Compares with the create response, before any controller status write.
    let server = StandIn::builder().deployment_controller(false).start().await?;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await?;
    let version = server.resource_version();
    server.reset_requests();

    let same = json!({"spec": {"replicas": 1}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&same))
        .await?;
    let status = json!({"status": {}});
    deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await?;

    assert_eq!(patched, created);
    assert_eq!(server.resource_version(), version);
    let log = server.requests();
    assert_eq!(log.writes().len(), 2);
    assert_eq!(log.changes().len(), 0);
    assert_eq!(log.count(Verb::Patch, "deployments.apps"), 2);
    Ok(())
}
