//! CustomResourceDefinitions registered through the API, and custom
//! resource validation.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::json;

use crate::common::{Widget, raw, status_of, widget};

#[tokio::test]
async fn creating_a_crd_serves_its_resource_and_deleting_it_removes_them() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    let status = status_of(widgets.list(&ListParams::default()).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));

    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let created = crds.create(&PostParams::default(), &Widget::crd()).await?;
    let conditions: Vec<(String, String)> = created
        .status
        .and_then(|status| status.conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|condition| (condition.type_, condition.status))
        .collect();
    assert_eq!(
        conditions,
        vec![
            ("NamesAccepted".to_owned(), "True".to_owned()),
            ("Established".to_owned(), "True".to_owned())
        ]
    );

    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    assert_eq!(widgets.list(&ListParams::default()).await?.items.len(), 1);

    crds.delete("widgets.test.hoist.dev", &DeleteParams::default())
        .await?;
    let status = status_of(widgets.list(&ListParams::default()).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));

    crds.create(&PostParams::default(), &Widget::crd()).await?;
    assert_eq!(
        widgets.list(&ListParams::default()).await?.items.len(),
        0,
        "the old objects went with the CRD"
    );
    Ok(())
}

#[tokio::test]
async fn applying_a_crd_registers_it() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.patch(
        "widgets.test.hoist.dev",
        &PatchParams::apply("hoist"),
        &Patch::Apply(Widget::crd()),
    )
    .await?;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    assert_eq!(widgets.get("w").await?.spec.color, "red");
    Ok(())
}

#[tokio::test]
async fn a_crd_must_be_named_plural_dot_group() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let mut crd = Widget::crd();
    crd.metadata.name = Some("gadgets.test.hoist.dev".to_owned());
    let status = status_of(crds.create(&PostParams::default(), &crd).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "CustomResourceDefinition.apiextensions.k8s.io \"gadgets.test.hoist.dev\" is invalid: metadata.name: Invalid value: \"gadgets.test.hoist.dev\": must be spec.names.plural+\".\"+spec.group"
    );
    Ok(())
}

#[tokio::test]
async fn custom_resources_are_validated_against_their_schema() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![Widget::crd()]).await?;
    let client = server.client();
    let body = json!({
        "apiVersion": "test.hoist.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "red", "size": "big"},
    });
    let status = status_of(
        raw::<Widget>(
            &client,
            "POST",
            "/apis/test.hoist.dev/v1/namespaces/default/widgets",
            "application/json",
            &body,
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "Widget.test.hoist.dev \"w\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
    );
    let details = status.details.expect("Invalid carries details");
    assert_eq!(
        (
            details.group.as_str(),
            details.kind.as_str(),
            details.name.as_str()
        ),
        ("test.hoist.dev", "Widget", "w")
    );
    assert_eq!(details.causes[0].field, "spec.size");
    Ok(())
}

/// The Widget CRD with a CEL rule on its spec: a size of at most 10.
fn widget_crd_with_a_rule() -> anyhow::Result<CustomResourceDefinition> {
    let mut crd = serde_json::to_value(Widget::crd())?;
    let spec = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .ok_or_else(|| anyhow::anyhow!("the Widget CRD has no spec schema"))?;
    spec["x-kubernetes-validations"] =
        json!([{"rule": "self.size <= 10", "message": "size must be at most 10"}]);
    Ok(serde_json::from_value(crd)?)
}

async fn create_widget(client: &kube::Client, spec: serde_json::Value) -> Result<Widget, kube::Error> {
    let body = json!({
        "apiVersion": "test.hoist.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    });
    raw(
        client,
        "POST",
        "/apis/test.hoist.dev/v1/namespaces/default/widgets",
        "application/json",
        &body,
    )
    .await
}

#[tokio::test]
async fn a_schema_error_that_keeps_the_cel_rules_from_running_is_told_as_the_server_tells_it()
-> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![widget_crd_with_a_rule()?]).await?;
    let client = server.client();
    let not_checked = "Invalid value: null: some validation rules were not checked because the object was invalid; \
                       correct the existing errors to complete validation";

    // A size of the wrong type: the rule is not run, and a cause at <nil> says so.
    let status = status_of(create_widget(&client, json!({"color": "red", "size": "big"})).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        format!(
            "Widget.test.hoist.dev \"w\" is invalid: [spec.size: Invalid value: \"string\": spec.size in body must be of \
             type integer: \"string\", <nil>: {not_checked}]"
        )
    );
    let causes: Vec<(String, String, String)> = status
        .details
        .map(|details| details.causes)
        .unwrap_or_default()
        .into_iter()
        .map(|cause| (cause.field, cause.reason, cause.message))
        .collect();
    assert_eq!(
        causes,
        vec![
            (
                "spec.size".to_owned(),
                "FieldValueTypeInvalid".to_owned(),
                "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".to_owned()
            ),
            (
                "<nil>".to_owned(),
                "FieldValueInvalid".to_owned(),
                not_checked.to_owned()
            ),
        ]
    );

    // A size the schema accepts: the rule runs.
    let status = status_of(create_widget(&client, json!({"color": "red", "size": 11})).await);
    assert_eq!(
        status.message,
        "Widget.test.hoist.dev \"w\" is invalid: spec: Invalid value: \"object\": size must be at most 10"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_fields_of_custom_resources_are_pruned() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![Widget::crd()]).await?;
    let client = server.client();
    let body = json!({
        "apiVersion": "test.hoist.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "red", "size": 1, "extra": true},
    });
    let created: serde_json::Value = raw(
        &client,
        "POST",
        "/apis/test.hoist.dev/v1/namespaces/default/widgets",
        "application/json",
        &body,
    )
    .await?;
    assert_eq!(created["spec"], json!({"color": "red", "size": 1}));
    Ok(())
}
