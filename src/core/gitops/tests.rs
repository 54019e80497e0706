//! Overwrites of pinned fields, read from managedFields in the shape
//! kube-apiserver writes them: a Deployment created with `kubectl create`,
//! pinned by Hoist, then applied with force by Flux's kustomize-controller.

use std::collections::BTreeMap;

use super::*;
use crate::core::environment::fixture::yaml;

const PINNED: &str = "registry.example.com/shop/backend@sha256:aaaa";
const FLUX: &str = "registry.example.com/shop/backend:1.4.2";

fn pin() -> WorkloadPin {
    WorkloadPin {
        kind: WorkloadKind::Deployment,
        namespace: "shop".into(),
        name: "backend".into(),
        images: BTreeMap::from([("app".to_string(), PINNED.to_string())]),
        artifact: "shop-1-4-3".into(),
        config_hash: Some("c0ffee".into()),
        environment: "prod".into(),
        tenant: "shop".into(),
    }
}

/// The entry of `kubectl create`: it owns `app`'s image until Hoist's
/// first pin takes it (`app_image`).
fn created(app_image: bool) -> String {
    let image = if app_image {
        "\n              f:image: {}"
    } else {
        ""
    };
    format!(
        r#"
- manager: kubectl-create
  operation: Update
  apiVersion: apps/v1
  time: "2026-12-08T01:00:00Z"
  fieldsType: FieldsV1
  fieldsV1:
    f:spec:
      f:replicas: {{}}
      f:selector: {{}}
      f:template:
        f:metadata:
          f:labels:
            .: {{}}
            f:app: {{}}
        f:spec:
          f:containers:
            k:{{"name":"app"}}:
              .: {{}}
              f:name: {{}}{image}
            k:{{"name":"sidecar"}}:
              .: {{}}
              f:image: {{}}
              f:name: {{}}
"#
    )
}

/// Hoist's entry once it pinned `app` (its image given up to another
/// manager when `image` is false).
fn hoist_entry(image: bool, artifact: bool) -> String {
    let image = if image { "\n              f:image: {}" } else { "" };
    let artifact = if artifact {
        "\n            f:hoist.dev/artifact: {}"
    } else {
        ""
    };
    format!(
        r#"
- manager: hoist
  operation: Apply
  apiVersion: apps/v1
  time: "2026-12-08T01:01:00Z"
  fieldsType: FieldsV1
  fieldsV1:
    f:metadata:
      f:labels:
        f:hoist.dev/environment: {{}}
        f:hoist.dev/tenant: {{}}
    f:spec:
      f:template:
        f:metadata:
          f:annotations:{artifact}
            f:hoist.dev/config-hash: {{}}
        f:spec:
          f:containers:
            k:{{"name":"app"}}:
              .: {{}}
              f:name: {{}}{image}
"#
    )
}

const FLUX_ENTRY: &str = r#"
- manager: kustomize-controller
  operation: Apply
  apiVersion: apps/v1
  time: "2026-12-08T01:02:00Z"
  fieldsType: FieldsV1
  fieldsV1:
    f:spec:
      f:template:
        f:spec:
          f:containers:
            k:{"name":"app"}:
              .: {}
              f:image: {}
              f:name: {}
"#;

const STATUS_ENTRY: &str = r#"
- manager: kube-controller-manager
  operation: Update
  apiVersion: apps/v1
  subresource: status
  time: "2026-12-08T01:02:01Z"
  fieldsType: FieldsV1
  fieldsV1:
    f:status:
      f:replicas: {}
"#;

fn deployment(image: &str, artifact: &str, managed_fields: &str) -> Workload {
    let managed_fields = managed_fields.replace('\n', "\n  ");
    Workload::Deployment(yaml(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  namespace: shop
  resourceVersion: "812"
  labels: {{app: backend, hoist.dev/environment: prod, hoist.dev/tenant: shop}}
  managedFields:{managed_fields}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  template:
    metadata:
      labels: {{app: backend}}
      annotations: {{hoist.dev/artifact: {artifact}, hoist.dev/config-hash: c0ffee}}
    spec:
      containers:
        - {{name: app, image: "{image}"}}
        - {{name: sidecar, image: "registry.example.com/proxy:2"}}
"#
    )))
}

#[test]
fn an_image_another_manager_applied_with_force_names_that_manager_and_its_value() {
    let fields = format!(
        "{}{}{FLUX_ENTRY}{STATUS_ENTRY}",
        created(false),
        hoist_entry(false, true)
    );
    let live = deployment(FLUX, "shop-1-4-3", &fields);
    assert_eq!(overwrites(&pin(), &live, "hoist"), flux_overwrite());
}

#[test]
fn an_annotation_another_manager_took_is_told_with_the_image() {
    // Argo CD's sync wrote the annotation as well as the image.
    let argo = FLUX_ENTRY.replace("kustomize-controller", "argocd-controller").replace(
        "      f:template:\n        f:spec:",
        "      f:template:\n        f:metadata:\n          f:annotations:\n            f:hoist.dev/artifact: {}\n        f:spec:",
    );
    let fields = format!("{}{}{argo}", created(false), hoist_entry(false, false));
    let live = deployment(FLUX, "shop-1-4-2", &fields);
    let told: Vec<(String, String, String)> = overwrites(&pin(), &live, "hoist")
        .into_iter()
        .map(|o| (o.field, o.manager, o.value))
        .collect();
    assert_eq!(
        told,
        vec![
            (
                r#".spec.template.spec.containers[name="app"].image"#.into(),
                "argocd-controller".into(),
                FLUX.into()
            ),
            (
                ".spec.template.metadata.annotations.hoist.dev/artifact".into(),
                "argocd-controller".into(),
                "shop-1-4-2".into()
            ),
        ]
    );
}

#[test]
fn the_first_pin_of_a_workload_someone_else_created_is_no_overwrite() {
    let live = deployment("registry.example.com/shop/backend:latest", "none", &created(true));
    assert_eq!(overwrites(&pin(), &live, "hoist"), vec![]);
}

#[test]
fn a_new_release_replaces_hoists_own_value_without_telling() {
    let fields = format!("{}{}", created(false), hoist_entry(true, true));
    let live = deployment(
        "registry.example.com/shop/backend@sha256:9999",
        "shop-1-4-2",
        &fields,
    );
    assert_eq!(overwrites(&pin(), &live, "hoist"), vec![]);
}

#[test]
fn a_container_newly_targeted_is_taken_over_silently() {
    let fields = format!("{}{}", created(false), hoist_entry(true, true));
    let live = deployment(PINNED, "shop-1-4-3", &fields);
    let mut pin = pin();
    pin.images
        .insert("sidecar".into(), "registry.example.com/proxy@sha256:bbbb".into());
    assert_eq!(overwrites(&pin, &live, "hoist"), vec![]);
}

#[test]
fn a_value_equal_to_the_pin_is_no_fight_whoever_owns_it() {
    let fields = format!("{}{}{FLUX_ENTRY}", created(false), hoist_entry(false, true));
    let live = deployment(PINNED, "shop-1-4-3", &fields);
    assert_eq!(overwrites(&pin(), &live, "hoist"), vec![]);
}

#[test]
fn a_cronjob_is_read_under_its_job_template() {
    let live: Workload = Workload::CronJob(yaml(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
  resourceVersion: "9"
  managedFields:
    - manager: hoist
      operation: Apply
      apiVersion: batch/v1
      fieldsType: FieldsV1
      fieldsV1:
        f:spec: {f:jobTemplate: {f:spec: {f:template: {f:spec: {f:containers: {'k:{"name":"report"}': {.: {}, f:name: {}}}}}}}}
    - manager: kubectl-edit
      operation: Update
      apiVersion: batch/v1
      fieldsType: FieldsV1
      fieldsV1:
        f:spec: {f:jobTemplate: {f:spec: {f:template: {f:spec: {f:containers: {'k:{"name":"report"}': {f:image: {}}}}}}}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: report, image: "example.com/report:edited"}]
"#,
    ));
    let mut pin = pin();
    pin.kind = WorkloadKind::CronJob;
    pin.name = "report".into();
    pin.images = BTreeMap::from([("report".to_string(), PINNED.to_string())]);
    pin.config_hash = None;
    let told: Vec<(String, String)> = overwrites(&pin, &live, "hoist")
        .into_iter()
        .map(|o| (o.field, o.manager))
        .collect();
    assert_eq!(
        told,
        vec![(
            r#".spec.jobTemplate.spec.template.spec.containers[name="report"].image"#.into(),
            "kubectl-edit".into()
        )]
    );
}

fn flux_overwrite() -> Vec<Overwrite> {
    vec![Overwrite {
        field: r#".spec.template.spec.containers[name="app"].image"#.into(),
        manager: "kustomize-controller".into(),
        value: FLUX.into(),
        pinned: PINNED.into(),
    }]
}

#[test]
fn each_write_is_told_once_and_a_repeat_continues_the_series() {
    let overwrites = flux_overwrite();
    assert_eq!(announcement("812", &[], None), Announcement::Nothing);
    assert_eq!(announcement("812", &overwrites, None), Announcement::New);
    let told = Told {
        resource_version: "812".into(),
        overwrites: overwrites.clone(),
        count: 1,
    };
    // The same write seen again (a cache behind Hoist's re-pin): nothing.
    assert_eq!(
        announcement("812", &overwrites, Some(&told)),
        Announcement::Nothing
    );
    // Flux applied the same value again after Hoist re-pinned: a new change,
    // told as the second occurrence of the same Event.
    assert_eq!(
        announcement("840", &overwrites, Some(&told)),
        Announcement::Repeat { count: 2 }
    );
    let mut other = overwrites.clone();
    other[0].value = "registry.example.com/shop/backend:1.4.3".into();
    assert_eq!(announcement("840", &other, Some(&told)), Announcement::New);
}

#[test]
fn the_note_names_manager_field_value_and_what_to_do() {
    let id = pin().id();
    assert_eq!(
        note(&id, &flux_overwrite()),
        "shop/backend: kustomize-controller set .spec.template.spec.containers[name=\"app\"].image to \
         \"registry.example.com/shop/backend:1.4.2\" (pinned again to \
         \"registry.example.com/shop/backend@sha256:aaaa\"); configure that tool to leave Hoist's fields \
         alone (README: GitOps coexistence)"
    );
}

#[test]
fn caches_keep_only_who_owns_the_pinned_fields_and_decide_the_same() {
    let fields = format!(
        "{}{}{FLUX_ENTRY}{STATUS_ENTRY}",
        created(false),
        hoist_entry(false, true)
    );
    let mut live = deployment(FLUX, "shop-1-4-3", &fields);
    let before = overwrites(&pin(), &live, "hoist");
    let meta = live.metadata_mut();
    meta.managed_fields = meta.managed_fields.take().and_then(pinned_ownership);
    assert_eq!(overwrites(&pin(), &live, "hoist"), before);
    let kept: Vec<(Option<String>, Value)> = live
        .metadata()
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            (
                e.manager.clone(),
                e.fields_v1.clone().map(|f| f.0).unwrap_or_default(),
            )
        })
        .collect();
    let containers =
        |items: Value| serde_json::json!({"f:spec": {"f:template": {"f:spec": {"f:containers": items}}}});
    assert_eq!(
        kept,
        vec![
            (
                Some("kubectl-create".into()),
                containers(serde_json::json!({
                    r#"k:{"name":"app"}"#: {},
                    r#"k:{"name":"sidecar"}"#: {"f:image": {}}
                }))
            ),
            (
                Some("hoist".into()),
                serde_json::json!({"f:spec": {"f:template": {
                    "f:metadata": {"f:annotations": {"f:hoist.dev/artifact": {}, "f:hoist.dev/config-hash": {}}},
                    "f:spec": {"f:containers": {r#"k:{"name":"app"}"#: {}}}
                }}})
            ),
            (
                Some("kustomize-controller".into()),
                containers(serde_json::json!({r#"k:{"name":"app"}"#: {"f:image": {}}}))
            ),
        ]
    );
    let config_map: Vec<ManagedFieldsEntry> = yaml(
        r#"
- {manager: hoist, operation: Apply, apiVersion: v1, fieldsType: FieldsV1, fieldsV1: {f:data: {f:LOG_LEVEL: {}}, f:metadata: {f:labels: {f:hoist.dev/environment: {}}}}}
"#,
    );
    assert_eq!(pinned_ownership(config_map), None);
}

#[test]
fn of_managers_sharing_the_value_the_latest_is_named() {
    let argo = FLUX_ENTRY
        .replace("kustomize-controller", "argocd-controller")
        .replace("01:02:00", "01:01:30");
    let fields = format!("{}{}{FLUX_ENTRY}{argo}", created(false), hoist_entry(false, true));
    let live = deployment(FLUX, "shop-1-4-3", &fields);
    let managers: Vec<String> = overwrites(&pin(), &live, "hoist")
        .into_iter()
        .map(|o| o.manager)
        .collect();
    assert_eq!(managers, ["kustomize-controller"]);
}

#[test]
fn a_note_stays_within_what_the_api_server_accepts() {
    let id = pin().id();
    let many: Vec<Overwrite> = (0..10)
        .map(|n| Overwrite {
            field: format!(".spec.template.spec.containers[name=\"container-{n}\"].image"),
            manager: "kustomize-controller".into(),
            value: FLUX.into(),
            pinned: PINNED.into(),
        })
        .collect();
    let note = note(&id, &many);
    assert!(note.len() <= NOTE_LIMIT, "{}", note.len());
    assert!(note.contains("container-0"), "{note}");
    assert!(
        note.ends_with(
            "; and 6 more; configure that tool to leave Hoist's fields alone (README: GitOps coexistence)"
        ),
        "{note}"
    );
    let huge = vec![Overwrite {
        value: "x".repeat(2000),
        ..many[0].clone()
    }];
    assert!(super::note(&id, &huge).len() <= NOTE_LIMIT);
}
