//! The promotion path end to end: `hoist::controller::run` (what `hoist
//! controller` runs) against the API (stand-in, or a real cluster with
//! HOIST_TEST_KUBECONFIG) and the real test registry. Each scenario asserts
//! exact statuses and Deployment contents.
//!
//! Deployments use `replicas: 0`, so a rollout completes on any cluster
//! (no pod has to run). Their pods carry a sidecar `example.invalid/sidecar:1`
//! that no node can pull (RFC 2606: `.invalid` never resolves), so with one
//! replica a rollout never becomes available, on the stand-in and on a real
//! cluster alike: it fails after the one-second progress deadline, or stays
//! open where a test sets a long one.

use std::collections::BTreeMap;
use std::time::Duration;

use hoist::api::{Artifact, Environment, GateName, GateState, Phase, Promotion, PromotionSpec};
use hoist::controller::Settings;
use hoist_testkit::cluster::{RequestCounter, TestCluster};
use hoist_testkit::reconciles;
use hoist_testkit::registry::{PushedImage, push_multi, registry_address};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod agents;
mod auto_promotion;
mod dora;
mod gates;
mod gitops;
mod health_checks;
mod keyless;
mod leader_election;
mod namespaces;
mod notifications;
mod promotion_path;
mod readme;
mod registry_retention;
mod restarts;
mod retention;
mod rollback;
mod secret_watches;
mod seven_questions;
mod supply_chain;
mod tiers;
mod verification;
mod walkthrough;
mod workload_clusters;
mod workload_kinds;
mod write_amplification;

const TIMEOUT: Duration = Duration::from_secs(30);
const REVISION: &str = "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f";
const STAGES: [&str; 3] = ["dev", "staging", "prod"];

/// The operator running in this process.
struct Operator {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    requests: RequestCounter,
    /// Where its /metrics are served.
    health: std::net::SocketAddr,
}

impl Operator {
    /// Starts the operator with `client` (whose requests `requests` counts)
    /// and runs it in a task of its own until it is stopped.
    async fn spawn(client: Client, requests: RequestCounter, settings: Settings) -> Operator {
        let operator = hoist::controller::start(client, settings)
            .await
            .expect("operator starts");
        Self::running(operator, requests)
    }

    /// Runs `operator` (started; an agent too) in a task of its own until
    /// it is stopped.
    fn running(operator: hoist::controller::Operator, requests: RequestCounter) -> Operator {
        let health = operator.health_address();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            operator
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("operator runs");
        });
        Operator {
            stop,
            task,
            requests,
            health,
        }
    }
}

struct Scenario {
    cluster: TestCluster,
    /// Target namespace per stage.
    stages: BTreeMap<&'static str, String>,
    operator: Option<Operator>,
    /// Registries besides the test registry the operator reaches over plain HTTP.
    more_registries: Vec<String>,
    /// The operator's outbound allow-list (`--allow-destination`): the test
    /// Prometheus (on 127.0.0.1, which only an entry naming it admits).
    allowed_destinations: Vec<String>,
}

fn deployment(name: &str, container: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                // Hoist pins `container`'s image; the sidecar's is never
                // pulled, so a replica never becomes ready.
                "spec": {"containers": [
                    {"name": container, "image": format!("example.invalid/{name}:latest")},
                    {"name": "sidecar", "image": "example.invalid/sidecar:1"}
                ]}
            }
        }
    })
}

/// The allow-list entry of the test Prometheus, or none where the tests
/// run without one.
fn test_prometheus_destination() -> Vec<String> {
    hoist_testkit::prometheus::address()
        .and_then(|address| hoist_testkit::prometheus::destination(&address))
        .into_iter()
        .collect()
}

impl Scenario {
    /// A tenant with dev → staging → prod, each stage's backend and frontend
    /// Deployments in a namespace of its own, opted in for the tenant; prod
    /// needs alice's or bob's approval and a source revision.
    async fn new() -> Self {
        Self::on(TestCluster::new().await.expect("test cluster")).await
    }

    /// The scenario of [`Scenario::new`] on `cluster` (the hub of two).
    async fn on(cluster: TestCluster) -> Self {
        // Operator logs show with `--no-capture` and RUST_LOG=hoist=debug;
        // its reconciles are recorded for the tests that ask which ran.
        reconciles::install();
        let tenant = cluster.namespace().to_string();
        let mut stages = BTreeMap::new();
        for stage in STAGES {
            let namespace = cluster
                .extra_namespace(
                    &format!("hoist-{stage}"),
                    &[("hoist.dev/tenant", tenant.as_str())],
                )
                .await
                .expect("stage namespace");
            stages.insert(stage, namespace);
        }
        let scenario = Scenario {
            cluster,
            stages,
            operator: None,
            more_registries: Vec::new(),
            allowed_destinations: test_prometheus_destination(),
        };
        for stage in STAGES {
            scenario.create_deployment(stage, "backend", "app", 0).await;
            scenario.create_deployment(stage, "frontend", "web", 0).await;
        }
        let base: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "shop-base"}, "data": {"LOG_LEVEL": "info"}
        }))
        .expect("config map");
        Api::<ConfigMap>::namespaced(scenario.client(), &tenant)
            .create(&PostParams::default(), &base)
            .await
            .expect("base config");
        for (stage, upstream, gates) in [
            ("dev", json!([]), json!({})),
            ("staging", json!(["dev"]), json!({})),
            (
                "prod",
                json!(["staging"]),
                json!({"approval": {"users": ["alice", "bob"]}, "provenance": {"requireSourceRevision": true}}),
            ),
        ] {
            let environment = json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": stage},
                "spec": {
                    "upstream": upstream,
                    "targets": [
                        {"application": "shop", "component": "backend", "deployment": {"name": "backend", "namespace": scenario.stages[stage]}, "container": "app"},
                        {"application": "shop", "component": "frontend", "deployment": {"name": "frontend", "namespace": scenario.stages[stage]}, "container": "web"}
                    ],
                    "config": [{"application": "shop", "baseConfigMap": "shop-base", "data": {"STAGE": stage}}],
                    "gates": gates,
                    "rollback": {"automatic": true}
                }
            });
            scenario.apply::<Environment>(stage, environment).await;
        }
        scenario.grant_approvers(&["alice", "bob"]).await;
        scenario
    }

    /// Lets `users` approve Promotions into prod, as a cluster admin would.
    async fn grant_approvers(&self, users: &[&str]) {
        let rules = json!([
            {"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]},
            {"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "list", "watch", "patch", "update"]},
        ]);
        self.grant("prod-approver", rules, users).await;
    }

    /// A Role `name` of `rules` in the tenant's namespace, bound to `users`.
    async fn grant(&self, name: &str, rules: serde_json::Value, users: &[&str]) {
        self.cluster.grant(name, rules, users).await.expect("grant");
    }

    fn client(&self) -> Client {
        self.cluster.client()
    }

    fn namespace(&self) -> &str {
        self.cluster.namespace()
    }

    async fn create_deployment(&self, stage: &str, name: &str, container: &str, replicas: i32) {
        let deployment: Deployment =
            serde_json::from_value(deployment(name, container, replicas)).expect("deployment");
        Api::<Deployment>::namespaced(self.client(), &self.stages[stage])
            .create(&PostParams::default(), &deployment)
            .await
            .expect("create deployment");
    }

    async fn apply<K>(&self, name: &str, body: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client(), self.namespace())
            .patch(
                name,
                &PatchParams::apply("hoist-tests").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|error| panic!("apply {name}: {error}"))
    }

    /// Starts the operator, watching only this test's namespace.
    async fn start(&mut self) {
        self.start_with(self.settings()).await;
    }

    /// Starts the operator with `settings` (from [`Scenario::settings`]).
    async fn start_with(&mut self, settings: Settings) {
        let (client, requests) = self.cluster.counted_client().expect("counted client");
        self.operator = Some(Operator::spawn(client, requests, settings).await);
    }

    /// The operator's settings: this test's namespace and registries.
    fn settings(&self) -> Settings {
        let registry = registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
        Settings {
            health_address: ([127, 0, 0, 1], 0).into(),
            insecure_registries: [registry]
                .into_iter()
                .chain(self.more_registries.clone())
                .collect(),
            namespaces: vec![self.namespace().to_string()],
            allowed_destinations: self
                .allowed_destinations
                .iter()
                .map(|entry| entry.parse().expect("allow-list entry"))
                .collect(),
            ..Settings::default()
        }
    }

    /// Stops the operator gracefully.
    async fn stop(&mut self) {
        if let Some(operator) = self.operator.take() {
            let _ = operator.stop.send(());
            tokio::time::timeout(TIMEOUT, operator.task)
                .await
                .expect("operator stops")
                .expect("operator task");
        }
    }

    /// Kills the operator wherever it is, like a crash.
    async fn kill(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.task.abort();
            let _ = operator.task.await;
        }
    }

    /// Waits until the operator has made no request for a second (its
    /// watches stay open without new requests).
    async fn quiet(&self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut seen = usize::MAX;
        while tokio::time::Instant::now() < deadline {
            let now = self.requests().all().len();
            if now == seen && now > 0 {
                return;
            }
            seen = now;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the operator kept making requests for {TIMEOUT:?}");
    }

    fn requests(&self) -> &RequestCounter {
        &self.operator.as_ref().expect("operator running").requests
    }

    /// The Secrets collections the operator listed or watched, sorted, each once.
    fn secret_collections(&self) -> Vec<String> {
        let mut collections: Vec<String> = self
            .requests()
            .all()
            .into_iter()
            .filter(|request| request.method == "GET" && request.path.ends_with("/secrets"))
            .map(|request| request.path)
            .collect();
        collections.sort();
        collections.dedup();
        collections
    }

    /// Rotates Secret `shop-token` of `namespace` and waits until the
    /// backend Deployment of namespace `deployments` rolls off config hash `before`.
    async fn rotate_token(&self, namespace: &str, deployments: &str, before: &str) {
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(self.client(), namespace)
            .patch(
                "shop-token",
                &PatchParams::default(),
                &Patch::Merge(&json!({"stringData": {"TOKEN": "two"}})),
            )
            .await
            .expect("rotate");
        self.cluster
            .wait_for_in::<Deployment>(deployments, "backend", TIMEOUT, |d| {
                config_hash(d).is_some_and(|hash| hash != before)
            })
            .await
            .expect("the rotation rolls the Deployment");
    }

    /// Where the running operator serves /metrics.
    fn health(&self) -> std::net::SocketAddr {
        self.operator.as_ref().expect("operator running").health
    }

    async fn artifact(
        &self,
        name: &str,
        version: &str,
        images: &BTreeMap<String, PushedImage>,
        revision: Option<&str>,
    ) {
        let more = match revision {
            Some(revision) => {
                json!({"source": {"repository": "https://github.com/acme/shop", "revision": revision}})
            }
            None => json!({}),
        };
        self.artifact_of(name, version, images, more).await;
    }

    /// Creates Artifact `name` of shop's backend and frontend `images`, with
    /// the spec fields of `more` (source, compatibility, …).
    async fn artifact_of(
        &self,
        name: &str,
        version: &str,
        images: &BTreeMap<String, PushedImage>,
        more: serde_json::Value,
    ) {
        let mut spec = json!({
            "application": "shop", "version": version,
            "images": [
                {"component": "backend", "image": images["backend"].reference},
                {"component": "frontend", "image": images["frontend"].reference}
            ]
        });
        if let (Some(spec), Some(more)) = (spec.as_object_mut(), more.as_object()) {
            spec.extend(more.clone());
        }
        self.apply::<Artifact>(name, json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": name}, "spec": spec}))
            .await;
    }

    /// Pushes backend and frontend images tagged `version` and creates the
    /// Artifact `name` of them.
    async fn release(
        &self,
        name: &str,
        version: &str,
        revision: Option<&str>,
    ) -> BTreeMap<String, PushedImage> {
        let images = push_multi("shop", &[("backend", version), ("frontend", version)])
            .await
            .expect("push images");
        self.artifact(name, version, &images, revision).await;
        images
    }

    /// Releases shop 1.0.0 as Artifact shop-1-0-0 and promotes it through dev
    /// and staging (Promotions to-dev, to-staging), as prod's upstream needs.
    async fn release_through_staging(&self, revision: Option<&str>) -> BTreeMap<String, PushedImage> {
        let images = self.release("shop-1-0-0", "1.0.0", revision).await;
        self.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
        self.promote_and_wait("to-staging", "shop-1-0-0", "staging").await;
        images
    }

    /// Changes an Environment's spec with `change` and applies it.
    async fn update_environment(&self, name: &str, change: impl FnOnce(&mut hoist::api::EnvironmentSpec)) {
        let mut environment = self.environment(name).await;
        change(&mut environment.spec);
        let body = json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name}, "spec": environment.spec,
        });
        self.apply::<Environment>(name, body).await;
    }

    /// Promotes and waits for the Promotion to succeed.
    async fn promote_and_wait(&self, name: &str, artifact: &str, environment: &str) {
        self.promote(name, artifact, environment).await;
        self.wait_phase(name, Phase::Succeeded).await;
    }

    async fn promote(&self, name: &str, artifact: &str, environment: &str) {
        let promotion = Promotion::new(
            name,
            PromotionSpec {
                artifact: artifact.into(),
                environment: environment.into(),
                reason: Some("test".into()),
                // The admin asks, as the admission policy requires.
                requested_by: Some(self.cluster.admin_user().to_string()),
                r#override: None,
                approvals: Vec::new(),
            },
        );
        Api::<Promotion>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &promotion)
            .await
            .expect("create promotion");
    }

    /// `user` approves, as `kubectl hoist approve` does (they hold the
    /// verb `approve` on prod: see `Scenario::new`).
    async fn approve(&self, name: &str, user: &str) {
        let client = self.cluster.user_client(user, &[]).expect("approver's client");
        hoist::plugin::approve(&client, self.namespace(), name, None)
            .await
            .unwrap_or_else(|error| panic!("{user} approves {name}: {error}"));
    }

    async fn wait_phase(&self, name: &str, phase: Phase) -> Promotion {
        self.cluster
            .wait_for::<Promotion>(name, TIMEOUT, |p| {
                p.status.as_ref().is_some_and(|s| s.phase == phase)
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Promotion `name` once its `gate` is in `state`.
    async fn wait_gate(&self, name: &str, gate: GateName, state: GateState) -> Promotion {
        self.cluster
            .wait_for::<Promotion>(name, TIMEOUT, |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.gates.iter().any(|g| g.gate == gate && g.state == state))
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn deployment(&self, stage: &str, name: &str) -> Deployment {
        Api::<Deployment>::namespaced(self.client(), &self.stages[stage])
            .get(name)
            .await
            .expect("deployment")
    }

    /// (container, image) of a Deployment's pod template.
    async fn images(&self, stage: &str, name: &str) -> Vec<(String, String)> {
        images_of(self.deployment(stage, name).await)
    }

    async fn annotation(&self, stage: &str, name: &str, key: &str) -> Option<String> {
        let deployment = self.deployment(stage, name).await;
        deployment.spec?.template.metadata?.annotations?.get(key).cloned()
    }

    async fn environment(&self, name: &str) -> Environment {
        Api::<Environment>::namespaced(self.client(), self.namespace())
            .get(name)
            .await
            .expect("environment")
    }

    /// Waits until the operator has read `name`'s current spec.
    async fn environment_observed(&self, name: &str) -> Environment {
        self.cluster
            .wait_for::<Environment>(name, TIMEOUT, |e| {
                e.status.as_ref().and_then(|s| s.observed_generation) == e.metadata.generation
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }
}

/// (container, image) of `deployment`'s pod template.
fn images_of(deployment: Deployment) -> Vec<(String, String)> {
    deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers
        .into_iter()
        .map(|c| (c.name, c.image.unwrap_or_default()))
        .collect()
}

/// (Promotion, outcome) of an Environment's history, newest first.
fn history_of(environment: Environment) -> Vec<(String, Phase)> {
    environment
        .status
        .expect("status")
        .history
        .iter()
        .map(|h| (h.promotion.clone(), h.outcome))
        .collect()
}

/// The `hoist.dev/config-hash` pod-template annotation.
fn config_hash(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("hoist.dev/config-hash")
        .cloned()
}

/// Waits until Deployment `namespace/name` of `cluster` has its first
/// container pinned to `image`; panics with `what` otherwise.
async fn wait_pinned(cluster: &TestCluster, namespace: &str, name: &str, image: &str, what: &str) {
    cluster
        .wait_for_in::<Deployment>(namespace, name, TIMEOUT, |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|p| p.containers[0].image.as_deref() == Some(image))
        })
        .await
        .expect(what);
}

fn pinned(image: &PushedImage) -> String {
    let repository = image.reference.rsplit_once(':').expect("tagged reference").0;
    format!("{repository}@{}", image.digest)
}

async fn artifact_ready(scenario: &Scenario, name: &str) -> Artifact {
    scenario
        .cluster
        .wait_for::<Artifact>(name, TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

fn gate(promotion: &Promotion, name: GateName) -> hoist::api::GateStatus {
    promotion
        .status
        .as_ref()
        .and_then(|s| s.gates.iter().find(|g| g.gate == name).cloned())
        .unwrap_or_else(|| panic!("no {name:?} gate in {promotion:?}"))
}
