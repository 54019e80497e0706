//! `SelfSubjectReview`: who the API server takes a client for.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use kube_standin::StandIn;

#[tokio::test]
async fn self_subject_review_names_the_authenticated_user() {
    let standin = StandIn::builder()
        .user("alice", &["staff"])
        .start()
        .await
        .expect("stand-in starts");
    let api: Api<SelfSubjectReview> = Api::all(standin.client_for("alice").expect("alice"));
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("review");
    let user = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(
        user.groups,
        Some(vec!["staff".to_string(), "system:authenticated".to_string()])
    );

    let error = Api::<SelfSubjectReview>::all(standin.client())
        .get("anything")
        .await
        .expect_err("a review cannot be read back");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 405),
        "{error:?}"
    );
    // RBAC comes first: alice may only create reviews.
    let error = api.get("anything").await.expect_err("alice may not get");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 403),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_default_client_is_the_admin_in_system_masters() {
    let standin = StandIn::start().await.expect("stand-in starts");
    let api: Api<SelfSubjectReview> = Api::all(standin.client());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("review");
    let user = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(user.username.as_deref(), Some(kube_standin::ADMIN));
    assert_eq!(
        user.groups,
        Some(vec![
            kube_standin::MASTERS.to_string(),
            "system:authenticated".to_string()
        ])
    );
}
