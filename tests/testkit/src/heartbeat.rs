//! A workload-cluster agent's heartbeat on the hub, for tests of the hub
//! side: the Lease `hoist-agent-<cluster>` written exactly as leader
//! election writes it (`hoist::controller::leader`: created with
//! `acquireTime`, replaced on every renewal with a new `renewTime`), with
//! the label and annotation an agent adds. The hub sees nothing of an agent but this
//! Lease and its requests.

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// The Lease of one cluster's agent, as that agent's replica `identity`
/// holds it.
pub struct AgentLease {
    api: Api<Lease>,
    cluster: String,
    identity: String,
    version: String,
    duration_seconds: i32,
}

impl AgentLease {
    /// The Lease of `cluster`'s agent in `namespace`, written with `client`
    /// (an agent's identity, or the admin's).
    pub fn new(
        client: Client,
        namespace: &str,
        cluster: &str,
        identity: &str,
        duration_seconds: i32,
    ) -> Self {
        AgentLease {
            api: Api::namespaced(client, namespace),
            cluster: cluster.to_owned(),
            identity: identity.to_owned(),
            version: "0.9.0".to_owned(),
            duration_seconds,
        }
    }

    /// The Lease's name: `hoist-agent-<cluster>`.
    pub fn name(&self) -> String {
        format!("hoist-agent-{}", self.cluster)
    }

    /// The version the agent announces (annotation `hoist.dev/agent-version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Takes or renews the Lease now, as a leader's round does: created
    /// when missing, else replaced at the version read, keeping
    /// `acquireTime` while this replica holds it.
    pub async fn renew(&self) -> Result<Lease> {
        let now = MicroTime(Timestamp::now());
        let current = self
            .api
            .get_opt(&self.name())
            .await
            .context("reading the agent Lease")?;
        let previous = current
            .as_ref()
            .and_then(|lease| lease.spec.clone())
            .unwrap_or_default();
        let held = previous.holder_identity.as_deref() == Some(self.identity.as_str());
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds),
            acquire_time: if held {
                previous.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                previous.lease_transitions.unwrap_or(0) + i32::from(!held && current.is_some()),
            ),
            ..LeaseSpec::default()
        };
        match current {
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.api
                    .replace(&self.name(), &PostParams::default(), &lease)
                    .await
                    .context("renewing the agent Lease")
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name()),
                        labels: Some([("hoist.dev/cluster".to_owned(), self.cluster.clone())].into()),
                        annotations: Some(
                            [("hoist.dev/agent-version".to_owned(), self.version.clone())].into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .context("creating the agent Lease")
            }
        }
    }
}
