//! The emulated Argo Rollouts controller, installed with
//! `StandIn::install_argo_rollouts`: a canary paused at a step, promoted by
//! clearing `status.pauseConditions` and aborted with `status.abort: true`
//! (the merge patches of `kubectl argo rollouts promote` and `abort`), an
//! unpullable image degraded at the progress deadline, and blue-green.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::{Value, json};

use crate::common::send;

/// How long the emulation may take to reach a phase.
const WAIT: Duration = Duration::from_secs(10);

fn rollouts(server: &StandIn) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    );
    Api::namespaced_with(server.client(), "default", &resource)
}

fn rollout(image: &str, strategy: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 4,
            "progressDeadlineSeconds": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
            "strategy": strategy,
        },
    }))
    .expect("a Rollout")
}

fn canary() -> Value {
    json!({"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}})
}

fn image_patch(image: &str) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}))
}

/// The status once its phase is `phase` (failing after [`WAIT`]).
async fn phase(rollouts: &Api<DynamicObject>, phase: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = rollouts.get("web").await?.data["status"].clone();
        if status["phase"] == phase {
            return Ok(status);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the Rollout never became {phase}; its status is {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(replicas, updatedReplicas, readyReplicas, availableReplicas)`.
fn counts(status: &Value) -> [i64; 4] {
    [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ]
    .map(|field| status[field].as_i64().unwrap_or(0))
}

/// `(type, status, reason, message)` of each condition, by type (their
/// order follows the order of changes, as Argo's does).
fn conditions(status: &Value) -> Vec<[String; 4]> {
    let mut conditions: Vec<[String; 4]> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|condition| {
            ["type", "status", "reason", "message"]
                .map(|field| condition[field].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    conditions.sort();
    conditions
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> [String; 4] {
    [kind, status, reason, message].map(str::to_owned)
}

async fn started(strategy: Value) -> anyhow::Result<(StandIn, Api<DynamicObject>)> {
    let server = StandIn::start().await?;
    server.install_argo_rollouts()?;
    let rollouts = rollouts(&server);
    rollouts
        .create(&PostParams::default(), &rollout("nginx:1", strategy))
        .await?;
    Ok((server, rollouts))
}

#[tokio::test]
async fn rollouts_are_served_only_once_installed() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let before = send(&server.client(), "GET", "/apis/argoproj.io/v1alpha1", &[], None).await;
    assert_eq!(before.code, 404);
    server.install_argo_rollouts()?;
    server.install_argo_rollouts()?;
    let after = send(&server.client(), "GET", "/apis/argoproj.io/v1alpha1", &[], None).await;
    let names: Vec<&str> = after.body["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|resource| resource["name"].as_str())
        .collect();
    assert_eq!(names, ["rollouts", "rollouts/status"]);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_canary_pauses_at_its_step_until_promoted_then_is_healthy() -> anyhow::Result<()> {
    let (server, rollouts) = started(canary()).await?;
    let first = phase(&rollouts, "Healthy").await?;
    assert_eq!(counts(&first), [4, 4, 4, 4]);
    assert_eq!(
        (
            &first["currentStepIndex"],
            &first["observedGeneration"],
            &first["selector"]
        ),
        (&json!(2), &json!("1"), &json!("app=web")),
        "a first template skips the steps"
    );
    assert_eq!(first["stableRS"], first["currentPodHash"]);

    rollouts
        .patch("web", &PatchParams::default(), &image_patch("nginx:2"))
        .await?;
    let paused = phase(&rollouts, "Paused").await?;
    assert_eq!(
        (
            &paused["message"],
            &paused["currentStepIndex"],
            &paused["controllerPause"],
            &paused["observedGeneration"]
        ),
        (&json!("CanaryPauseStep"), &json!(1), &json!(true), &json!("2"))
    );
    assert_eq!(paused["pauseConditions"][0]["reason"], "CanaryPauseStep");
    assert!(paused["pauseConditions"][0]["startTime"].is_string());
    assert_eq!(counts(&paused), [4, 1, 4, 4], "one canary Pod of four at 25%");
    assert_ne!(paused["stableRS"], paused["currentPodHash"]);
    assert_eq!(paused["stableRS"], first["stableRS"]);
    let canary_set = format!("web-{}", paused["currentPodHash"].as_str().unwrap_or_default());
    assert_eq!(
        conditions(&paused),
        [
            condition(
                "Available",
                "True",
                "AvailableReason",
                "Rollout has minimum availability"
            ),
            condition("Healthy", "False", "RolloutHealthy", "Rollout is not healthy"),
            condition("Paused", "True", "RolloutPaused", "Rollout is paused"),
            condition("Progressing", "Unknown", "RolloutPaused", "Rollout is paused"),
        ]
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollouts.get("web").await?.data["status"]["phase"],
        "Paused",
        "a pause does not run into the progress deadline"
    );
    rollouts
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"pauseConditions": null}})),
        )
        .await?;
    let healthy = phase(&rollouts, "Healthy").await?;
    assert_eq!(counts(&healthy), [4, 4, 4, 4]);
    assert_eq!(healthy["stableRS"], paused["currentPodHash"]);
    assert_eq!(healthy.get("controllerPause"), None);
    assert_eq!(healthy.get("pauseConditions"), None);
    assert_eq!(
        conditions(&healthy),
        [
            condition(
                "Available",
                "True",
                "AvailableReason",
                "Rollout has minimum availability"
            ),
            condition("Healthy", "True", "RolloutHealthy", "Rollout is healthy"),
            condition("Paused", "False", "RolloutResumed", "Rollout is resumed"),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{canary_set}\" has successfully progressed.")
            ),
        ]
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_aborted_canary_is_degraded_and_back_on_the_stable_pods() -> anyhow::Result<()> {
    let (server, rollouts) = started(canary()).await?;
    let stable = phase(&rollouts, "Healthy").await?;
    rollouts
        .patch("web", &PatchParams::default(), &image_patch("nginx:2"))
        .await?;
    phase(&rollouts, "Paused").await?;
    rollouts
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"abort": true}})),
        )
        .await?;
    phase(&rollouts, "Degraded").await?;
    // The stable ReplicaSet is scaled back up: its new Pod starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let aborted = rollouts.get("web").await?.data["status"].clone();
    assert_eq!(
        (&aborted["message"], &aborted["abort"], &aborted["stableRS"]),
        (
            &json!("RolloutAborted: Rollout aborted update to revision 2"),
            &json!(true),
            &stable["stableRS"]
        )
    );
    assert!(aborted["abortedAt"].is_string());
    assert_eq!(aborted.get("pauseConditions"), None);
    assert_eq!(counts(&aborted), [4, 0, 4, 4], "the canary Pod is gone");

    rollouts
        .patch("web", &PatchParams::default(), &image_patch("nginx:1"))
        .await?;
    let back = phase(&rollouts, "Healthy").await?;
    assert_eq!(
        (back.get("abort"), &back["currentPodHash"]),
        (None, &stable["currentPodHash"]),
        "the stable template again completes at once"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unpullable_canary_is_degraded_at_the_progress_deadline() -> anyhow::Result<()> {
    let (server, rollouts) = started(canary()).await?;
    phase(&rollouts, "Healthy").await?;
    let changed = std::time::Instant::now();
    rollouts
        .patch(
            "web",
            &PatchParams::default(),
            &image_patch("example.invalid/web:2"),
        )
        .await?;
    let progressing = phase(&rollouts, "Progressing").await?;
    assert_eq!(
        (&progressing["message"], counts(&progressing)),
        (&json!("more replicas need to be updated"), [4, 1, 3, 3])
    );
    let degraded = phase(&rollouts, "Degraded").await?;
    assert!(
        changed.elapsed() >= Duration::from_secs(2),
        "not before progressDeadlineSeconds"
    );
    let canary_set = format!("web-{}", degraded["currentPodHash"].as_str().unwrap_or_default());
    assert_eq!(
        degraded["message"],
        format!("ProgressDeadlineExceeded: ReplicaSet \"{canary_set}\" has timed out progressing.")
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_blue_green_rollout_promotes_itself_once_the_new_pods_are_ready() -> anyhow::Result<()> {
    let (server, rollouts) = started(json!({"blueGreen": {"activeService": "web"}})).await?;
    let first = phase(&rollouts, "Healthy").await?;
    rollouts
        .patch("web", &PatchParams::default(), &image_patch("nginx:2"))
        .await?;
    let healthy = tokio::time::timeout(WAIT, async {
        loop {
            let status = rollouts.get("web").await?.data["status"].clone();
            if status["phase"] == "Healthy" && status["currentPodHash"] != first["currentPodHash"] {
                return anyhow::Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await??;
    assert_eq!(
        (&healthy["stableRS"], &healthy["blueGreen"]["activeSelector"]),
        (&healthy["currentPodHash"], &healthy["currentPodHash"])
    );
    assert_eq!(counts(&healthy), [4, 4, 4, 4]);
    server.shutdown().await;
    Ok(())
}
