//! The lifecycle of a Promotion: rejected, already done or superseded;
//! held by a gate or by the one-in-flight rule; started; and, once rolling
//! out, verified until it succeeds, fails or is rolled back. Terminal phases
//! never change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, Artifact, Change, ConfigChange, GateName, GateState, GateStatus, Health, Phase,
    Promotion, PromotionStatus,
};
use crate::core::conditions::{self, Wanted};
use crate::core::deployment::Rollout;
use crate::core::gates::verification::{self, Decided, JobContext, Progress, VerificationInput};
use crate::core::gates::{self, GateInput};
use crate::core::reasons::{ConditionReason, EventReason};
use crate::core::{supply_chain, version};
use k8s_openapi::api::batch::v1::Job;

use super::release::{Release, pinned_images, pins_for, release_of, rollout_of};
use super::validation::Validation;
use super::{Decision, Notice, target_namespace};

/// Carries `last_checked` over from the previous status for gates whose
/// verdict did not change, so an unchanged world writes nothing.
fn keep_check_times(gates: Vec<GateStatus>, previous: &[GateStatus]) -> Vec<GateStatus> {
    gates
        .into_iter()
        .map(|mut gate| {
            if let Some(old) = previous.iter().find(|old| old.gate == gate.gate)
                && old.state == gate.state
                && old.message == gate.message
                && old.next_check == gate.next_check
            {
                gate.last_checked = old.last_checked.clone();
            }
            gate
        })
        .collect()
}

// The Ready reason is the engine's word on a phase, so it is defined with the lifecycle.
impl Phase {
    /// The reason of a Promotion's `Ready` condition in this phase.
    pub fn reason(self) -> ConditionReason {
        match self {
            Phase::Pending => ConditionReason::Pending,
            Phase::Waiting => ConditionReason::Waiting,
            Phase::Promoting => ConditionReason::Promoting,
            Phase::Verifying => ConditionReason::Verifying,
            Phase::Succeeded => ConditionReason::Succeeded,
            Phase::Failed => ConditionReason::Failed,
            Phase::RolledBack => ConditionReason::RolledBack,
            Phase::Superseded => ConditionReason::Superseded,
            Phase::Rejected => ConditionReason::Rejected,
        }
    }
}

fn ready_condition(status: &PromotionStatus, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let message = status.message.clone().unwrap_or_default();
    conditions::set(
        &status.conditions,
        Wanted {
            type_: crate::api::CONDITION_READY,
            status: status.phase == Phase::Succeeded,
            reason: status.phase.reason(),
            message,
        },
        generation,
        now,
    )
}

/// Puts `gate` in place of its entry, keeping the entry's check time when
/// nothing else changed.
fn set_gate(status: &mut PromotionStatus, gate: GateStatus) {
    let gates = keep_check_times(vec![gate], &status.gates);
    let gate = gates.into_iter().next().expect("one gate");
    match status.gates.iter_mut().find(|old| old.gate == gate.gate) {
        Some(old) => *old = gate,
        None => status.gates.push(gate),
    }
}

fn terminal(status: &mut PromotionStatus, phase: Phase, message: String, now: &Time) {
    status.phase = phase;
    status.message = Some(message);
    status.completed_at = Some(now.clone());
}

impl Decision<'_, '_> {
    fn notice(&mut self, promotion: &str, reason: EventReason, note: String) {
        self.notices.push(Notice {
            promotion: Some(promotion.to_string()),
            reason,
            note,
        });
    }

    pub(super) fn decide(&mut self, promotion: &Promotion, validation: &Validation) {
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
            self.notice(&name, EventReason::Rejected, message);
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
            self.notice(&name, EventReason::Rejected, message);
            return self.finish(promotion, before, status);
        }
        if let Some(problem) = validation.forbidden.get(&application) {
            let message = format!("refused: {problem}");
            terminal(&mut status, Phase::Rejected, message.clone(), &now);
            self.notice(&name, EventReason::Rejected, message);
            return self.finish(promotion, before, status);
        }

        if matches!(before.phase, Phase::Promoting | Phase::Verifying) {
            // Its end was recorded, and the operator stopped before the
            // Promotion's own status said so: say it now, change nothing.
            if let Some(entry) = self
                .history
                .iter()
                .find(|entry| entry.promotion == name && entry.promoted_at == before.started_at)
            {
                let message = format!(
                    "{:?}: {} {} recorded in the history of Environment {environment_name}",
                    entry.outcome, entry.artifact, entry.version
                );
                let at = entry.completed_at.clone().unwrap_or_else(|| now.clone());
                terminal(&mut status, entry.outcome, message, &at);
                return self.finish(promotion, before, status);
            }
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
            self.notice(&name, EventReason::Superseded, message);
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
        let artifacts = &self.snapshot.artifacts;
        let artifact_lookup = |name: &str| artifacts.get(name).copied();
        let in_flight: Vec<&Artifact> = self
            .in_flight
            .values()
            .filter_map(|(_, release)| artifacts.get(&release.artifact).copied())
            .collect();
        let (checks, checks_next) = supply_chain::due(&self.policies, artifact, now.0);
        for check in checks {
            let known = self.checks.iter().any(|c| {
                c.artifact == check.artifact
                    && c.component == check.component
                    && c.policy.id == check.policy.id
            });
            if !known {
                self.checks.push(check);
            }
        }
        if let Some(next) = checks_next {
            self.checks_next = Some(self.checks_next.map_or(next, |n| n.min(next)));
        }
        let verdict = gates::evaluate(
            &GateInput {
                environment: self.snapshot.environment,
                environments: &lookup,
                artifacts: &artifact_lookup,
                in_flight: &in_flight,
                artifact,
                promotion,
                current: current.as_ref(),
                rollback,
                trust: &self.snapshot.approvals,
                supply_chain: &self.policies,
                now: &now,
            },
            &before.approvals,
        );
        for notice in &verdict.approval_notices {
            self.notice(&name, notice.reason, notice.note.clone());
        }
        status.gates = keep_check_times(verdict.gates.clone(), &before.gates);
        status.approvals = verdict.approvals.clone();
        status.approval_rules = verdict.approval_rules.clone();
        if let Some(rejection) = &verdict.rejection {
            let message = rejection.message();
            terminal(&mut status, Phase::Rejected, message.clone(), &now);
            self.notice(&name, EventReason::Rejected, message);
            return self.finish(promotion, before, status);
        }
        for gate in &verdict.gates {
            let was_failed = before
                .gates
                .iter()
                .any(|old| old.gate == gate.gate && old.state == GateState::Failed);
            let was_waived = before
                .gates
                .iter()
                .any(|old| old.gate == gate.gate && old.state == GateState::Waived);
            if gate.state == GateState::Waived && !was_waived {
                let justification = promotion
                    .spec
                    .r#override
                    .as_ref()
                    .map(|o| o.justification.as_str())
                    .unwrap_or_default();
                self.notice(
                    &name,
                    EventReason::GateWaived,
                    format!(
                        "{:?} gate {} (justification: {justification})",
                        gate.gate, gate.message
                    ),
                );
            }
            if gate.state == GateState::Failed && !was_failed {
                self.notice(
                    &name,
                    EventReason::Blocked,
                    format!("{:?} gate: {}", gate.gate, gate.message),
                );
            }
        }

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
        // The gates that held it are decided; the clock no longer changes them.
        for gate in &mut status.gates {
            gate.next_check = None;
        }
        status.message = Some(format!(
            "rolling out {} {} to {environment_name}{}",
            artifact.name_any(),
            artifact.spec.version,
            if rollback { " (rollback)" } else { "" }
        ));
        self.notice(
            &name,
            EventReason::Promoting,
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
                match self.verification(promotion, artifact, status) {
                    Some(Progress::Running { .. }) => return,
                    Some(Progress::Failed { message }) => {
                        // A rollback that fails its verification is not rolled
                        // back to the release it replaced.
                        let revert = !status.rollback;
                        return self.fail(
                            promotion,
                            artifact,
                            &release,
                            status,
                            ("verification failed", revert),
                            message,
                        );
                    }
                    Some(Progress::Passed { .. }) | None => {}
                }
                let message = format!("{} runs in {environment_name}", artifact.name_any());
                terminal(status, Phase::Succeeded, message.clone(), &now);
                self.notice(&name, EventReason::Promoted, message);
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
                self.fail(
                    promotion,
                    artifact,
                    &release,
                    status,
                    ("rollout failed", true),
                    why,
                );
            }
        }
    }

    /// A rollout or its verification failed: the previous release again
    /// with automatic rollback, else recorded as failed and degraded.
    fn fail(
        &mut self,
        promotion: &Promotion,
        artifact: &Artifact,
        release: &Release,
        status: &mut PromotionStatus,
        (what, may_revert): (&str, bool),
        why: String,
    ) {
        let name = promotion.name_any();
        let now = self.snapshot.now.clone();
        let application = artifact.spec.application.clone();
        self.in_flight.remove(&application);
        let previous = self.applications.get(&application).cloned();
        match previous.filter(|_| self.snapshot.environment.spec.rollback.automatic && may_revert) {
            Some(previous) => {
                let message = format!(
                    "{what} ({why}); rolled back to {} {}",
                    previous.artifact, previous.version
                );
                terminal(status, Phase::RolledBack, message.clone(), &now);
                self.notice(&name, EventReason::RolledBack, message);
                self.add_history(self.history_entry(promotion, artifact, release, status, Phase::RolledBack));
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
                let kept = if !may_revert && self.snapshot.environment.spec.rollback.automatic {
                    " (a rollback is not rolled back again)"
                } else {
                    ""
                };
                let message = format!("{what}: {why}{kept}");
                terminal(status, Phase::Failed, message.clone(), &now);
                self.notice(&name, EventReason::Failed, message);
                let spec_config_hash = release.config_hash.clone();
                self.record(
                    promotion,
                    artifact,
                    release,
                    status,
                    Phase::Failed,
                    Health::Degraded,
                    spec_config_hash,
                );
            }
        }
    }

    /// The verification steps of a healthy rollout; `None` when there are
    /// none or an override waives them. Records the steps' statuses and
    /// the Verification gate, and asks for the queries that are due.
    fn verification(
        &mut self,
        promotion: &Promotion,
        artifact: &Artifact,
        status: &mut PromotionStatus,
    ) -> Option<Progress> {
        let steps = &self.snapshot.environment.spec.gates.verification;
        let waived = promotion
            .spec
            .r#override
            .iter()
            .any(|o| o.waive.contains(&GateName::Verification));
        if steps.is_empty() || waived {
            return None;
        }
        let name = promotion.name_any();
        let environment = self.snapshot.environment.name_any();
        let artifact_name = artifact.name_any();
        let fresh = self
            .snapshot
            .measurements
            .get(&name)
            .map(|(step, measurement)| (step.as_str(), measurement));
        let application = &artifact.spec.application;
        // Verification Jobs run in the tenant's own namespace: a target
        // namespace opted in for pinning images is not opened to Pods the
        // tenant chooses.
        let job_namespace = self.tenant.clone();
        let jobs: std::collections::BTreeMap<String, &Job> = self
            .snapshot
            .jobs
            .iter()
            .filter(|((namespace, _), _)| *namespace == job_namespace)
            .map(|((_, job), object)| (job.clone(), *object))
            .collect();
        let images = self
            .in_flight
            .get(application)
            .map(|(_, release)| pinned_images(&self.snapshot.artifacts, release))
            .unwrap_or_default();
        let source = artifact.spec.source.as_ref();
        let decided = verification::evaluate(&VerificationInput {
            promotion: &name,
            job: JobContext {
                namespace: &job_namespace,
                promotion_uid: promotion.metadata.uid.as_deref(),
                images: &images,
                source_repository: source.map(|s| s.repository.as_str()),
                source_revision: source.map(|s| s.revision.as_str()),
                jobs: &jobs,
            },
            steps,
            recorded: &status.verification,
            fresh,
            release: verification::Release {
                namespace: &self.tenant,
                environment: &environment,
                application: &artifact.spec.application,
                artifact: &artifact_name,
                version: &artifact.spec.version,
            },
            now: self.snapshot.now.0,
        });
        let Decided {
            statuses,
            progress,
            create,
        } = decided;
        self.jobs.extend(create);
        let next = statuses
            .iter()
            .filter_map(|s| s.next_measurement.clone())
            .min_by_key(|t| t.0);
        status.verification = statuses;
        let (state, message) = match &progress {
            Progress::Running { message, due } => {
                if let Some(due) = due {
                    self.queries.push(due.clone());
                }
                status.message = Some(format!("verifying {artifact_name}: {message}"));
                (GateState::Pending, message.clone())
            }
            Progress::Passed { message } => (GateState::Passed, message.clone()),
            Progress::Failed { message } => (GateState::Failed, message.clone()),
        };
        set_gate(
            status,
            GateStatus {
                gate: GateName::Verification,
                state,
                message,
                last_checked: Some(self.snapshot.now.clone()),
                next_check: next.filter(|_| state == GateState::Pending),
            },
        );
        Some(progress)
    }

    fn finish(&mut self, promotion: &Promotion, before: PromotionStatus, mut status: PromotionStatus) {
        status.observed_generation = promotion.metadata.generation;
        status.conditions = ready_condition(&status, promotion.metadata.generation, &self.snapshot.now);
        // Keep the previous object when nothing but bookkeeping would change.
        let status = if status == before { before } else { status };
        self.promotions.insert(promotion.name_any(), status);
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{
        Change, Environment, EnvironmentStatus, GateName, GateState, GateStatus, Health, HistoryEntry, Phase,
        PromotionStatus,
    };
    use crate::core::environment::fixture::{
        A, B, Objects, after_pin, at, deployment, ended, environment, pin, promotion, running, stalled,
        verifying,
    };
    use crate::core::environment::{Notice, Plan, plan};
    use crate::core::reasons::EventReason;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn notice(promotion: &str, reason: EventReason, note: &str) -> Notice {
        Notice {
            promotion: Some(promotion.into()),
            reason,
            note: note.into(),
        }
    }

    fn outcome(plan: &Plan, promotion: &str) -> (Phase, String) {
        let status = &plan.promotions[promotion];
        (status.phase, status.message.clone().unwrap_or_default())
    }

    fn passed(gate: GateName, message: &str, checked: i64) -> GateStatus {
        GateStatus {
            gate,
            state: GateState::Passed,
            message: message.into(),
            last_checked: Some(at(checked)),
            next_check: None,
        }
    }

    /// An Environment whose status says `shop-1` runs.
    fn running_shop_1(spec: &str) -> Environment {
        let mut environment = environment("dev", spec);
        environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-1", "1.0.0", A, None)],
            ..Default::default()
        });
        environment
    }

    #[test]
    fn a_promotion_whose_gates_pass_starts_with_exactly_this_plan() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.promotions = vec![promotion("p1", "shop-1", 50)];
        let plan = plan(&objects.snapshot());
        let message = "rolling out shop-1 1.0.0 to dev";
        assert_eq!(
            plan.promotions["p1"],
            PromotionStatus {
                observed_generation: Some(1),
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "False".into(),
                    reason: "Verifying".into(),
                    message: message.into(),
                    observed_generation: Some(1),
                    last_transition_time: at(100),
                }],
                phase: Phase::Verifying,
                message: Some(message.into()),
                rollback: false,
                gates: vec![
                    passed(GateName::ArtifactReady, "Artifact shop-1 is resolved", 100),
                    passed(GateName::Upstream, "this environment has no upstream", 100),
                    passed(GateName::Approval, "no approval required here", 100),
                    passed(GateName::Provenance, "no provenance required here", 100),
                    passed(
                        GateName::Vulnerabilities,
                        "no vulnerability scan required here",
                        100
                    ),
                    passed(GateName::Soak, "no soak required here", 100),
                    passed(GateName::Windows, "no change windows here", 100),
                    passed(GateName::Compatibility, "compatibility is not checked here", 100),
                    passed(GateName::Verification, "no verification here", 100),
                ],
                approvals: Vec::new(),
                approval_rules: Vec::new(),
                changes: vec![Change {
                    component: "backend".into(),
                    namespace: "shop".into(),
                    deployment: "backend".into(),
                    container: "app".into(),
                    from: None,
                    to: A.into(),
                }],
                config: None,
                verification: Vec::new(),
                started_at: Some(at(100)),
                completed_at: None,
            }
        );
        assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(
            plan.notices,
            vec![notice("p1", EventReason::Promoting, "rolling out shop-1 to dev")]
        );
        assert_eq!(
            plan.status.applications,
            Vec::new(),
            "nothing runs until the rollout is over"
        );
        assert_eq!(plan.new_promotions, Vec::new());
    }

    #[test]
    fn a_promotion_waits_behind_the_one_rolling_out_its_application() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.promotions = vec![
            verifying(promotion("p1", "shop-1", 50)),
            promotion("p2", "shop-2", 60),
        ];
        objects.deployments = vec![after_pin(deployment(), &pin("shop-1", A, None), false)];
        let plan = plan(&objects.snapshot());
        assert_eq!(
            outcome(&plan, "p1"),
            (
                Phase::Verifying,
                "rolling out shop-1: shop/backend: waiting for the Deployment controller to observe generation 2"
                    .into()
            )
        );
        assert_eq!(
            outcome(&plan, "p2"),
            (
                Phase::Waiting,
                "queued behind Promotion p1, which is rolling out shop".into()
            )
        );
        assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(plan.notices, Vec::new());
    }

    #[test]
    fn an_older_promotion_is_superseded_only_by_a_success_after_it_was_created() {
        let environment = || {
            let mut environment = environment("dev", "");
            environment.status = Some(EnvironmentStatus {
                applications: vec![running("shop-2", "1.1.0", B, None)],
                ..Default::default()
            });
            environment
        };
        // shop-2 succeeded at the very instant the Promotion of shop-1 was created: not after it.
        let mut objects = Objects::new(environment());
        objects.promotions = vec![
            ended(promotion("new", "shop-2", 10), Phase::Succeeded, 50),
            promotion("old", "shop-1", 50),
        ];
        objects.deployments = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
        let same_instant = plan(&objects.snapshot());
        assert_eq!(same_instant.promotions["old"].phase, Phase::Verifying);
        assert!(
            !same_instant.promotions.contains_key("new"),
            "terminal phases are not decided"
        );

        objects.promotions[0] = ended(promotion("new", "shop-2", 10), Phase::Succeeded, 51);
        let one_second_later = plan(&objects.snapshot());
        let message = "shop-2 succeeded in dev after this Promotion was created";
        assert_eq!(
            outcome(&one_second_later, "old"),
            (Phase::Superseded, message.into())
        );
        assert_eq!(one_second_later.promotions["old"].completed_at, Some(at(100)));
        assert_eq!(one_second_later.pins, vec![pin("shop-2", B, None)]);
        assert_eq!(
            one_second_later.notices,
            vec![notice("old", EventReason::Superseded, message)]
        );
    }

    #[test]
    fn a_failed_rollout_without_automatic_rollback_is_recorded_as_failed_and_degraded() {
        let mut objects = Objects::new(running_shop_1(""));
        objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
        objects.deployments = vec![stalled(after_pin(deployment(), &pin("shop-2", B, None), false))];
        let plan = plan(&objects.snapshot());
        let message = "rollout failed: shop/backend: rollout exceeded its progress deadline: no message";
        assert_eq!(outcome(&plan, "p2"), (Phase::Failed, message.into()));
        assert_eq!(plan.promotions["p2"].completed_at, Some(at(100)));
        let app = &plan.status.applications[0];
        assert_eq!(
            (app.artifact.as_str(), app.health, app.health_since.clone()),
            ("shop-2", Health::Degraded, Some(at(100)))
        );
        assert_eq!(
            plan.status.history,
            vec![HistoryEntry {
                application: "shop".into(),
                artifact: "shop-2".into(),
                version: "1.1.0".into(),
                change: crate::api::ChangeKind::Release,
                source_repository: None,
                source_revision: None,
                images: app.images.clone(),
                config_hash: None,
                promotion: "p2".into(),
                promoted_at: Some(at(60)),
                approvers: Vec::new(),
                approvals: Vec::new(),
                outcome: Phase::Failed,
                completed_at: Some(at(100)),
            }]
        );
        assert_eq!(
            plan.pins,
            vec![pin("shop-2", B, None)],
            "what failed stays for a human to look at"
        );
        assert_eq!(plan.notices, vec![notice("p2", EventReason::Failed, message)]);
    }

    #[test]
    fn a_failed_rollout_with_automatic_rollback_pins_what_ran_before() {
        let mut objects = Objects::new(running_shop_1("  rollback: {automatic: true}"));
        objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
        objects.deployments = vec![stalled(after_pin(deployment(), &pin("shop-2", B, None), false))];
        let plan = plan(&objects.snapshot());
        let message = "rollout failed (shop/backend: rollout exceeded its progress deadline: no message); \
                       rolled back to shop-1 1.0.0";
        assert_eq!(outcome(&plan, "p2"), (Phase::RolledBack, message.into()));
        assert_eq!(plan.promotions["p2"].conditions[0].reason, "RolledBack");
        let app = &plan.status.applications[0];
        assert_eq!(
            (app.artifact.as_str(), app.health, app.health_since.clone()),
            ("shop-1", Health::Progressing, Some(at(100)))
        );
        assert_eq!(
            plan.status
                .history
                .iter()
                .map(|h| (h.promotion.as_str(), h.artifact.as_str(), h.outcome))
                .collect::<Vec<_>>(),
            vec![("p2", "shop-2", Phase::RolledBack)]
        );
        assert_eq!(plan.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(plan.notices, vec![notice("p2", EventReason::RolledBack, message)]);
    }

    #[test]
    fn a_waiting_promotion_decided_again_later_keeps_its_status_to_the_field() {
        let mut objects = Objects::new(environment("dev", "  gates: {approval: {minApprovals: 1}}"));
        objects.promotions = vec![promotion("p1", "shop-1", 50)];
        let first = plan(&objects.snapshot());
        assert_eq!(first.promotions["p1"].phase, Phase::Waiting);
        let approval = &first.promotions["p1"].gates[2];
        assert_eq!(
            (approval.state, approval.last_checked.clone()),
            (GateState::Pending, Some(at(100)))
        );

        objects.promotions[0].status = Some(first.promotions["p1"].clone());
        objects.now = at(400);
        let later = plan(&objects.snapshot());
        assert_eq!(
            later.promotions["p1"], first.promotions["p1"],
            "no gate changed: nothing to write"
        );
        assert_eq!(
            later.notices,
            Vec::new(),
            "Blocked is told once, and a Pending gate is not blocked"
        );
    }

    #[test]
    fn the_ready_reason_is_the_phase_as_the_status_spells_it() {
        for phase in [
            Phase::Pending,
            Phase::Waiting,
            Phase::Promoting,
            Phase::Verifying,
            Phase::Succeeded,
            Phase::Failed,
            Phase::RolledBack,
            Phase::Superseded,
            Phase::Rejected,
        ] {
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::Value::String(phase.reason().as_str().into())
            );
        }
    }

    #[test]
    fn a_freeze_holds_a_promotion_until_its_end_is_the_plans_next_check_and_an_override_waives_it() {
        let spec = format!(
            "  gates:\n    windows:\n      - {{name: freeze, type: Deny, start: \"{}\", end: \"{}\"}}",
            at(50).0,
            at(400).0
        );
        let mut objects = Objects::new(environment("dev", &spec));
        objects.promotions = vec![promotion("p1", "shop-1", 50)];
        let held = plan(&objects.snapshot());
        let message = format!(
            "change window freeze (Deny) is on until {}; no Promotion starts before then unless an override waives Windows",
            at(400).0
        );
        assert_eq!(
            outcome(&held, "p1"),
            (Phase::Waiting, format!("waiting for the Windows gate: {message}"))
        );
        let gate = &held.promotions["p1"].gates[6];
        assert_eq!(
            (gate.gate, gate.state, gate.next_check.clone()),
            (GateName::Windows, GateState::Pending, Some(at(400)))
        );
        assert_eq!(held.next_check, Some(at(400)));
        assert_eq!(
            held.next_check_in(&at(100)),
            Some(std::time::Duration::from_secs(300))
        );

        // At the end of the freeze the same Promotion starts, and nothing is left to wait for.
        objects.promotions[0].status = Some(held.promotions["p1"].clone());
        objects.now = at(400);
        let free = plan(&objects.snapshot());
        assert_eq!(free.promotions["p1"].phase, Phase::Verifying);
        assert_eq!(free.next_check, None);

        // An override waives the freeze, with an Event that carries the justification.
        objects.now = at(100);
        objects.promotions = vec![promotion("p2", "shop-1", 50)];
        objects.promotions[0].spec.r#override = Some(crate::api::Override {
            waive: vec![GateName::Windows],
            justification: "hotfix for INC-2211".into(),
        });
        // An override always needs an approval.
        objects.promotions[0].spec.approvals = vec![crate::api::ApprovalRequest {
            user: "dave".into(),
            groups: Vec::new(),
            decision: crate::api::ApprovalDecision::Approve,
            comment: None,
        }];
        let waived = plan(&objects.snapshot());
        assert_eq!(
            waived.promotions["p2"].phase,
            Phase::Verifying,
            "{:?}",
            waived.promotions["p2"].message
        );
        assert_eq!(waived.promotions["p2"].gates[6].state, GateState::Waived);
        assert_eq!(waived.promotions["p2"].gates[6].next_check, None);
        assert_eq!(
            waived.notices[1],
            notice(
                "p2",
                EventReason::GateWaived,
                &format!("Windows gate waived by override: {message} (justification: hotfix for INC-2211)")
            )
        );
    }

    /// A measurement of `result < 0.01` at [`at`]`(100)` with a scalar result.
    fn scalar_measurement(value: &str) -> crate::api::Measurement {
        crate::core::gates::verification::measure(
            &serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, value]}}),
            "result < 0.01",
            at(100).0,
        )
    }

    #[test]
    fn a_healthy_rollout_is_verified_before_it_succeeds_and_a_failed_measurement_rolls_it_back() {
        let spec = "  rollback: {automatic: true}\n  gates:\n    verification:\n      - name: error-rate\n        prometheus: {query: 'errors{env=\"{{environment}}\"}', condition: result < 0.01, interval: 30s, count: 2}";
        let mut objects = Objects::new(running_shop_1(spec));
        objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
        objects.deployments = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
        let measuring = plan(&objects.snapshot());
        assert_eq!(
            outcome(&measuring, "p2"),
            (
                Phase::Verifying,
                format!(
                    "verifying shop-2: step error-rate: 0 of 2 measurement(s): 0 successful, 0 failed, 0 inconclusive; \
                     next measurement at {} (every 30s)",
                    at(100).0
                )
            )
        );
        assert_eq!(
            measuring
                .queries
                .iter()
                .map(|q| (q.promotion.as_str(), q.step.as_str(), q.query.as_str()))
                .collect::<Vec<_>>(),
            vec![("p2", "error-rate", "errors{env=\"dev\"}")]
        );
        assert_eq!(
            measuring.pins,
            vec![pin("shop-2", B, None)],
            "the new release runs while it is verified"
        );
        assert!(
            measuring.status.applications[0].artifact == "shop-1",
            "and is not recorded as running yet"
        );

        // The controller measures and decides again at the same instant: the error rate is too high.
        let failed = scalar_measurement("0.5");
        objects
            .measurements
            .insert("p2".into(), ("error-rate".into(), failed));
        let decided = plan(&objects.snapshot());
        let message = "verification failed (step error-rate: 1 measurement(s) did not meet `result < 0.01` \
                       (failureLimit 0), the last was 0.5; 1 of 2 measurement(s): 0 successful, 1 failed, 0 inconclusive); \
                       rolled back to shop-1 1.0.0";
        assert_eq!(outcome(&decided, "p2"), (Phase::RolledBack, message.into()));
        assert_eq!(decided.pins, vec![pin("shop-1", A, None)]);
        assert_eq!(decided.queries, Vec::new());
        let gate = decided.promotions["p2"]
            .gates
            .iter()
            .find(|g| g.gate == GateName::Verification)
            .expect("verification gate");
        assert_eq!(gate.state, GateState::Failed);
        assert_eq!(decided.promotions["p2"].verification[0].measurements.len(), 1);
    }

    #[test]
    fn while_verifying_only_the_next_measurement_wakes_the_environment_and_a_failed_rollback_stays() {
        let spec = "  rollback: {automatic: true}\n  gates:\n    verification:\n      - name: error-rate\n        prometheus: {query: up, condition: result < 0.01, interval: 30s, count: 2}";
        let mut objects = Objects::new(running_shop_1(spec));
        let mut started = verifying(promotion("p2", "shop-2", 50));
        // A change window's next opening, recorded before the rollout started, is no reason to wake.
        started.status.as_mut().unwrap().gates = vec![GateStatus {
            gate: GateName::Windows,
            state: GateState::Passed,
            message: "no Deny change window is on".into(),
            last_checked: Some(at(60)),
            next_check: Some(at(110)),
        }];
        objects.promotions = vec![started];
        objects.deployments = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
        let due = plan(&objects.snapshot());
        assert_eq!(
            due.next_check, None,
            "the measurement due now is taken, not slept on"
        );
        let measured = scalar_measurement("0");
        objects
            .measurements
            .insert("p2".into(), ("error-rate".into(), measured));
        assert_eq!(plan(&objects.snapshot()).next_check, Some(at(130)));

        // A rollback whose verification fails is not rolled back to what it replaced.
        objects.promotions[0].status.as_mut().unwrap().rollback = true;
        let failed = scalar_measurement("0.5");
        objects
            .measurements
            .insert("p2".into(), ("error-rate".into(), failed));
        let decided = plan(&objects.snapshot());
        let (phase, message) = outcome(&decided, "p2");
        assert_eq!(phase, Phase::Failed);
        assert!(
            message.ends_with("(a rollback is not rolled back again)"),
            "{message}"
        );
        assert_eq!(decided.pins, vec![pin("shop-2", B, None)]);
    }

    #[test]
    fn a_promotion_whose_end_the_environment_recorded_ends_so_without_pinning_again() {
        // The operator wrote the Environment's record of p2's rollback, then stopped
        // before p2's own status: p2 still says Verifying.
        let mut environment = running_shop_1("  rollback: {automatic: true}");
        environment.status.as_mut().unwrap().history = vec![HistoryEntry {
            application: "shop".into(),
            artifact: "shop-2".into(),
            version: "1.1.0".into(),
            change: crate::api::ChangeKind::Release,
            source_repository: None,
            source_revision: None,
            images: Vec::new(),
            config_hash: None,
            promotion: "p2".into(),
            promoted_at: Some(at(60)),
            approvers: Vec::new(),
            approvals: Vec::new(),
            outcome: Phase::RolledBack,
            completed_at: Some(at(90)),
        }];
        let mut objects = Objects::new(environment);
        objects.promotions = vec![verifying(promotion("p2", "shop-2", 50))];
        objects.deployments = vec![after_pin(deployment(), &pin("shop-1", A, None), true)];
        let plan = plan(&objects.snapshot());
        assert_eq!(
            outcome(&plan, "p2"),
            (
                Phase::RolledBack,
                "RolledBack: shop-2 1.1.0 recorded in the history of Environment dev".into()
            )
        );
        assert_eq!(plan.promotions["p2"].completed_at, Some(at(90)));
        assert_eq!(
            plan.pins,
            vec![pin("shop-1", A, None)],
            "the failed release is not pinned again"
        );
        assert_eq!(plan.status.history.len(), 1, "and not recorded twice");
    }
}
