//! Fixtures shared by the scenarios: a small custom resource and helpers.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::CustomResource;
use kube::core::Status;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The test custom resource: namespaced, with a status subresource, a short
/// name, a category and a selectable field.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "test.hoist.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    category = "hoist",
    selectable = ".spec.color"
)]
pub struct WidgetSpec {
    pub color: String,
    pub size: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WidgetStatus {
    pub ready: bool,
}

pub fn widget(name: &str, color: &str, size: i32) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            color: color.to_owned(),
            size,
        },
    )
}

pub fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

pub fn deployment(name: &str, image: &str) -> Deployment {
    let selector = labels(&[("app", name)]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".to_owned(),
                        image: Some(image.to_owned()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The `Status` of a failed call; panics (failing the test) on success or
/// on a non-API error.
pub fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn resource_version<K: kube::Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// Sends a request the typed API cannot express (e.g. a JSON patch with the
/// workspace's json-patch version) and decodes the answer.
pub async fn raw<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &serde_json::Value,
) -> Result<T, kube::Error> {
    let request = hyper::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).map_err(kube::Error::SerdeError)?)
        .map_err(kube::Error::HttpError)?;
    client.request(request).await
}

/// What a raw request answered: the code, the JSON body (`null` if none)
/// and the `Warning` headers.
pub struct Answer {
    pub code: u16,
    pub body: serde_json::Value,
    pub warnings: Vec<String>,
}

/// Sends a request with extra headers (e.g. `Impersonate-Group` without a
/// user, which kube's configuration cannot express) and reads the answer
/// whatever its code.
pub async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Answer {
    use http_body_util::BodyExt;
    let mut request = hyper::http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let bytes = body
        .map(|body| serde_json::to_vec(body).expect("json"))
        .unwrap_or_default();
    let response = client
        .send(request.body(kube::client::Body::from(bytes)).expect("request"))
        .await
        .expect("an answer");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|value| value.to_str().expect("text").to_owned())
        .collect();
    let collected = response.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&collected).unwrap_or(serde_json::Value::Null);
    Answer { code, body, warnings }
}

/// Creates a namespaced object given as JSON, through the typed API (so the
/// JSON is what a typed client sends).
pub async fn create_in<K>(client: &kube::Client, namespace: &str, object: serde_json::Value) -> K
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("a valid object");
    kube::Api::namespaced(client.clone(), namespace)
        .create(&kube::api::PostParams::default(), &object)
        .await
        .expect("created")
}

/// [`create_in`] for a cluster-scoped object.
pub async fn create_cluster<K>(client: &kube::Client, object: serde_json::Value) -> K
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("a valid object");
    kube::Api::all(client.clone())
        .create(&kube::api::PostParams::default(), &object)
        .await
        .expect("created")
}
