//! An in-memory cluster for the decision engine: `hoist render` runs the
//! steps of an Environment's reconcile ([`crate::reconcile`]) on files with
//! it, and the engine's scenario tests use it to play a promotion through,
//! step by step, without an API server.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetStatus, Deployment, DeploymentCondition, DeploymentStatus, StatefulSet,
    StatefulSetStatus,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{Artifact, Environment, GateName, GateState, Promotion};
use crate::core::config::{self, ConfigSources, RenderedConfig, SecretDigest};
use crate::core::environment::{self, Notice, Plan};
use crate::core::gates::approval::ApprovalTrust;
use crate::core::gates::verification::{self, DueQuery};
use crate::core::reasons::KubernetesReason;
use crate::core::supply_chain::{self, DueCheck};
use crate::core::tenancy::Boundaries;
use crate::core::workload::{ArgoRollout, ArgoRolloutStatus, RolloutCondition, Workload, WorkloadId};
use crate::reconcile::{self, Dereferenced, Measurements, Seam};
use crate::render::Manifests;

/// What a simulated workload controller does with a new template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutOutcome {
    /// Every replica updates and becomes available.
    Completes,
    /// The rollout stalls past its progress deadline: a Deployment's or a
    /// Rollout's controller reports it; a StatefulSet or DaemonSet reports
    /// the new generation observed and nothing updated (their deadline is
    /// the Environment's spec.rollout.timeout, which the core judges).
    ExceedsDeadline,
    /// Nothing happens (status unchanged).
    Stalls,
}

/// Objects of every kind Hoist reads, held in memory.
#[derive(Debug, Clone)]
pub struct World {
    pub objects: Manifests,
    /// Configurations kept for rollbacks, per Environment (`namespace/name`).
    pub config_history: BTreeMap<String, BTreeMap<String, RenderedConfig>>,
    /// Events the engine asked for, in order, with the Environment they came from.
    pub notices: Vec<(String, Notice)>,
    /// Whether an admission policy vouches for approvers: on files nothing
    /// does, so a new World's approvals are unverified.
    pub approvals: ApprovalTrust,
    /// Whether Job steps and Secret references are acted on: on files
    /// nothing checked their authors, and whoever runs `hoist render` reads
    /// the Secrets in them with their own rights and runs no Job.
    pub boundaries: Boundaries,
    /// The operator's user, for the Promotions autoPromote creates.
    pub operator: Option<String>,
    /// Promotions whose verification a plan left to the cluster, per
    /// Environment (`namespace/name`): files run no Jobs and query no
    /// Prometheus.
    pub left_to_cluster: BTreeMap<String, BTreeSet<String>>,
    pub now: Time,
}

/// Why approvals are not verified on files.
pub const FILES_UNVERIFIED: &str =
    "hoist render reads files, and no API server authenticated who wrote the approvals in them";

struct NamespaceSources<'a> {
    namespace: &'a str,
    world: &'a World,
}

impl ConfigSources for NamespaceSources<'_> {
    fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.world
            .objects
            .config_maps
            .iter()
            .find(|cm| cm.namespace().as_deref() == Some(self.namespace) && cm.name_any() == name)
    }
    fn secret(&self, name: &str) -> Option<SecretDigest> {
        self.world
            .objects
            .secrets
            .iter()
            .find(|s| s.namespace().as_deref() == Some(self.namespace) && s.name_any() == name)
            .map(config::secret_digest)
    }
    fn secrets_read(&self) -> bool {
        true
    }
}

fn key<K: kube::Resource>(object: &K) -> (String, String) {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

impl World {
    /// A world at time `now` with no objects.
    pub fn new(now: Time) -> Self {
        Self {
            objects: Manifests::default(),
            config_history: BTreeMap::new(),
            notices: Vec::new(),
            approvals: ApprovalTrust::Unverified {
                policy: crate::core::gates::approval::POLICY.into(),
                reason: FILES_UNVERIFIED.into(),
            },
            boundaries: Boundaries::Trusted,
            operator: None,
            left_to_cluster: BTreeMap::new(),
            now,
        }
    }

    fn environment(&self, namespace: &str, name: &str) -> Option<&Environment> {
        self.objects
            .environments
            .iter()
            .find(|e| key(*e) == (namespace.to_string(), name.to_string()))
    }

    /// Everything the decision about `environment` takes: the objects of
    /// its namespace, every workload and Namespace, and the
    /// configurations kept for it.
    fn dereference(&self, environment: Arc<Environment>) -> Dereferenced {
        let namespace = environment.namespace().unwrap_or_default();
        let name = environment.name_any();
        let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
        let sources = NamespaceSources {
            namespace: &namespace,
            world: self,
        };
        Dereferenced {
            environments: self
                .objects
                .environments
                .iter()
                .filter(|e| in_namespace(e.namespace()))
                .map(|e| Arc::new(e.clone()))
                .collect(),
            artifacts: self
                .objects
                .artifacts
                .iter()
                .filter(|a| in_namespace(a.namespace()))
                .map(|a| (a.name_any(), Arc::new(a.clone())))
                .collect(),
            promotions: self
                .objects
                .promotions
                .iter()
                .filter(|p| in_namespace(p.namespace()) && p.spec.environment == name)
                .map(|p| Arc::new(p.clone()))
                .collect(),
            workloads: self
                .objects
                .workloads()
                .into_iter()
                .map(|workload| (workload.id(), workload))
                .collect(),
            unserved: BTreeSet::new(),
            namespaces: self
                .objects
                .namespaces
                .iter()
                .map(|n| (n.name_any(), n.clone()))
                .collect(),
            trust: supply_chain::TrustSources {
                secrets: supply_chain::key_secret_names(&environment)
                    .into_iter()
                    .filter_map(|secret| {
                        let found = self.objects.secrets.iter().find(|s| {
                            s.namespace().as_deref() == Some(namespace.as_str()) && s.name_any() == secret
                        })?;
                        Some((secret, supply_chain::secret_data(found)))
                    })
                    .collect(),
                config_maps: supply_chain::root_config_map_names(&environment)
                    .into_iter()
                    .filter_map(|name| {
                        let found = sources.config_map(&name)?;
                        Some((name, supply_chain::config_map_data(found)))
                    })
                    .collect(),
                // Files name their trusted roots in ConfigMaps or Secrets.
                default_root: None,
            },
            configs: reconcile::configs(&environment, &sources),
            config_history: self
                .config_history
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .unwrap_or_default(),
            approvals: self.approvals.clone(),
            boundaries: self.boundaries.clone(),
            operator: self.operator.clone(),
            // Files run no Jobs: what verification asks of them is left to
            // the cluster (see `carry_out`).
            jobs: Vec::new(),
            // The operator configuration is the cluster's, not the files':
            // no tenant-wide notifications, no tiers.
            tenant_notifications: Vec::new(),
            tiers: None,
            tenant_labels: BTreeMap::new(),
            now: self.now.clone(),
            environment,
        }
    }

    /// Decides one Environment, as its reconcile would before measuring
    /// and checking anything.
    pub fn plan(&self, namespace: &str, name: &str) -> Option<Plan> {
        let environment = Arc::new(self.environment(namespace, name)?.clone());
        Some(environment::plan(&self.dereference(environment).snapshot()))
    }

    /// Carries out a plan the way the controller's apply and status steps
    /// do; returns whether anything changed.
    pub fn apply(&mut self, namespace: &str, name: &str, plan: Plan) -> bool {
        if self.environment(namespace, name).is_none() {
            return false;
        }
        let (carried_out, _) = self.carry_out(namespace, name, &plan);
        let recorded = self.record(namespace, name, &plan);
        carried_out || recorded
    }

    /// The apply step: workload pins, rendered ConfigMaps, the
    /// configurations kept, new Promotions, and the verification left to
    /// the cluster. Returns whether anything changed and the workloads
    /// pinned.
    fn carry_out(&mut self, namespace: &str, name: &str, plan: &Plan) -> (bool, Vec<WorkloadId>) {
        let mut changed = false;
        let mut pinned = Vec::new();
        for pin in &plan.pins {
            let Some(mut workload) = self.objects.workload(&pin.id()) else {
                continue;
            };
            if pin.is_satisfied_by(&workload) {
                continue;
            }
            pin.overlay(&mut workload);
            // The API server bumps the generation of a changed template.
            let metadata = workload.metadata_mut();
            metadata.generation = Some(metadata.generation.unwrap_or(1) + 1);
            pinned.push(workload.id());
            self.objects.replace_workload(workload);
            changed = true;
        }
        for rendered in &plan.config_maps {
            let config_map = rendered.object(name, namespace);
            match self
                .objects
                .config_maps
                .iter_mut()
                .find(|cm| key(*cm) == key(&config_map))
            {
                Some(existing) if rendered.is_satisfied_by(existing, name) => {}
                Some(existing) => {
                    *existing = config_map;
                    changed = true;
                }
                None => {
                    self.objects.config_maps.push(config_map);
                    changed = true;
                }
            }
        }
        let origin = format!("{namespace}/{name}");
        let kept: BTreeMap<String, RenderedConfig> = plan
            .config_history
            .iter()
            .map(|rendered| (rendered.hash.clone(), rendered.clone()))
            .collect();
        self.config_history.insert(origin.clone(), kept);
        for promotion in &plan.new_promotions {
            if !self.objects.promotions.iter().any(|p| key(p) == key(promotion)) {
                let mut promotion = promotion.clone();
                promotion.metadata.creation_timestamp = Some(self.now.clone());
                promotion.metadata.generation = Some(1);
                self.objects.promotions.push(promotion);
                changed = true;
            }
        }
        // A verification Job to run or a measurement to take, now or later.
        let left = plan
            .jobs
            .iter()
            .filter_map(|job| job.annotations().get(verification::ANNOTATION_PROMOTION).cloned())
            .chain(
                plan.promotions
                    .iter()
                    .filter(|(_, status)| {
                        status.gates.iter().any(|gate| {
                            gate.gate == GateName::Verification
                                && gate.state == GateState::Pending
                                && gate.next_check.is_some()
                        })
                    })
                    .map(|(promotion, _)| promotion.clone()),
            )
            .collect();
        self.left_to_cluster.insert(origin, left);
        (changed, pinned)
    }

    /// The status step: the Environment's and its Promotions' statuses,
    /// then the notices. Returns whether a status changed.
    fn record(&mut self, namespace: &str, name: &str, plan: &Plan) -> bool {
        let mut changed = false;
        if let Some(environment) = self
            .objects
            .environments
            .iter_mut()
            .find(|e| key(*e) == (namespace.to_string(), name.to_string()))
            && environment.status.as_ref() != Some(&plan.status)
        {
            environment.status = Some(plan.status.clone());
            changed = true;
        }
        for promotion in self
            .objects
            .promotions
            .iter_mut()
            .filter(|p| p.namespace().as_deref() == Some(namespace))
        {
            if let Some(status) = plan.promotions.get(&promotion.name_any())
                && promotion.status.as_ref() != Some(status)
            {
                promotion.status = Some(status.clone());
                changed = true;
            }
        }
        let origin = format!("{namespace}/{name}");
        self.notices
            .extend(plan.notices.iter().map(|notice| (origin.clone(), notice.clone())));
        changed
    }

    /// Whether `promotion`'s verification was left to the cluster by the
    /// last plan of its Environment.
    pub fn left_to_cluster(&self, promotion: &Promotion) -> bool {
        let environment = format!(
            "{}/{}",
            promotion.namespace().unwrap_or_default(),
            promotion.spec.environment
        );
        self.left_to_cluster
            .get(&environment)
            .is_some_and(|left| left.contains(&promotion.name_any()))
    }

    /// The simulated workload controllers: every workload whose template
    /// changed since its controller last looked gets `outcome(workload)`.
    /// Returns whether a workload's status changed (which, on a cluster, is
    /// an event that reconciles its Environment again).
    pub fn roll_out(&mut self, outcome: impl Fn(&Workload) -> RolloutOutcome) -> bool {
        let mut changed = false;
        for mut workload in self.objects.workloads() {
            if roll_out(&mut workload, &outcome) {
                self.objects.replace_workload(workload);
                changed = true;
            }
        }
        changed
    }

    /// Environments of `namespace` with every upstream before its downstream.
    pub fn environment_order(&self) -> Vec<(String, String)> {
        let mut ordered: Vec<(String, String)> = Vec::new();
        let mut pending: Vec<&Environment> = self.objects.environments.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|environment| {
                let namespace = environment.namespace().unwrap_or_default();
                let ready = environment.spec.upstream.iter().all(|upstream| {
                    ordered.contains(&(namespace.clone(), upstream.clone()))
                        || !self
                            .objects
                            .environments
                            .iter()
                            .any(|e| key(e) == (namespace.clone(), upstream.clone()))
                });
                if ready {
                    ordered.push(key(*environment));
                }
                !ready
            });
            if pending.len() == before {
                // A cycle: the engine reports it; decide the rest in name order.
                ordered.extend(pending.drain(..).map(key));
            }
        }
        ordered
    }

    /// Reconciles every Environment, lets rollouts happen, and repeats
    /// until nothing changes (at most `rounds` times). Supply-chain checks
    /// a plan asks for stay due: nothing here reads what is attached to a
    /// digest. Returns the number of rounds that changed something.
    pub async fn settle(&mut self, rounds: usize, outcome: impl Fn(&Workload) -> RolloutOutcome) -> usize {
        let Ok(rounds) = self.settle_checking(rounds, outcome, &mut Unchecked).await;
        rounds
    }

    /// [`World::settle`], making the supply-chain checks the plans ask for
    /// with `supply_chain`.
    pub(crate) async fn settle_checking<C: SupplyChain>(
        &mut self,
        rounds: usize,
        outcome: impl Fn(&Workload) -> RolloutOutcome,
        supply_chain: &mut C,
    ) -> Result<usize, C::Error> {
        for round in 0..rounds {
            let mut changed = false;
            for (namespace, name) in self.environment_order() {
                let Some(environment) = self.environment(&namespace, &name) else {
                    continue;
                };
                let environment = Arc::new(environment.clone());
                let mut settling = Settling {
                    world: self,
                    outcome: &outcome,
                    supply_chain: &mut *supply_chain,
                    changed: false,
                };
                reconcile::reconcile(&mut settling, environment).await?;
                changed |= settling.changed;
            }
            // A workload controller's answer reconciles again, as its
            // status event does on a cluster.
            let rolled = self.roll_out(&outcome);
            if !changed && !rolled {
                return Ok(round);
            }
        }
        Ok(rounds)
    }
}

/// The simulated controller of one workload's kind: if its template
/// changed since it last looked, it gets `outcome(workload)`; whether its
/// status changed. A CronJob has nothing to roll: its next Job runs the
/// pinned template.
fn roll_out(workload: &mut Workload, outcome: &dyn Fn(&Workload) -> RolloutOutcome) -> bool {
    let generation = workload.generation().max(1);
    let observed = match &*workload {
        Workload::Deployment(object) => object.status.as_ref().and_then(|s| s.observed_generation),
        Workload::StatefulSet(object) => object.status.as_ref().and_then(|s| s.observed_generation),
        Workload::DaemonSet(object) => object.status.as_ref().and_then(|s| s.observed_generation),
        Workload::CronJob(_) => return false,
        // Argo Rollouts writes the generation it observed as a string.
        Workload::Rollout(object) => object
            .status
            .as_ref()
            .and_then(|s| s.observed_generation.as_deref())
            .and_then(|observed| observed.parse().ok()),
    };
    if observed.unwrap_or(0) >= generation {
        return false;
    }
    let outcome = match outcome(workload) {
        RolloutOutcome::Stalls => return false,
        outcome => outcome,
    };
    let completes = outcome == RolloutOutcome::Completes;
    match workload {
        Workload::Deployment(object) => roll_out_deployment(object, generation, completes),
        Workload::StatefulSet(object) => roll_out_stateful_set(object, generation, completes),
        Workload::DaemonSet(object) => roll_out_daemon_set(object, generation, completes),
        Workload::Rollout(object) => roll_out_rollout(object, generation, completes),
        Workload::CronJob(_) => return false,
    }
    true
}

/// Every replica updated and available, or one updated and the progress
/// deadline exceeded.
fn roll_out_deployment(deployment: &mut Deployment, generation: i64, completes: bool) {
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    deployment.status = Some(match completes {
        true => DeploymentStatus {
            observed_generation: Some(generation),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            ..Default::default()
        },
        false => DeploymentStatus {
            observed_generation: Some(generation),
            replicas: Some(replicas),
            updated_replicas: Some(1.min(replicas)),
            unavailable_replicas: Some(replicas),
            conditions: Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some(KubernetesReason::ProgressDeadlineExceeded.to_string()),
                message: Some(format!(
                    "ReplicaSet of {} has timed out progressing.",
                    deployment.metadata.name.clone().unwrap_or_default()
                )),
                ..Default::default()
            }]),
            ..Default::default()
        },
    });
}

/// The ordinals at and above the partition run the new revision and are
/// ready (all of them without a partition, and then the current revision
/// is the new one); or the new generation observed and nothing updated.
fn roll_out_stateful_set(stateful_set: &mut StatefulSet, generation: i64, completes: bool) {
    let spec = stateful_set.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|strategy| strategy.rolling_update.as_ref())
        .and_then(|rolling| rolling.partition)
        .unwrap_or(0)
        .clamp(0, replicas);
    let name = stateful_set.metadata.name.clone().unwrap_or_default();
    let previous = stateful_set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone());
    let revision = format!("{name}-{generation}");
    let updated = if completes { replicas - partition } else { 0 };
    let current_revision = match updated == replicas {
        true => Some(revision.clone()),
        false => previous,
    };
    stateful_set.status = Some(StatefulSetStatus {
        observed_generation: Some(generation),
        replicas,
        ready_replicas: Some(replicas),
        available_replicas: Some(replicas),
        current_replicas: Some(replicas - updated),
        updated_replicas: Some(updated),
        current_revision,
        update_revision: Some(revision),
        ..Default::default()
    });
}

/// Every node that should run the pod runs the new one, available (one
/// node when the files say nothing of nodes); or the new generation
/// observed and no node updated.
fn roll_out_daemon_set(daemon_set: &mut DaemonSet, generation: i64, completes: bool) {
    let desired = daemon_set
        .status
        .as_ref()
        .map(|s| s.desired_number_scheduled)
        .unwrap_or(1);
    let updated = if completes { desired } else { 0 };
    daemon_set.status = Some(DaemonSetStatus {
        observed_generation: Some(generation),
        desired_number_scheduled: desired,
        current_number_scheduled: desired,
        number_misscheduled: 0,
        number_ready: updated,
        updated_number_scheduled: Some(updated),
        number_available: Some(updated),
        ..Default::default()
    });
}

/// Healthy with every replica updated and available, or Degraded by its
/// progress deadline, as the Argo Rollouts controller reports them.
fn roll_out_rollout(rollout: &mut ArgoRollout, generation: i64, completes: bool) {
    let replicas = rollout.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let deadline = format!("ReplicaSet \"{name}-{generation}\" has timed out progressing.");
    rollout.status = Some(match completes {
        true => ArgoRolloutStatus {
            observed_generation: Some(generation.to_string()),
            phase: Some("Healthy".into()),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            ..Default::default()
        },
        false => ArgoRolloutStatus {
            observed_generation: Some(generation.to_string()),
            phase: Some("Degraded".into()),
            message: Some(format!(
                "{}: {deadline}",
                KubernetesReason::ProgressDeadlineExceeded
            )),
            replicas: Some(replicas),
            updated_replicas: Some(1.min(replicas)),
            conditions: vec![RolloutCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some(KubernetesReason::ProgressDeadlineExceeded.to_string()),
                message: Some(deadline),
            }],
            ..Default::default()
        },
    });
}

/// How a World makes the supply-chain checks its plans ask for.
pub(crate) trait SupplyChain {
    type Error;
    /// Makes `checks` of Artifacts of `namespace` in `world` and records
    /// them on the Artifacts; returns each Artifact that gained records,
    /// as recorded.
    async fn check(
        &mut self,
        world: &mut World,
        namespace: &str,
        checks: &[DueCheck],
    ) -> Result<BTreeMap<String, Artifact>, Self::Error>;
}

/// Makes no checks (a World on its own reads no attachments): they stay due.
struct Unchecked;

impl SupplyChain for Unchecked {
    type Error = Infallible;
    async fn check(
        &mut self,
        _: &mut World,
        _: &str,
        _: &[DueCheck],
    ) -> Result<BTreeMap<String, Artifact>, Infallible> {
        Ok(BTreeMap::new())
    }
}

/// One Environment's reconcile in a World settling: whether it changed
/// anything, and the rollouts its pins get.
struct Settling<'w, C> {
    world: &'w mut World,
    outcome: &'w dyn Fn(&Workload) -> RolloutOutcome,
    supply_chain: &'w mut C,
    changed: bool,
}

impl<C: SupplyChain> Seam for Settling<'_, C> {
    type Error = C::Error;
    type Pinned = WorkloadId;

    async fn dereference(&mut self, environment: Arc<Environment>) -> Result<Dereferenced, C::Error> {
        Ok(self.world.dereference(environment))
    }

    /// Files have no Prometheus: nothing is measured, and the queries are
    /// left to the cluster.
    async fn measure(&mut self, _: &str, _: &[DueQuery], _: Timestamp) -> Measurements {
        Measurements::new()
    }

    async fn check(
        &mut self,
        namespace: &str,
        checks: &[DueCheck],
        _: &BTreeMap<String, Arc<Artifact>>,
    ) -> Result<BTreeMap<String, Artifact>, C::Error> {
        let recorded = self.supply_chain.check(self.world, namespace, checks).await?;
        self.changed |= !recorded.is_empty();
        Ok(recorded)
    }

    async fn apply(&mut self, dereferenced: &Dereferenced, plan: &Plan) -> Result<Vec<WorkloadId>, C::Error> {
        let (namespace, name) = key(dereferenced.environment.as_ref());
        let (changed, pinned) = self.world.carry_out(&namespace, &name, plan);
        self.changed |= changed;
        Ok(pinned)
    }

    /// The pinned workloads roll out as `outcome` says, at once.
    async fn observe_after_pin(
        &mut self,
        dereferenced: &Dereferenced,
        pinned: Vec<WorkloadId>,
    ) -> BTreeMap<WorkloadId, Workload> {
        for id in &pinned {
            if let Some(mut workload) = self.world.objects.workload(id)
                && roll_out(&mut workload, self.outcome)
            {
                self.world.objects.replace_workload(workload);
            }
        }
        self.world
            .objects
            .workloads()
            .into_iter()
            .map(|workload| (workload.id(), workload))
            .filter(|(id, _)| dereferenced.workloads.contains_key(id))
            .collect()
    }

    async fn write_status(&mut self, dereferenced: &Dereferenced, plan: &Plan) -> Result<(), C::Error> {
        let (namespace, name) = key(dereferenced.environment.as_ref());
        self.changed |= self.world.record(&namespace, &name, plan);
        Ok(())
    }
}
