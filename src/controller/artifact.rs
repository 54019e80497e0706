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
use crate::api::{Artifact, CONDITION_READY};
use crate::core::artifact::{self, Resolution};
use crate::core::conditions;
use crate::registry::PullSecrets;

const CONTROLLER: &str = "artifact";
/// Retry interval after a transient registry failure.
const RETRY: Duration = Duration::from_secs(30);
/// Retry interval after refused credentials (a Secret may be fixed).
const RETRY_UNAUTHORIZED: Duration = Duration::from_secs(300);

/// Resolves what is unresolved; a resolved Artifact is never resolved again.
#[instrument(skip_all, fields(name = %artifact.name_any(), namespace = artifact.namespace(), generation = artifact.metadata.generation))]
pub async fn reconcile(artifact: Arc<Artifact>, ctx: Ctx) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let pending = artifact::unresolved(&artifact);
    let status = artifact.status.clone().unwrap_or_default();
    let settled = status.observed_generation == artifact.metadata.generation
        && status.provenance.is_some()
        && conditions::find(&status.conditions, CONDITION_READY).is_some();
    if pending.is_empty() && settled {
        return Ok(Action::await_change());
    }

    let resolutions: BTreeMap<String, Resolution> = if pending.is_empty() {
        BTreeMap::new()
    } else {
        match pull_secrets(&ctx, &artifact).await? {
            Ok(secrets) => join_all(pending.iter().map(|(component, image, expected)| {
                let secrets = &secrets;
                let ctx = &ctx;
                async move {
                    let resolution = match ctx.resolver.resolve(image, expected.as_deref(), secrets).await {
                        Ok(digest) => Resolution::Resolved(digest),
                        Err(error) => Resolution::failed(component, &error),
                    };
                    (component.clone(), resolution)
                }
            }))
            .await
            .into_iter()
            .collect(),
            Err(message) => pending
                .iter()
                .map(|(component, _, _)| {
                    let failure = Resolution::Failed {
                        reason: "PullSecretMissing",
                        message: message.clone(),
                        transient: true,
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
        let ready = conditions::find(&new_status.conditions, CONDITION_READY).cloned();
        let was = conditions::find(&status.conditions, CONDITION_READY)
            .map(|c| (c.status.clone(), c.reason.clone()));
        if let Some(ready) = ready
            && was != Some((ready.status.clone(), ready.reason.clone()))
        {
            let warning = ready.status != "True";
            info!(reason = %ready.reason, "artifact {}", ready.message);
            ctx.event(artifact.as_ref(), warning, &ready.reason, ready.message.clone());
        }
    }

    let transient = resolutions
        .values()
        .any(|r| matches!(r, Resolution::Failed { transient: true, .. }));
    let unauthorized = resolutions.values().any(|r| {
        matches!(
            r,
            Resolution::Failed {
                reason: "Unauthorized",
                ..
            }
        )
    });
    Ok(if transient {
        Action::requeue(RETRY)
    } else if unauthorized {
        Action::requeue(RETRY_UNAUTHORIZED)
    } else {
        Action::await_change()
    })
}

/// Registry credentials for `artifact`: its imagePullSecrets, else those of
/// the namespace's default ServiceAccount. `Ok(Err(..))` names a Secret that
/// is missing or unusable.
async fn pull_secrets(ctx: &Ctx, artifact: &Artifact) -> Result<Result<PullSecrets, String>, Error> {
    let namespace = artifact.namespace().unwrap_or_default();
    let mut names: Vec<String> = artifact
        .spec
        .image_pull_secrets
        .iter()
        .map(|s| s.name.clone())
        .collect();
    if names.is_empty() {
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
        if let Some(account) = accounts.get_opt("default").await.map_err(Error::Kube)? {
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
        let Some(secret) = secrets.get_opt(&name).await.map_err(Error::Kube)? else {
            return Ok(Err(format!(
                "pull Secret {namespace}/{name} (spec.imagePullSecrets) not found"
            )));
        };
        let Some(config) = secret.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) else {
            return Ok(Err(format!(
                "pull Secret {namespace}/{name} has no .dockerconfigjson key"
            )));
        };
        match PullSecrets::from_dockerconfigjson(&config.0) {
            Ok(parsed) => pull.extend(parsed),
            Err(error) => return Ok(Err(format!("pull Secret {namespace}/{name}: {error}"))),
        }
    }
    Ok(Ok(pull))
}
