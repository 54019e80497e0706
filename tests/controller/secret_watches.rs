//! A cluster-wide install watches Secrets only in the namespaces where an
//! Environment reads one: no list or watch of every Secret in the cluster.
//! A Secret created after the Environment that references it is picked
//! up, a rotation rolls the pods, and a namespace whose last such
//! Environment is deleted is no longer watched.

use hoist_testkit::health;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;

use super::*;

/// The lists (not watches) the operator made of the Secrets collection `path`.
fn lists_of(requests: &RequestCounter, path: &str) -> usize {
    requests
        .all()
        .iter()
        .filter(|request| request.is_list_or_watch(path) && !request.query.contains("watch=true"))
        .count()
}

/// Waits until the operator's `/metrics` sample `sample` is `value`.
async fn wait_for_metric(scenario: &Scenario, sample: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while health::metric(scenario.health(), sample).await != value {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sample} did not become {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_cluster_wide_operator_watches_secrets_only_where_environments_read_them() {
    let mut scenario = Scenario::new().await;
    let tenant = scenario.namespace().to_string();
    // A namespace no Environment reads from, with a Secret of its own.
    let unrelated = scenario
        .cluster
        .extra_namespace("hoist-unrelated", &[])
        .await
        .expect("unrelated namespace");
    let secret = |value: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": "shop-token"}, "stringData": {"TOKEN": value}}))
            .expect("secret")
    };
    Api::<Secret>::namespaced(scenario.client(), &unrelated)
        .create(&PostParams::default(), &secret("elsewhere"))
        .await
        .expect("unrelated secret");
    // dev references a Secret that does not exist yet.
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].secret_refs = vec![hoist::api::SecretReference {
                name: "shop-token".into(),
            }];
        })
        .await;
    // A cluster-wide install: the chart's rules in every namespace, no
    // namespace list. (On a real cluster this operator reconciles every
    // Environment of the cluster: run it where no other operator does.)
    scenario
        .cluster
        .grant_cluster_wide_install()
        .await
        .expect("cluster-wide rules");
    let settings = Settings {
        namespaces: Vec::new(),
        ..scenario.settings()
    };
    scenario.start_with(settings).await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |environment| {
            let status = serde_json::to_string(&environment.status).unwrap_or_default();
            status.contains("shop-token") && status.contains("not found")
        })
        .await
        .expect("dev says its Secret is missing");

    // Created afterwards, it is picked up.
    let secrets: Api<Secret> = Api::namespaced(scenario.client(), &tenant);
    secrets
        .create(&PostParams::default(), &secret("one"))
        .await
        .expect("secret");
    scenario.wait_phase("to-dev", Phase::Succeeded).await;
    let namespace = scenario.stages["dev"].clone();
    let first_hash = scenario
        .annotation("dev", "backend", "hoist.dev/config-hash")
        .await
        .expect("config hash");

    // Rotating it rolls the pods.
    scenario.rotate_token(&tenant, &namespace, &first_hash).await;

    // Secrets were listed and watched in the tenant's namespace, never
    // cluster-wide nor where no Environment reads one. (On a real cluster
    // other tests' Environments may read Secrets in their own namespaces.)
    let tenant_secrets = format!("/api/v1/namespaces/{tenant}/secrets");
    let collections = scenario.secret_collections();
    assert!(collections.contains(&tenant_secrets), "{collections:?}");
    assert!(
        !collections.iter().any(|path| path == "/api/v1/secrets"),
        "{collections:?}"
    );
    assert!(
        !collections.contains(&format!("/api/v1/namespaces/{unrelated}/secrets")),
        "{collections:?}"
    );
    assert_eq!(lists_of(scenario.requests(), &tenant_secrets), 1);

    // dev deleted, no Environment reads a Secret there: the watch stops;
    // dev created again starts (and lists) a new one.
    let watches = format!("hoist_secret_watches{{namespace=\"{tenant}\"}}");
    assert_eq!(health::metric(scenario.health(), &watches).await, 1.0);
    let dev = scenario.environment("dev").await;
    Api::<Environment>::namespaced(scenario.client(), &tenant)
        .delete("dev", &DeleteParams::default())
        .await
        .expect("delete dev");
    wait_for_metric(&scenario, &watches, 0.0).await;
    let again = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "dev"}, "spec": dev.spec,
    });
    scenario.apply::<Environment>("dev", again).await;
    wait_for_metric(&scenario, &watches, 1.0).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while lists_of(scenario.requests(), &tenant_secrets) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the namespace's new watch did not list"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scenario.stop().await;
}
