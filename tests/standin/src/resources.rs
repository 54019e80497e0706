//! The resource types the stand-in serves: the built-ins and those registered
//! by CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::fieldmanager::{BuiltinTypes, TypeInfo};
use crate::schema::{self, FieldError, ListType, MapType, StructuralSchema};
use crate::status::{FieldReason, field_error};

/// Which changes bump `metadata.generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GenerationPolicy {
    /// The resource carries no generation (ConfigMaps, Secrets, Leases...).
    None,
    /// Changes outside `metadata` and `status`.
    Spec,
    /// As `Spec`, and annotation changes too: Deployments copy their
    /// annotations to ReplicaSets, so the real server counts them.
    SpecAndAnnotations,
    /// Changes outside `metadata` (custom resources without a status subresource).
    AllButMetadata,
}

/// One served version of a resource.
pub(crate) struct VersionInfo {
    pub name: String,
    pub schema: Option<Arc<StructuralSchema>>,
    /// Field paths from a CRD version's `selectableFields`, without the
    /// leading dot (`spec.color`).
    pub selectable_fields: Vec<String>,
}

pub(crate) struct ResourceInfo {
    /// Empty for the core group.
    pub group: String,
    /// Served versions; the first is the storage version.
    pub versions: Vec<VersionInfo>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// What a create stores as `status` when the resource has a status
    /// subresource (the typed built-ins reset it to an empty struct).
    pub initial_status: Option<Value>,
    pub generation: GenerationPolicy,
    /// Whether PUT on a missing object creates it (`AllowCreateOnUpdate`).
    pub create_on_update: bool,
    /// Registered by a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceInfo {
    pub fn storage_version(&self) -> &str {
        self.versions
            .first()
            .map_or("v1", |version| version.name.as_str())
    }

    pub fn version(&self, name: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|version| version.name == name)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `plural.group`, or the plural alone for the core group, as errors print it.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn schema(&self) -> Option<&Arc<StructuralSchema>> {
        self.versions.first().and_then(|version| version.schema.as_ref())
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// Identifies a stored resource independently of its version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResourceKey {
    pub group: String,
    pub plural: String,
}

impl ResourceKey {
    pub fn of(group: &str, plural: &str) -> Self {
        ResourceKey {
            group: group.to_owned(),
            plural: plural.to_owned(),
        }
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status_subresource: bool,
    generation: GenerationPolicy,
    create_on_update: bool,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status_subresource: true,
        generation: GenerationPolicy::None,
        create_on_update: false,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: false,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: false,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: false,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status_subresource: true,
        generation: GenerationPolicy::SpecAndAnnotations,
        create_on_update: false,
    },
    Builtin {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        categories: &["all"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        short_names: &["cj"],
        categories: &["all"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        generation: GenerationPolicy::None,
        create_on_update: true,
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingadmissionpolicies",
        singular: "validatingadmissionpolicy",
        kind: "ValidatingAdmissionPolicy",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingadmissionpolicybindings",
        singular: "validatingadmissionpolicybinding",
        kind: "ValidatingAdmissionPolicyBinding",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status_subresource: false,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status_subresource: true,
        generation: GenerationPolicy::Spec,
        create_on_update: false,
    },
];

pub(crate) fn builtins() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|builtin| ResourceInfo {
            group: builtin.group.to_owned(),
            versions: vec![VersionInfo {
                name: builtin.version.to_owned(),
                schema: None,
                selectable_fields: Vec::new(),
            }],
            plural: builtin.plural.to_owned(),
            singular: builtin.singular.to_owned(),
            kind: builtin.kind.to_owned(),
            list_kind: format!("{}List", builtin.kind),
            namespaced: builtin.namespaced,
            short_names: builtin
                .short_names
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            categories: builtin.categories.iter().map(|name| (*name).to_owned()).collect(),
            status_subresource: builtin.status_subresource,
            initial_status: builtin
                .status_subresource
                .then(|| Value::Object(serde_json::Map::new())),
            generation: builtin.generation,
            create_on_update: builtin.create_on_update,
            custom: false,
        })
        .collect()
}

/// A reason the CRD cannot be served, worded like the apiserver's `Invalid`.
fn problem(field: &str, detail: impl Into<String>, value: Option<Value>) -> FieldError {
    field_error(field, FieldReason::Invalid, &detail.into(), value.as_ref())
}

/// Where the server reports problems of a version's schema: a CRD whose
/// versions all have the same schema is stored (internally) with one
/// `spec.validation`, and its errors are reported there.
fn schema_paths(versions: &[Value]) -> Vec<String> {
    let shared = versions
        .windows(2)
        .all(|pair| pair[0].get("schema") == pair[1].get("schema"));
    (0..versions.len())
        .map(|index| {
            if shared {
                "spec.validation.openAPIV3Schema".to_owned()
            } else {
                format!("spec.versions[{index}].schema.openAPIV3Schema")
            }
        })
        .collect()
}

/// Builds the served resource from a CRD object (`apiextensions.k8s.io/v1`).
pub(crate) fn from_crd(crd: &Value) -> Result<ResourceInfo, Vec<FieldError>> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = text(&spec["group"]);
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    let mut problems = Vec::new();
    if group.is_empty() {
        problems.push(problem("spec.group", "Required value", None));
    }
    if plural.is_empty() {
        problems.push(problem("spec.names.plural", "Required value", None));
    }
    if kind.is_empty() {
        problems.push(problem("spec.names.kind", "Required value", None));
    }
    let name = text(&crd["metadata"]["name"]);
    if name != format!("{plural}.{group}") {
        problems.push(problem(
            "metadata.name",
            "must be spec.names.plural+\".\"+spec.group",
            Some(Value::String(name)),
        ));
    }
    let scope = text(&spec["scope"]);
    if scope != "Namespaced" && scope != "Cluster" {
        problems.push(problem(
            "spec.scope",
            "supported values: \"Cluster\", \"Namespaced\"",
            Some(Value::String(scope.clone())),
        ));
    }

    let all_versions: &[Value] = spec["versions"].as_array().map_or(&[], Vec::as_slice);
    let schema_paths = schema_paths(all_versions);
    // The rules of a shared schema are checked (and reported) once.
    let mut rules_refused = Vec::new();
    for (index, version) in all_versions.iter().enumerate() {
        let refused = match version.pointer("/schema/openAPIV3Schema") {
            Some(_) if index > 0 && schema_paths[index] == schema_paths[0] => rules_refused[0],
            Some(openapi) => {
                let errors = schema::check_rules(openapi, &schema_paths[index]).errors;
                let refused = !errors.is_empty();
                problems.extend(errors);
                refused
            }
            None => false,
        };
        rules_refused.push(refused);
    }

    let mut versions = Vec::new();
    let mut storage_count = 0;
    let mut status_subresource = false;
    for (index, version) in all_versions.iter().enumerate() {
        if version["storage"].as_bool() == Some(true) {
            storage_count += 1;
        }
        if version["served"].as_bool() != Some(true) {
            continue;
        }
        let schema = match version.pointer("/schema/openAPIV3Schema") {
            Some(_) if rules_refused[index] => None,
            Some(openapi) => match StructuralSchema::new(openapi) {
                Ok(schema) => Some(Arc::new(schema)),
                Err(error) => {
                    problems.push(problem(&schema_paths[index], error, None));
                    None
                }
            },
            None => None,
        };
        status_subresource |= version.pointer("/subresources/status").is_some();
        let selectable_fields = version["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|field| field["jsonPath"].as_str())
            .map(|path| path.trim_start_matches('.').to_owned())
            .collect();
        let info = VersionInfo {
            name: text(&version["name"]),
            schema,
            selectable_fields,
        };
        if version["storage"].as_bool() == Some(true) {
            versions.insert(0, info);
        } else {
            versions.push(info);
        }
    }
    if storage_count != 1 {
        problems.push(problem(
            "spec.versions",
            "must have exactly one version marked as storage version",
            None,
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let singular = match text(&names["singular"]) {
        singular if singular.is_empty() => kind.to_lowercase(),
        singular => singular,
    };
    let list_kind = match text(&names["listKind"]) {
        list_kind if list_kind.is_empty() => format!("{kind}List"),
        list_kind => list_kind,
    };
    Ok(ResourceInfo {
        group,
        versions,
        plural,
        singular,
        kind,
        list_kind,
        namespaced: scope == "Namespaced",
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        status_subresource,
        initial_status: None,
        generation: if status_subresource {
            GenerationPolicy::Spec
        } else {
            GenerationPolicy::AllButMetadata
        },
        create_on_update: false,
        custom: true,
    })
}

/// [`TypeInfo`] of one resource: the CRD schema for custom resources (except
/// `metadata`, which the schema does not describe), the built-in table otherwise.
pub(crate) struct ResourceTypes<'a> {
    pub schema: Option<&'a StructuralSchema>,
}

impl TypeInfo for ResourceTypes<'_> {
    fn list_type(&self, path: &[&str]) -> ListType {
        match (self.schema, path.first()) {
            (Some(schema), Some(first)) if *first != "metadata" => schema.list_type(path),
            _ => BuiltinTypes.list_type(path),
        }
    }

    fn map_type(&self, path: &[&str]) -> MapType {
        match (self.schema, path.first()) {
            (Some(schema), Some(first)) if *first != "metadata" => schema.map_type(path),
            _ => BuiltinTypes.map_type(path),
        }
    }
}

/// The registry of served resources.
#[derive(Default)]
pub(crate) struct Resources {
    by_key: BTreeMap<ResourceKey, Arc<ResourceInfo>>,
}

impl Resources {
    pub fn with_builtins() -> Self {
        let mut resources = Resources::default();
        for info in builtins() {
            resources.insert(info);
        }
        resources
    }

    pub fn insert(&mut self, info: ResourceInfo) -> Arc<ResourceInfo> {
        let info = Arc::new(info);
        self.by_key.insert(info.key(), Arc::clone(&info));
        info
    }

    pub fn remove(&mut self, key: &ResourceKey) -> Option<Arc<ResourceInfo>> {
        self.by_key.remove(key)
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&Arc<ResourceInfo>> {
        self.by_key.get(key)
    }

    /// The resource served at `group/version` under `plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let key = ResourceKey {
            group: group.to_owned(),
            plural: plural.to_owned(),
        };
        self.by_key
            .get(&key)
            .filter(|info| info.version(version).is_some())
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_key.values()
    }
}
