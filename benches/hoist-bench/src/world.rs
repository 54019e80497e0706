//! The objects of one benchmark size: tenants of 16 Environments each; every
//! Environment runs its own application in two Deployments (`replicas: 0`,
//! so a rollout completes at once on any cluster, though their images can
//! never be pulled) with a configuration overlay over the tenant's base
//! ConfigMap; ten Artifacts per application (`--promotions-per-environment`).

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use hoist_testkit::registry::PushedImage;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Environments per tenant namespace.
pub const ENVIRONMENTS_PER_TENANT: usize = 16;
/// Artifacts (versions) per application, and Promotions per Environment,
/// unless `--promotions-per-environment` says otherwise.
pub const VERSIONS: usize = 10;
/// What each Environment keeps with `--retention`: Artifacts per
/// application, finished Promotions and history entries.
pub const RETAINED: usize = 3;
/// The `promotionsMinAge` of `--retention`: a finished Promotion beyond
/// those kept goes at the next pass.
pub const RETAINED_MIN_AGE: &str = "1s";
/// Requests in flight while filling the store.
const CONCURRENCY: usize = 16;
/// Group of the copies of the Hoist kinds that bare writes go to: the same
/// schema and validation, but no operator watches them.
pub const BARE_GROUP: &str = "bare.hoist.dev";
/// Field manager of the bench's own writes.
pub const MANAGER: &str = "hoist-bench";

#[derive(Clone)]
pub struct Size {
    pub environments: usize,
    /// Artifacts per application and Promotions per Environment.
    pub versions: usize,
    /// Every Environment keeps [`RETAINED`] of each (`spec.retention`,
    /// `spec.historyLimit`); Artifacts are then created release by
    /// release, each just before its Promotions, as a pipeline publishes
    /// them, since retention deletes old ones nothing runs yet.
    pub retention: bool,
    /// Put before every namespace name (a real cluster's run prefix).
    pub prefix: String,
}

impl Size {
    pub fn tenants(&self) -> usize {
        self.environments.div_ceil(ENVIRONMENTS_PER_TENANT)
    }
    /// Artifacts created over the run.
    pub fn artifacts(&self) -> usize {
        self.environments * self.versions
    }
    /// Promotions created over the run.
    pub fn promotions(&self) -> usize {
        self.environments * self.versions
    }
    /// Artifacts created before the operator starts: all of them, or with
    /// retention those of the first release.
    pub fn artifacts_up_front(&self) -> usize {
        match self.retention {
            true => self.environments,
            false => self.artifacts(),
        }
    }
    /// (tenant namespace, environment name) of environment `index`.
    pub fn environment(&self, index: usize) -> (String, String) {
        (
            format!("{}tenant-{:03}", self.prefix, index / ENVIRONMENTS_PER_TENANT),
            format!("env-{:02}", index % ENVIRONMENTS_PER_TENANT),
        )
    }
    /// The namespace of the bare writes.
    pub fn bare_namespace(&self) -> String {
        format!("{}bare", self.prefix)
    }
}

/// Secrets per namespace of [`unrelated_secrets`].
const SECRETS_PER_NAMESPACE: usize = 100;

/// `count` Secrets of 4 KiB each that no Environment references, in
/// namespaces of their own (`<prefix>unrelated-NNN`, 100 Secrets each):
/// what the operator must not hold in memory for nothing.
pub fn unrelated_secrets(prefix: &str, count: usize) -> Vec<Vec<(String, Value)>> {
    let namespace_of = |index: usize| format!("{prefix}unrelated-{:03}", index / SECRETS_PER_NAMESPACE);
    let namespaces = (0..count.div_ceil(SECRETS_PER_NAMESPACE))
        .map(|index| namespace(&namespace_of(index * SECRETS_PER_NAMESPACE)))
        .collect();
    let payload = "x".repeat(4096);
    let secrets = (0..count)
        .map(|index| {
            (
                namespace_of(index),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("unrelated-{index:05}")},
                       "stringData": {"payload": payload}}),
            )
        })
        .collect();
    vec![namespaces, secrets]
}

/// Objects to create, batch by batch (each batch at once, in order), as
/// `(namespace, object)`.
pub type Batches = Vec<Vec<(String, Value)>>;

/// The objects of [`objects`] for a hub and a workload cluster: the hub
/// holds the tenant namespaces, the Environments (`spec.cluster` naming
/// the workload cluster) and the Artifacts; the workload cluster holds
/// namespaces of the same names, opted in for those tenants
/// (`hoist.dev/tenant`), with the base ConfigMaps and the Deployments.
pub fn split_for_workload(batches: Batches, cluster: &str) -> (Batches, Batches) {
    let mut hub = Vec::new();
    let mut workload = Vec::new();
    for mut batch in batches {
        let kind = batch.first().map(|(_, object)| object["kind"].clone());
        match kind.as_ref().and_then(Value::as_str) {
            Some("Namespace") => {
                hub.push(batch.clone());
                for (_, namespace) in &mut batch {
                    let name = namespace["metadata"]["name"].clone();
                    namespace["metadata"]["labels"]["hoist.dev/tenant"] = name;
                }
                workload.push(batch);
            }
            Some("ConfigMap" | "Deployment" | "Secret") => workload.push(batch),
            Some("Environment") => {
                for (_, environment) in &mut batch {
                    environment["spec"]["cluster"] = json!(cluster);
                }
                hub.push(batch);
            }
            _ => hub.push(batch),
        }
    }
    (hub, workload)
}

/// The application an environment runs (one per environment).
pub fn application(environment: &str) -> String {
    format!("app-{}", environment.trim_start_matches("env-"))
}

/// `version` with as many digits as the last of `versions` has: names
/// then sort as versions do (retention orders objects created in the same
/// second by name).
fn padded(version: usize, versions: usize) -> String {
    let width = versions.saturating_sub(1).max(1).to_string().len();
    format!("{version:0width$}")
}

pub fn artifact_name(environment: &str, version: usize, versions: usize) -> String {
    format!("{}-v{}", application(environment), padded(version, versions))
}

pub fn promotion_name(environment: &str, version: usize, versions: usize) -> String {
    format!("{environment}-v{}", padded(version, versions))
}

pub fn api(client: &Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural);
    Api::all_with(client.clone(), &resource)
}

fn namespaced(
    client: &Client,
    namespace: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let plural = format!("{}s", kind.to_lowercase());
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    if namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// The Promotion and Environment CRDs again, under [`BARE_GROUP`].
pub fn bare_crds(crds: &[CustomResourceDefinition]) -> Vec<CustomResourceDefinition> {
    crds.iter()
        .filter(|crd| matches!(crd.spec.names.kind.as_str(), "Promotion" | "Environment"))
        .map(|crd| {
            let mut bare = crd.clone();
            bare.spec.group = BARE_GROUP.to_owned();
            bare.metadata.name = Some(format!("{}.{BARE_GROUP}", crd.spec.names.plural));
            bare
        })
        .collect()
}

/// Creates every object, `CONCURRENCY` requests at a time.
pub async fn create_all(client: &Client, objects: Vec<(String, Value)>) -> Result<()> {
    futures::stream::iter(objects)
        .map(|(namespace, object)| {
            let client = client.clone();
            async move { create(&client, &namespace, object).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

pub async fn create(client: &Client, namespace: &str, object: Value) -> Result<()> {
    let (group, version) = split_api_version(&object);
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let typed: DynamicObject = serde_json::from_value(object)?;
    namespaced(client, namespace, &group, &version, &kind)
        .create(&PostParams::default(), &typed)
        .await
        .with_context(|| format!("creating {kind} {namespace}/{name}"))?;
    Ok(())
}

/// Server-side applies `object` (or its status) as the bench; answers
/// the object as written.
pub async fn apply(client: &Client, namespace: &str, object: &Value, status: bool) -> Result<DynamicObject> {
    let (group, version) = split_api_version(object);
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api = namespaced(client, namespace, &group, &version, kind);
    let params = PatchParams::apply(MANAGER).force();
    Ok(if status {
        api.patch_status(name, &params, &Patch::Apply(object)).await?
    } else {
        api.patch(name, &params, &Patch::Apply(object)).await?
    })
}

fn split_api_version(object: &Value) -> (String, String) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    match api_version.split_once('/') {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (String::new(), api_version.to_owned()),
    }
}

pub fn namespace(name: &str) -> (String, Value) {
    (
        String::new(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
}

pub fn deployment(name: &str, container: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": container, "image": format!("example.invalid/{name}:latest")},
                    {"name": "sidecar", "image": "example.invalid/sidecar:1"}
                ]}
            }
        }
    })
}

fn environment_spec(namespace: &str, environment: &str, retention: bool) -> Value {
    let application = application(environment);
    let mut spec = json!({
        "targets": [
            {"application": application, "component": "backend",
             "deployment": {"name": format!("{application}-backend"), "namespace": namespace}, "container": "app"},
            {"application": application, "component": "frontend",
             "deployment": {"name": format!("{application}-frontend"), "namespace": namespace}, "container": "web"}
        ],
        "config": [{"application": application, "baseConfigMap": "base",
                    "data": {"STAGE": environment, "FEATURE_FLAGS": "search,checkout", "REPLICA_HINT": "3"}}],
    });
    if retention {
        spec["retention"] = json!({"artifacts": RETAINED, "promotions": RETAINED,
                                   "promotionsMinAge": RETAINED_MIN_AGE});
        spec["historyLimit"] = json!(RETAINED);
    }
    spec
}

/// Every object of `size` but the Promotions (and with retention but the
/// Artifacts after the first release), in creation order: namespaces, base
/// ConfigMaps, Deployments, Environments, Artifacts.
pub fn objects(size: &Size, images: &[[PushedImage; 2]]) -> Vec<Vec<(String, Value)>> {
    let mut namespaces = Vec::new();
    let mut bases = Vec::new();
    for tenant in 0..size.tenants() {
        let (namespace_name, _) = size.environment(tenant * ENVIRONMENTS_PER_TENANT);
        namespaces.push(namespace(&namespace_name));
        bases.push((
            namespace_name,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base"},
                   "data": {"LOG_LEVEL": "info", "REGION": "eu-west-1", "TIMEOUT_SECONDS": "30"}}),
        ));
    }
    let mut deployments = Vec::new();
    let mut environments = Vec::new();
    let mut artifacts = Vec::new();
    for index in 0..size.environments {
        let (namespace, environment) = size.environment(index);
        let application = application(&environment);
        deployments.push((
            namespace.clone(),
            deployment(&format!("{application}-backend"), "app"),
        ));
        deployments.push((
            namespace.clone(),
            deployment(&format!("{application}-frontend"), "web"),
        ));
        environments.push((
            namespace.clone(),
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                   "metadata": {"name": environment},
                   "spec": environment_spec(&namespace, &environment, size.retention)}),
        ));
    }
    let up_front = size.artifacts_up_front() / size.environments.max(1);
    for version in 0..up_front {
        artifacts.extend((0..size.environments).map(|index| release(size, images, version, index)));
    }
    vec![namespaces, bases, deployments, environments, artifacts]
}

/// The Artifact of release `version` of the application of environment `index`.
pub fn release(size: &Size, images: &[[PushedImage; 2]], version: usize, index: usize) -> (String, Value) {
    let [backend, frontend] = &images[version];
    let (namespace, environment) = size.environment(index);
    let artifact = artifact(&environment, (version, size.versions), backend, frontend);
    (namespace, artifact)
}

/// Release `version` of `versions` of the application of `environment`.
pub fn artifact(
    environment: &str,
    (version, versions): (usize, usize),
    backend: &PushedImage,
    frontend: &PushedImage,
) -> Value {
    json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
    "metadata": {"name": artifact_name(environment, version, versions)},
    "spec": {
        "application": application(environment), "version": format!("1.0.{version}"),
        "images": [{"component": "backend", "image": backend.reference},
                   {"component": "frontend", "image": frontend.reference}],
        "source": {"repository": "https://git.example.com/shop",
                   "revision": format!("{version:040x}")}
    }})
}

/// A Promotion as `kubectl hoist promote` makes it: `requestedBy` names the
/// user the API server authenticates for the bench, as the chart's
/// `hoist-approvals` policy requires.
pub fn promotion(
    group: &str,
    environment: &str,
    (version, versions): (usize, usize),
    requested_by: &str,
) -> Value {
    json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "Promotion",
           "metadata": {"name": promotion_name(environment, version, versions)},
           "spec": {"artifact": artifact_name(environment, version, versions), "environment": environment,
                    "reason": "benchmark", "requestedBy": requested_by}})
}

/// The bare namespace: `environments` Environments of the bare group and
/// their Deployments.
pub fn bare_objects(namespace_name: &str, environments: usize) -> Vec<Vec<(String, Value)>> {
    let mut deployments = Vec::new();
    let mut bare = Vec::new();
    for index in 0..environments {
        let environment = format!("env-{index:02}");
        let application = application(&environment);
        deployments.push((
            namespace_name.to_owned(),
            deployment(&format!("{application}-backend"), "app"),
        ));
        deployments.push((
            namespace_name.to_owned(),
            deployment(&format!("{application}-frontend"), "web"),
        ));
        bare.push((
            namespace_name.to_owned(),
            json!({"apiVersion": format!("{BARE_GROUP}/v1alpha1"), "kind": "Environment",
                   "metadata": {"name": environment},
                   "spec": environment_spec(namespace_name, &environment, false)}),
        ));
    }
    vec![vec![namespace(namespace_name)], deployments, bare]
}

/// What a perfect operator writes to pin one Deployment: the operator's own
/// pin (image, artifact and config-hash annotations, two labels), with
/// labels no Hoist watch selects.
pub fn bare_pin(
    namespace: &str,
    name: &str,
    container: &str,
    image: &str,
    artifact: &str,
    hash: &str,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"bench.hoist.dev/environment": "env", "bench.hoist.dev/tenant": namespace}},
        "spec": {"template": {
            "metadata": {"annotations": {"hoist.dev/artifact": artifact, "hoist.dev/config-hash": hash}},
            "spec": {"containers": [{"name": container, "image": image}]},
        }},
    })
}
