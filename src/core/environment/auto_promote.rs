//! `spec.autoPromote`: which Promotions an Environment creates by itself.

use std::collections::BTreeSet;

use kube::ResourceExt;

use crate::api::{Artifact, Promotion, PromotionSpec};
use crate::core::conditions;
use crate::core::version;

use super::Decision;

impl Decision<'_, '_> {
    /// With spec.autoPromote, a Promotion for the newest Ready Artifact of
    /// each targeted application that is newer than what runs and has never
    /// been promoted here.
    pub(super) fn auto_promotions(&self) -> Vec<Promotion> {
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
