//! Whether the API server vouches for what Hoist trusts: the admission
//! policy that makes approvals trustworthy
//! (`charts/hoist/files/admission-policy.yaml`) must be installed as
//! shipped, or Hoist cannot tell a real approval from one written in
//! someone else's name; the one that keeps Environment authors within
//! their RBAC (`charts/hoist/files/environment-policy.yaml`) likewise, or
//! Hoist cannot tell a Job step or Secret reference its author may make
//! from one that uses the operator's permissions instead.

use std::sync::LazyLock;

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicySpec,
};

use crate::core::gates::approval::ApprovalTrust;
use crate::core::tenancy::Boundaries;

/// The approvals policy and binding Hoist ships, as written in the chart.
pub const SHIPPED: &str = include_str!("../../charts/hoist/files/admission-policy.yaml");
/// The annotation that says which version of the policy is installed.
pub const VERSION_ANNOTATION: &str = "hoist.dev/policy-version";
/// The version of the approvals policy this Hoist expects (the one in [`SHIPPED`]).
pub const POLICY_VERSION: &str = "2";
/// The Environments policy and binding Hoist ships, as written in the chart.
pub const SHIPPED_ENVIRONMENTS: &str = include_str!("../../charts/hoist/files/environment-policy.yaml");
/// The version of the Environments policy this Hoist expects.
pub const ENVIRONMENTS_POLICY_VERSION: &str = "2";

/// One policy as Hoist ships it.
struct Shipped {
    version: &'static str,
    /// Its spec as written ([`as_written`]).
    spec: ValidatingAdmissionPolicySpec,
}

fn parse_shipped(file: &'static str, version: &'static str) -> Shipped {
    let policy: ValidatingAdmissionPolicy = serde::Deserialize::deserialize(
        serde_yaml::Deserializer::from_str(file)
            .next()
            .expect("a shipped admission policy file holds the policy first"),
    )
    .expect("a shipped admission policy parses");
    Shipped {
        version,
        spec: as_written(&policy.spec.expect("a shipped admission policy has a spec")),
    }
}

static APPROVALS: LazyLock<Shipped> = LazyLock::new(|| parse_shipped(SHIPPED, POLICY_VERSION));
static ENVIRONMENTS: LazyLock<Shipped> =
    LazyLock::new(|| parse_shipped(SHIPPED_ENVIRONMENTS, ENVIRONMENTS_POLICY_VERSION));

/// A policy spec as written, without what the API server fills in by
/// default (failurePolicy Fail, matchPolicy Equivalent, empty selectors,
/// rule scope `*`), so that the installed and the shipped one compare.
fn as_written(spec: &ValidatingAdmissionPolicySpec) -> ValidatingAdmissionPolicySpec {
    let mut spec = spec.clone();
    if spec.failure_policy.as_deref() == Some("Fail") {
        spec.failure_policy = None;
    }
    if let Some(constraints) = spec.match_constraints.as_mut() {
        strip_match_defaults(constraints);
    }
    if spec.match_conditions.as_ref().is_some_and(Vec::is_empty) {
        spec.match_conditions = None;
    }
    if spec.audit_annotations.as_ref().is_some_and(Vec::is_empty) {
        spec.audit_annotations = None;
    }
    if spec.variables.as_ref().is_some_and(Vec::is_empty) {
        spec.variables = None;
    }
    spec
}

fn strip_match_defaults(constraints: &mut MatchResources) {
    if constraints.match_policy.as_deref() == Some("Equivalent") {
        constraints.match_policy = None;
    }
    let empty = |selector: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|l| l.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        })
    };
    if empty(&constraints.namespace_selector) {
        constraints.namespace_selector = None;
    }
    if empty(&constraints.object_selector) {
        constraints.object_selector = None;
    }
    for rules in [
        &mut constraints.resource_rules,
        &mut constraints.exclude_resource_rules,
    ] {
        for rule in rules.iter_mut().flatten() {
            if rule.scope.as_deref() == Some("*") {
                rule.scope = None;
            }
        }
    }
    if constraints
        .exclude_resource_rules
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        constraints.exclude_resource_rules = None;
    }
}

/// The first part of an installed policy's spec that is not as shipped.
fn changed_part(installed: &ValidatingAdmissionPolicySpec, shipped: &Shipped) -> Option<&'static str> {
    let (installed, shipped) = (as_written(installed), &shipped.spec);
    [
        (
            "failurePolicy",
            installed.failure_policy != shipped.failure_policy,
        ),
        (
            "matchConstraints",
            installed.match_constraints != shipped.match_constraints,
        ),
        (
            "matchConditions",
            installed.match_conditions != shipped.match_conditions,
        ),
        ("paramKind", installed.param_kind != shipped.param_kind),
        ("variables", installed.variables != shipped.variables),
        ("validations", installed.validations != shipped.validations),
        (
            "auditAnnotations",
            installed.audit_annotations != shipped.audit_annotations,
        ),
    ]
    .into_iter()
    .find_map(|(part, differs)| differs.then_some(part))
}

/// Whether approvals are verified, from what the API server serves: the
/// policy and binding named `name` (the chart's are `hoist-approvals`);
/// `served` is false when it does not serve `admissionregistration.k8s.io/v1`
/// ValidatingAdmissionPolicy at all.
pub fn policy_state(
    name: &str,
    served: bool,
    policy: Option<&ValidatingAdmissionPolicy>,
    binding: Option<&ValidatingAdmissionPolicyBinding>,
) -> ApprovalTrust {
    match problem(&APPROVALS, name, served, policy, binding) {
        None => ApprovalTrust::Verified,
        Some(reason) => ApprovalTrust::Unverified {
            policy: name.to_string(),
            reason,
        },
    }
}

/// Whether the API server keeps Environment authors within their RBAC,
/// from what it serves: the policy and binding named `name` (the chart's
/// are `hoist-environments`), as for [`policy_state`]; `trusted` when the
/// cluster admin runs the operator trusting Environments without it.
pub fn environments_policy_state(
    name: &str,
    served: bool,
    policy: Option<&ValidatingAdmissionPolicy>,
    binding: Option<&ValidatingAdmissionPolicyBinding>,
    trusted: bool,
) -> Boundaries {
    match (problem(&ENVIRONMENTS, name, served, policy, binding), trusted) {
        (None, _) => Boundaries::Enforced,
        (Some(_), true) => Boundaries::Trusted,
        (Some(reason), false) => Boundaries::Unenforced {
            policy: name.to_string(),
            reason,
        },
    }
}

/// What keeps the policy from vouching, if anything.
fn problem(
    shipped: &Shipped,
    name: &str,
    served: bool,
    policy: Option<&ValidatingAdmissionPolicy>,
    binding: Option<&ValidatingAdmissionPolicyBinding>,
) -> Option<String> {
    if !served {
        return Some(
            "the API server does not serve admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes older than 1.30)"
                .into(),
        );
    }
    let Some(policy) = policy else {
        return Some(format!("the ValidatingAdmissionPolicy {name} is not installed"));
    };
    let installed = policy
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(VERSION_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    if installed != shipped.version {
        return Some(format!(
            "the ValidatingAdmissionPolicy {name} has {VERSION_ANNOTATION} {installed:?}, this Hoist ships {:?}",
            shipped.version
        ));
    }
    let Some(spec) = policy.spec.as_ref() else {
        return Some(format!("the ValidatingAdmissionPolicy {name} has no spec"));
    };
    if let Some(part) = changed_part(spec, shipped) {
        return Some(format!(
            "the ValidatingAdmissionPolicy {name} is not as Hoist ships it: its {part} changed"
        ));
    }
    let Some(binding) = binding else {
        return Some(format!(
            "the ValidatingAdmissionPolicyBinding {name} is not installed"
        ));
    };
    let Some(spec) = binding.spec.as_ref() else {
        return Some(format!("the ValidatingAdmissionPolicyBinding {name} has no spec"));
    };
    if spec.policy_name.as_deref() != Some(name) {
        return Some(format!(
            "the ValidatingAdmissionPolicyBinding {name} binds {:?}, not {name}",
            spec.policy_name.as_deref().unwrap_or_default()
        ));
    }
    if spec.validation_actions.as_deref() != Some(&["Deny".to_string()][..]) {
        return Some(format!(
            "the ValidatingAdmissionPolicyBinding {name} has validationActions {:?}, not [Deny]",
            spec.validation_actions.clone().unwrap_or_default()
        ));
    }
    if spec.match_resources.is_some() || spec.param_ref.is_some() {
        return Some(format!(
            "the ValidatingAdmissionPolicyBinding {name} narrows what the policy checks (matchResources or paramRef)"
        ));
    }
    None
}

#[cfg(test)]
mod tests;
