//! The operator's readiness: one [`Listed`] signal per cache, combined
//! once by the supervisor, and read by `/readyz` and by every reconcile.
//!
//! Reconciles must not decide before every cache has listed (absence would
//! mean nothing yet), and `/readyz` must not say ready before they can
//! decide; both read the same state here, so they cannot disagree. Any
//! number of tasks may wait on it.

use std::sync::Arc;

use tokio::sync::watch;

use super::cache::Listed;

/// Where the operator is in its life, as reconciles and probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct State {
    /// Every cache has listed once.
    synced: bool,
    /// Shutting down: no new decisions.
    stopping: bool,
}

/// The caches' listing signals and the combined state.
#[derive(Clone)]
pub struct Readiness {
    caches: Arc<[Listed]>,
    state: Arc<watch::Sender<State>>,
}

impl Readiness {
    pub fn new(caches: Vec<Listed>) -> Self {
        Readiness {
            caches: caches.into(),
            state: Arc::new(watch::channel(State::default()).0),
        }
    }

    /// Waits until every cache has listed once. Only the supervisor waits
    /// here; everyone else waits for what it then records
    /// ([`Readiness::mark_synced`]).
    pub async fn all_listed(&self) {
        futures::future::join_all(self.caches.iter().map(Listed::wait)).await;
    }

    /// Records that every cache has listed.
    pub fn mark_synced(&self) {
        self.state.send_modify(|state| state.synced = true);
    }

    /// Records that the operator is stopping: waiting reconciles give up.
    pub fn mark_stopping(&self) {
        self.state.send_modify(|state| state.stopping = true);
    }

    /// Synced and not stopping: reconciles may decide, `/readyz` says ready.
    pub fn is_ready(&self) -> bool {
        let state = *self.state.borrow();
        state.synced && !state.stopping
    }

    pub fn is_stopping(&self) -> bool {
        self.state.borrow().stopping
    }

    /// Waits until reconciles may decide; false if the operator stops first.
    pub async fn wait_until_synced(&self) -> bool {
        let mut state = self.state.subscribe();
        match state.wait_for(|state| state.synced || state.stopping).await {
            Ok(state) => !state.stopping,
            Err(_) => false,
        }
    }

    /// The caches that have not listed yet, with their watch's last error.
    pub fn unlisted(&self) -> Vec<(&'static str, Option<String>)> {
        self.caches
            .iter()
            .filter(|cache| !cache.is_listed())
            .map(|cache| (cache.name, cache.last_error()))
            .collect()
    }
}

#[cfg(test)]
#[path = "tests/readiness.rs"]
mod tests;
