//! Targets of every kind besides Deployments, through the operator: a
//! StatefulSet, a DaemonSet and a CronJob are pinned, rolled out, and on a
//! failed rollout (for a CronJob, whose rollout cannot fail: a failed
//! verification) rolled back (images and configuration), with health and
//! history as for Deployments; a Rollout paused at a canary step keeps its
//! Promotion rolling out until promoted, and its abort fails it.
//!
//! Each scenario moves shop's backend component of dev onto a workload of
//! the kind (frontend stays on its Deployment). A pod whose images all pull
//! becomes ready; the sidecar `example.invalid/sidecar:1` never pulls, so a
//! workload with it never rolls out.

use hoist::api::{Environment, Health, Phase, WorkloadKind, WorkloadReference};
use hoist::core::workload::{ArgoRollout, Workload};
use hoist_testkit::rollouts::{abort_rollout, argo_rollouts, promote_rollout, skip_without_argo_rollouts};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::*;

/// The pod template of a workload of `kind`, whose containers are `containers`.
fn template(name: &str, containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}})
}

fn app(name: &str) -> Value {
    json!({"name": "app", "image": format!("example.invalid/{name}:latest")})
}

fn sidecar() -> Value {
    json!({"name": "sidecar", "image": "example.invalid/sidecar:1"})
}

/// Points dev's backend target at workload `kind` `name` in `namespace`
/// (the Environment's own when `None`), with spec.rollout.timeout `timeout`.
async fn target(
    scenario: &Scenario,
    kind: WorkloadKind,
    name: &str,
    namespace: Option<String>,
    timeout: &str,
) {
    scenario
        .update_environment("dev", |spec| {
            let backend = spec
                .targets
                .iter_mut()
                .find(|t| t.component == "backend")
                .expect("backend target");
            backend.deployment = None;
            backend.workload = Some(WorkloadReference {
                kind,
                name: name.into(),
                namespace,
            });
            spec.rollout.timeout = Some(timeout.into());
        })
        .await;
}

/// Releases `artifact` (`version`), promotes it into dev as `promotion` and
/// waits until the Rollout api runs its pin, paused at the canary's pause
/// step; answers the pinned image.
async fn paused_at_canary(scenario: &Scenario, promotion: &str, artifact: &str, version: &str) -> String {
    let images = scenario.release(artifact, version, None).await;
    scenario.promote(promotion, artifact, "dev").await;
    let image = pinned(&images["backend"]);
    scenario
        .cluster
        .wait_for_in::<ArgoRollout>(scenario.namespace(), "api", TIMEOUT, |rollout| {
            app_image(&Workload::Rollout(rollout.clone())).as_deref() == Some(image.as_str())
                && rollout
                    .status
                    .as_ref()
                    .is_some_and(|s| s.phase.as_deref() == Some("Paused") && !s.pause_conditions.is_empty())
        })
        .await
        .unwrap_or_else(|error| panic!("{artifact} pinned and paused at the canary's pause step: {error}"));
    image
}

/// Creates `object`, a workload of `kind` as JSON, in dev's namespace and
/// points dev's backend target at it, with a 3-second rollout timeout.
async fn create_target<K>(scenario: &Scenario, kind: WorkloadKind, object: Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let workload: K = serde_json::from_value(object).unwrap_or_else(|error| panic!("{kind:?}: {error}"));
    let name = workload.meta().name.clone().expect("a name");
    Api::<K>::namespaced(scenario.client(), &scenario.stages["dev"])
        .create(&PostParams::default(), &workload)
        .await
        .unwrap_or_else(|error| panic!("create {kind:?} {name}: {error}"));
    target(scenario, kind, &name, Some(scenario.stages["dev"].clone()), "3s").await;
}

/// The image of container `app` of `workload`'s pod template.
fn app_image(workload: &Workload) -> Option<String> {
    workload
        .pod_template()?
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "app")?
        .image
        .clone()
}

/// The backend workload `K` of dev once its app container runs `image`.
async fn wait_app_image<K>(scenario: &Scenario, name: &str, image: &str, wrap: fn(K) -> Workload, what: &str)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    scenario
        .cluster
        .wait_for_in::<K>(&scenario.stages["dev"], name, TIMEOUT, |object| {
            app_image(&wrap(object.clone())).as_deref() == Some(image)
        })
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"));
}

/// dev's application status of shop: (version, health).
async fn running(scenario: &Scenario) -> (String, Health) {
    let environment: Environment = scenario.environment("dev").await;
    let app = environment
        .status
        .expect("status")
        .applications
        .into_iter()
        .find(|app| app.application == "shop")
        .expect("shop runs");
    (app.version, app.health)
}

/// Promotes 1.0.0 into dev (it rolls out), then 1.1.0 after `break_it`
/// made the workload unable to roll out: the Promotion fails on
/// spec.rollout.timeout and 1.0.0 and its configuration are applied again.
async fn promoted_then_rolled_back<K>(
    scenario: &mut Scenario,
    name: &str,
    wrap: fn(K) -> Workload,
    break_it: Value,
) where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    scenario.start().await;
    let v1 = scenario.release("shop-1-0-0", "1.0.0", None).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    wait_app_image(scenario, name, &pinned(&v1["backend"]), wrap, "1.0.0 is pinned").await;
    assert_eq!(running(scenario).await, ("1.0.0".to_string(), Health::Healthy));

    // Applied by a field manager of the test's own: the pin's fields stay Hoist's.
    Api::<K>::namespaced(scenario.client(), &scenario.stages["dev"])
        .patch(
            name,
            &PatchParams::apply("hoist-tests").force(),
            &Patch::Apply(&break_it),
        )
        .await
        .expect("break the workload");
    // A configuration change rides along: the rollback restores it too.
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("MODE".into(), "new".into());
        })
        .await;
    let before_v2 = scenario
        .environment_observed("dev")
        .await
        .status
        .and_then(|status| {
            status
                .applications
                .into_iter()
                .find(|app| app.application == "shop")
        })
        .and_then(|app| app.config_hash);
    let v2 = scenario.release("shop-1-1-0", "1.1.0", None).await;
    scenario.promote("v2", "shop-1-1-0", "dev").await;
    wait_app_image(scenario, name, &pinned(&v2["backend"]), wrap, "1.1.0 is pinned").await;
    let failed = scenario.wait_phase("v2", Phase::RolledBack).await;
    let message = failed
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(message.contains("spec.rollout.timeout"), "{message}");
    wait_app_image(
        scenario,
        name,
        &pinned(&v1["backend"]),
        wrap,
        "1.0.0 is pinned again",
    )
    .await;
    let environment = scenario.environment("dev").await;
    assert_eq!(
        history_of(environment.clone())[..2],
        [
            ("v2".to_string(), Phase::RolledBack),
            ("v1".to_string(), Phase::Succeeded)
        ]
    );
    let shop = environment
        .status
        .expect("status")
        .applications
        .into_iter()
        .find(|app| app.application == "shop")
        .expect("shop runs");
    assert_eq!(shop.version, "1.0.0");
    assert_eq!(
        shop.config_hash, before_v2,
        "the configuration that ran before 1.1.0 is back"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_stateful_set_is_promoted_rolled_out_and_rolled_back_when_its_rollout_times_out() {
    let mut scenario = Scenario::new().await;
    create_target::<StatefulSet>(
        &scenario,
        WorkloadKind::StatefulSet,
        json!({
            "metadata": {"name": "queue"},
            "spec": {
                "replicas": 0, "serviceName": "queue",
                "selector": {"matchLabels": {"app": "queue"}},
                "template": template("queue", json!([app("queue")])),
            }
        }),
    )
    .await;
    // One replica that never becomes ready: the StatefulSet controller
    // never replaces it, as kube's does not.
    let broken = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "queue"},
                        "spec": {"replicas": 1, "template": {"spec": {"containers": [sidecar()]}}}});
    promoted_then_rolled_back(&mut scenario, "queue", Workload::StatefulSet, broken).await;
}

#[tokio::test]
async fn a_daemon_set_is_promoted_rolled_out_and_rolled_back_when_its_rollout_times_out() {
    let mut scenario = Scenario::new().await;
    create_target::<DaemonSet>(
        &scenario,
        WorkloadKind::DaemonSet,
        json!({
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": template("agent", json!([app("agent")])),
            }
        }),
    )
    .await;
    let broken = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                        "spec": {"template": {"spec": {"containers": [sidecar()]}}}});
    promoted_then_rolled_back(&mut scenario, "agent", Workload::DaemonSet, broken).await;
}

#[tokio::test]
async fn a_cron_job_is_rolled_out_once_its_job_template_is_pinned_and_rolled_back_when_its_verification_fails()
 {
    let mut scenario = Scenario::new().await;
    create_target::<CronJob>(
        &scenario,
        WorkloadKind::CronJob,
        json!({
            "metadata": {"name": "report"},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": {
                    "spec": {"restartPolicy": "OnFailure", "containers": [app("report"), sidecar()]}
                }}}
            }
        }),
    )
    .await;
    scenario.start().await;
    // Released, promoted, and the CronJob's job template runs its image.
    let pinned_release = |promotion: &'static str, artifact: &'static str, version: &'static str| {
        let scenario = &scenario;
        async move {
            let images = scenario.release(artifact, version, None).await;
            scenario.promote_and_wait(promotion, artifact, "dev").await;
            let what = format!("{version} is pinned");
            wait_app_image(
                scenario,
                "report",
                &pinned(&images["backend"]),
                Workload::CronJob,
                &what,
            )
            .await;
            images
        }
    };
    // Its next Job's pods could never pull the sidecar: not the rollout's business.
    pinned_release("v1", "shop-1-0-0", "1.0.0").await;
    assert_eq!(running(&scenario).await, ("1.0.0".to_string(), Health::Healthy));
    let v2 = pinned_release("v2", "shop-1-1-0", "1.1.0").await;
    assert_eq!(
        history_of(scenario.environment("dev").await)[..2],
        [
            ("v2".to_string(), Phase::Succeeded),
            ("v1".to_string(), Phase::Succeeded)
        ]
    );

    // A CronJob's rollout cannot fail, its verification can: 1.2.0 ships a
    // new configuration, its smoke test fails, and 1.1.0's images and
    // configuration come back.
    let cron_jobs: Api<CronJob> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let template_hash = |cron_job: &CronJob| {
        cron_job
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get("hoist.dev/config-hash").cloned())
    };
    let v2_hash = template_hash(&cron_jobs.get("report").await.expect("CronJob")).expect("config hash");
    // 1.2.0 resolved, then, while the operator is down so that 1.2.0 is what
    // ships them: a configuration change and a smoke test that fails.
    scenario.release("shop-1-2-0", "1.2.0", None).await;
    artifact_ready(&scenario, "shop-1-2-0").await;
    scenario.stop().await;
    scenario
        .update_environment("dev", |spec| {
            spec.config[0].data.insert("FEATURE_X".into(), "on".into());
            spec.gates.verification = vec![hoist::api::VerificationStep {
                name: "smoke".into(),
                job: Some(hoist::api::JobCheck {
                    image: "busybox:1.36".into(),
                    command: vec!["sh".into(), "-c".into(), "exit 1".into()],
                    args: Vec::new(),
                    env: Vec::new(),
                    service_account_name: None,
                    timeout: "2m".into(),
                    retries: 0,
                }),
                prometheus: None,
            }];
        })
        .await;
    scenario.promote("v3", "shop-1-2-0", "dev").await;
    scenario.start().await;
    let rolled_back = scenario
        .cluster
        .wait_for::<hoist::api::Promotion>("v3", TIMEOUT + std::time::Duration::from_secs(30), |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::RolledBack)
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let message = rolled_back.status.and_then(|s| s.message).unwrap_or_default();
    assert!(message.ends_with("rolled back to shop-1-1-0 1.1.0"), "{message}");
    wait_app_image(
        &scenario,
        "report",
        &pinned(&v2["backend"]),
        Workload::CronJob,
        "1.1.0 is pinned again",
    )
    .await;
    assert_eq!(
        template_hash(&cron_jobs.get("report").await.expect("CronJob")),
        Some(v2_hash),
        "and 1.1.0's configuration"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_rollout_paused_at_a_canary_step_keeps_its_promotion_verifying_until_promoted_and_its_abort_fails_it()
 {
    let mut scenario = Scenario::new().await;
    let Some(rollouts) = argo_rollouts(&scenario.cluster).await.expect("Argo Rollouts") else {
        skip_without_argo_rollouts();
        return;
    };
    let rollout = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "api"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
            "template": template("api", json!([app("api")])),
        }
    });
    rollouts
        .create(
            &PostParams::default(),
            &serde_json::from_value(rollout).expect("Rollout"),
        )
        .await
        .expect("create Rollout");
    target(&scenario, WorkloadKind::Rollout, "api", None, "3s").await;
    // What the chart grants with argoRollouts.enabled, which also sets this.
    scenario
        .cluster
        .grant_operator_argo_rollouts()
        .await
        .expect("grant Rollouts");
    let settings = Settings {
        argo_rollouts: true,
        ..scenario.settings()
    };
    scenario.start_with(settings).await;
    let namespace = scenario.namespace().to_string();
    let api_v1 = paused_at_canary(&scenario, "v1", "shop-1-0-0", "1.0.0").await;
    // Paused longer than spec.rollout.timeout: a Rollout has a deadline of its own.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Still rolling out, not failed (its progress shows in the message at
    // most every 30 seconds).
    scenario.wait_phase("v1", Phase::Verifying).await;
    promote_rollout(&scenario.client(), &namespace, "api")
        .await
        .expect("promote");
    scenario.wait_phase("v1", Phase::Succeeded).await;
    assert_eq!(running(&scenario).await, ("1.0.0".to_string(), Health::Healthy));

    paused_at_canary(&scenario, "v2", "shop-1-1-0", "1.1.0").await;
    scenario.wait_phase("v2", Phase::Verifying).await;
    abort_rollout(&scenario.client(), &namespace, "api")
        .await
        .expect("abort");
    let failed = scenario.wait_phase("v2", Phase::RolledBack).await;
    let message = failed
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(message.contains("aborted"), "{message}");
    scenario
        .cluster
        .wait_for_in::<ArgoRollout>(&namespace, "api", TIMEOUT, |rollout| {
            app_image(&Workload::Rollout(rollout.clone())).as_deref() == Some(api_v1.as_str())
        })
        .await
        .expect("1.0.0 pinned again");
    scenario.stop().await;
}
