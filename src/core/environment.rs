//! The decisions of one Environment: is its spec valid, which Promotion runs
//! next, what the target Deployments and rendered ConfigMaps must look like,
//! how each rollout ends, and the resulting status and history.
//!
//! One Environment is decided as a whole, so the one-in-flight rule, the
//! creation-order queue and a consistent status follow from the snapshot
//! alone, whichever object changed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, Artifact, Change, ComponentDigest, ConfigChange, Environment, EnvironmentStatus,
    GateState, GateStatus, Health, HistoryEntry, Phase, Promotion, PromotionSpec, PromotionStatus, Target,
};
use crate::core::conditions::{self, Wanted};
use crate::core::config::{ConfigError, RenderedConfig};
use crate::core::deployment::{
    ANNOTATION_CONFIG_HASH, DeploymentPin, LABEL_APPLICATION, LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT,
    Rollout, rollout,
};
use crate::core::gates::{self, GateInput};
use crate::core::version;

/// Condition types of an Environment.
pub const TARGETS_VALID: &str = "TargetsValid";
pub const UPSTREAM_VALID: &str = "UpstreamValid";
pub const CONFIG_VALID: &str = "ConfigValid";
const ENVIRONMENT_CONDITIONS: &[&str] = &[
    crate::api::CONDITION_READY,
    TARGETS_VALID,
    UPSTREAM_VALID,
    CONFIG_VALID,
];

/// The world as one Environment's reconcile sees it.
pub struct Snapshot<'a> {
    pub environment: &'a Environment,
    /// Every Environment of the namespace, by name (this one included).
    pub environments: BTreeMap<String, &'a Environment>,
    /// Every Artifact of the namespace, by name.
    pub artifacts: BTreeMap<String, &'a Artifact>,
    /// Every Promotion into this Environment.
    pub promotions: Vec<&'a Promotion>,
    /// Target Deployments that exist, by (namespace, name).
    pub deployments: BTreeMap<(String, String), &'a Deployment>,
    /// Target namespaces other than the Environment's own that exist.
    pub namespaces: BTreeMap<String, &'a Namespace>,
    /// What spec.config renders to now, per application.
    pub configs: BTreeMap<String, Result<RenderedConfig, ConfigError>>,
    /// Configurations shipped before, by hash (for rollbacks).
    pub config_history: BTreeMap<String, RenderedConfig>,
    pub now: Time,
}

/// A ConfigMap Hoist renders into a target namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfigMap {
    pub namespace: String,
    pub name: String,
    pub application: String,
    pub config: RenderedConfig,
}

impl RenderedConfigMap {
    /// The ConfigMap as Hoist writes it for `environment` of `tenant`.
    pub fn object(&self, environment: &str, tenant: &str) -> ConfigMap {
        let mut config_map = ConfigMap {
            data: Some(self.config.data.clone()),
            binary_data: (!self.config.binary_data.is_empty()).then(|| self.config.binary_data.clone()),
            ..Default::default()
        };
        config_map.metadata.name = Some(self.name.clone());
        config_map.metadata.namespace = Some(self.namespace.clone());
        config_map.metadata.labels = Some(
            [
                (LABEL_ENVIRONMENT, environment),
                (LABEL_TENANT, tenant),
                (LABEL_ROLE, "config"),
                (LABEL_APPLICATION, self.application.as_str()),
            ]
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .into(),
        );
        config_map.metadata.annotations =
            Some([(ANNOTATION_CONFIG_HASH.to_string(), self.config.hash.clone())].into());
        config_map
    }

    /// Whether `live` already holds this configuration (the API server omits
    /// empty maps, so they compare as empty).
    pub fn is_satisfied_by(&self, live: &ConfigMap, environment: &str) -> bool {
        live.data.clone().unwrap_or_default() == self.config.data
            && live.binary_data.clone().unwrap_or_default() == self.config.binary_data
            && live
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_ENVIRONMENT))
                .map(String::as_str)
                == Some(environment)
    }
}

/// An Event worth telling a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The Promotion it is about, or `None` for the Environment itself.
    pub promotion: Option<String>,
    pub warning: bool,
    /// PascalCase.
    pub reason: &'static str,
    pub note: String,
}

/// Everything one reconcile of an Environment decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: EnvironmentStatus,
    /// The status every Promotion into the Environment should have.
    pub promotions: BTreeMap<String, PromotionStatus>,
    /// What Hoist's fields on each target Deployment must be.
    pub pins: Vec<DeploymentPin>,
    /// Rendered ConfigMaps in target namespaces.
    pub config_maps: Vec<RenderedConfigMap>,
    /// Configurations to keep for rollbacks (current, in flight, history).
    pub config_history: Vec<RenderedConfig>,
    /// Promotions to create (autoPromote).
    pub new_promotions: Vec<Promotion>,
    pub notices: Vec<Notice>,
}

/// The release an application runs, or is being moved to.
#[derive(Debug, Clone)]
struct Release {
    artifact: String,
    images: Vec<ComponentDigest>,
    config_hash: Option<String>,
}

/// The name of the rendered ConfigMap of `application`.
pub fn config_map_name(environment: &Environment, application: &str) -> String {
    environment
        .spec
        .config
        .iter()
        .find(|config| config.application == application)
        .and_then(|config| config.config_map_name.clone())
        .unwrap_or_else(|| format!("{application}-config"))
}

/// The namespace of a target's Deployment.
pub fn target_namespace(environment: &Environment, target: &Target) -> String {
    target
        .deployment
        .namespace
        .clone()
        .unwrap_or_else(|| environment.namespace().unwrap_or_default())
}

struct Validation {
    conditions: Vec<Condition>,
    /// Applications with a target in a namespace not opted in for this tenant.
    forbidden: BTreeMap<String, String>,
    /// Applications whose targets are not all usable yet, with why.
    not_ready: BTreeMap<String, String>,
}

fn validate(snapshot: &Snapshot<'_>) -> Validation {
    let environment = snapshot.environment;
    let own_namespace = environment.namespace().unwrap_or_default();
    let mut target_problems = Vec::new();
    let mut forbidden = BTreeMap::new();
    let mut not_ready: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for (index, target) in environment.spec.targets.iter().enumerate() {
        let namespace = target_namespace(environment, target);
        let field = format!("spec.targets[{index}]");
        if namespace != own_namespace {
            match snapshot.namespaces.get(&namespace) {
                None => {
                    let problem = format!("{field}.deployment.namespace: namespace {namespace} not found");
                    not_ready
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                    continue;
                }
                Some(ns) if ns.labels().get(LABEL_TENANT) != Some(&own_namespace) => {
                    let problem = format!(
                        "{field}.deployment.namespace: namespace {namespace} is not opted in for tenant {own_namespace}; \
                         a cluster admin must label it {LABEL_TENANT}={own_namespace}"
                    );
                    forbidden
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                    continue;
                }
                Some(_) => {}
            }
        }
        let key = (
            namespace.clone(),
            target.deployment.name.clone(),
            target.container.clone(),
        );
        if let Some(previous) = seen.insert(key, index) {
            target_problems.push(format!(
                "{field}: container {} of Deployment {namespace}/{} is already targeted by spec.targets[{previous}]",
                target.container, target.deployment.name
            ));
            continue;
        }
        match snapshot
            .deployments
            .get(&(namespace.clone(), target.deployment.name.clone()))
        {
            None => {
                let problem = format!(
                    "{field}.deployment: Deployment {namespace}/{} not found",
                    target.deployment.name
                );
                not_ready
                    .entry(target.application.clone())
                    .or_insert(problem.clone());
                target_problems.push(problem);
            }
            Some(deployment) => {
                let has_container = deployment
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.template.spec.as_ref())
                    .is_some_and(|pod| pod.containers.iter().any(|c| c.name == target.container));
                if !has_container {
                    let problem = format!(
                        "{field}.container: Deployment {namespace}/{} has no container {}",
                        target.deployment.name, target.container
                    );
                    not_ready
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                }
            }
        }
    }

    let mut upstream_problems = Vec::new();
    let name = environment.name_any();
    for (index, upstream) in environment.spec.upstream.iter().enumerate() {
        if !snapshot.environments.contains_key(upstream) {
            upstream_problems.push(format!(
                "spec.upstream[{index}]: Environment {upstream} not found"
            ));
        }
    }
    if let Some(cycle) = find_cycle(&name, &snapshot.environments) {
        upstream_problems.push(format!("spec.upstream: cycle {}", cycle.join(" → ")));
    }

    let mut config_problems = Vec::new();
    for (application, rendered) in &snapshot.configs {
        if let Err(error) = rendered {
            config_problems.push(error.to_string());
            not_ready.entry(application.clone()).or_insert(error.to_string());
        }
    }

    let generation = environment.metadata.generation;
    let verdict = |type_: &'static str, problems: &[String], ok: &str, reason: &'static str| Wanted {
        type_,
        status: problems.is_empty(),
        reason: if problems.is_empty() { "Valid" } else { reason },
        message: if problems.is_empty() {
            ok.to_string()
        } else {
            problems.join("; ")
        },
    };
    let all: Vec<&String> = target_problems
        .iter()
        .chain(&upstream_problems)
        .chain(&config_problems)
        .collect();
    let ready = Wanted {
        type_: crate::api::CONDITION_READY,
        status: all.is_empty(),
        reason: if all.is_empty() { "Ready" } else { "InvalidSpec" },
        message: if all.is_empty() {
            "targets, upstream and configuration are valid".to_string()
        } else {
            all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
        },
    };
    let previous = environment
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions = conditions::set_all(
        &previous,
        vec![
            ready,
            verdict(
                TARGETS_VALID,
                &target_problems,
                "every target Deployment and container exists",
                "InvalidTarget",
            ),
            verdict(
                UPSTREAM_VALID,
                &upstream_problems,
                "upstream environments exist, without cycles",
                "InvalidUpstream",
            ),
            verdict(
                CONFIG_VALID,
                &config_problems,
                "configuration renders",
                "InvalidConfig",
            ),
        ],
        ENVIRONMENT_CONDITIONS,
        generation,
        &snapshot.now,
    );
    Validation {
        conditions,
        forbidden,
        not_ready,
    }
}

/// A cycle through `start` along spec.upstream, as environment names.
fn find_cycle(start: &str, environments: &BTreeMap<String, &Environment>) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        start: &str,
        environments: &BTreeMap<String, &Environment>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> bool {
        let Some(environment) = environments.get(name) else {
            return false;
        };
        for upstream in &environment.spec.upstream {
            if upstream == start {
                path.push(upstream.clone());
                return true;
            }
            if done.insert(upstream.clone()) {
                path.push(upstream.clone());
                if visit(upstream, start, environments, path, done) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut done = BTreeSet::new();
    visit(start, start, environments, &mut path, &mut done).then_some(path)
}

/// Pinned image references of an Artifact's resolved components.
fn release_of(artifact: &Artifact, config_hash: Option<String>) -> Release {
    let images = artifact
        .status
        .as_ref()
        .map(|status| {
            status
                .images
                .iter()
                .map(|image| ComponentDigest {
                    component: image.component.clone(),
                    digest: image.digest.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Release {
        artifact: artifact.name_any(),
        images,
        config_hash,
    }
}

/// The digest-pinned reference of `component` in a release.
fn pinned_image(
    artifacts: &BTreeMap<String, &Artifact>,
    release: &Release,
    component: &str,
) -> Option<String> {
    let digest = &release
        .images
        .iter()
        .find(|image| image.component == component)?
        .digest;
    let artifact = artifacts.get(&release.artifact)?;
    let image = &artifact
        .spec
        .images
        .iter()
        .find(|image| image.component == component)?
        .image;
    crate::registry::pinned_reference(image, digest).ok()
}

/// Applies a pin plan for one application's release to its targets.
fn pins_for(
    snapshot: &Snapshot<'_>,
    application: &str,
    release: &Release,
    tenant: &str,
) -> Vec<DeploymentPin> {
    let environment = snapshot.environment;
    let mut pins: BTreeMap<(String, String), DeploymentPin> = BTreeMap::new();
    for target in environment
        .spec
        .targets
        .iter()
        .filter(|t| t.application == application)
    {
        let Some(image) = pinned_image(&snapshot.artifacts, release, &target.component) else {
            continue;
        };
        let namespace = target_namespace(environment, target);
        let pin = pins
            .entry((namespace.clone(), target.deployment.name.clone()))
            .or_insert_with(|| DeploymentPin {
                namespace,
                name: target.deployment.name.clone(),
                images: BTreeMap::new(),
                artifact: release.artifact.clone(),
                config_hash: release.config_hash.clone(),
                environment: environment.name_any(),
                tenant: tenant.to_string(),
            });
        pin.images.insert(target.container.clone(), image);
    }
    pins.into_values().collect()
}

/// Rollout state of every pinned Deployment: Complete only when each carries
/// its pin and has rolled out.
fn rollout_of(snapshot: &Snapshot<'_>, pins: &[DeploymentPin]) -> Rollout {
    let mut progressing = Vec::new();
    for pin in pins {
        let Some(deployment) = snapshot
            .deployments
            .get(&(pin.namespace.clone(), pin.name.clone()))
        else {
            return Rollout::Failed(format!("Deployment {}/{} disappeared", pin.namespace, pin.name));
        };
        if !pin.is_satisfied_by(deployment) {
            progressing.push(format!("{}/{}: update pending", pin.namespace, pin.name));
            continue;
        }
        match rollout(deployment) {
            Rollout::Complete => {}
            Rollout::Progressing(why) => progressing.push(format!("{}/{}: {why}", pin.namespace, pin.name)),
            Rollout::Failed(why) => return Rollout::Failed(format!("{}/{}: {why}", pin.namespace, pin.name)),
        }
    }
    if progressing.is_empty() {
        Rollout::Complete
    } else {
        Rollout::Progressing(progressing.join("; "))
    }
}

fn health_of(rollout: &Rollout) -> Health {
    match rollout {
        Rollout::Complete => Health::Healthy,
        Rollout::Progressing(_) => Health::Progressing,
        Rollout::Failed(_) => Health::Degraded,
    }
}

/// Carries `last_checked` over from the previous status for gates whose
/// verdict did not change, so an unchanged world writes nothing.
fn keep_check_times(gates: Vec<GateStatus>, previous: &[GateStatus]) -> Vec<GateStatus> {
    gates
        .into_iter()
        .map(|mut gate| {
            if let Some(old) = previous.iter().find(|old| old.gate == gate.gate)
                && old.state == gate.state
                && old.message == gate.message
            {
                gate.last_checked = old.last_checked.clone();
            }
            gate
        })
        .collect()
}

fn ready_condition(status: &PromotionStatus, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let message = status.message.clone().unwrap_or_default();
    let reason = format!("{:?}", status.phase);
    let reason: &str = &reason;
    conditions::set(
        &status.conditions,
        Wanted {
            type_: crate::api::CONDITION_READY,
            status: status.phase == Phase::Succeeded,
            reason,
            message,
        },
        generation,
        now,
    )
}

fn terminal(status: &mut PromotionStatus, phase: Phase, message: String, now: &Time) {
    status.phase = phase;
    status.message = Some(message);
    status.completed_at = Some(now.clone());
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
    };

    let mut promotions = snapshot.promotions.clone();
    promotions.sort_by_key(|p| (p.metadata.creation_timestamp.clone(), p.name_any()));

    // Promotions already rolling out hold their application.
    for promotion in &promotions {
        let status = promotion.status.clone().unwrap_or_default();
        if matches!(status.phase, Phase::Promoting | Phase::Verifying)
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
    decision.config_only_changes();
    decision.track_health();

    let pins = decision.pins();
    let (config_maps, config_history) = decision.config_maps();
    let new_promotions = decision.auto_promotions();
    let Decision {
        applications,
        mut history,
        promotions,
        notices,
        ..
    } = decision;
    history.truncate(
        usize::try_from(environment.spec.history_limit)
            .unwrap_or(20)
            .max(1),
    );
    let applications: Vec<ApplicationStatus> = applications.into_values().collect();
    let summary = (!applications.is_empty()).then(|| {
        applications
            .iter()
            .map(|app| format!("{}@{}", app.application, app.version))
            .collect::<Vec<_>>()
            .join(", ")
    });
    Plan {
        status: EnvironmentStatus {
            observed_generation: environment.metadata.generation,
            conditions: validation.conditions,
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
    }
}

impl Decision<'_, '_> {
    fn notice(&mut self, promotion: &str, warning: bool, reason: &'static str, note: String) {
        self.notices.push(Notice {
            promotion: Some(promotion.to_string()),
            warning,
            reason,
            note,
        });
    }

    fn decide(&mut self, promotion: &Promotion, validation: &Validation) {
        let name = promotion.name_any();
        let before = promotion.status.clone().unwrap_or_default();
        if before.phase.is_terminal() {
            return;
        }
        let mut status = before.clone();
        let now = self.snapshot.now.clone();
        let environment_name = self.snapshot.environment.name_any();

        let Some(artifact) = self.snapshot.artifacts.get(&promotion.spec.artifact).copied() else {
            let message = format!(
                "Artifact {} not found in namespace {}; create it, then a new Promotion",
                promotion.spec.artifact, self.tenant
            );
            terminal(&mut status, Phase::Rejected, message.clone(), &now);
            self.notice(&name, true, "Rejected", message);
            return self.finish(promotion, before, status);
        };
        let application = artifact.spec.application.clone();
        if !self
            .snapshot
            .environment
            .spec
            .targets
            .iter()
            .any(|t| t.application == application)
        {
            let message = format!(
                "Environment {environment_name} has no targets for application {application} (spec.targets)"
            );
            terminal(&mut status, Phase::Rejected, message.clone(), &now);
            self.notice(&name, true, "Rejected", message);
            return self.finish(promotion, before, status);
        }
        if let Some(problem) = validation.forbidden.get(&application) {
            let message = format!("refused: {problem}");
            terminal(&mut status, Phase::Rejected, message.clone(), &now);
            self.notice(&name, true, "Rejected", message);
            return self.finish(promotion, before, status);
        }

        if matches!(before.phase, Phase::Promoting | Phase::Verifying) {
            self.verify(promotion, artifact, &mut status);
            return self.finish(promotion, before, status);
        }

        let current = self.applications.get(&application).cloned();
        if let Some(current) = &current
            && current.artifact == artifact.name_any()
            && !self.in_flight.contains_key(&application)
        {
            terminal(
                &mut status,
                Phase::Succeeded,
                format!(
                    "{} already runs in {environment_name}; nothing to change",
                    current.artifact
                ),
                &now,
            );
            return self.finish(promotion, before, status);
        }
        if let Some(newer) = self.superseded_by(promotion, artifact) {
            let message = format!("{newer} succeeded in {environment_name} after this Promotion was created");
            terminal(&mut status, Phase::Superseded, message.clone(), &now);
            self.notice(&name, false, "Superseded", message);
            return self.finish(promotion, before, status);
        }

        let rollback = self
            .history
            .iter()
            .any(|entry| entry.artifact == artifact.name_any() && entry.outcome == Phase::Succeeded)
            || current
                .as_ref()
                .is_some_and(|c| c.artifact == artifact.name_any());
        status.rollback = rollback;
        let environments = &self.snapshot.environments;
        let lookup = |name: &str| environments.get(name).copied();
        let verdict = gates::evaluate(
            &GateInput {
                environment: self.snapshot.environment,
                environments: &lookup,
                artifact,
                promotion,
                current: current.as_ref(),
                rollback,
                now: &now,
            },
            &before.approvals,
        );
        for approval in &verdict.approvals {
            if !before.approvals.iter().any(|old| old.user == approval.user) {
                self.notice(
                    &name,
                    false,
                    "Approved",
                    format!("approved by {} (identity not verified)", approval.user),
                );
            }
        }
        for gate in &verdict.gates {
            let was_failed = before
                .gates
                .iter()
                .any(|old| old.gate == gate.gate && old.state == GateState::Failed);
            if gate.state == GateState::Failed && !was_failed {
                self.notice(
                    &name,
                    true,
                    "Blocked",
                    format!("{:?} gate: {}", gate.gate, gate.message),
                );
            }
        }
        status.gates = keep_check_times(verdict.gates.clone(), &before.gates);
        status.approvals = verdict.approvals.clone();

        let waiting = if let Some((other, _)) = self.in_flight.get(&application) {
            Some(format!(
                "queued behind Promotion {other}, which is rolling out {application}"
            ))
        } else if let Some(problem) = validation.not_ready.get(&application) {
            Some(format!(
                "Environment {environment_name} is not ready for {application}: {problem}"
            ))
        } else {
            verdict
                .first_holding()
                .map(|gate| format!("waiting for the {:?} gate: {}", gate.gate, gate.message))
        };
        if let Some(message) = waiting {
            status.phase = Phase::Waiting;
            status.message = Some(message);
            return self.finish(promotion, before, status);
        }

        // Every gate passed and nothing else of this application is rolling out: start.
        let config_hash = if rollback {
            self.history
                .iter()
                .find(|entry| entry.artifact == artifact.name_any() && entry.outcome == Phase::Succeeded)
                .and_then(|entry| entry.config_hash.clone())
                .or_else(|| self.spec_config_hash(&application))
        } else {
            self.spec_config_hash(&application)
        };
        let release = release_of(artifact, config_hash.clone());
        status.changes = self.changes(&application, current.as_ref(), &release);
        status.config = config_hash.clone().map(|to| ConfigChange {
            from: current.as_ref().and_then(|c| c.config_hash.clone()),
            to,
        });
        status.phase = Phase::Verifying;
        status.started_at = Some(now.clone());
        status.message = Some(format!(
            "rolling out {} {} to {environment_name}{}",
            artifact.name_any(),
            artifact.spec.version,
            if rollback { " (rollback)" } else { "" }
        ));
        self.notice(
            &name,
            false,
            "Promoting",
            format!("rolling out {} to {environment_name}", artifact.name_any()),
        );
        self.in_flight.insert(application, (name, release));
        self.finish(promotion, before, status)
    }

    fn spec_config_hash(&self, application: &str) -> Option<String> {
        match self.snapshot.configs.get(application) {
            Some(Ok(rendered)) => Some(rendered.hash.clone()),
            _ => None,
        }
    }

    /// A Succeeded Promotion of a newer Artifact of the same application that
    /// completed after `promotion` was created.
    fn superseded_by(&self, promotion: &Promotion, artifact: &Artifact) -> Option<String> {
        let created = promotion.metadata.creation_timestamp.as_ref()?;
        self.snapshot.promotions.iter().find_map(|other| {
            let status = other.status.as_ref()?;
            let completed = status.completed_at.as_ref()?;
            let newer = self.snapshot.artifacts.get(&other.spec.artifact)?;
            let is_newer = newer.spec.application == artifact.spec.application
                && newer.name_any() != artifact.name_any()
                && match version::compare(
                    artifact.spec.version_scheme,
                    &newer.spec.version,
                    &artifact.spec.version,
                ) {
                    Some(order) => order.is_gt(),
                    None => newer.metadata.creation_timestamp > artifact.metadata.creation_timestamp,
                };
            (status.phase == Phase::Succeeded && completed.0 > created.0 && is_newer)
                .then(|| newer.name_any())
        })
    }

    fn changes(
        &self,
        application: &str,
        current: Option<&ApplicationStatus>,
        release: &Release,
    ) -> Vec<Change> {
        let environment = self.snapshot.environment;
        environment
            .spec
            .targets
            .iter()
            .filter(|target| target.application == application)
            .filter_map(|target| {
                let to = release
                    .images
                    .iter()
                    .find(|image| image.component == target.component)?
                    .digest
                    .clone();
                let namespace = target_namespace(environment, target);
                let from = current
                    .and_then(|c| c.images.iter().find(|image| image.component == target.component))
                    .map(|image| image.digest.clone())
                    .or_else(|| {
                        let deployment = self
                            .snapshot
                            .deployments
                            .get(&(namespace.clone(), target.deployment.name.clone()))?;
                        let pod = deployment.spec.as_ref()?.template.spec.as_ref()?;
                        let image = pod
                            .containers
                            .iter()
                            .find(|c| c.name == target.container)?
                            .image
                            .as_ref()?;
                        image.split_once('@').map(|(_, digest)| digest.to_string())
                    });
                Some(Change {
                    component: target.component.clone(),
                    namespace,
                    deployment: target.deployment.name.clone(),
                    container: target.container.clone(),
                    from,
                    to,
                })
            })
            .collect()
    }

    /// A Promotion rolling out: done, still going, or failed.
    fn verify(&mut self, promotion: &Promotion, artifact: &Artifact, status: &mut PromotionStatus) {
        let name = promotion.name_any();
        let now = self.snapshot.now.clone();
        let application = artifact.spec.application.clone();
        let Some((_, release)) = self.in_flight.get(&application).cloned() else {
            return;
        };
        let pins = pins_for(self.snapshot, &application, &release, &self.tenant);
        let environment_name = self.snapshot.environment.name_any();
        match rollout_of(self.snapshot, &pins) {
            Rollout::Progressing(why) => {
                status.message = Some(format!("rolling out {}: {why}", artifact.name_any()));
            }
            Rollout::Complete => {
                let message = format!("{} runs in {environment_name}", artifact.name_any());
                terminal(status, Phase::Succeeded, message.clone(), &now);
                self.notice(&name, false, "Promoted", message);
                let spec_config_hash = if status.rollback {
                    self.applications
                        .get(&application)
                        .and_then(|c| c.spec_config_hash.clone())
                } else {
                    release.config_hash.clone()
                };
                self.record(
                    promotion,
                    artifact,
                    &release,
                    status,
                    Phase::Succeeded,
                    Health::Healthy,
                    spec_config_hash,
                );
                self.in_flight.remove(&application);
            }
            Rollout::Failed(why) => {
                self.in_flight.remove(&application);
                let previous = self.applications.get(&application).cloned();
                match previous.filter(|_| self.snapshot.environment.spec.rollback.automatic) {
                    Some(previous) => {
                        let message = format!(
                            "rollout failed ({why}); rolled back to {} {}",
                            previous.artifact, previous.version
                        );
                        terminal(status, Phase::RolledBack, message.clone(), &now);
                        self.notice(&name, true, "RolledBack", message);
                        self.history.insert(
                            0,
                            self.history_entry(promotion, artifact, &release, status, Phase::RolledBack),
                        );
                        if let Some(app) = self.applications.get_mut(&application) {
                            app.health = Health::Progressing;
                            app.health_since = Some(now.clone());
                            // The configuration that came with the failed release is not
                            // re-applied on its own; the next change of spec.config is.
                            if !status.rollback && release.config_hash.is_some() {
                                app.spec_config_hash = release.config_hash.clone();
                            }
                        }
                    }
                    None => {
                        let message = format!("rollout failed: {why}");
                        terminal(status, Phase::Failed, message.clone(), &now);
                        self.notice(&name, true, "Failed", message);
                        let spec_config_hash = release.config_hash.clone();
                        self.record(
                            promotion,
                            artifact,
                            &release,
                            status,
                            Phase::Failed,
                            Health::Degraded,
                            spec_config_hash,
                        );
                    }
                }
            }
        }
    }

    fn history_entry(
        &self,
        promotion: &Promotion,
        artifact: &Artifact,
        release: &Release,
        status: &PromotionStatus,
        outcome: Phase,
    ) -> HistoryEntry {
        HistoryEntry {
            application: artifact.spec.application.clone(),
            artifact: artifact.name_any(),
            version: artifact.spec.version.clone(),
            images: release.images.clone(),
            config_hash: release.config_hash.clone(),
            promotion: promotion.name_any(),
            promoted_at: status.started_at.clone(),
            approvers: status.approvals.iter().map(|a| a.user.clone()).collect(),
            outcome,
            completed_at: status.completed_at.clone(),
        }
    }

    /// Makes `release` what runs for its application, with a history entry.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        promotion: &Promotion,
        artifact: &Artifact,
        release: &Release,
        status: &PromotionStatus,
        outcome: Phase,
        health: Health,
        spec_config_hash: Option<String>,
    ) {
        let entry = self.history_entry(promotion, artifact, release, status, outcome);
        self.history.insert(0, entry);
        let application = artifact.spec.application.clone();
        self.applications.insert(
            application.clone(),
            ApplicationStatus {
                application,
                artifact: artifact.name_any(),
                version: artifact.spec.version.clone(),
                images: release.images.clone(),
                source_revision: artifact.spec.source.as_ref().map(|s| s.revision.clone()),
                config_hash: release.config_hash.clone(),
                spec_config_hash,
                promotion: promotion.name_any(),
                promoted_at: status.completed_at.clone(),
                approvers: status.approvals.iter().map(|a| a.user.clone()).collect(),
                health,
                health_since: Some(self.snapshot.now.clone()),
            },
        );
    }

    fn finish(&mut self, promotion: &Promotion, before: PromotionStatus, mut status: PromotionStatus) {
        status.observed_generation = promotion.metadata.generation;
        status.conditions = ready_condition(&status, promotion.metadata.generation, &self.snapshot.now);
        // Keep the previous object when nothing but bookkeeping would change.
        let status = if status == before { before } else { status };
        self.promotions.insert(promotion.name_any(), status);
    }

    /// A change of spec.config (or its base or Secrets) rolls the pods of a
    /// running application, with its images unchanged.
    fn config_only_changes(&mut self) {
        let mut changed = Vec::new();
        for (application, app) in &mut self.applications {
            if self.in_flight.contains_key(application) {
                continue;
            }
            let Some(Ok(rendered)) = self.snapshot.configs.get(application) else {
                continue;
            };
            if app.spec_config_hash.as_deref() == Some(rendered.hash.as_str()) {
                continue;
            }
            app.config_hash = Some(rendered.hash.clone());
            app.spec_config_hash = Some(rendered.hash.clone());
            app.health = Health::Progressing;
            app.health_since = Some(self.snapshot.now.clone());
            changed.push(format!(
                "configuration of {application} changed; rolling its Deployments"
            ));
        }
        for note in changed {
            self.notices.push(Notice {
                promotion: None,
                warning: false,
                reason: "ConfigChanged",
                note,
            });
        }
    }

    /// Health of what runs, from its Deployments.
    fn track_health(&mut self) {
        let applications: Vec<String> = self.applications.keys().cloned().collect();
        for application in applications {
            if self.in_flight.contains_key(&application) {
                continue;
            }
            let Some(release) = self.current_release(&application) else {
                continue;
            };
            let pins = pins_for(self.snapshot, &application, &release, &self.tenant);
            let health = health_of(&rollout_of(self.snapshot, &pins));
            let now = self.snapshot.now.clone();
            if let Some(app) = self.applications.get_mut(&application)
                && app.health != health
            {
                app.health = health;
                app.health_since = Some(now);
            }
        }
    }

    fn current_release(&self, application: &str) -> Option<Release> {
        let app = self.applications.get(application)?;
        Some(Release {
            artifact: app.artifact.clone(),
            images: app.images.clone(),
            config_hash: app.config_hash.clone(),
        })
    }

    /// The release each application should run now.
    fn wanted_releases(&self) -> BTreeMap<String, Release> {
        let mut releases: BTreeMap<String, Release> = self
            .applications
            .keys()
            .filter_map(|app| Some((app.clone(), self.current_release(app)?)))
            .collect();
        for (application, (_, release)) in &self.in_flight {
            releases.insert(application.clone(), release.clone());
        }
        releases
    }

    fn pins(&self) -> Vec<DeploymentPin> {
        self.wanted_releases()
            .iter()
            .flat_map(|(application, release)| pins_for(self.snapshot, application, release, &self.tenant))
            .collect()
    }

    fn rendered(&self, hash: &str) -> Option<RenderedConfig> {
        self.snapshot
            .configs
            .values()
            .filter_map(|rendered| rendered.as_ref().ok())
            .chain(self.snapshot.config_history.values())
            .find(|rendered| rendered.hash == hash)
            .cloned()
    }

    fn config_maps(&self) -> (Vec<RenderedConfigMap>, Vec<RenderedConfig>) {
        let environment = self.snapshot.environment;
        let mut config_maps = Vec::new();
        let mut keep: BTreeMap<String, RenderedConfig> = BTreeMap::new();
        for (application, release) in self.wanted_releases() {
            let Some(rendered) = release
                .config_hash
                .as_deref()
                .and_then(|hash| self.rendered(hash))
            else {
                continue;
            };
            let namespaces: BTreeSet<String> = environment
                .spec
                .targets
                .iter()
                .filter(|target| target.application == application)
                .map(|target| target_namespace(environment, target))
                .collect();
            for namespace in namespaces {
                config_maps.push(RenderedConfigMap {
                    namespace,
                    name: config_map_name(environment, &application),
                    application: application.clone(),
                    config: rendered.clone(),
                });
            }
            keep.insert(rendered.hash.clone(), rendered);
        }
        for hash in self
            .history
            .iter()
            .filter_map(|entry| entry.config_hash.as_deref())
        {
            if let Some(rendered) = self.rendered(hash) {
                keep.insert(hash.to_string(), rendered);
            }
        }
        (config_maps, keep.into_values().collect())
    }

    /// With spec.autoPromote, a Promotion for the newest Ready Artifact of
    /// each targeted application that is newer than what runs and has never
    /// been promoted here.
    fn auto_promotions(&self) -> Vec<Promotion> {
        let environment = self.snapshot.environment;
        if !environment.spec.auto_promote {
            return Vec::new();
        }
        let applications: BTreeSet<&str> = environment
            .spec
            .targets
            .iter()
            .map(|t| t.application.as_str())
            .collect();
        let promoted: BTreeSet<&str> = self
            .snapshot
            .promotions
            .iter()
            .map(|p| p.spec.artifact.as_str())
            .collect();
        let busy: BTreeSet<String> = self
            .snapshot
            .promotions
            .iter()
            .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
            .filter_map(|p| {
                self.snapshot
                    .artifacts
                    .get(&p.spec.artifact)
                    .map(|a| a.spec.application.clone())
            })
            .collect();
        let mut out = Vec::new();
        for application in applications {
            if busy.contains(application) {
                continue;
            }
            let current = self.applications.get(application);
            let newer_than_current = |artifact: &Artifact| match current {
                None => true,
                Some(current) => {
                    let running = self.snapshot.artifacts.get(&current.artifact);
                    match version::compare(
                        artifact.spec.version_scheme,
                        &artifact.spec.version,
                        &current.version,
                    ) {
                        Some(order) => order.is_gt(),
                        None => running.is_none_or(|r| {
                            artifact.metadata.creation_timestamp > r.metadata.creation_timestamp
                        }),
                    }
                }
            };
            let candidate = self
                .snapshot
                .artifacts
                .values()
                .filter(|a| a.spec.application == application)
                .filter(|a| {
                    conditions::is_true(
                        &a.status.clone().unwrap_or_default().conditions,
                        crate::api::CONDITION_READY,
                    )
                })
                .filter(|a| !promoted.contains(a.name_any().as_str()))
                .filter(|a| newer_than_current(a))
                .max_by(|a, b| {
                    version::compare(a.spec.version_scheme, &a.spec.version, &b.spec.version)
                        .unwrap_or_else(|| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
                });
            if let Some(artifact) = candidate {
                let mut name = format!("{}-{}", artifact.name_any(), environment.name_any());
                name.truncate(253);
                let mut promotion = Promotion::new(
                    name.trim_end_matches(['-', '.']),
                    PromotionSpec {
                        artifact: artifact.name_any(),
                        environment: environment.name_any(),
                        reason: Some("autoPromote".into()),
                        r#override: None,
                        approvals: Vec::new(),
                    },
                );
                promotion.metadata.namespace = environment.namespace();
                promotion.metadata.labels =
                    Some([(AUTO_PROMOTED_LABEL.to_string(), "true".to_string())].into());
                out.push(promotion);
            }
        }
        out
    }
}

/// Label on Promotions created by autoPromote.
pub const AUTO_PROMOTED_LABEL: &str = "hoist.dev/auto-promoted";
