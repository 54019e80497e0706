//! Discovery, legacy and aggregated, as kube's `Discovery` reads it.

use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope, verbs};
use kube_standin::StandIn;

use crate::common::Widget;

fn assert_finds_widgets_and_deployments(discovery: &Discovery) {
    let widget = GroupVersionKind::gvk("test.hoist.dev", "v1", "Widget");
    let (resource, capabilities) = discovery.resolve_gvk(&widget).expect("Widget is discovered");
    assert_eq!(resource.plural, "widgets");
    assert_eq!(resource.api_version, "test.hoist.dev/v1");
    assert_eq!(capabilities.scope, Scope::Namespaced);
    assert!(capabilities.supports_operation(verbs::WATCH));
    let subresources: Vec<&str> = capabilities
        .subresources
        .iter()
        .map(|(sub, _)| sub.plural.as_str())
        .collect();
    assert_eq!(subresources, vec!["status"]);

    let namespace = GroupVersionKind::gvk("", "v1", "Namespace");
    let (_, capabilities) = discovery
        .resolve_gvk(&namespace)
        .expect("Namespace is discovered");
    assert_eq!(capabilities.scope, Scope::Cluster);
    let deployment = GroupVersionKind::gvk("apps", "v1", "Deployment");
    assert!(discovery.resolve_gvk(&deployment).is_some());
    let crd = GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    assert!(discovery.resolve_gvk(&crd).is_some());
}

#[tokio::test]
async fn legacy_discovery_finds_built_ins_and_custom_resources() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let discovery = Discovery::new(server.client()).run().await?;
    assert_finds_widgets_and_deployments(&discovery);
    Ok(())
}

#[tokio::test]
async fn aggregated_discovery_finds_built_ins_and_custom_resources() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let discovery = Discovery::new(server.client()).run_aggregated().await?;
    assert_finds_widgets_and_deployments(&discovery);
    Ok(())
}

#[tokio::test]
async fn resource_lists_carry_short_names_and_categories() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let client = server.client();
    let list = client.list_api_group_resources("test.hoist.dev/v1").await?;
    let widgets = list
        .resources
        .iter()
        .find(|resource| resource.name == "widgets")
        .expect("widgets listed");
    assert_eq!(widgets.short_names, Some(vec!["wd".to_owned()]));
    assert_eq!(widgets.categories, Some(vec!["hoist".to_owned()]));
    assert_eq!(widgets.singular_name, "widget");
    assert!(widgets.namespaced);
    let version = client.apiserver_version().await?;
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "33"));
    Ok(())
}
