//! Why a reconcile failed, and when it is tried again: per object, with
//! exponential backoff up to a cap, back to the first step once it succeeds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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

/// Consecutive failures per object, for [`Schedule::delay`].
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records another failure of `key` and returns how long to wait.
    pub fn failed(&self, key: &str, schedule: &Schedule) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let attempt = failures.entry(key.to_string()).or_insert(0);
        let delay = schedule.delay(*attempt);
        *attempt = attempt.saturating_add(1);
        delay
    }

    /// `key` succeeded: its next failure waits the first step again.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
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

    #[test]
    fn each_object_backs_off_on_its_own_and_starts_over_after_a_success() {
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
