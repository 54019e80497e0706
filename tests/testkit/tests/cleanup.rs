//! A test's namespaces and the operator's ClusterRole and binding are
//! deleted when its `TestCluster` is dropped on a real cluster, also when
//! the test panics, on either kind of runtime, and quickly. The "real cluster" is the stand-in reached through a kubeconfig
//! file, which takes the same path as `HOIST_TEST_KUBECONFIG`.

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hoist_testkit::cluster::{CLEANUP_TIMEOUT, TestCluster};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::Api;
use kube_standin::StandIn;
use tokio::runtime::{Builder, Handle};

/// How long a whole test body (connect, install the CRDs, create two
/// namespaces, drop) may take before the test counts it as hung.
const BODY_LIMIT: Duration = Duration::from_secs(30);

/// The stand-in on a thread and runtime of its own: it goes on serving while
/// the test's runtime is blocked in the `TestCluster`'s drop.
struct Server {
    standin: StandIn,
    runtime: Handle,
    kubeconfig: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let (started, ready) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("server runtime");
            let handle = runtime.handle().clone();
            runtime.block_on(async move {
                let standin = StandIn::start().await.expect("stand-in");
                started.send((standin.clone(), handle)).expect("started");
                let _ = stopped.await;
                standin.shutdown().await;
            });
        });
        let (standin, runtime) = ready.recv().expect("the stand-in started");
        let kubeconfig = std::env::temp_dir().join(format!(
            "hoist-cleanup-{}.kubeconfig",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(
            &kubeconfig,
            standin
                .kubeconfig_yaml(kube_standin::ADMIN)
                .expect("the admin's kubeconfig"),
        )
        .expect("kubeconfig written");
        Server {
            standin,
            runtime,
            kubeconfig,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The names of the ClusterRoles and ClusterRoleBindings left.
    fn cluster_rbac(&self) -> (Vec<String>, Vec<String>) {
        let client = self.standin.client();
        self.runtime.block_on(async move {
            let names = |items: Vec<kube::api::ObjectMeta>| -> Vec<String> {
                items
                    .into_iter()
                    .filter_map(|metadata| metadata.name)
                    .filter(|name| name.starts_with("hoist-test-operator-"))
                    .collect()
            };
            let roles = Api::<ClusterRole>::all(client.clone())
                .list(&Default::default())
                .await
                .expect("roles");
            let bindings = Api::<ClusterRoleBinding>::all(client)
                .list(&Default::default())
                .await
                .expect("bindings");
            (
                names(roles.items.into_iter().map(|role| role.metadata).collect()),
                names(
                    bindings
                        .items
                        .into_iter()
                        .map(|binding| binding.metadata)
                        .collect(),
                ),
            )
        })
    }

    /// The namespaces of `names` that still exist and are not being deleted.
    fn live_namespaces(&self, names: &[String]) -> Vec<String> {
        let api: Api<Namespace> = Api::all(self.standin.client());
        self.runtime.block_on(async move {
            let mut live = Vec::new();
            for name in names {
                let namespace = api.get_opt(name).await.expect("namespace read");
                let terminating = namespace
                    .as_ref()
                    .and_then(|namespace| namespace.status.as_ref())
                    .and_then(|status| status.phase.as_deref())
                    == Some("Terminating");
                if namespace.is_some() && !terminating {
                    live.push(name.clone());
                }
            }
            live
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

#[derive(Clone, Copy)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

/// What a test body did: how it ended, the namespaces it had, and how long
/// its drop took from the moment the body ended.
struct Run {
    outcome: Result<(), Box<dyn Any + Send>>,
    namespaces: Vec<String>,
    cleanup: Duration,
}

/// Runs a test body on a runtime of `flavor`, as `#[tokio::test]` does, on a
/// thread of its own so that a body that hangs fails this test instead of
/// hanging it. The body uses its cluster's client (so that client's
/// connection worker runs on the body's runtime), then ends, panicking if
/// `panics`.
fn run_body(server: &Server, flavor: Flavor, panics: bool) -> Run {
    let kubeconfig = server.kubeconfig.clone();
    let namespaces = Arc::new(Mutex::new(Vec::new()));
    let ended_at = Arc::new(Mutex::new(None));
    let (finished, result) = mpsc::channel();
    let (seen, ended) = (Arc::clone(&namespaces), Arc::clone(&ended_at));
    std::thread::spawn(move || {
        let runtime = match flavor {
            Flavor::CurrentThread => Builder::new_current_thread().enable_all().build(),
            Flavor::MultiThread => Builder::new_multi_thread().worker_threads(2).enable_all().build(),
        }
        .expect("test runtime");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async move {
                let cluster = TestCluster::from_kubeconfig(&kubeconfig)
                    .await
                    .expect("test cluster");
                let tenant = cluster.namespace().to_owned();
                let stage = cluster
                    .extra_namespace("hoist-dev", &[("hoist.dev/tenant", tenant.as_str())])
                    .await
                    .expect("extra namespace");
                seen.lock().expect("names").extend([tenant.clone(), stage]);
                Api::<Namespace>::all(cluster.client())
                    .get(&tenant)
                    .await
                    .expect("the test's namespace");
                *ended.lock().expect("end") = Some(Instant::now());
                assert!(!panics, "the test's assertion failed");
            })
        }));
        let _ = finished.send(outcome);
    });
    let outcome = result
        .recv_timeout(BODY_LIMIT)
        .unwrap_or_else(|_| panic!("the test body did not end within {BODY_LIMIT:?}: its cleanup hung"));
    let cleanup = ended_at
        .lock()
        .expect("end")
        .map(|ended| ended.elapsed())
        .expect("the body ran to its end");
    let namespaces = namespaces.lock().expect("names").clone();
    Run {
        outcome,
        namespaces,
        cleanup,
    }
}

fn assert_cleaned_up(server: &Server, run: &Run) {
    assert_eq!(run.namespaces.len(), 2, "{:?}", run.namespaces);
    assert!(
        run.cleanup < CLEANUP_TIMEOUT,
        "the drop took {:?}, the cleanup's whole budget",
        run.cleanup
    );
    assert_eq!(server.live_namespaces(&run.namespaces), Vec::<String>::new());
    assert_eq!(server.cluster_rbac(), (Vec::new(), Vec::new()));
}

fn panic_message(outcome: &Result<(), Box<dyn Any + Send>>) -> String {
    match outcome {
        Ok(()) => "(no panic)".to_owned(),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_default(),
    }
}

#[test]
fn a_test_that_panics_on_a_current_thread_runtime_still_deletes_its_namespaces() {
    let server = Server::start();
    let run = run_body(&server, Flavor::CurrentThread, true);
    assert_eq!(panic_message(&run.outcome), "the test's assertion failed");
    assert_cleaned_up(&server, &run);
}

#[test]
fn a_test_that_panics_on_a_multi_thread_runtime_still_deletes_its_namespaces() {
    let server = Server::start();
    let run = run_body(&server, Flavor::MultiThread, true);
    assert_eq!(panic_message(&run.outcome), "the test's assertion failed");
    assert_cleaned_up(&server, &run);
}

#[test]
fn a_test_that_passes_deletes_its_namespaces_on_either_runtime() {
    let server = Server::start();
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let run = run_body(&server, flavor, false);
        assert!(run.outcome.is_ok(), "{}", panic_message(&run.outcome));
        assert_cleaned_up(&server, &run);
    }
}
