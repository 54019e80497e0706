use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use prometheus_client::registry::Registry;

use super::*;
use crate::controller::cache::{Cache, no_keys};

/// A supervisor over one cache and the given tasks, with its readiness
/// and health, and the cache's writer to list it.
struct Fixture {
    cache: Cache<ConfigMap>,
    writer: reflector::store::Writer<ConfigMap>,
    readiness: Readiness,
    health: Arc<Health>,
    graceful: broadcast::Sender<()>,
}

impl Fixture {
    fn new() -> Self {
        let (store, writer) = reflector::store_shared(16);
        let cache = Cache::new("configmaps", store, no_keys);
        let readiness = Readiness::new(vec![cache.listed()]);
        let health = Arc::new(Health::new(readiness.clone(), Registry::default()));
        Fixture {
            cache,
            writer,
            readiness,
            health,
            graceful: broadcast::channel(1).0,
        }
    }

    fn list(&mut self) {
        for event in [Event::Init, Event::InitDone] {
            self.cache.observe(&event);
            self.writer.apply_watcher_event(&event);
            self.cache.applied(&Ok(event));
        }
    }

    fn supervisor(&self, watches: Vec<Task>, controllers: Vec<Task>) -> Supervisor {
        Supervisor {
            election: None,
            watches,
            controllers,
            readiness: self.readiness.clone(),
            health: Arc::clone(&self.health),
            metrics: Metrics::register(&mut Registry::default()),
            graceful: self.graceful.clone(),
            startup_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            started: Instant::now(),
        }
    }

    /// A controller that, on the graceful signal, finishes an in-flight
    /// reconcile of `busy` and then ends, setting `finished`.
    fn controller(&self, busy: Duration, finished: Arc<AtomicBool>) -> Task {
        let mut stop = self.graceful.subscribe();
        Task::controller(
            "environment",
            tokio::spawn(async move {
                let _ = stop.recv().await;
                tokio::time::sleep(busy).await;
                finished.store(true, Ordering::SeqCst);
            }),
        )
    }
}

fn forever(name: &str) -> Task {
    Task::watch(name, tokio::spawn(futures::future::pending()))
}

#[tokio::test(start_paused = true)]
async fn on_the_signal_in_flight_reconciles_finish_before_run_returns() {
    let mut fixture = Fixture::new();
    fixture.list();
    let finished = Arc::new(AtomicBool::new(false));
    let supervisor = fixture.supervisor(
        vec![forever("configmaps")],
        vec![fixture.controller(Duration::from_secs(3), Arc::clone(&finished))],
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(supervisor.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(fixture.readiness.is_ready());
    assert_eq!(fixture.health.readiness().0, hyper::StatusCode::OK);
    let _ = stop.send(());
    let result = running.await.expect("supervisor");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        finished.load(Ordering::SeqCst),
        "the reconcile in flight finished first"
    );
    assert!(!fixture.readiness.is_ready());
    assert_eq!(
        fixture.health.readiness(),
        (
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into()
        )
    );
    assert_eq!(fixture.health.liveness().0, hyper::StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_outlasts_the_shutdown_timeout_is_reported() {
    let mut fixture = Fixture::new();
    fixture.list();
    let finished = Arc::new(AtomicBool::new(false));
    let supervisor = fixture.supervisor(
        vec![forever("configmaps")],
        vec![fixture.controller(Duration::from_secs(60), Arc::clone(&finished))],
    );
    let started = tokio::time::Instant::now();
    let result = supervisor.run(async {}).await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    let error = result.expect_err("timed out");
    assert_eq!(
        error.to_string(),
        "in-flight reconciles of the environment controller did not finish within 10s of the shutdown signal"
    );
    assert!(!finished.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_controller_fails_the_probes_and_run() {
    let mut fixture = Fixture::new();
    fixture.list();
    let watch_started = Arc::new(AtomicBool::new(false));
    let watch_stopped = Arc::new(AtomicBool::new(false));
    let watch = {
        let started = Arc::clone(&watch_started);
        let stopped = Arc::clone(&watch_stopped);
        Task::watch(
            "configmaps",
            tokio::spawn(async move {
                started.store(true, Ordering::SeqCst);
                // Dropped (the flag set) only when aborted.
                let _guard = SetOnDrop(stopped);
                futures::future::pending::<()>().await
            }),
        )
    };
    let panicking = Task::controller(
        "artifact",
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            panic!("reconcile blew up");
        }),
    );
    let finished = Arc::new(AtomicBool::new(false));
    let other = fixture.controller(Duration::from_millis(100), Arc::clone(&finished));
    let supervisor = fixture.supervisor(vec![watch], vec![panicking, other]);
    let error = supervisor
        .run(futures::future::pending())
        .await
        .expect_err("fails");
    assert_eq!(
        error.to_string(),
        "the artifact controller panicked: reconcile blew up; stopping so that the operator is restarted"
    );
    let (status, body) = fixture.health.liveness();
    assert_eq!(status, hyper::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, format!("{error}\n"));
    assert_eq!(
        fixture.health.readiness().0,
        hyper::StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        finished.load(Ordering::SeqCst),
        "the other controller was stopped gracefully"
    );
    tokio::task::yield_now().await;
    assert!(watch_started.load(Ordering::SeqCst), "the watch ran");
    assert!(watch_stopped.load(Ordering::SeqCst), "the watch was stopped");
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_panics_while_finishing_fails_run_after_the_signal() {
    let mut fixture = Fixture::new();
    fixture.list();
    let mut stop = fixture.graceful.subscribe();
    let panicking = Task::controller(
        "promotion",
        tokio::spawn(async move {
            let _ = stop.recv().await;
            panic!("in-flight reconcile blew up");
        }),
    );
    let supervisor = fixture.supervisor(vec![forever("configmaps")], vec![panicking]);
    let error = supervisor
        .run(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .expect_err("never Ok after losing a controller");
    assert_eq!(
        error.to_string(),
        "the promotion controller panicked: in-flight reconcile blew up; stopping so that the operator is restarted"
    );
    assert_eq!(
        fixture.health.liveness().0,
        hyper::StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_dies_with_the_signal_is_not_taken_for_a_clean_stop() {
    let mut fixture = Fixture::new();
    fixture.list();
    let ending = Task::controller("artifact", tokio::spawn(async {}));
    // It has ended before `run` looks, and the signal is there too.
    tokio::task::yield_now().await;
    let supervisor = fixture.supervisor(vec![forever("configmaps")], vec![ending]);
    let result = supervisor.run(async {}).await;
    assert_eq!(
        result.expect_err("a lost controller").to_string(),
        "the artifact controller ended; stopping so that the operator is restarted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_before_the_caches_listed_stops_at_once() {
    let fixture = Fixture::new();
    // Like kube-runtime's runner over a store that never listed: it
    // would not end on the graceful signal.
    let stuck = Task::controller("environment", tokio::spawn(futures::future::pending()));
    let supervisor = fixture.supervisor(vec![forever("configmaps")], vec![stuck]);
    let started = tokio::time::Instant::now();
    let result = supervisor.run(tokio::time::sleep(Duration::from_secs(2))).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "no wait for the shutdown timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_ends_fails_run() {
    let mut fixture = Fixture::new();
    fixture.list();
    let ending = Task::watch(
        "secrets",
        tokio::spawn(tokio::time::sleep(Duration::from_secs(2))),
    );
    let finished = Arc::new(AtomicBool::new(false));
    let supervisor = fixture.supervisor(vec![ending], vec![fixture.controller(Duration::ZERO, finished)]);
    let error = supervisor
        .run(futures::future::pending())
        .await
        .expect_err("fails");
    assert_eq!(
        error.to_string(),
        "the watch of secrets ended; stopping so that the operator is restarted"
    );
    assert_eq!(
        fixture.health.liveness().0,
        hyper::StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test(start_paused = true)]
async fn caches_that_do_not_list_by_the_deadline_are_named() {
    let fixture = Fixture::new();
    let status: kube::core::Status = serde_json::from_value(serde_json::json!({
        "status": "Failure", "code": 403, "reason": "Forbidden",
        "message": "configmaps is forbidden: User \"hoist\" cannot list resource \"configmaps\""
    }))
    .expect("status");
    fixture
        .cache
        .applied(&Err(kube::runtime::watcher::Error::InitialListFailed(
            kube::Error::Api(Box::new(status)),
        )));
    let finished = Arc::new(AtomicBool::new(false));
    let mut supervisor = fixture.supervisor(
        vec![forever("configmaps")],
        vec![fixture.controller(Duration::ZERO, finished)],
    );
    supervisor.startup_timeout = Duration::from_secs(30);
    let started = tokio::time::Instant::now();
    let error = supervisor
        .run(futures::future::pending())
        .await
        .expect_err("fails");
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let message = error.to_string();
    assert!(
        message.starts_with(
            "caches not listed within 30s: configmaps (last error: failed to perform initial object list: "
        ),
        "{message}"
    );
    assert!(
        message.contains("cannot list resource \\\"configmaps\\\"")
            || message.contains("cannot list resource \"configmaps\""),
        "{message}"
    );
    let (status, body) = fixture.health.readiness();
    assert_eq!(status, hyper::StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.starts_with("not ready: caches not listed within 30s"),
        "{body}"
    );
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn readyz_names_the_target_kinds_the_cluster_does_not_serve_after_ready() {
    let readiness = Readiness::new(Vec::new());
    readiness.mark_synced();
    let unserved = [crate::api::WorkloadKind::Rollout].into();
    let health = Health::new(readiness.clone(), Registry::default()).with_unserved(&unserved);
    assert_eq!(
        health.readiness(),
        (
            hyper::StatusCode::OK,
            "ready\nRollout (argoproj.io/v1alpha1) is not served here: targets of this kind are invalid\n"
                .into()
        )
    );
    let health = Health::new(readiness, Registry::default()).with_unserved(&Default::default());
    assert_eq!(health.readiness(), (hyper::StatusCode::OK, "ready\n".into()));
}
