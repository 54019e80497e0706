//! An Artifact's status from what resolving its images found.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Artifact, ArtifactStatus, ProvenanceStatus, ResolvedImage};
use crate::core::conditions::{self, Wanted};
use crate::core::gates;
use crate::registry::RegistryError;

/// What resolving one component's image gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved(String),
    Failed {
        /// PascalCase condition reason.
        reason: &'static str,
        message: String,
        /// Worth retrying without anyone changing anything.
        transient: bool,
    },
}

impl Resolution {
    /// Classifies a registry error for `component`.
    pub fn failed(component: &str, error: &RegistryError) -> Self {
        let reason = match error {
            RegistryError::DigestMismatch { .. } => "DigestMismatch",
            RegistryError::NotFound { .. } => "ImageNotFound",
            RegistryError::InvalidReference { .. } | RegistryError::InvalidDigest { .. } => {
                "InvalidReference"
            }
            RegistryError::Unauthorized { .. }
            | RegistryError::InvalidPullSecret { .. }
            | RegistryError::InvalidPullSecretEntry { .. } => "Unauthorized",
            _ if error.is_transient() => "RegistryUnavailable",
            _ => "RegistryError",
        };
        Resolution::Failed {
            reason,
            message: format!("component {component}: {error}"),
            transient: error.is_transient(),
        }
    }
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

    let failures: Vec<(&'static str, &String, bool)> = resolutions
        .values()
        .filter_map(|r| match r {
            Resolution::Failed {
                reason,
                message,
                transient,
            } => Some((*reason, message, *transient)),
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
            type_: crate::api::CONDITION_READY,
            status: true,
            reason: "Resolved",
            message: format!("all {} images resolved to digests", artifact.spec.images.len()),
        }
    } else {
        // A terminal failure says more than a transient one: report it first.
        let worst = failures
            .iter()
            .find(|(_, _, transient)| !transient)
            .or(failures.first());
        match worst {
            Some((reason, _, transient)) => Wanted {
                type_: crate::api::CONDITION_READY,
                status: false,
                reason,
                message: failures
                    .iter()
                    .map(|(_, message, _)| message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
                    + if *transient {
                        ""
                    } else {
                        "; the spec cannot change: create a new Artifact"
                    },
            },
            None => Wanted {
                type_: crate::api::CONDITION_READY,
                status: false,
                reason: "Resolving",
                message: "resolving images".into(),
            },
        }
    };
    status.conditions = conditions::set(&status.conditions, ready, artifact.metadata.generation, now);
    if status.provenance.is_none() {
        let (revision, message) = gates::revision_check(artifact);
        status.provenance = Some(ProvenanceStatus {
            revision,
            message,
            checked_at: now.clone(),
        });
    }
    status.observed_generation = artifact.metadata.generation;
    status
}
