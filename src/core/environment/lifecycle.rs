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
use crate::core::gates::verification::{self, Decided, JobContext, Progress, VerificationInput};
use crate::core::gates::{self, GateInput};
use crate::core::reasons::{ConditionReason, EventReason};
use crate::core::workload::Rollout;
use crate::core::{kstatus, supply_chain, version};
use k8s_openapi::api::batch::v1::Job;

use super::release::{Release, pinned_images, pins_for, release_of, rollout_of};
use super::validation::Validation;
use super::{Decision, Notice, target_namespace, target_workload};

/// How often a rollout's progress may rewrite the message of its Promotion.
pub const PROGRESS_REPORT_SECONDS: i64 = 30;

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

/// `Ready` (True once Succeeded) and kstatus' `Reconciling`/`Stalled`, all
/// from the phase and message.
fn ready_condition(status: &PromotionStatus, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let message = status.message.clone().unwrap_or_default();
    let ready = conditions::set(
        &status.conditions,
        Wanted {
            type_: crate::api::CONDITION_READY,
            status: status.phase == Phase::Succeeded,
            reason: status.phase.reason(),
            message,
        },
        generation,
        now,
    );
    kstatus::set(&ready, kstatus::of_promotion(status), generation, now)
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

/// `promotion`'s status ended in `phase` at `now`, as the engine ends one:
/// for a Promotion no Environment decides (its Environment does not exist).
pub fn ended(promotion: &Promotion, phase: Phase, message: String, now: &Time) -> PromotionStatus {
    let mut status = promotion.status.clone().unwrap_or_default();
    terminal(&mut status, phase, message, now);
    status.observed_generation = promotion.metadata.generation;
    status.conditions = ready_condition(&status, promotion.metadata.generation, now);
    status
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

        // Before its gates: none is decided (no supply-chain check made)
        // for an Environment its tier does not allow; it waits for the tier.
        if let Some(forbidden) = &validation.tier {
            status.phase = Phase::Pending;
            status.message = Some(format!(
                "Environment {environment_name} is not allowed by its tier: {forbidden}"
            ));
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
                let id = target_workload(environment, target)?;
                let from = current
                    .and_then(|c| c.images.iter().find(|image| image.component == target.component))
                    .map(|image| image.digest.clone())
                    .or_else(|| {
                        let workload = self.snapshot.workloads.get(&id)?;
                        let pod = workload.pod_template()?.spec.as_ref()?;
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
                    kind: id.kind,
                    deployment: id.name.clone(),
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
        match rollout_of(self.snapshot, &pins, status.started_at.as_ref()) {
            Rollout::Progressing(why) => {
                // The message says that the rollout started; how far it got
                // replaces it once it has taken a while, and then at most
                // once per interval: each change is a write of the status.
                let reported = status
                    .progress_reported_at
                    .as_ref()
                    .or(status.started_at.as_ref());
                if reported.is_none_or(|reported| {
                    now.0.as_second() - reported.0.as_second() >= PROGRESS_REPORT_SECONDS
                }) {
                    status.message = Some(format!("rolling out {}: {why}", artifact.name_any()));
                    status.progress_reported_at = Some(now);
                }
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
        // The release running before this one, which a baseline query measures.
        let previous = self.applications.get(application);
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
                previous: previous.map(|running| verification::Previous {
                    artifact: &running.artifact,
                    version: &running.version,
                }),
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
mod tests;
