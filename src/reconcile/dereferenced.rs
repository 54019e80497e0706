//! What one Environment's reconcile read, owned, and the snapshot the core
//! decides on, built from it in one place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{Artifact, Environment, Promotion, WorkloadKind};
use crate::core::config::{self, ConfigError, ConfigSources, RenderedConfig};
use crate::core::environment::Snapshot;
use crate::core::gates::approval::ApprovalTrust;
use crate::core::notifications::TenantNotification;
use crate::core::supply_chain::TrustSources;
use crate::core::tenancy::Boundaries;
use crate::core::tiers::Tiers;
use crate::core::workload::{Workload, WorkloadId};

/// Everything the decision about one Environment takes, as read by the
/// dereference step (see [`Snapshot`] for what each field means).
pub struct Dereferenced {
    pub environment: Arc<Environment>,
    /// The Environments of its namespace (this one included).
    pub environments: Vec<Arc<Environment>>,
    pub artifacts: BTreeMap<String, Arc<Artifact>>,
    /// The Promotions into it.
    pub promotions: Vec<Arc<Promotion>>,
    pub workloads: BTreeMap<WorkloadId, Workload>,
    pub unserved: BTreeSet<WorkloadKind>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub configs: BTreeMap<String, Result<RenderedConfig, ConfigError>>,
    pub config_history: BTreeMap<String, RenderedConfig>,
    pub approvals: ApprovalTrust,
    pub boundaries: Boundaries,
    pub operator: Option<String>,
    /// Its verification Jobs.
    pub jobs: Vec<Arc<Job>>,
    pub trust: TrustSources,
    pub tenant_notifications: Vec<TenantNotification>,
    pub tiers: Option<Tiers>,
    pub tenant_labels: BTreeMap<String, String>,
    pub now: Time,
}

impl Dereferenced {
    /// The snapshot the core decides on, before any measurement is taken.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            environment: &self.environment,
            environments: self
                .environments
                .iter()
                .map(|e| (e.name_any(), e.as_ref()))
                .collect(),
            artifacts: self
                .artifacts
                .iter()
                .map(|(name, a)| (name.clone(), a.as_ref()))
                .collect(),
            promotions: self.promotions.iter().map(|p| p.as_ref()).collect(),
            workloads: self.workloads.iter().map(|(id, w)| (id.clone(), w)).collect(),
            unserved: self.unserved.clone(),
            namespaces: self.namespaces.iter().map(|(k, n)| (k.clone(), n)).collect(),
            configs: self.configs.clone(),
            config_history: self.config_history.clone(),
            approvals: self.approvals.clone(),
            boundaries: self.boundaries.clone(),
            operator: self.operator.clone(),
            jobs: self
                .jobs
                .iter()
                .map(|job| {
                    (
                        (job.namespace().unwrap_or_default(), job.name_any()),
                        job.as_ref(),
                    )
                })
                .collect(),
            measurements: BTreeMap::new(),
            trust: self.trust.clone(),
            tenant_notifications: self.tenant_notifications.clone(),
            tiers: self.tiers.as_ref(),
            tenant_labels: &self.tenant_labels,
            now: self.now.clone(),
        }
    }
}

/// What `environment`'s spec.config renders to from `sources`, per application.
pub fn configs(
    environment: &Environment,
    sources: &dyn ConfigSources,
) -> BTreeMap<String, Result<RenderedConfig, ConfigError>> {
    let namespace = environment.namespace().unwrap_or_default();
    environment
        .spec
        .config
        .iter()
        .map(|c| (c.application.clone(), config::render(c, &namespace, sources)))
        .collect()
}
