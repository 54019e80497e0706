//! `kubectl hoist hold` and `kubectl hoist unhold`: pause and resume an
//! Environment's auto-promotion (`spec.autoPromotion.hold`). The hold
//! records who asked (the user a SelfSubjectReview names) and when; it
//! stops only the Promotions autoPromote creates, never a manual one.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::promote::requester;
use super::{FIELD_MANAGER, PluginError, get};
use crate::api::{AutoPromotionHold, Environment};

/// A hold that was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub environment: String,
    pub hold: AutoPromotionHold,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auto-promotion of {} held", self.environment)?;
        if let Some(by) = &self.hold.by {
            write!(f, " by {by}")?;
        }
        writeln!(f, ": {}", self.hold.reason)?;
        writeln!(
            f,
            "Manual Promotions still run; resume with: kubectl hoist unhold {}",
            self.environment
        )
    }
}

/// What unholding found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unheld {
    pub environment: String,
    /// The hold lifted; `None` when there was none.
    pub lifted: Option<AutoPromotionHold>,
}

impl fmt::Display for Unheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(hold) = &self.lifted else {
            return writeln!(
                f,
                "Auto-promotion of {} was not held: nothing to resume",
                self.environment
            );
        };
        write!(f, "Auto-promotion of {} resumed (held", self.environment)?;
        if let Some(by) = &hold.by {
            write!(f, " by {by}")?;
        }
        if let Some(since) = &hold.since {
            write!(f, " since {}", since.0)?;
        }
        writeln!(f, ": {})", hold.reason)
    }
}

/// `hold ENVIRONMENT --reason R`: sets spec.autoPromotion.hold, naming the
/// authenticated user and `now`.
pub async fn hold(
    client: &Client,
    namespace: &str,
    environment: &str,
    reason: &str,
    now: &Time,
) -> Result<Held, PluginError> {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    auto_promoting(&api, environment, namespace).await?;
    let hold = AutoPromotionHold {
        reason: reason.to_string(),
        by: requester(client).await?,
        since: Some(now.clone()),
    };
    patch_hold(&api, environment, json!(hold)).await?;
    Ok(Held {
        environment: environment.to_string(),
        hold,
    })
}

/// `unhold ENVIRONMENT`: removes spec.autoPromotion.hold.
pub async fn unhold(client: &Client, namespace: &str, environment: &str) -> Result<Unheld, PluginError> {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let found = auto_promoting(&api, environment, namespace).await?;
    let lifted = found.spec.auto_promotion.and_then(|policy| policy.hold);
    if lifted.is_some() {
        patch_hold(&api, environment, serde_json::Value::Null).await?;
    }
    Ok(Unheld {
        environment: environment.to_string(),
        lifted,
    })
}

/// The Environment, if autoPromote is on (a hold means nothing otherwise).
async fn auto_promoting(
    api: &Api<Environment>,
    environment: &str,
    namespace: &str,
) -> Result<Environment, PluginError> {
    let found = get(api, "Environment", environment, namespace).await?;
    if found.spec.auto_promote {
        Ok(found)
    } else {
        Err(PluginError::NotAutoPromoted {
            environment: environment.to_string(),
        })
    }
}

/// A merge patch of spec.autoPromotion.hold alone (`null` removes it).
async fn patch_hold(
    api: &Api<Environment>,
    environment: &str,
    hold: serde_json::Value,
) -> Result<(), PluginError> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(
        environment,
        &params,
        &Patch::Merge(json!({"spec": {"autoPromotion": {"hold": hold}}})),
    )
    .await
    .map(drop)
    .map_err(|source| PluginError::Api {
        action: format!("change the hold of Environment {environment}"),
        source,
    })
}
