//! An Artifact's status from what resolving its images found.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Artifact, ArtifactStatus, CONDITION_READY, ProvenanceStatus, ResolvedImage};
use crate::core::conditions::{self, Wanted};
use crate::core::gates::provenance;
use crate::core::kstatus;
use crate::core::reasons::{ConditionReason, EventReason, ResolutionFailure};

/// What resolving one component's image gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved(String),
    Failed {
        failure: ResolutionFailure,
        message: String,
    },
}

/// The components of `artifact` that still need resolving: resolved ones
/// are never resolved again.
pub fn unresolved(artifact: &Artifact) -> Vec<(String, String, Option<String>)> {
    let resolved = artifact
        .status
        .as_ref()
        .map(|s| s.images.as_slice())
        .unwrap_or_default();
    artifact
        .spec
        .images
        .iter()
        .filter(|image| !resolved.iter().any(|r| r.component == image.component))
        .map(|image| (image.component.clone(), image.image.clone(), image.digest.clone()))
        .collect()
}

/// The new status of `artifact` given fresh `resolutions` of its unresolved
/// components (by component).
pub fn status(artifact: &Artifact, resolutions: &BTreeMap<String, Resolution>, now: &Time) -> ArtifactStatus {
    let mut status = artifact.status.clone().unwrap_or_default();
    for image in &artifact.spec.images {
        if let Some(Resolution::Resolved(digest)) = resolutions.get(&image.component)
            && !status.images.iter().any(|r| r.component == image.component)
        {
            status.images.push(ResolvedImage {
                component: image.component.clone(),
                image: image.image.clone(),
                digest: digest.clone(),
                resolved_at: now.clone(),
            });
        }
    }
    // Spec order, so the status reads like the spec.
    status.images.sort_by_key(|r| {
        artifact
            .spec
            .images
            .iter()
            .position(|i| i.component == r.component)
    });

    let failures: Vec<(ResolutionFailure, &String)> = resolutions
        .values()
        .filter_map(|r| match r {
            Resolution::Failed { failure, message } => Some((*failure, message)),
            Resolution::Resolved(_) => None,
        })
        .collect();
    let all_resolved = artifact
        .spec
        .images
        .iter()
        .all(|i| status.images.iter().any(|r| r.component == i.component));
    let ready = if all_resolved {
        Wanted {
            type_: CONDITION_READY,
            status: true,
            reason: ConditionReason::Resolved,
            message: format!("all {} images resolved to digests", artifact.spec.images.len()),
        }
    } else {
        // A terminal failure says more than a transient one: report it first.
        let worst = failures
            .iter()
            .find(|(failure, _)| !failure.is_transient())
            .or(failures.first());
        match worst {
            Some((failure, _)) => Wanted {
                type_: CONDITION_READY,
                status: false,
                reason: failure.reason(),
                message: failures
                    .iter()
                    .map(|(_, message)| message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
                    + if failure.is_transient() {
                        ""
                    } else {
                        "; the spec cannot change: create a new Artifact"
                    },
            },
            None => Wanted {
                type_: CONDITION_READY,
                status: false,
                reason: ConditionReason::Resolving,
                message: "resolving images".into(),
            },
        }
    };
    let progress = kstatus::of_artifact(&ready);
    status.conditions = conditions::set(&status.conditions, ready, artifact.metadata.generation, now);
    status.conditions = kstatus::set(&status.conditions, progress, artifact.metadata.generation, now);
    if status.provenance.is_none() {
        let (revision, message) = provenance::revision_check(artifact);
        status.provenance = Some(ProvenanceStatus {
            revision,
            message,
            checked_at: now.clone(),
        });
    }
    status.observed_generation = artifact.metadata.generation;
    status
}

/// The Event for a change of an Artifact's `Ready` condition, in status or
/// reason, from `before` to `after`: its reason and note.
pub fn ready_event(before: &ArtifactStatus, after: &ArtifactStatus) -> Option<(EventReason, String)> {
    let ready = conditions::find(&after.conditions, CONDITION_READY)?;
    let reason: ConditionReason = ready.reason.parse().ok()?;
    let was = conditions::find(&before.conditions, CONDITION_READY)
        .map(|c| (c.status.as_str(), c.reason.parse::<ConditionReason>().ok()));
    (was != Some((ready.status.as_str(), Some(reason))))
        .then(|| (EventReason::Resolution(reason), ready.message.clone()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn now() -> Time {
        Time(Timestamp::from_second(1_795_000_000).expect("valid time"))
    }

    fn artifact() -> Artifact {
        serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {name: shop-1, namespace: shop, generation: 1}
spec:
  application: shop
  version: 1.0.0
  images:
    - {component: backend, image: "registry.example.com/shop/backend:1.0.0"}
    - {component: frontend, image: "registry.example.com/shop/frontend:1.0.0"}
"#,
        )
        .expect("fixture parses")
    }

    #[test]
    fn a_terminal_failure_is_reported_before_a_transient_one() {
        let resolutions: BTreeMap<String, Resolution> = [
            (
                "backend".to_string(),
                Resolution::Failed {
                    failure: ResolutionFailure::RegistryUnavailable,
                    message: "component backend: unavailable".into(),
                },
            ),
            (
                "frontend".to_string(),
                Resolution::Failed {
                    failure: ResolutionFailure::ImageNotFound,
                    message: "component frontend: not found".into(),
                },
            ),
        ]
        .into();
        let status = status(&artifact(), &resolutions, &now());
        let ready = conditions::find(&status.conditions, CONDITION_READY).unwrap();
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            (
                "False",
                "ImageNotFound",
                "component backend: unavailable; component frontend: not found; the spec cannot change: create a new Artifact"
            )
        );
    }

    #[test]
    fn a_transient_failure_alone_says_it_will_be_retried() {
        let resolutions: BTreeMap<String, Resolution> = [
            ("backend".to_string(), Resolution::Resolved("sha256:a".into())),
            (
                "frontend".to_string(),
                Resolution::Failed {
                    failure: ResolutionFailure::PullSecretMissing,
                    message: "pull Secret shop/regcred (spec.imagePullSecrets) not found".into(),
                },
            ),
        ]
        .into();
        let status = status(&artifact(), &resolutions, &now());
        let ready = conditions::find(&status.conditions, CONDITION_READY).unwrap();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            (
                "PullSecretMissing",
                "pull Secret shop/regcred (spec.imagePullSecrets) not found"
            )
        );
        assert_eq!(
            status
                .images
                .iter()
                .map(|i| i.component.as_str())
                .collect::<Vec<_>>(),
            ["backend"]
        );
    }

    #[test]
    fn a_ready_condition_is_told_once_per_status_and_reason() {
        let resolving = status(&artifact(), &BTreeMap::new(), &now());
        assert_eq!(
            ready_event(&ArtifactStatus::default(), &resolving),
            Some((
                EventReason::Resolution(ConditionReason::Resolving),
                "resolving images".to_string()
            ))
        );
        assert_eq!(ready_event(&resolving, &resolving), None);
        let failure = Resolution::Failed {
            failure: ResolutionFailure::ImageNotFound,
            message: "component backend: not found".into(),
        };
        let failed = status(&artifact(), &[("backend".to_string(), failure)].into(), &now());
        let (reason, _) = ready_event(&resolving, &failed).expect("a new reason");
        assert_eq!(reason.as_str(), "ImageNotFound");
        assert!(reason.is_warning());
    }
}
