//! What runs and what ran: the application status a finished rollout
//! records, the history entry it adds, configuration-only changes of what
//! runs, and the health of what runs, from its Deployments.

use kube::ResourceExt;

use crate::api::{ApplicationStatus, Artifact, Health, HistoryEntry, Phase, Promotion, PromotionStatus};

use super::release::{Release, health_of, pins_for, rollout_of};
use super::{Decision, Notice};

impl Decision<'_, '_> {
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
}
