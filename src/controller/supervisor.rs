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
//! - With leader election, the Lease is released after the in-flight
//!   reconciles finished (or the shutdown timeout passed), so a standby
//!   takes over at once and never beside a reconcile of this replica.
//! - When the caches have not listed within the start-up timeout (a list
//!   refused by RBAC is retried forever by the watch), it names them, with
//!   the last error of each, and returns an error.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{broadcast, oneshot};
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

    pub fn election(handle: JoinHandle<()>) -> Self {
        Task {
            name: "leader election".into(),
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
    /// The leader election's task (it never ends on its own) and what tells
    /// it to release the Lease and end.
    pub election: Option<(Task, oneshot::Sender<()>)>,
}

/// How long releasing the Lease may take at shutdown: one request.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

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
            election,
        } = self;
        let (election, release) = election.unzip();
        // Whatever happens below, no task outlives `run`.
        let _aborts = AbortOnDrop::of(watches.iter().chain(&controllers).chain(&election));
        let mut election = named(election.into_iter().collect());
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
                Some((task, result)) = election.next() => break Reason::Died(task, cause(result)),
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
        let mut timed_out = false;
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
            timed_out = matches!(stopped_badly, Some(Stopped::ShutdownTimeout { .. }));
            if let Some(stopped_badly) = stopped_badly {
                tracing::error!(failure = %stopped_badly, "stopping");
                health.fail(stopped_badly.to_string());
                failure.get_or_insert(stopped_badly);
            }
        }
        // Released only once in-flight reconciles are done; when they did not
        // finish in time the Lease is left to expire (the tasks are aborted
        // when `run` returns), so no standby acts beside them.
        let _unreleased = match release {
            Some(release) if !timed_out => {
                let _ = release.send(());
                if tokio::time::timeout(RELEASE_TIMEOUT, election.next())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "releasing the leader Lease took too long; a standby takes over once it expires"
                    );
                }
                None
            }
            kept => kept,
        };
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
#[path = "tests/supervisor.rs"]
mod tests;
