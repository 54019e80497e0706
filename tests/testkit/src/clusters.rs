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
//! of the hub's test namespace, allowed [`agent_hub_rules`], and in the
//! workload cluster as the operator's ServiceAccount there, allowed the
//! chart's rules of an agent (`charts/hoist/files/agent-local-rules.yaml`).

use std::path::Path;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Client;

use crate::cluster::{KUBECONFIG_VAR, TestCluster};
use crate::delay::Slowness;

/// The environment variable naming a kubeconfig of a real workload cluster.
pub const WORKLOAD_KUBECONFIG_VAR: &str = "HOIST_TEST_WORKLOAD_KUBECONFIG";

/// The hub's rules for an agent's identity: read Hoist's kinds, write only
/// their statuses and Events, its Lease, and read the admission policies
/// that vouch for approvals and Environments' authors. The hub's shipped
/// rules for agents (`charts/hoist/files/agent-hub-rules.yaml`) replace
/// these once they exist; the admission policy `hoist-agents` narrows
/// status writes to the agent's own cluster.
pub fn agent_hub_rules() -> Result<Vec<PolicyRule>> {
    serde_json::from_value(serde_json::json!([
        {"apiGroups": ["hoist.dev"], "resources": ["artifacts", "environments", "promotions"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["hoist.dev"], "resources": ["artifacts/status", "environments/status", "promotions/status"], "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"], "verbs": ["get", "list", "watch"]},
    ]))
    .context("the agent's hub rules")
}

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

/// Grants the agent identity of `cluster` [`agent_hub_rules`] on `hub`.
pub async fn grant_agent(hub: &TestCluster, cluster: &str) -> Result<()> {
    let name = format!("hoist-test-agent-{cluster}-{}", hub.namespace());
    hub.grant_service_account_cluster_wide(&name, agent_hub_rules()?, &agent_service_account(cluster))
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
