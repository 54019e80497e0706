//! The Promotion reconciler. A Promotion into an existing Environment is
//! decided by that Environment's reconcile (see `environment.rs`); this one
//! only refuses Promotions whose Environment does not exist, since no
//! Environment reconcile would ever look at them. Like every reconcile, it
//! runs only once the caches have listed, so an absent Environment is
//! really absent.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::instrument;

use super::Error;
use super::context::Ctx;
use crate::api::{CONDITION_READY, Phase, Promotion};
use crate::core::conditions::{self, Wanted};
use crate::core::reasons::EventReason;

const CONTROLLER: &str = "promotion";

#[instrument(skip_all, fields(name = %promotion.name_any(), namespace = promotion.namespace(), generation = promotion.metadata.generation))]
pub async fn reconcile(promotion: Arc<Promotion>, ctx: Ctx) -> Result<Action, Error> {
    let status = promotion.status.clone().unwrap_or_default();
    if status.phase.is_terminal() {
        return Ok(Action::await_change());
    }
    let namespace = promotion.namespace().unwrap_or_default();
    let environment = ObjectRef::new(&promotion.spec.environment).within(&namespace);
    if ctx.stores.environments.get(&environment).is_some() {
        return Ok(Action::await_change());
    }
    let now = ctx.now();
    let message = format!(
        "Environment {} not found in namespace {namespace}; create it, then a new Promotion",
        promotion.spec.environment
    );
    let mut rejected = status.clone();
    rejected.phase = Phase::Rejected;
    rejected.message = Some(message.clone());
    rejected.completed_at = Some(now.clone());
    rejected.observed_generation = promotion.metadata.generation;
    rejected.conditions = conditions::set(
        &status.conditions,
        Wanted {
            type_: CONDITION_READY,
            status: false,
            reason: Phase::Rejected.reason(),
            message: message.clone(),
        },
        promotion.metadata.generation,
        &now,
    );
    ctx.apply_status(promotion.as_ref(), &rejected, CONTROLLER)
        .await?;
    ctx.event(promotion.as_ref(), EventReason::Rejected, message);
    Ok(Action::await_change())
}
