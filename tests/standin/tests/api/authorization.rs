//! RBAC on every request, the reviews answered from it, and the validation
//! of the RBAC kinds.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReview};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::json;

use crate::common::{config_map, create_cluster, create_in, deployment, send, status_of};

const RBAC: &str = "rbac.authorization.k8s.io";

async fn namespaces(admin: &kube::Client, names: &[&str]) {
    for name in names {
        create_cluster::<Namespace>(admin, json!({"metadata": {"name": name}})).await;
    }
}

async fn bind_role(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
    role: (&str, &str),
    subject: serde_json::Value,
) {
    create_in::<RoleBinding>(
        admin,
        namespace,
        json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": role.0, "name": role.1},
            "subjects": [subject],
        }),
    )
    .await;
}

fn message<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    let status = status_of(result);
    if status.code == 403 {
        assert_eq!(status.reason, "Forbidden");
    }
    (status.code, status.message)
}

fn impersonating(server: &StandIn, user: &str) -> kube::Client {
    let mut config = server.config();
    config.auth_info.impersonate = Some(user.to_owned());
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn roles_allow_their_verbs_on_their_resources_in_their_namespace_only() {
    let server = StandIn::builder()
        .user("alice", &[])
        .start()
        .await
        .expect("stand-in");
    let admin = server.client();
    namespaces(&admin, &["shop", "other"]).await;
    create_in::<Role>(
        &admin,
        "shop",
        json!({
            "metadata": {"name": "reader"},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["patch"]},
            ],
        }),
    )
    .await;
    bind_role(
        &admin,
        "shop",
        "alice-reads",
        ("Role", "reader"),
        json!({"kind": "User", "apiGroup": RBAC, "name": "alice"}),
    )
    .await;
    Api::<ConfigMap>::namespaced(admin.clone(), "shop")
        .create(&PostParams::default(), &config_map("settings", &[]))
        .await
        .expect("configmap");
    Api::<Deployment>::namespaced(admin.clone(), "shop")
        .create(&PostParams::default(), &deployment("web", "nginx"))
        .await
        .expect("deployment");

    let alice = server.client_for("alice").expect("alice");
    let shop: Api<ConfigMap> = Api::namespaced(alice.clone(), "shop");
    shop.get("settings").await.expect("allowed");
    shop.list(&ListParams::default()).await.expect("allowed");
    assert_eq!(
        message(shop.create(&PostParams::default(), &config_map("mine", &[])).await),
        (
            403,
            "configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"shop\"".to_owned()
        )
    );
    let watch = send(
        &alice,
        "GET",
        "/api/v1/namespaces/shop/configmaps?watch=true&timeoutSeconds=1",
        &[],
        None,
    )
    .await;
    assert_eq!(watch.code, 200);
    assert_eq!(
        message(Api::<ConfigMap>::namespaced(alice.clone(), "other").get("settings").await),
        (
            403,
            "configmaps \"settings\" is forbidden: User \"alice\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"other\"".to_owned()
        )
    );
    let all_namespaces: Api<Namespace> = Api::all(alice.clone());
    assert_eq!(
        message(all_namespaces.list(&ListParams::default()).await),
        (
            403,
            "namespaces is forbidden: User \"alice\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope".to_owned()
        )
    );
    // A Namespace is authorized in itself, as the server's RequestInfo has it.
    assert_eq!(
        message(all_namespaces.get("shop").await),
        (
            403,
            "namespaces \"shop\" is forbidden: User \"alice\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"shop\"".to_owned()
        )
    );
    let deployments: Api<Deployment> = Api::namespaced(alice, "shop");
    let status = json!({"status": {"observedGeneration": 1}});
    deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("the status subresource is allowed");
    assert_eq!(
        message(deployments.patch("web", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"labels": {"a": "b"}}}))).await),
        (
            403,
            "deployments.apps \"web\" is forbidden: User \"alice\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"".to_owned()
        )
    );
}

#[tokio::test]
async fn groups_service_accounts_resource_names_and_missing_roles() {
    let server = StandIn::builder()
        .user("carol", &["staff"])
        .user("alice", &[])
        .start()
        .await
        .expect("stand-in");
    let admin = server.client();
    namespaces(&admin, &["shop"]).await;
    create_cluster::<ClusterRole>(
        &admin,
        json!({
            "metadata": {"name": "namespace-reader"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}],
        }),
    )
    .await;
    create_cluster::<ClusterRoleBinding>(
        &admin,
        json!({
            "metadata": {"name": "staff-reads-namespaces"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "namespace-reader"},
            "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "staff"}],
        }),
    )
    .await;
    let carol = server.client_for("carol").expect("carol");
    Api::<Namespace>::all(carol)
        .list(&ListParams::default())
        .await
        .expect("staff may list namespaces");

    create_cluster::<ClusterRole>(&admin, json!({
        "metadata": {"name": "settings-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "list", "watch"]}],
    }))
    .await;
    // A ServiceAccount subject without a namespace is in the binding's.
    bind_role(
        &admin,
        "shop",
        "hoist-reads-settings",
        ("ClusterRole", "settings-reader"),
        json!({"kind": "ServiceAccount", "name": "hoist"}),
    )
    .await;
    for name in ["settings", "secret-settings"] {
        Api::<ConfigMap>::namespaced(admin.clone(), "shop")
            .create(&PostParams::default(), &config_map(name, &[]))
            .await
            .expect("configmap");
    }
    let operator = impersonating(&server, "system:serviceaccount:shop:hoist");
    let configmaps: Api<ConfigMap> = Api::namespaced(operator, "shop");
    configmaps.get("settings").await.expect("the named one");
    assert_eq!(
        message(configmaps.get("secret-settings").await).1,
        "configmaps \"secret-settings\" is forbidden: User \"system:serviceaccount:shop:hoist\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"shop\""
    );
    assert_eq!(message(configmaps.list(&ListParams::default()).await).0, 403);
    // A list for the one name is authorized on that name.
    let one = configmaps
        .list(&ListParams::default().fields("metadata.name=settings"))
        .await
        .expect("a list of the named one");
    assert_eq!(one.items.len(), 1);
    let other = impersonating(&server, "system:serviceaccount:other:hoist");
    assert_eq!(
        message(Api::<ConfigMap>::namespaced(other, "shop").get("settings").await).0,
        403
    );

    bind_role(
        &admin,
        "shop",
        "alice-gone",
        ("Role", "gone"),
        json!({"kind": "User", "apiGroup": RBAC, "name": "alice"}),
    )
    .await;
    let alice = server.client_for("alice").expect("alice");
    assert_eq!(
        message(Api::<ConfigMap>::namespaced(alice, "shop").get("settings").await).1,
        "configmaps \"settings\" is forbidden: User \"alice\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"shop\": RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
    );
}

#[tokio::test]
async fn access_reviews_answer_from_rbac_with_custom_verbs() {
    let server = StandIn::builder()
        .user("alice", &["staff"])
        .start()
        .await
        .expect("stand-in");
    let admin = server.client();
    namespaces(&admin, &["shop"]).await;
    create_in::<Role>(&admin, "shop", json!({
        "metadata": {"name": "prod-approver"},
        "rules": [{"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]}],
    }))
    .await;
    bind_role(
        &admin,
        "shop",
        "staff-approve-prod",
        ("Role", "prod-approver"),
        json!({"kind": "Group", "apiGroup": RBAC, "name": "staff"}),
    )
    .await;
    let alice = server.client_for("alice").expect("alice");
    let review = |environment: &str| {
        serde_json::from_value::<SelfSubjectAccessReview>(json!({
            "spec": {"resourceAttributes": {"namespace": "shop", "verb": "approve", "group": "hoist.dev", "resource": "environments", "name": environment}},
        }))
        .expect("review")
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(alice.clone());
    let prod = reviews
        .create(&PostParams::default(), &review("prod"))
        .await
        .expect("review");
    let status = prod.status.expect("status");
    assert!(status.allowed);
    assert_eq!(
        status.reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"staff-approve-prod/shop\" of Role \"prod-approver\" to Group \"staff\""
        )
    );
    let dev = reviews
        .create(&PostParams::default(), &review("dev"))
        .await
        .expect("review");
    assert_eq!(
        dev.status.map(|status| (status.allowed, status.reason)),
        Some((false, None))
    );
    let version = serde_json::from_value::<SelfSubjectAccessReview>(json!({
        "spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}},
    }))
    .expect("review");
    assert!(
        reviews
            .create(&PostParams::default(), &version)
            .await
            .expect("review")
            .status
            .expect("status")
            .allowed
    );
    let neither = send(
        &alice,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &[],
        Some(&json!({"spec": {}})),
    )
    .await;
    assert_eq!(neither.code, 422);
    assert_eq!(
        neither.body["message"],
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );

    let subject = |user: &str, groups: serde_json::Value| {
        serde_json::from_value::<SubjectAccessReview>(json!({
            "spec": {"user": user, "groups": groups, "resourceAttributes": {"namespace": "shop", "verb": "approve", "group": "hoist.dev", "resource": "environments", "name": "prod"}},
        }))
        .expect("review")
    };
    let subject_reviews: Api<SubjectAccessReview> = Api::all(admin.clone());
    let bob = subject_reviews
        .create(&PostParams::default(), &subject("bob", json!(["staff"])))
        .await
        .expect("review");
    assert!(bob.status.expect("status").allowed);
    let dave = subject_reviews
        .create(&PostParams::default(), &subject("dave", json!([])))
        .await
        .expect("review");
    assert!(!dave.status.expect("status").allowed);
    assert_eq!(
        message(Api::<SubjectAccessReview>::all(alice).create(&PostParams::default(), &subject("bob", json!([]))).await),
        (
            403,
            "subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope".to_owned()
        )
    );
    assert_eq!(
        message(
            subject_reviews
                .create(&PostParams::default(), &subject("", json!([])))
                .await
        )
        .1,
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
}

#[tokio::test]
async fn rbac_objects_are_validated_and_the_bootstrap_roles_exist() {
    let server = StandIn::start().await.expect("stand-in");
    let admin = server.client();
    let roles: Vec<String> = Api::<ClusterRole>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|role| role.metadata.name)
        .collect();
    assert_eq!(
        roles,
        [
            "cluster-admin",
            "system:basic-user",
            "system:discovery",
            "system:public-info-viewer"
        ]
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let masters = bindings.get("cluster-admin").await.expect("binding");
    assert_eq!(masters.subjects.expect("subjects")[0].name, "system:masters");

    let invalid =
        |object: serde_json::Value| serde_json::from_value::<ClusterRoleBinding>(object).expect("binding");
    let to_role = invalid(json!({
        "metadata": {"name": "wrong"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "Robot", "name": "r2"}, {"kind": "ServiceAccount", "name": "hoist"}],
    }));
    assert_eq!(
        message(bindings.create(&PostParams::default(), &to_role).await),
        (
            422,
            "ClusterRoleBinding.rbac.authorization.k8s.io \"wrong\" is invalid: [roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\", subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\", subjects[1].namespace: Required value]".to_owned()
        )
    );
    let no_verbs = serde_json::from_value::<ClusterRole>(json!({
        "metadata": {"name": "no-verbs"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}, {"nonResourceURLs": ["/metrics"], "resources": ["pods"], "verbs": ["get"]}],
    }))
    .expect("role");
    assert_eq!(
        message(Api::<ClusterRole>::all(admin.clone()).create(&PostParams::default(), &no_verbs).await),
        (
            422,
            "ClusterRole.rbac.authorization.k8s.io \"no-verbs\" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[1].nonResourceURLs: Invalid value: [\"/metrics\"]: rules cannot apply to both regular resources and non-resource URLs]".to_owned()
        )
    );
    let moved = json!({"roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:discovery"}});
    let (code, text) = message(
        bindings
            .patch("cluster-admin", &PatchParams::default(), &Patch::Merge(&moved))
            .await,
    );
    assert_eq!(code, 422);
    assert!(text.ends_with("roleRef: Invalid value: {\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"system:discovery\"}: cannot change roleRef"), "{text}");
}

#[tokio::test]
async fn a_put_or_an_apply_that_creates_needs_the_create_verb_too() {
    let server = StandIn::builder()
        .user("alice", &[])
        .start()
        .await
        .expect("stand-in");
    let admin = server.client();
    namespaces(&admin, &["shop"]).await;
    create_in::<Role>(
        &admin,
        "shop",
        json!({
            "metadata": {"name": "writer"},
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]},
            ],
        }),
    )
    .await;
    bind_role(
        &admin,
        "shop",
        "alice-writes",
        ("Role", "writer"),
        json!({"kind": "User", "apiGroup": RBAC, "name": "alice"}),
    )
    .await;
    let alice = server.client_for("alice").expect("alice");
    let lease =
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"}});
    let put = send(
        &alice,
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/shop/leases/lock",
        &[],
        Some(&lease),
    )
    .await;
    assert_eq!(put.code, 403, "{}", put.body);
    assert_eq!(
        put.body["message"],
        "leases.coordination.k8s.io \"lock\" is forbidden: "
    );
    assert_eq!(
        put.body["details"],
        json!({"name": "lock", "group": "coordination.k8s.io", "kind": "leases"})
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(alice.clone(), "shop");
    let apply = Patch::Apply(config_map("settings", &[("a", "b")]));
    let (code, text) = message(
        configmaps
            .patch("settings", &PatchParams::apply("alice"), &apply)
            .await,
    );
    assert_eq!(
        (code, text.as_str()),
        (403, "configmaps \"settings\" is forbidden: ")
    );

    create_in::<Role>(
        &admin,
        "shop",
        json!({
            "metadata": {"name": "creator"},
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            ],
        }),
    )
    .await;
    bind_role(
        &admin,
        "shop",
        "alice-creates",
        ("Role", "creator"),
        json!({"kind": "User", "apiGroup": RBAC, "name": "alice"}),
    )
    .await;
    let put = send(
        &alice,
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/shop/leases/lock",
        &[],
        Some(&lease),
    )
    .await;
    assert_eq!(put.code, 201, "{}", put.body);
    configmaps
        .patch("settings", &PatchParams::apply("alice"), &apply)
        .await
        .expect("created by apply");
}
