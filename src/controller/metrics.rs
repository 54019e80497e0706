//! Prometheus metrics of the reconcilers: runs, failures by error, and
//! duration, recorded by a timer on drop so early returns are counted too;
//! and of start-up: how long the caches took to list, and how many still
//! have not.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::leader::Leadership;
use super::readiness::Readiness;
use super::secret_watches::PerNamespace;
use crate::registry::Resolver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    pub controller: &'static str,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeletionLabel {
    pub kind: &'static str,
    pub reason: &'static str,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryDeletionLabel {
    pub registry: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub check: String,
    pub verdict: String,
}

/// The metrics every reconciler reports.
#[derive(Clone)]
pub struct Metrics {
    runs: Family<ControllerLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    duration: Family<ControllerLabel, Histogram>,
    writes: Family<ControllerLabel, Counter>,
    checks: Family<CheckLabel, Counter>,
    deletions: Family<DeletionLabel, Counter>,
    registry_deletions: Family<RegistryDeletionLabel, Counter>,
    notifications: Family<NotificationLabel, Counter>,
    startup: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            runs: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14))),
            writes: Family::default(),
            checks: Family::default(),
            deletions: Family::default(),
            registry_deletions: Family::default(),
            notifications: Family::default(),
            startup: Gauge::default(),
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
        registry.register(
            "hoist_supply_chain_checks",
            "Supply-chain checks of a digest (signatures, provenance, scans), by check and verdict",
            metrics.checks.clone(),
        );
        registry.register(
            "hoist_retention_deletions",
            "Artifacts and Promotions retention deleted, by kind, reason and namespace",
            metrics.deletions.clone(),
        );
        registry.register(
            "hoist_registry_deletions",
            "Manifests registry retention asked registries to delete, by registry and outcome: Deleted, NotFound, \
             Unsupported (405), Denied (401, 403) or Failed (transient failures outlasted every attempt)",
            metrics.registry_deletions.clone(),
        );
        registry.register(
            "hoist_notifications",
            "Attempts to deliver a notification, by outcome: delivered, retried (failed, to be tried again) \
             or failed (given up)",
            metrics.notifications.clone(),
        );
        registry.register(
            "hoist_startup_duration_seconds",
            "Time from start until every cache had listed and the operator was ready (0 until then)",
            metrics.startup.clone(),
        );
        metrics
    }

    /// Exports how many caches have not listed yet, read on each scrape.
    pub fn register_readiness(registry: &mut Registry, readiness: Readiness) {
        registry.register_collector(Box::new(UnlistedCaches(readiness)));
    }

    /// Exports whether this replica leads (`hoist_leader{identity}`).
    pub fn register_leadership(registry: &mut Registry, leadership: Leadership) {
        registry.register_collector(Box::new(Leader(leadership)));
    }

    /// Exports which namespaces' Secrets a cluster-wide install watches
    /// (`hoist_secret_watches{namespace}`).
    pub fn register_secret_watches(registry: &mut Registry, watches: PerNamespace) {
        registry.register_collector(Box::new(SecretWatches(watches)));
    }

    /// Records how long the operator took to become ready.
    pub fn ready_after(&self, elapsed: Duration) {
        self.startup.set(elapsed.as_secs_f64());
    }

    /// Also exports the manifest lookups `resolver` sent to registries, so
    /// registry pressure (one lookup per distinct reference) is visible.
    pub fn register_registry_lookups(registry: &mut Registry, resolver: Resolver) {
        registry.register_collector(Box::new(RegistryLookups(resolver)));
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

    /// Counts one supply-chain check made.
    pub fn supply_chain_check(
        &self,
        check: crate::api::SupplyChainCheck,
        verdict: crate::api::SupplyChainVerdict,
    ) {
        self.checks
            .get_or_create(&CheckLabel {
                check: format!("{check:?}"),
                verdict: format!("{verdict:?}"),
            })
            .inc();
    }

    /// Counts one object retention deleted.
    pub fn retention_deletion(&self, kind: &'static str, reason: &'static str, namespace: &str) {
        self.deletions
            .get_or_create(&DeletionLabel {
                kind,
                reason,
                namespace: namespace.to_owned(),
            })
            .inc();
    }

    /// Counts one manifest deletion registry retention asked for, by how it ended.
    pub fn registry_deletion(&self, registry: &str, outcome: crate::core::reasons::RegistryDeletionOutcome) {
        self.registry_deletions
            .get_or_create(&RegistryDeletionLabel {
                registry: registry.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts one attempt to deliver a notification.
    pub fn notification(&self, outcome: crate::core::notifications::Outcome) {
        self.notifications
            .get_or_create(&NotificationLabel {
                outcome: outcome.as_str(),
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

/// Reads the resolver's own lookup count on each scrape.
struct RegistryLookups(Resolver);

impl std::fmt::Debug for RegistryLookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegistryLookups")
            .field(&self.0.registry_requests())
            .finish()
    }
}

impl Collector for RegistryLookups {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.registry_requests());
        let metric = encoder.encode_descriptor(
            "hoist_registry_lookups",
            "Manifest lookups sent to registries (each distinct image reference is looked up once)",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// Reads the caches still listing on each scrape.
struct UnlistedCaches(Readiness);

impl std::fmt::Debug for UnlistedCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UnlistedCaches")
            .field(&self.0.unlisted().len())
            .finish()
    }
}

impl Collector for UnlistedCaches {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let unlisted = i64::try_from(self.0.unlisted().len()).unwrap_or(i64::MAX);
        let gauge = ConstGauge::new(unlisted);
        let metric = encoder.encode_descriptor(
            "hoist_caches_unlisted",
            "Caches that have not listed their resource yet (the operator is ready at 0)",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

/// `hoist_secret_watches{namespace}`: 1 for each namespace whose Secrets
/// are watched, read at each scrape (a namespace no longer watched is gone).
struct SecretWatches(PerNamespace);

impl std::fmt::Debug for SecretWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretWatches")
            .field(&self.0.namespaces())
            .finish()
    }
}

impl Collector for SecretWatches {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(1_i64);
        let mut metric = encoder.encode_descriptor(
            "hoist_secret_watches",
            "1 for each namespace whose Secrets the operator watches because an Environment there reads one",
            None,
            gauge.metric_type(),
        )?;
        for namespace in self.0.namespaces() {
            let labels = [("namespace", namespace)];
            ConstGauge::new(1_i64).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `hoist_leader`: 1 while this replica leads, read at each scrape.
struct Leader(Leadership);

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Leader").field(&self.0.identity()).finish()
    }
}

impl Collector for Leader {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(i64::from(self.0.is_leading()));
        let mut metric = encoder.encode_descriptor(
            "hoist_leader",
            "1 while this replica holds the leader Lease and reconciles, 0 while it stands by",
            None,
            gauge.metric_type(),
        )?;
        let labels = [("identity", self.0.identity().to_owned())];
        gauge.encode(metric.encode_family(&labels)?)
    }
}
