//! An Artifact's status from what resolving its images found.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Artifact, ArtifactStatus, ProvenanceStatus, ResolvedImage};
use crate::core::conditions::{self, Wanted};
use crate::core::gates::provenance;

/// What resolving one component's image gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved(String),
    Failed {
        failure: ResolutionFailure,
        message: String,
    },
}

/// Why an image was not resolved; its [`reason`](Self::reason) is the
/// Artifact's `Ready` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionFailure {
    /// The registry has another digest than `spec.images[].digest`.
    DigestMismatch,
    /// The repository or tag does not exist.
    ImageNotFound,
    /// The reference or its digest is malformed.
    InvalidReference,
    /// The registry refused the credentials, or they could not be used.
    Unauthorized,
    /// A pull Secret the Artifact names (or the default ServiceAccount's) is
    /// missing or unusable.
    PullSecretMissing,
    /// The registry did not answer, or not as the protocol says.
    RegistryUnavailable,
    /// The registry refused the request otherwise.
    RegistryError,
}

impl ResolutionFailure {
    pub const ALL: [Self; 7] = [
        Self::DigestMismatch,
        Self::ImageNotFound,
        Self::InvalidReference,
        Self::Unauthorized,
        Self::PullSecretMissing,
        Self::RegistryUnavailable,
        Self::RegistryError,
    ];

    /// The PascalCase condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::DigestMismatch => "DigestMismatch",
            Self::ImageNotFound => "ImageNotFound",
            Self::InvalidReference => "InvalidReference",
            Self::Unauthorized => "Unauthorized",
            Self::PullSecretMissing => "PullSecretMissing",
            Self::RegistryUnavailable => "RegistryUnavailable",
            Self::RegistryError => "RegistryError",
        }
    }

    /// The failure whose [`reason`](Self::reason) is `reason`, as read back
    /// from an Artifact's `Ready` condition.
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|failure| failure.reason() == reason)
    }

    /// No retry can change it: the spec is immutable, so only a new Artifact
    /// can be promoted.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::DigestMismatch | Self::ImageNotFound | Self::InvalidReference
        )
    }

    /// Worth retrying without anyone changing anything.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::RegistryUnavailable | Self::PullSecretMissing)
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
            type_: crate::api::CONDITION_READY,
            status: true,
            reason: "Resolved",
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
                type_: crate::api::CONDITION_READY,
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
                type_: crate::api::CONDITION_READY,
                status: false,
                reason: "Resolving",
                message: "resolving images".into(),
            },
        }
    };
    status.conditions = conditions::set(&status.conditions, ready, artifact.metadata.generation, now);
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
    fn every_failure_reads_back_from_its_reason() {
        for failure in ResolutionFailure::ALL {
            assert_eq!(ResolutionFailure::from_reason(failure.reason()), Some(failure));
        }
        assert_eq!(ResolutionFailure::from_reason("Resolved"), None);
        assert_eq!(ResolutionFailure::from_reason("digestmismatch"), None);
    }

    #[test]
    fn only_what_a_new_artifact_fixes_is_terminal_and_only_availability_is_transient() {
        let terminal: Vec<&str> = ResolutionFailure::ALL
            .into_iter()
            .filter(|f| f.is_terminal())
            .map(ResolutionFailure::reason)
            .collect();
        assert_eq!(terminal, ["DigestMismatch", "ImageNotFound", "InvalidReference"]);
        let transient: Vec<&str> = ResolutionFailure::ALL
            .into_iter()
            .filter(|f| f.is_transient())
            .map(ResolutionFailure::reason)
            .collect();
        assert_eq!(transient, ["PullSecretMissing", "RegistryUnavailable"]);
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
        let ready = conditions::find(&status.conditions, crate::api::CONDITION_READY).unwrap();
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
        let ready = conditions::find(&status.conditions, crate::api::CONDITION_READY).unwrap();
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
}
