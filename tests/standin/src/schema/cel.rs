//! `x-kubernetes-validations` CEL rules, evaluated by `kube-cel` and reported
//! as apiextensions' CEL validator reports them (1.33 wording: the value
//! shown is the type of the node holding the rule).
//!
//! kube-cel pairs old and new list items by index. The apiserver pairs them
//! by key in `map` lists, by value in `set` lists and not at all in atomic
//! lists, so a transition rule inside a list item must not see whatever old
//! item happened to sit at the same index. Transition-rule failures inside
//! list items from the whole-object pass are therefore dropped, and those
//! rules are evaluated again item by item against the correctly paired old
//! item.

use std::collections::HashSet;

use kube_cel::{CompiledSchema, ErrorKind, ValidationError};
use serde_json::Value;

use super::field::{self, BadValue};
use super::{FieldError, ListType, list_type_of};

/// The first rule in the schema that does not compile, if any.
pub(super) fn first_compilation_error(compiled: &CompiledSchema) -> Option<String> {
    if let Some(error) = compiled.compilation_errors().first() {
        return Some(error.to_string());
    }
    children(compiled).find_map(first_compilation_error)
}

fn children(compiled: &CompiledSchema) -> impl Iterator<Item = &CompiledSchema> {
    compiled
        .properties
        .values()
        .chain(compiled.items.as_deref())
        .chain(compiled.additional_properties.as_deref())
        .chain(&compiled.all_of)
        .chain(&compiled.one_of)
        .chain(&compiled.any_of)
}

fn collect_transition_rules<'c>(compiled: &'c CompiledSchema, rules: &mut HashSet<&'c str>) {
    for result in compiled.validations.iter().flatten() {
        if result.is_transition_rule {
            rules.insert(result.rule.rule.as_str());
        }
    }
    for child in children(compiled) {
        collect_transition_rules(child, rules);
    }
}

/// The CEL rule failures for `object` (and `old` on update).
pub(super) fn validate(
    compiled: &CompiledSchema,
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut transition_rules = HashSet::new();
    collect_transition_rules(compiled, &mut transition_rules);
    let whole = CelPass {
        schema,
        transition_rules: &transition_rules,
    };
    let mut errors = Vec::new();
    for error in failures(compiled, object, old) {
        let in_list_item = error.field_path.contains('[');
        if old.is_some() && in_list_item && transition_rules.contains(error.rule.as_str()) {
            continue;
        }
        errors.push(whole.to_field_error(&error, ""));
    }
    if let Some(old) = old
        && !transition_rules.is_empty()
    {
        whole.pair_list_items(compiled, schema, object, old, "", &mut errors);
    }
    errors
}

fn failures(compiled: &CompiledSchema, object: &Value, old: Option<&Value>) -> Vec<ValidationError> {
    kube_cel::validate_compiled(compiled, object, old)
        .err()
        .map(|e| e.into_vec())
        .unwrap_or_default()
}

struct CelPass<'a> {
    schema: &'a Value,
    transition_rules: &'a HashSet<&'a str>,
}

impl CelPass<'_> {
    /// Re-runs transition rules of list items whose old item the apiserver
    /// would pair with them, descending through objects present in both.
    fn pair_list_items(
        &self,
        compiled: &CompiledSchema,
        schema: &Value,
        new: &Value,
        old: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        match (new, old) {
            (Value::Object(new_map), Value::Object(old_map)) => {
                for (key, new_child) in new_map {
                    let Some(old_child) = old_map.get(key) else {
                        continue;
                    };
                    let declared = compiled
                        .properties
                        .get(key)
                        .zip(schema.pointer(&format!("/properties/{}", escape(key))));
                    let child = declared.or_else(|| {
                        compiled
                            .additional_properties
                            .as_deref()
                            .zip(schema.get("additionalProperties"))
                    });
                    if let Some((child_compiled, child_schema)) = child {
                        let child_path = if declared.is_some() {
                            join(path, key)
                        } else {
                            format!("{path}[{key}]")
                        };
                        self.pair_list_items(
                            child_compiled,
                            child_schema,
                            new_child,
                            old_child,
                            &child_path,
                            errors,
                        );
                    }
                }
            }
            (Value::Array(new_items), Value::Array(old_items)) => {
                let (Some(item_compiled), Some(item_schema)) =
                    (compiled.items.as_deref(), schema.get("items"))
                else {
                    return;
                };
                let list_type = list_type_of(schema);
                for (i, new_item) in new_items.iter().enumerate() {
                    let Some(old_item) = paired(&list_type, new_item, old_items) else {
                        continue;
                    };
                    let item_path = format!("{path}[{i}]");
                    for error in failures(item_compiled, new_item, Some(old_item)) {
                        let nested_list_item = error.field_path.contains('[');
                        if self.transition_rules.contains(error.rule.as_str()) && !nested_list_item {
                            errors.push(self.to_field_error(&error, &item_path));
                        }
                    }
                    self.pair_list_items(item_compiled, item_schema, new_item, old_item, &item_path, errors);
                }
            }
            _ => {}
        }
    }

    /// apiextensions' `fieldErrorForReason`, at `prefix` + kube-cel's path.
    fn to_field_error(&self, error: &ValidationError, prefix: &str) -> FieldError {
        let path = match error.field_path.as_str() {
            "" => prefix.to_owned(),
            rest if rest.starts_with(['.', '[']) && !prefix.is_empty() => format!("{prefix}{rest}"),
            rest if rest.starts_with('.') => rest[1..].to_owned(),
            rest => join(prefix, rest),
        };
        let node_type = rule_node_type(self.schema, &path, &error.rule);
        let value = BadValue::Str(node_type);
        if error.kind != ErrorKind::ValidationFailure {
            return field::invalid(&path, value, &error.message);
        }
        match error.reason.as_deref() {
            Some("FieldValueForbidden") => field::forbidden(&path, &error.message),
            Some("FieldValueRequired") => field::required(&path, &error.message),
            Some("FieldValueDuplicate") => field::duplicate(&path, value),
            _ => field::invalid(&path, value, &error.message),
        }
    }
}

/// The old item the apiserver pairs with `item`: same key fields in a `map`
/// list, an equal value in a `set`, none in an atomic list.
fn paired<'o>(list_type: &ListType, item: &Value, old_items: &'o [Value]) -> Option<&'o Value> {
    match list_type {
        ListType::Atomic => None,
        ListType::Set => old_items.iter().find(|old| *old == item),
        ListType::Map(keys) => old_items
            .iter()
            .find(|old| keys.iter().all(|k| old.get(k) == item.get(k))),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// JSON pointer escaping of one token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One step of a field path.
#[derive(PartialEq)]
enum Step {
    Field(String),
    Index,
}

fn steps(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            steps.push(Step::Field(name.to_owned()));
        }
        steps.extend(indexes.split('[').filter(|s| !s.is_empty()).map(|_| Step::Index));
    }
    steps
}

/// The `type` of the schema node holding `rule` whose (rule `fieldPath`
/// adjusted) error path is `path`; `""` when it cannot be found.
fn rule_node_type<'s>(schema: &'s Value, path: &str, rule: &str) -> &'s str {
    let path_steps = steps(path);
    let mut node = schema;
    for depth in 0..=path_steps.len() {
        let rules = node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for candidate in rules {
            if candidate.get("rule").and_then(Value::as_str) != Some(rule) {
                continue;
            }
            let field_path = candidate.get("fieldPath").and_then(Value::as_str).unwrap_or("");
            if steps(field_path) == path_steps[depth..] {
                return node.get("type").and_then(Value::as_str).unwrap_or("");
            }
        }
        let Some(step) = path_steps.get(depth) else {
            break;
        };
        let next = match step {
            Step::Index => node.get("items"),
            Step::Field(name) => node
                .get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object())),
        };
        match next {
            Some(next) => node = next,
            None => break,
        }
    }
    ""
}
