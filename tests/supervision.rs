//! The operator's life through `hoist::controller::start` (what `hoist
//! controller` runs), against the API (stand-in, or a real cluster with
//! HOIST_TEST_KUBECONFIG) and the real test registry: every start on a
//! populated cluster becomes ready and then decides every Environment; the
//! shutdown signal lets a reconcile that has pinned Deployments record them
//! before the operator stops; an operator that may not list a resource
//! gives up within its start-up deadline and names it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hoist::api::{Environment, Phase, Promotion};
use hoist::controller::{RunError, Settings};
use hoist_testkit::cluster::TestCluster;
use hoist_testkit::registry::{PushedImage, push_multi, registry_address};
use hoist_testkit::{health, reconciles};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER: &str = "hoist-tests";

/// The operator running in this process.
struct Operator {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RunError>>,
    health: SocketAddr,
}

fn settings(cluster: &TestCluster) -> Settings {
    Settings {
        health_address: ([127, 0, 0, 1], 0).into(),
        insecure_registries: vec![registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)")],
        namespaces: vec![cluster.namespace().to_string()],
        shutdown_timeout: Duration::from_secs(10),
        ..Settings::default()
    }
}

impl Operator {
    async fn start(client: Client, settings: Settings) -> Self {
        let operator = hoist::controller::start(client, settings)
            .await
            .expect("operator starts");
        let health = operator.health_address();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(operator.run(async move {
            let _ = stopped.await;
        }));
        Operator { stop, task, health }
    }

    /// Waits until `/readyz` answers 200; the last answer otherwise.
    async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match health::get(self.health, "/readyz").await {
                Some((200, _)) => return Ok(()),
                Some((code, body)) => last = format!("{code} {body}"),
                None => last = "no answer".into(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(last)
    }

    /// Sends the shutdown signal and returns what `run` returned.
    async fn stop(self) -> Result<(), RunError> {
        let _ = self.stop.send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("operator stops in time")
            .expect("operator task")
    }
}

async fn apply<K>(cluster: &TestCluster, body: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = body["metadata"]["name"].as_str().expect("name").to_owned();
    Api::<K>::namespaced(cluster.client(), cluster.namespace())
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|error| panic!("apply {name}: {error}"))
}

async fn promote(cluster: &TestCluster, name: &str, artifact: &str, environment: &str) {
    apply::<Promotion>(
        cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Promotion", "metadata": {"name": name},
               "spec": {"artifact": artifact, "environment": environment, "reason": "test",
                        "requestedBy": cluster.admin_user()}}),
    )
    .await;
}

async fn wait_phase(cluster: &TestCluster, name: &str, phase: Phase) -> Promotion {
    cluster
        .wait_for::<Promotion>(name, TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| s.phase == phase)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

const STAGES: [&str; 3] = ["dev", "staging", "prod"];

/// One tenant: dev → staging → prod, each with a backend and a frontend
/// Deployment (`replicas: 0`, so rollouts complete on any cluster) and a
/// seventh Deployment nobody targets, plus `artifacts` Artifacts of the
/// same two images.
async fn populate(cluster: &TestCluster, artifacts: usize) -> [PushedImage; 2] {
    let namespace = cluster.namespace();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), namespace);
    let mut names: Vec<(String, &str)> = STAGES
        .iter()
        .flat_map(|stage| {
            [
                (format!("{stage}-backend"), "app"),
                (format!("{stage}-frontend"), "web"),
            ]
        })
        .collect();
    names.push(("unrelated".into(), "app"));
    for (name, container) in &names {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": container, "image": "example.invalid/x:1"}]}}}
        }))
        .expect("deployment");
        deployments
            .create(&PostParams::default(), &deployment)
            .await
            .expect("create deployment");
    }
    for (index, stage) in STAGES.iter().enumerate() {
        let upstream: Vec<&str> = STAGES[..index].iter().rev().take(1).copied().collect();
        apply::<Environment>(
            cluster,
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": stage},
                   "spec": {"upstream": upstream, "targets": [
                       {"application": "shop", "component": "backend", "deployment": {"name": format!("{stage}-backend")}, "container": "app"},
                       {"application": "shop", "component": "frontend", "deployment": {"name": format!("{stage}-frontend")}, "container": "web"}]}}),
        )
        .await;
    }
    let pushed = push_multi("supervision", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    let images = [pushed["backend"].clone(), pushed["frontend"].clone()];
    for index in 1..=artifacts {
        apply::<hoist::api::Artifact>(
            cluster,
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": format!("shop-{index}")},
                   "spec": {"application": "shop", "version": format!("1.0.{index}"),
                            "images": [{"component": "backend", "image": images[0].reference},
                                       {"component": "frontend", "image": images[1].reference}]}}),
        )
        .await;
    }
    images
}

/// 50 of 50 starts on a populated cluster (3 Environments, 8 Artifacts,
/// 12 Promotions, 7 Deployments) become ready, reconcile every
/// Environment, and promote a Promotion created after the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_start_becomes_ready_decides_every_environment_and_promotes() {
    // 50 by default; HOIST_TEST_STARTS for a slow cluster.
    let starts: usize = std::env::var("HOIST_TEST_STARTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    reconciles::install();
    let cluster = TestCluster::new().await.expect("test cluster");
    populate(&cluster, 8).await;
    let environments: BTreeSet<String> = STAGES.iter().map(|stage| stage.to_string()).collect();

    // Twelve Promotions settle first: four releases through every stage.
    let (client, _) = cluster.counted_client().expect("client");
    let operator = Operator::start(client, settings(&cluster)).await;
    for release in 1..=4 {
        for stage in STAGES {
            let name = format!("shop-{release}-{stage}");
            promote(&cluster, &name, &format!("shop-{release}"), stage).await;
            wait_phase(&cluster, &name, Phase::Succeeded).await;
        }
    }
    operator.stop().await.expect("operator stops cleanly");

    for start in 0..starts {
        let mark = reconciles::Mark::now();
        let (client, _) = cluster.counted_client().expect("client");
        let operator = Operator::start(client, settings(&cluster)).await;
        if let Err(last) = operator.wait_ready(Duration::from_secs(10)).await {
            panic!("start {start}: not ready within 10s; /readyz answered {last}");
        }
        assert_eq!(
            health::metric(operator.health, "hoist_caches_unlisted").await,
            0.0
        );
        assert!(health::metric(operator.health, "hoist_startup_duration_seconds").await > 0.0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mark.since(cluster.namespace()).is_superset(&environments) {
            assert!(
                Instant::now() < deadline,
                "start {start}: only {:?} of {environments:?} reconciled within 10s of ready",
                mark.since(cluster.namespace())
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Alternately 1.0.7 and 1.0.8 in dev: a new Promotion every start.
        let name = format!("start-{start}");
        promote(&cluster, &name, &format!("shop-{}", 7 + start % 2), "dev").await;
        wait_phase(&cluster, &name, Phase::Succeeded).await;
        if let Err(error) = operator.stop().await {
            panic!("start {start}: {error}");
        }
    }
}

/// The shutdown signal arrives while a reconcile has pinned the
/// Deployments and is writing the Promotion's status (held back by a slow
/// network in the test's client): the reconcile finishes, so the promotion
/// is recorded, before `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_signal_lets_a_reconcile_record_the_deployments_it_pinned() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let images = populate(&cluster, 1).await;
    let slow_status = |method: &http::Method, uri: &http::Uri| {
        let path = uri.path();
        (method == http::Method::PATCH && path.contains("/promotions/") && path.ends_with("/status"))
            .then_some(Duration::from_secs(4))
    };
    let (client, _) = cluster.delayed_client(slow_status).expect("client");
    let operator = Operator::start(client, settings(&cluster)).await;
    operator.wait_ready(TIMEOUT).await.expect("ready");
    promote(&cluster, "to-dev", "shop-1", "dev").await;
    let pinned = format!(
        "{}@{}",
        images[0].reference.rsplit_once(':').expect("tagged").0,
        images[0].digest
    );
    cluster
        .wait_for::<Deployment>("dev-backend", TIMEOUT, |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|p| p.containers[0].image.as_deref() == Some(pinned.as_str()))
        })
        .await
        .expect("the Deployment is pinned");
    let promotions: Api<Promotion> = Api::namespaced(cluster.client(), cluster.namespace());
    let before = promotions.get("to-dev").await.expect("promotion");
    assert!(
        !before
            .status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Succeeded),
        "the status write is still held back: {:?}",
        before.status
    );
    let _ = operator.stop.send(());
    // Unready as soon as the supervisor has taken the signal (its task may
    // run after the first answer on a busy machine), while the reconcile
    // still finishes: its status write is held back for 4 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let (code, body) = loop {
        let answer = health::get(operator.health, "/readyz").await.expect("readyz");
        if answer.0 != 200 || tokio::time::Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((code, body.as_str()), (503, "not ready: shutting down\n"));
    assert!(
        !operator.task.is_finished(),
        "the operator stopped before its reconcile recorded the pins"
    );
    let result = tokio::time::timeout(TIMEOUT, operator.task)
        .await
        .expect("stops in time")
        .expect("operator task");
    assert!(result.is_ok(), "{result:?}");
    let after = promotions.get("to-dev").await.expect("promotion");
    let phase = after.status.as_ref().map(|s| s.phase);
    assert!(
        matches!(phase, Some(Phase::Verifying | Phase::Succeeded)),
        "the reconcile recorded its pins before the operator stopped: {:?}",
        after.status
    );
}

/// Refuses every list of Secrets on the stand-in, as RBAC without `list`
/// on secrets would; `None` on a real cluster, where the operator is run as
/// a user nobody granted anything instead.
fn refuse_secrets(cluster: &TestCluster) -> Option<()> {
    let standin = cluster.standin()?;
    let refused = kube_standin::RequestMatch::any()
        .verb(kube_standin::Verb::List)
        .resource("secrets");
    standin.inject_fault(
        kube_standin::Fault::fail(refused, 403)
            .always()
            .reason("Forbidden")
            .message(format!(
                "secrets is forbidden: User \"hoist-test-nobody\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{}\"",
                cluster.namespace()
            )),
    );
    Some(())
}

/// The user without any role the operator runs as on a real cluster.
const NOBODY: &str = "hoist-test-nobody";

/// An operator whose identity may not list Secrets (RBAC) never lists that
/// cache: `/readyz` names it meanwhile, and `run` gives up within the
/// start-up deadline with the API server's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_may_not_list_a_resource_exits_within_its_deadline_naming_it() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let client = match refuse_secrets(&cluster) {
        Some(()) => cluster.counted_client().expect("client").0,
        // A user nobody granted anything: every list is refused.
        None => cluster.impersonating_client(NOBODY).expect("client"),
    };
    let deadline = Duration::from_secs(3);
    let settings = Settings {
        startup_timeout: deadline,
        shutdown_timeout: Duration::from_secs(2),
        ..settings(&cluster)
    };
    let started = Instant::now();
    let operator = Operator::start(client, settings).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, body) = health::get(operator.health, "/readyz").await.expect("readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("not ready: caches still listing: "), "{body}");
    assert!(body.contains("secrets"), "{body}");
    let unlisted = health::metric(operator.health, "hoist_caches_unlisted").await;
    assert!(unlisted >= 1.0, "hoist_caches_unlisted {unlisted}");
    assert_eq!(
        health::metric(operator.health, "hoist_startup_duration_seconds").await,
        0.0
    );
    let result = tokio::time::timeout(TIMEOUT, operator.task)
        .await
        .expect("gives up by itself")
        .expect("operator task");
    let elapsed = started.elapsed();
    let message = result.expect_err("run fails").to_string();
    assert!(
        elapsed >= deadline && elapsed < deadline + Duration::from_secs(5),
        "gave up after {elapsed:?}"
    );
    assert!(message.starts_with("caches not listed within 3s: "), "{message}");
    assert!(message.contains("secrets (last error: "), "{message}");
    assert!(message.contains("cannot list resource \"secrets\""), "{message}");
}

/// The same through the `hoist controller` command, as Kubernetes runs it:
/// it exits non-zero within its `--startup-timeout`, naming the resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoist_controller_that_may_not_list_a_resource_exits_non_zero_naming_it() {
    let cluster = TestCluster::new().await.expect("test cluster");
    refuse_secrets(&cluster);
    let kubeconfig = cluster.kubeconfig_file().expect("kubeconfig");
    let started = Instant::now();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args([
            "controller",
            "--health-address=127.0.0.1:0",
            "--startup-timeout=3s",
        ])
        .args(["--shutdown-timeout=2s", "--watch-namespace", cluster.namespace()])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    if cluster.standin().is_none() {
        // kube's own switch for impersonation, read by `Config::infer`.
        command.env("KUBE_RS_DEBUG_IMPERSONATE_USER", NOBODY);
    }
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("exits by itself")
        .expect("runs");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(3 + 2 + 5),
        "gave up after {elapsed:?}"
    );
    assert!(
        stderr.contains("hoist: caches not listed within 3s: ") && stderr.contains("secrets (last error: "),
        "{stderr}"
    );
}

/// An operator that may not ask who it is (its RBAC lacks create on
/// selfsubjectreviews) does not start: autoPromote's Promotions must name
/// it as their requester. Stand-in only: on a real cluster every
/// authenticated user may (the bootstrap role system:basic-user), and no
/// fault can be injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_may_not_learn_who_it_is_does_not_start() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let Some(standin) = cluster.standin() else {
        eprintln!("skipped on a real cluster: system:basic-user lets every user create SelfSubjectReviews");
        return;
    };
    let refused = kube_standin::RequestMatch::any()
        .verb(kube_standin::Verb::Create)
        .resource("selfsubjectreviews");
    standin.inject_fault(
        kube_standin::Fault::fail(refused, 403)
            .always()
            .reason("Forbidden")
            .message("selfsubjectreviews.authentication.k8s.io is forbidden: User \"hoist\" cannot create resource \"selfsubjectreviews\" in API group \"authentication.k8s.io\" at the cluster scope"),
    );
    let client = cluster.counted_client().expect("client").0;
    let error = match hoist::controller::start(client, settings(&cluster)).await {
        Ok(_) => panic!("the operator started without knowing who it is"),
        Err(error) => error,
    };
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(
        chain.starts_with(
            "cannot learn the operator's own user name with a SelfSubjectReview, which the Promotions autoPromote \
             creates carry as spec.requestedBy (the operator's RBAC needs create on selfsubjectreviews.authentication.k8s.io): "
        ) && chain.contains("cannot create resource \"selfsubjectreviews\""),
        "{chain}"
    );
}

/// `--trusted-root` is read and checked at start: a file that is not a
/// Sigstore trusted root stops the operator before it contacts the cluster.
#[tokio::test]
async fn hoist_controller_with_a_trusted_root_that_is_not_one_exits_naming_the_file() {
    let dir = tempfile::tempdir().expect("a directory");
    let not_a_root = dir.path().join("trusted_root.json");
    std::fs::write(&not_a_root, r#"{"mediaType": "application/json"}"#).expect("write");
    let missing = dir.path().join("missing.json");
    for (path, says) in [
        (
            &not_a_root,
            format!(
                "hoist: the trusted root {} has mediaType \"application/json\", not application/vnd.dev.sigstore.trustedroot+json;version=0.1\n",
                not_a_root.display()
            ),
        ),
        (
            &missing,
            format!("hoist: cannot read the trusted root {}\n", missing.display()),
        ),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["controller", "--health-address=127.0.0.1:0", "--trusted-root"])
            .arg(path)
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
            .output()
            .await
            .expect("runs");
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&output.stderr), says);
    }
}
