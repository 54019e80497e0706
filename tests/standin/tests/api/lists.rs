//! Lists: selectors, pagination, resourceVersion.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube_standin::StandIn;

use crate::common::{Widget, config_map, labels, status_of, widget};

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .filter_map(|item| item.metadata.name.clone())
        .collect()
}

async fn seed(config_maps: &Api<ConfigMap>) -> anyhow::Result<()> {
    for (name, app, tier) in [
        ("a", "web", Some("front")),
        ("b", "web", None),
        ("c", "db", Some("back")),
    ] {
        let mut object = config_map(name, &[]);
        let mut pairs = vec![("app", app)];
        pairs.extend(tier.map(|tier| ("tier", tier)));
        object.metadata.labels = Some(labels(&pairs));
        config_maps.create(&PostParams::default(), &object).await?;
    }
    Ok(())
}

#[tokio::test]
async fn label_selectors_support_equality_existence_and_sets() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    seed(&config_maps).await?;
    let cases = [
        ("app=web", vec!["a", "b"]),
        ("app==db", vec!["c"]),
        ("app!=web", vec!["c"]),
        ("tier", vec!["a", "c"]),
        ("!tier", vec!["b"]),
        ("tier in (front,back)", vec!["a", "c"]),
        ("tier notin (front)", vec!["b", "c"]),
        ("app=web,tier in (front)", vec!["a"]),
    ];
    for (selector, expected) in cases {
        let list = config_maps.list(&ListParams::default().labels(selector)).await?;
        assert_eq!(names(&list), expected, "{selector}");
    }
    Ok(())
}

#[tokio::test]
async fn field_selectors_on_name_namespace_and_selectable_fields() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    seed(&config_maps).await?;
    let list = config_maps
        .list(&ListParams::default().fields("metadata.name=b"))
        .await?;
    assert_eq!(names(&list), vec!["b"]);
    let list = config_maps
        .list(&ListParams::default().fields("metadata.name!=b"))
        .await?;
    assert_eq!(names(&list), vec!["a", "c"]);

    let everywhere: Api<ConfigMap> = Api::all(server.client());
    let system: Api<ConfigMap> = Api::namespaced(server.client(), "kube-system");
    system
        .create(&PostParams::default(), &config_map("a", &[]))
        .await?;
    let list = everywhere
        .list(&ListParams::default().fields("metadata.namespace==kube-system"))
        .await?;
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.namespace.as_deref(), Some("kube-system"));

    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("red", "red", 1))
        .await?;
    widgets
        .create(&PostParams::default(), &widget("blue", "blue", 1))
        .await?;
    let list = widgets
        .list(&ListParams::default().fields("spec.color=blue"))
        .await?;
    let found: Vec<_> = list
        .items
        .iter()
        .filter_map(|item| item.metadata.name.clone())
        .collect();
    assert_eq!(found, vec!["blue"]);

    let status = status_of(widgets.list(&ListParams::default().fields("spec.size=1")).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    Ok(())
}

#[tokio::test]
async fn lists_across_namespaces_are_sorted_by_namespace_then_name() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let namespaces: Api<Namespace> = Api::all(server.client());
    let team = Namespace {
        metadata: ObjectMeta {
            name: Some("team".to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &team).await?;
    for namespace in ["team", "default"] {
        let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), namespace);
        for name in ["y", "x"] {
            config_maps
                .create(&PostParams::default(), &config_map(name, &[]))
                .await?;
        }
    }
    let list = Api::<ConfigMap>::all(server.client())
        .list(&ListParams::default())
        .await?;
    let keys: Vec<(String, String)> = list
        .items
        .iter()
        .map(|item| {
            (
                item.metadata.namespace.clone().unwrap_or_default(),
                item.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [("default", "x"), ("default", "y"), ("team", "x"), ("team", "y")]
        .iter()
        .map(|(namespace, name)| ((*namespace).to_owned(), (*name).to_owned()))
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(
        list.metadata.resource_version,
        Some(server.resource_version().to_string())
    );
    Ok(())
}

#[tokio::test]
async fn pages_continue_from_a_consistent_snapshot() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["a", "b", "c", "d", "e"] {
        config_maps
            .create(&PostParams::default(), &config_map(name, &[]))
            .await?;
    }
    let snapshot = server.resource_version().to_string();
    let first = config_maps.list(&ListParams::default().limit(2)).await?;
    assert_eq!(names(&first), vec!["a", "b"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    assert_eq!(
        first.metadata.resource_version.as_deref(),
        Some(snapshot.as_str())
    );
    let token = first.metadata.continue_.clone().unwrap_or_default();

    // Changes after the first page do not show up in later pages.
    config_maps.delete("c", &DeleteParams::default()).await?;
    config_maps
        .create(&PostParams::default(), &config_map("bb", &[]))
        .await?;

    let second = config_maps
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await?;
    assert_eq!(names(&second), vec!["c", "d"]);
    assert_eq!(
        second.metadata.resource_version.as_deref(),
        Some(snapshot.as_str())
    );
    let token = second.metadata.continue_.clone().unwrap_or_default();
    let third = config_maps
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await?;
    assert_eq!(names(&third), vec!["e"]);
    assert_eq!(third.metadata.continue_, None);
    assert_eq!(third.metadata.remaining_item_count, None);
    Ok(())
}

#[tokio::test]
async fn continue_tokens_expire_with_the_event_history() -> anyhow::Result<()> {
    let server = StandIn::builder().event_history(3).start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["a", "b", "c"] {
        config_maps
            .create(&PostParams::default(), &config_map(name, &[]))
            .await?;
    }
    let first = config_maps.list(&ListParams::default().limit(1)).await?;
    let token = first.metadata.continue_.clone().unwrap_or_default();
    for name in ["d", "e", "f", "g"] {
        config_maps
            .create(&PostParams::default(), &config_map(name, &[]))
            .await?;
    }
    let status = status_of(
        config_maps
            .list(&ListParams::default().limit(1).continue_token(&token))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert!(
        status
            .message
            .starts_with("The provided continue parameter is too old"),
        "{}",
        status.message
    );
    Ok(())
}
