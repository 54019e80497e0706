//! Checks of the Kubernetes extensions that JSON Schema has no keyword for:
//! uniqueness in `x-kubernetes-list-type: set` and `map` lists
//! (apiextensions' `listtype` validation) and the `apiVersion`/`kind` an
//! `x-kubernetes-embedded-resource` object must carry.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::field::{self, BadValue};
use super::{FieldError, ListType, list_type_of};

/// Walks `value` along `schema`, appending the errors found.
pub(super) fn validate(value: &Value, schema: &Value, errors: &mut Vec<FieldError>) {
    walk(value, schema, "", errors);
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            if schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true)
            {
                check_embedded_resource(map, path, errors);
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                if let Some(declared) = properties.and_then(|p| p.get(key)) {
                    walk(child, declared, &child_path(path, key), errors);
                } else if let Some(additional) = additional {
                    walk(child, additional, &format!("{path}[{key}]"), errors);
                }
            }
        }
        Value::Array(items) => {
            match list_type_of(schema) {
                ListType::Set => check_set(items, path, errors),
                ListType::Map(keys) => check_map(items, &keys, schema, path, errors),
                ListType::Atomic => {}
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// Reports the second occurrence of each repeated value, as the apiserver does.
fn check_set(items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let mut seen: Vec<(&Value, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match seen.iter_mut().find(|(v, _)| *v == item) {
            Some((_, times)) => {
                *times += 1;
                if *times == 2 {
                    errors.push(field::duplicate(&format!("{path}[{i}]"), BadValue::Json(item)));
                }
            }
            None => seen.push((item, 1)),
        }
    }
}

/// Reports every item whose key repeats an earlier item's key, with the key
/// fields as the value. A missing key field counts as its default (or null).
fn check_map(items: &[Value], keys: &[String], schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let Some(object) = item.as_object() else {
            if !item.is_null() {
                errors.push(field::invalid(
                    &format!("{path}[{i}]"),
                    BadValue::Json(item),
                    "must be an object for an array of list-type map",
                ));
            }
            continue;
        };
        let key: Map<String, Value> = keys
            .iter()
            .map(|name| {
                let default = schema.pointer(&format!("/items/properties/{name}/default"));
                (
                    name.clone(),
                    object.get(name).or(default).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let key = Value::Object(key);
        if !seen.insert(key.to_string()) {
            errors.push(field::duplicate(&format!("{path}[{i}]"), BadValue::Json(&key)));
        }
    }
}

fn check_embedded_resource(map: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for name in ["apiVersion", "kind"] {
        let field_path = child_path(path, name);
        match map.get(name) {
            None => errors.push(field::required(&field_path, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                errors.push(field::invalid(
                    &field_path,
                    BadValue::Str(""),
                    "must not be empty",
                ));
            }
            Some(Value::String(_)) => {}
            Some(other) => errors.push(field::invalid(
                &field_path,
                BadValue::Json(other),
                "must be a string",
            )),
        }
    }
}
