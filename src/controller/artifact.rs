//! The Artifact reconciler: resolves every image to a digest once and
//! records it, with the provenance check, in status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{info, instrument};

use super::Error;
use super::context::Ctx;
use super::error::{self, Schedule};
use super::pull_secrets::{PullSecretError, pull_secrets};
use crate::api::{Artifact, CONDITION_READY};
use crate::core::artifact::{self, Resolution};
use crate::core::conditions;
use crate::core::reasons::ResolutionFailure;

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
}
