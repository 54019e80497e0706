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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hoist::api::{Artifact, Environment, GateName, GateState, Health, Phase, Promotion, PromotionSpec};
use hoist::controller::Settings;
use hoist_testkit::cluster::{RequestCounter, TestCluster};
use hoist_testkit::registry::{PushedImage, push_multi, registry_address};
use hoist_testkit::{health, reconciles};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

struct Scenario {
    cluster: TestCluster,
    /// Target namespace per stage.
    stages: BTreeMap<&'static str, String>,
    operator: Option<Operator>,
    /// Registries besides the test registry the operator reaches over plain HTTP.
    more_registries: Vec<String>,
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

impl Scenario {
    /// A tenant with dev → staging → prod, each stage's backend and frontend
    /// Deployments in a namespace of its own, opted in for the tenant; prod
    /// needs alice's or bob's approval and a source revision.
    async fn new() -> Self {
        // Operator logs show with `--no-capture` and RUST_LOG=hoist=debug;
        // its reconciles are recorded for the tests that ask which ran.
        reconciles::install();
        let cluster = TestCluster::new().await.expect("test cluster");
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
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "prod-approver"},
            "rules": [
                {"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]},
                {"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "list", "watch", "patch", "update"]},
            ]
        }))
        .expect("role");
        Api::<Role>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &role)
            .await
            .expect("create role");
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "prod-approver"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prod-approver"},
            "subjects": users.iter().map(|user| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user})).collect::<Vec<_>>()
        }))
        .expect("binding");
        Api::<RoleBinding>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &binding)
            .await
            .expect("create binding");
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
        let (client, requests) = self.cluster.counted_client().expect("counted client");
        let registry = registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
        let settings = Settings {
            health_address: ([127, 0, 0, 1], 0).into(),
            insecure_registries: [registry]
                .into_iter()
                .chain(self.more_registries.clone())
                .collect(),
            namespace: Some(self.namespace().to_string()),
            ..Settings::default()
        };
        let operator = hoist::controller::start(client, settings)
            .await
            .expect("operator starts");
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
        self.operator = Some(Operator {
            stop,
            task,
            requests,
            health,
        });
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

    async fn artifact(
        &self,
        name: &str,
        version: &str,
        images: &BTreeMap<String, PushedImage>,
        revision: Option<&str>,
    ) {
        let mut spec = json!({
            "application": "shop", "version": version,
            "images": [
                {"component": "backend", "image": images["backend"].reference},
                {"component": "frontend", "image": images["frontend"].reference}
            ]
        });
        if let Some(revision) = revision {
            spec["source"] = json!({"repository": "https://github.com/acme/shop", "revision": revision});
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
        let deployment = self.deployment(stage, name).await;
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

fn pinned(image: &PushedImage) -> String {
    let repository = image.reference.rsplit_once(':').expect("tagged reference").0;
    format!("{repository}@{}", image.digest)
}

#[tokio::test]
async fn one_build_goes_dev_staging_prod_with_an_approval_and_prod_runs_the_dev_digests() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let images = scenario.release_through_staging(Some(REVISION)).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    // Staging's own status may lag its Promotion's by a moment; wait until only approval holds.
    let waiting = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Phase::Waiting
                    && s.gates
                        .iter()
                        .any(|g| g.gate == GateName::Upstream && g.state == GateState::Passed)
            })
        })
        .await
        .expect("to-prod waits for approval");
    let status = waiting.status.expect("status");
    let gates: Vec<(GateName, GateState)> = status.gates.iter().map(|g| (g.gate, g.state)).collect();
    assert_eq!(
        gates,
        vec![
            (GateName::ArtifactReady, GateState::Passed),
            (GateName::Upstream, GateState::Passed),
            (GateName::Approval, GateState::Pending),
            (GateName::Provenance, GateState::Passed),
            (GateName::Vulnerabilities, GateState::Passed),
            (GateName::Soak, GateState::Passed),
            (GateName::Windows, GateState::Passed),
            (GateName::Compatibility, GateState::Passed),
            (GateName::Verification, GateState::Passed),
        ]
    );
    assert_eq!(
        status.message.as_deref(),
        Some(format!("waiting for the Approval gate: 0 of 1 approvals from users alice, bob; approve with: kubectl hoist approve to-prod -n {}", scenario.namespace()).as_str())
    );
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        "example.invalid/backend:latest",
        "untouched while waiting"
    );

    scenario.approve("to-prod", "alice").await;
    let done = scenario.wait_phase("to-prod", Phase::Succeeded).await;
    let status = done.status.expect("status");
    assert_eq!(
        status
            .approvals
            .iter()
            .map(|a| (a.user.as_str(), a.verified))
            .collect::<Vec<_>>(),
        vec![("alice", true)]
    );
    let changes: Vec<(String, String, Option<String>, String)> = status
        .changes
        .iter()
        .map(|c| {
            (
                c.deployment.clone(),
                c.container.clone(),
                c.from.clone(),
                c.to.clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "backend".into(),
                "app".into(),
                None,
                images["backend"].digest.clone()
            ),
            (
                "frontend".into(),
                "web".into(),
                None,
                images["frontend"].digest.clone()
            ),
        ]
    );

    for stage in STAGES {
        assert_eq!(
            scenario.images(stage, "backend").await,
            vec![
                ("app".to_string(), pinned(&images["backend"])),
                ("sidecar".to_string(), "example.invalid/sidecar:1".to_string())
            ],
            "{stage} backend"
        );
        assert_eq!(
            scenario.images(stage, "frontend").await[0],
            ("web".to_string(), pinned(&images["frontend"]))
        );
        assert_eq!(
            scenario
                .annotation(stage, "backend", "hoist.dev/artifact")
                .await
                .as_deref(),
            Some("shop-1-0-0")
        );
    }
    let prod = scenario
        .cluster
        .wait_for::<Environment>("prod", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.applications
                    .first()
                    .is_some_and(|a| a.health == Health::Healthy)
            })
        })
        .await
        .expect("prod healthy");
    let status = prod.status.expect("status");
    assert_eq!(status.summary.as_deref(), Some("shop@1.0.0"));
    let app = &status.applications[0];
    assert_eq!(
        (
            app.artifact.as_str(),
            app.version.as_str(),
            app.promotion.as_str(),
            app.approvers.clone(),
            app.source_revision.as_deref()
        ),
        (
            "shop-1-0-0",
            "1.0.0",
            "to-prod",
            vec!["alice".to_string()],
            Some(REVISION)
        )
    );
    // The history keeps who approved, whether the API server vouched for them, and when.
    let approved: Vec<(String, bool)> = status.history[0]
        .approvals
        .iter()
        .map(|a| (a.user.clone(), a.verified))
        .collect();
    assert_eq!(approved, vec![("alice".to_string(), true)]);
    let digests: Vec<(String, String)> = app
        .images
        .iter()
        .map(|i| (i.component.clone(), i.digest.clone()))
        .collect();
    assert_eq!(
        digests,
        vec![
            ("backend".into(), images["backend"].digest.clone()),
            ("frontend".into(), images["frontend"].digest.clone())
        ]
    );
    let events = scenario.cluster.recent_events().await.expect("events");
    for expected in [
        "Normal to-prod Approved: approved by alice (verified)",
        "Normal to-prod Promoting: rolling out shop-1-0-0 to prod",
        "Normal to-prod Promoted: shop-1-0-0 runs in prod",
        "Normal shop-1-0-0 Resolved: all 2 images resolved to digests",
    ] {
        assert!(
            events.lines().any(|line| line.trim() == expected),
            "missing event {expected:?} in:\n{events}"
        );
    }
    scenario.stop().await;
}

/// `hoist-test/…/backend` from `host:port/hoist-test/…/backend:tag`.
fn repository_path(image: &PushedImage) -> String {
    let without_tag = image.reference.rsplit_once(':').expect("tagged").0;
    without_tag.split_once('/').expect("host/path").1.to_string()
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

#[tokio::test]
async fn a_tag_moved_after_resolution_is_never_followed() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let resolved = artifact_ready(&scenario, "shop-1-0-0").await;
    let moved = hoist_testkit::registry::move_tag(&repository_path(&images["backend"]), "1.0.0", 999)
        .await
        .expect("move tag");
    assert_ne!(
        moved.digest, images["backend"].digest,
        "the tag now names other content"
    );

    for (name, stage) in [("to-dev", "dev"), ("to-staging", "staging"), ("to-prod", "prod")] {
        scenario.promote(name, "shop-1-0-0", stage).await;
        if stage == "prod" {
            scenario.approve(name, "bob").await;
        }
        scenario.wait_phase(name, Phase::Succeeded).await;
    }
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        pinned(&images["backend"])
    );
    let artifact: Artifact = Api::namespaced(scenario.client(), scenario.namespace())
        .get("shop-1-0-0")
        .await
        .expect("artifact");
    assert_eq!(
        artifact.status.expect("status").images,
        resolved.status.expect("status").images,
        "never re-resolved"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_config_change_alone_rolls_the_pods_with_the_same_images() {
    let mut scenario = Scenario::new().await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "shop-token"}, "stringData": {"TOKEN": "one"}}))
            .expect("secret");
    let secrets: Api<Secret> = Api::namespaced(scenario.client(), scenario.namespace());
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].secret_refs = vec![hoist::api::SecretReference {
                name: "shop-token".into(),
            }];
        })
        .await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    let first_hash = scenario
        .annotation("dev", "backend", "hoist.dev/config-hash")
        .await
        .expect("config hash");
    let first_images = scenario.images("dev", "backend").await;
    let rendered: Api<ConfigMap> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        vec![
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("STAGE".to_string(), "dev".to_string())
        ]
    );

    // Only the overlay changes.
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("FEATURE_X".into(), "on".into());
        })
        .await;
    let namespace = scenario.stages["dev"].clone();
    let rolled = scenario
        .cluster
        .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
            config_hash(d).as_ref() != Some(&first_hash)
        })
        .await
        .expect("config change rolls the Deployment");
    let second_hash = config_hash(&rolled).expect("config hash");
    assert_eq!(
        scenario.images("dev", "backend").await,
        first_images,
        "images unchanged"
    );
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(data.get("FEATURE_X").map(String::as_str), Some("on"));

    // Rotating the referenced Secret rolls them again; its content never lands in the ConfigMap.
    let rotated = json!({"stringData": {"TOKEN": "two"}});
    secrets
        .patch("shop-token", &PatchParams::default(), &Patch::Merge(&rotated))
        .await
        .expect("rotate");
    scenario
        .cluster
        .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
            let hash = config_hash(d);
            hash.is_some() && hash != Some(second_hash.clone()) && hash != Some(first_hash.clone())
        })
        .await
        .expect("secret rotation rolls the Deployment");
    assert_eq!(scenario.images("dev", "backend").await, first_images);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert!(
        !data.values().any(|value| value == "two" || value == "one"),
        "no Secret content in {data:?}"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_failed_rollout_rolls_back_images_and_config() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-2-0-0", "2.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    let v1_hash = scenario
        .annotation("dev", "backend", "hoist.dev/config-hash")
        .await
        .expect("hash");
    let v1_images = scenario.images("dev", "backend").await;
    scenario.stop().await;

    // While the operator is down: one replica (which never becomes available:
    // its sidecar image cannot be pulled, so 2.0.0's rollout fails after the
    // one-second progress deadline), a configuration change, and the
    // promotion of 2.0.0.
    let scale = json!({"spec": {"replicas": 1}});
    Api::<Deployment>::namespaced(scenario.client(), &scenario.stages["dev"])
        .patch("backend", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale");
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("FEATURE_X".into(), "on".into());
        })
        .await;
    scenario.promote("v2", "shop-2-0-0", "dev").await;
    scenario.start().await;

    let rolled_back = scenario.wait_phase("v2", Phase::RolledBack).await;
    let status = rolled_back.status.expect("status");
    let message = status.message.expect("message");
    assert!(
        message.starts_with(&format!(
            "rollout failed ({}/backend: rollout exceeded its progress deadline",
            scenario.stages["dev"]
        )),
        "{message}"
    );
    assert!(message.ends_with("rolled back to shop-1-0-0 1.0.0"), "{message}");
    let to_hash = status.config.expect("config change").to;
    assert_ne!(to_hash, v1_hash, "2.0.0 shipped the new configuration");

    assert_eq!(scenario.images("dev", "backend").await, v1_images);
    assert_eq!(
        scenario
            .annotation("dev", "backend", "hoist.dev/config-hash")
            .await,
        Some(v1_hash.clone())
    );
    let rendered: Api<ConfigMap> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config")
        .data
        .expect("data");
    assert_eq!(data.get("FEATURE_X"), None, "the previous configuration is back");
    let environment = scenario.environment("dev").await.status.expect("status");
    let history: Vec<(String, Phase)> = environment
        .history
        .iter()
        .map(|h| (h.promotion.clone(), h.outcome))
        .collect();
    assert_eq!(
        history,
        vec![
            ("v2".to_string(), Phase::RolledBack),
            ("v1".to_string(), Phase::Succeeded)
        ]
    );
    assert_eq!(environment.applications[0].artifact, "shop-1-0-0");
    scenario.stop().await;
}

#[tokio::test]
async fn a_manual_rollback_skips_upstream_and_restores_the_release() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let v1 = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let v2 = scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    for (name, artifact, stage) in [
        ("v1-dev", "shop-1-0-0", "dev"),
        ("v1-staging", "shop-1-0-0", "staging"),
        ("v2-dev", "shop-1-1-0", "dev"),
        ("v2-staging", "shop-1-1-0", "staging"),
    ] {
        scenario.promote(name, artifact, stage).await;
        scenario.wait_phase(name, Phase::Succeeded).await;
    }
    assert_eq!(
        scenario.images("staging", "backend").await[0].1,
        pinned(&v2["backend"])
    );

    // 1.0.0 no longer runs in dev, so only a rollback may bring it back to staging.
    scenario.promote("back", "shop-1-0-0", "staging").await;
    let back = scenario.wait_phase("back", Phase::Succeeded).await;
    let status = back.status.expect("status");
    assert!(status.rollback);
    let upstream = status
        .gates
        .iter()
        .find(|g| g.gate == GateName::Upstream)
        .expect("upstream gate");
    assert_eq!(
        (upstream.state, upstream.message.as_str()),
        (
            GateState::Passed,
            "rollback: shop-1-0-0 ran here before, upstream does not apply"
        )
    );
    assert_eq!(
        scenario.images("staging", "backend").await[0].1,
        pinned(&v1["backend"])
    );
    let history: Vec<String> = scenario
        .environment("staging")
        .await
        .status
        .expect("status")
        .history
        .iter()
        .map(|h| h.promotion.clone())
        .collect();
    assert_eq!(history, vec!["back", "v2-staging", "v1-staging"]);
    scenario.stop().await;
}

#[tokio::test]
async fn missing_provenance_blocks_prod_with_the_reason() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(None).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.approve("to-prod", "alice").await;
    // Once the approval counts, provenance is the one gate left.
    let blocked = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            // Approved, so only provenance holds the Promotion.
            p.status.as_ref().is_some_and(|s| {
                let state = |gate| s.gates.iter().find(|g| g.gate == gate).map(|g| g.state);
                state(GateName::Provenance) == Some(GateState::Failed)
                    && state(GateName::Approval) == Some(GateState::Passed)
            })
        })
        .await
        .expect("provenance gate fails");
    let status = blocked.status.expect("status");
    assert_eq!(status.phase, Phase::Waiting);
    assert_eq!(
        status.message.as_deref(),
        Some(
            "waiting for the Provenance gate: spec.source.revision is not set; build a new Artifact that meets spec.gates.provenance"
        )
    );
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        "example.invalid/backend:latest"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn unknown_artifact_cross_tenant_target_and_digest_mismatch_are_refused_by_name() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let namespace = scenario.namespace().to_string();

    scenario.promote("ghost", "shop-9-9-9", "dev").await;
    let ghost = scenario.wait_phase("ghost", Phase::Rejected).await;
    assert_eq!(
        ghost.status.expect("status").message,
        Some(format!(
            "Artifact shop-9-9-9 not found in namespace {namespace}; create it, then a new Promotion"
        ))
    );
    scenario.promote("nowhere", "shop-9-9-9", "qa").await;
    let nowhere = scenario.wait_phase("nowhere", Phase::Rejected).await;
    assert_eq!(
        nowhere.status.expect("status").message,
        Some(format!(
            "Environment qa not found in namespace {namespace}; create it, then a new Promotion"
        ))
    );

    // Another tenant's namespace.
    let foreign = scenario
        .cluster
        .extra_namespace("hoist-other", &[("hoist.dev/tenant", "someone-else")])
        .await
        .expect("namespace");
    let deployment: Deployment = serde_json::from_value(deployment("backend", "app", 0)).expect("deployment");
    Api::<Deployment>::namespaced(scenario.client(), &foreign)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create");
    scenario
        .apply::<Environment>("rogue", json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "rogue"},
            "spec": {"targets": [{"application": "shop", "component": "backend", "deployment": {"name": "backend", "namespace": foreign}, "container": "app"}]}
        }))
        .await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("steal", "shop-1-0-0", "rogue").await;
    let steal = scenario.wait_phase("steal", Phase::Rejected).await;
    assert_eq!(
        steal.status.expect("status").message,
        Some(format!(
            "refused: spec.targets[0].deployment.namespace: namespace {foreign} is not opted in for tenant {namespace}; a cluster admin must label it hoist.dev/tenant={namespace}"
        ))
    );
    let untouched: Deployment = Api::namespaced(scenario.client(), &foreign)
        .get("backend")
        .await
        .expect("deployment");
    assert_eq!(
        untouched
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0]
            .image
            .as_deref(),
        Some("example.invalid/backend:latest")
    );

    // A spec digest the registry does not have for the tag.
    let wrong = format!("sha256:{}", "0".repeat(64));
    scenario
        .apply::<Artifact>(
            "shop-bad",
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "shop-bad"},
                "spec": {"application": "shop", "version": "1.0.1", "images": [
                    {"component": "backend", "image": images["backend"].reference, "digest": wrong},
                    {"component": "frontend", "image": images["frontend"].reference}
                ]}
            }),
        )
        .await;
    let bad = scenario
        .cluster
        .wait_for::<Artifact>("shop-bad", TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "DigestMismatch")
            })
        })
        .await
        .expect("digest mismatch reported");
    let ready = bad
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("ready");
    assert_eq!(ready.status, "False");
    assert_eq!(
        ready.message,
        format!(
            "component backend: image {} has digest {} in the registry, but {wrong} was expected; the spec cannot change: create a new Artifact",
            images["backend"].reference, images["backend"].digest
        )
    );
    scenario.promote("bad-dev", "shop-bad", "dev").await;
    let held = scenario
        .wait_gate("bad-dev", GateName::ArtifactReady, GateState::Failed)
        .await;
    assert_eq!(held.status.expect("status").phase, Phase::Waiting);
    scenario.stop().await;
}

#[tokio::test]
async fn a_full_resync_of_an_idle_system_writes_nothing() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(Some(REVISION)).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.wait_phase("to-prod", Phase::Waiting).await;
    // Let the operator finish what it was doing, then restart it: a restart
    // lists everything and reconciles every object.
    scenario.quiet().await;
    scenario.stop().await;
    let mark = reconciles::Mark::now();
    scenario.start().await;
    // Not vacuous: every Environment, the Artifact and the three Promotions
    // were reconciled again, without an error, and wrote nothing.
    let every: BTreeSet<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let health = scenario.operator.as_ref().expect("operator").health;
    let runs = |controller: &'static str| async move {
        health::metric(
            health,
            &format!("hoist_reconciliations_total{{controller=\"{controller}\"}}"),
        )
        .await
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !mark.since(scenario.namespace()).is_superset(&every)
        || runs("artifact").await < 1.0
        || runs("promotion").await < 3.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?} of {every:?}, {} Artifact and {} Promotion reconciles after the restart",
            mark.since(scenario.namespace()),
            runs("artifact").await,
            runs("promotion").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scenario.quiet().await;
    let metrics = health::get(health, "/metrics").await.expect("metrics").1;
    assert!(
        !metrics.contains("hoist_reconciliation_errors_total{"),
        "reconciles failed after the restart:\n{metrics}"
    );
    let requests = scenario.requests().all();
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "an idle resync writes nothing");
    assert!(
        requests.iter().any(|r| r.method == "GET"),
        "it did read: {requests:?}"
    );
    scenario.stop().await;
}

/// Kills the operator at `point` of a promotion to dev, starts it again,
/// and checks the promotion happened exactly once.
async fn crash_at(point: &str) {
    let mut scenario = Scenario::new().await;
    let deployments: Api<Deployment> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    if point == "while-verifying" {
        // One replica that never becomes available (its sidecar image cannot
        // be pulled) holds the rollout open for the 600-second deadline.
        let hold = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600}});
        deployments
            .patch("backend", &PatchParams::default(), &Patch::Merge(&hold))
            .await
            .expect("hold rollout");
    }
    let generation_before = deployments
        .get("backend")
        .await
        .expect("deployment")
        .metadata
        .generation
        .unwrap_or(0);
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    let namespace = scenario.stages["dev"].clone();
    let expected = pinned(&images["backend"]);
    let mut template_changes = 1;
    match point {
        "after-resolution" => {
            artifact_ready(&scenario, "shop-1-0-0").await;
            scenario.kill().await;
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
        }
        "after-deployment-patch" => {
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
            scenario
                .cluster
                .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
                    d.spec
                        .as_ref()
                        .and_then(|s| s.template.spec.as_ref())
                        .is_some_and(|p| p.containers[0].image.as_deref() == Some(expected.as_str()))
                })
                .await
                .expect("deployment patched");
            scenario.kill().await;
        }
        _ => {
            scenario.promote("to-dev", "shop-1-0-0", "dev").await;
            scenario.wait_phase("to-dev", Phase::Verifying).await;
            scenario.kill().await;
            // With the operator down, the rollout completes: no replica has to run.
            let release = json!({"spec": {"replicas": 0}});
            deployments
                .patch("backend", &PatchParams::default(), &Patch::Merge(&release))
                .await
                .expect("scale down");
            template_changes += 1;
        }
    }
    scenario.start().await;
    scenario.wait_phase("to-dev", Phase::Succeeded).await;
    let dev = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| !s.history.is_empty())
        })
        .await
        .expect("history");
    let history: Vec<(String, Phase)> = dev
        .status
        .expect("status")
        .history
        .iter()
        .map(|h| (h.promotion.clone(), h.outcome))
        .collect();
    assert_eq!(
        history,
        vec![("to-dev".to_string(), Phase::Succeeded)],
        "{point}: exactly one release"
    );
    let deployment = scenario.deployment("dev", "backend").await;
    assert_eq!(
        deployment.metadata.generation,
        Some(generation_before + template_changes),
        "{point}: Hoist changed the Deployment once"
    );
    assert_eq!(scenario.images("dev", "backend").await[0].1, expected);
    scenario.stop().await;
}

#[tokio::test]
async fn a_crash_after_resolution_neither_loses_nor_repeats_the_promotion() {
    crash_at("after-resolution").await;
}

#[tokio::test]
async fn a_crash_after_the_deployment_patch_neither_loses_nor_repeats_the_promotion() {
    crash_at("after-deployment-patch").await;
}

#[tokio::test]
async fn a_crash_while_verifying_neither_loses_nor_repeats_the_promotion() {
    crash_at("while-verifying").await;
}

// Gates decided by the clock and by what runs: soak, change windows, compatibility.

impl Scenario {
    /// Waits until the operator has read `name`'s current spec.
    async fn environment_observed(&self, name: &str) -> Environment {
        self.cluster
            .wait_for::<Environment>(name, TIMEOUT, |e| {
                e.status.as_ref().and_then(|s| s.observed_generation) == e.metadata.generation
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// A Promotion of `artifact` into `environment` that waives `waive`.
    async fn promote_with_override(&self, name: &str, artifact: &str, environment: &str, waive: GateName) {
        let promotion = Promotion::new(
            name,
            PromotionSpec {
                artifact: artifact.into(),
                environment: environment.into(),
                reason: Some("test".into()),
                requested_by: Some(self.cluster.admin_user().to_string()),
                r#override: Some(hoist::api::Override {
                    waive: vec![waive],
                    justification: "hotfix INC-42 cannot wait".into(),
                }),
                approvals: Vec::new(),
            },
        );
        Api::<Promotion>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &promotion)
            .await
            .expect("create promotion");
    }
}

fn gate(promotion: &Promotion, name: GateName) -> hoist::api::GateStatus {
    promotion
        .status
        .as_ref()
        .and_then(|s| s.gates.iter().find(|g| g.gate == name).cloned())
        .unwrap_or_else(|| panic!("no {name:?} gate in {promotion:?}"))
}

#[tokio::test]
async fn a_soak_holds_the_promotion_until_exactly_its_end_and_not_a_poll_later() {
    let mut scenario = Scenario::new().await;
    scenario
        .update_environment("staging", |spec| {
            spec.gates.soak = Some(hoist::api::SoakGate {
                duration: "6s".into(),
            })
        })
        .await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    scenario.environment_observed("staging").await;
    let dev = scenario.environment("dev").await;
    let since = dev.status.expect("status").applications[0]
        .health_since
        .clone()
        .expect("healthSince");
    let end = since.0 + k8s_openapi::jiff::SignedDuration::from_secs(6);

    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let waiting = scenario.wait_phase("to-staging", Phase::Waiting).await;
    // The soak may already be over on a slow machine; then there is nothing to hold.
    if k8s_openapi::jiff::Timestamp::now() < end {
        let soak = gate(&waiting, GateName::Soak);
        let message = format!(
            "shop-1-0-0 soaks until {end}: Healthy in dev since {}, soak 6s",
            since.0
        );
        assert_eq!(
            (soak.state, soak.message.as_str(), soak.next_check.map(|t| t.0)),
            (GateState::Pending, message.as_str(), Some(end))
        );
        assert_eq!(
            waiting.status.as_ref().and_then(|s| s.message.clone()),
            Some(format!("waiting for the Soak gate: {message}"))
        );
    }
    // Decided again when the soak ends: well before the 300-second resync.
    let done = scenario.wait_phase("to-staging", Phase::Succeeded).await;
    let started = done
        .status
        .as_ref()
        .and_then(|s| s.started_at.clone())
        .expect("startedAt");
    assert!(
        started.0 >= end,
        "started at {} before the soak ended at {end}",
        started.0
    );
    let soak = gate(&done, GateName::Soak);
    assert_eq!(
        (soak.state, soak.message),
        (
            GateState::Passed,
            format!(
                "shop-1-0-0 has soaked 6s upstream: Healthy in dev since {}, soak ended at {end}",
                since.0
            )
        )
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_freeze_holds_prod_and_an_override_with_an_approval_waives_it() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(Some(REVISION)).await;

    // A weekly freeze, in Berlin, that opened at the start of the last minute and lasts two hours.
    let berlin = TimeZone::get("Europe/Berlin").expect("time zone");
    let opened = Timestamp::from_second((Timestamp::now().as_second() / 60 - 1) * 60).expect("instant");
    let local = opened.to_zoned(berlin.clone());
    let schedule = format!(
        "{} {} * * {}",
        local.minute(),
        local.hour(),
        local.weekday().to_sunday_zero_offset()
    );
    let end = opened + SignedDuration::from_hours(2);
    scenario
        .update_environment("prod", |spec| {
            spec.gates.windows = vec![hoist::api::ChangeWindow {
                name: "weekly-freeze".into(),
                r#type: hoist::api::WindowType::Deny,
                schedule: Some(schedule.clone()),
                duration: Some("2h".into()),
                time_zone: Some("Europe/Berlin".into()),
                start: None,
                end: None,
            }]
        })
        .await;
    let prod = scenario.environment_observed("prod").await;
    let gates_valid = prod
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "GatesValid")
        .expect("GatesValid");
    assert_eq!(
        (gates_valid.status.as_str(), gates_valid.message.as_str()),
        ("True", "soak, change windows and verification steps are valid")
    );

    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.approve("to-prod", "alice").await;
    let message = format!(
        "change window weekly-freeze (Deny) is on until {} ({end}); no Promotion starts before then unless an \
         override waives Windows",
        end.to_zoned(berlin).strftime("%Y-%m-%d %H:%M %Z")
    );
    let held = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.message.as_deref() == Some(format!("waiting for the Windows gate: {message}").as_str())
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let windows = gate(&held, GateName::Windows);
    assert_eq!(
        (windows.state, windows.next_check.map(|t| t.0)),
        (GateState::Pending, Some(end))
    );
    assert_eq!(gate(&held, GateName::Approval).state, GateState::Passed);

    // Break glass: an override needs an approval too, and is told as a warning.
    scenario
        .promote_with_override("to-prod-now", "shop-1-0-0", "prod", GateName::Windows)
        .await;
    scenario.approve("to-prod-now", "bob").await;
    let done = scenario.wait_phase("to-prod-now", Phase::Succeeded).await;
    let waived = gate(&done, GateName::Windows);
    assert_eq!(
        (waived.state, waived.message.as_str(), waived.next_check),
        (
            GateState::Waived,
            format!("waived by override: {message}").as_str(),
            None
        )
    );
    let first = scenario.wait_phase("to-prod", Phase::Succeeded).await;
    assert_eq!(
        first.status.and_then(|s| s.message),
        Some("shop-1-0-0 already runs in prod; nothing to change".into())
    );
    let events = scenario.cluster.recent_events().await.expect("events");
    let expected = format!(
        "Warning to-prod-now GateWaived: Windows gate waived by override: {message} (justification: hotfix INC-42 cannot wait)"
    );
    assert!(
        events.lines().any(|line| line.trim() == expected),
        "missing event {expected:?} in:\n{events}"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_compatibility_range_holds_a_release_until_what_it_needs_runs_and_compat_prints_the_matrix() {
    let mut scenario = Scenario::new().await;
    scenario.create_deployment("dev", "payments", "api", 0).await;
    let payments_namespace = scenario.stages["dev"].clone();
    scenario
        .update_environment("dev", |spec| {
            spec.targets.push(hoist::api::Target {
                application: "payments".into(),
                component: "api".into(),
                deployment: hoist::api::DeploymentReference {
                    name: "payments".into(),
                    namespace: Some(payments_namespace),
                },
                container: "api".into(),
            });
            spec.gates.compatibility = Some(hoist::api::CompatibilityGate { enforce: true });
        })
        .await;
    scenario.start().await;
    for (name, version) in [("payments-1-3-0", "1.3.0"), ("payments-1-4-0", "1.4.0")] {
        let images = push_multi("payments", &[("api", version)])
            .await
            .expect("push images");
        scenario
            .apply::<Artifact>(
                name,
                json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": name},
                       "spec": {"application": "payments", "version": version,
                                "images": [{"component": "api", "image": images["api"].reference}],
                                "compatibility": [{"application": "shop", "versions": ">=1.0.0, <3.0.0"}]}}),
            )
            .await;
    }
    let images = push_multi("shop", &[("backend", "2.0.0"), ("frontend", "2.0.0")])
        .await
        .expect("push images");
    scenario
        .apply::<Artifact>(
            "shop-2-0-0",
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "shop-2-0-0"},
                   "spec": {"application": "shop", "version": "2.0.0",
                            "images": [{"component": "backend", "image": images["backend"].reference},
                                       {"component": "frontend", "image": images["frontend"].reference}],
                            "compatibility": [{"application": "payments", "versions": ">=1.4.0, <2.0.0"}]}}),
        )
        .await;
    scenario.environment_observed("dev").await;

    scenario
        .promote_and_wait("payments-old", "payments-1-3-0", "dev")
        .await;
    scenario.promote("shop-new", "shop-2-0-0", "dev").await;
    let message = "shop-2-0-0 needs payments >=1.4.0, <2.0.0, and payments 1.3.0 (payments-1-3-0) runs here; \
                   promote compatible releases first, or waive Compatibility";
    let held = scenario
        .cluster
        .wait_for::<Promotion>("shop-new", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.message.as_deref()
                    == Some(format!("waiting for the Compatibility gate: {message}").as_str())
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(gate(&held, GateName::Compatibility).state, GateState::Pending);

    // payments 1.4.0 accepts shop 2.0.0 and is what shop 2.0.0 needs: both go through.
    scenario
        .promote_and_wait("payments-new", "payments-1-4-0", "dev")
        .await;
    let done = scenario.wait_phase("shop-new", Phase::Succeeded).await;
    assert_eq!(
        gate(&done, GateName::Compatibility).message,
        "2 compatibility range(s) hold against what runs here"
    );

    let matrix = hoist::plugin::compat(&scenario.client(), scenario.namespace(), Some("dev"))
        .await
        .expect("compat");
    assert_eq!(
        matrix,
        "\
Environment dev (Compatibility gate: enforced)
APPLICATION   ARTIFACT         VERSION   DECLARES                   RUNS HERE        CHECK
payments      payments-1-4-0   1.4.0     shop >=1.0.0, <3.0.0       shop 2.0.0       holds
shop          shop-2-0-0       2.0.0     payments >=1.4.0, <2.0.0   payments 1.4.0   holds
Every declared range holds.
"
    );
    scenario.stop().await;
}

// Verification against the real Prometheus of scripts/test.

/// The error-ratio check of the verification scenarios, against the test Prometheus.
fn error_ratio_check(count: i32, failure_limit: i32) -> hoist::api::PrometheusCheck {
    hoist::api::PrometheusCheck {
        address: Some(
            hoist_testkit::prometheus::address().expect("HOIST_TEST_PROMETHEUS (run scripts/test)"),
        ),
        bearer_token_secret: None,
        query: ERROR_RATIO.into(),
        condition: "result < 0.01".into(),
        interval: "1s".into(),
        count,
        failure_limit,
        inconclusive_limit: 0,
        consecutive_error_limit: 4,
    }
}

/// dev verifies every release with `check`.
async fn verify_dev_with_prometheus(scenario: &Scenario, check: hoist::api::PrometheusCheck) {
    scenario
        .update_environment("dev", |spec| {
            spec.gates.verification = vec![hoist::api::VerificationStep {
                name: "error-rate".into(),
                job: None,
                prometheus: Some(check),
            }]
        })
        .await;
}

const ERROR_RATIO: &str = r#"max(hoist_test_error_ratio{namespace="{{namespace}}", environment="{{environment}}", artifact="{{artifact}}"})"#;

/// Pushes the error ratio of `artifact` in dev and waits until Prometheus returns it.
async fn error_ratio(scenario: &Scenario, artifact: &str, value: f64) {
    let namespace = scenario.namespace();
    let labels = format!(r#"namespace="{namespace}",environment="dev",artifact="{artifact}""#);
    // One Pushgateway group per artifact: pushing one does not replace the other.
    hoist_testkit::prometheus::push(
        &format!("{namespace}-{artifact}"),
        "hoist_test_error_ratio",
        &labels,
        value,
    )
    .await
    .expect("push");
    let query = ERROR_RATIO
        .replace("{{namespace}}", namespace)
        .replace("{{environment}}", "dev")
        .replace("{{artifact}}", artifact);
    hoist_testkit::prometheus::wait_for(&query, Some(&value.to_string()))
        .await
        .expect("Prometheus scraped the value");
}

async fn forget_error_ratios(scenario: &Scenario, artifacts: &[&str]) {
    for artifact in artifacts {
        let _ = hoist_testkit::prometheus::delete(&format!("{}-{artifact}", scenario.namespace())).await;
    }
}

#[tokio::test]
async fn prometheus_verifies_a_release_and_a_regressed_error_rate_rolls_the_next_one_back() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_prometheus(&scenario, error_ratio_check(3, 1)).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let good = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    error_ratio(&scenario, "shop-1-0-0", 0.001).await;
    error_ratio(&scenario, "shop-1-1-0", 0.2).await;

    scenario.promote_and_wait("good", "shop-1-0-0", "dev").await;
    let good_promotion = scenario.wait_phase("good", Phase::Succeeded).await;
    let status = good_promotion.status.expect("status");
    let step = &status.verification[0];
    assert_eq!(
        (
            step.name.as_str(),
            step.phase,
            step.message.as_str(),
            step.query.clone(),
            step.next_measurement.clone()
        ),
        (
            "error-rate",
            hoist::api::VerificationPhase::Passed,
            "passed: 3 of 3 measurement(s): 3 successful, 0 failed, 0 inconclusive",
            Some(format!(
                r#"max(hoist_test_error_ratio{{namespace="{}", environment="dev", artifact="shop-1-0-0"}})"#,
                scenario.namespace()
            )),
            None
        )
    );
    assert_eq!(
        step.measurements
            .iter()
            .map(|m| (m.outcome, m.value.as_deref()))
            .collect::<Vec<_>>(),
        vec![(hoist::api::MeasurementOutcome::Successful, Some("0.001")); 3]
    );
    // Measurements are an interval apart: the operator comes back for each, it is not woken by anything else.
    let gaps: Vec<i64> = step
        .measurements
        .windows(2)
        .map(|pair| pair[1].at.0.as_second() - pair[0].at.0.as_second())
        .collect();
    assert!(gaps.iter().all(|gap| *gap >= 1), "{gaps:?}");
    let verification = status
        .gates
        .iter()
        .find(|g| g.gate == GateName::Verification)
        .expect("gate");
    assert_eq!(
        (verification.state, verification.message.as_str()),
        (GateState::Passed, "1 verification step(s) passed: error-rate")
    );

    scenario.promote("regressed", "shop-1-1-0", "dev").await;
    let rolled_back = scenario.wait_phase("regressed", Phase::RolledBack).await;
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(
            "verification failed (step error-rate: 2 measurement(s) did not meet `result < 0.01` (failureLimit 1), \
             the last was 0.2; 2 of 3 measurement(s): 0 successful, 2 failed, 0 inconclusive); rolled back to shop-1-0-0 1.0.0"
                .into()
        )
    );
    let dev = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.applications
                    .first()
                    .is_some_and(|a| a.artifact == "shop-1-0-0" && a.health == Health::Healthy)
            })
        })
        .await
        .expect("dev runs the good release again");
    assert_eq!(dev.status.expect("status").history[0].outcome, Phase::RolledBack);
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        pinned(&good["backend"])
    );
    forget_error_ratios(&scenario, &["shop-1-0-0", "shop-1-1-0"]).await;
    scenario.stop().await;
}

#[tokio::test]
async fn an_empty_query_result_is_inconclusive_and_fails_past_the_inconclusive_limit() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_prometheus(&scenario, error_ratio_check(1, 0)).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    // Nothing is pushed for shop-1-0-0: the query has no sample.
    scenario.promote("unmeasured", "shop-1-0-0", "dev").await;
    let failed = scenario.wait_phase("unmeasured", Phase::Failed).await;
    let status = failed.status.expect("status");
    assert_eq!(
        status.message.as_deref(),
        Some(
            "verification failed: step error-rate: 1 measurement(s) were inconclusive (inconclusiveLimit 0): the query \
             returned no sample; 1 of 1 measurement(s): 0 successful, 0 failed, 1 inconclusive"
        )
    );
    assert_eq!(
        status.verification[0]
            .measurements
            .iter()
            .map(|m| (m.outcome, m.message.as_deref()))
            .collect::<Vec<_>>(),
        vec![(
            hoist::api::MeasurementOutcome::Inconclusive,
            Some("the query returned no sample")
        )]
    );
    scenario.stop().await;
}

// Verification Jobs: run by kube-controller-manager on a real cluster, by the
// stand-in's Job controller emulation otherwise (tests/standin/README.md).

/// dev verifies every release with a Job running `script` in busybox (or `image`).
async fn verify_dev_with_job(scenario: &Scenario, image: &str, script: &str, timeout: &str, retries: i32) {
    scenario
        .update_environment("dev", |spec| {
            spec.gates.verification = vec![hoist::api::VerificationStep {
                name: "smoke".into(),
                job: Some(hoist::api::JobCheck {
                    image: image.into(),
                    command: vec!["sh".into(), "-c".into(), script.into()],
                    args: Vec::new(),
                    env: vec![hoist::api::EnvValue {
                        name: "SUITE".into(),
                        value: "smoke".into(),
                    }],
                    service_account_name: None,
                    timeout: timeout.into(),
                    retries,
                }),
                prometheus: None,
            }]
        })
        .await;
}

fn step_of(promotion: &Promotion) -> hoist::api::VerificationStatus {
    promotion
        .status
        .as_ref()
        .and_then(|s| s.verification.first().cloned())
        .expect("a verification step")
}

#[tokio::test]
async fn a_smoke_test_job_passes_and_the_promotion_succeeds() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 0", "2m", 0).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("smoke-ok", "shop-1-0-0", "dev").await;
    let done = scenario.wait_phase("smoke-ok", Phase::Succeeded).await;
    // Verification Jobs run in the tenant's namespace, owned by their Promotion.
    let namespace = scenario.namespace().to_string();
    let name = hoist::core::gates::verification::job_name("smoke-ok", done.metadata.uid.as_deref(), "smoke");
    let step = step_of(&done);
    assert_eq!(
        (step.phase, step.message.clone(), step.job.clone()),
        (
            hoist::api::VerificationPhase::Passed,
            format!("Job {namespace}/{name} completed; logs: kubectl logs -n {namespace} job/{name}"),
            Some(hoist::api::JobReference {
                namespace: namespace.clone(),
                name: name.clone()
            })
        )
    );
    let job = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(scenario.client(), &namespace)
        .get(&name)
        .await
        .expect("the Job is kept for inspection");
    assert_eq!(
        job.metadata
            .owner_references
            .as_ref()
            .map(|o| (o[0].kind.clone(), o[0].name.clone())),
        Some(("Promotion".to_string(), "smoke-ok".to_string()))
    );
    let env: BTreeMap<String, String> = job.spec.expect("spec").template.spec.expect("pod").containers[0]
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["HOIST_IMAGE_BACKEND"], pinned(&images["backend"]));
    assert_eq!(env["HOIST_ENVIRONMENT"], "dev");
    assert_eq!(env["HOIST_SOURCE_REVISION"], REVISION);
    assert_eq!(env["SUITE"], "smoke");
    scenario.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_then_the_release_is_rolled_back() {
    let mut scenario = Scenario::new().await;
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 0", "2m", 1).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    let good = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    scenario.promote_and_wait("first", "shop-1-0-0", "dev").await;
    let hash = config_hash(&scenario.deployment("dev", "backend").await);

    // The next release's smoke test fails on every attempt.
    verify_dev_with_job(&scenario, "busybox:1.36", "exit 1", "2m", 1).await;
    scenario.environment_observed("dev").await;
    scenario.promote("second", "shop-1-1-0", "dev").await;
    let namespace = scenario.namespace().to_string();
    // One failed attempt, one retry after Kubernetes' 10-second back-off.
    let rolled_back = scenario
        .cluster
        .wait_for::<Promotion>("second", TIMEOUT + Duration::from_secs(30), |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::RolledBack)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let name =
        hoist::core::gates::verification::job_name("second", rolled_back.metadata.uid.as_deref(), "smoke");
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(format!(
            "verification failed (step smoke: Job {namespace}/{name} failed: 2 of 2 attempt(s) failed; \
             logs: kubectl logs -n {namespace} job/{name}); rolled back to shop-1-0-0 1.0.0"
        ))
    );
    let backend = scenario
        .cluster
        .wait_for_in::<Deployment>(&scenario.stages["dev"], "backend", TIMEOUT, |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .map(|p| p.containers[0].image.clone())
                == Some(Some(pinned(&good["backend"])))
        })
        .await
        .expect("the previous images are back");
    assert_eq!(config_hash(&backend), hash, "and the previous configuration");
    scenario.stop().await;
}

#[tokio::test]
async fn a_job_that_cannot_start_times_out_and_fails_the_promotion() {
    let mut scenario = Scenario::new().await;
    // The image's registry never resolves: the Pod never starts, on any cluster.
    verify_dev_with_job(&scenario, "example.invalid/smoke:1", "exit 0", "10s", 0).await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("stuck", "shop-1-0-0", "dev").await;
    let running = scenario
        .cluster
        .wait_for::<Promotion>("stuck", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.verification
                    .first()
                    .is_some_and(|v| v.message.contains("is running"))
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(running.status.as_ref().map(|s| s.phase), Some(Phase::Verifying));
    let failed = scenario.wait_phase("stuck", Phase::Failed).await;
    let namespace = scenario.namespace().to_string();
    let name = hoist::core::gates::verification::job_name("stuck", failed.metadata.uid.as_deref(), "smoke");
    assert_eq!(
        failed.status.and_then(|s| s.message),
        Some(format!(
            "verification failed: step smoke: Job {namespace}/{name} failed: ran longer than its timeout of 10s; \
             logs: kubectl logs -n {namespace} job/{name}"
        ))
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_bearer_token_from_a_secret_reaches_prometheus_and_a_refused_one_fails_the_step() {
    let mut scenario = Scenario::new().await;
    let proxy = hoist_testkit::prometheus::bearer_proxy("s3cret-token")
        .await
        .expect("proxy");
    let secret = |token: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "prometheus-token"},
            "stringData": {"token": format!("{token}\n")}
        }))
        .expect("secret")
    };
    let secrets = Api::<Secret>::namespaced(scenario.client(), scenario.namespace());
    secrets
        .create(&PostParams::default(), &secret("s3cret-token"))
        .await
        .expect("create secret");
    verify_dev_with_prometheus(
        &scenario,
        hoist::api::PrometheusCheck {
            address: Some(proxy.clone()),
            bearer_token_secret: Some(hoist::api::SecretKeyReference {
                name: "prometheus-token".into(),
                key: "token".into(),
            }),
            consecutive_error_limit: 0,
            ..error_ratio_check(1, 0)
        },
    )
    .await;
    scenario.start().await;
    scenario.environment_observed("dev").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    error_ratio(&scenario, "shop-1-0-0", 0.001).await;
    error_ratio(&scenario, "shop-1-1-0", 0.001).await;
    scenario.promote_and_wait("with-token", "shop-1-0-0", "dev").await;

    // The token is rotated to one the proxy refuses: the measurement is an error, and one is too many.
    let mut wrong = secret("expired-token");
    wrong.metadata.resource_version = secrets
        .get("prometheus-token")
        .await
        .expect("secret")
        .metadata
        .resource_version;
    secrets
        .replace("prometheus-token", &PostParams::default(), &wrong)
        .await
        .expect("rotate");
    scenario.promote("refused", "shop-1-1-0", "dev").await;
    let rolled_back = scenario.wait_phase("refused", Phase::RolledBack).await;
    assert_eq!(
        rolled_back.status.as_ref().and_then(|s| s.message.clone()),
        Some(
            "verification failed (step error-rate: 1 error(s) in a row (consecutiveErrorLimit 0): Prometheus refused the \
             query: a valid bearer token is required; 0 of 1 measurement(s): 0 successful, 0 failed, 0 inconclusive); \
             rolled back to shop-1-0-0 1.0.0"
                .into()
        )
    );
    forget_error_ratios(&scenario, &["shop-1-0-0", "shop-1-1-0"]).await;
    scenario.stop().await;
}

/// The README's section "The seven questions": each question's command run
/// (the `kubectl-hoist` binary, as a user runs it) against a prod that saw
/// three releases, a configuration-only change, a rollback and a hotfix;
/// each output must be the README's block after `<!-- seven-questions:NAME -->`,
/// apart from what differs from run to run (ages, times, the random part of
/// generated names, column padding). `HOIST_UPDATE_README=1` writes the
/// outputs of this run into the README instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_questions_are_answered_as_the_readme_shows() {
    const REVISIONS: [(&str, &str); 4] = [
        ("1.0.0", "9e1d0c3b2a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d"),
        ("1.1.0", "0123abc4567def890123abc4567def890123abc4"),
        ("1.2.0", "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f"),
        ("1.2.1", "b7a4e2f9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1"),
    ];
    let mut scenario = Scenario::new().await;
    let tenant = scenario.namespace().to_string();
    let secrets: Api<Secret> = Api::namespaced(scenario.client(), &tenant);
    let db = |password: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-db"},
            "stringData": {"user": "shop", "password": password}
        }))
        .expect("secret")
    };
    secrets
        .create(&PostParams::default(), &db("first-password"))
        .await
        .expect("create secret");
    // payments runs beside shop; shop declares which payments it works with.
    for stage in STAGES {
        scenario.create_deployment(stage, "payments", "app", 0).await;
        let namespace = scenario.stages[stage].clone();
        scenario
            .update_environment(stage, |spec| {
                spec.targets.push(
                    serde_json::from_value(json!({
                        "application": "payments", "component": "api",
                        "deployment": {"name": "payments", "namespace": namespace}, "container": "app"
                    }))
                    .expect("target"),
                );
                if stage == "prod" {
                    spec.config[0].data =
                        [("STAGE", "prod"), ("PAYMENT_RETRIES", "3"), ("LEGACY_CART", "on")]
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .into();
                    spec.config[0].secret_refs =
                        vec![serde_json::from_value(json!({"name": "shop-db"})).expect("secret ref")];
                    spec.gates.compatibility =
                        Some(serde_json::from_value(json!({"enforce": true})).expect("compatibility"));
                }
            })
            .await;
    }
    scenario.start().await;
    let admin = scenario
        .cluster
        .admin_kubeconfig_file()
        .expect("the admin's kubeconfig");

    let payments = push_multi("payments", &[("api", "1.4.0")])
        .await
        .expect("push payments");
    scenario
        .apply::<Artifact>("payments-1-4-0", json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "payments-1-4-0"},
            "spec": {
                "application": "payments", "version": "1.4.0",
                "images": [{"component": "api", "image": payments["api"].reference}],
                "source": {"repository": "https://gitlab.com/acme/payments", "revision": "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c"}
            }
        }))
        .await;
    through_to_prod(&scenario, "payments-1-4-0", "bob").await;
    for (version, revision) in &REVISIONS[..3] {
        let artifact = shop_release(&scenario, version, revision).await;
        through_to_prod(
            &scenario,
            &artifact,
            if *version == "1.1.0" { "bob" } else { "alice" },
        )
        .await;
    }

    let mut answers: Vec<(&'static str, String)> = Vec::new();
    let run = |args: &'static [&'static str]| {
        let admin = admin.clone();
        let tenant = tenant.clone();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-hoist"))
                .env("KUBECONFIG", &admin)
                .args(["-n", &tenant])
                .args(args)
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(TIMEOUT, output)
                .await
                .unwrap_or_else(|_| panic!("kubectl hoist {args:?} did not finish within {TIMEOUT:?}"))
                .expect("kubectl-hoist runs");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "kubectl hoist {args:?} failed: {}{stdout}",
                String::from_utf8_lossy(&output.stderr)
            );
            let shown: Vec<String> = args
                .iter()
                .map(|arg| {
                    if arg.contains(' ') {
                        format!("\"{arg}\"")
                    } else {
                        arg.to_string()
                    }
                })
                .collect();
            format!("$ kubectl hoist {} -n shop\n{stdout}", shown.join(" "))
        }
    };

    // A configuration-only change: an overlay key changed, one added, one
    // removed, and the Secret rotated, made while the operator is stopped so
    // that they roll out as one change.
    scenario.stop().await;
    scenario
        .update_environment("prod", |spec| {
            spec.config[0].data = [
                ("STAGE", "prod"),
                ("PAYMENT_RETRIES", "5"),
                ("CHECKOUT_TIMEOUT", "30s"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        })
        .await;
    let mut rotated = db("second-password");
    rotated.metadata.resource_version = secrets
        .get("shop-db")
        .await
        .expect("secret")
        .metadata
        .resource_version;
    secrets
        .replace("shop-db", &PostParams::default(), &rotated)
        .await
        .expect("rotate the secret");
    scenario.start().await;
    scenario
        .cluster
        .wait_for::<Environment>("prod", TIMEOUT, |environment| {
            environment.status.as_ref().is_some_and(|status| {
                status.history.first().is_some_and(|entry| {
                    entry.change == hoist::api::ChangeKind::Configuration && entry.completed_at.is_some()
                })
            })
        })
        .await
        .unwrap_or_else(|error| panic!("prod records the configuration change, rolled out: {error}"));
    answers.push((
        "config-change",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));

    // Question 4: roll shop back, payments untouched.
    let rollback = run(&["rollback", "prod", "--application", "shop"]).await;
    let promotion = rollback
        .lines()
        .find_map(|line| line.split("Promotion ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the rollback names its Promotion")
        .to_string();
    answers.push(("rollback", rollback));
    scenario.approve(&promotion, "bob").await;
    scenario.wait_phase(&promotion, Phase::Succeeded).await;
    answers.push((
        "rollback-changes",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));

    // Question 7: the hotfix 1.2.1 goes straight to prod.
    let (version, revision) = REVISIONS[3];
    let artifact = shop_release(&scenario, version, revision).await;
    assert_eq!(artifact, "shop-1-2-1");
    let hotfix = run(&[
        "hotfix",
        "shop-1-2-1",
        "prod",
        "--waive",
        "Upstream",
        "--justification",
        "checkout fails for carts over 100 items (INC-4711)",
        "--name",
        "hotfix-shop-1-2-1",
    ])
    .await;
    answers.push(("hotfix", hotfix));
    scenario.wait_phase("hotfix-shop-1-2-1", Phase::Waiting).await;
    scenario.approve("hotfix-shop-1-2-1", "alice").await;
    scenario.wait_phase("hotfix-shop-1-2-1", Phase::Succeeded).await;

    answers.push(("status", run(&["status", "prod"]).await));
    answers.push(("status-wide", run(&["status", "prod", "-o", "wide"]).await));
    answers.push((
        "changes",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));
    answers.push(("compat", run(&["compat", "prod"]).await));
    answers.push((
        "history",
        run(&["history", "prod", "--application", "shop"]).await,
    ));
    scenario.stop().await;

    // What is this run's own: the tenant and stage namespaces.
    let mut own: Vec<(String, String)> = vec![(tenant.clone(), "shop".into())];
    for stage in STAGES {
        own.push((scenario.stages[stage].clone(), format!("shop-{stage}")));
    }
    let answers: Vec<(&str, String)> = answers
        .into_iter()
        .map(|(name, text)| {
            let text = own
                .iter()
                .fold(text, |text, (from, to)| text.replace(from.as_str(), to));
            (name, text)
        })
        .collect();
    readme::check(&answers);
}

/// Promotes `artifact` through dev and staging, then into prod with
/// `approver`'s approval (Promotions `<artifact>-<stage>`).
async fn through_to_prod(scenario: &Scenario, artifact: &str, approver: &str) {
    for stage in ["dev", "staging"] {
        scenario
            .promote_and_wait(&format!("{artifact}-{stage}"), artifact, stage)
            .await;
    }
    let name = format!("{artifact}-prod");
    scenario.promote(&name, artifact, "prod").await;
    scenario.wait_phase(&name, Phase::Waiting).await;
    scenario.approve(&name, approver).await;
    scenario.wait_phase(&name, Phase::Succeeded).await;
}

/// Pushes shop `version`'s images and creates its Artifact (built from
/// `revision`, working with payments 1.x from 1.4.0); returns its name.
async fn shop_release(scenario: &Scenario, version: &str, revision: &str) -> String {
    let name = format!("shop-{}", version.replace('.', "-"));
    let images = push_multi("shop", &[("backend", version), ("frontend", version)])
        .await
        .expect("push images");
    scenario
        .apply::<Artifact>(
            &name,
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": name},
                "spec": {
                    "application": "shop", "version": version,
                    "images": [
                        {"component": "backend", "image": images["backend"].reference},
                        {"component": "frontend", "image": images["frontend"].reference}
                    ],
                    "source": {"repository": "https://github.com/acme/shop", "revision": revision},
                    "compatibility": [{"application": "payments", "versions": ">=1.4.0, <2.0.0"}]
                }
            }),
        )
        .await;
    name
}

/// The README's answer blocks.
mod readme {
    use std::path::Path;

    use regex::Regex;

    const MARKER: &str = "<!-- seven-questions:";

    /// What differs from run to run: times, ages, the random part of a
    /// generated name, and so the padding of table columns.
    fn stable(text: &str) -> String {
        let time = Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").expect("regex");
        // kubectl's ages, as `status` and `history` print them: "for 3s", "7m30s ago".
        let age = Regex::new(r"\b(for )?\d+[ydhms](\d+[dhms])?( ago)?\b").expect("regex");
        let generated = Regex::new(r"\b(shop-[0-9-]+-prod)-[a-z0-9]{5}\b").expect("regex");
        let text = time.replace_all(text, "<time>");
        let text = age.replace_all(&text, |found: &regex::Captures<'_>| {
            match (found.get(1).is_some(), found.get(3).is_some()) {
                (true, _) => "for <age>".to_string(),
                (false, true) => "<age> ago".to_string(),
                (false, false) => found[0].to_string(),
            }
        });
        let text = generated.replace_all(&text, "$1-<random>");
        text.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The ```console block after `<!-- seven-questions:NAME -->`: its
    /// byte range within `readme`.
    fn block(readme: &str, name: &str) -> Option<std::ops::Range<usize>> {
        let marker = format!("{MARKER}{name} -->");
        let after = readme.find(&marker)? + marker.len();
        let open = after + readme[after..].find("```console\n")? + "```console\n".len();
        let close = open + readme[open..].find("```")?;
        Some(open..close)
    }

    pub fn check(answers: &[(&str, String)]) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let mut readme = std::fs::read_to_string(&path).expect("README.md");
        if std::env::var_os("HOIST_UPDATE_README").is_some() {
            for (name, text) in answers {
                let range = block(&readme, name)
                    .unwrap_or_else(|| panic!("README.md has no ```console block after {MARKER}{name} -->"));
                readme.replace_range(range, text);
            }
            std::fs::write(&path, readme).expect("README.md written");
            return;
        }
        for (name, text) in answers {
            let range = block(&readme, name)
                .unwrap_or_else(|| panic!("README.md has no ```console block after {MARKER}{name} -->"));
            assert_eq!(
                stable(&readme[range]),
                stable(text),
                "README.md's answer {name} is not what the command prints; \
                 HOIST_UPDATE_README=1 cargo nextest run --test controller seven_questions writes this run's"
            );
        }
    }

    #[test]
    fn volatile_parts_are_set_aside_and_nothing_else() {
        assert_eq!(
            stable(
                "shop   1.2.1   Healthy for 12s   3m20s ago   shop-1-1-0-prod-x7k2p   2026-12-02T10:20:00Z\n"
            ),
            "shop 1.2.1 Healthy for <age> <age> ago shop-1-1-0-prod-<random> <time>"
        );
        assert_ne!(stable("shop 1.2.1"), stable("shop 1.2.0"));
        assert_ne!(stable("sha256:0123456789ab"), stable("sha256:0123456789ac"));
        assert_ne!(
            stable("sha256:52674656d33d"),
            stable("sha256:52674656d34d"),
            "a digest is no age"
        );
        assert_ne!(stable("TIMEOUT: \"30s\""), stable("TIMEOUT: \"31s\""));
    }
}

/// The builder SLSA provenance names in the supply-chain scenarios.
const BUILDER: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";

/// What a supply-chain scenario attaches to each image of a release.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// Signed, provenance of REVISION, a scan with only an ignored critical
    /// CVE; the frontend's signature as an OCI 1.1 referrer instead of the
    /// `.sig` tag.
    ViaReferrers,
    /// Signed, provenance of REVISION, the same scan, everything listed by
    /// the registry's referrers API only (no tag, no fallback index).
    ViaReferrersApi,
    Unsigned,
    SignedByAnotherKey,
    PayloadNamesAnotherDigest,
    ProvenanceOfAnotherCommit,
    CriticalCve,
    OutdatedScan,
}

/// Attaches signatures and attestations to `images` as `variant` says.
async fn attach(
    images: &BTreeMap<String, PushedImage>,
    key: &SigningKey,
    other: &SigningKey,
    variant: Variant,
) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let recent = (now - k8s_openapi::jiff::SignedDuration::from_hours(1)).to_string();
    let old = (now - k8s_openapi::jiff::SignedDuration::from_hours(24 * 30)).to_string();
    for (component, image) in images {
        let signer = if variant == Variant::SignedByAnotherKey {
            other
        } else {
            key
        };
        let named = if variant == Variant::PayloadNamesAnotherDigest {
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        } else {
            image.digest.as_str()
        };
        let signature = signing::signature(signer, image, named);
        match variant {
            Variant::Unsigned => {}
            Variant::ViaReferrersApi => {
                signing::push_referrer_native(image, COSIGN_SIGNATURE, &[signature])
                    .await
                    .expect("push referrer");
            }
            Variant::ViaReferrers if component == "frontend" => {
                signing::push_referrer(image, COSIGN_SIGNATURE, &[signature])
                    .await
                    .expect("push referrer");
            }
            _ => signing::push_signatures(image, &[signature])
                .await
                .expect("push signature"),
        }
        let commit = if variant == Variant::ProvenanceOfAnotherCommit {
            "0123abcdef0123abcdef0123abcdef0123abcdef"
        } else {
            REVISION
        };
        let findings: &[(&str, &str, &str)] = if variant == Variant::CriticalCve {
            &[
                ("CVE-2026-0001", "CRITICAL", "openssl"),
                ("CVE-2026-0002", "CRITICAL", "zlib"),
            ]
        } else {
            &[
                ("CVE-2026-0002", "CRITICAL", "zlib"),
                ("CVE-2026-0003", "LOW", "libc"),
            ]
        };
        let finished = if variant == Variant::OutdatedScan {
            &old
        } else {
            &recent
        };
        let attestations = [
            signing::attestation(
                key,
                &image.digest,
                signing::SLSA_V1,
                signing::slsa_v1("https://github.com/acme/shop", commit, BUILDER),
            ),
            signing::attestation(
                key,
                &image.digest,
                signing::VULN_V1,
                signing::trivy_scan(finished, findings),
            ),
        ];
        if variant == Variant::ViaReferrersApi {
            signing::push_referrer_native(image, signing::DSSE, &attestations)
                .await
                .expect("push attestation referrer");
        } else {
            signing::push_attestations(image, &attestations)
                .await
                .expect("push attestations");
        }
    }
}

/// The artifact type of a cosign signature pushed as an OCI 1.1 referrer.
const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

impl Scenario {
    /// `environment` requires signatures, SLSA provenance and a recent scan, all by `key`.
    async fn require_supply_chain(&self, environment: &str, key: &SigningKey) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "release-keys"},
            "stringData": {"cosign.pub": key.public_pem()}
        }))
        .expect("secret");
        match Api::<Secret>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &secret)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("key secret: {error}"),
        }
        let pem = key.public_pem();
        self.update_environment(environment, |spec| {
            spec.gates = serde_json::from_value(json!({
                "provenance": {
                    "signatures": {"keys": [{"name": "release", "secretRef": {"name": "release-keys", "key": "cosign.pub"}}]},
                    "attestation": {"keys": [{"name": "ci", "pem": pem}], "builder": {"id": BUILDER}}
                },
                "vulnerabilities": {"keys": [{"name": "ci", "pem": pem}], "maxSeverity": "Medium", "ignore": ["CVE-2026-0002"], "maxAge": "168h"}
            }))
            .expect("gates");
        })
        .await;
    }

    /// The supply-chain records of Artifact `name` once it has `count`:
    /// (component, check, reason).
    async fn records(&self, name: &str, count: usize) -> Vec<(String, hoist::api::SupplyChainCheck, String)> {
        let artifact = self
            .cluster
            .wait_for::<Artifact>(name, TIMEOUT, |a| {
                a.status.as_ref().is_some_and(|s| s.supply_chain.len() >= count)
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        artifact
            .status
            .expect("status")
            .supply_chain
            .into_iter()
            .map(|r| (r.component, r.check, r.reason))
            .collect()
    }
}

use hoist::api::SupplyChainCheck as Check;
use hoist_testkit::referrers::ReferrersRegistry;
use hoist_testkit::signing::{self, SigningKey};

fn all_verified() -> Vec<(String, Check, String)> {
    let mut records = Vec::new();
    for component in ["backend", "frontend"] {
        for check in [Check::Signatures, Check::Provenance, Check::Vulnerabilities] {
            records.push((component.to_string(), check, "Verified".to_string()));
        }
    }
    records
}

#[tokio::test]
async fn a_signed_release_promotes_once_verified_and_a_restart_fetches_nothing_again() {
    let mut scenario = Scenario::new().await;
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    scenario.require_supply_chain("dev", &key).await;
    let images = push_multi("shop", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    attach(&images, &key, &other, Variant::ViaReferrers).await;
    scenario
        .artifact("shop-1-0-0", "1.0.0", &images, Some(REVISION))
        .await;
    scenario.start().await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promoted = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    let provenance = gate(&promoted, GateName::Provenance);
    assert_eq!(provenance.state, GateState::Passed);
    let short = |component: &str| format!("{component}@{}", &images[component].digest[..19]);
    assert_eq!(
        provenance.message,
        format!(
            "provenance requirements met; {b}: signed by release; {f}: signed by release; \
             {b}: built from https://github.com/acme/shop@3f2c9a1b7e4d… by {BUILDER}, attested by ci; \
             {f}: built from https://github.com/acme/shop@3f2c9a1b7e4d… by {BUILDER}, attested by ci",
            b = short("backend"),
            f = short("frontend")
        )
    );
    let scan = gate(&promoted, GateName::Vulnerabilities);
    assert_eq!(scan.state, GateState::Passed);
    assert!(
        scan.message
            .contains(": 2 findings, none above Medium (1 ignored: CVE-2026-0002)"),
        "{}",
        scan.message
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    assert_eq!(
        scenario.images("dev", "frontend").await[0].1,
        pinned(&images["frontend"])
    );
    let operator = scenario.operator.as_ref().expect("running");
    let lookups = health::metric(operator.health, "hoist_registry_lookups_total").await;
    assert!(lookups > 0.0);
    assert_eq!(
        health::metric(
            operator.health,
            "hoist_supply_chain_checks_total{check=\"Signatures\",verdict=\"Verified\"}"
        )
        .await,
        2.0
    );

    // A new operator, and staging with the same policy: the records are the
    // Artifact's, so promoting there asks the registry nothing.
    scenario.stop().await;
    scenario.require_supply_chain("staging", &key).await;
    scenario.start().await;
    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let promoted = scenario.wait_phase("to-staging", Phase::Succeeded).await;
    assert_eq!(gate(&promoted, GateName::Provenance).message, provenance.message);
    scenario.quiet().await;
    let operator = scenario.operator.as_ref().expect("running");
    assert_eq!(
        health::metric(operator.health, "hoist_registry_lookups_total").await,
        0.0
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    scenario.stop().await;
}

#[tokio::test]
async fn a_release_whose_signatures_only_the_referrers_api_lists_promotes() {
    let upstream = registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)");
    let registry = ReferrersRegistry::start(&upstream)
        .await
        .expect("referrers registry");
    let mut scenario = Scenario::new().await;
    scenario.more_registries.push(registry.address().to_owned());
    let key = SigningKey::generate();
    scenario.require_supply_chain("dev", &key).await;
    let pushed = push_multi("shop", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    let images: BTreeMap<String, PushedImage> = pushed
        .iter()
        .map(|(component, image)| (component.clone(), registry.image(image)))
        .collect();
    attach(&images, &key, &key, Variant::ViaReferrersApi).await;
    assert_eq!(
        registry.subjects_recorded(),
        4,
        "a signature and an attestation per image"
    );
    scenario
        .artifact("shop-1-0-0", "1.0.0", &images, Some(REVISION))
        .await;
    scenario.start().await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promoted = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    assert_eq!(gate(&promoted, GateName::Provenance).state, GateState::Passed);
    assert_eq!(
        gate(&promoted, GateName::Vulnerabilities).state,
        GateState::Passed
    );
    assert_eq!(scenario.records("shop-1-0-0", 6).await, all_verified());
    assert_eq!(
        registry.referrers_requests(),
        2,
        "the referrers API asked once per digest"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn each_tampered_release_is_blocked_with_its_own_reason() {
    let mut scenario = Scenario::new().await;
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    scenario.require_supply_chain("dev", &key).await;
    let variants = [
        (Variant::Unsigned, Check::Signatures, "SignatureMissing"),
        (
            Variant::SignedByAnotherKey,
            Check::Signatures,
            "UntrustedSignature",
        ),
        (
            Variant::PayloadNamesAnotherDigest,
            Check::Signatures,
            "WrongDigest",
        ),
        (
            Variant::ProvenanceOfAnotherCommit,
            Check::Provenance,
            "RevisionMismatch",
        ),
        (
            Variant::CriticalCve,
            Check::Vulnerabilities,
            "VulnerabilitiesFound",
        ),
    ];
    let mut pushed = BTreeMap::new();
    for (n, (variant, _, _)) in variants
        .iter()
        .chain([&(Variant::OutdatedScan, Check::Vulnerabilities, "Verified")])
        .enumerate()
    {
        let version = format!("1.0.{n}");
        let images = push_multi(
            "shop",
            &[("backend", version.as_str()), ("frontend", version.as_str())],
        )
        .await
        .expect("push images");
        attach(&images, &key, &other, *variant).await;
        let name = format!("shop-1-0-{n}");
        scenario.artifact(&name, &version, &images, Some(REVISION)).await;
        pushed.insert(name, images);
    }
    scenario.start().await;
    for (n, (_, check, reason)) in variants.iter().enumerate() {
        let name = format!("shop-1-0-{n}");
        scenario.promote(&format!("p{n}"), &name, "dev").await;
        let mut expected = all_verified();
        for record in &mut expected {
            if record.1 == *check {
                record.2 = reason.to_string();
            }
        }
        assert_eq!(scenario.records(&name, 6).await, expected, "{name}");
        let held = scenario
            .cluster
            .wait_for::<Promotion>(&format!("p{n}"), TIMEOUT, |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.gates.iter().any(|g| g.state == GateState::Failed))
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(held.status.as_ref().expect("status").phase, Phase::Waiting);
        let gate_name = if *check == Check::Vulnerabilities {
            GateName::Vulnerabilities
        } else {
            GateName::Provenance
        };
        let message = gate(&held, gate_name).message;
        let backend = &pushed[&name]["backend"].digest;
        let expected_start = match *reason {
            "SignatureMissing" => format!(
                "backend@{}: no cosign signature is attached to {}",
                &backend[..19],
                &backend[..19]
            ),
            "UntrustedSignature" => format!(
                "backend@{}: 1 signature(s) verify with none of the keys [release (sha256:",
                &backend[..19]
            ),
            "WrongDigest" => format!(
                "backend@{}: a trusted signature names sha256:000000000000, not {}",
                &backend[..19],
                &backend[..19]
            ),
            "RevisionMismatch" => format!(
                "backend@{}: image {} was built from 0123abcdef01…, Artifact says 3f2c9a1b7e4d… (RevisionMismatch)",
                &backend[..19],
                &backend[..19]
            ),
            _ => format!("backend@{}: trivy@0.58.1 scan of ", &backend[..19]),
        };
        assert!(message.starts_with(&expected_start), "{reason}: {message}");
        if *reason == "VulnerabilitiesFound" {
            assert!(message.contains(": 1 above Medium: CVE-2026-0001 (Critical, openssl 1.0.0) (1 ignored: CVE-2026-0002) (VulnerabilitiesFound)"), "{message}");
        }
    }
    // A scan older than maxAge holds the Promotion, Pending: a newer scan may still be pushed.
    scenario.promote("p-old", "shop-1-0-5", "dev").await;
    assert_eq!(scenario.records("shop-1-0-5", 6).await, all_verified());
    let held = scenario
        .wait_gate("p-old", GateName::Vulnerabilities, GateState::Pending)
        .await;
    let message = gate(&held, GateName::Vulnerabilities).message;
    assert!(
        message.contains(", longer ago than maxAge 168h: push a newer scan (looked for again at "),
        "{message}"
    );
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        "example.invalid/backend:latest"
    );
    scenario.stop().await;
}
