//! The second look right after workloads were pinned: whether a plan's
//! rollout can be recorded as over (or failed) at once, without first
//! recording it as under way.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use crate::api::Promotion;
use crate::core::workload::{Workload, WorkloadId};

use super::{Plan, Snapshot};

/// Decides again as the next reconcile would, with `plan`'s statuses taken
/// as written and the target workloads as `workloads_seen` holds them
/// after the pins (the same keys as `snapshot.workloads`).
///
/// The second plan is taken only when every pin is seen and it writes
/// nothing but statuses; otherwise `plan` stands and the watch events that
/// follow carry on. Promotions the first plan ended keep their status.
pub fn settle(snapshot: &Snapshot<'_>, plan: Plan, workloads_seen: BTreeMap<WorkloadId, &Workload>) -> Plan {
    let pins_seen = plan.pins.iter().all(|pin| {
        workloads_seen
            .get(&pin.id())
            .is_some_and(|workload| pin.is_satisfied_by(workload))
    });
    if !pins_seen {
        return plan;
    }
    let mut environment = snapshot.environment.clone();
    environment.status = Some(plan.status.clone());
    let promotions: Vec<Promotion> = snapshot
        .promotions
        .iter()
        .map(|promotion| {
            let mut promotion = (*promotion).clone();
            if let Some(status) = plan.promotions.get(&promotion.name_any()) {
                promotion.status = Some(status.clone());
            }
            promotion
        })
        .collect();
    let mut environments = snapshot.environments.clone();
    environments.insert(environment.name_any(), &environment);
    let mut config_history = snapshot.config_history.clone();
    for rendered in &plan.config_history {
        config_history.insert(rendered.hash.clone(), rendered.clone());
    }
    let again = super::plan(&Snapshot {
        environment: &environment,
        environments,
        artifacts: snapshot.artifacts.clone(),
        promotions: promotions.iter().collect(),
        workloads: workloads_seen,
        unserved: snapshot.unserved.clone(),
        namespaces: snapshot.namespaces.clone(),
        configs: snapshot.configs.clone(),
        config_history,
        approvals: snapshot.approvals.clone(),
        boundaries: snapshot.boundaries.clone(),
        operator: snapshot.operator.clone(),
        jobs: snapshot.jobs.clone(),
        // Measurements of the first look are in its statuses already.
        measurements: BTreeMap::new(),
        trust: snapshot.trust.clone(),
        tenant_notifications: snapshot.tenant_notifications.clone(),
        tiers: snapshot.tiers,
        tenant_labels: snapshot.tenant_labels,
        now: snapshot.now.clone(),
    });
    let created: BTreeSet<String> = plan.new_promotions.iter().map(|p| p.name_any()).collect();
    // Jobs and queries were written or taken for the first plan only.
    let only_statuses = again.pins == plan.pins
        && again.jobs.iter().all(|job| plan.jobs.contains(job))
        && again.queries.is_empty()
        && again.checks.is_empty()
        && again.config_maps == plan.config_maps
        && again
            .config_history
            .iter()
            .all(|c| plan.config_history.iter().any(|known| known.hash == c.hash))
        && again
            .new_promotions
            .iter()
            .all(|p| created.contains(&p.name_any()));
    if !only_statuses {
        return plan;
    }
    // Promotions the first plan ended are not decided again: theirs stand.
    let mut promotions = plan.promotions;
    promotions.extend(again.promotions);
    let mut notices = plan.notices;
    notices.extend(again.notices);
    Plan {
        promotions,
        notices,
        ..again
    }
}

#[cfg(test)]
mod tests;
