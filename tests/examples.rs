//! The shipped examples are valid for the API server, and the schema refuses
//! broken objects naming the field. Runs against the stand-in, or a real
//! cluster with HOIST_TEST_KUBECONFIG.

use std::collections::BTreeMap;
use std::path::Path;

use hoist::api::{Artifact, Environment, Promotion};
use hoist::render::Manifests;
use hoist_testkit::cluster::TestCluster;
use hoist_testkit::example::{ExampleFile, apply_server_side, into_namespaces, shop_cluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::response::StatusCause;
use kube::{Resource, ResourceExt};
use serde_json::json;

fn shop() -> Manifests {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/shop");
    Manifests::load(&dir, "default").expect("the shop example loads")
}

/// Moves an example object into the test's namespace.
fn into_namespace<K: Resource + Clone>(object: &K, namespace: &str) -> K {
    let mut object = object.clone();
    object.meta_mut().namespace = Some(namespace.to_string());
    object
}

/// An API server's refusal of a write.
#[derive(Debug)]
struct Refusal {
    code: u16,
    reason: String,
    message: String,
    causes: Vec<StatusCause>,
}

/// The API error of a failed call.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Refusal {
    match result {
        Err(kube::Error::Api(status)) => Refusal {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
            causes: status
                .details
                .clone()
                .map(|details| details.causes)
                .unwrap_or_default(),
        },
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// How `field.Error` words each cause reason (apimachinery's
/// `ErrorType.String()`), the part of a message every API server shares.
fn error_type_text(reason: &str) -> &'static str {
    match reason {
        "FieldValueInvalid" | "FieldValueTypeInvalid" => "Invalid value",
        "FieldValueRequired" => "Required value",
        "FieldValueForbidden" => "Forbidden",
        "FieldValueNotSupported" => "Unsupported value",
        "FieldValueDuplicate" => "Duplicate value",
        "FieldValueTooLong" => "Too long",
        "FieldValueTooMany" => "Too many",
        other => panic!("no field error type {other}"),
    }
}

impl Refusal {
    /// `(field, reason)` of every cause.
    fn fields(&self) -> Vec<(String, String)> {
        self.causes
            .iter()
            .map(|cause| (cause.field.clone(), cause.reason.clone()))
            .collect()
    }

    /// Asserts a 422 `Invalid` whose causes are exactly `expected`, as
    /// `(field, reason, detail)`: each cause's message is the field error's
    /// body (`<type>: ...`, e.g. `Invalid value: ...`) holding `detail` (a CEL
    /// rule's own message, a schema pattern), and the Status message names it
    /// as `<field>: <type>`. The rest of the wording is the API server's own
    /// and is not asserted.
    fn assert_invalid(&self, expected: &[(&str, &str, &str)]) {
        assert_eq!((self.code, self.reason.as_str()), (422, "Invalid"), "{self:?}");
        let expected_fields: Vec<(String, String)> = expected
            .iter()
            .map(|(field, reason, _)| (field.to_string(), reason.to_string()))
            .collect();
        assert_eq!(self.fields(), expected_fields, "{self:?}");
        for ((field, reason, detail), cause) in expected.iter().zip(&self.causes) {
            let kind = error_type_text(reason);
            assert!(
                cause.message.starts_with(kind) && cause.message.contains(detail),
                "the cause of {field} says {:?}; expected {kind:?} ... {detail:?}",
                cause.message
            );
            assert!(
                self.message.contains(&format!("{field}: {kind}")) && self.message.contains(detail),
                "message: {}",
                self.message
            );
        }
    }
}

/// The example's people, as a cluster admin would grant them: carol asks
/// for Promotions, alice (staff) and dave (client) may approve anywhere in
/// the namespace.
async fn grant_promoters_and_approvers(cluster: &TestCluster) {
    let ns = cluster.namespace();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "example-people"},
        "rules": [
            {"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "list", "watch", "create", "patch", "update"]},
            {"apiGroups": ["hoist.dev"], "resources": ["environments"], "verbs": ["get", "list", "approve"]},
        ]
    }))
    .expect("role");
    Api::<Role>::namespaced(cluster.client(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "example-people"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "example-people"},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave"}
        ]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(cluster.client(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create binding");
}

/// The example's first Promotion (requested by carol), created by carol.
async fn carols_promotion(cluster: &TestCluster) -> Promotion {
    grant_promoters_and_approvers(cluster).await;
    let mut promotion = shop().promotions[0].clone();
    promotion.metadata.namespace = Some(cluster.namespace().to_string());
    let carol = cluster.user_client("carol", &[]).expect("carol's client");
    Api::<Promotion>::namespaced(carol, cluster.namespace())
        .create(&PostParams::default(), &promotion)
        .await
        .expect("promotion accepted")
}

#[tokio::test]
async fn shop_example_is_accepted_by_the_api_server() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    let example = shop();
    let client = cluster.client();
    let params = PostParams::default();

    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), ns);
    for artifact in &example.artifacts {
        let created = artifacts
            .create(&params, &into_namespace(artifact, ns))
            .await
            .expect("artifact accepted");
        assert_eq!(created.spec, artifact.spec, "stored as written");
    }
    let environments: Api<Environment> = Api::namespaced(client.clone(), ns);
    for environment in &example.environments {
        let created = environments
            .create(&params, &into_namespace(environment, ns))
            .await
            .expect("environment accepted");
        assert_eq!(
            created.spec, environment.spec,
            "stored as written, defaults equal to the typed defaults"
        );
    }
    // On a cluster the admission policy requires each Promotion to be
    // created by its requester and each approval to be added by its
    // approver (the example's approvals are what `hoist render` reads).
    grant_promoters_and_approvers(&cluster).await;
    for promotion in &example.promotions {
        let requester = promotion
            .spec
            .requested_by
            .clone()
            .expect("the example names its requester");
        let mut asked = into_namespace(promotion, ns);
        asked.spec.approvals.clear();
        let as_requester = cluster.user_client(&requester, &[]).expect("requester's client");
        Api::<Promotion>::namespaced(as_requester, ns)
            .create(&params, &asked)
            .await
            .expect("promotion accepted");
        for approval in &promotion.spec.approvals {
            let groups: Vec<&str> = approval.groups.iter().map(String::as_str).collect();
            let approver = cluster
                .user_client(&approval.user, &groups)
                .expect("approver's client");
            hoist::plugin::approve(&approver, ns, &promotion.name_any(), approval.comment.as_deref())
                .await
                .unwrap_or_else(|error| {
                    panic!("{} approves {}: {error}", approval.user, promotion.name_any())
                });
        }
    }
    let promotions: Api<Promotion> = Api::namespaced(client.clone(), ns);
    for promotion in &example.promotions {
        let stored = promotions.get(&promotion.name_any()).await.expect("stored");
        let stored: Vec<(String, Vec<String>)> = stored
            .spec
            .approvals
            .iter()
            .map(|a| (a.user.clone(), a.groups.clone()))
            .collect();
        // The example's groups, and the one every authenticated user has.
        let expected: Vec<(String, Vec<String>)> = promotion
            .spec
            .approvals
            .iter()
            .map(|a| {
                let mut groups = a.groups.clone();
                groups.push("system:authenticated".into());
                (a.user.clone(), groups)
            })
            .collect();
        assert_eq!(stored, expected, "{}", promotion.name_any());
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for config_map in &example.config_maps {
        config_maps
            .create(&params, &into_namespace(config_map, ns))
            .await
            .expect("config map accepted");
    }
    assert_eq!(
        (
            artifacts
                .list(&Default::default())
                .await
                .expect("list")
                .items
                .len(),
            environments
                .list(&Default::default())
                .await
                .expect("list")
                .items
                .len()
        ),
        (1, 3)
    );
}

#[tokio::test]
async fn server_fills_in_defaults_a_minimal_environment_leaves_out() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let environments: Api<Environment> = Api::namespaced(cluster.client(), cluster.namespace());
    let minimal = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "dev"},
        "spec": {"gates": {"approval": {}}}
    });
    let created = environments
        .patch("dev", &PatchParams::apply("hoist-tests"), &Patch::Apply(&minimal))
        .await
        .expect("minimal environment accepted");
    assert_eq!(created.spec.history_limit, 20);
    let approval = created.spec.gates.approval.expect("approval gate kept");
    assert_eq!(
        (
            approval.min_approvals,
            approval.forbid_self_approval,
            approval.allow_unverified,
            approval.rules.len()
        ),
        (1, true, false, 0),
        "self-approval is forbidden and only verified approvals count unless the gate says otherwise"
    );
    assert_eq!(approval.required, hoist::api::ApprovalRequired::Always);
}

fn artifact_json(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
        "metadata": {"name": name},
        "spec": {
            "application": "shop", "version": "1.4.2",
            "images": [{"component": "backend", "image": "registry.example.com/shop/backend:1.4.2"}]
        }
    })
}

async fn create_json(api: &Api<Artifact>, value: serde_json::Value) -> Result<Artifact, kube::Error> {
    let artifact: Artifact = serde_json::from_value(value).expect("typed artifact");
    api.create(&PostParams::default(), &artifact).await
}

#[tokio::test]
async fn bad_digest_is_refused_naming_the_field() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Artifact> = Api::namespaced(cluster.client(), cluster.namespace());
    let mut artifact = artifact_json("bad-digest");
    artifact["spec"]["images"][0]["digest"] = json!("sha256:not-a-digest");
    refusal(create_json(&api, artifact).await).assert_invalid(&[(
        "spec.images[0].digest",
        "FieldValueInvalid",
        "should match '^sha256:[a-f0-9]{64}$'",
    )]);
}

#[tokio::test]
async fn missing_required_field_is_refused_naming_the_field() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Artifact> = Api::namespaced(cluster.client(), cluster.namespace());
    let mut artifact = artifact_json("no-application");
    artifact["spec"]["application"] = json!("");
    let empty = refusal(create_json(&api, artifact).await);
    // minLength and pattern both refuse it; a server may report one or both.
    let reported = empty.causes.len().clamp(1, 2);
    empty.assert_invalid(&vec![("spec.application", "FieldValueInvalid", ""); reported]);

    // A document with the field absent altogether (typed clients cannot send that).
    let mut raw = artifact_json("absent-application");
    raw["spec"]
        .as_object_mut()
        .expect("spec object")
        .remove("application");
    refusal(
        api.patch(
            "absent-application",
            &PatchParams::apply("hoist-tests"),
            &Patch::Apply(&raw),
        )
        .await,
    )
    .assert_invalid(&[
        ("spec.application", "FieldValueRequired", ""),
        // The API server does not run the CRD's CEL rules on an object missing
        // a field, and says so in a cause of its own.
        (
            "<nil>",
            "FieldValueInvalid",
            "some validation rules were not checked because the object was invalid; correct the existing errors to \
             complete validation",
        ),
    ]);
}

#[tokio::test]
async fn artifact_spec_cannot_change_after_creation() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Artifact> = Api::namespaced(cluster.client(), cluster.namespace());
    let created = create_json(&api, artifact_json("immutable"))
        .await
        .expect("valid artifact accepted");
    let mut changed = created.clone();
    changed.spec.images[0].image = "registry.example.com/shop/backend:1.4.3".into();
    refusal(api.replace("immutable", &PostParams::default(), &changed).await).assert_invalid(&[(
        "spec",
        "FieldValueInvalid",
        "Artifact spec is immutable: create a new Artifact for a new release",
    )]);

    // Writing the same spec back is not a change and is accepted.
    let unchanged = api.get("immutable").await.expect("get");
    api.replace("immutable", &PostParams::default(), &unchanged)
        .await
        .expect("unchanged spec accepted");
    assert_eq!(api.get("immutable").await.expect("get").spec, created.spec);
    assert_eq!(created.name_any(), "immutable");
}

#[tokio::test]
async fn semver_scheme_refuses_a_version_that_does_not_parse() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Artifact> = Api::namespaced(cluster.client(), cluster.namespace());
    let mut artifact = artifact_json("bad-version");
    artifact["spec"]["version"] = json!("v1.4");
    refusal(create_json(&api, artifact).await).assert_invalid(&[(
        "spec.version",
        "FieldValueInvalid",
        "version must be a semantic version such as 1.4.2 when versionScheme is SemVer",
    )]);

    let mut calver = artifact_json("calver");
    calver["spec"]["versionScheme"] = json!("CalVer");
    calver["spec"]["version"] = json!("2026.11.3");
    create_json(&api, calver)
        .await
        .expect("a CalVer version is accepted");
}

#[tokio::test]
async fn promotion_approvals_can_be_added_but_not_removed() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Promotion> = Api::namespaced(cluster.client(), cluster.namespace());
    carols_promotion(&cluster).await;

    let alice = cluster.user_client("alice", &[]).expect("alice's client");
    let add = json!({"spec": {"approvals": [{"user": "alice", "groups": ["system:authenticated"]}]}});
    let approved = Api::<Promotion>::namespaced(alice, cluster.namespace())
        .patch("shop-1.4.2-dev", &PatchParams::default(), &Patch::Merge(&add))
        .await
        .expect("approval added");
    assert_eq!(approved.spec.approvals.len(), 1);

    let mut removed = approved.clone();
    removed.spec.approvals.clear();
    refusal(
        api.replace("shop-1.4.2-dev", &PostParams::default(), &removed)
            .await,
    )
    .assert_invalid(&[(
        "spec",
        "FieldValueInvalid",
        "approvals can only be added, never changed or removed",
    )]);

    let mut retargeted = approved;
    retargeted.spec.environment = "prod".into();
    refusal(
        api.replace("shop-1.4.2-dev", &PostParams::default(), &retargeted)
            .await,
    )
    .assert_invalid(&[(
        "spec",
        "FieldValueInvalid",
        "artifact and environment cannot change: create a new Promotion",
    )]);
}

#[tokio::test]
async fn approval_rules_are_refused_when_they_name_nobody_repeat_a_name_or_sit_beside_gate_wide_approvers() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let environments: Api<Environment> = Api::namespaced(cluster.client(), cluster.namespace());
    let apply = |name: &str, approval: serde_json::Value| {
        let environments = environments.clone();
        let environment: Environment = serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"gates": {"approval": approval}}
        }))
        .expect("typed environment");
        async move { environments.create(&PostParams::default(), &environment).await }
    };
    let created = apply(
        "prod",
        json!({"rules": [{"name": "staff", "groups": ["staff"]}, {"name": "client", "users": ["dave"], "minApprovals": 2}]}),
    )
    .await
    .expect("two rules accepted");
    let rules = created.spec.gates.approval.expect("approval gate").rules;
    assert_eq!(
        rules
            .iter()
            .map(|rule| (rule.name.as_str(), rule.min_approvals))
            .collect::<Vec<_>>(),
        vec![("staff", 1), ("client", 2)],
        "minApprovals of a rule defaults to 1"
    );

    refusal(apply("nobody", json!({"rules": [{"name": "staff"}]})).await).assert_invalid(&[(
        "spec.gates.approval.rules[0]",
        "FieldValueInvalid",
        "a rule must name users or groups who may approve for it",
    )]);
    refusal(
        apply(
            "beside",
            json!({"users": ["alice"], "rules": [{"name": "staff", "groups": ["staff"]}]}),
        )
        .await,
    )
    .assert_invalid(&[(
        "spec.gates.approval",
        "FieldValueInvalid",
        "with rules, name who may approve in each rule: users and groups of the gate itself must be empty",
    )]);
    refusal(
        apply(
            "twice",
            json!({"rules": [{"name": "staff", "groups": ["staff"]}, {"name": "staff", "users": ["alice"]}]}),
        )
        .await,
    )
    .assert_invalid(&[("spec.gates.approval.rules[1]", "FieldValueDuplicate", "")]);
}

#[tokio::test]
async fn a_condition_reading_baseline_is_refused_without_a_baseline_query_and_one_outside_the_grammar_too() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let environments: Api<Environment> = Api::namespaced(cluster.client(), cluster.namespace());
    let apply = |name: &str, prometheus: serde_json::Value| {
        let environments = environments.clone();
        let environment: Environment = serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"gates": {"verification": [{"name": "error-rate", "prometheus": prometheus}]}}
        }))
        .expect("typed environment");
        async move { environments.create(&PostParams::default(), &environment).await }
    };
    for (name, condition) in [
        ("scaled", "result <= baseline * 1.1"),
        ("offset", "result >= baseline - 0.05"),
        ("difference", "result - baseline < 0.005"),
    ] {
        apply(
            name,
            json!({"query": "errors", "baseline": {"query": "errors{v=\"{{previousVersion}}\"}"}, "condition": condition}),
        )
        .await
        .unwrap_or_else(|error| panic!("{condition} accepted: {error}"));
    }
    let rule =
        "prometheus.baseline.query is required when prometheus.condition reads baseline, and only then";
    refusal(
        apply(
            "unread",
            json!({"query": "errors", "condition": "result <= baseline"}),
        )
        .await,
    )
    .assert_invalid(&[("spec.gates.verification[0].prometheus", "FieldValueInvalid", rule)]);
    refusal(
        apply(
            "unused",
            json!({"query": "errors", "baseline": {"query": "errors"}, "condition": "result < 1"}),
        )
        .await,
    )
    .assert_invalid(&[("spec.gates.verification[0].prometheus", "FieldValueInvalid", rule)]);
    refusal(
        apply(
            "divided",
            json!({"query": "errors", "baseline": {"query": "errors"}, "condition": "result < baseline / 2"}),
        )
        .await,
    )
    .assert_invalid(&[(
        "spec.gates.verification[0].prometheus.condition",
        "FieldValueInvalid",
        "should match",
    )]);
}

#[tokio::test]
async fn the_requester_of_a_promotion_cannot_change() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let api: Api<Promotion> = Api::namespaced(cluster.client(), cluster.namespace());
    let created = carols_promotion(&cluster).await;
    assert_eq!(created.spec.requested_by.as_deref(), Some("carol"));
    for requested_by in [Some("mallory".to_string()), None] {
        let mut changed = created.clone();
        changed.spec.requested_by = requested_by;
        refusal(
            api.replace("shop-1.4.2-dev", &PostParams::default(), &changed)
                .await,
        )
        .assert_invalid(&[(
            "spec",
            "FieldValueInvalid",
            "requestedBy cannot change: it records who created the Promotion",
        )]);
    }
}

/// What a person applies to a cluster (`deploy/examples/shop-cluster`), with the admission
/// policy installed: each file as the user its first line names, nothing
/// refused; then the people of its RBAC can do their part (carol asks for
/// a Promotion into prod in her name, alice and dave approve it).
#[tokio::test]
async fn shop_cluster_example_applies_as_the_users_it_names() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let tenant = cluster.namespace().to_string();
    let mut names = BTreeMap::from([("shop", tenant.clone())]);
    for stage in ["shop-dev", "shop-staging", "shop-prod"] {
        let namespace = cluster
            .extra_namespace(stage, &[])
            .await
            .expect("stage namespace");
        names.insert(stage, namespace);
    }
    for ExampleFile { user, documents, .. } in shop_cluster() {
        let client = match &user {
            Some(user) => cluster.user_client(user, &[]).expect("user's client"),
            None => cluster.client(),
        };
        for document in documents {
            let document = into_namespaces(document, &names);
            apply_server_side(&client, &document)
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "{} {} applied as {}: {error}",
                        document["kind"],
                        document["metadata"]["name"],
                        user.as_deref().unwrap_or("the admin")
                    )
                });
        }
    }

    let carol = cluster.user_client("carol", &[]).expect("carol's client");
    let promotion = hoist::plugin::promote(&carol, &tenant, "shop-1.4.2", "prod", None, None)
        .await
        .expect("carol asks for a Promotion");
    for (approver, group) in [("alice", "staff"), ("dave", "client")] {
        let client = cluster
            .user_client(approver, &[group])
            .expect("approver's client");
        hoist::plugin::approve(&client, &tenant, &promotion.name_any(), None)
            .await
            .unwrap_or_else(|error| panic!("{approver} approves: {error}"));
    }
    let stored = Api::<Promotion>::namespaced(cluster.client(), &tenant)
        .get(&promotion.name_any())
        .await
        .expect("the Promotion");
    let approvers: Vec<&str> = stored.spec.approvals.iter().map(|a| a.user.as_str()).collect();
    assert_eq!(
        (stored.spec.requested_by.as_deref(), approvers),
        (Some("carol"), vec!["alice", "dave"])
    );
}

#[tokio::test]
async fn keyless_policies_are_refused_without_keys_or_identities_or_with_two_subjects_or_two_roots() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let environments: Api<Environment> = Api::namespaced(cluster.client(), cluster.namespace());
    let apply = |name: &str, signatures: serde_json::Value| {
        let environments = environments.clone();
        let environment: Environment = serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"gates": {"provenance": {"signatures": signatures}}}
        }))
        .expect("typed environment");
        async move { environments.create(&PostParams::default(), &environment).await }
    };
    let issuer = "https://token.actions.githubusercontent.com";
    let subject = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";
    let root = json!({"configMapRef": {"name": "sigstore", "key": "trusted_root.json"}});
    let created = apply(
        "prod",
        json!({"keyless": {"identities": [{"issuer": issuer, "subject": subject}], "trustedRoot": root}}),
    )
    .await
    .expect("a keyless policy without keys is accepted");
    let keyless = created
        .spec
        .gates
        .provenance
        .and_then(|p| p.signatures)
        .and_then(|s| s.keyless)
        .expect("keyless");
    assert_eq!(keyless.identities[0].subject.as_deref(), Some(subject));

    refusal(apply("nothing", json!({})).await).assert_invalid(&[(
        "spec.gates.provenance.signatures",
        "FieldValueInvalid",
        "name keys, keyless identities, or both",
    )]);
    refusal(
        apply(
            "two-subjects",
            json!({"keyless": {"identities": [{"issuer": issuer, "subject": subject, "subjectRegExp": ".*"}]}}),
        )
        .await,
    )
    .assert_invalid(&[(
        "spec.gates.provenance.signatures.keyless.identities[0]",
        "FieldValueInvalid",
        "an identity has either subject or subjectRegExp",
    )]);
    refusal(
        apply(
            "two-roots",
            json!({"keyless": {
                "identities": [{"issuer": issuer, "subject": subject}],
                "trustedRoot": {"configMapRef": {"name": "sigstore", "key": "trusted_root.json"}, "secretRef": {"name": "sigstore", "key": "trusted_root.json"}}
            }}),
        )
        .await,
    )
    .assert_invalid(&[(
        "spec.gates.provenance.signatures.keyless.trustedRoot",
        "FieldValueInvalid",
        "a trusted root is either configMapRef or secretRef",
    )]);
}
