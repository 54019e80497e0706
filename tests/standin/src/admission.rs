//! `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`
//! (`admissionregistration.k8s.io/v1`): their defaults and validation
//! (`pkg/apis/admissionregistration/validation`), and their evaluation on
//! every create, update and delete of a matched resource, after schema
//! validation, as `k8s.io/apiserver/pkg/admission/plugin/policy/validating`
//! evaluates them (the dispatcher, the validator and the matcher), with the
//! denial worded and coded as the server's.

mod cel;
mod matching;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::rbac::RbacIndex;
use crate::resources::ResourceInfo;
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::server::lock;
use crate::status::ApiError;
use cel::{Declarations, Evaluation, Expression, Variables};
use matching::MatchResources;

pub(crate) const GROUP: &str = "admissionregistration.k8s.io";
pub(crate) const POLICIES: &str = "validatingadmissionpolicies";
pub(crate) const BINDINGS: &str = "validatingadmissionpolicybindings";

/// `celconfig.MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
const FAILURE_POLICIES: [&str; 2] = ["Fail", "Ignore"];
const REASONS: [&str; 3] = ["Forbidden", "Invalid", "RequestEntityTooLarge"];
const ACTIONS: [&str; 3] = ["Audit", "Deny", "Warn"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    fn options_kind(self) -> &'static str {
        match self {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
        }
    }
}

/// Who writes, in which API version, and where the warnings of the
/// policies' `Warn` actions go: what a client's write carries into the
/// store (the store's own writes carry none and are not admitted).
#[derive(Clone, Copy)]
pub(crate) struct Admission<'a> {
    pub user: &'a UserInfo,
    pub version: &'a str,
    pub warnings: &'a Mutex<Vec<String>>,
    /// A PUT or an apply that creates the object: the server authorizes
    /// the verb `create` too, when the object is fully formed.
    pub creates_on_update: bool,
}

/// A write being admitted, as `admission.Attributes` describes it.
pub(crate) struct Request<'a> {
    pub operation: Operation,
    pub resource: &'a ResourceInfo,
    pub version: &'a str,
    pub subresource: &'a str,
    /// The namespace; for a Namespace itself, its name.
    pub namespace: &'a str,
    /// The name as the request gave it (empty when generated).
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub user: &'a UserInfo,
}

#[derive(Debug)]
struct Validation {
    expression: Expression,
    message: String,
    message_expression: Option<Expression>,
    reason: Option<String>,
}

#[derive(Debug)]
struct Policy {
    name: String,
    fail: bool,
    constraints: MatchResources,
    match_conditions: Vec<Expression>,
    variables: Vec<(String, Expression)>,
    validations: Vec<Validation>,
}

#[derive(Debug)]
struct Binding {
    name: String,
    policy: String,
    resources: Option<MatchResources>,
    deny: bool,
    warn: bool,
}

fn is_cel_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && characters.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !crate::schema::cost::RESERVED.contains(&name)
}

fn supported(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// Compiles an expression of the policy at `path`, adding the server's
/// error when it does not compile.
fn compile_at(
    text: &str,
    declarations: &Declarations<'_>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Expression> {
    cel::compile(text, declarations)
        .map_err(|detail| errors.push(field::invalid(path, BadValue::Str(text), &detail)))
        .ok()
}

/// Parses a policy, adding `validateValidatingAdmissionPolicySpec`'s errors
/// (and the stand-in's refusals of what it does not implement).
fn parse_policy(object: &Value, errors: &mut Vec<FieldError>) -> Policy {
    let spec = &object["spec"];
    let failure_policy = spec["failurePolicy"].as_str().unwrap_or_default();
    if !FAILURE_POLICIES.contains(&failure_policy) {
        errors.push(field::not_supported(
            "spec.failurePolicy",
            BadValue::Str(failure_policy),
            &supported(&FAILURE_POLICIES),
        ));
    }
    if !spec["paramKind"].is_null() {
        errors.push(field::forbidden(
            "spec.paramKind",
            "policy parameters are not supported by the kube-standin API server",
        ));
    }
    let constraints = if spec["matchConstraints"].is_null() {
        errors.push(field::required("spec.matchConstraints", ""));
        MatchResources::parse(&json!({}), "spec.matchConstraints", &mut Vec::new())
    } else {
        let constraints = MatchResources::parse(&spec["matchConstraints"], "spec.matchConstraints", errors);
        if !constraints.has_resource_rules() {
            errors.push(field::required("spec.matchConstraints.resourceRules", ""));
        }
        constraints
    };

    let conditions: &[Value] = spec["matchConditions"].as_array().map_or(&[], Vec::as_slice);
    if conditions.len() > 64 {
        errors.push(field::too_many("spec.matchConditions", conditions.len(), 64));
    }
    let mut condition_names: Vec<&str> = Vec::new();
    let mut match_conditions = Vec::new();
    for (index, condition) in conditions.iter().enumerate() {
        let path = format!("spec.matchConditions[{index}]");
        let expression = condition["expression"].as_str().unwrap_or_default();
        if expression.trim().is_empty() {
            errors.push(field::required(&format!("{path}.expression"), ""));
        } else {
            let declarations = Declarations {
                authorizer: true,
                variables: None,
            };
            match_conditions.extend(compile_at(
                expression.trim(),
                &declarations,
                &format!("{path}.expression"),
                errors,
            ));
        }
        let name = condition["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            errors.push(field::required(&format!("{path}.name"), ""));
        } else if !crate::meta::is_qualified_name(name) {
            errors.push(field::invalid(
                &format!("{path}.name"),
                BadValue::Str(name),
                crate::meta::QUALIFIED_NAME_MESSAGE,
            ));
        } else if condition_names.contains(&name) {
            errors.push(field::duplicate(&format!("{path}.name"), BadValue::Str(name)));
        }
        condition_names.push(name);
    }

    let declared: Vec<String> = spec["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|variable| variable["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let all_variables = (!declared.is_empty()).then_some(declared.as_slice());
    let mut variables = Vec::new();
    for (index, variable) in spec["variables"].as_array().into_iter().flatten().enumerate() {
        let path = format!("spec.variables[{index}]");
        let name = &declared[index];
        if name.trim().is_empty() {
            errors.push(field::required(&format!("{path}.name"), "name is not specified"));
        } else if !is_cel_identifier(name) {
            errors.push(field::invalid(
                &format!("{path}.name"),
                BadValue::Str(name),
                "name is not a valid CEL identifier",
            ));
        }
        let expression = variable["expression"].as_str().unwrap_or_default();
        if expression.trim().is_empty() {
            errors.push(field::required(
                &format!("{path}.expression"),
                "expression is not specified",
            ));
            continue;
        }
        let declarations = Declarations {
            authorizer: true,
            variables: Some(&declared[..index]),
        };
        if let Some(compiled) = compile_at(expression, &declarations, &format!("{path}.expression"), errors) {
            variables.push((name.clone(), compiled));
        }
    }

    let listed: &[Value] = spec["validations"].as_array().map_or(&[], Vec::as_slice);
    if !spec["auditAnnotations"].is_null() {
        errors.push(field::forbidden(
            "spec.auditAnnotations",
            "audit annotations are not supported by the kube-standin API server",
        ));
    } else if listed.is_empty() {
        let detail = "validations or auditAnnotations must contain at least one item";
        errors.push(field::required("spec.validations", detail));
        errors.push(field::required("spec.auditAnnotations", detail));
    }
    let mut validations = Vec::new();
    for (index, validation) in listed.iter().enumerate() {
        let path = format!("spec.validations[{index}]");
        let text = validation["expression"].as_str().unwrap_or_default();
        let message = validation["message"].as_str().unwrap_or_default();
        let message_text = validation["messageExpression"].as_str().unwrap_or_default();
        let with_authorizer = Declarations {
            authorizer: true,
            variables: all_variables,
        };
        let expression = if text.trim().is_empty() {
            errors.push(field::required(
                &format!("{path}.expression"),
                "expression is not specified",
            ));
            None
        } else {
            compile_at(text, &with_authorizer, &format!("{path}.expression"), errors)
        };
        let message_expression = if message_text.is_empty() {
            None
        } else if message_text.trim().is_empty() {
            errors.push(field::invalid(
                &format!("{path}.messageExpression"),
                BadValue::Str(message_text),
                "must be non-empty if specified",
            ));
            None
        } else {
            let without_authorizer = Declarations {
                authorizer: false,
                variables: all_variables,
            };
            compile_at(
                message_text,
                &without_authorizer,
                &format!("{path}.messageExpression"),
                errors,
            )
        };
        if !message.is_empty() && message.trim().is_empty() {
            errors.push(field::invalid(
                &format!("{path}.message"),
                BadValue::Str(message),
                "message must be non-empty if specified",
            ));
        } else if message.trim().contains(['\n', '\r']) {
            errors.push(field::invalid(
                &format!("{path}.message"),
                BadValue::Str(message),
                "message must not contain line breaks",
            ));
        }
        let reason = validation["reason"].as_str().map(str::to_owned);
        if let Some(reason) = &reason
            && !REASONS.contains(&reason.as_str())
        {
            errors.push(field::not_supported(
                &format!("{path}.reason"),
                BadValue::Str(reason),
                &supported(&REASONS),
            ));
        }
        if let Some(expression) = expression {
            validations.push(Validation {
                expression,
                message: message.to_owned(),
                message_expression,
                reason,
            });
        }
    }
    Policy {
        name: crate::meta::name(object).to_owned(),
        fail: failure_policy != "Ignore",
        constraints,
        match_conditions,
        variables,
        validations,
    }
}

/// Parses a binding, adding `validateValidatingAdmissionPolicyBindingSpec`'s errors.
fn parse_binding(object: &Value, errors: &mut Vec<FieldError>) -> Binding {
    let spec = &object["spec"];
    let policy = spec["policyName"].as_str().unwrap_or_default();
    if policy.is_empty() {
        errors.push(field::required("spec.policyName", ""));
    } else if !crate::meta::is_dns_subdomain(policy) {
        errors.push(field::invalid(
            "spec.policyName",
            BadValue::Str(policy),
            crate::meta::DNS_SUBDOMAIN_MESSAGE,
        ));
    }
    let resources = (!spec["matchResources"].is_null())
        .then(|| MatchResources::parse(&spec["matchResources"], "spec.matchResources", errors));
    let actions: Vec<&str> = spec["validationActions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|action| action.as_str().unwrap_or_default())
        .collect();
    for (index, action) in actions.iter().enumerate() {
        let path = format!("spec.validationActions[{index}]");
        if !ACTIONS.contains(action) {
            errors.push(field::not_supported(
                &path,
                BadValue::Str(action),
                &supported(&ACTIONS),
            ));
        }
        if actions[..index].contains(action) {
            errors.push(field::duplicate(&path, BadValue::Str(action)));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        errors.push(field::invalid(
            "spec.validationActions",
            BadValue::Json(&spec["validationActions"]),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if actions.is_empty() {
        errors.push(field::required(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    Binding {
        name: crate::meta::name(object).to_owned(),
        policy: policy.to_owned(),
        resources,
        deny: actions.contains(&"Deny"),
        warn: actions.contains(&"Warn"),
    }
}

/// The field errors of a policy or binding.
pub(crate) fn validate(plural: &str, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match plural {
        POLICIES => {
            parse_policy(object, &mut errors);
        }
        BINDINGS => {
            parse_binding(object, &mut errors);
        }
        _ => {}
    }
    errors
}

fn default_match_resources(resources: &mut Value) {
    let Some(map) = resources.as_object_mut() else {
        return;
    };
    map.entry("matchPolicy").or_insert_with(|| json!("Equivalent"));
    map.entry("namespaceSelector").or_insert_with(|| json!({}));
    map.entry("objectSelector").or_insert_with(|| json!({}));
    for rules in ["resourceRules", "excludeResourceRules"] {
        for rule in map
            .get_mut(rules)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(rule) = rule.as_object_mut() {
                rule.entry("scope").or_insert_with(|| json!("*"));
            }
        }
    }
}

/// The v1 defaults (`SetDefaults_ValidatingAdmissionPolicySpec`,
/// `SetDefaults_MatchResources`, `SetDefaults_Rule`).
pub(crate) fn apply_defaults(plural: &str, object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match plural {
        POLICIES => {
            spec.entry("failurePolicy").or_insert_with(|| json!("Fail"));
            if let Some(constraints) = spec.get_mut("matchConstraints") {
                default_match_resources(constraints);
            }
        }
        BINDINGS => {
            if let Some(resources) = spec.get_mut("matchResources") {
                default_match_resources(resources);
            }
        }
        _ => {}
    }
}

/// The stored policies and bindings, compiled; rebuilt by the store
/// whenever one of them changes.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    /// By name: the order the stand-in evaluates them in.
    policies: BTreeMap<String, Policy>,
    /// By name.
    bindings: Vec<Binding>,
}

/// One failed validation, and what it asks for.
struct Denial {
    message: String,
    reason: Option<String>,
}

/// `utilerrors.NewAggregate(...).Error()`.
fn aggregate(errors: &[String]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for error in errors {
        if !unique.contains(&error.as_str()) {
            unique.push(error);
        }
    }
    match unique.as_slice() {
        [single] => (*single).to_owned(),
        several => format!("[{}]", several.join(", ")),
    }
}

/// The `request` variable: `admissionv1.AdmissionRequest` as unstructured
/// JSON, empty optional fields left out.
fn request_json(request: &Request<'_>, version: &str) -> Value {
    let resource = request.resource;
    let kind = |version: &str| json!({"group": resource.group, "version": version, "kind": resource.kind});
    let gvr =
        |version: &str| json!({"group": resource.group, "version": version, "resource": resource.plural});
    let mut value = json!({
        "uid": "",
        "kind": kind(version),
        "resource": gvr(version),
        "requestKind": kind(request.version),
        "requestResource": gvr(request.version),
        "operation": request.operation.as_str(),
        "userInfo": request.user.to_json(),
        "dryRun": false,
        "options": {"kind": request.operation.options_kind(), "apiVersion": "meta.k8s.io/v1"},
    });
    let optional = [
        ("subResource", request.subresource),
        ("requestSubResource", request.subresource),
        ("name", request.name),
        ("namespace", request.namespace),
    ];
    for (field, text) in optional {
        if !text.is_empty() {
            value[field] = json!(text);
        }
    }
    if request.user.name.is_empty()
        && let Some(info) = value["userInfo"].as_object_mut()
    {
        info.remove("username");
    }
    if request.user.groups.is_empty()
        && let Some(info) = value["userInfo"].as_object_mut()
    {
        info.remove("groups");
    }
    value
}

/// `CreateNamespaceObject`: the fields of the namespace a policy may read.
fn namespace_object_json(namespace: &Value) -> Value {
    let mut metadata = serde_json::Map::new();
    for field in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "finalizers",
    ] {
        if let Some(value) = namespace["metadata"].get(field) {
            metadata.insert(field.to_owned(), value.clone());
        }
    }
    json!({"metadata": metadata, "spec": namespace["spec"], "status": namespace["status"]})
}

impl Policies {
    /// Whether no policy can apply: nothing binds one.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Compiles the stored objects (which passed validation when written).
    pub fn new<'v>(
        policies: impl Iterator<Item = &'v Value>,
        bindings: impl Iterator<Item = &'v Value>,
    ) -> Arc<Self> {
        let mut ignored = Vec::new();
        Arc::new(Policies {
            policies: policies
                .map(|object| {
                    let policy = parse_policy(object, &mut ignored);
                    (policy.name.clone(), policy)
                })
                .collect(),
            bindings: bindings
                .map(|object| parse_binding(object, &mut ignored))
                .collect(),
        })
    }

    /// The validations of one policy for one binding (`validator.Validate`):
    /// the denials, in the order of the validations.
    fn validate(policy: &Policy, evaluation: &Evaluation<'_>, variables: &Variables) -> Vec<Denial> {
        let mut errors = Vec::new();
        for condition in &policy.match_conditions {
            match evaluation.evaluate(condition, variables) {
                Ok(kube_cel::cel::Value::Bool(true)) => {}
                Ok(kube_cel::cel::Value::Bool(false)) => return Vec::new(),
                Ok(_) => errors.push(format!(
                    "expression '{}' resulted in error: no such overload",
                    condition.text
                )),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return if policy.fail {
                vec![Denial {
                    message: aggregate(&errors),
                    reason: None,
                }]
            } else {
                Vec::new()
            };
        }
        let mut denials = Vec::new();
        for validation in &policy.validations {
            match evaluation.evaluate(&validation.expression, variables) {
                Ok(kube_cel::cel::Value::Bool(true)) => {}
                Err(error) => {
                    if policy.fail {
                        denials.push(Denial {
                            message: error,
                            reason: None,
                        });
                    }
                }
                Ok(_) => {
                    let from_expression = validation
                        .message_expression
                        .as_ref()
                        .and_then(|expression| evaluation.evaluate(expression, variables).ok())
                        .and_then(|value| match value {
                            kube_cel::cel::Value::String(text) => Some(text.trim().to_owned()),
                            _ => None,
                        })
                        .filter(|text| {
                            !text.is_empty() && text.len() <= MAX_MESSAGE_BYTES && !text.contains('\n')
                        });
                    let message = from_expression
                        .or_else(|| {
                            Some(validation.message.trim().to_owned()).filter(|text| !text.is_empty())
                        })
                        .unwrap_or_else(|| {
                            format!("failed expression: {}", validation.expression.text.trim())
                        });
                    denials.push(Denial {
                        message,
                        reason: Some(validation.reason.clone().unwrap_or_else(|| "Invalid".to_owned())),
                    });
                }
            }
        }
        denials
    }

    /// Evaluates every binding's policy that matches `request` (policies and
    /// bindings by name); `Warn` actions add to `warnings`, the first denial
    /// of a `Deny` binding refuses the request.
    pub fn admit(
        &self,
        request: &Request<'_>,
        rbac: &Arc<RbacIndex>,
        namespace: Option<&Value>,
        warnings: &Mutex<Vec<String>>,
    ) -> Result<(), ApiError> {
        let namespace_labels = || namespace.map(|namespace| namespace["metadata"]["labels"].clone());
        // A Namespace is its own namespace for selectors, but has no
        // `namespaceObject` (the dispatcher unsets it).
        let is_namespace = request.resource.group.is_empty() && request.resource.plural == "namespaces";
        let namespace_object = namespace.filter(|_| !is_namespace);
        let mut root = None;
        let mut denied: Option<(String, String, Denial)> = None;
        for policy in self.policies.values() {
            let bindings: Vec<&Binding> = self
                .bindings
                .iter()
                .filter(|binding| binding.policy == policy.name)
                .collect();
            if bindings.is_empty() {
                continue;
            }
            let Ok(Some(version)) = policy.constraints.matches(request, &namespace_labels) else {
                continue;
            };
            let root = root.get_or_insert_with(cel::root_context);
            let budget = Arc::new(cel::CheckBudget::default());
            let evaluation = Evaluation::new(
                root,
                vec![
                    (
                        "object",
                        request.object.map_or(kube_cel::cel::Value::Null, cel::from_json),
                    ),
                    (
                        "oldObject",
                        request
                            .old_object
                            .map_or(kube_cel::cel::Value::Null, cel::from_json),
                    ),
                    ("request", cel::from_json(&request_json(request, &version))),
                    (
                        "namespaceObject",
                        namespace_object.map_or(kube_cel::cel::Value::Null, |namespace| {
                            cel::from_json(&namespace_object_json(namespace))
                        }),
                    ),
                    (
                        "authorizer",
                        cel::authorizer_value(cel::Authorizer {
                            rbac: Arc::clone(rbac),
                            user: request.user.clone(),
                            budget: Arc::clone(&budget),
                        }),
                    ),
                ],
                budget,
            );
            let mut variables = None;
            for binding in bindings {
                if let Some(resources) = &binding.resources {
                    match resources.matches(request, &namespace_labels) {
                        Ok(Some(_)) => {}
                        Ok(None) => continue,
                        Err(error) => {
                            if policy.fail && denied.is_none() {
                                denied = Some((
                                    policy.name.clone(),
                                    binding.name.clone(),
                                    Denial {
                                        message: format!("failed to configure binding: {}", error.message),
                                        reason: None,
                                    },
                                ));
                            }
                            continue;
                        }
                    }
                }
                let variables = variables.get_or_insert_with(|| evaluation.variables(&policy.variables));
                for denial in Self::validate(policy, &evaluation, variables) {
                    if binding.warn {
                        lock(warnings).push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                            policy.name, binding.name, denial.message
                        ));
                    }
                    if binding.deny && denied.is_none() {
                        denied = Some((policy.name.clone(), binding.name.clone(), denial));
                    }
                }
            }
        }
        match denied {
            None => Ok(()),
            Some((policy, binding, denial)) => Err(denial_error(request, &policy, &binding, denial)),
        }
    }
}

/// The dispatcher's refusal: `admission.NewForbidden` of the request's
/// resource and object, with the validation's reason and its code.
fn denial_error(request: &Request<'_>, policy: &str, binding: &str, denial: Denial) -> ApiError {
    let message = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}",
        denial.message
    );
    let name = request
        .object
        .map(|object| {
            let name = crate::meta::name(object);
            if name.is_empty() {
                object["metadata"]["generateName"].as_str().unwrap_or_default()
            } else {
                name
            }
        })
        .filter(|name| !name.is_empty())
        .unwrap_or("Unknown");
    let resource = request.resource;
    let reason = denial.reason.unwrap_or_else(|| "Invalid".to_owned());
    let code = match reason.as_str() {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    };
    let mut details = json!({"name": name, "kind": resource.plural, "causes": [{"message": message}]});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    ApiError::new(
        code,
        &reason,
        format!(
            "{} {} is forbidden: {message}",
            resource.group_resource(),
            field::go_quote(name)
        ),
    )
    .with_details(details)
}
