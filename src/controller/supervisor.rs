//! The supervisor: runs the watches and the controllers, marks the operator
//! ready once every cache has listed, and stops it, never losing a task
//! silently.
//!
//! - On the shutdown signal it stops taking new work (readiness goes to
//!   "shutting down", waiting reconciles give up, the controllers stop
//!   scheduling), lets in-flight reconciles finish for at most the shutdown
//!   timeout, then stops the watches. A reconcile is never aborted between
//!   its Deployment patch and its status write unless that takes longer
//!   than the timeout.
//! - When a controller or a watch ends or panics, `/healthz` and `/readyz`
//!   fail at once, the rest stops the same way, and `run` returns an error,
//!   so `hoist controller` exits non-zero and Kubernetes restarts it.
//! - When the caches have not listed within the start-up timeout (a list
//!   refused by RBAC is retried forever by the watch), it names them, with
//!   the last error of each, and returns an error.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::broadcast;
use tokio::task::{JoinError, JoinHandle};

use super::metrics::Metrics;
use super::readiness::Readiness;
use super::server::Health;

/// Why the operator stopped other than by its shutdown signal, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error(
        "caches not listed within {after:?}: {}; check that the operator may list and watch these resources (RBAC) and that the API server answers",
        describe_unlisted(unlisted)
    )]
    StartupTimeout {
        after: Duration,
        /// Each cache still listing, with its watch's last error.
        unlisted: Vec<(&'static str, Option<String>)>,
    },
    #[error("the {task} {cause}; stopping so that the operator is restarted")]
    TaskEnded { task: String, cause: String },
    #[error("in-flight reconciles of the {} did not finish within {after:?} of the shutdown signal", pending.join(", "))]
    ShutdownTimeout { after: Duration, pending: Vec<String> },
}

fn describe_unlisted(unlisted: &[(&'static str, Option<String>)]) -> String {
    unlisted
        .iter()
        .map(|(name, error)| match error {
            Some(error) => format!("{name} (last error: {error})"),
            None => name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A task and what it is, for messages: `watch of secrets`, `environment controller`.
pub struct Task {
    pub name: String,
    pub handle: JoinHandle<()>,
}

impl Task {
    pub fn watch(cache: &str, handle: JoinHandle<()>) -> Self {
        Task {
            name: format!("watch of {cache}"),
            handle,
        }
    }

    pub fn server(handle: JoinHandle<()>) -> Self {
        Task {
            name: "health server".into(),
            handle,
        }
    }

    pub fn controller(kind: &str, handle: JoinHandle<()>) -> Self {
        Task {
            name: format!("{kind} controller"),
            handle,
        }
    }
}

/// Everything the supervisor watches over and the knobs of its deadlines.
pub struct Supervisor {
    /// The watches and the health server: tasks that never end on their own.
    pub watches: Vec<Task>,
    pub controllers: Vec<Task>,
    pub readiness: Readiness,
    pub health: Arc<Health>,
    pub metrics: Metrics,
    /// Tells the controllers to stop taking new work.
    pub graceful: broadcast::Sender<()>,
    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub started: Instant,
}

/// Why the supervisor begins to stop.
enum Reason {
    Signal,
    Died(String, String),
    StartupTimeout(Vec<(&'static str, Option<String>)>),
}

fn cause(result: Result<(), JoinError>) -> String {
    match result {
        Ok(()) => "ended".into(),
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            format!("panicked: {message}")
        }
        Err(_) => "was cancelled".into(),
    }
}

type Named = futures::future::BoxFuture<'static, (String, Result<(), JoinError>)>;

fn named(tasks: Vec<Task>) -> FuturesUnordered<Named> {
    tasks
        .into_iter()
        .map(|task| {
            let Task { name, handle } = task;
            async move { (name, handle.await) }.boxed()
        })
        .collect()
}

impl Supervisor {
    /// Runs until `shutdown` resolves (then `Ok`) or something fails (`Err`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Stopped> {
        let Supervisor {
            watches,
            controllers,
            readiness,
            health,
            metrics,
            graceful,
            startup_timeout,
            shutdown_timeout,
            started,
        } = self;
        // Whatever happens below, no task outlives `run`.
        let _aborts = AbortOnDrop::of(watches.iter().chain(&controllers));
        let mut pending_controllers: BTreeSet<String> = controllers.iter().map(|t| t.name.clone()).collect();
        let mut watches = named(watches);
        let mut controllers = named(controllers);
        let startup = tokio::time::timeout(startup_timeout, readiness.all_listed());
        tokio::pin!(startup, shutdown);
        let mut ready = false;

        let reason = loop {
            // A task that died is seen before a signal that came with it.
            tokio::select! {
                biased;
                Some((task, result)) = watches.next() => break Reason::Died(task, cause(result)),
                Some((task, result)) = controllers.next() => {
                    pending_controllers.remove(&task);
                    break Reason::Died(task, cause(result));
                }
                listed = &mut startup, if !ready => match listed {
                    Ok(()) => {
                        ready = true;
                        readiness.mark_synced();
                        metrics.ready_after(started.elapsed());
                        tracing::info!(after = ?started.elapsed(), "caches synced; ready");
                    }
                    Err(_) => break Reason::StartupTimeout(readiness.unlisted()),
                },
                () = &mut shutdown => break Reason::Signal,
            }
        };

        readiness.mark_stopping();
        let mut failure = match reason {
            Reason::Signal => None,
            Reason::Died(task, cause) => Some(Stopped::TaskEnded { task, cause }),
            Reason::StartupTimeout(unlisted) => Some(Stopped::StartupTimeout {
                after: startup_timeout,
                unlisted,
            }),
        };
        if let Some(failure) = &failure {
            tracing::error!(%failure, "stopping");
            health.fail(failure.to_string());
        }
        // Before every cache has listed no reconcile has begun (they wait
        // for the caches), so there is nothing to finish; and kube-runtime's
        // runner of a controller whose own cache never listed would not end
        // on the signal anyway.
        // The watches keep running while reconciles finish, so those waiting
        // for their writes to reach the caches see them (at most a few
        // seconds: a controller that stopped reading leaves its share of
        // the watch's buffer to fill).
        if ready {
            tracing::info!("shutting down: finishing in-flight reconciles");
            let _ = graceful.send(());
            let drained = tokio::time::timeout(shutdown_timeout, async {
                let mut died = None;
                while let Some((task, result)) = controllers.next().await {
                    pending_controllers.remove(&task);
                    if let Err(error) = result {
                        died.get_or_insert(Stopped::TaskEnded {
                            task,
                            cause: cause(Err(error)),
                        });
                    }
                }
                died
            })
            .await;
            let stopped_badly = match drained {
                Ok(died) => died,
                Err(_) => Some(Stopped::ShutdownTimeout {
                    after: shutdown_timeout,
                    pending: pending_controllers.into_iter().collect(),
                }),
            };
            if let Some(stopped_badly) = stopped_badly {
                tracing::error!(failure = %stopped_badly, "stopping");
                health.fail(stopped_badly.to_string());
                failure.get_or_insert(stopped_badly);
            }
        }
        match failure {
            Some(failure) => Err(failure),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

/// Aborts its tasks when dropped.
pub struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl AbortOnDrop {
    pub fn of<'t>(tasks: impl Iterator<Item = &'t Task>) -> Self {
        AbortOnDrop(tasks.map(|task| task.handle.abort_handle()).collect())
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
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
            message.starts_with("caches not listed within 30s: configmaps (last error: failed to perform initial object list: "),
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
}
