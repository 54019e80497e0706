//! ValidatingAdmissionPolicy and its binding: served, validated, and
//! evaluated on the writes they match, after schema validation.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::CustomResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{Widget, create_cluster, create_in, send, status_of, widget};

const WIDGETS: &str = "/apis/test.hoist.dev/v1/namespaces/default/widgets";

async fn server() -> StandIn {
    StandIn::builder()
        .crds([Widget::crd()])
        .user("alice", &["approvers"])
        .user("bob", &[])
        .start()
        .await
        .expect("stand-in")
}

/// A policy on widgets (operations as given) with these validations.
fn policy(name: &str, operations: &[&str], resources: &[&str], spec: Value) -> Value {
    let mut object = json!({
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["test.hoist.dev"], "apiVersions": ["v1"], "operations": operations, "resources": resources,
            }]},
        },
    });
    if let (Some(target), Some(extra)) = (object["spec"].as_object_mut(), spec.as_object()) {
        target.extend(extra.clone());
    }
    object
}

async fn install(server: &StandIn, policy: Value, binding: Value) {
    let admin = server.client();
    create_cluster::<ValidatingAdmissionPolicy>(&admin, policy).await;
    create_cluster::<ValidatingAdmissionPolicyBinding>(&admin, binding).await;
}

fn binding(name: &str, policy: &str, actions: &[&str]) -> Value {
    json!({"metadata": {"name": name}, "spec": {"policyName": policy, "validationActions": actions}})
}

async fn create_widget(
    client: &kube::Client,
    name: &str,
    color: &str,
    size: i32,
) -> Result<Widget, kube::Error> {
    Api::<Widget>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &widget(name, color, size))
        .await
}

fn denied(result: Result<Widget, kube::Error>) -> Status {
    status_of(result)
}

fn denial(resource: &str, name: &str, policy: &str, binding: &str, message: &str) -> String {
    format!(
        "{resource} \"{name}\" is forbidden: ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {message}"
    )
}

#[tokio::test]
async fn a_bound_policy_denies_with_its_message_and_the_code_of_its_reason() {
    let server = server().await;
    let admin = server.client();
    let spec = json!({"validations": [
        {"expression": "object.spec.size <= 10", "message": "size must be at most 10"},
        {"expression": "object.spec.color != 'black'", "messageExpression": "'color ' + object.spec.color + ' is not allowed'", "reason": "Forbidden"},
        {"expression": "object.spec.color != 'grey'", "messageExpression": "object.spec.size", "message": "no grey"},
        {"expression": "object.spec.color != 'white'"},
    ]});
    create_cluster::<ValidatingAdmissionPolicy>(
        &admin,
        policy("small", &["CREATE", "UPDATE"], &["widgets"], spec),
    )
    .await;
    create_widget(&admin, "unbound", "red", 99)
        .await
        .expect("a policy without a binding does nothing");
    create_cluster::<ValidatingAdmissionPolicyBinding>(&admin, binding("small-binding", "small", &["Deny"]))
        .await;

    create_widget(&admin, "fine", "red", 3).await.expect("allowed");
    let big = denied(create_widget(&admin, "big", "red", 11).await);
    assert_eq!((big.code, big.reason.as_str()), (422, "Invalid"));
    let message = denial(
        "widgets.test.hoist.dev",
        "big",
        "small",
        "small-binding",
        "size must be at most 10",
    );
    assert_eq!(big.message, message);
    let details = big.details.expect("details");
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("big", "test.hoist.dev", "widgets")
    );
    assert_eq!(
        details
            .causes
            .iter()
            .map(|cause| cause.message.as_str())
            .collect::<Vec<_>>(),
        [message.split_once("is forbidden: ").expect("cause").1]
    );
    let black = denied(create_widget(&admin, "black", "black", 1).await);
    assert_eq!((black.code, black.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        black.message,
        denial(
            "widgets.test.hoist.dev",
            "black",
            "small",
            "small-binding",
            "color black is not allowed"
        )
    );
    // The first failed validation is the one reported.
    let both = denied(create_widget(&admin, "both", "black", 11).await);
    assert_eq!(
        (both.code, both.message.ends_with("size must be at most 10")),
        (422, true)
    );
    // A messageExpression that is not a string falls back to the message,
    // and without a message the expression is named.
    let grey = denied(create_widget(&admin, "grey", "grey", 1).await);
    assert!(
        grey.message.ends_with("denied request: no grey"),
        "{}",
        grey.message
    );
    let white = denied(create_widget(&admin, "white", "white", 1).await);
    assert!(
        white
            .message
            .ends_with("denied request: failed expression: object.spec.color != 'white'"),
        "{}",
        white.message
    );

    // Schema validation comes first.
    let answer = send(&admin, "POST", WIDGETS, &[], Some(&json!({
        "apiVersion": "test.hoist.dev/v1", "kind": "Widget", "metadata": {"name": "typo"}, "spec": {"color": "red", "size": "eleven"},
    })))
    .await;
    assert_eq!(answer.code, 422);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|text| text.starts_with("Widget.test.hoist.dev \"typo\" is invalid: spec.size")),
        "{}",
        answer.body
    );

    // Updates are admitted too.
    let api: Api<Widget> = Api::namespaced(admin, "default");
    let grown = status_of(
        api.patch(
            "fine",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"size": 12}})),
        )
        .await,
    );
    assert_eq!(
        grown.message,
        denial(
            "widgets.test.hoist.dev",
            "fine",
            "small",
            "small-binding",
            "size must be at most 10"
        )
    );
}

#[tokio::test]
async fn a_rule_for_a_resource_does_not_match_its_subresources() {
    let server = server().await;
    install(
        &server,
        policy(
            "frozen",
            &["UPDATE"],
            &["widgets"],
            json!({"validations": [{"expression": "false", "message": "spec is frozen"}]}),
        ),
        binding("frozen", "frozen", &["Deny"]),
    )
    .await;
    install(
        &server,
        policy(
            "ready-later",
            &["*"],
            &["widgets/status"],
            json!({"validations": [{"expression": "!object.status.ready", "message": "not ready yet"}]}),
        ),
        binding("ready-later", "ready-later", &["Deny"]),
    )
    .await;
    let admin = server.client();
    create_widget(&admin, "w", "red", 1)
        .await
        .expect("CREATE is not matched");
    let api: Api<Widget> = Api::namespaced(admin, "default");
    let frozen = status_of(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"size": 2}})),
        )
        .await,
    );
    assert_eq!(
        frozen.message,
        denial(
            "widgets.test.hoist.dev",
            "w",
            "frozen",
            "frozen",
            "spec is frozen"
        )
    );
    api.patch_status(
        "w",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"ready": false}})),
    )
    .await
    .expect("a status write is not matched by a rule for widgets");
    let ready = status_of(
        api.patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"ready": true}})),
        )
        .await,
    );
    assert_eq!(
        ready.message,
        denial(
            "widgets.test.hoist.dev",
            "w",
            "ready-later",
            "ready-later",
            "not ready yet"
        )
    );
}

#[tokio::test]
async fn match_conditions_variables_and_the_old_object() {
    let server = server().await;
    let spec = json!({
        "matchConditions": [{"name": "not-exempt", "expression": "!has(object.metadata.labels) || !('exempt' in object.metadata.labels)"}],
        "variables": [
            {"name": "grows", "expression": "oldObject == null || object.spec.size >= oldObject.spec.size"},
            {"name": "broken", "expression": "object.spec.missing"},
            {"name": "growsAndIsRed", "expression": "variables.grows && object.spec.color == 'red'"},
        ],
        "validations": [
            {"expression": "variables.grows", "messageExpression": "'size may only grow, not to ' + string(object.spec.size)"},
            {"expression": "variables.growsAndIsRed || object.spec.color != 'red'", "message": "unreachable"},
        ],
    });
    install(
        &server,
        policy("growing", &["CREATE", "UPDATE"], &["widgets"], spec),
        binding("growing", "growing", &["Deny"]),
    )
    .await;
    let admin = server.client();
    let api: Api<Widget> = Api::namespaced(admin.clone(), "default");
    create_widget(&admin, "w", "red", 5)
        .await
        .expect("no old object on create");
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"size": 6}})),
    )
    .await
    .expect("grows");
    let shrunk = status_of(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"size": 3}})),
        )
        .await,
    );
    assert_eq!(
        shrunk.message,
        denial(
            "widgets.test.hoist.dev",
            "w",
            "growing",
            "growing",
            "size may only grow, not to 3"
        )
    );
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"exempt": "yes"}}, "spec": {"size": 1}})),
    )
    .await
    .expect("a false match condition skips the policy");

    // A variable that fails fails only what reads it, by the failure policy.
    let reads_broken = |name: &str, failure_policy: &str| {
        policy(
            name,
            &["CREATE"],
            &["widgets"],
            json!({
                "failurePolicy": failure_policy,
                "variables": [{"name": "broken", "expression": "object.spec.missing"}],
                "validations": [{"expression": "variables.broken == 1"}],
            }),
        )
    };
    install(
        &server,
        reads_broken("reads-broken-ignored", "Ignore"),
        binding("reads-broken-ignored", "reads-broken-ignored", &["Deny"]),
    )
    .await;
    create_widget(&admin, "ignored", "blue", 1)
        .await
        .expect("an error is ignored with failurePolicy Ignore");
    install(
        &server,
        reads_broken("reads-broken", "Fail"),
        binding("reads-broken", "reads-broken", &["Deny"]),
    )
    .await;
    let failed = denied(create_widget(&admin, "failed", "blue", 1).await);
    assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        failed.message,
        denial(
            "widgets.test.hoist.dev",
            "failed",
            "reads-broken",
            "reads-broken",
            "expression 'variables.broken == 1' resulted in error: no such key: missing"
        )
    );
}

#[tokio::test]
async fn failure_policy_decides_on_evaluation_errors_also_in_match_conditions() {
    let server = server().await;
    let failing = |name: &str, failure_policy: &str| {
        policy(
            name,
            &["CREATE"],
            &["widgets"],
            json!({
                "failurePolicy": failure_policy,
                "matchConditions": [{"name": "always", "expression": "object.spec.missing == 1"}],
                "validations": [{"expression": "true"}],
            }),
        )
    };
    install(
        &server,
        failing("condition-ignored", "Ignore"),
        binding("condition-ignored", "condition-ignored", &["Deny"]),
    )
    .await;
    let admin = server.client();
    create_widget(&admin, "a", "red", 1).await.expect("ignored");
    install(
        &server,
        failing("condition-fails", "Fail"),
        binding("condition-fails", "condition-fails", &["Deny"]),
    )
    .await;
    let failed = denied(create_widget(&admin, "b", "red", 1).await);
    assert_eq!(
        failed.message,
        denial(
            "widgets.test.hoist.dev",
            "b",
            "condition-fails",
            "condition-fails",
            "expression 'object.spec.missing == 1' resulted in error: no such key: missing"
        )
    );
}

#[tokio::test]
async fn the_authorizer_checks_the_custom_verb_approve_on_named_environments() {
    let server = server().await;
    let admin = server.client();
    create_in::<Role>(&admin, "default", json!({
        "metadata": {"name": "widget-writer"},
        "rules": [{"apiGroups": ["test.hoist.dev"], "resources": ["widgets"], "verbs": ["create", "update", "patch", "get"]}],
    }))
    .await;
    create_in::<Role>(&admin, "default", json!({
        "metadata": {"name": "prod-approver"},
        "rules": [{"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]}],
    }))
    .await;
    for (name, role, group) in [
        ("writers", "widget-writer", "system:authenticated"),
        ("approvers", "prod-approver", "approvers"),
    ] {
        create_in::<RoleBinding>(
            &admin,
            "default",
            json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}],
            }),
        )
        .await;
    }
    let spec = json!({
        "variables": [{"name": "environment", "expression": "object.spec.color"}],
        "validations": [
            {
                "expression": "request.kind.kind == 'Widget' && request.resource.resource == 'widgets' && request.namespace == 'default' && request.name == object.metadata.name && !request.dryRun && request.operation == 'CREATE'",
                "message": "the request is not described as it was made",
            },
            {
                "expression": "authorizer.group('hoist.dev').resource('environments').namespace(object.metadata.namespace).name(variables.environment).check('approve').allowed()",
                "messageExpression": "'user ' + request.userInfo.username + ' may not approve promotions into environment ' + variables.environment + ': needs RBAC verb approve on environments/' + variables.environment",
                "reason": "Forbidden",
            },
            {
                "expression": "request.userInfo.groups.exists(group, group == 'approvers')",
                "messageExpression": "'groups ' + request.userInfo.groups.join(', ') + ' are not approvers'",
            },
        ],
    });
    install(
        &server,
        policy("approvals", &["CREATE"], &["widgets"], spec),
        binding("approvals", "approvals", &["Deny"]),
    )
    .await;
    let alice = server.client_for("alice").expect("alice");
    let bob = server.client_for("bob").expect("bob");
    create_widget(&alice, "to-prod", "prod", 1)
        .await
        .expect("alice may approve prod");
    let dev = denied(create_widget(&alice, "to-dev", "dev", 1).await);
    assert_eq!((dev.code, dev.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        dev.message,
        denial(
            "widgets.test.hoist.dev",
            "to-dev",
            "approvals",
            "approvals",
            "user alice may not approve promotions into environment dev: needs RBAC verb approve on environments/dev"
        )
    );
    let by_bob = denied(create_widget(&bob, "bobs", "prod", 1).await);
    assert!(by_bob.message.ends_with("user bob may not approve promotions into environment prod: needs RBAC verb approve on environments/prod"), "{}", by_bob.message);
    // Impersonated users are who the policy sees.
    let mut config = server.config();
    config.auth_info.impersonate = Some("carol".to_owned());
    config.auth_info.impersonate_groups = Some(vec!["approvers".to_owned()]);
    let carol = kube::Client::try_from(config).expect("carol");
    create_widget(&carol, "carols", "prod", 1)
        .await
        .expect("carol is an approver");
    let mut config = server.config();
    config.auth_info.impersonate = Some("dave".to_owned());
    let dave = kube::Client::try_from(config).expect("dave");
    let daves = denied(create_widget(&dave, "daves", "prod", 1).await);
    assert!(daves.message.ends_with("user dave may not approve promotions into environment prod: needs RBAC verb approve on environments/prod"), "{}", daves.message);
}

#[tokio::test]
async fn warn_reports_in_a_header_and_audit_only_admits() {
    let server = server().await;
    let deny_red = |name: &str| {
        policy(
            name,
            &["CREATE"],
            &["widgets"],
            json!({"validations": [{"expression": "object.spec.color != 'red'", "message": "red is discouraged"}]}),
        )
    };
    install(
        &server,
        deny_red("warned"),
        binding("warned", "warned", &["Warn"]),
    )
    .await;
    install(
        &server,
        deny_red("audited"),
        binding("audited", "audited", &["Audit"]),
    )
    .await;
    let body = serde_json::to_value(widget("red-one", "red", 1)).expect("json");
    let answer = send(&server.client(), "POST", WIDGETS, &[], Some(&body)).await;
    assert_eq!(answer.code, 201, "{}", answer.body);
    assert_eq!(
        answer.warnings,
        [
            "299 - \"Validation failed for ValidatingAdmissionPolicy 'warned' with binding 'warned': red is discouraged\""
        ]
    );
    let blue = serde_json::to_value(widget("blue-one", "blue", 1)).expect("json");
    assert!(
        send(&server.client(), "POST", WIDGETS, &[], Some(&blue))
            .await
            .warnings
            .is_empty()
    );
}

#[tokio::test]
async fn namespace_and_object_selectors_and_binding_match_resources_narrow_a_policy() {
    let server = server().await;
    let admin = server.client();
    for (name, environment) in [("prod-ns", "prod"), ("dev-ns", "dev")] {
        create_cluster::<Namespace>(
            &admin,
            json!({"metadata": {"name": name, "labels": {"environment": environment}}}),
        )
        .await;
    }
    let mut selected = policy(
        "selected",
        &["CREATE"],
        &["widgets"],
        json!({"validations": [{
            "expression": "false",
            "messageExpression": "'selected in ' + namespaceObject.metadata.labels.environment",
        }]}),
    );
    selected["spec"]["matchConstraints"]["namespaceSelector"] =
        json!({"matchExpressions": [{"key": "environment", "operator": "In", "values": ["prod", "dev"]}]});
    selected["spec"]["matchConstraints"]["objectSelector"] = json!({"matchLabels": {"checked": "yes"}});
    let mut narrowed = binding("prod-only", "selected", &["Deny"]);
    narrowed["spec"]["matchResources"] =
        json!({"namespaceSelector": {"matchLabels": {"environment": "prod"}}});
    install(&server, selected, narrowed).await;
    let create = |namespace: &str, name: &str, checked: bool| {
        let admin = admin.clone();
        let mut object = widget(name, "red", 1);
        if checked {
            object.metadata.labels = Some([("checked".to_owned(), "yes".to_owned())].into());
        }
        let namespace = namespace.to_owned();
        async move {
            Api::<Widget>::namespaced(admin, &namespace)
                .create(&PostParams::default(), &object)
                .await
        }
    };
    let refused = denied(create("prod-ns", "checked", true).await);
    assert_eq!(
        refused.message,
        denial(
            "widgets.test.hoist.dev",
            "checked",
            "selected",
            "prod-only",
            "selected in prod"
        )
    );
    create("prod-ns", "unchecked", false)
        .await
        .expect("the object selector does not select it");
    create("dev-ns", "checked", true)
        .await
        .expect("the binding does not select dev-ns");
    create("default", "checked", true)
        .await
        .expect("the policy does not select default");
}

#[tokio::test]
async fn deletes_are_admitted_with_the_old_object() {
    let server = server().await;
    install(&server, policy("keep", &["DELETE"], &["widgets"], json!({"validations": [{"expression": "oldObject.spec.color != 'keep' && object == null", "message": "kept"}]})), binding("keep", "keep", &["Deny"])).await;
    let admin = server.client();
    create_widget(&admin, "kept", "keep", 1).await.expect("created");
    create_widget(&admin, "gone", "red", 1).await.expect("created");
    let api: Api<Widget> = Api::namespaced(admin, "default");
    api.delete("gone", &DeleteParams::default())
        .await
        .expect("deleted");
    let kept = status_of(api.delete("kept", &DeleteParams::default()).await);
    // The server names no object on a delete.
    assert_eq!(
        kept.message,
        denial("widgets.test.hoist.dev", "Unknown", "keep", "keep", "kept")
    );
    api.get("kept").await.expect("still there");
}

#[tokio::test]
async fn policies_and_bindings_are_validated_and_defaulted_when_written() {
    let server = server().await;
    let admin = server.client();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(admin.clone());
    let defaulted = create_cluster::<ValidatingAdmissionPolicy>(
        &admin,
        policy(
            "defaults",
            &["CREATE"],
            &["widgets"],
            json!({"validations": [{"expression": "true"}]}),
        ),
    )
    .await;
    let spec = defaulted.spec.expect("spec");
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
    let constraints = spec.match_constraints.expect("constraints");
    assert_eq!(constraints.match_policy.as_deref(), Some("Equivalent"));
    assert!(constraints.namespace_selector.is_some() && constraints.object_selector.is_some());
    assert_eq!(
        constraints.resource_rules.expect("rules")[0].scope.as_deref(),
        Some("*")
    );

    let invalid = |spec: Value| {
        let object: ValidatingAdmissionPolicy =
            serde_json::from_value(policy("invalid", &["CREATE"], &["widgets"], spec)).expect("policy");
        let policies = policies.clone();
        async move { status_of(policies.create(&PostParams::default(), &object).await).message }
    };
    assert_eq!(
        invalid(json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "true"}]})).await,
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"invalid\" is invalid: spec.paramKind: Forbidden: policy parameters are not supported by the kube-standin API server"
    );
    assert_eq!(
        invalid(json!({"validations": []})).await,
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"invalid\" is invalid: [spec.validations: Required value: validations or auditAnnotations must contain at least one item, spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item]"
    );
    assert_eq!(
        invalid(json!({"failurePolicy": "Sometimes", "validations": [{"expression": "self.size > 1", "messageExpression": "authorizer.path('/').check('get').reason()", "reason": "Teapot"}]})).await,
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"invalid\" is invalid: [spec.failurePolicy: Unsupported value: \"Sometimes\": supported values: \"Fail\", \"Ignore\", spec.validations[0].expression: Invalid value: \"self.size > 1\": compilation failed: ERROR: <input>: undeclared reference to 'self' (in container ''), spec.validations[0].messageExpression: Invalid value: \"authorizer.path('/').check('get').reason()\": compilation failed: ERROR: <input>: undeclared reference to 'authorizer' (in container ''), spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"]"
    );
    let mut without_rules = policy(
        "invalid",
        &["CREATE"],
        &["widgets"],
        json!({"validations": [{"expression": "true"}]}),
    );
    without_rules["spec"]["matchConstraints"] = json!({"resourceRules": [{"apiGroups": [], "apiVersions": ["v1"], "operations": ["PUT"], "resources": ["*", "widgets"]}]});
    let object: ValidatingAdmissionPolicy = serde_json::from_value(without_rules).expect("policy");
    assert_eq!(
        status_of(policies.create(&PostParams::default(), &object).await).message,
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"invalid\" is invalid: [spec.matchConstraints.resourceRules[0].operations[0]: Unsupported value: \"PUT\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\", spec.matchConstraints.resourceRules[0].apiGroups: Required value, spec.matchConstraints.resourceRules[0].resources: Invalid value: [\"*\",\"widgets\"]: if '*' is present, must not specify other resources without subresources]"
    );

    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(admin);
    for (actions, message) in [
        (
            json!([]),
            "spec.validationActions: Required value: at least one validation action is required",
        ),
        (
            json!(["Deny", "Warn"]),
            "spec.validationActions: Invalid value: [\"Deny\",\"Warn\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ),
    ] {
        let object: ValidatingAdmissionPolicyBinding =
            serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": {"policyName": "defaults", "validationActions": actions}})).expect("binding");
        assert_eq!(
            status_of(bindings.create(&PostParams::default(), &object).await).message,
            format!(
                "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io \"b\" is invalid: {message}"
            )
        );
    }
}
