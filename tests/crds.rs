//! The checked-in CRDs are exactly what the Rust types generate, and they are
//! structural schemas the API server accepts.

use std::path::Path;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_crds_match_the_generator() {
    for dir in ["crds", "charts/hoist/crds"] {
        let generated = hoist::api::crds_yaml().expect("CRDs serialize");
        let mut expected_files: Vec<String> = generated.iter().map(|(file, _)| file.clone()).collect();
        expected_files.sort();
        let mut present: Vec<String> = std::fs::read_dir(repo().join(dir))
            .unwrap_or_else(|error| panic!("{dir}: {error}"))
            .map(|entry| {
                entry
                    .expect("readable dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        present.sort();
        assert_eq!(
            present, expected_files,
            "{dir} holds exactly the generated CRD files"
        );
        for (file, yaml) in generated {
            let on_disk = std::fs::read_to_string(repo().join(dir).join(&file)).expect("CRD file readable");
            assert!(
                on_disk == yaml,
                "{dir}/{file} differs from the generated CRD: run `cargo run -- crds --out {dir}`"
            );
        }
    }
}

/// Walks a schema node and collects every place that breaks the rules of a
/// structural schema (every node typed, unless it deliberately preserves
/// unknown fields or is int-or-string; no `additionalProperties` beside
/// `properties`; no value-dependent `anyOf`/`oneOf` typing).
fn structural_violations(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    let typed = object.contains_key("type");
    let int_or_string = object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserves = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed && !int_or_string && !preserves {
        out.push(format!("{path}: no type"));
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        out.push(format!("{path}: both properties and additionalProperties"));
    }
    for forbidden in ["oneOf", "anyOf", "allOf", "not"] {
        if let Some(branches) = object.get(forbidden) {
            // Only value validation is allowed inside these: no types, no descriptions.
            for branch in branches.as_array().into_iter().flatten() {
                for key in [
                    "type",
                    "description",
                    "default",
                    "additionalProperties",
                    "nullable",
                ] {
                    if branch.get(key).is_some() && !int_or_string {
                        out.push(format!("{path}.{forbidden}: sets {key}"));
                    }
                }
            }
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            structural_violations(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = object.get("items") {
        structural_violations(items, &format!("{path}[]"), out);
    }
    if let Some(additional) = object
        .get("additionalProperties")
        .filter(|value| value.is_object())
    {
        structural_violations(additional, &format!("{path}[*]"), out);
    }
}

#[test]
fn every_crd_schema_is_structural() {
    for crd in hoist::api::crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .expect("schema"),
            )
            .expect("schema serializes");
            let mut violations = Vec::new();
            structural_violations(&schema, &name, &mut violations);
            assert_eq!(
                violations,
                Vec::<String>::new(),
                "{name} {} is structural",
                version.name
            );
        }
    }
}

#[test]
fn crds_are_namespaced_with_status_short_names_and_category() {
    let expected = [
        ("artifacts.hoist.dev", "art"),
        ("environments.hoist.dev", "env"),
        ("promotions.hoist.dev", "promo"),
    ];
    let crds = hoist::api::crds();
    assert_eq!(crds.len(), expected.len());
    for (crd, (name, short)) in crds.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_string()][..])
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["hoist".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(
            (version.name.as_str(), version.served, version.storage),
            ("v1alpha1", true, true)
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} has /status"
        );
    }
}

#[test]
fn printer_columns_show_each_kind_at_a_glance() {
    let columns = |kind: usize| -> Vec<(String, String)> {
        hoist::api::crds()[kind].spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|column| column.priority.unwrap_or(0) == 0)
            .map(|column| (column.name, column.json_path))
            .collect()
    };
    let ready = r#".status.conditions[?(@.type=="Ready")].status"#.to_string();
    let age = ".metadata.creationTimestamp".to_string();
    assert_eq!(
        columns(0),
        vec![
            ("Application".into(), ".spec.application".into()),
            ("Version".into(), ".spec.version".into()),
            ("Ready".into(), ready.clone()),
            ("Age".into(), age.clone()),
        ]
    );
    assert_eq!(
        columns(1),
        vec![
            ("Ready".into(), ready),
            ("Running".into(), ".status.summary".into()),
            ("Age".into(), age.clone())
        ]
    );
    assert_eq!(
        columns(2),
        vec![
            ("Artifact".into(), ".spec.artifact".into()),
            ("Environment".into(), ".spec.environment".into()),
            ("Phase".into(), ".status.phase".into()),
            ("Age".into(), age),
        ]
    );
}

#[test]
fn artifact_spec_is_immutable_in_the_schema() {
    let crd = serde_json::to_value(&hoist::api::crds()[0]).expect("CRD serializes");
    let rules = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"];
    let rules: Vec<&str> = rules
        .as_array()
        .expect("spec rules")
        .iter()
        .filter_map(|rule| rule["rule"].as_str())
        .collect();
    assert!(rules.contains(&"self == oldSelf"), "rules: {rules:?}");
}

/// The `x-kubernetes-validations` rules of every schema node, with the node.
fn rule_nodes<'s>(node: &'s Value, path: &str, out: &mut Vec<(String, &'s Value)>) {
    if node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|rules| !rules.is_empty())
    {
        out.push((path.to_owned(), node));
    }
    for (name, child) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        rule_nodes(child, &format!("{path}.{name}"), out);
    }
    if let Some(items) = node.get("items") {
        rule_nodes(items, &format!("{path}[]"), out);
    }
    if let Some(values) = node.get("additionalProperties").filter(|a| a.is_object()) {
        rule_nodes(values, &format!("{path}[*]"), out);
    }
}

/// Strings, lists and maps at or below `node` without the bound the CEL cost
/// estimate (and the cost of evaluating a rule at all) depends on.
fn unbounded(node: &Value, path: &str, out: &mut Vec<String>) {
    let has = |key: &str| node.get(key).is_some();
    let format = node.get("format").and_then(Value::as_str);
    match node.get("type").and_then(Value::as_str) {
        Some("string")
            if !has("maxLength")
                && !has("enum")
                && !matches!(format, Some("date" | "date-time" | "duration")) =>
        {
            out.push(format!("{path}: string without maxLength"));
        }
        Some("array") if !has("maxItems") => out.push(format!("{path}: array without maxItems")),
        Some("object")
            if node.get("additionalProperties").is_some_and(Value::is_object) && !has("maxProperties") =>
        {
            out.push(format!("{path}: map without maxProperties"));
        }
        _ => {}
    }
    for (name, child) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        unbounded(child, &format!("{path}.{name}"), out);
    }
    if let Some(items) = node.get("items") {
        unbounded(items, &format!("{path}[]"), out);
    }
    if let Some(values) = node.get("additionalProperties").filter(|a| a.is_object()) {
        unbounded(values, &format!("{path}[*]"), out);
    }
}

/// kube-apiserver refuses a CRD whose rules may cost more than its CEL budget
/// to evaluate, estimating the worst case from `maxLength`, `maxItems` and
/// `maxProperties` (a string without `maxLength` is as long as a 3 MiB
/// request). The stand-in estimates as the server does; every rule compiles
/// there and fits, and everything a rule can read is bounded.
#[test]
fn every_rule_fits_the_cel_cost_budget_of_the_api_server() {
    for crd in hoist::api::crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        let crd = serde_json::to_value(&crd).expect("CRD serializes");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let report = kube_standin::schema::check_rules(schema, "spec.validation.openAPIV3Schema");
        assert_eq!(report.errors, vec![], "{name} is accepted");
        let mut nodes = Vec::new();
        rule_nodes(schema, &name, &mut nodes);
        let rules: usize = nodes
            .iter()
            .map(|(_, node)| node["x-kubernetes-validations"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(report.costs.len(), rules, "{name}: every rule was estimated");
        for cost in &report.costs {
            assert!(cost.cost <= cost.limit, "{name}: {cost:?}");
        }
        let mut open = Vec::new();
        for (path, node) in nodes {
            unbounded(node, &path, &mut open);
        }
        assert_eq!(open, Vec::<String>::new(), "{name}: what rules read is bounded");
    }
}

#[test]
fn a_target_names_exactly_one_of_deployment_and_workload_of_the_five_kinds() {
    let crd = serde_json::to_value(&hoist::api::crds()[1]).expect("CRD serializes");
    let target = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["targets"]["items"];
    assert_eq!(
        target["x-kubernetes-validations"],
        serde_json::json!([{
            "rule": "has(self.deployment) != has(self.workload)",
            "message": "a target names exactly one of deployment and workload"
        }])
    );
    assert_eq!(
        target["properties"]["workload"]["properties"]["kind"]["enum"],
        serde_json::json!(["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Rollout"])
    );
    assert_eq!(
        target["required"],
        serde_json::json!(["application", "component", "container"])
    );
}
