//! The last step of an Environment's reconcile on the cluster: recording
//! the plan in the statuses, then telling its notices in Events.

use std::sync::Arc;

use futures::future::try_join_all;
use kube::ResourceExt;

use super::CONTROLLER;
use crate::api::{Environment, Promotion};
use crate::controller::Error;
use crate::controller::context::{Ctx, await_cached};
use crate::core::clusters;
use crate::core::environment::Plan;

/// Records `plan`: the Promotions' statuses (all at once), then the
/// Environment's, then the Events of its notices.
pub(super) async fn write_statuses(
    ctx: &Ctx,
    environment: &Environment,
    promotions: &[Arc<Promotion>],
    plan: &Plan,
) -> Result<(), Error> {
    let promotion_writes = promotions.iter().filter_map(|promotion| {
        let status = plan.promotions.get(&promotion.name_any())?;
        (promotion.status.as_ref() != Some(status)).then_some(async move {
            let written = ctx.apply_status(promotion.as_ref(), status, CONTROLLER).await?;
            Ok::<_, Error>((promotion.resource_version(), written))
        })
    });
    // The Environment's record first: a crash before the Promotions' writes
    // decides the same ends again (the history takes each Promotion once),
    // while the other order could leave a finished Promotion that no
    // Environment records, since finished Promotions are not decided again.
    // Compared without the hub's `AgentConnected`: an agent's record leaves
    // it alone and is not rewritten because of it.
    let recorded = if environment
        .status
        .as_ref()
        .map(clusters::without_hub_conditions)
        .as_ref()
        != Some(&clusters::without_hub_conditions(&plan.status))
    {
        let written = ctx.apply_status(environment, &plan.status, CONTROLLER).await?;
        // Counted once the history is written, from what it newly holds: an
        // outcome decided again (after a crash, a restart) is in the history
        // already and is not counted again.
        ctx.metrics.record_history(
            &environment.namespace().unwrap_or_default(),
            &environment.name_any(),
            environment
                .status
                .as_ref()
                .map(|s| s.history.as_slice())
                .unwrap_or_default(),
            &plan.status.history,
        );
        Some(written)
    } else {
        None
    };
    let promoted = try_join_all(promotion_writes).await?;
    // Only after every write: waiting between them would widen the moment in
    // which a crash leaves a Promotion's outcome without the Environment's record.
    for (before, written) in &promoted {
        await_cached(&ctx.stores.promotions, before.as_deref(), written).await;
    }
    if let Some(written) = &recorded {
        await_cached(
            &ctx.stores.environments,
            environment.resource_version().as_deref(),
            written,
        )
        .await;
    }

    for notice in &plan.notices {
        match notice
            .promotion
            .as_ref()
            .and_then(|p| promotions.iter().find(|candidate| &candidate.name_any() == p))
        {
            Some(promotion) => ctx.event(promotion.as_ref(), notice.reason, notice.note.clone()),
            None => ctx.event(environment, notice.reason, notice.note.clone()),
        }
    }
    Ok(())
}
