//! Authorization: the privileged-group authorizer (`system:masters` may do
//! anything) and the RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`),
//! over the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the
//! store, with the default ClusterRoles and bindings clients rely on; the
//! 403 answer worded as `responsewriters.Forbidden` words it; and the
//! validation and defaults of the four RBAC kinds (`pkg/apis/rbac/validation`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::auth::{MASTERS, UserInfo, split_service_account};
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue, go_quote};
use crate::status::ApiError;

pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";
pub(crate) const ROLES: &str = "roles";
pub(crate) const CLUSTER_ROLES: &str = "clusterroles";
pub(crate) const ROLE_BINDINGS: &str = "rolebindings";
pub(crate) const CLUSTER_ROLE_BINDINGS: &str = "clusterrolebindings";

/// What a request asks to do: a verb on a resource, or on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Resource {
        group: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    Path(String),
}

/// `authorizer.Attributes`: who asks to do what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attributes<'a> {
    pub user: &'a UserInfo,
    pub verb: String,
    pub target: Target,
}

impl<'a> Attributes<'a> {
    pub fn resource(
        user: &'a UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        Attributes {
            user,
            verb: verb.to_owned(),
            target: Target::Resource {
                group: group.to_owned(),
                resource: resource.to_owned(),
                subresource: subresource.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
        }
    }

    pub fn path(user: &'a UserInfo, verb: &str, path: &str) -> Self {
        Attributes {
            user,
            verb: verb.to_owned(),
            target: Target::Path(path.to_owned()),
        }
    }
}

/// The authorizers' answer: allowed or not, and why (the RBAC authorizer
/// names the binding that allowed, or the roles it could not find).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

impl Rule {
    fn from_json(rule: &Value) -> Rule {
        Rule {
            verbs: strings(&rule["verbs"]),
            api_groups: strings(&rule["apiGroups"]),
            resources: strings(&rule["resources"]),
            resource_names: strings(&rule["resourceNames"]),
            non_resource_urls: strings(&rule["nonResourceURLs"]),
        }
    }

    /// `RuleAllows`, with rbacv1helpers' matchers.
    fn allows(&self, attributes: &Attributes<'_>) -> bool {
        let verb = self
            .verbs
            .iter()
            .any(|verb| verb == "*" || *verb == attributes.verb);
        if !verb {
            return false;
        }
        match &attributes.target {
            Target::Resource {
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                let combined = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                let group_matches = self.api_groups.iter().any(|rule| rule == "*" || rule == group);
                let resource_matches = self.resources.iter().any(|rule| {
                    rule == "*"
                        || *rule == combined
                        || (!subresource.is_empty() && rule.strip_prefix("*/") == Some(subresource.as_str()))
                });
                let name_matches =
                    self.resource_names.is_empty() || self.resource_names.iter().any(|rule| rule == name);
                group_matches && resource_matches && name_matches
            }
            Target::Path(path) => self.non_resource_urls.iter().any(|rule| {
                rule == "*"
                    || rule == path
                    || rule
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// `appliesToUser`: a ServiceAccount subject without a namespace means
    /// the binding's own.
    fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                !namespace.is_empty()
                    && split_service_account(&user.name) == Some((namespace, self.name.as_str()))
            }
            _ => false,
        }
    }

    /// `describeSubject`, for the reason of an allowed request.
    fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                format!(
                    "{} {}",
                    self.kind,
                    go_quote(&format!("{}/{namespace}", self.name))
                )
            }
            _ => format!("{} {}", self.kind, go_quote(&self.name)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(binding: &Value) -> Binding {
        Binding {
            name: crate::meta::name(binding).to_owned(),
            namespace: crate::meta::namespace(binding).to_owned(),
            role_kind: binding["roleRef"]["kind"].as_str().unwrap_or_default().to_owned(),
            role_name: binding["roleRef"]["name"].as_str().unwrap_or_default().to_owned(),
            subjects: binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|subject| Subject {
                    kind: subject["kind"].as_str().unwrap_or_default().to_owned(),
                    name: subject["name"].as_str().unwrap_or_default().to_owned(),
                    namespace: subject["namespace"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
        }
    }

    /// The clusterRoleBindingDescriber / roleBindingDescriber text.
    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {}",
                go_quote(&self.name),
                self.role_kind,
                go_quote(&self.role_name),
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {}",
                go_quote(&format!("{}/{}", self.name, self.namespace)),
                self.role_kind,
                go_quote(&self.role_name),
                subject.describe(&self.namespace)
            )
        }
    }
}

/// The RBAC objects, indexed for authorization; rebuilt by the store
/// whenever one of them changes.
#[derive(Debug, Default)]
pub(crate) struct RbacIndex {
    cluster_roles: BTreeMap<String, Vec<Rule>>,
    roles: BTreeMap<(String, String), Vec<Rule>>,
    cluster_role_bindings: Vec<Binding>,
    role_bindings: BTreeMap<String, Vec<Binding>>,
}

fn rules_of(role: &Value) -> Vec<Rule> {
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Rule::from_json)
        .collect()
}

impl RbacIndex {
    /// Indexes the stored objects of the four kinds (each sorted by key).
    pub fn new<'v>(
        cluster_roles: impl Iterator<Item = &'v Value>,
        roles: impl Iterator<Item = &'v Value>,
        cluster_role_bindings: impl Iterator<Item = &'v Value>,
        role_bindings: impl Iterator<Item = &'v Value>,
    ) -> Arc<Self> {
        let mut index = RbacIndex {
            cluster_roles: cluster_roles
                .map(|role| (crate::meta::name(role).to_owned(), rules_of(role)))
                .collect(),
            roles: roles
                .map(|role| {
                    let key = (
                        crate::meta::namespace(role).to_owned(),
                        crate::meta::name(role).to_owned(),
                    );
                    (key, rules_of(role))
                })
                .collect(),
            cluster_role_bindings: cluster_role_bindings.map(Binding::from_json).collect(),
            role_bindings: BTreeMap::new(),
        };
        for binding in role_bindings.map(Binding::from_json) {
            index
                .role_bindings
                .entry(binding.namespace.clone())
                .or_default()
                .push(binding);
        }
        Arc::new(index)
    }

    /// The rules a binding grants, or the listers' NotFound error.
    fn role_rules(&self, binding: &Binding) -> Result<&[Rule], String> {
        let found = match binding.role_kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&binding.role_name),
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_name.clone())),
            _ => None,
        };
        found.map(Vec::as_slice).ok_or_else(|| {
            format!(
                "{}.{GROUP} {} not found",
                binding.role_kind.to_lowercase(),
                go_quote(&binding.role_name)
            )
        })
    }

    /// The privileged-group authorizer, then RBAC: ClusterRoleBindings,
    /// then the RoleBindings of the request's namespace, the first rule
    /// that allows deciding.
    pub fn authorize(&self, attributes: &Attributes<'_>) -> Decision {
        if attributes.user.groups.iter().any(|group| group == MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let namespace = match &attributes.target {
            Target::Resource { namespace, .. } => namespace.as_str(),
            Target::Path(_) => "",
        };
        let namespaced = if namespace.is_empty() {
            &[][..]
        } else {
            self.role_bindings.get(namespace).map_or(&[][..], Vec::as_slice)
        };
        let mut errors: Vec<String> = Vec::new();
        for binding in self.cluster_role_bindings.iter().chain(namespaced) {
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|subject| subject.applies_to(attributes.user, &binding.namespace))
            else {
                continue;
            };
            match self.role_rules(binding) {
                Ok(rules) => {
                    if rules.iter().any(|rule| rule.allows(attributes)) {
                        return Decision {
                            allowed: true,
                            reason: format!("RBAC: allowed by {}", binding.describe(subject)),
                        };
                    }
                }
                Err(error) => {
                    if !errors.contains(&error) {
                        errors.push(error);
                    }
                }
            }
        }
        let reason = match errors.as_slice() {
            [] => String::new(),
            [single] => format!("RBAC: {single}"),
            several => format!("RBAC: [{}]", several.join(", ")),
        };
        Decision {
            allowed: false,
            reason,
        }
    }
}

/// `forbiddenMessage`: who may not do what.
fn forbidden_message(attributes: &Attributes<'_>) -> String {
    let user = go_quote(&attributes.user.name);
    let verb = &attributes.verb;
    match &attributes.target {
        Target::Path(path) => format!("User {user} cannot {verb} path {}", go_quote(path)),
        Target::Resource {
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", go_quote(namespace))
            };
            format!(
                "User {user} cannot {verb} resource {} in API group {} {scope}",
                go_quote(&resource),
                go_quote(group)
            )
        }
    }
}

/// The 403 `responsewriters.Forbidden` answers: `apierrors.NewForbidden`
/// of the request's resource and name, with the authorizer's reason.
pub(crate) fn forbidden(attributes: &Attributes<'_>, reason: &str) -> ApiError {
    let mut message = forbidden_message(attributes);
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let (group, resource, name) = match &attributes.target {
        Target::Resource {
            group,
            resource,
            name,
            ..
        } => (group.as_str(), resource.as_str(), name.as_str()),
        Target::Path(_) => ("", "", ""),
    };
    let mut details = json!({});
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if !resource.is_empty() {
        details["kind"] = json!(resource);
    }
    let qualified = if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    let text = if qualified.is_empty() {
        format!("forbidden: {message}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {message}")
    } else {
        format!("{qualified} {} is forbidden: {message}", go_quote(name))
    };
    ApiError::new(403, "Forbidden", text).with_details(details)
}

/// The bootstrap ClusterRoles and ClusterRoleBindings of kube-apiserver
/// (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`) that clients rely on:
/// `(resource, object)` pairs to store at start.
pub(crate) fn bootstrap() -> Vec<(&'static str, Value)> {
    let metadata = |name: &str| {
        json!({
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        })
    };
    let cluster_role = |name: &str, rules: Value| {
        json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "ClusterRole",
            "metadata": metadata(name),
            "rules": rules,
        })
    };
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|group| json!({"apiGroup": GROUP, "kind": "Group", "name": group}))
            .collect();
        json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "ClusterRoleBinding",
            "metadata": metadata(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        })
    };
    vec![
        (
            CLUSTER_ROLES,
            cluster_role(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ]),
            ),
        ),
        (
            CLUSTER_ROLES,
            cluster_role(
                "system:discovery",
                json!([{
                    "nonResourceURLs": [
                        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                        "/openapi/*", "/readyz", "/version", "/version/",
                    ],
                    "verbs": ["get"],
                }]),
            ),
        ),
        (
            CLUSTER_ROLES,
            cluster_role(
                "system:public-info-viewer",
                json!([{
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"],
                }]),
            ),
        ),
        (
            CLUSTER_ROLES,
            cluster_role(
                "system:basic-user",
                json!([
                    {
                        "apiGroups": ["authorization.k8s.io"],
                        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        "verbs": ["create"],
                    },
                    {
                        "apiGroups": ["authentication.k8s.io"],
                        "resources": ["selfsubjectreviews"],
                        "verbs": ["create"],
                    },
                ]),
            ),
        ),
        (CLUSTER_ROLE_BINDINGS, binding("cluster-admin", &[MASTERS])),
        (
            CLUSTER_ROLE_BINDINGS,
            binding("system:discovery", &["system:authenticated"]),
        ),
        (
            CLUSTER_ROLE_BINDINGS,
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ),
        (
            CLUSTER_ROLE_BINDINGS,
            binding("system:basic-user", &["system:authenticated"]),
        ),
    ]
}

/// `SetDefaults_Subject`: User and Group subjects are in the RBAC API group.
pub(crate) fn apply_defaults(plural: &str, object: &mut Value) {
    if plural != ROLE_BINDINGS && plural != CLUSTER_ROLE_BINDINGS {
        return;
    }
    for subject in object["subjects"].as_array_mut().into_iter().flatten() {
        let kind = subject["kind"].as_str().unwrap_or_default();
        if (kind == "User" || kind == "Group")
            && subject["apiGroup"].as_str().is_none_or(str::is_empty)
            && let Some(map) = subject.as_object_mut()
        {
            map.insert("apiGroup".to_owned(), json!(GROUP));
        }
    }
}

fn string_list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// `ValidatePolicyRule` for each of a role's rules.
fn validate_rules(object: &Value, namespaced: bool, errors: &mut Vec<FieldError>) {
    for (index, rule) in object["rules"].as_array().into_iter().flatten().enumerate() {
        let path = format!("rules[{index}]");
        let parsed = Rule::from_json(rule);
        if parsed.verbs.is_empty() {
            errors.push(field::required(
                &format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if !parsed.non_resource_urls.is_empty() {
            let urls = Value::Array(string_list(&rule["nonResourceURLs"]));
            if namespaced {
                errors.push(field::invalid(
                    &format!("{path}.nonResourceURLs"),
                    BadValue::Json(&urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !parsed.api_groups.is_empty()
                || !parsed.resources.is_empty()
                || !parsed.resource_names.is_empty()
            {
                errors.push(field::invalid(
                    &format!("{path}.nonResourceURLs"),
                    BadValue::Json(&urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if parsed.api_groups.is_empty() {
            errors.push(field::required(
                &format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if parsed.resources.is_empty() {
            errors.push(field::required(
                &format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

/// `ValidateRoleBindingSubject` for each subject.
fn validate_subjects(object: &Value, namespaced: bool, errors: &mut Vec<FieldError>) {
    for (index, subject) in object["subjects"].as_array().into_iter().flatten().enumerate() {
        let path = format!("subjects[{index}]");
        let name = subject["name"].as_str().unwrap_or_default();
        let api_group = subject["apiGroup"].as_str().unwrap_or_default();
        if name.is_empty() {
            errors.push(field::required(&format!("{path}.name"), ""));
        }
        match subject["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                if !name.is_empty() && !crate::meta::is_dns_subdomain(name) {
                    errors.push(field::invalid(
                        &format!("{path}.name"),
                        BadValue::Str(name),
                        crate::meta::DNS_SUBDOMAIN_MESSAGE,
                    ));
                }
                if !api_group.is_empty() {
                    errors.push(field::not_supported(
                        &format!("{path}.apiGroup"),
                        BadValue::Str(api_group),
                        &[String::new()],
                    ));
                }
                if !namespaced && subject["namespace"].as_str().is_none_or(str::is_empty) {
                    errors.push(field::required(&format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if api_group != GROUP {
                    errors.push(field::not_supported(
                        &format!("{path}.apiGroup"),
                        BadValue::Str(api_group),
                        &[GROUP.to_owned()],
                    ));
                }
            }
            other => errors.push(field::not_supported(
                &format!("{path}.kind"),
                BadValue::Str(other),
                &["ServiceAccount".to_owned(), "User".to_owned(), "Group".to_owned()],
            )),
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`'s `roleRef` checks.
fn validate_role_ref(object: &Value, old: Option<&Value>, namespaced: bool, errors: &mut Vec<FieldError>) {
    let role_ref = &object["roleRef"];
    let api_group = role_ref["apiGroup"].as_str().unwrap_or_default();
    if api_group != GROUP {
        errors.push(field::not_supported(
            "roleRef.apiGroup",
            BadValue::Str(api_group),
            &[GROUP.to_owned()],
        ));
    }
    let kind = role_ref["kind"].as_str().unwrap_or_default();
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        let supported: Vec<String> = kinds.iter().map(|kind| (*kind).to_owned()).collect();
        errors.push(field::not_supported(
            "roleRef.kind",
            BadValue::Str(kind),
            &supported,
        ));
    }
    let name = role_ref["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        errors.push(field::required("roleRef.name", ""));
    } else {
        for problem in crate::meta::path_segment_problems(name) {
            errors.push(field::invalid("roleRef.name", BadValue::Str(name), &problem));
        }
    }
    if let Some(old) = old
        && old["roleRef"] != object["roleRef"]
    {
        errors.push(field::invalid(
            "roleRef",
            BadValue::Json(role_ref),
            "cannot change roleRef",
        ));
    }
}

/// The field errors of an RBAC object of resource `plural`.
pub(crate) fn validate(plural: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match plural {
        ROLES => validate_rules(object, true, &mut errors),
        CLUSTER_ROLES => validate_rules(object, false, &mut errors),
        ROLE_BINDINGS | CLUSTER_ROLE_BINDINGS => {
            let namespaced = plural == ROLE_BINDINGS;
            validate_role_ref(object, old, namespaced, &mut errors);
            validate_subjects(object, namespaced, &mut errors);
        }
        _ => {}
    }
    errors
}

/// Whether `group`/`plural` is one of the four RBAC kinds.
pub(crate) fn is_rbac_resource(group: &str, plural: &str) -> bool {
    group == GROUP
        && matches!(
            plural,
            ROLES | CLUSTER_ROLES | ROLE_BINDINGS | CLUSTER_ROLE_BINDINGS
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.to_owned(),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            ..UserInfo::default()
        }
    }

    fn rule(text: Value) -> Rule {
        Rule::from_json(&text)
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names_like_rbac() {
        let alice = user("alice", &[]);
        let attributes = |verb: &str, resource: &str, subresource: &str, name: &str| {
            Attributes::resource(&alice, verb, "hoist.dev", resource, subresource, "shop", name)
        };
        let promotions = rule(
            json!({"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "approve"]}),
        );
        assert!(promotions.allows(&attributes("get", "promotions", "", "x")));
        assert!(promotions.allows(&attributes("approve", "promotions", "", "x")));
        assert!(!promotions.allows(&attributes("patch", "promotions", "", "x")));
        assert!(!promotions.allows(&attributes("get", "promotions", "status", "x")));
        let any_status = rule(json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}));
        assert!(any_status.allows(&attributes("patch", "promotions", "status", "x")));
        assert!(!any_status.allows(&attributes("patch", "promotions", "", "x")));
        let named = rule(
            json!({"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]}),
        );
        assert!(named.allows(&attributes("approve", "environments", "", "prod")));
        assert!(!named.allows(&attributes("approve", "environments", "", "dev")));
        assert!(!named.allows(&attributes("approve", "environments", "", "")));
        let paths = rule(json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
        assert!(paths.allows(&Attributes::path(&alice, "get", "/apis/apps/v1")));
        assert!(paths.allows(&Attributes::path(&alice, "get", "/version")));
        assert!(!paths.allows(&Attributes::path(&alice, "get", "/version/x")));
        assert!(!paths.allows(&attributes("get", "promotions", "", "x")));
    }

    #[test]
    fn forbidden_messages_are_worded_like_the_server() {
        let alice = user("alice", &[]);
        let namespaced = Attributes::resource(&alice, "patch", "hoist.dev", "promotions", "", "shop", "x");
        assert_eq!(
            forbidden(&namespaced, "").message,
            "promotions.hoist.dev \"x\" is forbidden: User \"alice\" cannot patch resource \"promotions\" in API group \"hoist.dev\" in the namespace \"shop\""
        );
        let list = Attributes::resource(&alice, "list", "", "namespaces", "", "", "");
        assert_eq!(
            forbidden(&list, "").message,
            "namespaces is forbidden: User \"alice\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        let status = Attributes::resource(&alice, "update", "apps", "deployments", "status", "shop", "web");
        let error = forbidden(&status, "RBAC: role.rbac.authorization.k8s.io \"gone\" not found");
        assert_eq!(
            error.message,
            "deployments.apps \"web\" is forbidden: User \"alice\" cannot update resource \"deployments/status\" in API group \"apps\" in the namespace \"shop\": RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
        );
        assert_eq!(
            error.details,
            Some(json!({"name": "web", "group": "apps", "kind": "deployments"}))
        );
        let path = Attributes::path(&alice, "get", "/metrics");
        assert_eq!(
            forbidden(&path, "").message,
            "forbidden: User \"alice\" cannot get path \"/metrics\""
        );
    }
}
