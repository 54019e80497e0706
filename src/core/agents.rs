//! Workload-cluster agents as the hub sees them: from the Leases agents
//! renew on the hub (`hoist-agent-<cluster>`, labelled `hoist.dev/cluster`)
//! and the hub's clock, whether each cluster's agent is connected or silent
//! since when; the `AgentConnected` condition of the cluster's
//! Environments; the label and the Waiting message of Promotions into them.
//!
//! The hub reads the agent's `renewTime` against its own clock (unlike
//! leader election, which never compares clocks): a skew between the two
//! clusters shifts when an agent counts as silent by that much, which is
//! what the condition reports and never decides who acts.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::Phase;
use crate::core::conditions::Wanted;
use crate::core::reasons::ConditionReason;

/// The label, Lease annotation and condition an agent and the hub share
/// ([`super::clusters`] names them for both).
pub use super::clusters::{
    ANNOTATION_AGENT_VERSION, CONDITION_AGENT_CONNECTED as CONDITION, LABEL_CLUSTER, lease_name,
};
/// The field manager of every write of the hub's agent controller.
pub const FIELD_MANAGER: &str = "hoist-hub";

/// What an agent's Lease says, as the hub reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// `metadata.name`.
    pub name: String,
    /// The `hoist.dev/cluster` label.
    pub cluster: Option<String>,
    /// `spec.holderIdentity`; empty or absent once released.
    pub holder: Option<String>,
    /// The `hoist.dev/agent-version` annotation.
    pub version: Option<String>,
    /// `spec.acquireTime`: when the holder took the Lease.
    pub acquired: Option<Timestamp>,
    /// `spec.renewTime`: the last heartbeat.
    pub renewed: Option<Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i32>,
}

impl Heartbeat {
    pub fn of(lease: &Lease) -> Heartbeat {
        let meta = &lease.metadata;
        let spec = lease.spec.as_ref();
        Heartbeat {
            name: meta.name.clone().unwrap_or_default(),
            cluster: meta.labels.as_ref().and_then(|l| l.get(LABEL_CLUSTER)).cloned(),
            holder: spec.and_then(|s| s.holder_identity.clone()),
            version: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_AGENT_VERSION))
                .cloned(),
            acquired: spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
            renewed: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
        }
    }

    /// Whether this is the Lease of `cluster`'s agent: its name and its
    /// label both say so (a Lease of another name labelled `cluster` is
    /// not the agent's, whoever wrote it).
    fn is_of(&self, cluster: &str) -> bool {
        self.name == lease_name(cluster) && self.cluster.as_deref() == Some(cluster)
    }
}

/// Why an agent counts as silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silence {
    /// There is no Lease of the cluster: no agent has connected (or its
    /// Lease was deleted). Silent since the Environment was created.
    NoLease,
    /// The agent released its Lease (it stopped). Silent since it did.
    Released { last_heartbeat: Option<Timestamp> },
    /// The Lease was not renewed within `leaseDurationSeconds`. Silent
    /// since it expired.
    Expired { last_heartbeat: Option<Timestamp> },
}

/// The state of one cluster's agent at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Connected {
        holder: String,
        version: Option<String>,
        /// When the holder took the Lease (the last heartbeat when the
        /// Lease does not say).
        since: Timestamp,
        last_heartbeat: Timestamp,
        /// When the Lease expires unless renewed: the state is looked at
        /// again then.
        until: Timestamp,
    },
    Silent {
        since: Timestamp,
        silence: Silence,
    },
}

impl AgentState {
    pub fn is_connected(&self) -> bool {
        matches!(self, AgentState::Connected { .. })
    }

    /// When this state changes by the clock alone.
    pub fn expires(&self) -> Option<Timestamp> {
        match self {
            AgentState::Connected { until, .. } => Some(*until),
            AgentState::Silent { .. } => None,
        }
    }
}

/// The state of `cluster`'s agent at `now`, from the Leases of the agent
/// namespace; `created` is when the Environment asking was created (the
/// start of a silence without a Lease).
pub fn state(cluster: &str, leases: &[Heartbeat], created: Timestamp, now: Timestamp) -> AgentState {
    let Some(lease) = leases.iter().find(|lease| lease.is_of(cluster)) else {
        return AgentState::Silent {
            since: created,
            silence: Silence::NoLease,
        };
    };
    let last_heartbeat = lease.renewed;
    let Some(holder) = lease.holder.clone().filter(|holder| !holder.is_empty()) else {
        return AgentState::Silent {
            since: last_heartbeat.unwrap_or(created),
            silence: Silence::Released { last_heartbeat },
        };
    };
    let duration = SignedDuration::from_secs(i64::from(lease.duration_seconds.unwrap_or(0).max(0)));
    let expiry = last_heartbeat.and_then(|renewed| renewed.checked_add(duration).ok());
    match (last_heartbeat, expiry) {
        (Some(renewed), Some(until)) if now < until => AgentState::Connected {
            holder,
            version: lease.version.clone(),
            since: lease.acquired.unwrap_or(renewed),
            last_heartbeat: renewed,
            until,
        },
        _ => AgentState::Silent {
            since: expiry.unwrap_or(created),
            silence: Silence::Expired { last_heartbeat },
        },
    }
}

/// The `AgentConnected` condition of an Environment of `cluster`, whose
/// agent's Lease lives in `namespace` on the hub. The True message names
/// when the agent connected, not its latest renewal, so the condition
/// changes only when the agent does (a renewal every few seconds is not a
/// write of every Environment); `kubectl hoist clusters` shows the latest.
pub fn condition(cluster: &str, namespace: &str, state: &AgentState) -> Wanted<'static> {
    let lease = format!("{namespace}/{}", lease_name(cluster));
    match state {
        AgentState::Connected {
            holder,
            version,
            since,
            ..
        } => Wanted {
            type_: CONDITION,
            status: true,
            reason: ConditionReason::LeaseRenewed,
            message: format!(
                "the agent of cluster {cluster} (version {}, replica {holder}) renews Lease {lease} on the hub, \
                 connected since {since}",
                version.as_deref().unwrap_or("unknown")
            ),
        },
        AgentState::Silent { since, silence } => Wanted {
            type_: CONDITION,
            status: false,
            reason: ConditionReason::AgentSilent,
            message: format!(
                "{}; Promotions into this Environment wait until an agent of cluster {cluster} renews Lease \
                 {lease} (run `hoist agent --cluster {cluster}` in the workload cluster)",
                silent_since(cluster, *since, silence)
            ),
        },
    }
}

/// "the agent of cluster eu is silent since …" with why.
fn silent_since(cluster: &str, since: Timestamp, silence: &Silence) -> String {
    let heartbeat = |last: &Option<Timestamp>| match last {
        Some(last) => format!("last heartbeat {last}"),
        None => "no heartbeat".to_owned(),
    };
    match silence {
        Silence::NoLease => format!("no agent of cluster {cluster} has connected since {since} (no Lease)"),
        Silence::Released { last_heartbeat } => format!(
            "the agent of cluster {cluster} is silent since {since}: it released its Lease ({})",
            heartbeat(last_heartbeat)
        ),
        Silence::Expired { last_heartbeat } => format!(
            "the agent of cluster {cluster} is silent since {since}: its Lease expired ({})",
            heartbeat(last_heartbeat)
        ),
    }
}

/// The message of a Promotion held while its Environment's agent is silent.
pub fn waiting_message(cluster: &str, since: Timestamp, silence: &Silence) -> String {
    format!(
        "{}{}",
        waiting_prefix(cluster),
        silent_since(cluster, since, silence)
    )
}

/// What the hub writes to a Promotion into an Environment of `cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromotionWrites {
    /// The `hoist.dev/cluster` label to set (absent or wrong now).
    pub label: Option<String>,
    /// The Waiting message to set (with phase Waiting).
    pub waiting: Option<String>,
    /// The agent is back and the status still shows the hub's Waiting:
    /// give up the fields the hub set (the agent's own status, written or
    /// to come, replaces them; what the agent does not write would
    /// otherwise stay the hub's forever).
    pub release: bool,
}

/// What the hub writes to a Promotion with `label` (its `hoist.dev/cluster`
/// label), `phase` and `message`, into an Environment of `cluster` whose
/// agent is in `state`. Only a Promotion the agent has not started
/// (Pending or Waiting) is held while the agent is silent: one in flight
/// belongs to the agent, which finishes it when back; and only when its
/// status says something else, so the agent's own status, once it is
/// back, is never fought over: once connected, the hub only gives up its
/// Waiting message.
pub fn promotion_writes(
    cluster: &str,
    label: Option<&str>,
    phase: Phase,
    message: Option<&str>,
    state: &AgentState,
) -> PromotionWrites {
    let label = (label != Some(cluster)).then(|| cluster.to_owned());
    let not_started = matches!(phase, Phase::Pending | Phase::Waiting);
    match state {
        AgentState::Silent { since, silence } if not_started => {
            let wanted = waiting_message(cluster, *since, silence);
            let waiting = (phase != Phase::Waiting || message != Some(wanted.as_str())).then_some(wanted);
            PromotionWrites {
                label,
                waiting,
                release: false,
            }
        }
        AgentState::Connected { .. } => PromotionWrites {
            label,
            waiting: None,
            release: phase == Phase::Waiting
                && message.is_some_and(|m| m.starts_with(&waiting_prefix(cluster))),
        },
        AgentState::Silent { .. } => PromotionWrites {
            label,
            ..Default::default()
        },
    }
}

/// How every Waiting message of the hub for `cluster` begins.
fn waiting_prefix(cluster: &str) -> String {
    format!("waiting for the agent of cluster {cluster}: ")
}

/// Whether `conditions` already hold `wanted` (same status, reason,
/// message and generation): nothing to write.
pub fn holds(conditions: &[Condition], wanted: &Wanted<'_>, generation: Option<i64>) -> bool {
    crate::core::conditions::find(conditions, wanted.type_).is_some_and(|c| {
        c.status == if wanted.status { "True" } else { "False" }
            && c.reason == wanted.reason.as_str()
            && c.message == wanted.message
            && c.observed_generation == generation
    })
}

#[cfg(test)]
#[path = "agents/tests.rs"]
mod tests;
