//! Registry client: resolves image references to manifest digests, once;
//! and, for registry retention, deletes manifests by digest.
//!
//! Hoist deploys digests, never tags. A [`Resolver`] asks the registry what a
//! tag points to (or checks that a pinned digest exists) and remembers the
//! answer for as long as it lives, so every caller sharing it sees the same
//! digest for the same reference even if the tag moves in the registry later.
//!
//! Image references follow Docker's normalisation (see
//! [`crate::core::reference`], which parses them by hand): the digest cache
//! works on the normalised form, so `nginx:1.27` and
//! `docker.io/library/nginx:1.27` are one entry.

mod attachments;
mod credentials;
mod deletion;
mod layout;
mod resolver;

use std::time::Duration;

use oci_client::errors::OciDistributionError;

use crate::core::artifact::Resolution;
use crate::core::reasons::ResolutionFailure;
pub use crate::core::reference::{
    ReferenceError, canonical_registry, pinned_reference, registry_and_repository,
};
pub use credentials::{PullSecrets, RegistryCredentials};
pub use deletion::DeletionError;
pub use layout::{LayoutError, OciLayout};
pub use resolver::{Resolver, ResolverConfig};

/// Why a reference could not be resolved. Every variant that concerns an image
/// names the reference as the caller gave it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference, or a digest it is pinned to, is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("image {reference} does not exist in its registry: check the repository and tag")]
    NotFound {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("registry refused access to image {reference}: check the pull secret credentials for {registry}")]
    Unauthorized {
        reference: String,
        registry: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("registry for image {reference} is unavailable; will retry")]
    Unavailable {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("registry for image {reference} did not answer within {after:?}; will retry")]
    TimedOut { reference: String, after: Duration },

    #[error("image {reference} has digest {actual} in the registry, but {expected} was expected")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },

    #[error("registry rejected the request for image {reference}")]
    Rejected {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("registry gave an unexpected answer for image {reference}; will retry")]
    UnexpectedResponse {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("cannot create a registry client for image {reference}")]
    ClientSetup {
        reference: String,
        #[source]
        source: OciDistributionError,
    },

    #[error("pull secret is not valid .dockerconfigjson")]
    InvalidPullSecret {
        #[source]
        source: serde_json::Error,
    },

    #[error("pull secret entry for registry {registry:?} is unusable: {reason}")]
    InvalidPullSecretEntry { registry: String, reason: &'static str },
}

impl RegistryError {
    /// Whether the same request may succeed later without anyone changing
    /// anything: the caller should retry with backoff. Everything else needs a
    /// human (a fixed reference, a pushed tag, new credentials).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::TimedOut { .. } => true,
            // We cannot tell whether a registry that breaks the protocol will
            // recover, and giving up for good on a glitch would strand the
            // Artifact; a bounded backoff costs little.
            Self::UnexpectedResponse { .. } => true,
            Self::Reference(_)
            | Self::NotFound { .. }
            | Self::Unauthorized { .. }
            | Self::DigestMismatch { .. }
            | Self::Rejected { .. }
            | Self::ClientSetup { .. }
            | Self::InvalidPullSecret { .. }
            | Self::InvalidPullSecretEntry { .. } => false,
        }
    }

    /// Why an Artifact's image is not resolved, as its `Ready` condition
    /// says.
    pub fn failure(&self) -> ResolutionFailure {
        match self {
            Self::DigestMismatch { .. } => ResolutionFailure::DigestMismatch,
            Self::NotFound { .. } => ResolutionFailure::ImageNotFound,
            Self::Reference(_) => ResolutionFailure::InvalidReference,
            Self::Unauthorized { .. }
            | Self::InvalidPullSecret { .. }
            | Self::InvalidPullSecretEntry { .. } => ResolutionFailure::Unauthorized,
            _ if self.is_transient() => ResolutionFailure::RegistryUnavailable,
            _ => ResolutionFailure::RegistryError,
        }
    }

    /// What resolving `component`'s image came to.
    pub fn resolution(&self, component: &str) -> Resolution {
        Resolution::Failed {
            failure: self.failure(),
            message: format!("component {component}: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pinning_refuses_a_malformed_digest() {
        let error = RegistryError::from(pinned_reference("ghcr.io/acme/api:v1", "sha256:abc").unwrap_err());
        assert!(
            matches!(&error, RegistryError::Reference(ReferenceError::InvalidDigest { reference, digest, .. })
                if reference == "ghcr.io/acme/api:v1" && digest == "sha256:abc"),
            "{error:?}"
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn pinning_refuses_an_invalid_reference() {
        let error = RegistryError::from(pinned_reference("Not A Reference", DIGEST).unwrap_err());
        assert!(
            matches!(&error, RegistryError::Reference(ReferenceError::InvalidReference { reference, .. }) if reference == "Not A Reference"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "\"Not A Reference\" is not a valid image reference"
        );
    }

    #[test]
    fn only_availability_problems_are_transient() {
        let transient = RegistryError::TimedOut {
            reference: "r".into(),
            after: Duration::from_secs(1),
        };
        let terminal = RegistryError::DigestMismatch {
            reference: "r".into(),
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        };
        assert!(transient.is_transient());
        assert!(!terminal.is_transient());
        assert_eq!(
            terminal.to_string(),
            "image r has digest sha256:b in the registry, but sha256:a was expected"
        );
    }

    #[test]
    fn registry_errors_are_classified() {
        let timed_out = RegistryError::TimedOut {
            reference: "r".into(),
            after: Duration::from_secs(1),
        };
        let mismatch = RegistryError::DigestMismatch {
            reference: "r".into(),
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        };
        let entry = RegistryError::InvalidPullSecretEntry {
            registry: "ghcr.io".into(),
            reason: "no credentials",
        };
        assert_eq!(timed_out.failure(), ResolutionFailure::RegistryUnavailable);
        assert_eq!(mismatch.failure(), ResolutionFailure::DigestMismatch);
        assert_eq!(entry.failure(), ResolutionFailure::Unauthorized);
        assert_eq!(
            timed_out.resolution("backend"),
            Resolution::Failed {
                failure: ResolutionFailure::RegistryUnavailable,
                message: "component backend: registry for image r did not answer within 1s; will retry"
                    .into(),
            }
        );
    }
}
