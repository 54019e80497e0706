//! The Artifact reconciler: resolves every image to a digest once and
//! records it, with the provenance check, in status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::{info, instrument};

use super::Error;
use super::context::Ctx;
use super::error::{self, Schedule};
use crate::api::{Artifact, CONDITION_READY};
use crate::core::artifact::{self, Resolution};
use crate::core::conditions;
use crate::core::reasons::ResolutionFailure;
use crate::registry::{PullSecrets, RegistryError};

const CONTROLLER: &str = "artifact";
/// Retries after a transient registry failure: 5 s, 10 s, … up to 10 minutes.
const RETRY: Schedule = Schedule {
    first: Duration::from_secs(5),
    cap: Duration::from_secs(600),
};
/// Retries after refused credentials (a Secret may be fixed): 1 minute,
/// 2, … up to an hour.
const RETRY_UNAUTHORIZED: Schedule = Schedule {
    first: Duration::from_secs(60),
    cap: Duration::from_secs(3600),
};

/// Resolves what is unresolved; a resolved Artifact is never resolved again.
#[instrument(skip_all, fields(name = %artifact.name_any(), namespace = artifact.namespace(), generation = artifact.metadata.generation))]
pub async fn reconcile(artifact: Arc<Artifact>, ctx: Ctx) -> Result<Action, Error> {
    let pending = artifact::unresolved(&artifact);
    let status = artifact.status.clone().unwrap_or_default();
    let settled = status.observed_generation == artifact.metadata.generation
        && status.provenance.is_some()
        && conditions::find(&status.conditions, CONDITION_READY).is_some();
    if pending.is_empty() && settled {
        return Ok(Action::await_change());
    }
    // Resolution retries back off per Artifact, apart from reconcile errors;
    // the status write that recorded a failure brings the Artifact back at
    // once, and that is not yet its turn.
    let key = error::key(
        "artifact-resolution",
        artifact.namespace().as_deref(),
        &artifact.name_any(),
    );
    if settled && let Some(remaining) = ctx.backoff.waiting(&key) {
        return Ok(Action::requeue(remaining));
    }

    let resolutions: BTreeMap<String, Resolution> = if pending.is_empty() {
        BTreeMap::new()
    } else {
        match pull_secrets(&ctx, &artifact).await {
            Ok(secrets) => join_all(pending.iter().map(|(component, image, expected)| {
                let secrets = &secrets;
                let ctx = &ctx;
                async move {
                    let resolution = match ctx.resolver.resolve(image, expected.as_deref(), secrets).await {
                        Ok(digest) => Resolution::Resolved(digest),
                        Err(error) => error.resolution(component),
                    };
                    (component.clone(), resolution)
                }
            }))
            .await
            .into_iter()
            .collect(),
            Err(PullSecretError::Read { source }) => return Err(Error::Kube(source)),
            Err(error) => pending
                .iter()
                .map(|(component, _, _)| {
                    let failure = Resolution::Failed {
                        failure: ResolutionFailure::PullSecretMissing,
                        message: error.to_string(),
                    };
                    (component.clone(), failure)
                })
                .collect(),
        }
    };

    let now = ctx.now();
    let new_status = artifact::status(&artifact, &resolutions, &now);
    if artifact.status.as_ref() != Some(&new_status) {
        ctx.apply_status(artifact.as_ref(), &new_status, CONTROLLER)
            .await?;
        if let Some((reason, note)) = artifact::ready_event(&status, &new_status) {
            info!(%reason, "artifact {note}");
            ctx.event(artifact.as_ref(), reason, note);
        }
    }

    let failures = resolutions.values().filter_map(|r| match r {
        Resolution::Failed { failure, .. } => Some(*failure),
        Resolution::Resolved(_) => None,
    });
    // Resolution retries back off per Artifact, apart from reconcile errors.
    let key = error::key(
        "artifact-resolution",
        artifact.namespace().as_deref(),
        &artifact.name_any(),
    );
    Ok(match retry_after(failures) {
        Some(schedule) => Action::requeue(ctx.backoff.failed(&key, &schedule)),
        None => {
            ctx.backoff.succeeded(&key);
            Action::await_change()
        }
    })
}

/// How to resolve again after `failures`: soon after a transient one,
/// later after refused credentials (a Secret may be fixed), otherwise only
/// when the Artifact changes.
fn retry_after(failures: impl IntoIterator<Item = ResolutionFailure>) -> Option<Schedule> {
    let failures: Vec<ResolutionFailure> = failures.into_iter().collect();
    if failures.iter().any(|failure| failure.is_transient()) {
        Some(RETRY)
    } else if failures.contains(&ResolutionFailure::Unauthorized) {
        Some(RETRY_UNAUTHORIZED)
    } else {
        None
    }
}

/// Why an Artifact's registry credentials cannot be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum PullSecretError {
    /// Not the Artifact's problem: the reconcile fails and is retried.
    #[error("cannot read the pull secrets")]
    Read {
        #[source]
        source: kube::Error,
    },
    #[error("pull Secret {namespace}/{name} (spec.imagePullSecrets) not found")]
    NotFound { namespace: String, name: String },
    #[error("pull Secret {namespace}/{name} has no .dockerconfigjson key")]
    NoDockerConfigJson { namespace: String, name: String },
    // The source is in the message too: the message is the condition's, shown without its chain.
    #[error("pull Secret {namespace}/{name}: {source}")]
    Unusable {
        namespace: String,
        name: String,
        #[source]
        source: RegistryError,
    },
}

/// Registry credentials for `artifact`: its imagePullSecrets, else those of
/// the namespace's default ServiceAccount.
pub(super) async fn pull_secrets(ctx: &Ctx, artifact: &Artifact) -> Result<PullSecrets, PullSecretError> {
    let read = |source| PullSecretError::Read { source };
    let namespace = artifact.namespace().unwrap_or_default();
    let mut names: Vec<String> = artifact
        .spec
        .image_pull_secrets
        .iter()
        .map(|s| s.name.clone())
        .collect();
    if names.is_empty() {
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
        if let Some(account) = accounts.get_opt("default").await.map_err(read)? {
            names = account
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.name)
                .collect();
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut pull = PullSecrets::default();
    for name in names {
        let Some(secret) = secrets.get_opt(&name).await.map_err(read)? else {
            return Err(PullSecretError::NotFound { namespace, name });
        };
        let Some(config) = secret.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) else {
            return Err(PullSecretError::NoDockerConfigJson { namespace, name });
        };
        let parsed =
            PullSecrets::from_dockerconfigjson(&config.0).map_err(|source| PullSecretError::Unusable {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
        pull.extend(parsed);
    }
    Ok(pull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_soon_refused_credentials_later_the_rest_never() {
        assert_eq!(
            (0..4).map(|n| RETRY.delay(n).as_secs()).collect::<Vec<_>>(),
            vec![5, 10, 20, 40]
        );
        assert_eq!(RETRY.delay(20), Duration::from_secs(600));
        assert_eq!(RETRY_UNAUTHORIZED.delay(1), Duration::from_secs(120));
        use ResolutionFailure as F;
        assert_eq!(retry_after([]), None);
        assert_eq!(retry_after([F::RegistryUnavailable]), Some(RETRY));
        assert_eq!(retry_after([F::PullSecretMissing]), Some(RETRY));
        assert_eq!(
            retry_after([F::Unauthorized, F::RegistryUnavailable]),
            Some(RETRY)
        );
        assert_eq!(retry_after([F::Unauthorized]), Some(RETRY_UNAUTHORIZED));
        assert_eq!(
            retry_after([F::DigestMismatch, F::Unauthorized]),
            Some(RETRY_UNAUTHORIZED)
        );
        for failure in [
            F::DigestMismatch,
            F::ImageNotFound,
            F::InvalidReference,
            F::RegistryError,
        ] {
            assert_eq!(retry_after([failure]), None, "{failure:?}");
        }
    }

    #[test]
    fn pull_secret_problems_read_as_before() {
        let not_found = PullSecretError::NotFound {
            namespace: "shop".into(),
            name: "regcred".into(),
        };
        assert_eq!(
            not_found.to_string(),
            "pull Secret shop/regcred (spec.imagePullSecrets) not found"
        );
        let unusable = PullSecretError::Unusable {
            namespace: "shop".into(),
            name: "regcred".into(),
            source: PullSecrets::from_dockerconfigjson(b"not json").unwrap_err(),
        };
        assert_eq!(
            unusable.to_string(),
            "pull Secret shop/regcred: pull secret is not valid .dockerconfigjson"
        );
    }
}
