//! Deletion: finalizers, garbage collection, namespaces, collections,
//! preconditions.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent, WatchParams,
};
use kube_standin::StandIn;
use serde_json::json;

use crate::common::{config_map, labels, status_of};

fn with_finalizer(name: &str) -> ConfigMap {
    let mut object = config_map(name, &[]);
    object.metadata.finalizers = Some(vec!["test.hoist.dev/hold".to_owned()]);
    object
}

fn owned_by(name: &str, owners: &[&ConfigMap]) -> ConfigMap {
    let mut object = config_map(name, &[]);
    object.metadata.owner_references = Some(
        owners
            .iter()
            .map(|owner| OwnerReference {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
                name: owner.metadata.name.clone().unwrap_or_default(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                ..OwnerReference::default()
            })
            .collect(),
    );
    object
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &with_finalizer("held"))
        .await?;
    let from = server.resource_version().to_string();
    let mut events = config_maps.watch(&WatchParams::default(), &from).await?.boxed();

    let answer = config_maps.delete("held", &DeleteParams::default()).await?;
    let marked = answer.left().expect("delete answers the object");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    let record = server.requests().records().last().cloned().expect("recorded");
    assert_eq!(record.code, 202, "not deleted yet: Accepted");
    assert_eq!(
        config_maps.get("held").await?.metadata.deletion_timestamp,
        marked.metadata.deletion_timestamp
    );

    let add = json!({"metadata": {"finalizers": ["test.hoist.dev/hold", "another"]}});
    let status = status_of(
        config_maps
            .patch("held", &PatchParams::default(), &Patch::Merge(&add))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "ConfigMap \"held\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"
    );

    let release = json!({"metadata": {"finalizers": null}});
    config_maps
        .patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    assert_eq!(config_maps.get_opt("held").await?, None);

    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await? {
            Some(Ok(WatchEvent::Modified(object))) => {
                seen.push(("MODIFIED", object.metadata.finalizers.is_some()))
            }
            Some(Ok(WatchEvent::Deleted(object))) => {
                seen.push(("DELETED", object.metadata.finalizers.is_some()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec![("MODIFIED", true), ("DELETED", false)]);
    Ok(())
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = config_maps.create(&pp, &config_map("owner", &[])).await?;
    let other = config_maps.create(&pp, &config_map("other", &[])).await?;
    let child = config_maps.create(&pp, &owned_by("child", &[&owner])).await?;
    config_maps
        .create(&pp, &owned_by("grandchild", &[&child]))
        .await?;
    config_maps
        .create(&pp, &owned_by("shared", &[&owner, &other]))
        .await?;

    config_maps.delete("owner", &DeleteParams::default()).await?;

    assert_eq!(config_maps.get_opt("child").await?, None);
    assert_eq!(
        config_maps.get_opt("grandchild").await?,
        None,
        "collection is recursive"
    );
    let shared = config_maps.get("shared").await?;
    let owners: Vec<String> = shared
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .map(|owner| owner.name)
        .collect();
    assert_eq!(owners, vec!["other"]);
    Ok(())
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_without_the_reference() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await?;
    config_maps
        .create(&PostParams::default(), &owned_by("child", &[&owner]))
        .await?;
    config_maps.delete("owner", &DeleteParams::orphan()).await?;
    let child = config_maps.get("child").await?;
    assert_eq!(child.metadata.owner_references, None);
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content_then_itself() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let namespaces: Api<Namespace> = Api::all(server.client());
    let team = Namespace {
        metadata: ObjectMeta {
            name: Some("team".to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = namespaces.create(&PostParams::default(), &team).await?;
    assert_eq!(
        created.status.and_then(|status| status.phase).as_deref(),
        Some("Active")
    );
    assert_eq!(
        created.metadata.labels,
        Some(labels(&[("kubernetes.io/metadata.name", "team")]))
    );

    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "team");
    config_maps
        .create(&PostParams::default(), &config_map("plain", &[]))
        .await?;
    config_maps
        .create(&PostParams::default(), &with_finalizer("held"))
        .await?;

    namespaces.delete("team", &DeleteParams::default()).await?;
    let terminating = namespaces.get("team").await?;
    assert_eq!(
        terminating.status.and_then(|status| status.phase).as_deref(),
        Some("Terminating")
    );
    assert_eq!(config_maps.get_opt("plain").await?, None);
    assert!(
        config_maps
            .get("held")
            .await?
            .metadata
            .deletion_timestamp
            .is_some()
    );

    let status = status_of(
        config_maps
            .create(&PostParams::default(), &config_map("late", &[]))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "unable to create new content in namespace team because it is being terminated"
    );

    let release = json!({"metadata": {"finalizers": []}});
    config_maps
        .patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    assert_eq!(namespaces.get_opt("team").await?, None);
    Ok(())
}

#[tokio::test]
async fn delete_collection_honours_selectors() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let mut object = config_map(name, &[]);
        object.metadata.labels = Some(labels(&[("app", app)]));
        config_maps.create(&PostParams::default(), &object).await?;
    }
    let deleted = config_maps
        .delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=web"))
        .await?;
    let deleted = deleted
        .left()
        .expect("deletecollection answers the deleted objects");
    let names: Vec<_> = deleted
        .items
        .iter()
        .filter_map(|item| item.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    let left: Vec<_> = config_maps
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|item| item.metadata.name)
        .collect();
    assert_eq!(left, vec!["c"]);
    Ok(())
}

#[tokio::test]
async fn delete_preconditions_must_match() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = config_maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await?;
    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let status = status_of(config_maps.delete("a", &wrong).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        format!(
            "Operation cannot be fulfilled on configmaps \"a\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {}",
            created.metadata.uid.clone().unwrap_or_default()
        )
    );
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    config_maps.delete("a", &right).await?;
    assert_eq!(config_maps.get_opt("a").await?, None);
    Ok(())
}
