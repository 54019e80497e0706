//! An in-memory cluster for the decision engine: `hoist render` runs the
//! same core on files with it, and the core's scenario tests use it to play
//! a promotion through, step by step, without an API server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::Environment;
use crate::core::config::{self, ConfigSources, RenderedConfig, SecretDigest};
use crate::core::environment::{self, Notice, Plan, Snapshot};
use crate::core::gates::approval::ApprovalTrust;
use crate::core::reasons::KubernetesReason;
use crate::core::supply_chain;
use crate::render::Manifests;

/// What the simulated Deployment controller does with a new template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutOutcome {
    /// Every replica updates and becomes available.
    Completes,
    /// The rollout stalls past its progress deadline.
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
    /// The operator's user, for the Promotions autoPromote creates.
    pub operator: Option<String>,
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
            operator: None,
            now,
        }
    }

    /// Decides one Environment, as its reconcile would.
    pub fn plan(&self, namespace: &str, name: &str) -> Option<Plan> {
        let environment = self
            .objects
            .environments
            .iter()
            .find(|e| key(*e) == (namespace.to_string(), name.to_string()))?;
        let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace);
        let sources = NamespaceSources {
            namespace,
            world: self,
        };
        let snapshot = Snapshot {
            environment,
            environments: self
                .objects
                .environments
                .iter()
                .filter(|e| in_namespace(e.namespace()))
                .map(|e| (e.name_any(), e))
                .collect(),
            artifacts: self
                .objects
                .artifacts
                .iter()
                .filter(|a| in_namespace(a.namespace()))
                .map(|a| (a.name_any(), a))
                .collect(),
            promotions: self
                .objects
                .promotions
                .iter()
                .filter(|p| in_namespace(p.namespace()) && p.spec.environment == name)
                .collect(),
            deployments: self.objects.deployments.iter().map(|d| (key(d), d)).collect(),
            namespaces: self
                .objects
                .namespaces
                .iter()
                .map(|n| (n.name_any(), n))
                .collect(),
            key_secrets: supply_chain::key_secret_names(environment)
                .into_iter()
                .filter_map(|secret| {
                    let found =
                        self.objects.secrets.iter().find(|s| {
                            s.namespace().as_deref() == Some(namespace) && s.name_any() == secret
                        })?;
                    Some((secret, supply_chain::secret_data(found)))
                })
                .collect(),
            configs: environment
                .spec
                .config
                .iter()
                .map(|c| (c.application.clone(), config::render(c, namespace, &sources)))
                .collect(),
            config_history: self
                .config_history
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .unwrap_or_default(),
            approvals: self.approvals.clone(),
            operator: self.operator.clone(),
            // Files run no Jobs and have no Prometheus: verification stays to do.
            jobs: BTreeMap::new(),
            measurements: BTreeMap::new(),
            now: self.now.clone(),
        };
        Some(environment::plan(&snapshot))
    }

    /// The supply-chain checks every Environment's plan asks for now, with
    /// the namespace of each.
    pub fn due_checks(&self) -> Vec<(String, supply_chain::DueCheck)> {
        self.environment_order()
            .into_iter()
            .filter_map(|(namespace, name)| Some((self.plan(&namespace, &name)?.checks, namespace)))
            .flat_map(|(checks, namespace)| checks.into_iter().map(move |c| (namespace.clone(), c)))
            .collect()
    }

    /// Carries out a plan the way the controller does; returns whether
    /// anything changed.
    pub fn apply(&mut self, namespace: &str, name: &str, plan: Plan) -> bool {
        let mut changed = false;
        let Some(environment) = self
            .objects
            .environments
            .iter_mut()
            .find(|e| key(*e) == (namespace.to_string(), name.to_string()))
        else {
            return false;
        };
        if environment.status.as_ref() != Some(&plan.status) {
            environment.status = Some(plan.status);
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
        for pin in &plan.pins {
            if let Some(deployment) = self
                .objects
                .deployments
                .iter_mut()
                .find(|d| key(*d) == (pin.namespace.clone(), pin.name.clone()))
                && !pin.is_satisfied_by(deployment)
            {
                pin.overlay(deployment);
                deployment.metadata.generation = Some(deployment.metadata.generation.unwrap_or(1) + 1);
                changed = true;
            }
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
        let kept: BTreeMap<String, RenderedConfig> = plan
            .config_history
            .into_iter()
            .map(|rendered| (rendered.hash.clone(), rendered))
            .collect();
        self.config_history.insert(format!("{namespace}/{name}"), kept);
        for mut promotion in plan.new_promotions {
            if !self.objects.promotions.iter().any(|p| key(p) == key(&promotion)) {
                promotion.metadata.creation_timestamp = Some(self.now.clone());
                promotion.metadata.generation = Some(1);
                self.objects.promotions.push(promotion);
                changed = true;
            }
        }
        let origin = format!("{namespace}/{name}");
        self.notices
            .extend(plan.notices.into_iter().map(|notice| (origin.clone(), notice)));
        changed
    }

    /// The simulated Deployment controller: every Deployment whose template
    /// changed since it last looked gets `outcome(deployment)`.
    pub fn roll_out(&mut self, outcome: impl Fn(&Deployment) -> RolloutOutcome) {
        for deployment in &mut self.objects.deployments {
            let generation = deployment.metadata.generation.unwrap_or(1);
            let observed = deployment
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if observed >= generation {
                continue;
            }
            let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            match outcome(deployment) {
                RolloutOutcome::Completes => {
                    deployment.status = Some(DeploymentStatus {
                        observed_generation: Some(generation),
                        replicas: Some(replicas),
                        updated_replicas: Some(replicas),
                        ready_replicas: Some(replicas),
                        available_replicas: Some(replicas),
                        ..Default::default()
                    })
                }
                RolloutOutcome::ExceedsDeadline => {
                    deployment.status = Some(DeploymentStatus {
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
                    })
                }
                RolloutOutcome::Stalls => {}
            }
        }
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

    /// Decides and applies every Environment, lets rollouts happen, and
    /// repeats until nothing changes (at most `rounds` times). Returns the
    /// number of rounds that changed something.
    pub fn settle(&mut self, rounds: usize, outcome: impl Fn(&Deployment) -> RolloutOutcome) -> usize {
        for round in 0..rounds {
            let mut changed = false;
            for (namespace, name) in self.environment_order() {
                if let Some(plan) = self.plan(&namespace, &name) {
                    changed |= self.apply(&namespace, &name, plan);
                }
            }
            self.roll_out(&outcome);
            if !changed {
                return round;
            }
        }
        rounds
    }
}
