//! Workload-cluster agents write only what is theirs, enforced by the hub's
//! API server (stand-in, or a real cluster with HOIST_TEST_KUBECONFIG): the
//! admission policy hoist-agents shipped with the chart, with the agent
//! identity granted the chart's agent rules. The agent of cluster eu is
//! ServiceAccount hoist-agent-eu (impersonated): it writes the status of
//! eu's Environments and of Promotions labelled eu, and its own Lease, and
//! nothing of cluster us; tenants are not affected.

use hoist::api::{Environment, Promotion};
use hoist_testkit::cluster::{
    TestCluster, agent_namespace_rules_file, agent_rules_file, read_operator_rules,
};
use hoist_testkit::heartbeat::AgentLease;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const TENANT: &str = "frank";

struct Hub {
    cluster: TestCluster,
}

impl Hub {
    /// Environments eu-prod (cluster eu), us-prod (cluster us) and dev (the
    /// hub's own); Promotions to-eu (labelled eu), to-us (labelled us) and
    /// to-dev (no label); agents eu and us granted the chart's agent rules,
    /// frank allowed to write Environments' status.
    async fn new() -> Self {
        let hub = Hub {
            cluster: TestCluster::new().await.expect("test cluster"),
        };
        let mut rules = read_operator_rules(&agent_rules_file()).expect("agent rules");
        rules.extend(read_operator_rules(&agent_namespace_rules_file()).expect("agent namespace rules"));
        let agents = [hub.agent_user("eu"), hub.agent_user("us")];
        hub.cluster
            .grant(
                "hoist-agent",
                serde_json::to_value(rules).expect("rules"),
                &[agents[0].as_str(), agents[1].as_str()],
            )
            .await
            .expect("grant the agents");
        hub.cluster
            .grant(
                "status-writer",
                json!([{"apiGroups": ["hoist.dev"], "resources": ["environments/status", "promotions/status"],
                        "verbs": ["get", "patch", "update"]}]),
                &[TENANT],
            )
            .await
            .expect("grant the tenant");
        for (name, cluster) in [("eu-prod", Some("eu")), ("us-prod", Some("us")), ("dev", None)] {
            let environment: Environment = serde_json::from_value(json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": name}, "spec": {"cluster": cluster}
            }))
            .expect("environment");
            Api::<Environment>::namespaced(hub.cluster.client(), hub.cluster.namespace())
                .create(&PostParams::default(), &environment)
                .await
                .expect("create environment");
        }
        for (name, environment, label) in [
            ("to-eu", "eu-prod", Some("eu")),
            ("to-us", "us-prod", Some("us")),
            ("to-dev", "dev", None),
        ] {
            let labels = label.map(|cluster| json!({"hoist.dev/cluster": cluster}));
            let promotion: Promotion = serde_json::from_value(json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Promotion",
                "metadata": {"name": name, "labels": labels},
                "spec": {"artifact": "shop-1-0-0", "environment": environment,
                         "requestedBy": hub.cluster.admin_user()}
            }))
            .expect("promotion");
            Api::<Promotion>::namespaced(hub.cluster.client(), hub.cluster.namespace())
                .create(&PostParams::default(), &promotion)
                .await
                .expect("create promotion");
        }
        hub
    }

    /// ServiceAccount hoist-agent-<cluster> of the test's namespace (the
    /// agent namespace), as the API server names it.
    fn agent_user(&self, cluster: &str) -> String {
        format!(
            "system:serviceaccount:{}:hoist-agent-{cluster}",
            self.cluster.namespace()
        )
    }

    fn agent(&self, cluster: &str) -> Client {
        self.cluster
            .user_client(&self.agent_user(cluster), &[])
            .expect("agent client")
    }

    /// `client` writes `status` of `K` `name` (a merge patch, as a status update).
    async fn write_status<K>(
        &self,
        client: Client,
        name: &str,
        status: serde_json::Value,
    ) -> Result<(), String>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(client, self.cluster.namespace())
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .map(drop)
            .map_err(|error| match error {
                kube::Error::Api(status) => status.message,
                other => other.to_string(),
            })
    }
}

/// The API server's refusal by hoist-agents of a write of `resource` `name`.
fn refusal(resource: &str, name: &str, message: &str) -> Result<(), String> {
    Err(format!(
        "{resource} \"{name}\" is forbidden: ValidatingAdmissionPolicy 'hoist-agents' with binding 'hoist-agents' \
         denied request: {message}"
    ))
}

#[tokio::test]
async fn an_agent_writes_the_status_of_its_own_clusters_environments_only() {
    let hub = Hub::new().await;
    let summary = json!({"summary": "shop@1.0.0"});
    assert_eq!(
        hub.write_status::<Environment>(hub.agent("eu"), "eu-prod", summary.clone())
            .await,
        Ok(())
    );
    assert_eq!(
        hub.write_status::<Environment>(hub.agent("eu"), "us-prod", summary.clone())
            .await,
        refusal(
            "environments.hoist.dev",
            "us-prod",
            "agent of cluster eu may not write the status of environment us-prod of cluster us"
        )
    );
    assert_eq!(
        hub.write_status::<Environment>(hub.agent("eu"), "dev", summary.clone())
            .await,
        refusal(
            "environments.hoist.dev",
            "dev",
            "agent of cluster eu may not write the status of environment dev of the hub (no spec.cluster)"
        )
    );
    // Tenants are not agents: RBAC alone decides for them.
    assert_eq!(
        hub.write_status::<Environment>(
            hub.cluster.user_client(TENANT, &[]).expect("tenant"),
            "us-prod",
            summary
        )
        .await,
        Ok(())
    );
}

#[tokio::test]
async fn an_agent_writes_the_status_of_promotions_labelled_with_its_cluster_only() {
    let hub = Hub::new().await;
    let waiting = json!({"phase": "Waiting", "message": "held by Approval"});
    assert_eq!(
        hub.write_status::<Promotion>(hub.agent("eu"), "to-eu", waiting.clone())
            .await,
        Ok(())
    );
    assert_eq!(
        hub.write_status::<Promotion>(hub.agent("eu"), "to-us", waiting.clone())
            .await,
        refusal(
            "promotions.hoist.dev",
            "to-us",
            "agent of cluster eu may not write the status of promotion to-us of cluster us"
        )
    );
    assert_eq!(
        hub.write_status::<Promotion>(hub.agent("eu"), "to-dev", waiting.clone())
            .await,
        refusal(
            "promotions.hoist.dev",
            "to-dev",
            "agent of cluster eu may not write the status of promotion to-dev labelled with no cluster"
        )
    );
    assert_eq!(
        hub.write_status::<Promotion>(
            hub.cluster.user_client(TENANT, &[]).expect("tenant"),
            "to-us",
            waiting
        )
        .await,
        Ok(())
    );
}

#[tokio::test]
async fn an_agent_holds_its_own_lease_only() {
    let hub = Hub::new().await;
    let namespace = hub.cluster.namespace();
    // Its own Lease labelled with another cluster is refused.
    let mislabelled: k8s_openapi::api::coordination::v1::Lease = serde_json::from_value(json!({
        "metadata": {"name": "hoist-agent-eu", "labels": {"hoist.dev/cluster": "us"}},
        "spec": {"holderIdentity": "agent-eu-0"}
    }))
    .expect("lease");
    let refused = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(hub.agent("eu"), namespace)
        .create(&PostParams::default(), &mislabelled)
        .await
        .map(drop)
        .map_err(|error| match error {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        });
    assert_eq!(
        refused,
        refusal(
            "leases.coordination.k8s.io",
            "hoist-agent-eu",
            "agent of cluster eu must label its Lease hoist.dev/cluster: eu"
        )
    );
    AgentLease::new(hub.agent("eu"), namespace, "eu", "agent-eu-0", 15)
        .renew()
        .await
        .expect("eu's agent takes its Lease");
    AgentLease::new(hub.agent("eu"), namespace, "eu", "agent-eu-0", 15)
        .renew()
        .await
        .expect("and renews it");
    // The us agent's Lease, created by its own agent, then claimed by eu's.
    AgentLease::new(hub.agent("us"), namespace, "us", "agent-us-0", 15)
        .renew()
        .await
        .expect("us's agent takes its Lease");
    let claimed = AgentLease::new(hub.agent("eu"), namespace, "us", "agent-eu-0", 15)
        .renew()
        .await
        .map(drop)
        .map_err(|error| match error.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => status.message.clone(),
            _ => format!("{error:#}"),
        });
    assert_eq!(
        claimed,
        refusal(
            "leases.coordination.k8s.io",
            "hoist-agent-us",
            "agent of cluster eu may not write Lease hoist-agent-us: its own is hoist-agent-eu"
        )
    );
}
