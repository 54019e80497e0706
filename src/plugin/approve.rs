//! `kubectl hoist approve PROMOTION`: append an approval in the name of the
//! user the API server authenticates.
//!
//! The name comes from a SelfSubjectReview, never from a flag or the
//! kubeconfig, so it is the same name the admission policy compares
//! approvals against (`request.userInfo.username`).

use std::fmt;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{FIELD_MANAGER, PluginError, get};
use crate::api::{ApprovalRequest, Promotion};

/// How often to re-read and retry when someone else changed the Promotion
/// between our read and our patch.
const ATTEMPTS: usize = 3;

/// The authenticated user's name, from an `authentication.k8s.io/v1`
/// SelfSubjectReview (what `kubectl auth whoami` uses).
pub async fn whoami(client: &Client) -> Result<String, PluginError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) if status.code == 404 => PluginError::IdentityUnsupported,
            source => PluginError::Api {
                action: "ask the API server who you are (SelfSubjectReview)".to_string(),
                source,
            },
        })?;
    review
        .status
        .and_then(|status| status.user_info)
        .and_then(|user| user.username)
        .filter(|username| !username.is_empty())
        .ok_or(PluginError::IdentityMissing)
}

/// What approving a Promotion as one user takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalPatch {
    /// The user approved already; approving again would change nothing.
    AlreadyApproved,
    /// A JSON patch (RFC 6902) appending the approval. spec.approvals may
    /// only grow (a CEL rule), so it is appended to, never replaced: the
    /// first approval creates the list, guarded by a `test` that it is still
    /// absent (a missing path tests equal to null), so a concurrent first
    /// approval makes the patch fail instead of being overwritten.
    Append(Value),
}

/// The patch that approves `promotion` as `user`.
pub fn approval_patch(
    promotion: &Promotion,
    user: &str,
    comment: Option<&str>,
) -> Result<ApprovalPatch, PluginError> {
    ensure_open(promotion)?;
    if promotion.spec.approvals.iter().any(|a| a.user == user) {
        return Ok(ApprovalPatch::AlreadyApproved);
    }
    let approval = ApprovalRequest {
        user: user.to_string(),
        comment: comment.map(str::to_string),
    };
    Ok(ApprovalPatch::Append(if promotion.spec.approvals.is_empty() {
        json!([
            {"op": "test", "path": "/spec/approvals", "value": null},
            {"op": "add", "path": "/spec/approvals", "value": [approval]},
        ])
    } else {
        json!([{"op": "add", "path": "/spec/approvals/-", "value": approval}])
    }))
}

/// Approvals of a Promotion that has ended change nothing; refuse them so
/// nobody believes they did.
fn ensure_open(promotion: &Promotion) -> Result<(), PluginError> {
    match promotion.status.as_ref().map(|s| s.phase) {
        Some(phase) if phase.is_terminal() => Err(PluginError::Terminal {
            promotion: promotion.name_any(),
            phase,
        }),
        _ => Ok(()),
    }
}

/// What `approve` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    Approved {
        promotion: String,
        user: String,
        /// Approvals in spec.approvals now, this one included.
        approvals: usize,
    },
    AlreadyApproved {
        promotion: String,
        user: String,
    },
}

impl fmt::Display for ApproveOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproveOutcome::Approved {
                promotion,
                user,
                approvals,
            } => writeln!(
                f,
                "Promotion {promotion} approved by {user} ({approvals} approval{} so far)",
                if *approvals == 1 { "" } else { "s" }
            ),
            ApproveOutcome::AlreadyApproved { promotion, user } => {
                writeln!(
                    f,
                    "{user} already approved Promotion {promotion}; nothing changed"
                )
            }
        }
    }
}

/// `approve PROMOTION [--comment C]`: appends an approval by the current
/// user to spec.approvals. The operator then checks it against the
/// Environment's approval gate.
pub async fn approve(
    client: &Client,
    namespace: &str,
    promotion: &str,
    comment: Option<&str>,
) -> Result<ApproveOutcome, PluginError> {
    let api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let mut current = get(&api, "Promotion", promotion, namespace).await?;
    ensure_open(&current)?;
    let user = whoami(client).await?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    for _ in 0..ATTEMPTS {
        let patch = match approval_patch(&current, &user, comment)? {
            ApprovalPatch::AlreadyApproved => {
                return Ok(ApproveOutcome::AlreadyApproved {
                    promotion: promotion.to_string(),
                    user,
                });
            }
            ApprovalPatch::Append(patch) => patch,
        };
        let patch = Patch::<()>::Json(serde_json::from_value(patch).map_err(PluginError::Patch)?);
        match api.patch(promotion, &params, &patch).await {
            Ok(approved) => {
                return Ok(ApproveOutcome::Approved {
                    promotion: promotion.to_string(),
                    user,
                    approvals: approved.spec.approvals.len(),
                });
            }
            // A failed `test` (someone approved first) is a 422; so is a
            // refusal by the schema. Only the former is worth a retry, and
            // only it changes the object.
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let fresh = get(&api, "Promotion", promotion, namespace).await?;
                if fresh.resource_version() == current.resource_version() {
                    return Err(PluginError::Api {
                        action: format!("approve Promotion {promotion}"),
                        source: kube::Error::Api(status),
                    });
                }
                ensure_open(&fresh)?;
                current = fresh;
            }
            Err(source) => {
                return Err(PluginError::Api {
                    action: format!("approve Promotion {promotion}"),
                    source,
                });
            }
        }
    }
    Err(PluginError::Contended {
        promotion: promotion.to_string(),
    })
}
