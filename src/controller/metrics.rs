//! Prometheus metrics of the reconcilers: runs, failures by error, and
//! duration, recorded by a timer on drop so early returns are counted too;
//! and of start-up: how long the caches took to list, and how many still
//! have not; and the DORA figures of each Environment's new history
//! entries (deployments by outcome, lead time, time to restore).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::leader::Leadership;
use super::readiness::Readiness;
use super::secret_watches::PerNamespace;
use crate::api::HistoryEntry;
use crate::core::dora::{self, Observation};
use crate::registry::Resolver;

const RECONCILIATIONS: &str = "hoist_reconciliations";
const RECONCILIATION_ERRORS: &str = "hoist_reconciliation_errors";
const RECONCILE_DURATION: &str = "hoist_reconcile_duration_seconds";
const API_WRITES: &str = "hoist_api_writes";
const SUPPLY_CHAIN_CHECKS: &str = "hoist_supply_chain_checks";
const RETENTION_DELETIONS: &str = "hoist_retention_deletions";
const REGISTRY_DELETIONS: &str = "hoist_registry_deletions";
const NOTIFICATIONS: &str = "hoist_notifications";
const STARTUP_DURATION: &str = "hoist_startup_duration_seconds";
const DEPLOYMENTS: &str = "hoist_deployments";
const LEAD_TIME: &str = "hoist_lead_time_seconds";
const TIME_TO_RESTORE: &str = "hoist_time_to_restore_seconds";
const REGISTRY_LOOKUPS: &str = "hoist_registry_lookups";
const CACHES_UNLISTED: &str = "hoist_caches_unlisted";
const SECRET_WATCHES: &str = "hoist_secret_watches";
const LEADER: &str = "hoist_leader";
pub(super) const API_REQUESTS: &str = "hoist_api_requests";

/// Every metric family the operator exports: the name each is registered
/// under and its type. /metrics lists a family only once it has a sample,
/// so this is what a dashboard may name (tests/controller/dora.rs checks a
/// real /metrics and the chart's dashboard against it).
pub const FAMILIES: [(&str, MetricType); 17] = [
    (RECONCILIATIONS, MetricType::Counter),
    (RECONCILIATION_ERRORS, MetricType::Counter),
    (RECONCILE_DURATION, MetricType::Histogram),
    (API_WRITES, MetricType::Counter),
    (SUPPLY_CHAIN_CHECKS, MetricType::Counter),
    (RETENTION_DELETIONS, MetricType::Counter),
    (REGISTRY_DELETIONS, MetricType::Counter),
    (NOTIFICATIONS, MetricType::Counter),
    (STARTUP_DURATION, MetricType::Gauge),
    (DEPLOYMENTS, MetricType::Counter),
    (LEAD_TIME, MetricType::Histogram),
    (TIME_TO_RESTORE, MetricType::Histogram),
    (REGISTRY_LOOKUPS, MetricType::Counter),
    (CACHES_UNLISTED, MetricType::Gauge),
    (SECRET_WATCHES, MetricType::Gauge),
    (LEADER, MetricType::Gauge),
    (API_REQUESTS, MetricType::Counter),
];

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

/// Where a deployment happened: tenant namespace, application, Environment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DoraLabel {
    pub namespace: String,
    pub application: String,
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabel {
    pub namespace: String,
    pub application: String,
    pub environment: String,
    pub outcome: &'static str,
}

/// Lead times: from 5 minutes to 30 days.
const LEAD_TIME_BUCKETS: [f64; 12] = [
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    172_800.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
];
/// Times to restore: from a minute to a week.
const RESTORE_BUCKETS: [f64; 11] = [
    60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259_200.0, 604_800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub check: String,
    pub verdict: String,
}

/// The history last written per Environment (namespace, name).
type WrittenHistories = Arc<Mutex<HashMap<(String, String), Vec<HistoryEntry>>>>;

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
    deployments: Family<DeploymentLabel, Counter>,
    lead_time: Family<DoraLabel, Histogram>,
    time_to_restore: Family<DoraLabel, Histogram>,
    histories: WrittenHistories,
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
            deployments: Family::default(),
            lead_time: Family::new_with_constructor(|| Histogram::new(LEAD_TIME_BUCKETS)),
            time_to_restore: Family::new_with_constructor(|| Histogram::new(RESTORE_BUCKETS)),
            histories: Arc::default(),
        };
        registry.register(RECONCILIATIONS, "Reconciliations run", metrics.runs.clone());
        registry.register(
            RECONCILIATION_ERRORS,
            "Reconciliations that failed, by error",
            metrics.failures.clone(),
        );
        registry.register(
            RECONCILE_DURATION,
            "Duration of reconciliations",
            metrics.duration.clone(),
        );
        registry.register(API_WRITES, "Writes to the Kubernetes API", metrics.writes.clone());
        registry.register(
            SUPPLY_CHAIN_CHECKS,
            "Supply-chain checks of a digest (signatures, provenance, scans), by check and verdict",
            metrics.checks.clone(),
        );
        registry.register(
            RETENTION_DELETIONS,
            "Artifacts and Promotions retention deleted, by kind, reason and namespace",
            metrics.deletions.clone(),
        );
        registry.register(
            REGISTRY_DELETIONS,
            "Manifests registry retention asked registries to delete, by registry and outcome: Deleted, NotFound, \
             Unsupported (405), Denied (401, 403) or Failed (transient failures outlasted every attempt)",
            metrics.registry_deletions.clone(),
        );
        registry.register(
            NOTIFICATIONS,
            "Attempts to deliver a notification, by outcome: delivered, retried (failed, to be tried again) \
             or failed (given up)",
            metrics.notifications.clone(),
        );
        registry.register(
            STARTUP_DURATION,
            "Time from start until every cache had listed and the operator was ready (0 until then)",
            metrics.startup.clone(),
        );
        registry.register(
            DEPLOYMENTS,
            "Promotions that ended in an Environment, by outcome: Succeeded, Failed or RolledBack (a failed \
             rollout or verification); the change failure rate is Failed and RolledBack over all",
            metrics.deployments.clone(),
        );
        registry.register(
            LEAD_TIME,
            "Lead time for changes: from a release's commit (spec.source.committedAt, else builtAt) to its \
             success in an Environment",
            metrics.lead_time.clone(),
        );
        registry.register(
            TIME_TO_RESTORE,
            "Time to restore: from a failed or rolled-back release to the application running healthy again",
            metrics.time_to_restore.clone(),
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

    /// Records what a write of an Environment's history (`written`) newly
    /// holds, each outcome once: entries the cached history (`cached`, what
    /// the API server had, also after a restart) or the last history this
    /// process wrote already held are not counted again, even when the
    /// cache has not caught up with that write.
    pub fn record_history(
        &self,
        namespace: &str,
        environment: &str,
        cached: &[HistoryEntry],
        written: &[HistoryEntry],
    ) {
        let observations = {
            let mut last = self.histories.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (namespace.to_owned(), environment.to_owned());
            let previous = last.get(&key).map(Vec::as_slice).unwrap_or_default();
            let observations = dora::newly_recorded(&[cached, previous], written);
            last.insert(key, written.to_vec());
            observations
        };
        let scope = |application: &str| DoraLabel {
            namespace: namespace.to_owned(),
            application: application.to_owned(),
            environment: environment.to_owned(),
        };
        for observation in &observations {
            match observation {
                Observation::Deployment(deployment) => {
                    self.deployments
                        .get_or_create(&DeploymentLabel {
                            namespace: namespace.to_owned(),
                            application: deployment.application.clone(),
                            environment: environment.to_owned(),
                            outcome: deployment.outcome.as_str(),
                        })
                        .inc();
                    if let Some(lead_time) = deployment.lead_time {
                        self.lead_time
                            .get_or_create(&scope(&deployment.application))
                            .observe(lead_time.as_secs_f64());
                    }
                }
                Observation::Restore {
                    application,
                    duration,
                } => {
                    self.time_to_restore
                        .get_or_create(&scope(application))
                        .observe(duration.as_secs_f64());
                }
            }
        }
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
            REGISTRY_LOOKUPS,
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
            CACHES_UNLISTED,
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
            SECRET_WATCHES,
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
            LEADER,
            "1 while this replica holds the leader Lease and reconciles, 0 while it stands by",
            None,
            gauge.metric_type(),
        )?;
        let labels = [("identity", self.0.identity().to_owned())];
        gauge.encode(metric.encode_family(&labels)?)
    }
}
