//! Registry client: resolves image references to manifest digests, once.
//!
//! Hoist deploys digests, never tags. A [`Resolver`] asks the registry what a
//! tag points to (or checks that a pinned digest exists) and remembers the
//! answer for as long as it lives, so every caller sharing it sees the same
//! digest for the same reference even if the tag moves in the registry later.
//!
//! Image references follow Docker's normalisation (as `oci-client`'s
//! [`Reference`] implements it; Hoist parses them by hand, see `reference`):
//! a name without a registry lives on `docker.io`, and a single-segment
//! Docker Hub name lives under `library/`, so `nginx:1.27` is
//! `docker.io/library/nginx:1.27`. A reference without tag or digest means
//! `:latest`. [`pinned_reference`] and the digest cache both
//! work on the normalised form, so `nginx:1.27` and
//! `docker.io/library/nginx:1.27` are one entry.

mod attachments;
mod credentials;
mod layout;
mod reference;
mod resolver;

use std::time::Duration;

use oci_client::errors::OciDistributionError;
use oci_client::{ParseError, Reference};

pub use credentials::{PullSecrets, RegistryCredentials};
pub use layout::{LayoutError, OciLayout};
pub use reference::canonical_registry;
pub use resolver::{Resolver, ResolverConfig};

/// Why a reference could not be resolved. Every variant that concerns an image
/// names the reference as the caller gave it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference:?} is not a valid image reference")]
    InvalidReference {
        reference: String,
        #[source]
        source: ParseError,
    },

    #[error("{digest:?} is not a valid digest for image {reference}")]
    InvalidDigest {
        reference: String,
        digest: String,
        #[source]
        source: ParseError,
    },

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
            Self::InvalidReference { .. }
            | Self::InvalidDigest { .. }
            | Self::NotFound { .. }
            | Self::Unauthorized { .. }
            | Self::DigestMismatch { .. }
            | Self::Rejected { .. }
            | Self::ClientSetup { .. }
            | Self::InvalidPullSecret { .. }
            | Self::InvalidPullSecretEntry { .. } => false,
        }
    }
}

/// The reference to deploy: `image`'s registry and repository, normalised,
/// pinned to `digest`, with any tag dropped (`nginx:1.27` and
/// `sha256:ab…` give `docker.io/library/nginx@sha256:ab…`).
pub fn pinned_reference(image: &str, digest: &str) -> Result<String, RegistryError> {
    let reference = parse_reference(image)?;
    let pinned = reference.clone_with_digest(digest.to_owned()).whole();
    // Parsing the result back refuses a malformed digest here, before it can
    // reach a pod template.
    reference::parse(&pinned).map_err(|source| RegistryError::InvalidDigest {
        reference: image.to_owned(),
        digest: digest.to_owned(),
        source,
    })?;
    Ok(pinned)
}

/// The registry and repository `image` names, normalised as for pinning:
/// `nginx:1.27` is (`docker.io`, `library/nginx`).
pub fn registry_and_repository(image: &str) -> Result<(String, String), RegistryError> {
    let reference = parse_reference(image)?;
    Ok((reference.registry().to_owned(), reference.repository().to_owned()))
}

fn parse_reference(image: &str) -> Result<Reference, RegistryError> {
    reference::parse(image).map_err(|source| RegistryError::InvalidReference {
        reference: image.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pinning_a_docker_hub_short_name_normalises_it() {
        assert_eq!(
            pinned_reference("nginx:1.27", DIGEST).unwrap(),
            format!("docker.io/library/nginx@{DIGEST}")
        );
        assert_eq!(
            pinned_reference("bitnami/redis", DIGEST).unwrap(),
            format!("docker.io/bitnami/redis@{DIGEST}")
        );
    }

    #[test]
    fn pinning_keeps_registry_and_port_and_drops_the_tag() {
        assert_eq!(
            pinned_reference("127.0.0.1:5000/shop/backend:v1.2.3", DIGEST).unwrap(),
            format!("127.0.0.1:5000/shop/backend@{DIGEST}")
        );
    }

    #[test]
    fn pinning_replaces_a_digest_already_present() {
        let other = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        assert_eq!(
            pinned_reference(&format!("ghcr.io/acme/api:v1@{other}"), DIGEST).unwrap(),
            format!("ghcr.io/acme/api@{DIGEST}")
        );
    }

    #[test]
    fn pinning_refuses_a_malformed_digest() {
        let error = pinned_reference("ghcr.io/acme/api:v1", "sha256:abc").unwrap_err();
        assert!(
            matches!(&error, RegistryError::InvalidDigest { reference, digest, .. }
                if reference == "ghcr.io/acme/api:v1" && digest == "sha256:abc"),
            "{error:?}"
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn pinning_refuses_an_invalid_reference() {
        let error = pinned_reference("Not A Reference", DIGEST).unwrap_err();
        assert!(
            matches!(&error, RegistryError::InvalidReference { reference, .. } if reference == "Not A Reference"),
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
}
