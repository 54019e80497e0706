//! What the bench checks on a real cluster before it creates anything: that
//! its user may do what the run does (install the CRDs and their bare
//! copies, make and remove its namespaces, and everything the operator
//! process it starts does with the same kubeconfig), and that no Hoist
//! operator installed by the chart runs there (it would reconcile the
//! bench's Promotions too, and the figures would be of two operators).
//!
//! A two-cluster run starts an agent with the bench's kubeconfigs: on the
//! hub its user also needs the chart's rights of agents
//! (`charts/hoist/files/agent-hub-rules.yaml`,
//! `agent-hub-namespace-rules.yaml`), and in the workload cluster those of
//! an agent there (`agent-local-rules.yaml`) besides what the bench makes,
//! and no agent of the chart may run there.

use anyhow::{Result, bail};
use hoist_testkit::cluster::{
    agent_local_rules_file, agent_namespace_rules_file, agent_rules_file, read_operator_rules,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
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

/// What the bench makes in a workload cluster, besides the agent's rights.
const WORKLOAD_RIGHTS: &[(&str, &str, &[&str])] = &[
    ("", "namespaces", &["create", "list", "delete"]),
    ("apps", "deployments", &["create", "watch"]),
    ("", "configmaps", &["create"]),
];

/// The label the chart puts on the operator's Deployment.
const CHART_SELECTOR: &str = "app.kubernetes.io/name=hoist";

/// `(group, resource, verbs)` of each rule.
fn rights_of(rules: &[PolicyRule]) -> Vec<(String, String, Vec<String>)> {
    rules
        .iter()
        .flat_map(|rule| {
            let groups = rule.api_groups.clone().unwrap_or_default();
            let resources = rule.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |group| {
                let verbs = rule.verbs.clone();
                resources
                    .clone()
                    .into_iter()
                    .map(move |resource| (group.clone(), resource, verbs.clone()))
            })
        })
        .collect()
}

fn listed(rights: &[(&str, &str, &[&str])]) -> Vec<(String, String, Vec<String>)> {
    rights
        .iter()
        .map(|(group, resource, verbs)| {
            (
                (*group).to_owned(),
                (*resource).to_owned(),
                verbs.iter().map(|verb| (*verb).to_owned()).collect(),
            )
        })
        .collect()
}

/// Fails, naming everything missing at once, unless the run can go ahead
/// (with an agent of the workload cluster reaching this hub when `agent`).
pub async fn check(client: &Client, agent: bool) -> Result<()> {
    let mut rights = listed(RIGHTS);
    if agent {
        rights.extend(rights_of(&read_operator_rules(&agent_rules_file())?));
        rights.extend(rights_of(&read_operator_rules(&agent_namespace_rules_file())?));
    }
    require(client, &rights).await?;
    no_operator_runs(client).await
}

/// The same for the workload cluster of a two-cluster run.
pub async fn check_workload(client: &Client) -> Result<()> {
    let mut rights = listed(WORKLOAD_RIGHTS);
    rights.extend(rights_of(&read_operator_rules(&agent_local_rules_file())?));
    require(client, &rights).await?;
    no_operator_runs(client).await
}

/// Fails naming each of `rights` the user lacks.
async fn require(client: &Client, rights: &[(String, String, Vec<String>)]) -> Result<()> {
    let mut missing = Vec::new();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (group, resource, verbs) in rights {
        let (group, resource) = (group.as_str(), resource.as_str());
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
        missing.dedup();
        bail!(
            "the bench's user may not do what a run does (cluster-wide): {}; bind it a ClusterRole with these \
             rights (cluster-admin has them) and run again",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Fails naming the chart's operators (or agents) that run on the cluster.
async fn no_operator_runs(client: &Client) -> Result<()> {
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
