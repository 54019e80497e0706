//! Bearer tokens and impersonation, as kube-apiserver with a token file.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube_standin::StandIn;
use serde_json::json;

use crate::common::{create_cluster, create_in, send, status_of};

fn with_token(server: &StandIn, token: Option<&str>) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.auth_info.token = token.map(|token| token.to_owned().into());
    kube::Client::try_from(config).expect("client")
}

async fn who(client: &kube::Client) -> k8s_openapi::api::authentication::v1::UserInfo {
    Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("review")
        .status
        .and_then(|status| status.user_info)
        .expect("user info")
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_unauthorized() {
    let server = StandIn::start().await.expect("stand-in");
    for client in [
        with_token(&server, None),
        with_token(&server, Some("not-a-token")),
    ] {
        let status = status_of(
            Api::<ConfigMap>::namespaced(client.clone(), "default")
                .list(&Default::default())
                .await,
        );
        assert_eq!(
            (status.code, status.reason.as_str(), status.message.as_str()),
            (401, "Unauthorized", "Unauthorized")
        );
        let version = send(&client, "GET", "/version", &[], None).await;
        assert_eq!(version.code, 401, "{}", version.body);
    }
    let unknown = server.kubeconfig_yaml("nobody").expect_err("not registered");
    assert_eq!(
        unknown.to_string(),
        "the stand-in has no user nobody; register it with StandInBuilder::user or StandIn::add_user"
    );
    let log = server.requests();
    assert!(
        log.records()
            .iter()
            .all(|record| record.code == 401 && record.user.is_none())
    );
}

#[tokio::test]
async fn a_token_names_its_user_and_groups_and_every_user_may_discover() {
    let server = StandIn::builder()
        .user("alice", &["staff"])
        .start()
        .await
        .expect("stand-in");
    let bob_token = server.add_user("bob", &[]);
    assert_eq!(server.token("bob").as_deref(), Some(bob_token.as_str()));
    let alice = server.client_for("alice").expect("alice");
    let info = who(&alice).await;
    assert_eq!(info.username.as_deref(), Some("alice"));
    assert_eq!(
        info.groups,
        Some(vec!["staff".to_owned(), "system:authenticated".to_owned()])
    );
    assert_eq!(
        who(&with_token(&server, Some(&bob_token)))
            .await
            .username
            .as_deref(),
        Some("bob")
    );
    // system:discovery and system:public-info-viewer are bound to every authenticated user.
    alice.apiserver_version().await.expect("GET /version");
    assert_eq!(send(&alice, "GET", "/apis", &[], None).await.code, 200);
    assert_eq!(send(&alice, "GET", "/api/v1", &[], None).await.code, 200);
    // Nothing else.
    let status = status_of(
        Api::<ConfigMap>::namespaced(alice, "default")
            .list(&Default::default())
            .await,
    );
    assert_eq!(status.code, 403);
    let users: Vec<_> = server
        .requests()
        .records()
        .iter()
        .map(|record| record.user.clone())
        .collect();
    assert_eq!(
        users,
        [
            Some("alice"),
            Some("bob"),
            Some("alice"),
            Some("alice"),
            Some("alice"),
            Some("alice")
        ]
        .map(|user| user.map(str::to_owned))
    );
}

#[tokio::test]
async fn the_admin_impersonates_users_groups_uids_and_extras() {
    let server = StandIn::start().await.expect("stand-in");
    let mut config = server.config();
    config.auth_info.impersonate = Some("alice".to_owned());
    config.auth_info.impersonate_groups = Some(vec!["staff".to_owned(), "client".to_owned()]);
    config.auth_info.impersonate_uid = Some("alice-uid".to_owned());
    config.auth_info.impersonate_user_extra =
        Some([("acme.com/team".to_owned(), vec!["shop".to_owned()])].into());
    let alice = kube::Client::try_from(config).expect("client");
    let info = who(&alice).await;
    assert_eq!(info.username.as_deref(), Some("alice"));
    assert_eq!(info.uid.as_deref(), Some("alice-uid"));
    assert_eq!(
        info.groups,
        Some(vec![
            "staff".to_owned(),
            "client".to_owned(),
            "system:authenticated".to_owned()
        ])
    );
    assert_eq!(
        info.extra,
        Some([("acme.com/team".to_owned(), vec!["shop".to_owned()])].into())
    );
    let record = server.requests().records().last().cloned().expect("a record");
    assert_eq!(record.user.as_deref(), Some("alice"));

    // A ServiceAccount without groups gets those of ServiceAccounts.
    let mut config = server.config();
    config.auth_info.impersonate = Some("system:serviceaccount:shop:hoist".to_owned());
    let operator = kube::Client::try_from(config).expect("client");
    assert_eq!(
        who(&operator).await.groups,
        Some(vec![
            "system:serviceaccounts".to_owned(),
            "system:serviceaccounts:shop".to_owned(),
            "system:authenticated".to_owned()
        ])
    );

    // Groups without a user are a bad request.
    let answer = send(
        &server.client(),
        "GET",
        "/api/v1/namespaces",
        &[("Impersonate-Group", "staff")],
        None,
    )
    .await;
    assert_eq!(answer.code, 400);
    assert_eq!(
        answer.body["message"],
        "requested [{Group  staff    }] without impersonating a user"
    );
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb_on_what_is_impersonated() {
    let server = StandIn::builder()
        .user("alice", &[])
        .start()
        .await
        .expect("stand-in");
    let admin = server.client();
    let alice = server.client_for("alice").expect("alice");
    let impersonate = |headers: Vec<(&'static str, &'static str)>| {
        let alice = alice.clone();
        async move {
            send(
                &alice,
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &headers,
                Some(&json!({})),
            )
            .await
        }
    };
    let refused = impersonate(vec![("Impersonate-User", "bob")]).await;
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.body["message"],
        "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    assert_eq!(refused.body["details"], json!({"name": "bob", "kind": "users"}));

    create_cluster::<ClusterRole>(&admin, json!({
        "metadata": {"name": "impersonate-bob"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"], "verbs": ["impersonate"]}],
    })).await;
    create_cluster::<ClusterRoleBinding>(&admin, json!({
        "metadata": {"name": "alice-impersonates-bob"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonate-bob"},
        "subjects": [{"kind": "User", "name": "alice"}],
    })).await;
    let bob = impersonate(vec![("Impersonate-User", "bob")]).await;
    assert_eq!(bob.code, 201, "{}", bob.body);
    assert_eq!(
        bob.body["status"]["userInfo"],
        json!({"username": "bob", "groups": ["system:authenticated"]})
    );
    let carol = impersonate(vec![("Impersonate-User", "carol")]).await;
    assert_eq!(carol.code, 403);
    // Each group is authorized on its own.
    let group = impersonate(vec![("Impersonate-User", "bob"), ("Impersonate-Group", "admins")]).await;
    assert_eq!(
        group.body["message"],
        "groups \"admins\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );

    // A ServiceAccount is authorized in its namespace, by a Role there.
    let service_account = vec![("Impersonate-User", "system:serviceaccount:shop:hoist")];
    let refused = impersonate(service_account.clone()).await;
    assert_eq!(
        refused.body["message"],
        "serviceaccounts \"hoist\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"shop\""
    );
    create_cluster::<Namespace>(&admin, json!({"metadata": {"name": "shop"}})).await;
    create_in::<Role>(
        &admin,
        "shop",
        json!({
            "metadata": {"name": "impersonate-sa"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
        }),
    )
    .await;
    create_in::<RoleBinding>(
        &admin,
        "shop",
        json!({
            "metadata": {"name": "alice"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "impersonate-sa"},
            "subjects": [{"kind": "User", "name": "alice"}],
        }),
    )
    .await;
    let allowed = impersonate(service_account).await;
    assert_eq!(allowed.code, 201, "{}", allowed.body);
    assert_eq!(
        allowed.body["status"]["userInfo"]["username"],
        "system:serviceaccount:shop:hoist"
    );
    let uid = impersonate(vec![("Impersonate-User", "bob"), ("Impersonate-Uid", "1234")]).await;
    assert_eq!(
        uid.body["message"],
        "uids.authentication.k8s.io \"1234\" is forbidden: User \"alice\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    let extra = impersonate(vec![
        ("Impersonate-User", "bob"),
        ("Impersonate-Extra-Scopes", "view"),
    ])
    .await;
    assert_eq!(
        extra.body["message"],
        "userextras.authentication.k8s.io \"view\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
}
