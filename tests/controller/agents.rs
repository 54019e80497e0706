//! The hub's side of workload-cluster agents: `AgentConnected` on an
//! Environment with `spec.cluster` follows the agent's Lease (written here
//! exactly as leader election writes it: the hub sees nothing else of an
//! agent), and Promotions into it are labelled with the cluster. Writes
//! are counted: while nothing the hub says changes, it writes nothing.

use hoist::api::{Environment, Promotion};
use hoist_testkit::heartbeat::AgentLease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::json;

use super::{Scenario, TIMEOUT};

/// The lease duration of the test agent: short, so silence comes in seconds.
const LEASE_SECONDS: i32 = 3;

impl Scenario {
    /// Environment eu-prod of workload cluster eu (nothing for the hub to
    /// reconcile but the agent's heartbeat).
    async fn workload_environment(&self) -> Environment {
        self.apply::<Environment>(
            "eu-prod",
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": "eu-prod"},
                "spec": {"cluster": "eu", "upstream": ["staging"]}
            }),
        )
        .await
    }

    /// eu-prod's AgentConnected once `done` holds for it.
    async fn agent_condition(&self, done: impl Fn(&Condition) -> bool) -> Condition {
        let environment = self
            .cluster
            .wait_for::<Environment>("eu-prod", TIMEOUT, |e| agent_connected(e).is_some_and(&done))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        agent_connected(&environment).cloned().expect("AgentConnected")
    }

    /// Which field managers own `status.conditions[type=AgentConnected]`.
    async fn condition_managers(&self) -> Vec<String> {
        let environment = self.environment("eu-prod").await;
        managers_of(&environment.metadata, r#"{\"type\":\"AgentConnected\"}"#)
    }
}

/// The field managers whose managed fields name `field` (as it appears in
/// the FieldsV1 JSON).
fn managers_of(
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    field: &str,
) -> Vec<String> {
    metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|fields| fields.0.to_string().contains(field))
        })
        .filter_map(|entry| entry.manager.clone())
        .collect()
}

fn agent_connected(environment: &Environment) -> Option<&Condition> {
    environment
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "AgentConnected")
}

#[tokio::test]
async fn agent_connected_follows_the_lease_and_promotions_carry_the_cluster() {
    let mut scenario = Scenario::new().await;
    let environment = scenario.workload_environment().await;
    let created = environment
        .metadata
        .creation_timestamp
        .clone()
        .expect("creation time")
        .0;
    let mut settings = scenario.settings();
    settings.agent_namespace = Some(scenario.namespace().to_string());
    scenario.start_with(settings).await;

    // No agent has connected yet.
    let never = scenario.agent_condition(|c| c.status == "False").await;
    let lease_ref = format!("{}/hoist-agent-eu", scenario.namespace());
    assert_eq!(
        (never.reason.as_str(), never.message.clone()),
        (
            "AgentSilent",
            format!(
                "no agent of cluster eu has connected since {created} (no Lease); Promotions into this Environment \
                 wait until an agent of cluster eu renews Lease {lease_ref} (run `hoist agent --cluster eu` in the \
                 workload cluster)"
            )
        )
    );
    assert_eq!(scenario.condition_managers().await, vec!["hoist-hub".to_string()]);

    // A Promotion into it is labelled with the cluster (by the hub's own
    // field manager). Its Waiting while the agent is silent is decided in
    // core::agents; the hub operator that decides it otherwise until it
    // skips agents' Environments is the workload-cluster scenarios' to run.
    scenario.promote("to-eu", "shop-1-0-0", "eu-prod").await;
    let promotion = scenario
        .cluster
        .wait_for::<Promotion>("to-eu", TIMEOUT, |p| {
            p.labels().get("hoist.dev/cluster").map(String::as_str) == Some("eu")
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        managers_of(&promotion.metadata, "hoist.dev/cluster"),
        vec!["hoist-hub".to_string()]
    );

    // The agent connects: True, with its version and replica.
    let agent = AgentLease::new(
        scenario.client(),
        scenario.namespace(),
        "eu",
        "agent-eu-0",
        LEASE_SECONDS,
    );
    let lease = agent.renew().await.expect("agent connects");
    let acquired = lease.spec.and_then(|s| s.acquire_time).expect("acquire time").0;
    let connected = scenario.agent_condition(|c| c.status == "True").await;
    assert_eq!(
        (connected.reason.as_str(), connected.message.clone()),
        (
            "LeaseRenewed",
            format!(
                "the agent of cluster eu (version 0.9.0, replica agent-eu-0) renews Lease {lease_ref} on the hub, \
                 connected since {acquired}"
            )
        )
    );

    // Renewals every second change nothing the hub says: it writes nothing.
    let agent = std::sync::Arc::new(agent);
    let renewing = {
        let agent = std::sync::Arc::clone(&agent);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                agent.renew().await.expect("agent renews");
            }
        })
    };
    scenario.requests().reset();
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::from(LEASE_SECONDS.unsigned_abs()) + 1,
    ))
    .await;
    assert_eq!(
        scenario.requests().writes(),
        Vec::new(),
        "renewals made the hub write"
    );

    // The agent stops renewing: silent since its Lease expired, looked at
    // again at the expiry instant (no polling while connected).
    renewing.abort();
    let _ = renewing.await;
    let last = agent.renew().await.expect("last renewal");
    let renewed = last.spec.and_then(|s| s.renew_time).expect("renew time").0;
    let expired = renewed
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
            LEASE_SECONDS,
        )))
        .expect("expiry");
    let silent = scenario.agent_condition(|c| c.status == "False").await;
    assert_eq!(
        silent.message,
        format!(
            "the agent of cluster eu is silent since {expired}: its Lease expired (last heartbeat {renewed}); \
             Promotions into this Environment wait until an agent of cluster eu renews Lease {lease_ref} (run \
             `hoist agent --cluster eu` in the workload cluster)"
        )
    );
    scenario.stop().await;
}
