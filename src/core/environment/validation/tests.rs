use k8s_openapi::api::core::v1::Namespace;

use super::*;
use crate::core::config::ConfigError;
use crate::core::environment::fixture::{Objects, at, environment, yaml};

fn condition(validation: &Validation, type_: &str) -> (String, String, String) {
    let condition = conditions::find(&validation.conditions, type_).expect("condition set");
    (
        condition.status.clone(),
        condition.reason.clone(),
        condition.message.clone(),
    )
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_target_problem_names_its_field_and_holds_only_its_application() {
    let mut objects = Objects::new(yaml(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop, generation: 3}
spec:
  targets:
    - {application: shop, component: backend, deployment: {name: backend}, container: app}
    - {application: shop, component: again, deployment: {name: backend}, container: app}
    - {application: cart, component: api, deployment: {name: cart}, container: api}
    - {application: search, component: api, deployment: {name: backend}, container: search}
    - {application: mail, component: api, deployment: {name: mail, namespace: mail}, container: api}
    - {application: pay, component: api, deployment: {name: pay, namespace: pay}, container: api}
"#,
    ));
    objects.namespaces = vec![yaml::<Namespace>(
        "{apiVersion: v1, kind: Namespace, metadata: {name: pay, labels: {hoist.dev/tenant: someone-else}}}",
    )];
    let validation = validate(&objects.snapshot());
    let not_opted_in = "spec.targets[5].deployment.namespace: namespace pay is not opted in for tenant shop; \
                            a cluster admin must label it hoist.dev/tenant=shop";
    assert_eq!(validation.forbidden, owned(&[("pay", not_opted_in)]));
    assert_eq!(
        validation.not_ready,
        owned(&[
            (
                "cart",
                "spec.targets[2].deployment: Deployment shop/cart not found"
            ),
            (
                "mail",
                "spec.targets[4].deployment.namespace: namespace mail not found"
            ),
            (
                "search",
                "spec.targets[3].container: Deployment shop/backend has no container search"
            ),
        ])
    );
    let problems = [
        "spec.targets[1]: container app of Deployment shop/backend is already targeted by spec.targets[0]",
        "spec.targets[2].deployment: Deployment shop/cart not found",
        "spec.targets[3].container: Deployment shop/backend has no container search",
        "spec.targets[4].deployment.namespace: namespace mail not found",
        not_opted_in,
    ]
    .join("; ");
    assert_eq!(
        condition(&validation, TARGETS_VALID),
        ("False".into(), "InvalidTarget".into(), problems.clone())
    );
    assert_eq!(
        condition(&validation, crate::api::CONDITION_READY),
        ("False".into(), "InvalidSpec".into(), problems)
    );
    assert_eq!(
        condition(&validation, UPSTREAM_VALID),
        (
            "True".into(),
            "Valid".into(),
            "upstream environments exist, without cycles".into()
        )
    );
    let ready = conditions::find(&validation.conditions, crate::api::CONDITION_READY).unwrap();
    assert_eq!(
        (ready.observed_generation, ready.last_transition_time.clone()),
        (Some(3), at(100))
    );
}

#[test]
fn a_valid_environment_says_so_in_every_condition() {
    let objects = Objects::new(environment("dev", ""));
    let validation = validate(&objects.snapshot());
    let types: Vec<(&str, &str, &str)> = validation
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("ConfigValid", "True", "Valid"),
            ("Ready", "True", "Ready"),
            ("TargetsValid", "True", "Valid"),
            ("UpstreamValid", "True", "Valid"),
        ]
    );
    assert!(validation.forbidden.is_empty() && validation.not_ready.is_empty());
}

#[test]
fn an_environment_with_an_approval_gate_says_whether_approvals_can_be_verified() {
    let mut objects = Objects::new(environment("prod", "  gates: {approval: {users: [alice]}}"));
    let verified = validate(&objects.snapshot());
    assert_eq!(
            condition(&verified, APPROVALS_VERIFIED),
            (
                "True".into(),
                "PolicyInstalled".into(),
                "the admission policy and its binding are installed as Hoist ships them: approvers are who the API server says"
                    .into()
            )
        );

    objects.approvals = ApprovalTrust::Unverified {
        policy: "hoist-approvals".into(),
        reason: "ValidatingAdmissionPolicy hoist-approvals not found".into(),
    };
    objects.environment.status = Some(crate::api::EnvironmentStatus {
        conditions: verified.conditions.clone(),
        ..Default::default()
    });
    objects.now = at(200);
    let missing = validate(&objects.snapshot());
    let admin = "approvals cannot be verified (ValidatingAdmissionPolicy hoist-approvals not found): \
                     a cluster admin must install the ValidatingAdmissionPolicy hoist-approvals and its \
                     ValidatingAdmissionPolicyBinding hoist-approvals (Kubernetes 1.30+), from the Hoist chart or \
                     deploy/admission/; on older clusters, set spec.gates.approval.allowUnverified: true to count \
                     approvals nobody verified";
    assert_eq!(
        condition(&missing, APPROVALS_VERIFIED),
        ("False".into(), "PolicyMissing".into(), admin.into())
    );
    let flipped = conditions::find(&missing.conditions, APPROVALS_VERIFIED).unwrap();
    assert_eq!(flipped.last_transition_time, at(200));
    assert_eq!(
        condition(&missing, crate::api::CONDITION_READY),
        (
            "True".into(),
            "Ready".into(),
            "targets, upstream and configuration are valid".into()
        ),
        "what runs is not affected"
    );

    objects.environment.spec.gates.approval = Some(yaml("{users: [alice], allowUnverified: true}"));
    assert_eq!(
        condition(&validate(&objects.snapshot()), APPROVALS_VERIFIED).2,
        format!("{admin}; the approval gate counts unverified approvals (allowUnverified)")
    );

    // Without an approval gate the condition goes away.
    objects.environment.spec.gates.approval = None;
    objects.environment.status = Some(crate::api::EnvironmentStatus {
        conditions: missing.conditions.clone(),
        ..Default::default()
    });
    assert_eq!(
        conditions::find(&validate(&objects.snapshot()).conditions, APPROVALS_VERIFIED),
        None
    );
}

#[test]
fn a_configuration_that_does_not_render_holds_its_application() {
    let mut objects = Objects::new(environment("dev", ""));
    let error = ConfigError::BaseMissing {
        application: "shop".into(),
        namespace: "shop".into(),
        name: "base".into(),
    };
    objects.configs = [("shop".to_string(), Err(error.clone()))].into();
    let validation = validate(&objects.snapshot());
    assert_eq!(validation.not_ready, owned(&[("shop", &error.to_string())]));
    assert_eq!(
        condition(&validation, CONFIG_VALID),
        ("False".into(), "InvalidConfig".into(), error.to_string())
    );
}

#[test]
fn a_missing_upstream_is_named_by_its_index() {
    let mut objects = Objects::new(environment("prod", "  upstream: [dev, staging]"));
    objects.environments = vec![environment("dev", "")];
    let validation = validate(&objects.snapshot());
    assert_eq!(
        condition(&validation, UPSTREAM_VALID),
        (
            "False".into(),
            "InvalidUpstream".into(),
            "spec.upstream[1]: Environment staging not found".into()
        )
    );
}

#[test]
fn a_cycle_is_reported_only_by_the_environments_on_it() {
    let a = environment("a", "  upstream: [b]");
    let b = environment("b", "  upstream: [c]");
    let c = environment("c", "  upstream: [b]");
    let d = environment("d", "  upstream: [a, d]");
    let environments: BTreeMap<String, &Environment> = [("a", &a), ("b", &b), ("c", &c), ("d", &d)]
        .map(|(n, e)| (n.to_string(), e))
        .into();
    assert_eq!(
        find_cycle("a", &environments),
        None,
        "a is upstream of the cycle, not on it"
    );
    assert_eq!(
        find_cycle("b", &environments),
        Some(vec!["b".to_string(), "c".into(), "b".into()])
    );
    assert_eq!(
        find_cycle("d", &environments),
        Some(vec!["d".to_string(), "d".into()]),
        "its own upstream"
    );
}

#[test]
fn unreadable_clock_gates_are_named_in_gates_valid_and_ready_and_absent_gates_add_no_condition() {
    let objects = Objects::new(environment(
        "prod",
        r#"  gates:
    soak: {duration: 0s}
    windows:
      - {name: freeze, type: Deny, schedule: "0 18 * * FRI", duration: 1h, timeZone: Europe/Nowhere}"#,
    ));
    let validation = validate(&objects.snapshot());
    let problems = "spec.gates.soak.duration: \"0s\" must be longer than zero; \
                        spec.gates.windows[0].timeZone: \"Europe/Nowhere\" is not an IANA time zone such as Europe/Berlin";
    assert_eq!(
        condition(&validation, GATES_VALID),
        ("False".into(), "InvalidGates".into(), problems.into())
    );
    assert_eq!(
        condition(&validation, crate::api::CONDITION_READY),
        ("False".into(), "InvalidSpec".into(), problems.into())
    );

    let fine = Objects::new(environment("prod", "  gates: {soak: {duration: 30m}}"));
    assert_eq!(
        condition(&validate(&fine.snapshot()), GATES_VALID),
        (
            "True".into(),
            "Valid".into(),
            "soak, change windows and verification steps are valid".into()
        )
    );
    let none = Objects::new(environment("prod", ""));
    assert!(conditions::find(&validate(&none.snapshot()).conditions, GATES_VALID).is_none());
}

#[test]
fn an_environment_with_a_job_step_or_secret_reference_says_when_the_operator_acts_on_neither() {
    let spec = "  config: [{application: shop, secretRefs: [{name: db}]}]\n  gates: {verification: [{name: smoke, job: {image: smoke:1}}]}";
    let mut objects = Objects::new(environment("prod", spec));
    objects.configs.insert(
        "shop".into(),
        Err(ConfigError::SecretNotRead {
            application: "shop".into(),
            namespace: "shop".into(),
            name: "db".into(),
        }),
    );
    let enforced = {
        let mut objects = Objects::new(environment("prod", spec));
        objects.configs = BTreeMap::new();
        validate(&objects.snapshot())
    };
    assert_eq!(conditions::find(&enforced.conditions, TENANT_BOUNDARIES), None);
    objects.boundaries = crate::core::tenancy::Boundaries::Unenforced {
        policy: "hoist-environments".into(),
        reason: "the ValidatingAdmissionPolicy hoist-environments is not installed".into(),
    };
    let validation = validate(&objects.snapshot());
    let held = crate::core::tenancy::held(objects.snapshot().environment, &objects.boundaries).expect("held");
    assert_eq!(
        condition(&validation, TENANT_BOUNDARIES),
        ("False".into(), "PolicyMissing".into(), held.clone())
    );
    assert_eq!(
        validation.not_ready,
        owned(&[("shop", &format!("TenantBoundaries: {held}"))]),
        "the hold is what each application waits for"
    );
    let not_read = "Secret shop/db (spec.config[application=shop].secretRefs) not read: the admission policy on \
                    Environments is not enforced (condition TenantBoundaries)";
    assert_eq!(
        condition(&validation, CONFIG_VALID),
        ("False".into(), "InvalidConfig".into(), not_read.into())
    );
    assert_eq!(condition(&validation, crate::api::CONDITION_READY).0, "False");
    // Trusted without the policy, the operator acts: no condition.
    objects.boundaries = crate::core::tenancy::Boundaries::Trusted;
    assert_eq!(
        conditions::find(&validate(&objects.snapshot()).conditions, TENANT_BOUNDARIES),
        None
    );
}

#[test]
fn an_environment_held_only_by_the_missing_policy_is_unready_for_that_reason() {
    let mut objects = Objects::new(environment(
        "prod",
        "  gates: {verification: [{name: smoke, job: {image: smoke:1}}]}",
    ));
    objects.boundaries = crate::core::tenancy::Boundaries::Unenforced {
        policy: "hoist-environments".into(),
        reason: "the ValidatingAdmissionPolicy hoist-environments is not installed".into(),
    };
    let validation = validate(&objects.snapshot());
    let (status, reason, _) = condition(&validation, crate::api::CONDITION_READY);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PolicyMissing"));
}

#[test]
fn workload_targets_of_each_kind_are_found_by_kind_and_unserved_kinds_are_named() {
    let mut objects = Objects::new(yaml(
        r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop, generation: 3}
spec:
  rollout: {timeout: 0s}
  targets:
    - {application: shop, component: backend, workload: {kind: Deployment, name: backend}, container: app}
    - {application: queue, component: queue, workload: {kind: StatefulSet, name: backend}, container: app}
    - {application: canary, component: api, workload: {kind: Rollout, name: api}, container: api}
"#,
    ));
    objects.unserved = [crate::api::WorkloadKind::Rollout].into();
    let validation = validate(&objects.snapshot());
    assert_eq!(
        validation.not_ready,
        owned(&[
            (
                "canary",
                "spec.targets[2].workload.kind: the operator does not act on Rollout (argoproj.io/v1alpha1) here: \
                 the cluster does not serve it or Argo Rollouts is not enabled; install Argo Rollouts and set \
                 the chart value argoRollouts.enabled, or target another kind"
            ),
            (
                "queue",
                "spec.targets[1].workload: StatefulSet shop/backend not found"
            ),
        ]),
        "a Deployment of the same name is not the StatefulSet"
    );
    let problems = [
        "spec.rollout.timeout: \"0s\" must be longer than zero",
        "spec.targets[1].workload: StatefulSet shop/backend not found",
        "spec.targets[2].workload.kind: the operator does not act on Rollout (argoproj.io/v1alpha1) here: \
         the cluster does not serve it or Argo Rollouts is not enabled; install Argo Rollouts and set \
         the chart value argoRollouts.enabled, or target another kind",
    ]
    .join("; ");
    assert_eq!(
        condition(&validation, TARGETS_VALID),
        ("False".into(), "InvalidTarget".into(), problems)
    );
}
