//! A namespace-scoped install over a list of namespaces (`watchNamespaces`):
//! the operator holds the chart's namespace rules (Jobs, Secrets,
//! ServiceAccounts) by a Role in each listed namespace only, promotes in
//! each with configuration Secrets and verification Jobs, notices a Secret
//! rotated in any of them, and lists or watches Secrets nowhere else.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;

use super::*;

/// Creates `object` (of kind `K`) in `namespace` as the cluster admin.
async fn create_in<K>(scenario: &Scenario, namespace: &str, object: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    Api::<K>::namespaced(scenario.client(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|error| panic!("create {} in {namespace}: {error}", K::kind(&())))
}

/// The verification step of the scenarios: a smoke test Job that passes.
fn smoke_job() -> serde_json::Value {
    json!([{"name": "smoke", "job": {"image": "busybox:1.36", "command": ["sh", "-c", "exit 0"], "timeout": "2m"}}])
}

#[tokio::test]
async fn an_operator_of_two_namespaces_promotes_in_both_and_reads_no_secret_elsewhere() {
    let mut scenario = Scenario::new().await;
    let tenant = scenario.namespace().to_string();
    let secret = |value: &str| json!({"metadata": {"name": "shop-token"}, "stringData": {"TOKEN": value}});
    create_in::<Secret>(&scenario, &tenant, secret("one")).await;
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].secret_refs = vec![hoist::api::SecretReference {
                name: "shop-token".into(),
            }];
            spec.gates.verification = serde_json::from_value(smoke_job()).expect("steps");
        })
        .await;

    // A second tenant, listed too: its dev stage targets a namespace opted in for it.
    let second = scenario
        .cluster
        .watched_namespace("hoist-second")
        .await
        .expect("second tenant");
    let second_dev = scenario
        .cluster
        .extra_namespace("hoist-second-dev", &[("hoist.dev/tenant", second.as_str())])
        .await
        .expect("second tenant's dev");
    create_in::<Deployment>(&scenario, &second_dev, deployment("backend", "app", 0)).await;
    create_in::<Secret>(&scenario, &second, secret("one")).await;
    create_in::<ConfigMap>(
        &scenario,
        &second,
        json!({"metadata": {"name": "shop-base"}, "data": {"LOG_LEVEL": "debug"}}),
    )
    .await;
    create_in::<Environment>(
        &scenario,
        &second,
        json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": "dev"},
            "spec": {
                "targets": [{"application": "shop", "component": "backend", "deployment": {"name": "backend", "namespace": second_dev}, "container": "app"}],
                "config": [{"application": "shop", "baseConfigMap": "shop-base", "secretRefs": [{"name": "shop-token"}]}],
                "gates": {"verification": smoke_job()}
            }
        }),
    )
    .await;
    // A namespace the install does not list, with a Secret of its own.
    let unlisted = scenario
        .cluster
        .extra_namespace("hoist-unlisted", &[])
        .await
        .expect("unlisted namespace");
    create_in::<Secret>(&scenario, &unlisted, secret("elsewhere")).await;

    let settings = Settings {
        namespaces: vec![tenant.clone(), second.clone()],
        ..scenario.settings()
    };
    scenario.start_with(settings).await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    create_in::<Artifact>(
        &scenario,
        &second,
        json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
            "metadata": {"name": "shop-1-0-0"},
            "spec": {"application": "shop", "version": "1.0.0", "images": [{"component": "backend", "image": images["backend"].reference}]}
        }),
    )
    .await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    let promotion = Promotion::new(
        "to-dev",
        PromotionSpec {
            artifact: "shop-1-0-0".into(),
            environment: "dev".into(),
            reason: Some("test".into()),
            requested_by: Some(scenario.cluster.admin_user().to_string()),
            r#override: None,
            approvals: Vec::new(),
        },
    );
    Api::<Promotion>::namespaced(scenario.client(), &second)
        .create(&PostParams::default(), &promotion)
        .await
        .expect("create the second tenant's promotion");
    let done = scenario
        .cluster
        .wait_for_in::<Promotion>(&second, "to-dev", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::Succeeded)
        })
        .await
        .expect("the second tenant's promotion succeeds");

    // Each tenant's verification Job ran in its own namespace.
    for (namespace, uid) in [
        (
            tenant.as_str(),
            scenario.wait_phase("to-dev", Phase::Succeeded).await.metadata.uid,
        ),
        (second.as_str(), done.metadata.uid),
    ] {
        let name = hoist::core::gates::verification::job_name("to-dev", uid.as_deref(), "smoke");
        Api::<Job>::namespaced(scenario.client(), namespace)
            .get(&name)
            .await
            .unwrap_or_else(|error| panic!("Job {namespace}/{name}: {error}"));
    }
    let backend = Api::<Deployment>::namespaced(scenario.client(), &second_dev)
        .get("backend")
        .await
        .expect("the second tenant's backend");
    let first_hash = config_hash(&backend).expect("config hash");
    assert_eq!(
        backend.spec.expect("spec").template.spec.expect("pod").containers[0].image,
        Some(pinned(&images["backend"]))
    );

    // Rotating the second tenant's Secret rolls its pods.
    scenario.rotate_token(&second, &second_dev, &first_hash).await;

    // The operator's RBAC stops at the listed namespaces, and it lists or
    // watches Secrets only there.
    let (operator, _) = scenario.cluster.counted_client().expect("operator's client");
    let refused = Api::<Secret>::namespaced(operator.clone(), &unlisted)
        .get("shop-token")
        .await
        .expect_err("no Secret of an unlisted namespace");
    assert!(
        matches!(&refused, kube::Error::Api(status) if status.code == 403),
        "{refused}"
    );
    let refused = Api::<Secret>::all(operator)
        .list_metadata(&ListParams::default())
        .await
        .expect_err("no cluster-wide Secrets list");
    assert!(
        matches!(&refused, kube::Error::Api(status) if status.code == 403),
        "{refused}"
    );
    let mut listed = vec![
        format!("/api/v1/namespaces/{tenant}/secrets"),
        format!("/api/v1/namespaces/{second}/secrets"),
    ];
    listed.sort();
    assert_eq!(scenario.secret_collections(), listed);
    scenario.stop().await;
}
