//! The stand-in's schema handling against Hoist's real CRDs (fixtures copied
//! from `cargo run -p hoist`, commit e43ea65) and small hand-written schemas:
//! given an object, after `normalize`, `validate` reports exactly what the
//! apiserver would.

use kube_standin::schema::{FieldError, ListType, MapType, StructuralSchema};
use serde_json::{Value, json};

fn crd_schema(yaml: &str) -> anyhow::Result<StructuralSchema> {
    let crd: Value = serde_yaml::from_str(yaml)?;
    let schema = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .ok_or_else(|| anyhow::anyhow!("CRD without openAPIV3Schema"))?;
    StructuralSchema::new(schema).map_err(anyhow::Error::msg)
}

fn artifacts() -> anyhow::Result<StructuralSchema> {
    crd_schema(include_str!("fixtures/artifacts.yaml"))
}

fn environments() -> anyhow::Result<StructuralSchema> {
    crd_schema(include_str!("fixtures/environments.yaml"))
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn artifact() -> Value {
    json!({
        "apiVersion": "hoist.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": "shop-1-4-2", "namespace": "shop"},
        "spec": {
            "application": "shop",
            "version": "1.4.2",
            "images": [
                {"component": "backend", "image": "registry.example.com/shop/backend:1.4.2"},
                {"component": "frontend", "image": "registry.example.com/shop/frontend:1.4.2", "digest": DIGEST}
            ],
            "source": {"repository": "https://git.example.com/shop", "revision": "0123456789abcdef0123456789abcdef01234567"}
        }
    })
}

/// Normalizes and validates, as the server does on create (old: `None`) and update.
fn check(
    schema: &StructuralSchema,
    mut object: Value,
    old: Option<&Value>,
) -> Result<Value, Vec<FieldError>> {
    schema.normalize(&mut object);
    schema.validate(&object, old, &[]).map(|()| object)
}

fn error(field: &str, reason: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// What the apiserver adds when an error keeps a schema's CEL rules from running.
fn rules_not_checked() -> FieldError {
    error(
        "<nil>",
        "FieldValueInvalid",
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the \
         existing errors to complete validation",
    )
}

#[test]
fn a_valid_artifact_passes_and_gets_its_defaults() -> anyhow::Result<()> {
    let stored = check(&artifacts()?, artifact(), None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut expected = artifact();
    expected["spec"]["versionScheme"] = json!("SemVer");
    assert_eq!(stored, expected);
    Ok(())
}

#[test]
fn a_digest_not_matching_the_pattern_is_invalid() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["images"][0]["digest"] = json!("sha256:zz");
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![error(
            "spec.images[0].digest",
            "FieldValueInvalid",
            "spec.images[0].digest: Invalid value: \"sha256:zz\": spec.images[0].digest in body should match '^sha256:[a-f0-9]{64}$'"
        )])
    );
    Ok(())
}

#[test]
fn a_missing_required_field_is_reported() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]
        .as_object_mut()
        .map(|spec| spec.remove("application"));
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![
            error(
                "spec.application",
                "FieldValueRequired",
                "spec.application: Required value"
            ),
            rules_not_checked()
        ])
    );
    Ok(())
}

#[test]
fn an_enum_value_outside_the_list_is_not_supported() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["versionScheme"] = json!("Foo");
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![
            error(
                "spec.versionScheme",
                "FieldValueNotSupported",
                "spec.versionScheme: Unsupported value: \"Foo\": supported values: \"SemVer\", \"CalVer\", \"Opaque\""
            ),
            rules_not_checked()
        ])
    );
    Ok(())
}

#[test]
fn length_limits_are_worded_like_the_apiserver() -> anyhow::Result<()> {
    let mut too_long = artifact();
    too_long["spec"]["version"] = json!("1".repeat(129));
    too_long["spec"]["versionScheme"] = json!("Opaque");
    assert_eq!(
        check(&artifacts()?, too_long, None),
        Err(vec![
            error(
                "spec.version",
                "FieldValueTooLong",
                "spec.version: Too long: may not be more than 128 bytes"
            ),
            rules_not_checked()
        ])
    );
    let mut empty = artifact();
    empty["spec"]["version"] = json!("");
    empty["spec"]["versionScheme"] = json!("Opaque");
    assert_eq!(
        check(&artifacts()?, empty, None),
        Err(vec![error(
            "spec.version",
            "FieldValueInvalid",
            "spec.version: Invalid value: \"\": spec.version in body should be at least 1 chars long"
        )])
    );
    Ok(())
}

#[test]
fn a_value_of_the_wrong_type_is_reported_with_its_type() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["application"] = json!(42);
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![
            error(
                "spec.application",
                "FieldValueTypeInvalid",
                "spec.application: Invalid value: \"integer\": spec.application in body must be of type string: \"integer\""
            ),
            rules_not_checked()
        ])
    );
    Ok(())
}

#[test]
fn a_malformed_date_time_is_reported_as_a_type_error() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["source"]["builtAt"] = json!("yesterday");
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![
            error(
                "spec.source.builtAt",
                "FieldValueTypeInvalid",
                "spec.source.builtAt: Invalid value: \"yesterday\": spec.source.builtAt in body must be of type date-time: \"yesterday\""
            ),
            rules_not_checked()
        ])
    );
    let mut valid = artifact();
    valid["spec"]["source"]["builtAt"] = json!("2026-11-03T10:00:00Z");
    assert!(check(&artifacts()?, valid, None).is_ok());
    Ok(())
}

#[test]
fn the_spec_is_immutable_through_its_transition_rule() -> anyhow::Result<()> {
    let schema = artifacts()?;
    let stored = check(&schema, artifact(), None).map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let mut changed = stored.clone();
    changed["spec"]["version"] = json!("1.4.3");
    assert_eq!(
        check(&schema, changed, Some(&stored)),
        Err(vec![error(
            "spec",
            "FieldValueInvalid",
            "spec: Invalid value: \"object\": Artifact spec is immutable: create a new Artifact for a new release"
        )])
    );

    let mut relabelled = stored.clone();
    relabelled["metadata"]["labels"] = json!({"team": "shop"});
    assert_eq!(check(&schema, relabelled.clone(), Some(&stored)), Ok(relabelled));
    Ok(())
}

#[test]
fn a_semver_artifact_needs_a_semantic_version() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["version"] = json!("1.4");
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![error(
            "spec.version",
            "FieldValueInvalid",
            "spec.version: Invalid value: \"object\": version must be a semantic version such as 1.4.2 when versionScheme is SemVer"
        )])
    );
    let mut opaque = artifact();
    opaque["spec"]["version"] = json!("sha-abc1234");
    opaque["spec"]["versionScheme"] = json!("Opaque");
    assert!(check(&artifacts()?, opaque, None).is_ok());
    Ok(())
}

#[test]
fn an_error_that_blocks_the_cel_rules_stands_in_for_them() -> anyhow::Result<()> {
    let semver = error(
        "spec.version",
        "FieldValueInvalid",
        "spec.version: Invalid value: \"object\": version must be a semantic version such as 1.4.2 when versionScheme \
         is SemVer",
    );
    // A missing field blocks the rules: a version the semantic-version rule
    // refuses gets the same answer as one it accepts.
    let without_application = |version: &str| {
        let mut object = artifact();
        object["spec"]["version"] = json!(version);
        object["spec"]
            .as_object_mut()
            .map(|spec| spec.remove("application"));
        object
    };
    let schema = artifacts()?;
    let refused = check(&schema, without_application("1.4"), None);
    assert_eq!(refused, check(&schema, without_application("1.4.2"), None));
    assert_eq!(
        refused.err().and_then(|errors| errors.last().cloned()),
        Some(rules_not_checked())
    );
    // A value not matching its pattern does not: the rule runs and fails too.
    let mut unmatched = artifact();
    unmatched["spec"]["version"] = json!("1.4");
    unmatched["spec"]["images"][0]["digest"] = json!("sha256:zz");
    assert_eq!(
        check(&artifacts()?, unmatched, None),
        Err(vec![
            error(
                "spec.images[0].digest",
                "FieldValueInvalid",
                "spec.images[0].digest: Invalid value: \"sha256:zz\": spec.images[0].digest in body should match \
                 '^sha256:[a-f0-9]{64}$'"
            ),
            semver.clone()
        ])
    );
    // Neither does an invalid value in metadata; a missing name does.
    let stored = {
        let mut object = artifact();
        object["spec"]["version"] = json!("1.4");
        artifacts()?.normalize(&mut object);
        object
    };
    let bad_label = error(
        "metadata.labels",
        "FieldValueInvalid",
        "metadata.labels: Invalid value: \"-\": a valid label must be an empty string or consist of alphanumeric \
         characters",
    );
    assert_eq!(
        artifacts()?.validate(&stored, None, std::slice::from_ref(&bad_label)),
        Err(vec![semver])
    );
    let no_name = error(
        "metadata.name",
        "FieldValueRequired",
        "metadata.name: Required value: name or generateName is required",
    );
    assert_eq!(
        artifacts()?.validate(&stored, None, &[no_name]),
        Err(vec![rules_not_checked()])
    );
    Ok(())
}

#[test]
fn without_cel_rules_no_error_stands_in_for_them() -> anyhow::Result<()> {
    let schema = StructuralSchema::new(&json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}}
        }
    }))
    .map_err(anyhow::Error::msg)?;
    assert_eq!(
        check(&schema, json!({"spec": {}}), None),
        Err(vec![error(
            "spec.size",
            "FieldValueRequired",
            "spec.size: Required value"
        )])
    );
    Ok(())
}

#[test]
fn an_item_rule_with_a_field_path_reports_on_that_field() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["images"][0]["image"] = json!(format!("registry.example.com/shop/backend@{DIGEST}"));
    object["spec"]["images"][0]["digest"] = json!(DIGEST.replace("0123", "4567"));
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![error(
            "spec.images[0].digest",
            "FieldValueInvalid",
            "spec.images[0].digest: Invalid value: \"object\": digest must equal the digest in image when image is pinned by digest"
        )])
    );
    Ok(())
}

#[test]
fn unknown_fields_are_pruned_but_metadata_is_kept() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["colour"] = json!("blue");
    object["spec"]["images"][0]["extra"] = json!({"a": 1});
    object["status"] = json!({"images": [], "whatever": true});
    object["metadata"]["labels"] = json!({"team": "shop"});
    object["surprise"] = json!(1);
    let stored = check(&artifacts()?, object, None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut expected = artifact();
    expected["spec"]["versionScheme"] = json!("SemVer");
    expected["status"] = json!({"images": []});
    expected["metadata"]["labels"] = json!({"team": "shop"});
    assert_eq!(stored, expected);
    Ok(())
}

#[test]
fn nulls_stay_where_nullable_and_go_where_not() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["source"]["buildId"] = json!(null);
    object["spec"]["images"][0]["digest"] = json!(null);
    object["spec"]["compatibility"] = json!(null);
    let stored = check(&artifacts()?, object, None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(stored["spec"]["source"]["buildId"], json!(null));
    assert_eq!(stored["spec"]["images"][0]["digest"], json!(null));
    assert_eq!(stored["spec"].get("compatibility"), None);
    Ok(())
}

#[test]
fn environment_defaults_fill_missing_fields_and_nested_defaults() -> anyhow::Result<()> {
    let schema = environments()?;
    let object = json!({
        "apiVersion": "hoist.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": "prod", "namespace": "shop"},
        "spec": {"gates": {"approval": {"users": ["alice"]}}, "historyLimit": null}
    });
    let stored = check(&schema, object, None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(
        stored["spec"],
        json!({
            "autoPromote": false,
            "gates": {"approval": {"users": ["alice"], "forbidSelfApproval": false, "minApprovals": 1, "required": "Always"}},
            "historyLimit": 20,
            "rollback": {"automatic": false}
        })
    );
    Ok(())
}

#[test]
fn numeric_bounds_are_reported_with_the_limit() -> anyhow::Result<()> {
    let object = json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "prod"}, "spec": {"historyLimit": 101}});
    assert_eq!(
        check(&environments()?, object, None),
        Err(vec![error(
            "spec.historyLimit",
            "FieldValueInvalid",
            "spec.historyLimit: Invalid value: 101: spec.historyLimit in body should be less than or equal to 100"
        )])
    );
    Ok(())
}

#[test]
fn a_duplicate_key_in_a_map_list_is_reported() -> anyhow::Result<()> {
    let mut object = artifact();
    object["spec"]["images"][1]["component"] = json!("backend");
    assert_eq!(
        check(&artifacts()?, object, None),
        Err(vec![error(
            "spec.images[1]",
            "FieldValueDuplicate",
            "spec.images[1]: Duplicate value: {\"component\":\"backend\"}"
        )])
    );
    Ok(())
}

#[test]
fn a_duplicate_value_in_a_set_list_is_reported() -> anyhow::Result<()> {
    let object = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "prod"},
        "spec": {"upstream": ["dev", "staging", "dev", "dev"]}
    });
    assert_eq!(
        check(&environments()?, object, None),
        Err(vec![error(
            "spec.upstream[2]",
            "FieldValueDuplicate",
            "spec.upstream[2]: Duplicate value: \"dev\""
        )])
    );
    Ok(())
}

fn rollout_schema() -> anyhow::Result<StructuralSchema> {
    StructuralSchema::new(&json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "maxSurge": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "steps": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "weight": {"type": "integer"}},
                            "x-kubernetes-validations": [
                                {"rule": "self.weight >= oldSelf.weight", "message": "weight may only grow", "reason": "FieldValueForbidden"}
                            ]
                        }
                    }
                }
            }
        }
    }))
    .map_err(anyhow::Error::msg)
}

#[test]
fn int_or_string_accepts_both_and_nothing_else() -> anyhow::Result<()> {
    let schema = rollout_schema()?;
    assert!(check(&schema, json!({"spec": {"maxSurge": 1}}), None).is_ok());
    assert!(check(&schema, json!({"spec": {"maxSurge": "25%"}}), None).is_ok());
    assert_eq!(
        check(&schema, json!({"spec": {"maxSurge": true}}), None),
        Err(vec![
            error(
                "spec.maxSurge",
                "FieldValueTypeInvalid",
                "spec.maxSurge: Invalid value: \"boolean\": spec.maxSurge in body must be of type integer,string: \"boolean\""
            ),
            error(
                "spec.maxSurge",
                "FieldValueInvalid",
                "spec.maxSurge: Invalid value: \"\": \"spec.maxSurge\" must validate at least one schema (anyOf)"
            ),
            rules_not_checked(),
        ])
    );
    Ok(())
}

#[test]
fn preserve_unknown_fields_keeps_everything_below() -> anyhow::Result<()> {
    let object = json!({"spec": {"extra": {"a": {"b": [1, {"c": null}]}}}});
    assert_eq!(check(&rollout_schema()?, object.clone(), None), Ok(object));
    Ok(())
}

#[test]
fn transition_rules_in_map_list_items_compare_items_with_the_same_key() -> anyhow::Result<()> {
    let schema = rollout_schema()?;
    let old = json!({"spec": {"steps": [{"name": "a", "weight": 10}, {"name": "b", "weight": 50}]}});
    let reordered = json!({"spec": {"steps": [{"name": "b", "weight": 50}, {"name": "c", "weight": 1}, {"name": "a", "weight": 20}]}});
    assert_eq!(check(&schema, reordered.clone(), Some(&old)), Ok(reordered));

    let shrunk = json!({"spec": {"steps": [{"name": "b", "weight": 40}, {"name": "a", "weight": 10}]}});
    assert_eq!(
        check(&schema, shrunk, Some(&old)),
        Err(vec![error(
            "spec.steps[0]",
            "FieldValueForbidden",
            "spec.steps[0]: Forbidden: weight may only grow"
        )])
    );
    Ok(())
}

#[test]
fn a_rule_that_does_not_compile_refuses_the_schema() {
    let schema =
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "m"}]});
    assert!(
        StructuralSchema::new(&schema)
            .is_err_and(|e| e.starts_with("invalid x-kubernetes-validations rule:"))
    );
}

#[test]
fn list_and_map_types_come_from_the_schema_and_object_meta() -> anyhow::Result<()> {
    let schema = artifacts()?;
    assert_eq!(
        schema.list_type(&["spec", "images"]),
        ListType::Map(vec!["component".to_owned()])
    );
    assert_eq!(
        schema.list_type(&["status", "conditions"]),
        ListType::Map(vec!["type".to_owned()])
    );
    assert_eq!(
        schema.list_type(&["spec", "images", "[]", "image"]),
        ListType::Atomic
    );
    assert_eq!(schema.list_type(&["metadata", "finalizers"]), ListType::Set);
    assert_eq!(
        schema.list_type(&["metadata", "ownerReferences"]),
        ListType::Map(vec!["uid".to_owned()])
    );
    assert_eq!(environments()?.list_type(&["spec", "upstream"]), ListType::Set);
    assert_eq!(
        environments()?.list_type(&["spec", "gates", "approval", "users"]),
        ListType::Atomic
    );
    assert_eq!(schema.map_type(&["spec"]), MapType::Struct);
    assert_eq!(schema.map_type(&["metadata", "labels"]), MapType::Granular);
    assert_eq!(
        environments()?.map_type(&["spec", "config", "[]", "data"]),
        MapType::Granular
    );
    Ok(())
}

#[test]
fn a_compiled_schema_can_be_shared_between_server_tasks() {
    fn shareable<T: Send + Sync>() {}
    shareable::<StructuralSchema>();
}
