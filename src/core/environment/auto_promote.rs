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
    /// been promoted here, requested by the operator's user.
    pub(super) fn auto_promotions(&self) -> Vec<Promotion> {
        let environment = self.snapshot.environment;
        // Not for a workload cluster's Environment (its validation says so).
        if !environment.spec.auto_promote || environment.spec.cluster.is_some() {
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
                        requested_by: self.snapshot.operator.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EnvironmentStatus, Phase};
    use crate::core::environment::fixture::{
        A, B, C, OPERATOR, Objects, after_pin, artifact, deployment, ended, environment, pin, promotion,
        running,
    };
    use crate::core::environment::plan;

    fn auto(artifact: &str, name: &str) -> Promotion {
        let mut promotion = Promotion::new(
            name,
            PromotionSpec {
                artifact: artifact.into(),
                environment: "dev".into(),
                reason: Some("autoPromote".into()),
                requested_by: Some(OPERATOR.into()),
                r#override: None,
                approvals: Vec::new(),
            },
        );
        promotion.metadata.namespace = Some("shop".into());
        promotion.metadata.labels = Some([(AUTO_PROMOTED_LABEL.to_string(), "true".to_string())].into());
        promotion
    }

    fn not_ready(mut artifact: Artifact) -> Artifact {
        let status = artifact.status.as_mut().unwrap();
        status.conditions[0].status = "False".into();
        status.images.clear();
        artifact
    }

    #[test]
    fn the_newest_ready_artifact_is_promoted_once() {
        let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
        objects
            .artifacts
            .push(not_ready(artifact("shop-3", "2.0.0", C, 20)));
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            vec![auto("shop-2", "shop-2-dev")],
            "shop-3 is newer but not Ready"
        );

        objects.promotions = vec![ended(auto("shop-2", "shop-2-dev"), Phase::Failed, 50)];
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            vec![auto("shop-1", "shop-1-dev")],
            "an Artifact promoted here once is not promoted again by itself"
        );
    }

    #[test]
    fn nothing_while_the_application_is_busy_or_already_runs_the_newest() {
        let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
        objects.promotions = vec![promotion("manual", "shop-1", 50)];
        assert_eq!(plan(&objects.snapshot()).new_promotions, Vec::new(), "busy");

        let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
        objects.environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-2", "1.1.0", B, None)],
            ..Default::default()
        });
        objects.workloads = vec![after_pin(deployment(), &pin("shop-2", B, None), true)];
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            Vec::new(),
            "shop-1 is older"
        );

        let objects = Objects::new(environment("dev", ""));
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            Vec::new(),
            "autoPromote is off"
        );
    }

    #[test]
    fn a_workload_clusters_environment_creates_no_promotion_and_says_why() {
        let objects = Objects::new(environment("dev", "  autoPromote: true\n  cluster: eu"));
        let plan = plan(&objects.snapshot());
        assert_eq!(plan.new_promotions, Vec::new());
        let ready = crate::core::conditions::find(&plan.status.conditions, crate::api::CONDITION_READY)
            .expect("Ready");
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            (
                "False",
                "InvalidSpec",
                "spec.autoPromote: an Environment of a workload cluster (spec.cluster) is promoted by Promotions \
                 created on the hub; autoPromote is not available there"
            )
        );
    }

    #[test]
    fn an_artifact_without_a_version_order_is_newer_when_created_later() {
        let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
        objects.artifacts = vec![
            artifact("shop-abc", "sha-abc1234", A, 0),
            artifact("shop-def", "sha-def5678", B, 30),
        ];
        for artifact in &mut objects.artifacts {
            artifact.spec.version_scheme = crate::api::VersionScheme::Opaque;
        }
        objects.environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-abc", "sha-abc1234", A, None)],
            ..Default::default()
        });
        objects.workloads = vec![after_pin(deployment(), &pin("shop-abc", A, None), true)];
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            vec![auto("shop-def", "shop-def-dev")]
        );
    }

    #[test]
    fn a_long_name_is_cut_to_253_characters_without_a_trailing_dash() {
        let long = "s".repeat(251);
        let mut objects = Objects::new(environment("dev", "  autoPromote: true"));
        objects.artifacts = vec![artifact(&long, "1.0.0", A, 0)];
        // 251 + "-dev" is 255; cut at 253 leaves "<long>-d".
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            vec![auto(&long, &format!("{long}-d"))]
        );
        let longer = "s".repeat(252);
        objects.artifacts = vec![artifact(&longer, "1.0.0", A, 0)];
        assert_eq!(
            plan(&objects.snapshot()).new_promotions,
            vec![auto(&longer, &longer)]
        );
    }
}
