//! The README's seven questions, answered by `kubectl hoist` as the README shows.

use hoist::api::{Artifact, Environment, Phase};
use hoist_testkit::registry::push_multi;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{STAGES, Scenario, TIMEOUT, readme};

/// The README's section "The seven questions": each question's command run
/// (the `kubectl-hoist` binary, as a user runs it) against a prod that saw
/// three releases, a configuration-only change, a rollback and a hotfix;
/// each output must be the README's block after `<!-- seven-questions:NAME -->`,
/// apart from what differs from run to run (ages, times, the random part of
/// generated names, column padding). `HOIST_UPDATE_README=1` writes the
/// outputs of this run into the README instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_questions_are_answered_as_the_readme_shows() {
    const REVISIONS: [(&str, &str); 4] = [
        ("1.0.0", "9e1d0c3b2a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d"),
        ("1.1.0", "0123abc4567def890123abc4567def890123abc4"),
        ("1.2.0", "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f"),
        ("1.2.1", "b7a4e2f9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1"),
    ];
    let mut scenario = Scenario::new().await;
    let tenant = scenario.namespace().to_string();
    let secrets: Api<Secret> = Api::namespaced(scenario.client(), &tenant);
    let db = |password: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-db"},
            "stringData": {"user": "shop", "password": password}
        }))
        .expect("secret")
    };
    secrets
        .create(&PostParams::default(), &db("first-password"))
        .await
        .expect("create secret");
    // payments runs beside shop; shop declares which payments it works with.
    for stage in STAGES {
        scenario.create_deployment(stage, "payments", "app", 0).await;
        let namespace = scenario.stages[stage].clone();
        scenario
            .update_environment(stage, |spec| {
                spec.targets.push(
                    serde_json::from_value(json!({
                        "application": "payments", "component": "api",
                        "deployment": {"name": "payments", "namespace": namespace}, "container": "app"
                    }))
                    .expect("target"),
                );
                if stage == "prod" {
                    spec.config[0].data =
                        [("STAGE", "prod"), ("PAYMENT_RETRIES", "3"), ("LEGACY_CART", "on")]
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .into();
                    spec.config[0].secret_refs =
                        vec![serde_json::from_value(json!({"name": "shop-db"})).expect("secret ref")];
                    spec.gates.compatibility =
                        Some(serde_json::from_value(json!({"enforce": true})).expect("compatibility"));
                }
            })
            .await;
    }
    scenario.start().await;
    let admin = scenario
        .cluster
        .admin_kubeconfig_file()
        .expect("the admin's kubeconfig");

    let payments = push_multi("payments", &[("api", "1.4.0")])
        .await
        .expect("push payments");
    scenario
        .apply::<Artifact>("payments-1-4-0", json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "payments-1-4-0"},
            "spec": {
                "application": "payments", "version": "1.4.0",
                "images": [{"component": "api", "image": payments["api"].reference}],
                "source": {"repository": "https://gitlab.com/acme/payments", "revision": "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c"}
            }
        }))
        .await;
    through_to_prod(&scenario, "payments-1-4-0", "bob").await;
    for (version, revision) in &REVISIONS[..3] {
        let artifact = shop_release(&scenario, version, revision).await;
        through_to_prod(
            &scenario,
            &artifact,
            if *version == "1.1.0" { "bob" } else { "alice" },
        )
        .await;
    }

    let mut answers: Vec<(&'static str, String)> = Vec::new();
    let run = |args: &'static [&'static str]| readme::kubectl_hoist(&admin, None, &tenant, args);

    // A configuration-only change: an overlay key changed, one added, one
    // removed, and the Secret rotated, made while the operator is stopped so
    // that they roll out as one change.
    scenario.stop().await;
    scenario
        .update_environment("prod", |spec| {
            spec.config[0].data = [
                ("STAGE", "prod"),
                ("PAYMENT_RETRIES", "5"),
                ("CHECKOUT_TIMEOUT", "30s"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        })
        .await;
    let mut rotated = db("second-password");
    rotated.metadata.resource_version = secrets
        .get("shop-db")
        .await
        .expect("secret")
        .metadata
        .resource_version;
    secrets
        .replace("shop-db", &PostParams::default(), &rotated)
        .await
        .expect("rotate the secret");
    scenario.start().await;
    scenario
        .cluster
        .wait_for::<Environment>("prod", TIMEOUT, |environment| {
            environment.status.as_ref().is_some_and(|status| {
                status.history.first().is_some_and(|entry| {
                    entry.change == hoist::api::ChangeKind::Configuration && entry.completed_at.is_some()
                })
            })
        })
        .await
        .unwrap_or_else(|error| panic!("prod records the configuration change, rolled out: {error}"));
    answers.push((
        "config-change",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));

    // Question 4: roll shop back, payments untouched.
    let rollback = run(&["rollback", "prod", "--application", "shop"]).await;
    let promotion = readme::rollback_promotion(&rollback);
    answers.push(("rollback", rollback));
    scenario.approve(&promotion, "bob").await;
    scenario.wait_phase(&promotion, Phase::Succeeded).await;
    answers.push((
        "rollback-changes",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));

    // Question 7: the hotfix 1.2.1 goes straight to prod.
    let (version, revision) = REVISIONS[3];
    let artifact = shop_release(&scenario, version, revision).await;
    assert_eq!(artifact, "shop-1-2-1");
    let hotfix = run(&[
        "hotfix",
        "shop-1-2-1",
        "prod",
        "--waive",
        "Upstream",
        "--justification",
        "checkout fails for carts over 100 items (INC-4711)",
        "--name",
        "hotfix-shop-1-2-1",
    ])
    .await;
    answers.push(("hotfix", hotfix));
    scenario.wait_phase("hotfix-shop-1-2-1", Phase::Waiting).await;
    scenario.approve("hotfix-shop-1-2-1", "alice").await;
    scenario.wait_phase("hotfix-shop-1-2-1", Phase::Succeeded).await;

    answers.push(("status", run(&["status", "prod"]).await));
    answers.push(("status-wide", run(&["status", "prod", "-o", "wide"]).await));
    answers.push((
        "changes",
        run(&["changes", "prod", "--application", "shop"]).await,
    ));
    answers.push(("compat", run(&["compat", "prod"]).await));
    answers.push((
        "history",
        run(&["history", "prod", "--application", "shop"]).await,
    ));
    scenario.stop().await;

    // What is this run's own: the tenant and stage namespaces.
    let mut own: Vec<(String, String)> = vec![(tenant.clone(), "shop".into())];
    for stage in STAGES {
        own.push((scenario.stages[stage].clone(), format!("shop-{stage}")));
    }
    readme::check("seven-questions", "seven_questions", &answers, &own);
}

/// Promotes `artifact` through dev and staging, then into prod with
/// `approver`'s approval (Promotions `<artifact>-<stage>`).
async fn through_to_prod(scenario: &Scenario, artifact: &str, approver: &str) {
    for stage in ["dev", "staging"] {
        scenario
            .promote_and_wait(&format!("{artifact}-{stage}"), artifact, stage)
            .await;
    }
    let name = format!("{artifact}-prod");
    scenario.promote(&name, artifact, "prod").await;
    scenario.wait_phase(&name, Phase::Waiting).await;
    scenario.approve(&name, approver).await;
    scenario.wait_phase(&name, Phase::Succeeded).await;
}

/// Pushes shop `version`'s images and creates its Artifact (built from
/// `revision`, working with payments 1.x from 1.4.0); returns its name.
async fn shop_release(scenario: &Scenario, version: &str, revision: &str) -> String {
    let name = format!("shop-{}", version.replace('.', "-"));
    // The CI run that built it, as GitHub Actions numbers them.
    let build = format!("71{}", version.replace('.', ""));
    let images = push_multi("shop", &[("backend", version), ("frontend", version)])
        .await
        .expect("push images");
    scenario
        .artifact_of(
            &name,
            version,
            &images,
            json!({
                "source": {
                    "repository": "https://github.com/acme/shop", "revision": revision,
                    "buildId": build, "buildUrl": format!("https://github.com/acme/shop/actions/runs/{build}")
                },
                "compatibility": [{"application": "payments", "versions": ">=1.4.0, <2.0.0"}]
            }),
        )
        .await;
    name
}
