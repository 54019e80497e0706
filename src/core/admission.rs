//! Whether the API server vouches for approvals: the admission policy that
//! makes approvals trustworthy (`charts/hoist/files/admission-policy.yaml`)
//! must be installed as shipped, or Hoist cannot tell a real approval from
//! one written in someone else's name.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};

use crate::core::approval::ApprovalTrust;

/// The policy and binding Hoist ships, as written in the chart.
pub const SHIPPED: &str = include_str!("../../charts/hoist/files/admission-policy.yaml");
/// The annotation that says which version of the policy is installed.
pub const VERSION_ANNOTATION: &str = "hoist.dev/policy-version";
/// The version this Hoist expects (the one in [`SHIPPED`]).
pub const POLICY_VERSION: &str = "1";

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
    match problem(name, served, policy, binding) {
        None => ApprovalTrust::Verified,
        Some(reason) => ApprovalTrust::Unverified { reason },
    }
}

/// What keeps the policy from vouching for approvals, if anything.
fn problem(
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
    if installed != POLICY_VERSION {
        return Some(format!(
            "the ValidatingAdmissionPolicy {name} has {VERSION_ANNOTATION} {installed:?}, this Hoist ships {POLICY_VERSION:?}"
        ));
    }
    let fails_closed = policy
        .spec
        .as_ref()
        .and_then(|spec| spec.failure_policy.as_deref())
        .is_none_or(|failure| failure == "Fail");
    if !fails_closed {
        return Some(format!(
            "the ValidatingAdmissionPolicy {name} does not have failurePolicy Fail"
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
mod tests {
    use super::*;

    fn shipped() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
        let mut documents = serde_yaml::Deserializer::from_str(SHIPPED);
        let policy = serde::Deserialize::deserialize(documents.next().expect("policy")).expect("a policy");
        let binding = serde::Deserialize::deserialize(documents.next().expect("binding")).expect("a binding");
        (policy, binding)
    }

    const NAME: &str = crate::core::approval::POLICY;

    fn reason(state: ApprovalTrust) -> String {
        match state {
            ApprovalTrust::Unverified { reason } => reason,
            ApprovalTrust::Verified => panic!("verified"),
        }
    }

    #[test]
    fn the_plain_manifests_are_the_charts() {
        assert_eq!(
            include_str!("../../deploy/admission/hoist-approvals.yaml"),
            SHIPPED
        );
    }

    #[test]
    fn the_policy_as_shipped_is_installed() {
        let (policy, binding) = shipped();
        assert_eq!(policy.metadata.name.as_deref(), Some(NAME));
        assert_eq!(binding.metadata.name.as_deref(), Some(NAME));
        assert_eq!(
            policy_state(NAME, true, Some(&policy), Some(&binding)),
            ApprovalTrust::Verified
        );
    }

    #[test]
    fn each_difference_from_the_shipped_policy_is_named() {
        let (policy, binding) = shipped();
        assert_eq!(
            reason(policy_state(NAME, false, None, None)),
            "the API server does not serve admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes older than 1.30)"
        );
        assert_eq!(
            reason(policy_state(NAME, true, None, Some(&binding))),
            "the ValidatingAdmissionPolicy hoist-approvals is not installed"
        );
        assert_eq!(
            reason(policy_state(NAME, true, Some(&policy), None)),
            "the ValidatingAdmissionPolicyBinding hoist-approvals is not installed"
        );
        assert_eq!(
            reason(policy_state(
                "hoist-approvals-elsewhere",
                true,
                Some(&policy),
                Some(&binding)
            )),
            "the ValidatingAdmissionPolicyBinding hoist-approvals-elsewhere binds \"hoist-approvals\", not hoist-approvals-elsewhere"
        );

        let mut old = policy.clone();
        old.metadata.annotations = Some([(VERSION_ANNOTATION.to_string(), "0".to_string())].into());
        assert!(reason(policy_state(NAME, true, Some(&old), Some(&binding))).starts_with(
            "the ValidatingAdmissionPolicy hoist-approvals has hoist.dev/policy-version \"0\", this Hoist ships \"1\""
        ));
        let mut ignoring = policy.clone();
        if let Some(spec) = ignoring.spec.as_mut() {
            spec.failure_policy = Some("Ignore".into());
        }
        assert!(
            reason(policy_state(NAME, true, Some(&ignoring), Some(&binding)))
                .contains("does not have failurePolicy Fail")
        );

        let mut warning = binding.clone();
        if let Some(spec) = warning.spec.as_mut() {
            spec.validation_actions = Some(vec!["Warn".into()]);
        }
        assert!(
            reason(policy_state(NAME, true, Some(&policy), Some(&warning)))
                .contains("has validationActions [\"Warn\"], not [Deny]")
        );
        let mut other = binding.clone();
        if let Some(spec) = other.spec.as_mut() {
            spec.policy_name = Some("something-else".into());
        }
        assert!(
            reason(policy_state(NAME, true, Some(&policy), Some(&other)))
                .contains("binds \"something-else\"")
        );
        let mut narrowed = binding;
        if let Some(spec) = narrowed.spec.as_mut() {
            spec.match_resources = Some(Default::default());
        }
        assert!(
            reason(policy_state(NAME, true, Some(&policy), Some(&narrowed)))
                .contains("narrows what the policy checks")
        );
    }
}
