//! The Environment reconciler: the steps of [`crate::reconcile`] on the
//! cluster. It reads from the caches (`dereference`), lets the core decide,
//! carries the plan out with server-side applies that write only what
//! differs from what is there (`apply`) and records it (`status`).
//!
//! Order matters for crash safety: Deployments and ConfigMaps are written
//! before the statuses that record them, so a restart at any point either
//! finds the work done (and only records it) or does it again with the same
//! result; a promotion is never lost nor carried out twice.

mod apply;
mod dereference;
mod status;

pub(super) use apply::create_auto_promotions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::instrument;

use super::Error;
use super::context::Ctx;
use super::supply_chain;
use crate::api::{Artifact, Environment};
use crate::core::environment::Plan;
use crate::core::gates::verification::DueQuery;
use crate::core::supply_chain::DueCheck;
use crate::core::workload::{Workload, WorkloadId};
use crate::reconcile::{self, Dereferenced, Measurements, Seam};

const CONTROLLER: &str = "environment";
/// How often an idle Environment is looked at again (watches normally trigger).
const RESYNC: Duration = Duration::from_secs(300);
/// How often a rollout is looked at while one is under way, besides watch events.
const VERIFYING: Duration = Duration::from_secs(15);

#[instrument(skip_all, fields(name = %environment.name_any(), namespace = environment.namespace(), generation = environment.metadata.generation))]
pub async fn reconcile(environment: Arc<Environment>, ctx: Ctx) -> Result<Action, Error> {
    // An Environment of another cluster is its agent's: no pin, no status
    // here (the hub still reads it as an upstream of others).
    if !ctx.scope.reconciles(&environment) {
        return Ok(Action::await_change());
    }
    let mut cluster = Cluster {
        ctx: &ctx,
        snapshots: Vec::new(),
        requeue: RESYNC,
    };
    reconcile::reconcile(&mut cluster, environment).await?;
    Ok(Action::requeue(cluster.requeue))
}

/// When to reconcile again after `plan`, from `now`.
fn requeue(plan: &Plan, now: &Time) -> Duration {
    let base = if plan.rolling_out() { VERIFYING } else { RESYNC };
    // A soak ending or a change window opening is seen at that instant, not on a poll.
    plan.next_check_in(now).map_or(base, |clock| clock.min(base))
}

/// One reconcile's way to the cluster: the caches, the client and the
/// configuration snapshot ConfigMaps it read.
struct Cluster<'c> {
    ctx: &'c Ctx,
    snapshots: Vec<Arc<ConfigMap>>,
    /// When to reconcile again, taken as the statuses are written.
    requeue: Duration,
}

impl Seam for Cluster<'_> {
    type Error = Error;
    type Pinned = apply::Pinned;

    async fn dereference(&mut self, environment: Arc<Environment>) -> Result<Dereferenced, Error> {
        let (dereferenced, snapshots) = dereference::dereference(self.ctx, environment).await?;
        self.snapshots = snapshots;
        Ok(dereferenced)
    }

    async fn measure(&mut self, namespace: &str, queries: &[DueQuery], now: Timestamp) -> Measurements {
        self.ctx
            .prometheus
            .measure_all(&self.ctx.local, namespace, queries, now)
            .await
    }

    async fn check(
        &mut self,
        namespace: &str,
        checks: &[DueCheck],
        artifacts: &BTreeMap<String, Arc<Artifact>>,
    ) -> Result<BTreeMap<String, Artifact>, Error> {
        supply_chain::run(self.ctx, namespace, checks, artifacts).await
    }

    async fn apply(&mut self, dereferenced: &Dereferenced, plan: &Plan) -> Result<Vec<apply::Pinned>, Error> {
        let pinned = apply::write_objects(self.ctx, dereferenced, &self.snapshots, plan).await?;
        apply::write_jobs(self.ctx, plan, &dereferenced.promotions).await?;
        Ok(pinned)
    }

    async fn observe_after_pin(
        &mut self,
        dereferenced: &Dereferenced,
        pinned: Vec<apply::Pinned>,
    ) -> BTreeMap<WorkloadId, Workload> {
        apply::observe_after_pin(self.ctx, dereferenced, pinned).await
    }

    async fn write_status(&mut self, dereferenced: &Dereferenced, plan: &Plan) -> Result<(), Error> {
        self.requeue = requeue(plan, &self.ctx.now());
        status::write_statuses(
            self.ctx,
            &dereferenced.environment,
            &dereferenced.promotions,
            plan,
        )
        .await
    }
}
