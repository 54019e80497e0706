use super::*;

fn shipped() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let mut documents = serde_yaml::Deserializer::from_str(SHIPPED);
    let policy = serde::Deserialize::deserialize(documents.next().expect("policy")).expect("a policy");
    let binding = serde::Deserialize::deserialize(documents.next().expect("binding")).expect("a binding");
    (policy, binding)
}

const NAME: &str = crate::core::gates::approval::POLICY;

fn reason(state: ApprovalTrust) -> String {
    match state {
        ApprovalTrust::Unverified { reason, .. } => reason,
        ApprovalTrust::Verified => panic!("verified"),
    }
}

#[test]
fn the_plain_manifests_are_the_charts() {
    assert_eq!(
        include_str!("../../../deploy/admission/hoist-approvals.yaml"),
        SHIPPED
    );
    assert_eq!(
        include_str!("../../../deploy/admission/hoist-environments.yaml"),
        SHIPPED_ENVIRONMENTS
    );
}

fn shipped_environments() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let mut documents = serde_yaml::Deserializer::from_str(SHIPPED_ENVIRONMENTS);
    let policy = serde::Deserialize::deserialize(documents.next().expect("policy")).expect("a policy");
    let binding = serde::Deserialize::deserialize(documents.next().expect("binding")).expect("a binding");
    (policy, binding)
}

#[test]
fn the_environments_policy_is_enforced_only_as_shipped() {
    use crate::core::tenancy::{Boundaries, POLICY};
    let (policy, binding) = shipped_environments();
    assert_eq!(policy.metadata.name.as_deref(), Some(POLICY));
    assert_eq!(
        environments_policy_state(POLICY, true, Some(&policy), Some(&binding), false),
        Boundaries::Enforced
    );
    let mut changed = policy.clone();
    if let Some(validations) = changed.spec.as_mut().and_then(|s| s.validations.as_mut()) {
        validations.pop();
    }
    let reason =
        "the ValidatingAdmissionPolicy hoist-environments is not as Hoist ships it: its validations changed";
    assert_eq!(
        environments_policy_state(POLICY, true, Some(&changed), Some(&binding), false),
        Boundaries::Unenforced {
            policy: POLICY.into(),
            reason: reason.into()
        }
    );
    assert_eq!(
        environments_policy_state(POLICY, true, Some(&changed), Some(&binding), true),
        Boundaries::Trusted
    );
    // The approvals policy is not the Environments policy.
    let (approvals, _) = shipped();
    assert_eq!(
        environments_policy_state(POLICY, true, Some(&approvals), Some(&binding), false),
        Boundaries::Unenforced {
            policy: POLICY.into(),
            reason: "the ValidatingAdmissionPolicy hoist-environments is not as Hoist ships it: its matchConstraints changed".into()
        }
    );
    // The policy of Hoist releases before notifications (version "1") does
    // not check notification Secret references: after an upgrade it is
    // reported by its version until the chart installs the new one.
    let mut previous = policy.clone();
    previous
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(VERSION_ANNOTATION.into(), "1".into());
    assert_eq!(
        environments_policy_state(POLICY, true, Some(&previous), Some(&binding), false),
        Boundaries::Unenforced {
            policy: POLICY.into(),
            reason: "the ValidatingAdmissionPolicy hoist-environments has hoist.dev/policy-version \"1\", this Hoist ships \"2\"".into()
        }
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
fn what_the_api_server_fills_in_by_default_is_no_difference() {
    let (mut policy, binding) = shipped();
    let spec = policy.spec.as_mut().expect("spec");
    spec.failure_policy = Some("Fail".into());
    let constraints = spec.match_constraints.as_mut().expect("constraints");
    constraints.match_policy = Some("Equivalent".into());
    constraints.namespace_selector = Some(Default::default());
    constraints.object_selector = Some(Default::default());
    for rule in constraints.resource_rules.iter_mut().flatten() {
        rule.scope = Some("*".into());
    }
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
            "the ValidatingAdmissionPolicy hoist-approvals has hoist.dev/policy-version \"0\", this Hoist ships \"2\""
        ));
    let changed = |change: fn(&mut ValidatingAdmissionPolicySpec)| {
        let mut changed = policy.clone();
        change(changed.spec.as_mut().expect("spec"));
        reason(policy_state(NAME, true, Some(&changed), Some(&binding)))
    };
    assert_eq!(
        changed(|spec| spec.failure_policy = Some("Ignore".into())),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its failurePolicy changed"
    );
    assert_eq!(
        changed(|spec| {
            spec.validations.as_mut().expect("validations").pop();
        }),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its validations changed"
    );
    assert_eq!(
        changed(|spec| {
            let validation = &mut spec.validations.as_mut().expect("validations")[0];
            validation.expression = "true".into();
        }),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its validations changed"
    );
    assert_eq!(
        changed(|spec| spec.variables.as_mut().expect("variables")[0].expression = "'admin'".into()),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its variables changed"
    );
    assert_eq!(
        changed(|spec| {
            let constraints = spec.match_constraints.as_mut().expect("constraints");
            constraints.resource_rules.as_mut().expect("rules")[0].operations = Some(vec!["CREATE".into()]);
        }),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its matchConstraints changed"
    );
    assert_eq!(
        changed(|spec| spec.match_conditions = Some(vec![Default::default()])),
        "the ValidatingAdmissionPolicy hoist-approvals is not as Hoist ships it: its matchConditions changed"
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
        reason(policy_state(NAME, true, Some(&policy), Some(&other))).contains("binds \"something-else\"")
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
