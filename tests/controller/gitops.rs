//! GitOps coexistence: another field manager applying a target Deployment
//! with force, as Flux's kustomize-controller and Argo CD do. Hoist pins it
//! again and tells each overwrite in one `PinOverwritten` Event; the recipes
//! of deploy/gitops keep the tools apart.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{REVISION, Scenario, TIMEOUT, deployment, pinned, wait_pinned};

/// Flux's field manager.
const FLUX: &str = "kustomize-controller";
/// Argo CD's field manager.
const ARGO_CD: &str = "argocd-controller";

impl Scenario {
    /// Applies `body` to Deployment `name` of `stage` as `manager`, with
    /// force, as a GitOps tool syncs it.
    async fn apply_as(&self, manager: &str, stage: &str, name: &str, body: &Value) {
        Api::<Deployment>::namespaced(self.client(), &self.stages[stage])
            .patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(body))
            .await
            .unwrap_or_else(|error| panic!("{manager} applies {name}: {error}"));
    }
}

/// The `PinOverwritten` Events of `namespace`, oldest first.
async fn pin_overwritten(scenario: &Scenario, namespace: &str) -> Vec<Event> {
    let mut events: Vec<Event> = Api::<Event>::namespaced(scenario.client(), namespace)
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("PinOverwritten"))
        .collect();
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    events
}

/// Waits until `namespace` holds `count` `PinOverwritten` Events, the last
/// of which occurred `occurrences` times; returns them.
async fn wait_told(scenario: &Scenario, namespace: &str, count: usize, occurrences: i32) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let events = pin_overwritten(scenario, namespace).await;
        let last = events.last().map(|e| e.series.as_ref().map_or(1, |s| s.count));
        if events.len() == count && last == Some(occurrences) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{namespace}: expected {count} PinOverwritten Events, the last {occurrences} times; have {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (regarding kind, name, type, note) of an Event.
fn told(event: &Event) -> (String, String, String, String) {
    let regarding = event.regarding.clone().unwrap_or_default();
    (
        regarding.kind.unwrap_or_default(),
        regarding.name.unwrap_or_default(),
        event.type_.clone().unwrap_or_default(),
        event.note.clone().unwrap_or_default(),
    )
}

/// The Deployment `backend` of `namespace` as its Git manifest has it, with
/// `image` for container `app`.
fn from_git(namespace: &str, image: &str) -> Value {
    let mut body = deployment("backend", "app", 0);
    body["metadata"]["namespace"] = json!(namespace);
    body["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    body
}

#[tokio::test]
async fn a_forced_apply_by_another_manager_is_pinned_again_and_told_once_per_change() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    let dev = scenario.stages["dev"].clone();
    let tenant = scenario.namespace().to_string();
    let backend = pinned(&images["backend"]);
    assert_eq!(
        pin_overwritten(&scenario, &tenant).await,
        vec![],
        "the first pin is no fight"
    );

    // Flux applies the Deployment from Git, whose image is not Hoist's.
    let git_image = "example.invalid/backend:1.0.0";
    scenario
        .apply_as(FLUX, "dev", "backend", &from_git(&dev, git_image))
        .await;
    wait_pinned(&scenario.cluster, &dev, "backend", &backend, "pinned again").await;
    let note = format!(
        "{dev}/backend: {FLUX} set .spec.template.spec.containers[name=\"app\"].image to \"{git_image}\" \
         (pinned again to \"{backend}\"); configure that tool to leave Hoist's fields alone (README: GitOps coexistence)"
    );
    let on_environment = wait_told(&scenario, &tenant, 1, 1).await;
    assert_eq!(
        told(&on_environment[0]),
        ("Environment".into(), "dev".into(), "Warning".into(), note.clone())
    );
    let on_workload = wait_told(&scenario, &dev, 1, 1).await;
    assert_eq!(
        told(&on_workload[0]),
        (
            "Deployment".into(),
            "backend".into(),
            "Warning".into(),
            note.clone()
        )
    );

    // Hoist's own re-pin and the rollout it causes tell nothing more.
    scenario.quiet().await;
    assert_eq!(pin_overwritten(&scenario, &tenant).await, on_environment);
    assert_eq!(pin_overwritten(&scenario, &dev).await, on_workload);

    // Flux's next interval applies the same manifest again: a new change,
    // told as the second occurrence of the same Event.
    scenario
        .apply_as(FLUX, "dev", "backend", &from_git(&dev, git_image))
        .await;
    wait_pinned(&scenario.cluster, &dev, "backend", &backend, "pinned again").await;
    let repeated = wait_told(&scenario, &tenant, 1, 2).await;
    assert_eq!(told(&repeated[0]), told(&on_environment[0]));
    wait_told(&scenario, &dev, 1, 2).await;

    // Argo CD writes another image: another Event, naming Argo CD.
    let argo_image = "example.invalid/backend:from-argo";
    scenario
        .apply_as(ARGO_CD, "dev", "backend", &from_git(&dev, argo_image))
        .await;
    wait_pinned(&scenario.cluster, &dev, "backend", &backend, "pinned again").await;
    let events = wait_told(&scenario, &tenant, 2, 1).await;
    let note = told(&events[1]).3;
    assert!(
        note.starts_with(&format!(
            "{dev}/backend: {ARGO_CD} set .spec.template.spec.containers[name=\"app\"].image to \"{argo_image}\""
        )),
        "{note}"
    );
    scenario.quiet().await;
    assert_eq!(pin_overwritten(&scenario, &tenant).await.len(), 2);
    scenario.stop().await;
}
