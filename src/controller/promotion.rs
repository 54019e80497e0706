//! The Promotion reconciler. A Promotion into an existing Environment is
//! decided by that Environment's reconcile (see `environment.rs`); this one
//! only refuses Promotions whose Environment does not exist, since no
//! Environment reconcile would ever look at them (and records the
//! tenant-wide notifications of that refusal). Like every reconcile, it
//! runs only once the caches have listed, so an absent Environment is
//! really absent.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::instrument;

use super::Error;
use super::context::Ctx;
use crate::api::{Phase, Promotion};
use crate::core::environment;
use crate::core::notifications;
use crate::core::reasons::EventReason;

const CONTROLLER: &str = "promotion";

#[instrument(skip_all, fields(name = %promotion.name_any(), namespace = promotion.namespace(), generation = promotion.metadata.generation))]
pub async fn reconcile(promotion: Arc<Promotion>, ctx: Ctx) -> Result<Action, Error> {
    let status = promotion.status.clone().unwrap_or_default();
    if status.phase.is_terminal() {
        return Ok(Action::await_change());
    }
    let namespace = promotion.namespace().unwrap_or_default();
    let into = ObjectRef::new(&promotion.spec.environment).within(&namespace);
    if ctx.stores.environments.get(&into).is_some() {
        return Ok(Action::await_change());
    }
    let message = format!(
        "Environment {} not found in namespace {namespace}; create it, then a new Promotion",
        promotion.spec.environment
    );
    let now = ctx.now();
    let mut rejected = environment::ended(&promotion, Phase::Rejected, message.clone(), &now);
    // Without an Environment, only the tenant-wide notifications are told.
    notifications::record(
        &mut rejected,
        &promotion.uid().unwrap_or_default(),
        &notifications::tenant_subscriptions(&ctx.config.notifications),
        &now,
    );
    ctx.apply_status(promotion.as_ref(), &rejected, CONTROLLER)
        .await?;
    ctx.event(promotion.as_ref(), EventReason::Rejected, message);
    Ok(Action::await_change())
}
