//! The cluster example (`deploy/examples/shop-cluster`) as a person
//! applies it: file by file, as the user each names, server-side.

use std::collections::BTreeMap;
use std::path::Path;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;

/// One file of the cluster example.
pub struct ExampleFile {
    /// The file's name, e.g. `6-artifact.yaml`.
    pub name: String,
    /// Who applies it: the file's first line, `# Applied by: carol (…)`, or
    /// `None` for `# Applied by: a cluster admin …`.
    pub user: Option<String>,
    pub documents: Vec<serde_json::Value>,
}

/// The cluster example's files, in the order they are applied.
pub fn shop_cluster() -> Vec<ExampleFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/shop-cluster");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("deploy/examples/shop-cluster")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("example file");
            let applier = text
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("# Applied by: "))
                .unwrap_or_else(|| panic!("{} does not start with `# Applied by: `", path.display()));
            let user = (!applier.starts_with("a cluster admin")).then(|| {
                applier
                    .split_whitespace()
                    .next()
                    .expect("a user name")
                    .to_string()
            });
            let documents = serde_yaml::Deserializer::from_str(&text)
                .map(|document| {
                    serde_json::Value::deserialize(document)
                        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
                })
                .collect();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            ExampleFile {
                name,
                user,
                documents,
            }
        })
        .collect()
}

/// Moves a cluster example document into the test's namespaces: `names`
/// maps the example's namespaces to the test's.
pub fn into_namespaces(mut document: serde_json::Value, names: &BTreeMap<&str, String>) -> serde_json::Value {
    let rename = |value: &mut serde_json::Value| {
        if let Some(name) = value.as_str().and_then(|name| names.get(name)) {
            *value = json!(name);
        }
    };
    rename(&mut document["metadata"]["namespace"]);
    match document["kind"].as_str() {
        Some("Namespace") => {
            rename(&mut document["metadata"]["name"]);
            if let Some(tenant) = document["metadata"]["labels"].get_mut("hoist.dev/tenant") {
                rename(tenant);
            }
        }
        Some("Environment") => {
            if let Some(targets) = document["spec"]["targets"].as_array_mut() {
                for target in targets {
                    rename(&mut target["deployment"]["namespace"]);
                }
            }
        }
        _ => {}
    }
    document
}

/// `kubectl apply --server-side` of one document, as `client`'s user.
pub async fn apply_server_side(
    client: &Client,
    document: &serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let object: DynamicObject = serde_json::from_value(document.clone()).expect("an object");
    let types = object.types.clone().expect("apiVersion and kind");
    let gvk = GroupVersionKind::try_from(&types).expect("a group, version and kind");
    let resource = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = match &object.metadata.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut params = PatchParams::apply("kubectl");
    // The test's namespaces exist before the example is applied (the
    // testkit made them, to delete them when the test ends); on a fresh
    // cluster the example creates them and nothing else owns their fields.
    if object.metadata.namespace.is_none() {
        params = params.force();
    }
    api.patch(&object.name_any(), &params, &Patch::Apply(document))
        .await
}
