use super::*;

fn pin(kind: WorkloadKind) -> WorkloadPin {
    WorkloadPin {
        kind,
        namespace: "shop".into(),
        name: "backend".into(),
        images: [(
            "app".to_string(),
            format!("registry.example.com/shop/backend@sha256:{}", "a".repeat(64)),
        )]
        .into(),
        artifact: "shop-1.4.2".into(),
        config_hash: Some("sha256:beef".into()),
        environment: "dev".into(),
        tenant: "shop".into(),
    }
}

fn template() -> Value {
    json!({
        "metadata": {"annotations": {"hoist.dev/artifact": "shop-1.4.2", "hoist.dev/config-hash": "sha256:beef"}},
        "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/shop/backend@sha256:{}", "a".repeat(64))}]}
    })
}

fn body(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": "backend", "namespace": "shop",
                     "labels": {"hoist.dev/environment": "dev", "hoist.dev/tenant": "shop"}},
        "spec": spec,
    })
}

#[test]
fn apply_body_holds_only_hoist_fields_on_each_kinds_pod_template() {
    let template = template();
    assert_eq!(
        pin(WorkloadKind::Deployment).apply_body(),
        body("apps/v1", "Deployment", json!({"template": template}))
    );
    assert_eq!(
        pin(WorkloadKind::StatefulSet).apply_body(),
        body("apps/v1", "StatefulSet", json!({"template": template}))
    );
    assert_eq!(
        pin(WorkloadKind::DaemonSet).apply_body(),
        body("apps/v1", "DaemonSet", json!({"template": template}))
    );
    assert_eq!(
        pin(WorkloadKind::CronJob).apply_body(),
        body(
            "batch/v1",
            "CronJob",
            json!({"jobTemplate": {"spec": {"template": template}}})
        )
    );
    assert_eq!(
        pin(WorkloadKind::Rollout).apply_body(),
        body("argoproj.io/v1alpha1", "Rollout", json!({"template": template}))
    );
}

const CONTAINERS: &str = r#"
          containers:
            - {name: app, image: "registry.example.com/shop/backend:latest"}
            - {name: proxy, image: "envoy:1"}"#;

fn live(kind: WorkloadKind) -> Workload {
    let (api_version, spec) = match kind {
        WorkloadKind::CronJob => (
            "batch/v1",
            format!(
                "  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:{}",
                CONTAINERS.replace("\n          ", "\n            ")
            ),
        ),
        _ => (
            kind.api_version(),
            format!(
                "  selector: {{matchLabels: {{app: backend}}}}\n  template:\n    spec:{}",
                CONTAINERS.replace("\n          ", "\n      ")
            ),
        ),
    };
    workload(
        kind,
        &format!(
            "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: backend, namespace: shop, generation: 1}}\nspec:\n{spec}\n"
        ),
    )
}

#[test]
fn overlay_then_satisfied_and_other_containers_untouched_on_every_kind() {
    for kind in WorkloadKind::ALL {
        let mut workload = live(kind);
        assert!(!pin(kind).is_satisfied_by(&workload), "{kind}");
        pin(kind).overlay(&mut workload);
        assert!(pin(kind).is_satisfied_by(&workload), "{kind}");
        let containers = &workload
            .pod_template()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.clone());
        let containers = containers.as_deref().unwrap_or_default();
        assert_eq!(containers.len(), 2, "{kind}");
        assert_eq!(containers[1].image.as_deref(), Some("envoy:1"), "{kind}");
        let mut other_hash = pin(kind);
        other_hash.config_hash = Some("sha256:cafe".into());
        assert!(!other_hash.is_satisfied_by(&workload), "{kind}");
    }
}

#[test]
fn a_pin_of_one_kind_is_not_satisfied_by_a_workload_of_another() {
    let mut workload = live(WorkloadKind::StatefulSet);
    pin(WorkloadKind::StatefulSet).overlay(&mut workload);
    assert!(!pin(WorkloadKind::Deployment).is_satisfied_by(&workload));
}

#[test]
fn a_cron_jobs_pod_template_is_its_job_templates() {
    let mut workload = live(WorkloadKind::CronJob);
    pin(WorkloadKind::CronJob).overlay(&mut workload);
    let Workload::CronJob(cron_job) = &workload else {
        panic!("a CronJob");
    };
    let template = cron_job
        .spec
        .as_ref()
        .and_then(|spec| spec.job_template.spec.as_ref())
        .map(|spec| &spec.template);
    assert_eq!(template, workload.pod_template());
    assert_eq!(
        template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(ANNOTATION_ARTIFACT))
            .map(String::as_str),
        Some("shop-1.4.2")
    );
}

#[test]
fn ids_name_the_kind_except_for_deployments() {
    assert_eq!(pin(WorkloadKind::Deployment).id().to_string(), "shop/backend");
    assert_eq!(
        pin(WorkloadKind::StatefulSet).id().to_string(),
        "StatefulSet shop/backend"
    );
    assert_eq!(live(WorkloadKind::Rollout).id(), pin(WorkloadKind::Rollout).id());
}
