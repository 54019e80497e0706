//! The decisions of one Environment: is its spec valid, which Promotion runs
//! next, what the target workloads and rendered ConfigMaps must look like,
//! how each rollout ends, and the resulting status and history.
//!
//! One Environment is decided as a whole, so the one-in-flight rule, the
//! creation-order queue and a consistent status follow from the snapshot
//! alone, whichever object changed.
//!
//! The decisions are split by concept, one module each:
//! - `validation`: the Environment's conditions (targets, upstream, configuration,
//!   whether approvals can be verified);
//! - `lifecycle`: each Promotion's way from Pending to a terminal phase;
//! - `release`: what each workload is pinned to, and how its rollout goes;
//! - `history`: what runs, its health, and the history of what ran;
//! - `config_maps`: rendered ConfigMaps and the configurations kept for rollbacks;
//! - `auto_promote`: the Promotions `spec.autoPromote` creates, by its policy;
//! - `settle`: the second look right after workloads were pinned.

mod auto_promote;
mod config_maps;
#[cfg(test)]
pub(crate) mod fixture;
mod history;
mod lifecycle;
mod release;
mod settle;
mod validation;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, Artifact, Environment, EnvironmentStatus, HistoryEntry, Measurement, Phase, Promotion,
    PromotionStatus, Target, WorkloadKind,
};
use crate::core::conditions;
use crate::core::config::{ConfigError, RenderedConfig};
use crate::core::gates::approval::ApprovalTrust;
use crate::core::gates::verification::{self, DueQuery};
use crate::core::kstatus;
use crate::core::notifications::{self, TenantNotification};
use crate::core::reasons::EventReason;
use crate::core::supply_chain::{self, DueCheck, Policy, PolicyProblem, TrustSources};
use crate::core::tenancy::{self, Boundaries};
use crate::core::tiers::Tiers;
use crate::core::workload::{Workload, WorkloadId, WorkloadPin};
use k8s_openapi::api::batch::v1::Job;

use release::{Release, release_of};
use validation::validate;

pub use auto_promote::{AUTO_PROMOTED_LABEL, AUTO_PROMOTION, AutoPromotions, Inputs, auto_promotions};
pub use config_maps::{RenderedConfigMap, config_map_name};
pub use history::rollback_target;
pub use lifecycle::ended;
pub use settle::settle;
pub use validation::{
    APPROVALS_VERIFIED, CONFIG_VALID, GATES_VALID, TARGETS_VALID, TENANT_BOUNDARIES, UPSTREAM_VALID,
};

/// The world as one Environment's reconcile sees it.
pub struct Snapshot<'a> {
    pub environment: &'a Environment,
    /// Every Environment of the namespace, by name (this one included).
    pub environments: BTreeMap<String, &'a Environment>,
    /// Every Artifact of the namespace, by name.
    pub artifacts: BTreeMap<String, &'a Artifact>,
    /// Every Promotion into this Environment.
    pub promotions: Vec<&'a Promotion>,
    /// Target workloads that exist.
    pub workloads: BTreeMap<WorkloadId, &'a Workload>,
    /// Workload kinds targeted that the cluster does not serve (an API
    /// the operator found missing, such as Argo Rollouts not installed).
    pub unserved: BTreeSet<WorkloadKind>,
    /// Target namespaces other than the Environment's own that exist.
    pub namespaces: BTreeMap<String, &'a Namespace>,
    /// What spec.config renders to now, per application.
    pub configs: BTreeMap<String, Result<RenderedConfig, ConfigError>>,
    /// Configurations shipped before, by hash (for rollbacks).
    pub config_history: BTreeMap<String, RenderedConfig>,
    /// Whether the admission policy vouches for approvers.
    pub approvals: ApprovalTrust,
    /// Whether the admission policy keeps the Environment's authors within
    /// their RBAC (see [`crate::core::tenancy`]).
    pub boundaries: Boundaries,
    /// The operator's own user, recorded as spec.requestedBy of the
    /// Promotions autoPromote creates, when known.
    pub operator: Option<String>,
    /// Verification Jobs of this Environment, by (namespace, name).
    pub jobs: BTreeMap<(String, String), &'a Job>,
    /// Measurements taken for this decision: Promotion → (step, measurement),
    /// the answers to an earlier [`Plan::queries`] at the same instant.
    pub measurements: BTreeMap<String, (String, Measurement)>,
    /// What the supply-chain policies take keys and trusted roots from.
    pub trust: TrustSources,
    /// The operator configuration's tenant-wide notifications.
    pub tenant_notifications: Vec<TenantNotification>,
    /// The operator configuration's tiers (`None`: not enforced).
    pub tiers: Option<&'a Tiers>,
    /// The labels of the Environment's namespace (its tier's among them).
    pub tenant_labels: &'a BTreeMap<String, String>,
    pub now: Time,
}

/// An Event worth telling a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The Promotion it is about, or `None` for the Environment itself.
    pub promotion: Option<String>,
    pub reason: EventReason,
    pub note: String,
}

/// Everything one reconcile of an Environment decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: EnvironmentStatus,
    /// The status every Promotion into the Environment should have.
    pub promotions: BTreeMap<String, PromotionStatus>,
    /// What Hoist's fields on each target workload must be.
    pub pins: Vec<WorkloadPin>,
    /// Rendered ConfigMaps in target namespaces.
    pub config_maps: Vec<RenderedConfigMap>,
    /// Configurations to keep for rollbacks (current, in flight, history).
    pub config_history: Vec<RenderedConfig>,
    /// Promotions to create (autoPromote).
    pub new_promotions: Vec<Promotion>,
    pub notices: Vec<Notice>,
    /// The earliest instant a waiting Promotion's gate changes by the clock
    /// alone (a soak ends, a change window opens or closes) or a
    /// verification measurement is due: decide again then.
    pub next_check: Option<Time>,
    /// Verification queries due now. The controller runs them and decides
    /// again with their measurements in [`Snapshot::measurements`].
    pub queries: Vec<DueQuery>,
    /// Supply-chain checks due now (signatures, provenance, scans of a
    /// digest). The controller makes them, records them in the Artifacts'
    /// statuses and decides again with the records.
    pub checks: Vec<DueCheck>,
    /// Verification Jobs to create (where they do not exist yet).
    pub jobs: Vec<Job>,
    /// Finished verification Jobs to delete, beyond those kept, by
    /// (namespace, name).
    pub delete_jobs: Vec<(String, String)>,
}

impl Plan {
    /// How long from `now` until [`Plan::next_check`], at least a
    /// millisecond; `None` without one.
    pub fn next_check_in(&self, now: &Time) -> Option<std::time::Duration> {
        let next = self.next_check.as_ref()?;
        let wait = now.0.duration_until(next.0);
        Some(
            std::time::Duration::try_from(wait)
                .unwrap_or_default()
                .max(std::time::Duration::from_millis(1)),
        )
    }

    /// A rollout is under way: worth looking at again soon, besides the
    /// watch events it causes.
    pub fn rolling_out(&self) -> bool {
        self.promotions
            .values()
            .any(|status| matches!(status.phase, Phase::Promoting | Phase::Verifying))
    }
}

/// The namespace of a target's workload.
pub fn target_namespace(environment: &Environment, target: &Target) -> String {
    target
        .workload()
        .and_then(|workload| workload.namespace)
        .unwrap_or_else(|| environment.namespace().unwrap_or_default())
}

/// The workload a target updates (`None` only for a target naming none,
/// which the schema refuses).
pub fn target_workload(environment: &Environment, target: &Target) -> Option<WorkloadId> {
    let workload = target.workload()?;
    Some(WorkloadId {
        kind: workload.kind,
        namespace: target_namespace(environment, target),
        name: workload.name,
    })
}

/// The state being built up while deciding.
struct Decision<'s, 'a> {
    snapshot: &'s Snapshot<'a>,
    tenant: String,
    applications: BTreeMap<String, ApplicationStatus>,
    history: Vec<HistoryEntry>,
    /// Application → (promotion, release) being rolled out.
    in_flight: BTreeMap<String, (String, Release)>,
    promotions: BTreeMap<String, PromotionStatus>,
    notices: Vec<Notice>,
    queries: Vec<DueQuery>,
    jobs: Vec<Job>,
    /// The Environment's supply-chain policies, keys read.
    policies: Vec<Result<Policy, PolicyProblem>>,
    checks: Vec<DueCheck>,
    /// When a supply-chain check falls due next.
    checks_next: Option<jiff::Timestamp>,
}

/// Decides everything about one Environment.
pub fn plan(snapshot: &Snapshot<'_>) -> Plan {
    let environment = snapshot.environment;
    let previous = environment.status.clone().unwrap_or_default();
    let validation = validate(snapshot);
    let mut decision = Decision {
        snapshot,
        tenant: environment.namespace().unwrap_or_default(),
        applications: previous
            .applications
            .iter()
            .map(|app| (app.application.clone(), app.clone()))
            .collect(),
        history: previous.history.clone(),
        in_flight: BTreeMap::new(),
        promotions: BTreeMap::new(),
        notices: Vec::new(),
        queries: Vec::new(),
        jobs: Vec::new(),
        policies: supply_chain::policies(environment, &snapshot.trust),
        checks: Vec::new(),
        checks_next: None,
    };

    let mut promotions = snapshot.promotions.clone();
    promotions.sort_by_key(|p| (p.metadata.creation_timestamp.clone(), p.name_any()));

    // Promotions already rolling out hold their application.
    for promotion in &promotions {
        let status = promotion.status.clone().unwrap_or_default();
        let ended = previous
            .history
            .iter()
            .any(|entry| entry.promotion == promotion.name_any() && entry.promoted_at == status.started_at);
        if matches!(status.phase, Phase::Promoting | Phase::Verifying)
            && !ended
            && let Some(artifact) = snapshot.artifacts.get(&promotion.spec.artifact)
        {
            let hash = status.config.as_ref().map(|config| config.to.clone());
            decision.in_flight.insert(
                artifact.spec.application.clone(),
                (promotion.name_any(), release_of(artifact, hash)),
            );
        }
    }
    for promotion in &promotions {
        decision.decide(promotion, &validation);
    }
    // Nothing new rolls out in an Environment its tier does not allow.
    if validation.tier.is_none() {
        decision.config_only_changes();
    }
    decision.track_health();

    let pins = decision.pins();
    let (config_maps, config_history) = decision.config_maps();
    let auto = auto_promote::auto_promotions(&auto_promote::Inputs {
        environment,
        environments: &snapshot.environments,
        artifacts: &snapshot.artifacts,
        promotions: &snapshot.promotions,
        running: &decision.applications,
        operator: snapshot.operator.as_deref(),
    });
    // A workload cluster's agent may not create Promotions on the hub: the
    // hub operator creates them from the same decision (see
    // `controller::agents`); the agent records the condition. Nothing is
    // promoted into an Environment its tier does not allow.
    let new_promotions = if environment.spec.cluster.is_some() || validation.tier.is_some() {
        Vec::new()
    } else {
        auto.promotions
    };
    let conditions = match auto.condition {
        Some(wanted) => conditions::set(
            &validation.conditions,
            wanted,
            environment.metadata.generation,
            &snapshot.now,
        ),
        None => validation
            .conditions
            .into_iter()
            .filter(|c| c.type_ != AUTO_PROMOTION)
            .collect(),
    };
    let Decision {
        applications,
        mut history,
        mut promotions,
        notices,
        queries,
        jobs,
        checks,
        checks_next,
        ..
    } = decision;
    history.truncate(
        usize::try_from(environment.spec.history_limit)
            .unwrap_or(20)
            .max(1),
    );
    // A waiting Promotion's gates are decided again; once one rolls out, only
    // its verification is. An instant already past is not a reason to wake.
    let next_check = promotions
        .values()
        .flat_map(|status| {
            status.gates.iter().filter(move |gate| match status.phase {
                Phase::Waiting => true,
                Phase::Verifying => gate.gate == crate::api::GateName::Verification,
                _ => false,
            })
        })
        .filter_map(|gate| gate.next_check.clone())
        .chain(checks_next.map(Time))
        .filter(|time| time.0 > snapshot.now.0)
        .min_by_key(|time| time.0);
    // Without the admission policy, nothing the Environment's authors may
    // not do themselves: no Job is created, no bearer token read and sent.
    // A release already being verified says what it waits for.
    let (jobs, queries) = match tenancy::held(environment, &snapshot.boundaries) {
        Some(held) => {
            for status in promotions.values_mut().filter(|s| s.phase == Phase::Verifying) {
                status.message = Some(format!("verification waits: {TENANT_BOUNDARIES}: {held}"));
            }
            (Vec::new(), Vec::new())
        }
        None => (jobs, queries),
    };
    // Deliveries are recorded in the same status write as the phase change
    // that makes them, so a restart cannot lose one.
    let subscriptions = notifications::subscriptions(environment, &snapshot.tenant_notifications);
    for promotion in &snapshot.promotions {
        if let Some(status) = promotions.get_mut(&promotion.name_any()) {
            let uid = promotion.uid().unwrap_or_default();
            notifications::record(status, &uid, &subscriptions, &snapshot.now);
        }
    }
    let running: Vec<String> = promotions
        .iter()
        .filter(|(_, status)| !status.phase.is_terminal())
        .map(|(name, _)| name.clone())
        .collect();
    let delete_jobs = verification::jobs_to_delete(snapshot.jobs.values().copied(), &running);
    let applications: Vec<ApplicationStatus> = applications.into_values().collect();
    let summary = (!applications.is_empty()).then(|| {
        applications
            .iter()
            .map(|app| format!("{}@{}", app.application, app.version))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let conditions = kstatus::set(
        &conditions,
        kstatus::of_environment(&validation.ready, &applications),
        environment.metadata.generation,
        &snapshot.now,
    );
    Plan {
        status: EnvironmentStatus {
            observed_generation: environment.metadata.generation,
            conditions,
            summary,
            applications,
            history,
        },
        promotions,
        pins,
        config_maps,
        config_history,
        new_promotions,
        notices,
        next_check,
        queries,
        checks,
        jobs,
        delete_jobs,
    }
}
