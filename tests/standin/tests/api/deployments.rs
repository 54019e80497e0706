//! The emulated Deployment controller of a cluster with nodes: rollouts to
//! zero replicas complete at once, rollouts whose images can be pulled
//! complete once their Pods are ready, and rollouts with an image that cannot
//! be pulled (a registry host under `.invalid`) progress until their deadline
//! and fail.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_standin::{RequestMatch, StandIn, Verb};
use serde_json::json;

use crate::common::{deployment, resource_version};

/// How long a watch may wait for the controller.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// The characters `rand.SafeEncodeString` makes of a decimal hash.
const HASH_CHARACTERS: &str = "456789bcdf";

/// Images a node can pull, and ones it never can (RFC 2606 `.invalid`).
const PULLABLE: [&str; 2] = ["nginx:1", "nginx:2"];
const UNPULLABLE: [&str; 2] = ["example.invalid/web:1", "example.invalid/web:2"];

/// How long the emulation's Pods take to become ready.
const POD_START: Duration = Duration::from_secs(1);

fn web(replicas: Option<i32>, progress_deadline_seconds: Option<i32>) -> Deployment {
    web_of(UNPULLABLE[0], replicas, progress_deadline_seconds)
}

fn web_of(image: &str, replicas: Option<i32>, progress_deadline_seconds: Option<i32>) -> Deployment {
    let mut web = deployment("web", image);
    if let Some(spec) = web.spec.as_mut() {
        spec.replicas = replicas;
        spec.progress_deadline_seconds = progress_deadline_seconds;
    }
    web
}

fn image_patch(image: &str) -> serde_json::Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
}

/// Sets the image of web's container `app` with a merge patch.
async fn patch_image(deployments: &Api<Deployment>, image: &str) -> kube::Result<Deployment> {
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&image_patch(image)))
        .await
}

type Condition = (String, String, String, String);

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Condition {
    (
        kind.to_owned(),
        status.to_owned(),
        reason.to_owned(),
        message.to_owned(),
    )
}

/// `(type, status, reason, message)` of each condition, in order.
fn conditions(deployment: &Deployment) -> Vec<Condition> {
    status(deployment)
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|condition| {
            (
                condition.type_,
                condition.status,
                condition.reason.unwrap_or_default(),
                condition.message.unwrap_or_default(),
            )
        })
        .collect()
}

fn status(deployment: &Deployment) -> DeploymentStatus {
    deployment.status.clone().unwrap_or_default()
}

/// `(observedGeneration, replicas, updatedReplicas, readyReplicas,
/// availableReplicas, unavailableReplicas)`.
type Counts = (
    Option<i64>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
);

fn counts(deployment: &Deployment) -> Counts {
    let status = status(deployment);
    (
        status.observed_generation,
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
        status.unavailable_replicas,
    )
}

/// The ReplicaSet a Progressing message names, checked to look like
/// `web-<pod-template-hash>`.
fn replica_set(deployment: &Deployment) -> String {
    let message = conditions(deployment)
        .into_iter()
        .find(|(kind, ..)| kind == "Progressing")
        .map(|(.., message)| message)
        .unwrap_or_default();
    let name = message.split('"').nth(1).unwrap_or_default().to_owned();
    let hash = name.strip_prefix("web-").unwrap_or_default();
    assert!(
        (1..=10).contains(&hash.len()) && hash.chars().all(|c| HASH_CHARACTERS.contains(c)),
        "{name:?} is not web-<hash>"
    );
    name
}

/// `(lastUpdateTime, lastTransitionTime)` of a condition, as RFC 3339 text.
fn times(deployment: &Deployment, kind: &str) -> (String, String) {
    let condition = status(deployment)
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|condition| condition.type_ == kind);
    let text = |time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        time.map(|time| time.0.to_string()).unwrap_or_default()
    };
    match condition {
        Some(condition) => (
            text(condition.last_update_time),
            text(condition.last_transition_time),
        ),
        None => (String::new(), String::new()),
    }
}

fn progressing_reason(deployment: &Deployment) -> String {
    conditions(deployment)
        .into_iter()
        .find(|(kind, ..)| kind == "Progressing")
        .map(|(_, _, reason, _)| reason)
        .unwrap_or_default()
}

/// The next non-bookmark event as `(type, object)`.
async fn next_event<S>(stream: &mut S) -> anyhow::Result<(&'static str, Deployment)>
where
    S: Stream<Item = kube::Result<WatchEvent<Deployment>>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(EVENT_WAIT, stream.next()).await?;
        match next {
            Some(Ok(WatchEvent::Added(object))) => return Ok(("ADDED", object)),
            Some(Ok(WatchEvent::Modified(object))) => return Ok(("MODIFIED", object)),
            Some(Ok(WatchEvent::Deleted(object))) => return Ok(("DELETED", object)),
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => anyhow::bail!("the watch ended: {other:?}"),
        }
    }
}

fn deployments(server: &StandIn) -> Api<Deployment> {
    Api::namespaced(server.client(), "default")
}

#[tokio::test]
async fn rollouts_to_zero_replicas_complete_after_create_and_after_an_image_patch() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    let created = deployments
        .create(&PostParams::default(), &web(Some(0), None))
        .await?;
    assert_eq!(
        created.status,
        Some(DeploymentStatus::default()),
        "the create is answered before the controller writes"
    );
    let mut events = deployments
        .watch(&WatchParams::default(), &resource_version(&created).to_string())
        .await?
        .boxed();

    let synced = deployments.get("web").await?;
    assert_eq!(resource_version(&synced), resource_version(&created) + 1);
    assert_eq!(synced.metadata.generation, Some(1));
    assert_eq!(counts(&synced), (Some(1), None, None, None, None, None));
    let first = replica_set(&synced);
    assert_eq!(
        conditions(&synced),
        vec![
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability."
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{first}\" has successfully progressed.")
            ),
        ]
    );
    let (updated, transitioned) = times(&synced, "Progressing");
    assert_eq!(updated, transitioned);
    assert_eq!(next_event(&mut events).await?, ("MODIFIED", synced.clone()));

    let patched = patch_image(&deployments, UNPULLABLE[1]).await?;
    assert_eq!(
        (patched.metadata.generation, status(&patched).observed_generation),
        (Some(2), Some(1))
    );
    assert_eq!(next_event(&mut events).await?, ("MODIFIED", patched.clone()));
    let (kind, rolled) = next_event(&mut events).await?;
    assert_eq!(kind, "MODIFIED");
    assert_eq!(rolled, deployments.get("web").await?);
    assert_eq!(counts(&rolled), (Some(2), None, None, None, None, None));
    let second = replica_set(&rolled);
    assert_ne!(second, first, "a new template is a new ReplicaSet");
    assert_eq!(
        conditions(&rolled)[1],
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{second}\" has successfully progressed.")
        )
    );
    assert_eq!(
        times(&rolled, "Progressing").1,
        transitioned,
        "Progressing stayed True: its transition time is kept"
    );
    assert_eq!(times(&rolled, "Available"), times(&synced, "Available"));

    let controller_entries: Vec<(Option<String>, Option<String>)> = rolled
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.manager.as_deref() == Some("kube-controller-manager"))
        .map(|entry| (entry.operation, entry.subresource))
        .collect();
    assert_eq!(
        controller_entries,
        vec![(Some("Update".to_owned()), Some("status".to_owned()))]
    );
    let log = server.requests();
    let writes: Vec<Option<Verb>> = log.writes().iter().map(|record| record.verb).collect();
    assert_eq!(
        writes,
        vec![Some(Verb::Create), Some(Verb::Patch)],
        "the controller's writes are not requests"
    );
    assert_eq!(
        log.matching(&RequestMatch::any().subresource(Some("status")))
            .len(),
        0
    );
    Ok(())
}

#[tokio::test]
async fn rollouts_with_pullable_images_complete_once_their_pods_are_ready() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    let started = Instant::now();
    let created = deployments
        .create(&PostParams::default(), &web_of(PULLABLE[0], Some(2), Some(30)))
        .await?;
    let mut events = deployments
        .watch(&WatchParams::default(), &resource_version(&created).to_string())
        .await?
        .boxed();

    let (_, progressing) = next_event(&mut events).await?;
    let first = replica_set(&progressing);
    assert_eq!(
        counts(&progressing),
        (Some(1), Some(2), Some(2), None, None, Some(2))
    );
    assert_eq!(progressing_reason(&progressing), "ReplicaSetUpdated");
    let available = condition(
        "Available",
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
    );

    let (kind, complete) = next_event(&mut events).await?;
    let elapsed = started.elapsed();
    assert!(
        (POD_START..POD_START + Duration::from_millis(1500)).contains(&elapsed),
        "ready after {elapsed:?}"
    );
    assert_eq!(kind, "MODIFIED");
    assert_eq!(
        counts(&complete),
        (Some(1), Some(2), Some(2), Some(2), Some(2), None)
    );
    assert_eq!(
        conditions(&complete),
        vec![
            available.clone(),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{first}\" has successfully progressed.")
            ),
        ]
    );
    assert_eq!(
        times(&complete, "Progressing").1,
        times(&progressing, "Progressing").1,
        "Progressing stayed True: its transition time is kept"
    );

    // A new template: its Pods take over at once (the old ones are gone)
    // and become ready in turn.
    patch_image(&deployments, PULLABLE[1]).await?;
    let (_, own_write) = next_event(&mut events).await?;
    assert_eq!(status(&own_write), status(&complete));
    let (_, rolling) = next_event(&mut events).await?;
    let second = replica_set(&rolling);
    assert_ne!(second, first);
    assert_eq!(counts(&rolling), (Some(2), Some(2), Some(2), None, None, Some(2)));
    assert_eq!(progressing_reason(&rolling), "ReplicaSetUpdated");
    let (_, rolled) = next_event(&mut events).await?;
    assert_eq!(
        counts(&rolled),
        (Some(2), Some(2), Some(2), Some(2), Some(2), None)
    );
    assert_eq!(
        conditions(&rolled)[1],
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{second}\" has successfully progressed.")
        )
    );

    // Scaled up, the new Pod starts while the others stay ready; the rollout
    // stays complete, as on a real cluster.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 3}})),
        )
        .await?;
    let (_, _own_write) = next_event(&mut events).await?;
    let (_, scaling) = next_event(&mut events).await?;
    assert_eq!(
        counts(&scaling),
        (Some(3), Some(3), Some(3), Some(2), Some(2), Some(1))
    );
    assert_eq!(progressing_reason(&scaling), "NewReplicaSetAvailable");
    assert_eq!(conditions(&scaling)[1].2, "MinimumReplicasUnavailable");
    let (_, scaled) = next_event(&mut events).await?;
    assert_eq!(
        counts(&scaled),
        (Some(3), Some(3), Some(3), Some(3), Some(3), None)
    );
    assert_eq!(conditions(&scaled)[1], available);
    Ok(())
}

#[tokio::test]
async fn rollouts_with_an_unpullable_image_progress_until_the_deadline_then_fail() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    let started = Instant::now();
    let created = deployments
        .create(&PostParams::default(), &web(Some(2), Some(1)))
        .await?;
    let mut events = deployments
        .watch(&WatchParams::default(), &resource_version(&created).to_string())
        .await?
        .boxed();

    let (_, progressing) = next_event(&mut events).await?;
    let first = replica_set(&progressing);
    assert_eq!(
        counts(&progressing),
        (Some(1), Some(2), Some(2), None, None, Some(2))
    );
    let unavailable = condition(
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    );
    assert_eq!(
        conditions(&progressing),
        vec![
            unavailable.clone(),
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{first}\" is progressing.")
            ),
        ]
    );

    let (kind, failed) = next_event(&mut events).await?;
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(2500)).contains(&elapsed),
        "timed out after {elapsed:?}"
    );
    assert_eq!(kind, "MODIFIED");
    assert_eq!(failed.metadata.generation, Some(1));
    assert_eq!(counts(&failed), (Some(1), Some(2), Some(2), None, None, Some(2)));
    assert_eq!(
        conditions(&failed),
        vec![
            unavailable.clone(),
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{first}\" has timed out progressing.")
            ),
        ]
    );
    assert_eq!(times(&failed, "Available"), times(&progressing, "Available"));

    // A new template resumes the rollout, which times out again.
    let patched_at = Instant::now();
    patch_image(&deployments, UNPULLABLE[1]).await?;
    let (_, own_write) = next_event(&mut events).await?;
    assert_eq!(progressing_reason(&own_write), "ProgressDeadlineExceeded");
    let (_, resumed) = next_event(&mut events).await?;
    let second = replica_set(&resumed);
    assert_ne!(second, first);
    assert_eq!(counts(&resumed), (Some(2), Some(2), Some(2), None, None, Some(2)));
    assert_eq!(
        conditions(&resumed)[1],
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{second}\" is progressing.")
        )
    );
    let (_, failed_again) = next_event(&mut events).await?;
    assert!(patched_at.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        conditions(&failed_again)[1],
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{second}\" has timed out progressing.")
        )
    );
    Ok(())
}

#[tokio::test]
async fn a_new_template_restarts_the_progress_deadline() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    let created = deployments
        .create(&PostParams::default(), &web(Some(1), Some(2)))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Before the request: the controller's sync, and so the new deadline, follow it.
    let patched_at = Instant::now();
    let patched = patch_image(&deployments, UNPULLABLE[1]).await?;
    let mut events = deployments
        .watch(&WatchParams::default(), &resource_version(&patched).to_string())
        .await?
        .boxed();

    // Past the first template's deadline, before the second one's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = deployments.get("web").await?;
    assert_eq!(progressing_reason(&still), "ReplicaSetUpdated");
    assert_eq!(status(&still).observed_generation, Some(2));
    assert!(resource_version(&still) > resource_version(&created));

    let (_, resynced) = next_event(&mut events).await?;
    assert_eq!(resynced, still, "the controller's sync of the new template");
    let (_, failed) = next_event(&mut events).await?;
    let elapsed = patched_at.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_millis(3500)).contains(&elapsed),
        "timed out {elapsed:?} after the new template"
    );
    assert_eq!(progressing_reason(&failed), "ProgressDeadlineExceeded");
    Ok(())
}

#[tokio::test]
async fn client_status_writes_stand_until_the_next_spec_change() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    deployments
        .create(&PostParams::default(), &web(Some(0), None))
        .await?;
    let by_hand = json!({"status": {"replicas": 5}});
    let written = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&by_hand))
        .await?;
    assert_eq!(written, deployments.get("web").await?);
    assert_eq!(counts(&written), (Some(1), Some(5), None, None, None, None));

    patch_image(&deployments, UNPULLABLE[1]).await?;
    let recomputed = deployments.get("web").await?;
    assert_eq!(counts(&recomputed), (Some(2), None, None, None, None, None));
    assert_eq!(progressing_reason(&recomputed), "NewReplicaSetAvailable");
    Ok(())
}

#[tokio::test]
async fn replicas_and_progress_deadline_are_defaulted_on_every_write() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments = deployments(&server);
    let created = deployments
        .create(&PostParams::default(), &web(None, None))
        .await?;
    let spec = created.spec.clone().unwrap_or_default();
    assert_eq!(
        (spec.replicas, spec.progress_deadline_seconds),
        (Some(1), Some(600))
    );
    let version = server.resource_version();
    let dropped = json!({"spec": {"replicas": null, "progressDeadlineSeconds": null}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&dropped))
        .await?;
    let spec = patched.spec.clone().unwrap_or_default();
    assert_eq!(
        (spec.replicas, spec.progress_deadline_seconds),
        (Some(1), Some(600))
    );
    assert_eq!(server.resource_version(), version, "defaulted back: a no-op");
    assert_eq!(counts(&patched), (Some(1), Some(1), Some(1), None, None, Some(1)));
    Ok(())
}

#[tokio::test]
async fn without_the_controller_deployment_status_stays_as_written() -> anyhow::Result<()> {
    let server = StandIn::builder().deployment_controller(false).start().await?;
    let deployments = deployments(&server);
    let created = deployments
        .create(&PostParams::default(), &web(Some(2), Some(1)))
        .await?;
    assert_eq!(deployments.get("web").await?, created);
    assert_eq!(created.status, Some(DeploymentStatus::default()));

    let by_hand = json!({"status": {"observedGeneration": 1, "replicas": 2}});
    let written = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&by_hand))
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = deployments.get("web").await?;
    assert_eq!(later, written);
    assert_eq!(counts(&later), (Some(1), Some(2), None, None, None, None));
    assert_eq!(server.resource_version(), resource_version(&written));
    Ok(())
}

#[tokio::test]
async fn a_delayed_controller_observes_changes_after_its_delay_and_covers_those_made_meanwhile()
-> anyhow::Result<()> {
    let delay = Duration::from_millis(300);
    let server = StandIn::builder()
        .deployment_controller_delay(delay)
        .start()
        .await?;
    let deployments = deployments(&server);
    let started = Instant::now();
    let created = deployments
        .create(&PostParams::default(), &web(Some(0), None))
        .await?;
    let mut events = deployments
        .watch(&WatchParams::default(), &resource_version(&created).to_string())
        .await?
        .boxed();
    let patched = patch_image(&deployments, UNPULLABLE[1]).await?;
    assert_eq!(
        (patched.metadata.generation, status(&patched).observed_generation),
        (Some(2), None),
        "nothing is observed before the delay"
    );
    assert_eq!(next_event(&mut events).await?, ("MODIFIED", patched.clone()));

    let (kind, synced) = next_event(&mut events).await?;
    assert!(
        started.elapsed() >= delay,
        "observed after {:?}",
        started.elapsed()
    );
    assert_eq!(kind, "MODIFIED");
    assert_eq!(resource_version(&synced), resource_version(&patched) + 1);
    assert_eq!(
        counts(&synced),
        (Some(2), None, None, None, None, None),
        "one sync covers the create and the patch made during the delay"
    );
    assert_eq!(progressing_reason(&synced), "NewReplicaSetAvailable");
    assert!(
        tokio::time::timeout(delay * 2, next_event(&mut events))
            .await
            .is_err(),
        "no second sync"
    );
    Ok(())
}
