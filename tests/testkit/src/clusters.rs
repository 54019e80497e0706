//! Two Kubernetes APIs for one test: a hub (Artifacts, Environments,
//! Promotions, the hub operator) and a workload cluster (its agent's
//! Deployments, ConfigMaps, Secrets and Jobs). Two stand-ins, or two real
//! clusters named by `HOIST_TEST_KUBECONFIG` (the hub) and
//! `HOIST_TEST_WORKLOAD_KUBECONFIG` (the workload cluster); with only one
//! of them the two-cluster tests fail at once, saying which is missing.
//!
//! The workload cluster's test namespace has the hub's test namespace's
//! name, opted in for that tenant (`hoist.dev/tenant`): an Environment's
//! snapshots, rendered ConfigMaps and verification Jobs live in the
//! namespace of its own name in the workload cluster.
//!
//! The agent acts on the hub as the ServiceAccount `hoist-agent-<cluster>`
//! of the hub's test namespace, allowed the chart's rules of agents on the
//! hub (`charts/hoist/files/agent-hub-rules.yaml` and, in the agent
//! namespace, `agent-hub-namespace-rules.yaml`), and in the
//! workload cluster as the operator's ServiceAccount there, allowed the
//! chart's rules of an agent (`charts/hoist/files/agent-local-rules.yaml`).

use std::path::Path;

use anyhow::{Context, Result, bail};
use kube::Client;

use crate::cluster::{
    KUBECONFIG_VAR, TestCluster, agent_namespace_rules_file, agent_rules_file, read_operator_rules,
};
use crate::delay::Slowness;

/// The environment variable naming a kubeconfig of a real workload cluster.
pub const WORKLOAD_KUBECONFIG_VAR: &str = "HOIST_TEST_WORKLOAD_KUBECONFIG";

/// A hub and a workload cluster for one test.
pub struct TwoClusters {
    pub hub: TestCluster,
    pub workload: TestCluster,
}

impl TwoClusters {
    /// Connects to both (see the module docs).
    pub async fn new() -> Result<Self> {
        let hub_path = std::env::var_os(KUBECONFIG_VAR);
        let workload_path = std::env::var_os(WORKLOAD_KUBECONFIG_VAR);
        match (hub_path, workload_path) {
            (Some(hub_path), Some(workload_path)) => {
                let hub = TestCluster::from_kubeconfig(Path::new(&hub_path))
                    .await
                    .with_context(|| format!("{KUBECONFIG_VAR}={}", Path::new(&hub_path).display()))?;
                let workload =
                    TestCluster::from_kubeconfig_in(Path::new(&workload_path), Some(hub.namespace()))
                        .await
                        .with_context(|| {
                            format!(
                                "{WORKLOAD_KUBECONFIG_VAR}={}",
                                Path::new(&workload_path).display()
                            )
                        })?;
                Ok(TwoClusters { hub, workload })
            }
            (None, None) => {
                let hub = TestCluster::start_standin(None).await?;
                let workload = TestCluster::start_standin(Some(hub.namespace())).await?;
                Ok(TwoClusters { hub, workload })
            }
            (Some(_), None) => bail!(
                "{KUBECONFIG_VAR} names a hub but {WORKLOAD_KUBECONFIG_VAR} names no workload cluster: the \
                 two-cluster tests need a kubeconfig of each (or neither, for two stand-ins)"
            ),
            (None, Some(_)) => bail!(
                "{WORKLOAD_KUBECONFIG_VAR} names a workload cluster but {KUBECONFIG_VAR} names no hub: the \
                 two-cluster tests need a kubeconfig of each (or neither, for two stand-ins)"
            ),
        }
    }
}

/// The agent identity of `cluster` on `hub`.
pub fn agent_user(hub: &TestCluster, cluster: &str) -> String {
    format!(
        "system:serviceaccount:{}:{}",
        hub.namespace(),
        agent_service_account(cluster)
    )
}

/// Grants the agent identity of `cluster` on `hub` what the chart grants
/// it: the ClusterRole of `charts/hoist/files/agent-hub-rules.yaml` and, in
/// the agent namespace (the hub's test namespace), the Role of
/// `agent-hub-namespace-rules.yaml` (its Lease).
pub async fn grant_agent(hub: &TestCluster, cluster: &str) -> Result<()> {
    let name = format!("hoist-test-agent-{cluster}-{}", hub.namespace());
    let account = agent_service_account(cluster);
    hub.grant_service_account_cluster_wide(&name, read_operator_rules(&agent_rules_file())?, &account)
        .await?;
    hub.grant_service_account_in_namespace(
        &name,
        read_operator_rules(&agent_namespace_rules_file())?,
        &account,
    )
    .await
}

/// The agent's client of `hub`, acting as its identity of `cluster`,
/// whose requests picked by `slowness` are held back.
pub fn agent_hub_client(hub: &TestCluster, cluster: &str, slowness: Slowness) -> Result<Client> {
    Ok(hub.delayed_client_as(&agent_user(hub, cluster), slowness)?.0)
}

/// The ServiceAccount of the agent of `cluster` in the hub's namespace.
fn agent_service_account(cluster: &str) -> String {
    format!("hoist-agent-{cluster}")
}
