//! Which requests a policy or binding applies to, as
//! `k8s.io/apiserver/pkg/admission/plugin/policy/matching` decides it with
//! the namespace and object selector matchers and the rule matcher of
//! `webhook/predicates/rules`; and the validation of `matchConstraints` /
//! `matchResources` (`validateMatchResources`).

use serde_json::Value;

use super::{Operation, Request};
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::selector::LabelSelector;
use crate::status::ApiError;

const OPERATIONS: [&str; 5] = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: [&str; 3] = ["*", "Cluster", "Namespaced"];
const MATCH_POLICIES: [&str; 2] = ["Equivalent", "Exact"];

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn supported(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// A `NamedRuleWithOperations`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    operations: Vec<String>,
    resources: Vec<String>,
    scope: String,
    resource_names: Vec<String>,
}

fn has_wildcard(values: &[String]) -> bool {
    values.iter().any(|value| value == "*")
}

/// `validateResources`, which allows subresources.
fn validate_resources(resources: &[String], path: &str, errors: &mut Vec<FieldError>) {
    if resources.is_empty() {
        errors.push(field::required(path, ""));
    }
    let mut wildcard_subresources_of: Vec<&str> = Vec::new();
    let mut wildcard_resources_for: Vec<&str> = Vec::new();
    let mut double_wildcard = false;
    let mut single_wildcard = false;
    let mut without_subresource = false;
    for (index, entry) in resources.iter().enumerate() {
        if entry.is_empty() {
            errors.push(field::required(&format!("{path}[{index}]"), ""));
            continue;
        }
        double_wildcard |= entry == "*/*";
        single_wildcard |= entry == "*";
        let Some((resource, subresource)) = entry.split_once('/') else {
            without_subresource = entry != "*";
            continue;
        };
        if wildcard_subresources_of.contains(&resource) {
            errors.push(field::invalid(
                &format!("{path}[{index}]"),
                BadValue::Str(entry),
                &format!("if '{resource}/*' is present, must not specify {entry}"),
            ));
        }
        if wildcard_resources_for.contains(&subresource) {
            errors.push(field::invalid(
                &format!("{path}[{index}]"),
                BadValue::Str(entry),
                &format!("if '*/{subresource}' is present, must not specify {entry}"),
            ));
        }
        if subresource == "*" {
            wildcard_subresources_of.push(resource);
        }
        if resource == "*" {
            wildcard_resources_for.push(subresource);
        }
    }
    let listed = Value::from(resources.to_vec());
    if resources.len() > 1 && double_wildcard {
        errors.push(field::invalid(
            path,
            BadValue::Json(&listed),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && without_subresource {
        errors.push(field::invalid(
            path,
            BadValue::Json(&listed),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
}

impl Rule {
    /// Parses and validates (`validateNamedRuleWithOperations`) one rule.
    fn parse(rule: &Value, path: &str, errors: &mut Vec<FieldError>) -> Rule {
        let parsed = Rule {
            api_groups: strings(&rule["apiGroups"]),
            api_versions: strings(&rule["apiVersions"]),
            operations: strings(&rule["operations"]),
            resources: strings(&rule["resources"]),
            scope: rule["scope"].as_str().unwrap_or("*").to_owned(),
            resource_names: strings(&rule["resourceNames"]),
        };
        for (index, name) in parsed.resource_names.iter().enumerate() {
            for problem in crate::meta::path_segment_problems(name) {
                errors.push(field::invalid(
                    &format!("{path}.resourceNames[{index}]"),
                    BadValue::Str(name),
                    &problem,
                ));
            }
            if parsed.resource_names[..index].contains(name) {
                errors.push(field::duplicate(
                    &format!("{path}.resourceNames[{index}]"),
                    BadValue::Str(name),
                ));
            }
        }
        if parsed.operations.is_empty() {
            errors.push(field::required(&format!("{path}.operations"), ""));
        }
        if parsed.operations.len() > 1 && has_wildcard(&parsed.operations) {
            errors.push(field::invalid(
                &format!("{path}.operations"),
                BadValue::Json(&rule["operations"]),
                "if '*' is present, must not specify other operations",
            ));
        }
        for (index, operation) in parsed.operations.iter().enumerate() {
            if !OPERATIONS.contains(&operation.as_str()) {
                errors.push(field::not_supported(
                    &format!("{path}.operations[{index}]"),
                    BadValue::Str(operation),
                    &supported(&OPERATIONS),
                ));
            }
        }
        if parsed.api_groups.is_empty() {
            errors.push(field::required(&format!("{path}.apiGroups"), ""));
        }
        if parsed.api_groups.len() > 1 && has_wildcard(&parsed.api_groups) {
            errors.push(field::invalid(
                &format!("{path}.apiGroups"),
                BadValue::Json(&rule["apiGroups"]),
                "if '*' is present, must not specify other API groups",
            ));
        }
        if parsed.api_versions.is_empty() {
            errors.push(field::required(&format!("{path}.apiVersions"), ""));
        }
        if parsed.api_versions.len() > 1 && has_wildcard(&parsed.api_versions) {
            errors.push(field::invalid(
                &format!("{path}.apiVersions"),
                BadValue::Json(&rule["apiVersions"]),
                "if '*' is present, must not specify other API versions",
            ));
        }
        for (index, version) in parsed.api_versions.iter().enumerate() {
            if version.is_empty() {
                errors.push(field::required(&format!("{path}.apiVersions[{index}]"), ""));
            }
        }
        validate_resources(&parsed.resources, &format!("{path}.resources"), errors);
        if !SCOPES.contains(&parsed.scope.as_str()) {
            errors.push(field::not_supported(
                &format!("{path}.scope"),
                BadValue::Str(&parsed.scope),
                &supported(&SCOPES),
            ));
        }
        parsed
    }

    /// `rules.Matcher.Matches` for the request seen in `version`, then the
    /// rule's `resourceNames`.
    fn matches(&self, request: &Request<'_>, version: &str) -> bool {
        let exact_or_wildcard =
            |items: &[String], wanted: &str| items.iter().any(|item| item == "*" || item == wanted);
        let is_namespace = request.resource.group.is_empty() && request.resource.plural == "namespaces";
        let scope = match self.scope.as_str() {
            "Namespaced" => !is_namespace && !request.namespace.is_empty(),
            "Cluster" => is_namespace || request.namespace.is_empty(),
            _ => true,
        };
        let operation = self
            .operations
            .iter()
            .any(|operation| operation == "*" || operation == request.operation.as_str());
        let resource = self.resources.iter().any(|entry| {
            let (resource, subresource) = entry.split_once('/').unwrap_or((entry, ""));
            (resource == "*" || resource == request.resource.plural)
                && (subresource == "*" || subresource == request.subresource)
        });
        let name =
            self.resource_names.is_empty() || self.resource_names.iter().any(|name| *name == request.name);
        scope
            && operation
            && exact_or_wildcard(&self.api_groups, &request.resource.group)
            && exact_or_wildcard(&self.api_versions, version)
            && resource
            && name
    }
}

/// `matchConstraints` of a policy, or `matchResources` of a binding.
#[derive(Debug, Clone)]
pub(super) struct MatchResources {
    namespace_selector: LabelSelector,
    object_selector: LabelSelector,
    resource_rules: Vec<Rule>,
    exclude_resource_rules: Vec<Rule>,
    equivalent: bool,
}

impl MatchResources {
    /// Parses `value` (defaulted), adding `validateMatchResources`' errors
    /// at `path`.
    pub fn parse(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> MatchResources {
        let match_policy = value["matchPolicy"].as_str().unwrap_or_default();
        if !MATCH_POLICIES.contains(&match_policy) {
            errors.push(field::not_supported(
                &format!("{path}.matchPolicy"),
                BadValue::Str(match_policy),
                &supported(&MATCH_POLICIES),
            ));
        }
        let mut selector = |name: &str| {
            let at = format!("{path}.{name}");
            if value[name].is_null() {
                errors.push(field::required(&at, ""));
                return LabelSelector::default();
            }
            LabelSelector::from_structured(&value[name], &at).unwrap_or_else(|problems| {
                errors.extend(problems);
                LabelSelector::default()
            })
        };
        let namespace_selector = selector("namespaceSelector");
        let object_selector = selector("objectSelector");
        let mut rules = |name: &str| -> Vec<Rule> {
            value[name]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(index, rule)| Rule::parse(rule, &format!("{path}.{name}[{index}]"), errors))
                .collect()
        };
        let resource_rules = rules("resourceRules");
        let exclude_resource_rules = rules("excludeResourceRules");
        MatchResources {
            namespace_selector,
            object_selector,
            resource_rules,
            exclude_resource_rules,
            equivalent: match_policy == "Equivalent",
        }
    }

    pub fn has_resource_rules(&self) -> bool {
        !self.resource_rules.is_empty()
    }

    /// `matchesResourceRules`: the version the request matched in (its own,
    /// or with `matchPolicy: Equivalent` another served version of the
    /// resource), if any.
    fn matching_version(rules: &[Rule], equivalent: bool, request: &Request<'_>) -> Option<String> {
        if rules.iter().any(|rule| rule.matches(request, request.version)) {
            return Some(request.version.to_owned());
        }
        if !equivalent {
            return None;
        }
        request
            .resource
            .versions
            .iter()
            .map(|version| version.name.as_str())
            .filter(|version| *version != request.version)
            .find(|version| rules.iter().any(|rule| rule.matches(request, version)))
            .map(str::to_owned)
    }

    /// `Matcher.Matches`: the version the request is seen in when it
    /// matches; a NotFound when the namespace selector needs a namespace
    /// that does not exist.
    pub fn matches(
        &self,
        request: &Request<'_>,
        namespace_labels: &dyn Fn() -> Option<Value>,
    ) -> Result<Option<String>, ApiError> {
        let is_namespace = request.resource.group.is_empty() && request.resource.plural == "namespaces";
        let namespaced_request = !request.namespace.is_empty() || is_namespace;
        if namespaced_request && !self.namespace_selector.is_empty() {
            let labels = if is_namespace
                && request.subresource.is_empty()
                && matches!(request.operation, Operation::Create | Operation::Update)
            {
                request
                    .object
                    .map(|object| object["metadata"]["labels"].clone())
                    .unwrap_or(Value::Null)
            } else {
                namespace_labels().ok_or_else(|| ApiError::namespace_not_found(request.namespace))?
            };
            if !self.namespace_selector.matches_labels(&labels) {
                return Ok(None);
            }
        }
        if !self.object_selector.is_empty() {
            let selected =
                |object: Option<&Value>| object.is_some_and(|object| self.object_selector.matches(object));
            if !selected(request.object) && !selected(request.old_object) {
                return Ok(None);
            }
        }
        if Self::matching_version(&self.exclude_resource_rules, self.equivalent, request).is_some() {
            return Ok(None);
        }
        if self.resource_rules.is_empty() {
            return Ok(Some(request.version.to_owned()));
        }
        Ok(Self::matching_version(
            &self.resource_rules,
            self.equivalent,
            request,
        ))
    }
}
