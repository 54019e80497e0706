//! Workload clusters: the hub operator (`hoist controller`) and the agent
//! of cluster `eu` (`hoist agent`) on two API servers (two stand-ins, or
//! the clusters of HOIST_TEST_KUBECONFIG and HOIST_TEST_WORKLOAD_KUBECONFIG).
//! dev runs on the hub's own cluster, staging and prod in `eu`: their
//! target namespaces, Deployments, base ConfigMap and Secrets exist only
//! there. The hub operator is given the hub's client only.
//!
//! The hub labels Promotions into Environments of a workload cluster with
//! `hoist.dev/cluster` (the hub's side of the contract); these tests label
//! the Promotions they create the same way, so they do not depend on it.

use std::collections::BTreeMap;
use std::time::Duration;

use hoist::api::{Environment, Phase, Promotion, PromotionSpec};
use hoist::controller::Settings;
use hoist::controller::agent::Agent;
use hoist::core::lease::Timing;
use hoist_testkit::cluster::TestCluster;
use hoist_testkit::clusters::{self, TwoClusters};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{
    Operator, REVISION, Scenario, TIMEOUT, config_hash, deployment, history_of, images_of, pinned,
    wait_pinned,
};

/// The workload cluster's name.
const CLUSTER: &str = "eu";
/// Short, so a standby agent's wait and a takeover fit in a test.
const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(250),
};
/// The stages that run in the workload cluster.
const IN_EU: [&str; 2] = ["staging", "prod"];

/// The hub scenario (`Scenario`, its operator the hub operator) with
/// staging and prod moved to the workload cluster, and the agents running.
struct Workload {
    hub: Scenario,
    cluster: TestCluster,
    agents: BTreeMap<&'static str, Operator>,
}

impl Workload {
    /// The hub's dev → staging → prod of `Scenario::new`, staging and prod
    /// with `spec.cluster: eu`, their namespaces (opted in for the tenant),
    /// Deployments and base ConfigMap in the workload cluster; the agent's
    /// identity on the hub is granted its rules. Nothing runs yet.
    async fn new() -> Self {
        let TwoClusters { hub, workload } = TwoClusters::new().await.expect("two clusters");
        let hub = Scenario::on(hub).await;
        clusters::grant_agent(&hub.cluster, CLUSTER)
            .await
            .expect("agent's hub rules");
        let tenant = hub.namespace().to_string();
        for stage in IN_EU {
            workload
                .named_namespace(&hub.stages[stage], &[("hoist.dev/tenant", tenant.as_str())])
                .await
                .expect("stage namespace in the workload cluster");
            for (name, container) in [("backend", "app"), ("frontend", "web")] {
                let body: Deployment =
                    serde_json::from_value(deployment(name, container, 0)).expect("deployment");
                Api::<Deployment>::namespaced(workload.client(), &hub.stages[stage])
                    .create(&PostParams::default(), &body)
                    .await
                    .expect("create deployment in the workload cluster");
            }
            hub.update_environment(stage, |spec| spec.cluster = Some(CLUSTER.into()))
                .await;
        }
        let base: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "shop-base"}, "data": {"LOG_LEVEL": "info"}
        }))
        .expect("config map");
        Api::<ConfigMap>::namespaced(workload.client(), &tenant)
            .create(&PostParams::default(), &base)
            .await
            .expect("base config in the workload cluster");
        Workload {
            hub,
            cluster: workload,
            agents: BTreeMap::new(),
        }
    }

    /// Starts the hub operator and the agent `agent-a`.
    async fn start(&mut self) {
        self.hub.start().await;
        self.start_agent("agent-a").await;
    }

    /// Starts an agent of `eu` named `identity` (its Lease holder identity).
    async fn start_agent(&mut self, identity: &'static str) {
        self.start_agent_with(identity, |_, _| None).await;
    }

    /// Starts an agent of `eu` named `identity` whose hub requests picked by
    /// `slowness` are held back.
    async fn start_agent_with(&mut self, identity: &'static str, slowness: hoist_testkit::delay::Slowness) {
        let hub =
            clusters::agent_hub_client(&self.hub.cluster, CLUSTER, slowness).expect("agent's hub client");
        self.start_agent_as(identity, hub, self.agent_settings()).await;
    }

    /// Starts an agent of `eu` named `identity` with `hub` and `settings`.
    async fn start_agent_as(&mut self, identity: &'static str, hub: kube::Client, settings: Settings) {
        let (local, requests) = self.cluster.counted_client().expect("agent's local client");
        let agent = Agent {
            cluster: CLUSTER.into(),
            namespace: Some(self.hub.namespace().to_string()),
            identity: identity.into(),
            timing: TIMING,
        };
        let started = hoist::controller::agent::start(hub, local, agent, settings)
            .await
            .expect("agent starts");
        self.agents.insert(identity, Operator::running(started, requests));
    }

    /// The agent's settings: the hub operator's (this test's namespace and registries).
    fn agent_settings(&self) -> Settings {
        self.hub.settings()
    }

    /// Stops every agent and the hub operator gracefully.
    async fn stop(&mut self) {
        for (_, agent) in std::mem::take(&mut self.agents) {
            let _ = agent.stop.send(());
            tokio::time::timeout(TIMEOUT, agent.task)
                .await
                .expect("agent stops")
                .expect("agent task");
        }
        self.hub.stop().await;
    }

    /// Creates Promotion `name` of `artifact` into `environment`, labelled
    /// with `eu` as the hub labels Promotions into its Environments.
    async fn promote(&self, name: &str, artifact: &str, environment: &str) {
        let mut promotion = Promotion::new(
            name,
            PromotionSpec {
                artifact: artifact.into(),
                environment: environment.into(),
                reason: Some("test".into()),
                requested_by: Some(self.hub.cluster.admin_user().to_string()),
                r#override: None,
                approvals: Vec::new(),
            },
        );
        promotion.metadata.labels = Some(BTreeMap::from([(
            hoist::core::clusters::LABEL_CLUSTER.to_string(),
            CLUSTER.to_string(),
        )]));
        Api::<Promotion>::namespaced(self.hub.client(), self.hub.namespace())
            .create(&PostParams::default(), &promotion)
            .await
            .expect("create promotion");
    }

    /// (container, image) of Deployment `name` of `stage` in the workload cluster.
    async fn images(&self, stage: &str, name: &str) -> Vec<(String, String)> {
        images_of(
            Api::<Deployment>::namespaced(self.cluster.client(), &self.hub.stages[stage])
                .get(name)
                .await
                .expect("deployment in the workload cluster"),
        )
    }

    /// prod's status, as its agent wrote it on the hub.
    async fn prod_status(&self) -> hoist::api::EnvironmentStatus {
        self.hub
            .environment("prod")
            .await
            .status
            .expect("prod's status on the hub")
    }

    /// Releases 1.0.0 and promotes it into dev on the hub and staging in `eu`.
    async fn release_through_staging(&self) -> BTreeMap<String, hoist_testkit::registry::PushedImage> {
        let images = self.hub.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
        self.hub.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
        self.promote("to-staging", "shop-1-0-0", "staging").await;
        self.hub.wait_phase("to-staging", Phase::Succeeded).await;
        images
    }

    /// The paths the hub operator wrote to about `names` (Environments or
    /// Promotions) other than as the agents' heartbeat (field manager
    /// `hoist-hub`: AgentConnected, the cluster label, Waiting while silent).
    fn hub_writes_about(&self, names: &[&str]) -> Vec<String> {
        self.hub
            .requests()
            .writes()
            .into_iter()
            .filter(|request| !is_heartbeat_write(request))
            .map(|request| request.path)
            .filter(|path| names.iter().any(|name| path.contains(&format!("/{name}"))))
            .collect()
    }
}

#[tokio::test]
async fn the_hub_operator_leaves_environments_of_workload_clusters_and_their_promotions_alone() {
    let mut scenario = Scenario::new().await;
    scenario
        .update_environment("prod", |spec| spec.cluster = Some(CLUSTER.into()))
        .await;
    scenario.start().await;
    scenario.release_through_staging(Some(REVISION)).await;
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.approve("to-prod", "alice").await;
    scenario.quiet().await;

    let promotion: Promotion = Api::namespaced(scenario.client(), scenario.namespace())
        .get("to-prod")
        .await
        .expect("to-prod");
    // No agent: nobody decides it, and the hub says what it waits for.
    let status = promotion.status.expect("the hub's Waiting");
    assert_eq!(status.phase, Phase::Waiting);
    assert!(
        status.message.as_deref().is_some_and(|message| message
            .starts_with("waiting for the agent of cluster eu: no agent of cluster eu has connected since ")),
        "{status:?}"
    );
    assert_eq!(status.started_at, None, "nothing was rolled out");
    let prod = scenario.environment("prod").await.status.expect("AgentConnected");
    assert_eq!(
        prod.conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect::<Vec<_>>(),
        [("AgentConnected", "False", "AgentSilent")],
        "the hub's heartbeat condition only"
    );
    assert_eq!(prod.applications, Vec::new());
    assert_eq!(
        scenario.images("prod", "backend").await[0].1,
        "example.invalid/backend:latest",
        "untouched"
    );
    let writes: Vec<String> = scenario
        .requests()
        .writes()
        .into_iter()
        .map(|request| request.path)
        .filter(|path| path.ends_with("/prod") || path.contains("/prod/") || path.contains("to-prod"))
        .collect();
    assert_eq!(
        writes
            .iter()
            .filter(|path| !path.contains("/status") && !path.ends_with("/to-prod"))
            .count(),
        0,
        "nothing but statuses and the Promotion's cluster label: {writes:?}"
    );
    let others: Vec<String> = scenario
        .requests()
        .writes()
        .into_iter()
        .filter(|request| !is_heartbeat_write(request))
        .map(|request| request.path)
        .filter(|path| path.ends_with("/prod") || path.contains("/prod/") || path.contains("to-prod"))
        .collect();
    assert_eq!(
        others,
        Vec::<String>::new(),
        "only the agents' heartbeat wrote about prod"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_release_goes_from_the_hub_into_a_workload_cluster_with_an_approval_on_the_hub() {
    let mut workload = Workload::new().await;
    workload.start().await;
    let images = workload.release_through_staging().await;
    workload.promote("to-prod", "shop-1-0-0", "prod").await;
    workload
        .hub
        .wait_gate(
            "to-prod",
            hoist::api::GateName::Approval,
            hoist::api::GateState::Pending,
        )
        .await;
    workload.hub.approve("to-prod", "alice").await;
    workload.hub.wait_phase("to-prod", Phase::Succeeded).await;

    for stage in IN_EU {
        assert_eq!(
            workload.images(stage, "backend").await,
            vec![
                ("app".to_string(), pinned(&images["backend"])),
                ("sidecar".to_string(), "example.invalid/sidecar:1".to_string())
            ],
            "{stage} in the workload cluster runs the dev digests"
        );
        assert_eq!(
            workload.images(stage, "frontend").await[0].1,
            pinned(&images["frontend"])
        );
        assert_eq!(
            workload.hub.images(stage, "backend").await[0].1,
            "example.invalid/backend:latest",
            "{stage}'s namesake on the hub is untouched"
        );
    }
    assert_eq!(
        workload.hub.images("dev", "backend").await[0].1,
        pinned(&images["backend"]),
        "dev runs on the hub"
    );
    let prod = workload.prod_status().await;
    assert_eq!(prod.applications[0].artifact, "shop-1-0-0");
    assert_eq!(
        workload.hub_writes_about(&["staging", "prod", "to-staging", "to-prod"]),
        Vec::<String>::new(),
        "the hub operator wrote nothing of the workload cluster's"
    );

    let lease = Api::<Lease>::namespaced(workload.hub.client(), workload.hub.namespace())
        .get("hoist-agent-eu")
        .await
        .expect("the agent's Lease on the hub");
    assert_eq!(
        lease.metadata.labels,
        Some(BTreeMap::from([(
            "hoist.dev/cluster".to_string(),
            "eu".to_string()
        )]))
    );
    assert_eq!(
        lease.metadata.annotations,
        Some(BTreeMap::from([(
            "hoist.dev/agent-version".to_string(),
            env!("CARGO_PKG_VERSION").to_string()
        )]))
    );
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("agent-a"));
    assert_eq!(spec.lease_duration_seconds, Some(3));
    workload.stop().await;
}

#[tokio::test]
async fn the_hub_creates_the_promotions_auto_promote_decides_for_a_workload_cluster_and_the_agent_runs_them()
{
    let mut workload = Workload::new().await;
    workload
        .hub
        .update_environment("prod", |spec| {
            spec.auto_promote = true;
            spec.gates.approval = None;
        })
        .await;
    workload.start().await;
    let images = workload.release_through_staging().await;
    let promoted = workload.hub.wait_phase("shop-1-0-0-prod", Phase::Succeeded).await;
    assert_eq!(promoted.spec.reason.as_deref(), Some("autoPromote"));
    assert_eq!(
        promoted.metadata.labels,
        Some(BTreeMap::from([
            ("hoist.dev/auto-promoted".to_string(), "true".to_string()),
            ("hoist.dev/cluster".to_string(), CLUSTER.to_string()),
        ])),
        "created by the hub, labelled for the agent"
    );
    assert_eq!(
        workload.images("prod", "backend").await[0].1,
        pinned(&images["backend"]),
        "the agent rolled it out in the workload cluster"
    );
    let prod = workload.prod_status().await;
    assert_eq!(
        prod.conditions
            .iter()
            .filter(|c| c.type_ == "Ready" || c.type_ == "AutoPromotion")
            .map(|c| (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_str(),
                c.message.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            (
                "AutoPromotion",
                "True",
                "Active",
                "promotes every newer Ready Artifact"
            ),
            (
                "Ready",
                "True",
                "Ready",
                "targets, upstream and configuration are valid"
            ),
        ],
        "the agent records the condition; autoPromote is no longer refused there"
    );
    workload.stop().await;
}

#[tokio::test]
async fn a_secret_only_the_workload_cluster_holds_rolls_the_pods_when_rotated() {
    let mut workload = Workload::new().await;
    let tenant = workload.hub.namespace().to_string();
    let secrets: Api<Secret> = Api::namespaced(workload.cluster.client(), &tenant);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "shop-token"}, "stringData": {"TOKEN": "one"}}))
            .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret in the workload cluster");
    workload
        .hub
        .update_environment("staging", |spec| {
            spec.config[0].secret_refs = vec![hoist::api::SecretReference {
                name: "shop-token".into(),
            }];
            spec.config[0].data.insert("REGION".into(), "eu".into());
        })
        .await;
    workload.start().await;
    workload.release_through_staging().await;
    let namespace = workload.hub.stages["staging"].clone();
    let deployments: Api<Deployment> = Api::namespaced(workload.cluster.client(), &namespace);
    let first = deployments.get("backend").await.expect("backend");
    let first_hash = config_hash(&first).expect("config hash");
    let rendered: Api<ConfigMap> = Api::namespaced(workload.cluster.client(), &namespace);
    let data = rendered
        .get("shop-config")
        .await
        .expect("rendered config in the workload cluster")
        .data
        .expect("data");
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        vec![
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("REGION".to_string(), "eu".to_string()),
            ("STAGE".to_string(), "staging".to_string())
        ]
    );

    let rotated = json!({"stringData": {"TOKEN": "two"}});
    secrets
        .patch("shop-token", &PatchParams::default(), &Patch::Merge(&rotated))
        .await
        .expect("rotate");
    let rolled = workload
        .cluster
        .wait_for_in::<Deployment>(&namespace, "backend", TIMEOUT, |d| {
            config_hash(d).is_some_and(|hash| hash != first_hash)
        })
        .await
        .expect("rotating the Secret rolls the Deployment");
    assert_eq!(
        rolled.spec.expect("spec").template.spec.expect("pod").containers[0].image,
        first.spec.expect("spec").template.spec.expect("pod").containers[0].image,
        "same images"
    );
    let hub_secrets: Api<Secret> = Api::namespaced(workload.hub.client(), &tenant);
    assert!(
        hub_secrets.get_opt("shop-token").await.expect("read").is_none(),
        "the Secret exists only in the workload cluster"
    );
    let status = workload.hub.environment("staging").await.status.expect("status");
    let on_hub = serde_json::to_string(&status).expect("json");
    assert!(
        !on_hub.contains("\"one\"") && !on_hub.contains("\"two\""),
        "{on_hub}"
    );
    workload.stop().await;
}

#[tokio::test]
async fn a_failed_rollout_in_the_workload_cluster_rolls_back() {
    let mut workload = Workload::new().await;
    workload.start().await;
    workload.hub.release("shop-2-0-0", "2.0.0", Some(REVISION)).await;
    workload.release_through_staging().await;
    let v1_images = workload.images("staging", "backend").await;
    // One replica never becomes available (its sidecar cannot be pulled):
    // 2.0.0's rollout fails after the one-second progress deadline.
    let namespace = workload.hub.stages["staging"].clone();
    Api::<Deployment>::namespaced(workload.cluster.client(), &namespace)
        .patch(
            "backend",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale");
    workload.hub.promote_and_wait("v2-dev", "shop-2-0-0", "dev").await;
    workload.promote("v2-staging", "shop-2-0-0", "staging").await;

    let rolled_back = workload.hub.wait_phase("v2-staging", Phase::RolledBack).await;
    let message = rolled_back.status.expect("status").message.expect("message");
    assert!(
        message.starts_with(&format!(
            "rollout failed ({namespace}/backend: rollout exceeded its progress deadline"
        )),
        "{message}"
    );
    assert!(message.ends_with("rolled back to shop-1-0-0 1.0.0"), "{message}");
    assert_eq!(workload.images("staging", "backend").await, v1_images);
    let staging: Environment = workload.hub.environment("staging").await;
    assert_eq!(
        staging.status.expect("status").applications[0].artifact,
        "shop-1-0-0"
    );
    workload.stop().await;
}

#[tokio::test]
async fn of_two_agents_claiming_one_cluster_only_one_works_and_the_other_says_why() {
    let mut workload = Workload::new().await;
    workload.start().await;
    workload.start_agent("agent-b").await;
    let expected = format!(
        "not ready: standby: Lease {}/hoist-agent-eu is held by agent-a; only its holder works, this replica \
         (agent-b) takes over when it is not renewed\n",
        workload.hub.namespace()
    );
    // After `ready`, lines name the target kinds the cluster does not serve.
    assert_eq!(
        readyz_once(workload.agents["agent-a"].health, |(code, _)| *code == 200)
            .await
            .map(|(code, body)| (code, body.lines().next().map(str::to_owned))),
        Some((200, Some("ready".to_string()))),
        "agent-a holds the Lease"
    );
    assert_eq!(
        readyz_once(workload.agents["agent-b"].health, |(_, body)| body
            .contains("held by agent-a"))
        .await,
        Some((503, expected))
    );
    workload.release_through_staging().await;
    let writes_of_b: Vec<String> = workload.agents["agent-b"]
        .requests
        .writes()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(
        writes_of_b,
        Vec::<String>::new(),
        "the standby wrote nothing in the workload cluster"
    );
    workload.stop().await;
}

/// `/readyz` at `address` once `done` holds of it, or as last seen after [`TIMEOUT`].
async fn readyz_once(
    address: std::net::SocketAddr,
    done: impl Fn(&(u16, String)) -> bool,
) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let seen = hoist_testkit::health::get(address, "/readyz").await;
        if seen.as_ref().is_some_and(&done) || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_killed_after_its_deployment_patch_completes_the_promotion_once_after_restart() {
    let mut workload = Workload::new().await;
    workload.hub.start().await;
    // Its status writes of staging are held back for longer than the test
    // waits: it is killed between the Deployment patch and their record.
    workload
        .start_agent_with("agent-a", |method, uri| {
            (*method == http::Method::PATCH
                && (uri.path().ends_with("/staging/status") || uri.path().ends_with("/to-staging/status")))
            .then_some(Duration::from_secs(60))
        })
        .await;
    let images = workload.hub.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    workload.hub.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    let namespace = workload.hub.stages["staging"].clone();
    let deployments: Api<Deployment> = Api::namespaced(workload.cluster.client(), &namespace);
    let generation_before = deployments
        .get("backend")
        .await
        .expect("deployment")
        .metadata
        .generation
        .unwrap_or(0);
    let expected = pinned(&images["backend"]);
    workload.promote("to-staging", "shop-1-0-0", "staging").await;
    wait_pinned(
        &workload.cluster,
        &namespace,
        "backend",
        &expected,
        "deployment patched in the workload cluster",
    )
    .await;
    let promotion: Promotion = Api::namespaced(workload.hub.client(), workload.hub.namespace())
        .get("to-staging")
        .await
        .expect("to-staging");
    assert_eq!(
        promotion.status.and_then(|status| status.started_at),
        None,
        "killed before it recorded anything of to-staging"
    );
    // As kill -9: no release of the Lease, nothing more written.
    let killed = workload.agents.remove("agent-a").expect("agent-a");
    killed.task.abort();
    let _ = killed.task.await;

    // Its successor (a new pod) takes the Lease over once it expires.
    workload.start_agent("agent-a-restarted").await;
    workload.hub.wait_phase("to-staging", Phase::Succeeded).await;
    let staging = workload
        .hub
        .cluster
        .wait_for::<Environment>("staging", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| !s.history.is_empty())
        })
        .await
        .expect("history");
    assert_eq!(
        history_of(staging),
        vec![("to-staging".to_string(), Phase::Succeeded)],
        "exactly one release"
    );
    let deployment = deployments.get("backend").await.expect("deployment");
    assert_eq!(
        deployment.metadata.generation,
        Some(generation_before + 1),
        "the agents changed the Deployment once"
    );
    workload.stop().await;
}

/// Until when the hub does not answer an agent started with
/// [`hub_down_while_set`]: every request it sends then (reads, writes,
/// Lease renewals, watches) is held back until the outage ends.
static HUB_DOWN_UNTIL: std::sync::Mutex<Option<tokio::time::Instant>> = std::sync::Mutex::new(None);

fn hub_down_while_set(_: &http::Method, _: &http::Uri) -> Option<Duration> {
    let until = (*HUB_DOWN_UNTIL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()))?;
    let left = until.saturating_duration_since(tokio::time::Instant::now());
    (!left.is_zero()).then_some(left)
}

#[tokio::test]
async fn after_the_hub_was_unreachable_for_15_seconds_the_agent_resumes_and_the_next_promotion_succeeds() {
    let mut workload = Workload::new().await;
    workload.hub.start().await;
    workload.start_agent_with("agent-a", hub_down_while_set).await;
    let v2 = workload.hub.release("shop-2-0-0", "2.0.0", Some(REVISION)).await;
    workload.release_through_staging().await;
    workload.hub.promote_and_wait("v2-dev", "shop-2-0-0", "dev").await;
    let v1_images = workload.images("staging", "backend").await;

    let outage = Duration::from_secs(15);
    *HUB_DOWN_UNTIL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(tokio::time::Instant::now() + outage);
    // Past the renew deadline: the agent has stopped acting.
    tokio::time::sleep(TIMING.lease_duration).await;
    workload.promote("v2-staging", "shop-2-0-0", "staging").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        workload.images("staging", "backend").await,
        v1_images,
        "nothing new applied while the hub cannot be reached"
    );

    workload.hub.wait_phase("v2-staging", Phase::Succeeded).await;
    assert_eq!(
        workload.images("staging", "backend").await[0].1,
        pinned(&v2["backend"]),
        "2.0.0 runs in staging"
    );
    let staging = workload.hub.environment("staging").await;
    assert_eq!(
        history_of(staging),
        vec![
            ("v2-staging".to_string(), Phase::Succeeded),
            ("to-staging".to_string(), Phase::Succeeded)
        ]
    );
    workload.stop().await;
}

/// A write of the hub's agents controller (field manager `hoist-hub`).
fn is_heartbeat_write(request: &hoist_testkit::cluster::Request) -> bool {
    request.query.contains("fieldManager=hoist-hub")
}

#[tokio::test]
async fn an_agent_reads_its_environments_tier_on_the_hub_and_promotes_once_it_allows_them() {
    use super::tiers::{MID_FORBIDS_STAGING, label_tier, tier_settings, wait_ready_reason};
    let mut scenario = Workload::new().await;
    label_tier(&scenario.hub, "Mid").await;
    let hub_settings = tier_settings(&scenario.hub);
    scenario.hub.start_with(hub_settings.clone()).await;
    let hub =
        clusters::agent_hub_client(&scenario.hub.cluster, CLUSTER, |_, _| None).expect("agent's hub client");
    scenario.start_agent_as("agent-a", hub, hub_settings).await;

    // staging runs in eu: its agent says the hub namespace's tier forbids it.
    assert_eq!(
        wait_ready_reason(&scenario.hub, "staging", "TierForbidden").await,
        MID_FORBIDS_STAGING
    );
    scenario.hub.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.hub.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let waiting = format!("Environment staging is not allowed by its tier: {MID_FORBIDS_STAGING}");
    scenario
        .hub
        .cluster
        .wait_for::<Promotion>("to-staging", TIMEOUT, |p| {
            p.status.as_ref().and_then(|s| s.message.as_deref()) == Some(waiting.as_str())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    label_tier(&scenario.hub, "High").await;
    scenario.hub.wait_phase("to-staging", Phase::Succeeded).await;
    scenario.stop().await;
}
