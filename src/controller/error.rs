//! Why a reconcile failed, and when it is tried again: per object, with
//! exponential backoff up to a cap, back to the first step once it succeeds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),
}

impl Error {
    /// The `error` label of the failure metric.
    pub fn label(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(status)) => format!("api_{}", status.code),
            Error::Kube(_) => "api".into(),
        }
    }
}

/// The delays of one backoff schedule: `first`, doubling, never above `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first: Duration,
    pub cap: Duration,
}

/// After a failed reconcile: 1 s, 2 s, 4 s, … up to 5 minutes.
pub const RECONCILE_RETRY: Schedule = Schedule {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(300),
};

impl Schedule {
    /// The delay before retry number `attempt` (0 is the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        // Past the cap every step is the cap; no need to walk further.
        let steps = attempt.min(64) as usize;
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(steps)
            .unwrap_or(self.cap)
    }
}

/// Consecutive failures per object, for [`Schedule::delay`], and when each
/// may be tried again.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, Failures>>,
}

struct Failures {
    attempts: u32,
    retry_at: Instant,
    /// Past this, the object was neither retried nor reset: it is gone.
    forget_at: Instant,
}

impl Backoff {
    /// Records another failure of `key` and returns how long to wait.
    pub fn failed(&self, key: &str, schedule: &Schedule) -> Duration {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.retain(|_, failure| failure.forget_at > now);
        let attempts = failures.get(key).map_or(0, |failure| failure.attempts);
        let delay = schedule.delay(attempts);
        failures.insert(
            key.to_string(),
            Failures {
                attempts: attempts.saturating_add(1),
                retry_at: now + delay,
                forget_at: now + delay + schedule.cap,
            },
        );
        delay
    }

    /// How long `key` must still wait before it is tried again, if at all
    /// (a watch event may bring it back earlier than its backoff).
    pub fn waiting(&self, key: &str) -> Option<Duration> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let remaining = failures
            .get(key)?
            .retry_at
            .checked_duration_since(Instant::now())?;
        (!remaining.is_zero()).then_some(remaining)
    }

    /// `key` succeeded: its next failure waits the first step again.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// The backoff key of an object of `controller`.
pub fn key(controller: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{controller}/{}/{name}", namespace.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_the_first_step_up_to_the_cap() {
        let delays: Vec<u64> = (0..12).map(|n| RECONCILE_RETRY.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(RECONCILE_RETRY.delay(u32::MAX), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn each_object_backs_off_on_its_own_and_starts_over_after_a_success() {
        let backoff = Backoff::default();
        let schedule = Schedule {
            first: Duration::from_secs(5),
            cap: Duration::from_secs(60),
        };
        let a = key("environment", Some("shop"), "prod");
        let b = key("environment", Some("shop"), "dev");
        let steps: Vec<u64> = (0..5).map(|_| backoff.failed(&a, &schedule).as_secs()).collect();
        assert_eq!(steps, vec![5, 10, 20, 40, 60]);
        assert_eq!(
            backoff.failed(&b, &schedule),
            Duration::from_secs(5),
            "another object starts at the first step"
        );
        backoff.succeeded(&a);
        assert_eq!(
            backoff.failed(&a, &schedule),
            Duration::from_secs(5),
            "reset on success"
        );
        assert_eq!(backoff.failed(&b, &schedule), Duration::from_secs(10));
    }
}

#[cfg(test)]
mod waiting {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        first: Duration::from_secs(5),
        cap: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn an_object_brought_back_early_waits_out_its_delay() {
        let backoff = Backoff::default();
        assert_eq!(backoff.waiting("a"), None, "never failed");
        assert_eq!(backoff.failed("a", &SCHEDULE), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(backoff.waiting("a"), Some(Duration::from_secs(3)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(backoff.waiting("a"), None, "due");
    }

    #[tokio::test(start_paused = true)]
    async fn objects_neither_retried_nor_reset_are_forgotten() {
        let backoff = Backoff::default();
        backoff.failed("deleted", &SCHEDULE);
        // Its retry was due after 5 s; a live object would have failed or
        // succeeded again within the cap after that.
        tokio::time::advance(Duration::from_secs(5 + 60 + 1)).await;
        backoff.failed("other", &SCHEDULE);
        assert_eq!(backoff.len(), 1);
        assert_eq!(
            backoff.failed("deleted", &SCHEDULE),
            Duration::from_secs(5),
            "starts over"
        );
    }
}
