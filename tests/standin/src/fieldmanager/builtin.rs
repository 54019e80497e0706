//! Merge types of the built-in kinds Hoist writes or reads, as their
//! OpenAPI schemas declare them (`x-kubernetes-list-type`/`-map-keys`,
//! `x-kubernetes-map-type`).

use super::TypeInfo;
use crate::schema::{ListType, MapType, object_meta_list_type, object_meta_map_type};

/// [`TypeInfo`] for built-in kinds: ObjectMeta, pod specs (in Pods,
/// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs),
/// Service ports, status conditions, ConfigMap and Secret data. Lists not
/// listed here are atomic.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinTypes;

/// Where a pod spec sits: in a Pod, in a workload's template, in a CronJob's
/// job template.
const POD_SPEC_PREFIXES: [&[&str]; 3] = [
    &["spec", "jobTemplate", "spec", "template", "spec"],
    &["spec", "template", "spec"],
    &["spec"],
];

/// Where an ObjectMeta sits: the object's own, and pod and job templates'.
const OBJECT_META_PREFIXES: [&[&str]; 4] = [
    &["metadata"],
    &["spec", "template", "metadata"],
    &["spec", "jobTemplate", "metadata"],
    &["spec", "jobTemplate", "spec", "template", "metadata"],
];

fn strip<'p>(
    path: &'p [&'p str],
    prefixes: &'static [&'static [&'static str]],
) -> impl Iterator<Item = &'p [&'p str]> {
    prefixes
        .iter()
        .filter_map(move |prefix| path.strip_prefix(*prefix))
}

fn keys(names: &[&str]) -> ListType {
    ListType::Map(names.iter().map(|n| (*n).to_owned()).collect())
}

fn is_container_list(name: &str) -> bool {
    matches!(name, "containers" | "initContainers" | "ephemeralContainers")
}

fn pod_spec_list_type(rest: &[&str]) -> Option<ListType> {
    match rest {
        [list] if is_container_list(list) => Some(keys(&["name"])),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => Some(keys(&["name"])),
        ["hostAliases"] => Some(keys(&["ip"])),
        ["topologySpreadConstraints"] => Some(keys(&["topologyKey", "whenUnsatisfiable"])),
        [list, "[]", field] if is_container_list(list) => match *field {
            "env" => Some(keys(&["name"])),
            "ports" => Some(keys(&["containerPort", "protocol"])),
            "volumeMounts" => Some(keys(&["mountPath"])),
            "volumeDevices" => Some(keys(&["devicePath"])),
            _ => None,
        },
        _ => None,
    }
}

impl TypeInfo for BuiltinTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        if let Some(meta) = strip(path, &OBJECT_META_PREFIXES).next() {
            return object_meta_list_type(meta);
        }
        if let Some(found) = strip(path, &POD_SPEC_PREFIXES).find_map(pod_spec_list_type) {
            return found;
        }
        match path {
            ["status", "conditions"] => keys(&["type"]),
            ["spec", "ports"] => keys(&["port", "protocol"]),
            _ => ListType::Atomic,
        }
    }

    fn map_type(&self, path: &[&str]) -> MapType {
        if let Some(meta) = strip(path, &OBJECT_META_PREFIXES).next() {
            return object_meta_map_type(meta);
        }
        match path {
            // LabelSelector is an atomic struct.
            ["spec", "selector"] | ["spec", "jobTemplate", "spec", "selector"] => MapType::Atomic,
            ["data" | "binaryData" | "stringData"] => MapType::Granular,
            _ if path.ends_with(&["nodeSelector"])
                || path.ends_with(&["limits"])
                || path.ends_with(&["requests"]) =>
            {
                MapType::Granular
            }
            _ => MapType::Struct,
        }
    }
}
