//! What the bench checks on a real cluster before it creates anything: that
//! its user may do what the run does (install the CRDs and their bare
//! copies, make and remove its namespaces, and everything the operator
//! process it starts does with the same kubeconfig), and that no Hoist
//! operator installed by the chart runs there (it would reconcile the
//! bench's Promotions too, and the figures would be of two operators).

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};

use crate::world::BARE_GROUP;

/// (API group, resource, verbs) the run needs, cluster-wide.
const RIGHTS: &[(&str, &str, &[&str])] = &[
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get", "patch", "delete"],
    ),
    ("", "namespaces", &["create", "list", "watch", "delete"]),
    (
        "apps",
        "deployments",
        &["create", "get", "list", "watch", "patch"],
    ),
    ("", "configmaps", &["create", "get", "list", "watch", "patch"]),
    ("", "secrets", &["list", "watch"]),
    ("batch", "jobs", &["list", "watch"]),
    ("", "events", &["create"]),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        &["list", "watch"],
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        &["list", "watch"],
    ),
    ("authentication.k8s.io", "selfsubjectreviews", &["create"]),
    ("hoist.dev", "environments", &["create", "list", "watch"]),
    ("hoist.dev", "environments/status", &["patch"]),
    ("hoist.dev", "artifacts", &["create", "list", "watch"]),
    ("hoist.dev", "artifacts/status", &["patch"]),
    ("hoist.dev", "promotions", &["create", "list", "watch"]),
    ("hoist.dev", "promotions/status", &["patch"]),
    (BARE_GROUP, "environments", &["create", "list", "watch"]),
    (BARE_GROUP, "environments/status", &["patch"]),
    (BARE_GROUP, "artifacts", &["create"]),
    (BARE_GROUP, "promotions", &["create", "list", "watch"]),
    (BARE_GROUP, "promotions/status", &["patch"]),
];

/// The label the chart puts on the operator's Deployment.
const CHART_SELECTOR: &str = "app.kubernetes.io/name=hoist";

/// Fails, naming everything missing at once, unless the run can go ahead.
pub async fn check(client: &Client) -> Result<()> {
    let mut missing = Vec::new();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for &(group, resource, verbs) in RIGHTS {
        let (resource, subresource) = resource
            .split_once('/')
            .map_or((resource, None), |(r, s)| (r, Some(s)));
        for verb in verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource: subresource.map(str::to_string),
                        verb: Some(verb.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = reviews.create(&PostParams::default(), &review).await?;
            if !answer.status.is_some_and(|status| status.allowed) {
                let group = if group.is_empty() { "core" } else { group };
                let resource = subresource.map_or(resource.to_string(), |s| format!("{resource}/{s}"));
                missing.push(format!("{verb} {resource} ({group})"));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "the bench's user may not do what a run does (cluster-wide): {}; bind it a ClusterRole with these \
             rights (cluster-admin has them) and run again",
            missing.join(", ")
        );
    }
    let deployments: Api<Deployment> = Api::all(client.clone());
    let operators: Vec<String> = deployments
        .list(&ListParams::default().labels(CHART_SELECTOR))
        .await?
        .items
        .into_iter()
        .filter(|deployment| {
            deployment
                .spec
                .as_ref()
                .and_then(|spec| spec.replicas)
                .unwrap_or(1)
                > 0
        })
        .map(|deployment| {
            format!(
                "{}/{}",
                deployment.namespace().unwrap_or_default(),
                deployment.name_any()
            )
        })
        .collect();
    if !operators.is_empty() {
        bail!(
            "a Hoist operator runs on this cluster (Deployment {}): it would reconcile the bench's Promotions as \
             well; scale it to 0 replicas for the run (kubectl scale deployment --replicas 0 …) and run again",
            operators.join(", ")
        );
    }
    Ok(())
}
