//! StatefulSets, DaemonSets and CronJobs: discovery, the API server's
//! defaults and validation messages, server-side apply, and the emulated
//! StatefulSet and DaemonSet controllers at exact points of a rollout.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{send, status_of};

/// How long the controllers may take to reach a state.
const WAIT: Duration = Duration::from_secs(10);

fn template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn stateful_set(image: &str, replicas: i64, partition: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": template("db", image),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
        },
    })
}

fn daemon_set(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", image)},
    })
}

fn cron_job(schedule: Option<&str>) -> Value {
    let mut cron_job = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "report", "image": "busybox:1.36"}],
        }}}}},
    });
    if let Some(schedule) = schedule {
        cron_job["spec"]["schedule"] = json!(schedule);
    }
    cron_job
}

fn typed<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

/// The object as JSON, once `done` holds for its status (failing after [`WAIT`]).
async fn wait_for<K>(api: &Api<K>, name: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let object = serde_json::to_value(api.get(name).await?)?;
        if done(&object["status"]) {
            return Ok(object);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "{name} never reached the state; its status is {}",
                object["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status without the revisions, whose hashes differ between the stand-in
/// and a cluster; they are compared on their own.
fn counts(status: &Value) -> Value {
    let mut counts = status.clone();
    if let Some(map) = counts.as_object_mut() {
        map.remove("currentRevision");
        map.remove("updateRevision");
    }
    counts
}

#[tokio::test]
async fn workload_kinds_are_discovered_with_their_status_subresources() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let names = |answer: &Value| -> Vec<String> {
        answer["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|resource| resource["name"].as_str().map(str::to_owned))
            .collect()
    };
    let apps = send(&server.client(), "GET", "/apis/apps/v1", &[], None).await;
    assert_eq!(
        names(&apps.body),
        [
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/status",
            "statefulsets",
            "statefulsets/status"
        ]
    );
    let batch = send(&server.client(), "GET", "/apis/batch/v1", &[], None).await;
    assert_eq!(
        names(&batch.body),
        ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_api_servers_defaults_are_filled_in() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let client = server.client();
    let mut bare = stateful_set("nginx:1", 1, 0);
    bare["spec"] = json!({"selector": {"matchLabels": {"app": "db"}}, "template": template("db", "nginx:1")});
    let created = Api::<StatefulSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &typed(bare))
        .await?;
    let spec = serde_json::to_value(created.spec)?;
    assert_eq!(
        (
            &spec["replicas"],
            &spec["podManagementPolicy"],
            &spec["updateStrategy"],
            &spec["revisionHistoryLimit"],
            &spec["persistentVolumeClaimRetentionPolicy"],
        ),
        (
            &json!(1),
            &json!("OrderedReady"),
            &json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            &json!(10),
            &json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        )
    );
    let created = Api::<DaemonSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &typed(daemon_set("nginx:1")))
        .await?;
    let spec = serde_json::to_value(created.spec)?;
    assert_eq!(
        (&spec["updateStrategy"], &spec["revisionHistoryLimit"]),
        (
            &json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            &json!(10)
        )
    );
    let cron_jobs: Api<CronJob> = Api::namespaced(client, "default");
    let created = cron_jobs
        .create(&PostParams::default(), &typed(cron_job(Some("0 3 * * *"))))
        .await?;
    let spec = serde_json::to_value(created.spec)?;
    assert_eq!(
        (
            &spec["concurrencyPolicy"],
            &spec["suspend"],
            &spec["successfulJobsHistoryLimit"],
            &spec["failedJobsHistoryLimit"],
        ),
        (&json!("Allow"), &json!(false), &json!(3), &json!(1))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = cron_jobs.get("nightly").await?;
    assert_eq!(
        serde_json::to_value(later.status)?,
        json!({}),
        "no CronJob controller: the status stays empty"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn invalid_workloads_are_refused_with_the_api_servers_messages() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let client = server.client();
    let stateful_sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let mut unselected = stateful_set("nginx:1", 1, 0);
    if let Some(spec) = unselected["spec"].as_object_mut() {
        spec.remove("selector");
    }
    // A typed client sends the required `selector` as `{}`; JSON may leave it out.
    let refused = send(
        &client,
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        &[],
        Some(&unselected),
    )
    .await;
    assert_eq!(
        (refused.code, &refused.body["message"]),
        (
            422,
            &json!(
                "StatefulSet.apps \"db\" is invalid: [spec.selector: Required value, \
                    spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`]"
            )
        )
    );
    let empty = status_of(
        stateful_sets
            .create(&PostParams::default(), &typed(unselected))
            .await,
    );
    assert_eq!(
        empty.message,
        "StatefulSet.apps \"db\" is invalid: spec.selector: Invalid value: {}: empty selector is invalid for statefulset"
    );
    stateful_sets
        .create(&PostParams::default(), &typed(stateful_set("nginx:1", 1, 0)))
        .await?;
    let renamed = status_of(
        stateful_sets
            .patch(
                "db",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"serviceName": "other", "podManagementPolicy": "Parallel"}})),
            )
            .await,
    );
    assert_eq!(
        renamed.message,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than \
         'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', \
         'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );

    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    daemon_sets
        .create(&PostParams::default(), &typed(daemon_set("nginx:1")))
        .await?;
    let moved = status_of(
        daemon_sets
            .patch(
                "agent",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {
                    "selector": {"matchLabels": {"app": "other"}},
                    "template": {"metadata": {"labels": {"app": "other"}}},
                }})),
            )
            .await,
    );
    assert_eq!(
        moved.message,
        "DaemonSet.apps \"agent\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: \
         field is immutable"
    );

    let cron_jobs: Api<CronJob> = Api::namespaced(client, "default");
    let unscheduled = status_of(
        cron_jobs
            .create(&PostParams::default(), &typed(cron_job(None)))
            .await,
    );
    assert_eq!(
        unscheduled.message,
        "CronJob.batch \"nightly\" is invalid: spec.schedule: Required value"
    );
    let mut restarting = cron_job(Some("0 3 * * *"));
    restarting["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        .as_object_mut()
        .map(|pod| pod.remove("restartPolicy"));
    let always = status_of(cron_jobs.create(&PostParams::default(), &typed(restarting)).await);
    assert_eq!(
        always.message,
        "CronJob.batch \"nightly\" is invalid: spec.jobTemplate.spec.template.spec.restartPolicy: \
         Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_partitioned_stateful_set_updates_from_the_top_and_keeps_the_ordinals_below() -> anyhow::Result<()>
{
    let server = StandIn::start().await?;
    let stateful_sets: Api<StatefulSet> = Api::namespaced(server.client(), "default");
    let params = PatchParams::apply("hoist");
    stateful_sets
        .patch("db", &params, &Patch::Apply(stateful_set("nginx:1", 3, 0)))
        .await?;
    let rolled_out = wait_for(&stateful_sets, "db", |status| status["readyReplicas"] == 3).await?;
    let first = rolled_out["status"]["updateRevision"].clone();
    assert_eq!(
        counts(&rolled_out["status"]),
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
               "updatedReplicas": 3, "collisionCount": 0, "availableReplicas": 3})
    );
    assert_eq!(rolled_out["status"]["currentRevision"], first);
    assert!(
        first.as_str().is_some_and(|revision| revision.starts_with("db-")),
        "{first}"
    );

    stateful_sets
        .patch("db", &params, &Patch::Apply(stateful_set("nginx:2", 3, 1)))
        .await?;
    let top = wait_for(&stateful_sets, "db", |status| status["updatedReplicas"] == 1).await?;
    assert_eq!(
        counts(&top["status"]),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "currentReplicas": 2,
               "updatedReplicas": 1, "collisionCount": 0, "availableReplicas": 2})
    );
    let second = top["status"]["updateRevision"].clone();
    assert_ne!(second, first);
    assert_eq!(top["status"]["currentRevision"], first);

    let held = wait_for(&stateful_sets, "db", |status| {
        status["updatedReplicas"] == 2 && status["readyReplicas"] == 3
    })
    .await?;
    assert_eq!(
        counts(&held["status"]),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "currentReplicas": 1,
               "updatedReplicas": 2, "collisionCount": 0, "availableReplicas": 3})
    );
    assert_eq!(
        (
            &held["status"]["currentRevision"],
            &held["status"]["updateRevision"]
        ),
        (&first, &second),
        "ordinal 0 keeps the current revision below the partition"
    );

    stateful_sets
        .patch("db", &params, &Patch::Apply(stateful_set("nginx:2", 3, 0)))
        .await?;
    let done = wait_for(&stateful_sets, "db", |status| status["currentRevision"] == second).await?;
    assert_eq!(
        counts(&done["status"]),
        json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
               "updatedReplicas": 3, "collisionCount": 0, "availableReplicas": 3})
    );
    let managers: Vec<(String, String)> = done["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            (
                entry["manager"].as_str().unwrap_or_default().to_owned(),
                entry["subresource"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [
            ("hoist".to_owned(), String::new()),
            ("kube-controller-manager".to_owned(), "status".to_owned())
        ]
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_stateful_set_with_an_unpullable_image_stays_stuck() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let stateful_sets: Api<StatefulSet> = Api::namespaced(server.client(), "default");
    stateful_sets
        .create(&PostParams::default(), &typed(stateful_set("nginx:1", 2, 0)))
        .await?;
    wait_for(&stateful_sets, "db", |status| status["readyReplicas"] == 2).await?;
    stateful_sets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": template("db", "example.invalid/db:2")}})),
        )
        .await?;
    wait_for(&stateful_sets, "db", |status| status["updatedReplicas"] == 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = serde_json::to_value(stateful_sets.get("db").await?)?;
    assert_eq!(
        counts(&stuck["status"]),
        json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 1, "currentReplicas": 1,
               "updatedReplicas": 1, "collisionCount": 0, "availableReplicas": 1})
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_daemon_set_rolls_one_node_at_a_time() -> anyhow::Result<()> {
    let server = StandIn::builder().nodes(3).start().await?;
    let daemon_sets: Api<DaemonSet> = Api::namespaced(server.client(), "default");
    daemon_sets
        .create(&PostParams::default(), &typed(daemon_set("nginx:1")))
        .await?;
    let running = wait_for(&daemon_sets, "agent", |status| status["numberReady"] == 3).await?;
    assert_eq!(
        running["status"],
        json!({"currentNumberScheduled": 3, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
               "numberReady": 3, "observedGeneration": 1, "updatedNumberScheduled": 3,
               "numberAvailable": 3})
    );
    daemon_sets
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": template("agent", "nginx:2")}})),
        )
        .await?;
    for updated in 1..=2 {
        let step = wait_for(&daemon_sets, "agent", |status| {
            status["updatedNumberScheduled"] == updated
        })
        .await?;
        assert_eq!(
            step["status"],
            json!({"currentNumberScheduled": 3, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
                   "numberReady": 2, "observedGeneration": 2, "updatedNumberScheduled": updated,
                   "numberAvailable": 2, "numberUnavailable": 1}),
            "one node at a time"
        );
    }
    let done = wait_for(&daemon_sets, "agent", |status| {
        status["updatedNumberScheduled"] == 3 && status["numberReady"] == 3
    })
    .await?;
    assert_eq!(done["status"]["numberAvailable"], 3);
    assert_eq!(done["status"].get("numberUnavailable"), None);
    server.shutdown().await;
    Ok(())
}
