//! Server-side apply and managedFields bookkeeping, scenario by scenario:
//! given a live object and a write, then this object and these owners.

use kube_standin::fieldmanager::{BuiltinTypes, Conflict, apply, record_update};
use serde_json::{Value, json};

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-02T00:00:00Z";
const T3: &str = "2026-01-03T00:00:00Z";

/// What `kubectl apply` sends for a small Deployment.
fn deployment_config() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "app", "image": "registry.example.com/shop/web:1.0.0", "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                    {"name": "proxy", "image": "registry.example.com/proxy:2"}
                ]}
            }
        }
    })
}

/// Hoist's configuration: only the image of container `app`.
fn hoist_image(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

fn apply_as(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    apply(
        live,
        config,
        manager,
        force,
        None,
        &["status"],
        &BuiltinTypes,
        now,
    )
}

fn managed_fields(object: &Value) -> Value {
    object
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(Value::Null)
}

fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    out
}

fn fields_of(object: &Value, manager: &str, operation: &str) -> Value {
    managed_fields(object)
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e["manager"] == json!(manager) && e["operation"] == json!(operation))
        })
        .map_or(Value::Null, |e| e["fieldsV1"].clone())
}

fn conflict(manager: &str, field: &str) -> Conflict {
    Conflict {
        manager: manager.to_owned(),
        field: field.to_owned(),
    }
}

fn kubectl_fields() -> Value {
    json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}
                    },
                    "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}
            }
        }
    })
}

#[test]
fn apply_creates_the_object_and_records_the_applier() -> anyhow::Result<()> {
    let created =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(without_managed_fields(&created), deployment_config());
    assert_eq!(
        managed_fields(&created),
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": kubectl_fields()
        }])
    );
    Ok(())
}

#[test]
fn applying_the_same_configuration_again_changes_nothing() -> anyhow::Result<()> {
    let created =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let again = apply_as(Some(&created), &deployment_config(), "kubectl", false, T2)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(serde_json::to_string(&again)?, serde_json::to_string(&created)?);
    Ok(())
}

#[test]
fn changing_a_field_another_applier_owns_is_a_conflict() -> anyhow::Result<()> {
    let live =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let mut scale = hoist_image("registry.example.com/shop/web:1.0.0");
    scale["spec"]["replicas"] = json!(5);
    scale["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com/shop/web:1.1.0");
    assert_eq!(
        apply_as(Some(&live), &scale, "hoist", false, T2),
        Err(vec![
            conflict("kubectl", ".spec.replicas"),
            conflict("kubectl", ".spec.template.spec.containers[name=\"app\"].image"),
        ])
    );
    Ok(())
}

#[test]
fn applying_the_value_already_there_shares_ownership_without_conflict() -> anyhow::Result<()> {
    let live =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let shared = apply_as(
        Some(&live),
        &hoist_image("registry.example.com/shop/web:1.0.0"),
        "hoist",
        false,
        T2,
    )
    .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(without_managed_fields(&shared), without_managed_fields(&live));
    assert_eq!(fields_of(&shared, "kubectl", "Apply"), kubectl_fields());
    assert_eq!(
        fields_of(&shared, "hoist", "Apply"),
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    Ok(())
}

#[test]
fn force_takes_the_field_over_and_merges_the_container_by_name() -> anyhow::Result<()> {
    let live =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let promoted = apply_as(
        Some(&live),
        &hoist_image("registry.example.com/shop/web:1.1.0"),
        "hoist",
        true,
        T2,
    )
    .map_err(|c| anyhow::anyhow!("{c:?}"))?;

    let mut expected = deployment_config();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com/shop/web:1.1.0");
    assert_eq!(without_managed_fields(&promoted), expected);

    let mut kubectl_now = kubectl_fields();
    if let Some(app) = kubectl_now
        .pointer_mut("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"app\"}")
        .and_then(Value::as_object_mut)
    {
        app.remove("f:image");
    }
    assert_eq!(
        managed_fields(&promoted),
        json!([
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": kubectl_now},
            {"manager": "hoist", "operation": "Apply", "apiVersion": "apps/v1", "time": T2, "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}
        ])
    );
    Ok(())
}

fn configmap(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-config", "namespace": "shop"}, "data": data})
}

#[test]
fn a_field_dropped_from_the_configuration_is_deleted_when_nobody_else_owns_it() -> anyhow::Result<()> {
    let first = apply_as(None, &configmap(json!({"a": "1", "b": "2"})), "hoist", false, T1)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let second = apply_as(Some(&first), &configmap(json!({"a": "1"})), "hoist", false, T2)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(without_managed_fields(&second), configmap(json!({"a": "1"})));
    assert_eq!(
        fields_of(&second, "hoist", "Apply"),
        json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(second.pointer("/metadata/managedFields/0/time"), Some(&json!(T2)));
    Ok(())
}

#[test]
fn a_field_dropped_from_the_configuration_stays_when_someone_else_owns_it() -> anyhow::Result<()> {
    let first = apply_as(None, &configmap(json!({"a": "1", "b": "2"})), "hoist", false, T1)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let shared = apply_as(Some(&first), &configmap(json!({"b": "2"})), "ops", false, T2)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let third = apply_as(Some(&shared), &configmap(json!({"a": "1"})), "hoist", false, T3)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(
        without_managed_fields(&third),
        configmap(json!({"a": "1", "b": "2"}))
    );
    assert_eq!(
        fields_of(&third, "hoist", "Apply"),
        json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(fields_of(&third, "ops", "Apply"), json!({"f:data": {"f:b": {}}}));
    Ok(())
}

#[test]
fn a_container_dropped_from_the_configuration_is_deleted_with_its_fields() -> anyhow::Result<()> {
    let live =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let mut without_proxy = deployment_config();
    if let Some(containers) = without_proxy
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        containers.truncate(1);
    }
    let applied =
        apply_as(Some(&live), &without_proxy, "kubectl", false, T2).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(without_managed_fields(&applied), without_proxy);
    Ok(())
}

#[test]
fn an_update_takes_the_fields_it_changes_from_their_owners() -> anyhow::Result<()> {
    let live =
        apply_as(None, &deployment_config(), "kubectl", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(4);
    edited["spec"]["paused"] = json!(true);
    record_update(
        Some(&live),
        &mut edited,
        "kubectl-edit",
        None,
        &["status"],
        &BuiltinTypes,
        T2,
    );

    let mut kubectl_now = kubectl_fields();
    if let Some(spec) = kubectl_now.get_mut("f:spec").and_then(Value::as_object_mut) {
        spec.remove("f:replicas");
    }
    assert_eq!(
        managed_fields(&edited),
        json!([
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": kubectl_now},
            {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": T2, "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:paused": {}, "f:replicas": {}}}}
        ])
    );

    // A later edit by the same manager adds to its entry.
    let mut again = edited.clone();
    again["metadata"]["annotations"] = json!({"note": "scaled for the sale"});
    record_update(
        Some(&edited),
        &mut again,
        "kubectl-edit",
        None,
        &["status"],
        &BuiltinTypes,
        T3,
    );
    assert_eq!(
        fields_of(&again, "kubectl-edit", "Update"),
        json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}, "f:spec": {"f:paused": {}, "f:replicas": {}}})
    );
    Ok(())
}

#[test]
fn an_update_that_removes_a_field_removes_it_from_every_owner() -> anyhow::Result<()> {
    let live = apply_as(None, &configmap(json!({"a": "1", "b": "2"})), "hoist", false, T1)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let mut edited = live.clone();
    if let Some(data) = edited.get_mut("data").and_then(Value::as_object_mut) {
        data.remove("b");
    }
    record_update(
        Some(&live),
        &mut edited,
        "kubectl-edit",
        None,
        &["status"],
        &BuiltinTypes,
        T2,
    );
    assert_eq!(
        managed_fields(&edited),
        json!([{"manager": "hoist", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
    );
    Ok(())
}

#[test]
fn a_create_by_update_owns_everything_it_set() {
    let mut created = configmap(json!({"a": "1"}));
    record_update(
        None,
        &mut created,
        "kubectl-create",
        None,
        &["status"],
        &BuiltinTypes,
        T1,
    );
    assert_eq!(
        managed_fields(&created),
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}])
    );
}

#[test]
fn status_writes_get_their_own_entries_and_main_writes_leave_status_alone() -> anyhow::Result<()> {
    let artifact = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
        "metadata": {"name": "shop-1-4-2", "namespace": "shop"},
        "spec": {"application": "shop", "version": "1.4.2"}
    });
    let created = apply_as(None, &artifact, "hoist", false, T1).map_err(|c| anyhow::anyhow!("{c:?}"))?;

    let status = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
        "metadata": {"name": "shop-1-4-2", "namespace": "shop"},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    });
    let ignored_on_status = ["metadata", "spec"];
    let with_status = apply(
        Some(&created),
        &status,
        "hoist",
        false,
        Some("status"),
        &ignored_on_status,
        &BuiltinTypes,
        T2,
    )
    .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(with_status["status"], status["status"]);
    assert_eq!(
        managed_fields(&with_status),
        json!([
            {"manager": "hoist", "operation": "Apply", "apiVersion": "hoist.dev/v1alpha1", "time": T1, "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:application": {}, "f:version": {}}}},
            {"manager": "hoist", "operation": "Apply", "apiVersion": "hoist.dev/v1alpha1", "time": T2, "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:observedGeneration": {}}},
             "subresource": "status"}
        ])
    );

    // Re-applying the spec on the main resource keeps status and its owner.
    let reapplied =
        apply_as(Some(&with_status), &artifact, "hoist", false, T3).map_err(|c| anyhow::anyhow!("{c:?}"))?;
    assert_eq!(
        serde_json::to_string(&reapplied)?,
        serde_json::to_string(&with_status)?
    );
    Ok(())
}

#[test]
fn a_reset_request_clears_managed_fields() -> anyhow::Result<()> {
    let live = apply_as(None, &configmap(json!({"a": "1"})), "hoist", false, T1)
        .map_err(|c| anyhow::anyhow!("{c:?}"))?;
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(
        Some(&live),
        &mut reset,
        "kubectl",
        None,
        &["status"],
        &BuiltinTypes,
        T2,
    );
    assert_eq!(reset, configmap(json!({"a": "1"})));
    Ok(())
}
