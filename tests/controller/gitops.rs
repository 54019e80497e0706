//! GitOps coexistence: another field manager applying a target Deployment
//! with force, as Flux's kustomize-controller and Argo CD do. Hoist pins it
//! again and tells each overwrite in one `PinOverwritten` Event; the recipes
//! of deploy/gitops keep the tools apart.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use hoist::controller::FIELD_MANAGER;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
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

/// A recipe of deploy/gitops, as a JSON value.
fn recipe(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/gitops")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The jq path expressions (as Argo CD's `jqPathExpressions` take them) of
/// the fields a `fieldsV1` set owns below `prefix`. A list item's key
/// field (`f:name` of `k:{"name":…}`) is the item's identity, not a value
/// Git and Hoist could disagree on, so it is not listed.
fn jq_paths(set: &Value, prefix: &str, in_item: bool, paths: &mut BTreeSet<String>) {
    let Some(fields) = set.as_object() else { return };
    if fields.keys().all(|key| key == ".") {
        paths.insert(prefix.to_string());
        return;
    }
    for (key, value) in fields {
        if key == "." || (in_item && key == "f:name") {
            continue;
        }
        if let Some(name) = key.strip_prefix("f:") {
            let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let path = if plain {
                format!("{prefix}.{name}")
            } else {
                format!("{prefix}[{name:?}]")
            };
            jq_paths(value, &path, false, paths);
        } else if let Some(item) = key.strip_prefix("k:") {
            let item: Value = serde_json::from_str(item).expect("list item key");
            let name = item["name"].as_str().expect("named list item");
            jq_paths(
                value,
                &format!("{prefix}[] | select(.name == {name:?}) | "),
                true,
                paths,
            );
        }
    }
}

#[tokio::test]
async fn the_argo_cd_recipe_ignores_exactly_the_fields_hoists_entry_owns() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    let pinned = scenario.deployment("dev", "backend").await;
    scenario.stop().await;
    let entries: Vec<_> = pinned
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.manager.as_deref() == Some(FIELD_MANAGER) && e.subresource.is_none())
        .collect();
    assert_eq!(entries.len(), 1, "one entry of Hoist's: {entries:#?}");
    assert_eq!(entries[0].operation.as_deref(), Some("Apply"));
    let mut owned = BTreeSet::new();
    let set = entries[0].fields_v1.clone().expect("fieldsV1").0;
    jq_paths(&set, "", false, &mut owned);

    let application = recipe("argocd-application.yaml");
    assert_eq!(application["kind"], "Application");
    let ignored = &application["spec"]["ignoreDifferences"];
    assert_eq!(
        ignored,
        &json!([{
            "group": "apps",
            "kind": "Deployment",
            "managedFieldsManagers": [FIELD_MANAGER],
            "jqPathExpressions": ignored[0]["jqPathExpressions"].clone(),
        }])
    );
    let expressions: BTreeSet<String> = ignored[0]["jqPathExpressions"]
        .as_array()
        .expect("jqPathExpressions")
        .iter()
        .map(|e| e.as_str().expect("an expression").to_string())
        .collect();
    assert_eq!(expressions, owned, "the fields Hoist's managedFields entry owns");
    assert!(
        application["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .expect("syncOptions")
            .contains(&json!("RespectIgnoreDifferences=true"))
    );
}

/// Syncs `manifest` as kustomize-controller does under the
/// `kustomize.toolkit.fluxcd.io/ssa` policy `policy` (Flux's documentation):
/// `Override` and `Merge` apply it with force every interval (`Merge` only
/// keeps fields of other managers the manifest does not set),
/// `IfNotPresent` only while the object is missing, `Ignore` never.
async fn flux_sync(scenario: &Scenario, policy: &str, manifest: &Value) {
    let namespace = manifest["metadata"]["namespace"].as_str().expect("namespace");
    let name = manifest["metadata"]["name"].as_str().expect("name");
    let exists = Api::<Deployment>::namespaced(scenario.client(), namespace)
        .get_opt(name)
        .await
        .expect("read the Deployment")
        .is_some();
    let apply = match policy {
        "Override" | "Merge" => true,
        "IfNotPresent" => !exists,
        "Ignore" => false,
        other => panic!("{other} is no kustomize.toolkit.fluxcd.io/ssa policy"),
    };
    if apply {
        Api::<Deployment>::namespaced(scenario.client(), namespace)
            .patch(name, &PatchParams::apply(FLUX).force(), &Patch::Apply(manifest))
            .await
            .unwrap_or_else(|error| panic!("{FLUX} applies {name}: {error}"));
    }
}

#[tokio::test]
async fn the_flux_recipe_creates_the_deployment_once_and_leaves_the_pin_alone() {
    let mut scenario = Scenario::new().await;
    let dev = scenario.stages["dev"].clone();
    let tenant = scenario.namespace().to_string();
    let mut manifest = recipe("flux-deployment.yaml");
    let policy = manifest["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/ssa"]
        .as_str()
        .expect("the ssa annotation")
        .to_string();
    assert_eq!(policy, "IfNotPresent");
    manifest["metadata"]["namespace"] = json!(dev);
    // No pod runs in these tests (see main.rs).
    manifest["spec"]["replicas"] = json!(0);

    // Flux creates the Deployment in place of the one the scenario made.
    let deployments = Api::<Deployment>::namespaced(scenario.client(), &dev);
    deployments
        .delete("backend", &DeleteParams::default())
        .await
        .expect("delete backend");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while deployments
        .get_opt("backend")
        .await
        .expect("read backend")
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline, "backend is not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flux_sync(&scenario, &policy, &manifest).await;
    scenario.start().await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("v1", "shop-1-0-0", "dev").await;
    let backend = pinned(&images["backend"]);
    wait_pinned(&scenario.cluster, &dev, "backend", &backend, "pinned").await;
    let synced = scenario.deployment("dev", "backend").await;

    // Flux's next intervals: the Deployment exists, so nothing is applied.
    flux_sync(&scenario, &policy, &manifest).await;
    scenario.quiet().await;
    let after = scenario.deployment("dev", "backend").await;
    assert_eq!(after.metadata.resource_version, synced.metadata.resource_version);
    assert_eq!(super::images_of(after)[0].1, backend);
    assert_eq!(pin_overwritten(&scenario, &tenant).await, vec![]);
    assert_eq!(pin_overwritten(&scenario, &dev).await, vec![]);

    // Merge, by contrast, writes the manifest's image over the pin.
    flux_sync(&scenario, "Merge", &manifest).await;
    wait_pinned(&scenario.cluster, &dev, "backend", &backend, "pinned again").await;
    let told = wait_told(&scenario, &tenant, 1, 1).await;
    assert!(
        told[0].note.as_deref().unwrap_or_default().starts_with(&format!(
            "{dev}/backend: {FLUX} set .spec.template.spec.containers[name=\"app\"].image to \"registry.example.com/shop/backend:1.0.0\""
        )),
        "{told:#?}"
    );
    scenario.stop().await;
}
