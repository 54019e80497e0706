//! What runs and what ran: the application status a finished rollout
//! records, the history entry it adds, configuration-only changes of what
//! runs, and the health of what runs, from its workloads.

use kube::ResourceExt;

use crate::api::{
    ApplicationStatus, ApprovalDecision, ApprovedBy, Artifact, ChangeKind, EnvironmentStatus, Health,
    HistoryEntry, Phase, Promotion, PromotionStatus,
};

use super::release::{Release, health_of, pins_for, rollout_of};
use super::{Decision, Notice};
use crate::core::reasons::EventReason;

/// The approvers whose approvals counted.
fn approvers(status: &PromotionStatus) -> Vec<String> {
    status
        .approvals
        .iter()
        .filter(|approval| approval.counted && approval.decision == ApprovalDecision::Approve)
        .map(|approval| approval.user.clone())
        .collect()
}

/// The approvals that counted, with when each was seen and whether verified.
fn approved_by(status: &PromotionStatus) -> Vec<ApprovedBy> {
    status
        .approvals
        .iter()
        .filter(|approval| approval.counted && approval.decision == ApprovalDecision::Approve)
        .map(|approval| ApprovedBy {
            user: approval.user.clone(),
            at: approval.at.clone(),
            verified: approval.verified,
        })
        .collect()
}

/// The release `application` rolls back to: the newest Succeeded entry of
/// the history whose Artifact is not the one running now.
pub fn rollback_target<'s>(status: &'s EnvironmentStatus, application: &str) -> Option<&'s HistoryEntry> {
    let running = status
        .applications
        .iter()
        .find(|app| app.application == application)
        .map(|app| app.artifact.as_str());
    status.history.iter().find(|entry| {
        entry.application == application
            && entry.outcome == Phase::Succeeded
            && Some(entry.artifact.as_str()) != running
    })
}

impl Decision<'_, '_> {
    /// Adds the entry of a Promotion that ended, unless the history holds
    /// that Promotion already: the Environment's status is written before
    /// the Promotion's, so after a crash between the two the same end is
    /// decided again.
    pub(super) fn add_history(&mut self, entry: HistoryEntry) {
        if !self
            .history
            .iter()
            .any(|known| known.promotion == entry.promotion && known.promoted_at == entry.promoted_at)
        {
            self.history.insert(0, entry);
        }
    }

    pub(super) fn history_entry(
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
            change: if status.rollback {
                ChangeKind::Rollback
            } else {
                ChangeKind::Release
            },
            images: release.images.clone(),
            source_repository: artifact.spec.source.as_ref().map(|s| s.repository.clone()),
            source_revision: artifact.spec.source.as_ref().map(|s| s.revision.clone()),
            build_id: artifact.spec.source.as_ref().and_then(|s| s.build_id.clone()),
            build_url: artifact.spec.source.as_ref().and_then(|s| s.build_url.clone()),
            committed_at: artifact.spec.source.as_ref().and_then(|s| s.committed_at.clone()),
            built_at: artifact.spec.source.as_ref().and_then(|s| s.built_at.clone()),
            config_hash: release.config_hash.clone(),
            promotion: promotion.name_any(),
            promoted_at: status.started_at.clone(),
            approvers: approvers(status),
            approvals: approved_by(status),
            outcome,
            completed_at: status.completed_at.clone(),
            restored_at: None,
        }
    }

    /// Makes `release` what runs for its application, with a history entry.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
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
        self.add_history(entry);
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
                approvers: approvers(status),
                health,
                health_since: Some(self.snapshot.now.clone()),
            },
        );
    }

    /// A change of spec.config (or its base or Secrets) rolls the pods of a
    /// running application, with its images unchanged.
    pub(super) fn config_only_changes(&mut self) {
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
            let now = self.snapshot.now.clone();
            app.config_hash = Some(rendered.hash.clone());
            app.spec_config_hash = Some(rendered.hash.clone());
            app.health = Health::Progressing;
            app.health_since = Some(now.clone());
            let source = self
                .snapshot
                .artifacts
                .get(&app.artifact)
                .and_then(|artifact| artifact.spec.source.as_ref());
            let entry = HistoryEntry {
                application: application.clone(),
                artifact: app.artifact.clone(),
                version: app.version.clone(),
                change: ChangeKind::Configuration,
                images: app.images.clone(),
                source_repository: source.map(|s| s.repository.clone()),
                source_revision: source
                    .map(|s| s.revision.clone())
                    .or_else(|| app.source_revision.clone()),
                build_id: source.and_then(|s| s.build_id.clone()),
                build_url: source.and_then(|s| s.build_url.clone()),
                committed_at: source.and_then(|s| s.committed_at.clone()),
                built_at: source.and_then(|s| s.built_at.clone()),
                config_hash: Some(rendered.hash.clone()),
                promotion: app.promotion.clone(),
                promoted_at: Some(now),
                approvers: Vec::new(),
                approvals: Vec::new(),
                outcome: Phase::Succeeded,
                completed_at: None,
                restored_at: None,
            };
            changed.push((
                entry,
                format!("configuration of {application} changed; rolling its Deployments"),
            ));
        }
        for (entry, note) in changed {
            self.add_history(entry);
            self.notices.push(Notice {
                promotion: None,
                reason: EventReason::ConfigChanged,
                note,
            });
        }
    }

    /// Health of what runs, from its workloads.
    pub(super) fn track_health(&mut self) {
        let applications: Vec<String> = self.applications.keys().cloned().collect();
        for application in applications {
            if self.in_flight.contains_key(&application) {
                continue;
            }
            let Some(release) = self.current_release(&application) else {
                continue;
            };
            let pins = pins_for(self.snapshot, &application, &release, &self.tenant);
            let health = health_of(&rollout_of(self.snapshot, &pins, None));
            let now = self.snapshot.now.clone();
            if let Some(app) = self.applications.get_mut(&application)
                && app.health != health
            {
                app.health = health;
                app.health_since = Some(now.clone());
                if health == Health::Healthy
                    && let Some(entry) = self
                        .history
                        .iter_mut()
                        .find(|entry| entry.application == application)
                {
                    if entry.change == ChangeKind::Configuration
                        && entry.completed_at.is_none()
                        && entry.config_hash == app.config_hash
                    {
                        // A configuration change is complete once its workloads are healthy again.
                        entry.completed_at = Some(now);
                    } else if entry.outcome == Phase::RolledBack && entry.restored_at.is_none() {
                        // The release rolled back to runs healthy again: the failure is restored.
                        entry.restored_at = Some(now);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
