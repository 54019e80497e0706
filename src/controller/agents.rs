//! The hub's view of workload-cluster agents: for every Environment with
//! `spec.cluster`, the `AgentConnected` condition from the agent's Lease
//! in the agent namespace, the `hoist.dev/cluster` label of the Promotions
//! into it, and phase Waiting for the ones not started while the agent is
//! silent. Every write is a server-side apply of field manager `hoist-hub`
//! owning only what it sets, so the agent's own status writes (field
//! manager `hoist`) and these never own the same condition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::instrument;

use super::Error;
use super::cache::Cache;
use super::context::Ctx;
use super::environment;
use super::keys;
use crate::api::{ApplicationStatus, Artifact, Environment, Promotion};
use crate::core::agents::{self, AgentState, FIELD_MANAGER, Heartbeat, LABEL_CLUSTER};
use crate::core::conditions;
use crate::core::environment as core_environment;
use crate::core::tiers;

const CONTROLLER: &str = "agents";

#[instrument(skip_all, fields(name = %environment.name_any(), namespace = environment.namespace(), generation = environment.metadata.generation))]
pub async fn reconcile(environment: Arc<Environment>, ctx: Ctx) -> Result<Action, Error> {
    let now = Timestamp::now();
    let existing = environment
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let Some(cluster) = environment.spec.cluster.as_deref() else {
        // No longer of a workload cluster: the hub's condition goes.
        if conditions::find(existing, agents::CONDITION).is_some() {
            apply_status(&ctx, environment.as_ref(), json!({"conditions": []})).await?;
        }
        return Ok(Action::await_change());
    };
    let state = agent_state(&ctx, cluster, &environment, now);
    let wanted = agents::condition(cluster, &ctx.stores.agent_namespace, &state);
    let generation = environment.metadata.generation;
    if !agents::holds(existing, &wanted, generation) {
        let condition: Vec<_> = conditions::set(existing, wanted, generation, &Time(now))
            .into_iter()
            .filter(|c| c.type_ == agents::CONDITION)
            .collect();
        apply_status(&ctx, environment.as_ref(), json!({"conditions": condition})).await?;
    }
    let namespace = environment.namespace().unwrap_or_default();
    for promotion in ctx
        .stores
        .promotions
        .indexed(&keys::into_environment(&namespace, &environment.name_any()))
    {
        let status = promotion.status.clone().unwrap_or_default();
        let writes = agents::promotion_writes(
            cluster,
            promotion.labels().get(LABEL_CLUSTER).map(String::as_str),
            status.phase,
            status.message.as_deref(),
            &state,
        );
        let api: Api<Promotion> = Api::namespaced(ctx.hub.clone(), &namespace);
        let name = promotion.name_any();
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        if let Some(label) = writes.label {
            let body = json!({
                "apiVersion": Promotion::api_version(&()),
                "kind": Promotion::kind(&()),
                "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_CLUSTER: label}},
            });
            api.patch(&name, &apply, &Patch::Apply(&body))
                .await
                .map_err(Error::Kube)?;
            ctx.metrics.write(CONTROLLER);
        }
        if let Some(message) = writes.waiting {
            apply_status(
                &ctx,
                promotion.as_ref(),
                json!({"phase": "Waiting", "message": message}),
            )
            .await?;
        } else if writes.release {
            // The agent is back: the hub's Waiting goes, what the agent
            // wrote (or writes next) stays.
            apply_status(&ctx, promotion.as_ref(), json!({})).await?;
        }
    }
    // An agent may not create Promotions on the hub: autoPromote of its
    // Environments is decided here, from the status the agent writes.
    let auto = auto_promotions_of(&ctx, &environment);
    environment::create_auto_promotions(&ctx, &auto, CONTROLLER).await?;
    Ok(match state.expires() {
        Some(until) => Action::requeue(until.duration_since(now).unsigned_abs()),
        None => Action::await_change(),
    })
}

/// The Promotions autoPromote creates for `environment` (of a workload
/// cluster), from the cached Artifacts, Promotions and Environments of its
/// namespace and what its agent says runs there.
fn auto_promotions_of(ctx: &Ctx, environment: &Environment) -> Vec<Promotion> {
    if !environment.spec.auto_promote {
        return Vec::new();
    }
    let namespace = environment.namespace().unwrap_or_default();
    let stores = &ctx.stores;
    let environments = stores.environments.indexed(&keys::in_namespace(&namespace));
    // Nothing is promoted into an Environment its tier does not allow (its
    // agent says so in its status).
    let labels = stores.tenant_labels(&namespace);
    if tiers::decide(
        ctx.config.tiers.as_ref(),
        &labels,
        environments.iter().map(Arc::as_ref),
        environment,
    )
    .is_err()
    {
        return Vec::new();
    }
    let promotions = stores
        .promotions
        .indexed(&keys::into_environment(&namespace, &environment.name_any()));
    let artifacts: Vec<Arc<Artifact>> = environment
        .spec
        .targets
        .iter()
        .map(|t| &t.application)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .flat_map(|application| {
            stores
                .artifacts
                .indexed(&keys::application(&namespace, application))
        })
        .collect();
    let running: BTreeMap<String, ApplicationStatus> = environment
        .status
        .iter()
        .flat_map(|status| &status.applications)
        .map(|app| (app.application.clone(), app.clone()))
        .collect();
    core_environment::auto_promotions(&core_environment::Inputs {
        environment,
        environments: &environments.iter().map(|e| (e.name_any(), e.as_ref())).collect(),
        artifacts: &artifacts.iter().map(|a| (a.name_any(), a.as_ref())).collect(),
        promotions: &promotions.iter().map(Arc::as_ref).collect::<Vec<_>>(),
        running: &running,
        operator: ctx.identity.as_deref(),
    })
    .promotions
}

/// The state of `cluster`'s agent now, from the cached Leases.
fn agent_state(ctx: &Ctx, cluster: &str, environment: &Environment, now: Timestamp) -> AgentState {
    let leases: Vec<Heartbeat> = ctx
        .stores
        .leases
        .iter()
        .flat_map(|leases| leases.store().state())
        .map(|lease| Heartbeat::of(&lease))
        .collect();
    let created = environment
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |created| created.0);
    agents::state(cluster, &leases, created, now)
}

/// Server-side applies `status` (only the fields the hub owns) as `hoist-hub`.
async fn apply_status<K>(ctx: &Ctx, object: &K, status: serde_json::Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    ctx.apply_status_as(FIELD_MANAGER, object, &status, CONTROLLER)
        .await
        .map(drop)
}

/// A Lease changed: every Environment of the cluster it names.
pub fn environments_of_lease(
    environments: &Cache<Environment>,
    lease: &Lease,
) -> Vec<ObjectRef<Environment>> {
    lease
        .labels()
        .get(LABEL_CLUSTER)
        .map(|cluster| {
            environments
                .indexed(&keys::in_cluster(cluster))
                .iter()
                .map(|e| ObjectRef::from_obj(e.as_ref()))
                .collect()
        })
        .unwrap_or_default()
}
