//! What the apiserver does to a custom resource before validating it, in its
//! order: prune unknown fields, drop non-nullable `null`s that have no
//! default, apply defaults (`structuralpruning` and `structuraldefaulting`).

use serde_json::{Map, Value};

/// Fields every resource (the root, and embedded resources) keeps whatever
/// its schema says; their content is ObjectMeta's business, not the CRD's.
const RESOURCE_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Where the values of an object's undeclared keys go.
enum Additional<'s> {
    Schema(&'s Value),
    Anything,
    Nothing,
}

fn additional(schema: &Value) -> Additional<'_> {
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Additional::Anything,
        Some(a @ Value::Object(_)) => Additional::Schema(a),
        _ => Additional::Nothing,
    }
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn child_schema<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    properties(schema)
        .and_then(|p| p.get(key))
        .or(match additional(schema) {
            Additional::Schema(a) => Some(a),
            Additional::Anything | Additional::Nothing => None,
        })
}

fn is_nullable(schema: &Value) -> bool {
    flag(schema, "nullable")
}

/// Removes the fields the schema does not declare. `is_resource` keeps the
/// root's (or an embedded resource's) `apiVersion`, `kind` and `metadata`.
pub(super) fn prune(value: &mut Value, schema: &Value, is_resource: bool) {
    match value {
        Value::Object(map) => {
            let keep_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let is_resource = is_resource || flag(schema, "x-kubernetes-embedded-resource");
            map.retain(|key, child| {
                if is_resource && RESOURCE_FIELDS.contains(&key.as_str()) {
                    return true;
                }
                if let Some(declared) = properties(schema).and_then(|p| p.get(key)) {
                    prune(child, declared, false);
                    return true;
                }
                match additional(schema) {
                    Additional::Schema(a) => {
                        prune(child, a, false);
                        true
                    }
                    Additional::Anything => true,
                    Additional::Nothing => keep_unknown,
                }
            });
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

/// Drops `null` values of declared fields that are neither nullable nor
/// defaulted: the apiserver treats them as absent rather than refusing them.
pub(super) fn drop_non_nullable_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                !child.is_null()
                    || child_schema(schema, key).is_none_or(|s| is_nullable(s) || s.get("default").is_some())
            });
            for (key, child) in map.iter_mut() {
                if let Some(s) = child_schema(schema, key) {
                    drop_non_nullable_nulls(child, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    drop_non_nullable_nulls(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Whether a `null` at this schema is replaced by the schema's default.
fn defaulted_null<'s>(value: &Value, schema: &'s Value) -> Option<&'s Value> {
    schema
        .get("default")
        .filter(|_| value.is_null() && !is_nullable(schema))
}

/// Fills missing (or non-nullable `null`) fields with their `default`, then
/// descends, so defaults inside defaults and inside list items apply too.
pub(super) fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(declared) = properties(schema) {
                for (key, field_schema) in declared {
                    let Some(default) = field_schema.get("default") else {
                        continue;
                    };
                    let missing = map
                        .get(key)
                        .is_none_or(|v| v.is_null() && !is_nullable(field_schema));
                    if missing {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                let Some(s) = child_schema(schema, key) else {
                    continue;
                };
                if let Some(default) = defaulted_null(child, s) {
                    *child = default.clone();
                }
                apply_defaults(child, s);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    if let Some(default) = defaulted_null(item, item_schema) {
                        *item = default.clone();
                    }
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}
