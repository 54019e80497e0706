//! `kubectl hoist clusters`: the workload clusters the hub knows, from
//! their agents' Leases in the agent namespace and the Environments that
//! name them: whether each agent is connected (its version, replica and
//! last heartbeat) or silent since when, and its Environments.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::table::{NONE, Table, age, joined};
use super::{PluginError, list};
use crate::api::Environment;
use crate::core::agents::{self, AgentState, Heartbeat, LABEL_CLUSTER};

/// The clusters of the agents' Leases in `agent_namespace` and of the
/// Environments of `namespace` (every namespace when `None`), as a table.
pub async fn clusters(
    client: &Client,
    agent_namespace: &str,
    namespace: Option<&str>,
    now: &Time,
) -> Result<String, PluginError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), agent_namespace);
    let leases = leases
        .list(&ListParams::default().labels(LABEL_CLUSTER))
        .await
        .map_err(|source| PluginError::Api {
            action: format!("list the agents' Leases in namespace {agent_namespace}"),
            source,
        })?
        .items;
    let environments = match namespace {
        Some(namespace) => {
            list(
                &Api::<Environment>::namespaced(client.clone(), namespace),
                "Environment",
                namespace,
            )
            .await?
        }
        None => list(&Api::<Environment>::all(client.clone()), "Environment", "(all)").await?,
    };
    Ok(render_clusters(&leases, &environments, now))
}

/// One row per cluster, by name: its agent's state and its Environments
/// (`namespace/name`). A cluster without a Lease is silent since its
/// oldest Environment was created.
pub fn render_clusters(leases: &[Lease], environments: &[Environment], now: &Time) -> String {
    let heartbeats: Vec<Heartbeat> = leases.iter().map(Heartbeat::of).collect();
    let mut clusters: BTreeMap<String, Vec<&Environment>> = BTreeMap::new();
    for heartbeat in &heartbeats {
        if let Some(cluster) = &heartbeat.cluster
            && heartbeat.name == agents::lease_name(cluster)
        {
            clusters.entry(cluster.clone()).or_default();
        }
    }
    for environment in environments {
        if let Some(cluster) = &environment.spec.cluster {
            clusters.entry(cluster.clone()).or_default().push(environment);
        }
    }
    let mut table = Table::new(&[
        "CLUSTER",
        "AGENT",
        "VERSION",
        "REPLICA",
        "LAST HEARTBEAT",
        "ENVIRONMENTS",
    ]);
    for (cluster, environments) in clusters {
        let created = environments
            .iter()
            .filter_map(|e| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .min()
            .unwrap_or(now.0);
        let ago = |instant| format!("{} ago", age(now, &Time(instant)));
        let (agent, version, replica, heartbeat) = match agents::state(&cluster, &heartbeats, created, now.0)
        {
            AgentState::Connected {
                holder,
                version,
                last_heartbeat,
                ..
            } => (
                "connected".to_owned(),
                version.unwrap_or_else(|| NONE.to_owned()),
                holder,
                ago(last_heartbeat),
            ),
            AgentState::Silent { since, silence } => {
                let last = match &silence {
                    agents::Silence::NoLease => None,
                    agents::Silence::Released { last_heartbeat }
                    | agents::Silence::Expired { last_heartbeat } => *last_heartbeat,
                };
                let version = heartbeats
                    .iter()
                    .find(|h| {
                        h.name == agents::lease_name(&cluster) && h.cluster.as_deref() == Some(&cluster)
                    })
                    .and_then(|h| h.version.clone());
                (
                    format!("silent for {}", age(now, &Time(since))),
                    version.unwrap_or_else(|| NONE.to_owned()),
                    NONE.to_owned(),
                    last.map_or_else(|| NONE.to_owned(), ago),
                )
            }
        };
        let names: Vec<String> = environments
            .iter()
            .map(|e| format!("{}/{}", e.namespace().unwrap_or_default(), e.name_any()))
            .collect();
        table.row(vec![cluster, agent, version, replica, heartbeat, joined(&names)]);
    }
    table.render()
}
