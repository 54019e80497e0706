//! Prometheus metrics of the reconcilers: runs, failures by error, and
//! duration, recorded by a timer on drop so early returns are counted too.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    pub controller: &'static str,
    pub error: String,
}

/// The metrics every reconciler reports.
#[derive(Clone)]
pub struct Metrics {
    runs: Family<ControllerLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    duration: Family<ControllerLabel, Histogram>,
    writes: Family<ControllerLabel, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            runs: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14))),
            writes: Family::default(),
        };
        registry.register(
            "hoist_reconciliations",
            "Reconciliations run",
            metrics.runs.clone(),
        );
        registry.register(
            "hoist_reconciliation_errors",
            "Reconciliations that failed, by error",
            metrics.failures.clone(),
        );
        registry.register(
            "hoist_reconcile_duration_seconds",
            "Duration of reconciliations",
            metrics.duration.clone(),
        );
        registry.register(
            "hoist_api_writes",
            "Writes to the Kubernetes API",
            metrics.writes.clone(),
        );
        metrics
    }

    /// Counts a run and times it until the returned guard is dropped.
    pub fn reconcile(&self, controller: &'static str) -> ReconcileTimer {
        self.runs.get_or_create(&ControllerLabel { controller }).inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self
                .duration
                .get_or_create(&ControllerLabel { controller })
                .clone(),
        }
    }

    pub fn failure(&self, controller: &'static str, error: &str) {
        self.failures
            .get_or_create(&FailureLabel {
                controller,
                error: error.to_string(),
            })
            .inc();
    }

    pub fn write(&self, controller: &'static str) {
        self.writes.get_or_create(&ControllerLabel { controller }).inc();
    }
}

/// Observes the elapsed time into the duration histogram when dropped.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
