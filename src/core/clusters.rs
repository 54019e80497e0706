//! Workload clusters: which process reconciles an Environment (the
//! operator in the hub, or the agent of the cluster its `spec.cluster`
//! names), which Promotions an agent acts on, and what its Lease says.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::{Environment, EnvironmentStatus, Promotion};

/// The label the hub puts on every Promotion into an Environment of a
/// workload cluster (and an agent puts on its heartbeat Lease).
pub const LABEL_CLUSTER: &str = "hoist.dev/cluster";
/// The annotation of an agent's Lease naming the agent's version.
pub const ANNOTATION_AGENT_VERSION: &str = "hoist.dev/agent-version";
/// The condition the hub (field manager `hoist-hub`) keeps on Environments
/// of workload clusters; an agent neither writes nor removes it.
pub const CONDITION_AGENT_CONNECTED: &str = "AgentConnected";

/// The Environments one process reconciles: the hub operator those that
/// name no cluster, an agent those that name its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Hub,
    Agent { cluster: String },
}

impl Scope {
    /// The cluster an agent serves; `None` for the hub operator.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Scope::Hub => None,
            Scope::Agent { cluster } => Some(cluster),
        }
    }

    /// Whether this process reconciles `environment`.
    pub fn reconciles(&self, environment: &Environment) -> bool {
        environment.spec.cluster.as_deref() == self.cluster()
    }

    /// Whether this process may act on `promotion`: the hub operator on
    /// every one (it skips those into Environments it does not reconcile),
    /// an agent only on those the hub labelled with its cluster.
    pub fn acts_on(&self, promotion: &Promotion) -> bool {
        match self {
            Scope::Hub => true,
            Scope::Agent { cluster } => promotion.labels().get(LABEL_CLUSTER) == Some(cluster),
        }
    }
}

/// Why `cluster` cannot name a workload cluster, if it cannot: it must be
/// a DNS label, as Environments' `spec.cluster` is.
pub fn invalid_name(cluster: &str) -> Option<String> {
    let label = regex::Regex::new(crate::api::DNS_LABEL).ok()?;
    (cluster.len() > 63 || !label.is_match(cluster)).then(|| {
        format!(
            "{cluster:?} is not a cluster name: Environments' spec.cluster takes a DNS label (at most 63 lower-case \
             letters, digits and '-', starting and ending with a letter or digit)"
        )
    })
}

/// The name of the heartbeat Lease of `cluster`'s agent on the hub.
pub fn lease_name(cluster: &str) -> String {
    format!("hoist-agent-{cluster}")
}

/// The labels and annotations of the heartbeat Lease of `cluster`'s agent
/// of version `version`.
pub fn lease_metadata(cluster: &str, version: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (
        BTreeMap::from([(LABEL_CLUSTER.to_owned(), cluster.to_owned())]),
        BTreeMap::from([(ANNOTATION_AGENT_VERSION.to_owned(), version.to_owned())]),
    )
}

/// The server-side field selector of the Environments of `cluster`.
pub fn field_selector(cluster: &str) -> String {
    format!("spec.cluster={cluster}")
}

/// The label selector of the Promotions into Environments of `cluster`.
pub fn label_selector(cluster: &str) -> String {
    format!("{LABEL_CLUSTER}={cluster}")
}

/// Whether a Kubernetes API server of version `major.minor` (as `/version`
/// says, e.g. "1" and "31+") filters custom resources by their
/// `selectableFields`: on by default from 1.31 (beta), alpha behind a gate
/// in 1.30, absent before. An unreadable version counts as older.
pub fn selects_custom_fields(major: &str, minor: &str) -> bool {
    let number = |text: &str| text.trim_end_matches('+').parse::<u32>().ok();
    match (number(major), number(minor)) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 31),
        _ => false,
    }
}

/// `status` without the conditions the hub owns: what an agent compares
/// its own decision with, so the hub's condition neither makes it write
/// nor is removed by it.
pub fn without_hub_conditions(status: &EnvironmentStatus) -> EnvironmentStatus {
    let mut own = status.clone();
    own.conditions
        .retain(|condition| condition.type_ != CONDITION_AGENT_CONNECTED);
    own
}

#[cfg(test)]
#[path = "clusters/tests.rs"]
mod tests;
