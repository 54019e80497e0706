//! `kubectl hoist`: read what runs where and why, and ask for changes
//! (promote, approve, rollback, hold auto-promotion) without writing YAML.
//!
//! Every command is a function of a [`kube::Client`] and a namespace that
//! returns data or rendered text, so `src/bin/kubectl-hoist.rs` only parses
//! arguments and prints. Rendering is pure (objects and "now" in, text out),
//! so the output is the same for the same objects.

mod approve;
mod changes;
mod clusters;
mod compat;
mod diff;
mod dora;
mod gc;
mod hold;
mod hotfix;
mod promote;
mod publish;
mod status;
mod table;
mod why;

pub use approve::{ApprovalPatch, ApproveOutcome, Identity, approval_patch, approve, reject, whoami};
pub use changes::{
    Changes, Commits, Configuration, Pair, Selection, changes, compare_link, plan_changes, select,
};
pub use clusters::{clusters, render_clusters};
pub use compat::{compat, render_compat};
pub use diff::{ContainerDiff, Diff, diff, plan_diff};
pub use dora::{DoraOutput, dora, dora_document, parse_since, render_dora};
pub use gc::{gc, render_gc, retention_defaults};
pub use hold::{Held, Unheld, hold, unhold};
pub use hotfix::{Hotfix, Waive, hotfix, parse_waive, plan_hotfix, waive_arg};
pub use promote::{Rollback, new_promotion, promote, rollback, rollback_target};
pub use publish::{
    PublishError, PublishRequest, Published, artifact_name, docker_credentials, parse_images, publish,
    source_of,
};
pub use status::{Output, View, history, render_history, render_status, status, status_document};
pub use why::{render_why, why};

use kube::api::{Api, ListParams};
use std::path::{Path, PathBuf};

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use serde::de::DeserializeOwned;

use crate::api::Phase;

/// The field manager of the plugin's writes, so managedFields show which
/// tool added an approval or created a Promotion.
pub const FIELD_MANAGER: &str = "kubectl-hoist";

/// Why a `kubectl hoist` command failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load context {context} from the kubeconfig")]
    Kubeconfig {
        context: String,
        #[source]
        source: KubeconfigError,
    },
    #[error("cannot load the kubeconfig {}", path.display())]
    KubeconfigFile {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("cannot find a cluster: no usable kubeconfig (KUBECONFIG or ~/.kube/config) and not in a pod")]
    Infer(#[source] InferConfigError),
    #[error("cannot create a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("{kind} {name} not found in namespace {namespace}")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    #[error(transparent)]
    Publish(Box<PublishError>),
    #[error("--since {text:?} is not a duration such as 30d, 2w or 72h")]
    Since {
        text: String,
        #[source]
        source: k8s_openapi::jiff::Error,
    },
    #[error("--since {text:?} must be longer than zero")]
    SinceNotPositive { text: String },
    #[error("cannot {action}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the API server does not serve authentication.k8s.io/v1 SelfSubjectReview (Kubernetes 1.28 or later), \
         so kubectl hoist cannot learn who you are; an approval must name the user the API server \
         authenticates, so approve from a cluster that serves SelfSubjectReview"
    )]
    IdentityUnsupported,
    #[error("the API server's SelfSubjectReview named no user; an approval must name the authenticated user")]
    IdentityMissing,
    #[error(
        "Promotion {promotion} is {phase:?}, a terminal phase: approving it changes nothing; \
         create a new Promotion instead"
    )]
    Terminal { promotion: String, phase: Phase },
    #[error("cannot read the operator configuration {}", path.display())]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operator configuration {} is invalid", path.display())]
    ConfigInvalid {
        path: PathBuf,
        #[source]
        source: crate::core::operator_config::ConfigError,
    },
    #[error("the approval patch is not a valid JSON patch (a bug in kubectl-hoist)")]
    Patch(#[source] serde_json::Error),
    #[error("the approvals of Promotion {promotion} kept changing while approving; try again")]
    Contended { promotion: String },
    #[error(
        "no earlier successful release of {application} in Environment {environment} to roll back to \
         (status.history has none other than what runs); name one with --to"
    )]
    NoPreviousRelease {
        application: String,
        environment: String,
    },
    #[error(
        "no successful release {release} of {application} in the history of Environment {environment} \
         (kubectl hoist history {environment} lists them)"
    )]
    NoSuchRelease {
        application: String,
        environment: String,
        release: String,
    },
    #[error(
        "no successful release of {application} in the history of Environment {environment} \
         (kubectl hoist history {environment} lists them)"
    )]
    NoReleases {
        application: String,
        environment: String,
    },
    #[error(
        "{release} names releases of several applications in Environment {environment} ({applications}): \
         choose one with --application"
    )]
    Ambiguous {
        release: String,
        environment: String,
        applications: String,
    },
    #[error(
        "Environment {environment} does not auto-promote (spec.autoPromote is false): there is nothing to \
         hold or resume; manual Promotions are never held"
    )]
    NotAutoPromoted { environment: String },
    #[error("Artifact {artifact} is a release of {actual}, not of {application}")]
    WrongApplication {
        artifact: String,
        actual: String,
        application: String,
    },
    #[error(
        "{artifact} already runs for {application} in Environment {environment}; nothing to roll back to"
    )]
    AlreadyRunning {
        artifact: String,
        application: String,
        environment: String,
    },
}

impl From<PublishError> for PluginError {
    fn from(error: PublishError) -> Self {
        PluginError::Publish(Box::new(error))
    }
}

impl PluginError {
    /// What a person reads when the command fails: this error, then each
    /// cause on a line of its own; an API server's refusal ends the chain,
    /// told once as its own message with the field paths it names (kube's
    /// `Error::Api` would otherwise print the message twice, once inside a
    /// debug dump of the whole `Status`).
    pub fn report(&self) -> String {
        let mut lines = vec![self.to_string()];
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
                lines[0] = format!("{}: {}", lines[0], refusal(status));
                lines.truncate(1);
                break;
            }
            lines.push(format!("  caused by: {cause}"));
            source = cause.source();
        }
        lines.join("\n")
    }
}

/// An API server's refusal: its message, then the field paths of its causes
/// that the message does not already name.
fn refusal(status: &kube::core::Status) -> String {
    let message = if status.message.is_empty() {
        format!("the API server answered {} {}", status.code, status.reason)
    } else {
        status.message.clone()
    };
    let fields: Vec<&str> = status
        .details
        .iter()
        .flat_map(|details| &details.causes)
        .map(|cause| cause.field.as_str())
        .filter(|field| !field.is_empty() && !message.contains(*field))
        .collect();
    if fields.is_empty() {
        message
    } else {
        format!("{message} (field {})", fields.join(", "))
    }
}

/// A client from the kubeconfig file `kubeconfig`, else the usual one
/// (KUBECONFIG, ~/.kube/config, or the pod's service account), optionally
/// for another context, and the namespace to work in: `namespace`, else
/// the context's.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<(Client, String), PluginError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file_error = |source| PluginError::KubeconfigFile {
                path: path.to_path_buf(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(file_error)?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(file_error)?
        }
        (None, Some(context)) => {
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| PluginError::Kubeconfig {
                    context: context.to_string(),
                    source,
                })?
        }
        (None, None) => Config::infer().await.map_err(PluginError::Infer)?,
    };
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).map_err(PluginError::Client)?;
    Ok((client, namespace))
}

/// Reads one object, turning a 404 into [`PluginError::NotFound`].
async fn get<K>(api: &Api<K>, kind: &'static str, name: &str, namespace: &str) -> Result<K, PluginError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get(name).await.map_err(|source| match source {
        kube::Error::Api(status) if status.code == 404 => PluginError::NotFound {
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
        },
        source => PluginError::Api {
            action: format!("read {kind} {name} in namespace {namespace}"),
            source,
        },
    })
}

/// Every object of a kind in the namespace.
async fn list<K>(api: &Api<K>, kind: &'static str, namespace: &str) -> Result<Vec<K>, PluginError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|source| PluginError::Api {
            action: format!("list {kind}s in namespace {namespace}"),
            source,
        })
}
