//! The bench says up front what a run on a cluster needs, before it creates
//! anything: the rights of its user, and no Hoist operator of the chart
//! running there. Against the stand-in, or unchanged against a real cluster
//! given by `HOIST_TEST_KUBECONFIG`.

use std::path::Path;
use std::time::Duration;

use hoist_testkit::cluster::TestCluster;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use serde_json::json;

/// How long the bench may take to refuse.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the bench against `kubeconfig`: success, stderr.
async fn bench(kubeconfig: &Path) -> (bool, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist-bench"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--base-environments", "1", "--factors", "1", "--timed", "1"])
        .args(["--registry-artifacts", "1", "--registry-references", "1"])
        .env("HOIST_TEST_REGISTRY", "127.0.0.1:1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the bench refuses within a minute")
        .expect("the bench runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// Several threads: the API stand-in serves the child process from this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_rights_is_told_all_it_lacks_before_anything_is_made() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let kubeconfig = cluster
        .user_kubeconfig_file("bench-without-rights", &[])
        .expect("kubeconfig");
    let (ok, stderr) = bench(&kubeconfig).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "the bench's user may not do what a run does (cluster-wide): get customresourcedefinitions \
             (apiextensions.k8s.io), patch customresourcedefinitions (apiextensions.k8s.io)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("patch promotions/status (hoist.dev)"), "{stderr}");
    assert!(
        stderr.contains("bind it a ClusterRole with these rights"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_hoist_operator_is_named_before_anything_is_made() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    let operator: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "hoist", "labels": {"app.kubernetes.io/name": "hoist"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "hoist"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "hoist"}},
                "spec": {"containers": [{"name": "hoist", "image": "registry.invalid/hoist:1"}]}
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(cluster.client(), ns)
        .create(&PostParams::default(), &operator)
        .await
        .expect("create the operator's Deployment");
    let kubeconfig = cluster.admin_kubeconfig_file().expect("kubeconfig");
    let (ok, stderr) = bench(&kubeconfig).await;
    assert!(!ok, "{stderr}");
    // On a real cluster the chart's own operator may be named too.
    assert!(
        stderr.contains("a Hoist operator runs on this cluster (Deployment "),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{ns}/hoist")), "{stderr}");
    assert!(
        stderr.contains(
            "it would reconcile the bench's Promotions as well; scale it to 0 replicas for the run \
             (kubectl scale deployment --replicas 0 …) and run again"
        ),
        "{stderr}"
    );
}
