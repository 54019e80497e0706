//! One Environment's reconcile, step by step, written once for the operator
//! (on a cluster, through its caches and client) and for `hoist render` (on
//! files, through its in-memory World):
//!
//! dereference → plan → (take the due verification measurements → plan
//! again) → (make the due supply-chain checks → plan again) → apply (new
//! Promotions, ConfigMaps, workload pins, verification Jobs) → the second
//! look right after pinning → status.
//!
//! A [`Seam`] says how each step reaches the objects; [`reconcile`] runs
//! the steps in this order, and the core decides between them. Neither the
//! operator nor `render` imports the other: both import this.

mod dereferenced;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{Artifact, Environment, Measurement};
use crate::core::environment::{self, Plan};
use crate::core::gates::verification::DueQuery;
use crate::core::supply_chain::DueCheck;
use crate::core::workload::{Workload, WorkloadId};

pub use dereferenced::{Dereferenced, configs};

/// Measurements taken for one decision: Promotion → (step, measurement).
pub type Measurements = BTreeMap<String, (String, Measurement)>;

/// Where one Environment's reconcile meets the objects it decides on. Each
/// method is one step of [`reconcile`], which calls them in order.
pub trait Seam {
    type Error;
    /// A workload [`Seam::apply`] pinned, as [`Seam::observe_after_pin`]
    /// needs it.
    type Pinned;

    /// Reads everything the decision about `environment` takes.
    async fn dereference(&mut self, environment: Arc<Environment>) -> Result<Dereferenced, Self::Error>;

    /// Takes the verification measurements `queries` ask for at `now`.
    async fn measure(&mut self, namespace: &str, queries: &[DueQuery], now: Timestamp) -> Measurements;

    /// Makes the supply-chain `checks` on `artifacts` and records them on
    /// the Artifacts; returns each Artifact that gained records, as
    /// recorded.
    async fn check(
        &mut self,
        namespace: &str,
        checks: &[DueCheck],
        artifacts: &BTreeMap<String, Arc<Artifact>>,
    ) -> Result<BTreeMap<String, Artifact>, Self::Error>;

    /// Carries out `plan` up to the statuses: new Promotions, configuration
    /// snapshots, rendered ConfigMaps, workload pins and verification
    /// Jobs, writing only what differs. Returns the workloads it pinned.
    async fn apply(
        &mut self,
        dereferenced: &Dereferenced,
        plan: &Plan,
    ) -> Result<Vec<Self::Pinned>, Self::Error>;

    /// The target workloads (the keys of `dereferenced.workloads`) as
    /// seen right after `pinned` were written.
    async fn observe_after_pin(
        &mut self,
        dereferenced: &Dereferenced,
        pinned: Vec<Self::Pinned>,
    ) -> BTreeMap<WorkloadId, Workload>;

    /// Records `plan`: the Environment's and its Promotions' statuses, then
    /// the Events of its notices.
    async fn write_status(&mut self, dereferenced: &Dereferenced, plan: &Plan) -> Result<(), Self::Error>;
}

/// Reconciles `environment` through `seam`; returns the plan carried out.
pub async fn reconcile<S: Seam>(seam: &mut S, environment: Arc<Environment>) -> Result<Plan, S::Error> {
    let dereferenced = seam.dereference(environment).await?;
    let namespace = dereferenced.environment.namespace().unwrap_or_default();
    // Artifacts as the supply-chain checks of this reconcile recorded them.
    let checked: BTreeMap<String, Artifact>;
    let mut snapshot = dereferenced.snapshot();
    let mut plan = environment::plan(&snapshot);
    if !plan.queries.is_empty() {
        // Verification measurements are due: take them, then decide with them.
        snapshot.measurements = seam.measure(&namespace, &plan.queries, snapshot.now.0).await;
        plan = environment::plan(&snapshot);
    }
    if !plan.checks.is_empty() {
        // Signatures, provenance or scans of a digest are due: check them
        // once, record them on the Artifacts, then decide with the records.
        checked = seam
            .check(&namespace, &plan.checks, &dereferenced.artifacts)
            .await?;
        for (name, artifact) in &checked {
            snapshot.artifacts.insert(name.clone(), artifact);
        }
        plan = environment::plan(&snapshot);
    }
    let pinned = seam.apply(&dereferenced, &plan).await?;
    let plan = if pinned.is_empty() {
        plan
    } else {
        let seen = seam.observe_after_pin(&dereferenced, pinned).await;
        environment::settle(
            &snapshot,
            plan,
            seen.iter().map(|(id, workload)| (id.clone(), workload)).collect(),
        )
    };
    seam.write_status(&dereferenced, &plan).await?;
    Ok(plan)
}
