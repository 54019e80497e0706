//! Discovery documents: `/version`, `/api`, `/apis` and the resource lists,
//! in the legacy form and in the aggregated form (`apidiscovery.k8s.io/v2`)
//! that clients ask for through the `Accept` header.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, Resources};

/// The Kubernetes version the stand-in answers for (matches the k8s-openapi
/// feature the workspace builds with).
const MAJOR: &str = "1";
const MINOR: &str = "33";

pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client accepts aggregated discovery (it lists it first when it does).
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.contains("as=APIGroupDiscoveryList")
}

pub(crate) fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-standin"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Groups other than the core group, each with its served versions.
fn groups(resources: &Resources) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in resources.all().filter(|resource| !resource.group.is_empty()) {
        let versions = groups.entry(resource.group.clone()).or_default();
        for version in &resource.versions {
            if !versions.contains(&version.name) {
                versions.push(version.name.clone());
            }
        }
    }
    groups
}

fn group_document(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| json!({"groupVersion": format!("{name}/{version}"), "version": version}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

pub(crate) fn group_list(resources: &Resources) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .map(|(name, versions)| group_document(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(resources: &Resources, name: &str) -> Option<Value> {
    let groups = groups(resources);
    let versions = groups.get(name)?;
    let mut document = group_document(name, versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

fn served_at<'a>(
    resources: &'a Resources,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a Arc<ResourceInfo>> {
    resources
        .all()
        .filter(move |resource| resource.group == group && resource.version(version).is_some())
}

pub(crate) fn resource_list(resources: &Resources, group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for resource in served_at(resources, group, version) {
        entries.push(json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": resource.verbs(),
            "shortNames": resource.short_names,
            "categories": resource.categories,
        }));
        if resource.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", resource.plural),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if entries.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

fn aggregated_group(resources: &Resources, name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let entries: Vec<Value> = served_at(resources, name, version)
                .map(|resource| {
                    let kind = json!({"group": resource.group, "version": version, "kind": resource.kind});
                    let subresources: Vec<Value> = if resource.status_subresource {
                        vec![json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]})]
                    } else {
                        Vec::new()
                    };
                    json!({
                        "resource": resource.plural,
                        "responseKind": kind,
                        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": resource.singular,
                        "verbs": resource.verbs(),
                        "shortNames": resource.short_names,
                        "categories": resource.categories,
                        "subresources": subresources,
                    })
                })
                .collect();
            json!({"version": version, "resources": entries, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": name}, "versions": versions})
}

/// `/api` (core) or `/apis` (all other groups) in aggregated form.
pub(crate) fn aggregated(resources: &Resources, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(resources, "", &["v1".to_owned()])]
    } else {
        groups(resources)
            .iter()
            .map(|(name, versions)| aggregated_group(resources, name, versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
