//! The testkit's Argo Rollouts helpers steer a Rollout as `kubectl argo
//! rollouts` does: on the stand-in's emulation, and unchanged on a real
//! cluster with Argo Rollouts (skipped where it is not installed).

use std::time::Duration;

use hoist_testkit::cluster::TestCluster;
use hoist_testkit::rollouts::{abort_rollout, argo_rollouts, promote_rollout, skip_without_argo_rollouts};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// How long a Rollout may take to reach a phase (Pods pull images on a cluster).
const WAIT: Duration = Duration::from_secs(120);

fn web(image: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        },
    }))
    .expect("a Rollout")
}

async fn set_image(rollouts: &Api<DynamicObject>, image: &str) -> anyhow::Result<()> {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    rollouts
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// The status once the Rollout's phase is `phase` for its current generation.
async fn phase(rollouts: &Api<DynamicObject>, phase: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rollout = rollouts.get("web").await?;
        let status = rollout.data["status"].clone();
        let generation = rollout.metadata.generation.unwrap_or(0).to_string();
        if status["phase"] == phase && status["observedGeneration"] == generation.as_str() {
            return Ok(status);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the Rollout never became {phase}; its status is {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn promote_and_abort_steer_a_canary_as_the_cli_does() -> anyhow::Result<()> {
    let cluster = TestCluster::new().await?;
    let Some(rollouts) = argo_rollouts(&cluster).await? else {
        skip_without_argo_rollouts();
        return Ok(());
    };
    let (client, namespace) = (cluster.client(), cluster.namespace().to_owned());
    rollouts
        .create(&PostParams::default(), &web("nginx:1.27"))
        .await?;
    let stable = phase(&rollouts, "Healthy").await?;

    set_image(&rollouts, "nginx:1.28").await?;
    let paused = phase(&rollouts, "Paused").await?;
    assert_eq!(
        (&paused["message"], &paused["currentStepIndex"]),
        (&json!("CanaryPauseStep"), &json!(1))
    );
    promote_rollout(&client, &namespace, "web").await?;
    let promoted = phase(&rollouts, "Healthy").await?;
    assert_eq!(promoted["stableRS"], paused["currentPodHash"]);
    assert_ne!(promoted["stableRS"], stable["stableRS"]);

    set_image(&rollouts, "nginx:1.29").await?;
    phase(&rollouts, "Paused").await?;
    abort_rollout(&client, &namespace, "web").await?;
    let aborted = phase(&rollouts, "Degraded").await?;
    assert_eq!(
        (&aborted["message"], &aborted["abort"], &aborted["stableRS"]),
        (
            &json!("RolloutAborted: Rollout aborted update to revision 3"),
            &json!(true),
            &promoted["stableRS"]
        )
    );
    Ok(())
}
