//! The structural properties the benchmark (`cargo run --release -p
//! hoist-bench`) measures at scale, guarded here on a few objects: no
//! reconcile lists a collection (the caches answer those questions), an idle
//! restart writes nothing, and every distinct image reference is looked up
//! in the registry once, never again when Artifacts are reconciled again.
//! Requests are counted in the operator's own client, so these hold against
//! a real cluster too (HOIST_TEST_KUBECONFIG).

use std::net::SocketAddr;
use std::time::Duration;

use hoist::api::{Artifact, Environment, Phase, Promotion};
use hoist::controller::Settings;
use hoist_testkit::cluster::{Request, RequestCounter, TestCluster};
use hoist_testkit::delay::Slowness;
use hoist_testkit::registry::{PushedImage, push_multi, registry_address};
use hoist_testkit::signing::{SigningKey, push_signatures, signature};
use hoist_testkit::{health, reconciles};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER: &str = "hoist-tests";

struct Operator {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    requests: RequestCounter,
    health: SocketAddr,
}

/// Starts the operator on `cluster`'s namespace and waits until its caches synced.
async fn start(cluster: &TestCluster) -> Operator {
    start_with(cluster, |_, _| None).await
}

/// [`start`] with some of the operator's requests held back by `slowness`.
async fn start_with(cluster: &TestCluster, slowness: Slowness) -> Operator {
    reconciles::install();
    let (client, requests) = cluster.delayed_client(slowness).expect("counted client");
    let settings = Settings {
        health_address: ([127, 0, 0, 1], 0).into(),
        insecure_registries: vec![registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)")],
        namespaces: vec![cluster.namespace().to_string()],
        ..Settings::default()
    };
    let operator = hoist::controller::start(client, settings)
        .await
        .expect("operator starts");
    // The port it bound for /metrics: no race for a free one.
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
    let operator = Operator {
        stop,
        task,
        requests,
        health,
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while health::get(health, "/readyz").await.map(|(code, _)| code) != Some(200) {
        assert!(tokio::time::Instant::now() < deadline, "operator not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    operator
}

impl Operator {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("operator stops")
            .expect("operator task");
    }

    /// The value of one metric sample, e.g. `hoist_registry_lookups_total`.
    async fn metric(&self, sample: &str) -> f64 {
        health::metric(self.health, sample).await
    }
}

/// A GET of a whole collection that is not a watch: a list.
fn is_list(request: &Request) -> bool {
    if request.method != "GET" || request.query.split('&').any(|p| p.starts_with("watch=")) {
        return false;
    }
    // After `/api/v1` or `/apis/<group>/<version>`: `<plural>` or
    // `namespaces/<ns>/<plural>` name a collection; one more segment names an object.
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let rest = match segments.first() {
        Some(&"api") => &segments[2.min(segments.len())..],
        Some(&"apis") => &segments[3.min(segments.len())..],
        _ => return false,
    };
    matches!(rest, [_plural] | ["namespaces", _, _plural])
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

async fn artifact(cluster: &TestCluster, name: &str, images: &[PushedImage; 2]) {
    apply::<Artifact>(
        cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": name},
               "spec": {"application": "shop", "version": "1.0.0",
                        "images": [{"component": "backend", "image": images[0].reference},
                                   {"component": "frontend", "image": images[1].reference}]}}),
    )
    .await;
}

async fn wait_ready(cluster: &TestCluster, name: &str) {
    cluster
        .wait_for::<Artifact>(name, TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
}

/// Promotion `name` of `artifact` into dev.
async fn promote(cluster: &TestCluster, name: &str, artifact: &str) {
    apply::<Promotion>(
        cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Promotion", "metadata": {"name": name},
               "spec": {"artifact": artifact, "environment": "dev", "reason": "test",
                        "requestedBy": cluster.admin_user()}}),
    )
    .await;
}

/// Waits until Promotion `name` succeeded and dev's history records it
/// (the Environment's status lands after the Promotion's).
async fn wait_promoted(cluster: &TestCluster, name: &str) {
    cluster
        .wait_for::<Promotion>(name, TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::Succeeded)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| !s.history.is_empty())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
}

/// Deployments backend (container app) and frontend (container web).
async fn target_deployments(cluster: &TestCluster) {
    for (name, container) in [("backend", "app"), ("frontend", "web")] {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            // No replica: the rollout completes on any cluster, whatever the image.
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": container, "image": "example.invalid/x:1"}]}}}
        }))
        .expect("deployment");
        Api::<Deployment>::namespaced(cluster.client(), cluster.namespace())
            .create(&PostParams::default(), &deployment)
            .await
            .expect("create deployment");
    }
}

async fn pushed() -> [PushedImage; 2] {
    let images = push_multi("scale", &[("backend", "1.0.0"), ("frontend", "1.0.0")])
        .await
        .expect("push images");
    [images["backend"].clone(), images["frontend"].clone()]
}

#[tokio::test]
async fn each_distinct_reference_is_looked_up_once_and_never_on_re_reconcile() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let operator = start(&cluster).await;
    let images = pushed().await;
    let names = ["shop-a", "shop-b", "shop-c", "shop-d"];
    for name in names {
        artifact(&cluster, name, &images).await;
    }
    for name in names {
        wait_ready(&cluster, name).await;
    }
    assert_eq!(operator.metric("hoist_registry_lookups_total").await, 2.0);

    let reconciled = "hoist_reconciliations_total{controller=\"artifact\"}";
    let before = operator.metric(reconciled).await;
    let artifacts: Api<Artifact> = Api::namespaced(cluster.client(), cluster.namespace());
    for name in names {
        let touch = json!({"metadata": {"annotations": {"example.com/touched": "yes"}}});
        artifacts
            .patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .expect("touch");
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while operator.metric(reconciled).await < before + names.len() as f64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "touched Artifacts not reconciled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(operator.metric("hoist_registry_lookups_total").await, 2.0);
    operator.stop().await;
}

/// An unreachable registry is asked again with the Artifact's own backoff
/// (5 s, then 10 s, …), not at once when the failure's status write brings
/// the Artifact back.
#[tokio::test]
async fn an_unreachable_registry_is_asked_again_only_when_its_backoff_is_due() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let operator = start(&cluster).await;
    // A port nothing listens on (the reference needs no registry behind it).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    apply::<Artifact>(
        &cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "unreachable"},
               "spec": {"application": "shop", "version": "1.0.0",
                        "images": [{"component": "backend", "image": format!("{closed}/shop/backend:1.0.0")}]}}),
    )
    .await;
    cluster
        .wait_for::<Artifact>("unreachable", TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "RegistryUnavailable")
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let first = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        operator.metric("hoist_registry_lookups_total").await,
        1.0,
        "no second lookup before the first retry is due"
    );
    let deadline = first + Duration::from_secs(10);
    while operator.metric("hoist_registry_lookups_total").await < 2.0 {
        assert!(tokio::time::Instant::now() < deadline, "not retried within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        first.elapsed() >= Duration::from_secs(4),
        "retried after {:?}",
        first.elapsed()
    );
    operator.stop().await;
}

#[tokio::test]
async fn reconciles_read_single_objects_only_and_an_idle_restart_writes_nothing() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let namespace = cluster.namespace().to_string();
    target_deployments(&cluster).await;
    let base: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "shop-base"}, "data": {"LOG_LEVEL": "info"}}))
            .expect("config map");
    Api::<ConfigMap>::namespaced(cluster.client(), &namespace)
        .create(&PostParams::default(), &base)
        .await
        .expect("base config");
    apply::<Environment>(
        &cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "dev"},
               "spec": {"targets": [
                   {"application": "shop", "component": "backend", "deployment": {"name": "backend"}, "container": "app"},
                   {"application": "shop", "component": "frontend", "deployment": {"name": "frontend"}, "container": "web"}],
                 "config": [{"application": "shop", "baseConfigMap": "shop-base", "data": {"STAGE": "dev"}}]}}),
    )
    .await;
    let images = pushed().await;
    artifact(&cluster, "shop-1", &images).await;

    let operator = start(&cluster).await;
    wait_ready(&cluster, "shop-1").await;
    operator.requests.reset();
    promote(&cluster, "to-dev", "shop-1").await;
    wait_promoted(&cluster, "to-dev").await;
    let requests = operator.requests.all();
    let lists: Vec<&Request> = requests.iter().filter(|r| is_list(r)).collect();
    assert_eq!(lists, Vec::<&Request>::new(), "reconciles list nothing");
    let deployment_patches = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/deployments/"))
        .count();
    assert_eq!(deployment_patches, 2, "one pin per target: {requests:?}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    operator.stop().await;
    let mark = reconciles::Mark::now();
    let operator = start(&cluster).await;
    // Not vacuous: the restart decided the Environment again (and then
    // had nothing to write) before the writes are counted.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !mark.since(&namespace).contains("dev")
        || operator
            .metric("hoist_reconciliations_total{controller=\"artifact\"}")
            .await
            < 1.0
        || operator
            .metric("hoist_reconciliations_total{controller=\"promotion\"}")
            .await
            < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restart never reconciled Environment dev, the Artifact and the Promotion"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = health::get(operator.health, "/metrics").await.expect("metrics").1;
    assert!(
        !metrics.contains("hoist_reconciliation_errors_total{"),
        "reconciles failed after the restart:\n{metrics}"
    );
    let writes: Vec<String> = operator
        .requests
        .writes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "an idle restart writes nothing");
    operator.stop().await;
}

#[tokio::test]
async fn every_environment_waiting_at_start_up_is_reconciled() {
    // Many reconciles start before the caches have listed and wait for them
    // together; every one of them must be woken.
    let cluster = TestCluster::new().await.expect("test cluster");
    let names: Vec<String> = (0..24).map(|index| format!("stage-{index:02}")).collect();
    for name in &names {
        apply::<Environment>(
            &cluster,
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                   "metadata": {"name": name}, "spec": {"targets": []}}),
        )
        .await;
    }
    // The ConfigMap caches list late, so the reconciles surely wait together.
    let slow_configmaps = |method: &http::Method, uri: &http::Uri| {
        (method == http::Method::GET && uri.path().ends_with("/configmaps"))
            .then_some(Duration::from_millis(500))
    };
    let operator = start_with(&cluster, slow_configmaps).await;
    for name in &names {
        cluster
            .wait_for::<Environment>(name, TIMEOUT, |e| {
                e.status
                    .as_ref()
                    .is_some_and(|s| s.observed_generation == e.metadata.generation)
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    operator.stop().await;
}

#[test]
fn lists_are_told_from_object_reads_and_watches() {
    let request = |path: &str, query: &str| Request {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
    };
    assert!(is_list(&request("/api/v1/namespaces", "")));
    assert!(is_list(&request(
        "/api/v1/namespaces/t/configmaps",
        "labelSelector=a"
    )));
    assert!(is_list(&request("/apis/hoist.dev/v1alpha1/promotions", "")));
    assert!(!is_list(&request("/api/v1/namespaces/t", "")));
    assert!(!is_list(&request("/api/v1/namespaces/t/configmaps/base", "")));
    assert!(!is_list(&request(
        "/apis/hoist.dev/v1alpha1/namespaces/t/promotions",
        "watch=true&resourceVersion=5"
    )));
}

/// GETs of Secret `name` by the operator.
fn secret_reads(operator: &Operator, name: &str) -> usize {
    let path = format!("/secrets/{name}");
    operator
        .requests
        .all()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&path))
        .count()
}

#[tokio::test]
async fn a_key_secret_is_read_once_per_version_however_often_its_environment_is_decided() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let namespace = cluster.namespace().to_string();
    target_deployments(&cluster).await;
    let key = SigningKey::generate();
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), &namespace);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "release-keys"},
        "stringData": {"cosign.pub": key.public_pem()}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("key secret");
    apply::<Environment>(
        &cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "dev"},
               "spec": {"targets": [
                   {"application": "shop", "component": "backend", "deployment": {"name": "backend"}, "container": "app"},
                   {"application": "shop", "component": "frontend", "deployment": {"name": "frontend"}, "container": "web"}],
                 "gates": {"provenance": {"signatures": {"keys": [
                     {"name": "release", "secretRef": {"name": "release-keys", "key": "cosign.pub"}}]}}}}}),
    )
    .await;
    let images = pushed().await;
    for image in &images {
        push_signatures(image, &[signature(&key, image, &image.digest)])
            .await
            .expect("sign");
    }
    artifact(&cluster, "shop-1", &images).await;

    let operator = start(&cluster).await;
    wait_ready(&cluster, "shop-1").await;
    promote(&cluster, "to-dev", "shop-1").await;
    wait_promoted(&cluster, "to-dev").await;
    let decided = operator
        .metric("hoist_reconciliations_total{controller=\"environment\"}")
        .await;
    assert!(
        decided >= 2.0,
        "not vacuous: Environment dev was decided {decided} time(s)"
    );
    assert_eq!(
        secret_reads(&operator, "release-keys"),
        1,
        "read once, however often dev was decided ({decided} times)"
    );

    // A new version of the Secret is read again, once, and its key counts:
    // the same images in a new Artifact are not signed with it.
    let rotated = SigningKey::generate();
    let patch = json!({"stringData": {"cosign.pub": rotated.public_pem()}});
    secrets
        .patch("release-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("rotate");
    artifact(&cluster, "shop-2", &images).await;
    promote(&cluster, "to-dev-2", "shop-2").await;
    cluster
        .wait_for::<Artifact>("shop-2", TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.supply_chain
                    .iter()
                    .filter(|r| r.reason == "UntrustedSignature")
                    .count()
                    == 2
            })
        })
        .await
        .unwrap_or_else(|error| panic!("the rotated key was never used: {error}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(secret_reads(&operator, "release-keys"), 2);
    operator.stop().await;
}

#[tokio::test]
async fn a_promotion_applied_with_its_artifact_is_not_rejected_while_the_artifact_cache_lags() {
    let cluster = TestCluster::new().await.expect("test cluster");
    target_deployments(&cluster).await;
    apply::<Environment>(
        &cluster,
        json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "dev"},
               "spec": {"targets": [
                   {"application": "shop", "component": "backend", "deployment": {"name": "backend"}, "container": "app"},
                   {"application": "shop", "component": "frontend", "deployment": {"name": "frontend"}, "container": "web"}]}}),
    )
    .await;
    let images = pushed().await;
    // The operator's Artifact watch starts 3 s after its first list: an
    // Artifact created meanwhile reaches its cache that much later than the
    // Promotion naming it.
    let slow_artifact_watch = |method: &http::Method, uri: &http::Uri| {
        let watch = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        (method == http::Method::GET && watch && uri.path().ends_with("/artifacts"))
            .then_some(Duration::from_secs(3))
    };
    let operator = start_with(&cluster, slow_artifact_watch).await;
    artifact(&cluster, "shop-1", &images).await;
    promote(&cluster, "to-dev", "shop-1").await;
    let ended = cluster
        .wait_for::<Promotion>("to-dev", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| s.phase.is_terminal())
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let status = ended.status.expect("status");
    assert_eq!(
        (status.phase, status.message),
        (Phase::Succeeded, Some("shop-1 runs in dev".into()))
    );
    operator.stop().await;
}
