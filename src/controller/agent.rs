//! The agent: the operator's engine in a workload cluster (`hoist agent`),
//! for the Environments whose `spec.cluster` names that cluster.
//!
//! It reads Artifacts, Environments and Promotions from the hub and writes
//! there only their statuses, Events and its heartbeat Lease; Deployments,
//! ConfigMaps, Secrets, Namespaces and Jobs it reads and writes in its own
//! cluster, so Secrets never leave it (only digests and key names go to the
//! hub). One reconcile per Environment, the same as the operator's
//! (see [`super::start_scoped`] for which client each watch uses).
//!
//! Which Environments it sees:
//! - its own, by a watch of their own with the server-side field selector
//!   `spec.cluster=<cluster>` (the CRD's `selectableFields`, served from
//!   Kubernetes 1.31). A hub older than that (by its `/version`) would
//!   refuse the selector, so the agent then lists and watches every
//!   Environment for this too, and the reconcile skips those of other
//!   clusters (`Scope::reconciles`): the same result for more traffic.
//! - every other one, in the operator's unfiltered cache: upstream, soak
//!   and compatibility gates read the statuses of Environments wherever
//!   they run (the hub's own or another cluster), and a change of one must
//!   trigger its downstream Environments at once, which a read per
//!   reconcile could not. The hub RBAC for agents grants reading them.
//!
//! Only one agent per cluster works: they take part in leader election
//! over the Lease `hoist-agent-<cluster>` on the hub (labelled with the
//! cluster, annotated with the agent's version: the hub's heartbeat), both
//! clients fenced by it; a standby is unready and says which replica holds
//! the Lease.

use kube::Client;
use kube::runtime::reflector::ReflectHandle;
use kube::runtime::watcher;

use super::cache::{Cache, Watches, keep, no_keys};
use super::{Operator, RunError, Settings, leader};
use crate::api::Environment;
use crate::core::clusters::{self, Scope};
use crate::core::lease::Timing;

/// What an agent needs besides the operator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The workload cluster's name, as Environments' `spec.cluster` give it.
    pub cluster: String,
    /// The hub namespace of its Lease; the hub kubeconfig's namespace when `None`.
    pub namespace: Option<String>,
    /// This replica's name in the Lease (its pod's name).
    pub identity: String,
    pub timing: Timing,
}

impl Agent {
    /// The election over the heartbeat Lease of this agent's cluster.
    pub fn election(&self) -> leader::Election {
        let (labels, annotations) = clusters::lease_metadata(&self.cluster, env!("CARGO_PKG_VERSION"));
        leader::Election {
            lease_name: clusters::lease_name(&self.cluster),
            lease_namespace: self.namespace.clone(),
            identity: self.identity.clone(),
            timing: self.timing,
            labels,
            annotations,
        }
    }
}

/// Binds the health server, starts the agent's watches (Hoist's kinds on
/// `hub`, workload kinds on `local`), its Environment controller and its
/// election; `settings.election` is replaced by the agent's.
pub async fn start(
    hub: Client,
    local: Client,
    agent: Agent,
    settings: Settings,
) -> Result<Operator, RunError> {
    let settings = Settings {
        election: Some(agent.election()),
        ..settings
    };
    let scope = Scope::Agent {
        cluster: agent.cluster,
    };
    super::start_scoped(hub, local, scope, settings).await
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    hub: Client,
    local: Client,
    agent: Agent,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    start(hub, local, agent, settings).await?.run(shutdown).await
}

/// The watch of the Environments of `cluster` that feeds the agent's
/// controller: by field selector where the hub serves it (see the module
/// docs), else of every Environment.
pub(super) async fn watch_own_environments(
    watches: &mut Watches,
    hub: &Client,
    namespaces: &[String],
    cluster: &str,
) -> (Cache<Environment>, Vec<ReflectHandle<Environment>>) {
    let selects = match hub.apiserver_version().await {
        Ok(version) => clusters::selects_custom_fields(&version.major, &version.minor),
        Err(error) => {
            tracing::warn!(%error, "cannot read the hub's version; watching every Environment for this cluster's");
            false
        }
    };
    let config = if selects {
        watcher::Config::default().fields(&clusters::field_selector(cluster))
    } else {
        tracing::info!(
            cluster,
            "the hub is older than Kubernetes 1.31 (no field selectors on custom resources): watching every \
             Environment and reconciling those of this cluster"
        );
        watcher::Config::default()
    };
    watches.add_in::<Environment>(
        "environments.hoist.dev (of this cluster)",
        hub,
        namespaces,
        config,
        1,
        no_keys,
        keep,
    )
}
