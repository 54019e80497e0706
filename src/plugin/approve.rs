//! `kubectl hoist approve PROMOTION` and `kubectl hoist reject PROMOTION`:
//! append an approval (or a rejection) in the name of the user the API
//! server authenticates, with their groups.
//!
//! The name and the groups come from a SelfSubjectReview, never from a
//! flag or the kubeconfig, so they are what the admission policy compares
//! approvals against (`request.userInfo.username` and `.groups`).

use std::fmt;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{FIELD_MANAGER, PluginError, get};
use crate::api::{ApprovalDecision, ApprovalRequest, Promotion};

/// How often to re-read and retry when someone else changed the Promotion
/// between our read and our patch.
const ATTEMPTS: usize = 3;

/// Who the API server authenticates the client as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// The authenticated user's name and groups, from an
/// `authentication.k8s.io/v1` SelfSubjectReview (what `kubectl auth whoami`
/// uses).
pub async fn whoami(client: &Client) -> Result<Identity, PluginError> {
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
    let user_info = review.status.and_then(|status| status.user_info);
    let groups = user_info
        .as_ref()
        .and_then(|info| info.groups.clone())
        .unwrap_or_default();
    user_info
        .and_then(|info| info.username)
        .filter(|username| !username.is_empty())
        .map(|user| Identity { user, groups })
        .ok_or(PluginError::IdentityMissing)
}

/// What deciding on a Promotion as one user takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalPatch {
    /// The user decided so already, and it stands: deciding again would
    /// change nothing.
    AlreadyDecided,
    /// A JSON patch (RFC 6902) appending the entry. spec.approvals may
    /// only grow (a CEL rule), so it is appended to, never replaced: the
    /// first entry creates the list, guarded by a `test` that it is still
    /// absent (a missing path tests equal to null), so a concurrent first
    /// approval makes the patch fail instead of being overwritten.
    Append(Value),
}

/// The patch that records `decision` on `promotion` as `identity`. An
/// earlier entry of the same user and decision stands unless the operator
/// recorded it as unverified (written before the admission policy was
/// installed): then a new, verified one is worth adding.
pub fn approval_patch(
    promotion: &Promotion,
    identity: &Identity,
    decision: ApprovalDecision,
    comment: Option<&str>,
) -> Result<ApprovalPatch, PluginError> {
    ensure_open(promotion)?;
    let judged = promotion
        .status
        .as_ref()
        .map(|status| status.approvals.as_slice())
        .unwrap_or_default();
    let standing = promotion.spec.approvals.iter().any(|earlier| {
        earlier.user == identity.user
            && earlier.decision == decision
            && !judged.iter().any(|j| {
                j.user == earlier.user && j.decision == earlier.decision && !j.verified && !j.counted
            })
    });
    if standing {
        return Ok(ApprovalPatch::AlreadyDecided);
    }
    let approval = ApprovalRequest {
        user: identity.user.clone(),
        groups: identity.groups.clone(),
        decision,
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

/// What `approve` or `reject` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    Decided {
        promotion: String,
        identity: Identity,
        decision: ApprovalDecision,
        /// Entries in spec.approvals now, this one included.
        approvals: usize,
    },
    AlreadyDecided {
        promotion: String,
        user: String,
        decision: ApprovalDecision,
    },
}

fn verb(decision: ApprovalDecision) -> &'static str {
    match decision {
        ApprovalDecision::Approve => "approved",
        ApprovalDecision::Reject => "rejected",
    }
}

impl fmt::Display for ApproveOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproveOutcome::Decided {
                promotion,
                identity,
                decision,
                approvals,
            } => {
                let groups = if identity.groups.is_empty() {
                    "no groups".to_string()
                } else {
                    format!("groups {}", identity.groups.join(", "))
                };
                writeln!(
                    f,
                    "Promotion {promotion} {} by {} ({groups}); {approvals} entr{} in spec.approvals",
                    verb(*decision),
                    identity.user,
                    if *approvals == 1 { "y" } else { "ies" }
                )?;
                writeln!(f, "See whether it counts with: kubectl hoist why {promotion}")
            }
            ApproveOutcome::AlreadyDecided {
                promotion,
                user,
                decision,
            } => writeln!(
                f,
                "{user} already {} Promotion {promotion}; nothing changed",
                verb(*decision)
            ),
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
    decide(client, namespace, promotion, ApprovalDecision::Approve, comment).await
}

/// `reject PROMOTION --reason R`: appends a rejection by the current user;
/// from an allowed approver it ends the Promotion as Rejected.
pub async fn reject(
    client: &Client,
    namespace: &str,
    promotion: &str,
    reason: &str,
) -> Result<ApproveOutcome, PluginError> {
    decide(
        client,
        namespace,
        promotion,
        ApprovalDecision::Reject,
        Some(reason),
    )
    .await
}

async fn decide(
    client: &Client,
    namespace: &str,
    promotion: &str,
    decision: ApprovalDecision,
    comment: Option<&str>,
) -> Result<ApproveOutcome, PluginError> {
    let api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let mut current = get(&api, "Promotion", promotion, namespace).await?;
    ensure_open(&current)?;
    let identity = whoami(client).await?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let action = match decision {
        ApprovalDecision::Approve => format!("approve Promotion {promotion}"),
        ApprovalDecision::Reject => format!("reject Promotion {promotion}"),
    };
    for _ in 0..ATTEMPTS {
        let patch = match approval_patch(&current, &identity, decision, comment)? {
            ApprovalPatch::AlreadyDecided => {
                return Ok(ApproveOutcome::AlreadyDecided {
                    promotion: promotion.to_string(),
                    user: identity.user,
                    decision,
                });
            }
            ApprovalPatch::Append(patch) => patch,
        };
        let patch = Patch::<()>::Json(serde_json::from_value(patch).map_err(PluginError::Patch)?);
        match api.patch(promotion, &params, &patch).await {
            Ok(decided) => {
                return Ok(ApproveOutcome::Decided {
                    promotion: promotion.to_string(),
                    identity,
                    decision,
                    approvals: decided.spec.approvals.len(),
                });
            }
            // A failed `test` (someone approved first) is a 422; so is a
            // refusal by the schema. Only the former is worth a retry, and
            // only it changes the object. A refusal by the admission policy
            // (403) says what is missing.
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let fresh = get(&api, "Promotion", promotion, namespace).await?;
                if fresh.resource_version() == current.resource_version() {
                    return Err(PluginError::Api {
                        action,
                        source: kube::Error::Api(status),
                    });
                }
                ensure_open(&fresh)?;
                current = fresh;
            }
            Err(source) => return Err(PluginError::Api { action, source }),
        }
    }
    Err(PluginError::Contended {
        promotion: promotion.to_string(),
    })
}
