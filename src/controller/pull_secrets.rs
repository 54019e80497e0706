//! Registry credentials of an Artifact: its imagePullSecrets, else those
//! of its namespace's default ServiceAccount. Read by the Artifact
//! reconciler to resolve images and by the supply-chain checks to fetch
//! what is attached to a digest.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::Api;

use super::context::Ctx;
use crate::api::Artifact;
use crate::registry::{PullSecrets, RegistryError};

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
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.local.clone(), &namespace);
        if let Some(account) = accounts.get_opt("default").await.map_err(read)? {
            names = account
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.name)
                .collect();
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.local.clone(), &namespace);
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
