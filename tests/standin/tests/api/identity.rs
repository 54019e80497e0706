//! `SelfSubjectReview`: who the API server takes a client for.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use kube_standin::StandIn;

#[tokio::test]
async fn self_subject_review_names_the_configured_user() {
    let standin = StandIn::builder()
        .user("alice")
        .start()
        .await
        .expect("stand-in starts");
    let api: Api<SelfSubjectReview> = Api::all(standin.client());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("review");
    let user = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(user.groups, Some(vec!["system:authenticated".to_string()]));

    let error = api
        .get("anything")
        .await
        .expect_err("a review cannot be read back");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 405),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_default_user_is_kube_standin_admin() {
    let standin = StandIn::start().await.expect("stand-in starts");
    let api: Api<SelfSubjectReview> = Api::all(standin.client());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("review");
    assert_eq!(
        review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .as_deref(),
        Some("kube-standin-admin")
    );
}
