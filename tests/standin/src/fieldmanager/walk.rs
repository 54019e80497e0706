//! Typed walks over objects, after structured-merge-diff's `typed` package:
//! the field set of an applied configuration, the comparison of two objects,
//! the merge of a configuration into a live object, and item removal.

use serde_json::{Map, Value};

use super::TypeInfo;
use super::fieldset::{FieldSet, Path, PathElement};
use crate::schema::{ListType, MapType};

/// The type path of a value: field names, `[]` for list items.
#[derive(Default, Clone)]
struct TypePath(Vec<String>);

impl TypePath {
    fn child(&self, element: &PathElement) -> TypePath {
        let mut out = self.clone();
        out.0.push(match element {
            PathElement::Field(name) => name.clone(),
            PathElement::Key(_) | PathElement::Value(_) | PathElement::Index(_) => "[]".to_owned(),
        });
        out
    }

    fn list_type(&self, types: &dyn TypeInfo) -> ListType {
        let path: Vec<&str> = self.0.iter().map(String::as_str).collect();
        types.list_type(&path)
    }

    fn map_type(&self, types: &dyn TypeInfo) -> MapType {
        let path: Vec<&str> = self.0.iter().map(String::as_str).collect();
        types.map_type(&path)
    }
}

/// The type path of an object path.
pub(crate) fn type_path_of(path: &[PathElement]) -> Vec<String> {
    path.iter()
        .fold(TypePath::default(), |tp, element| tp.child(element))
        .0
}

/// The path element of a list item: its key fields in a `map` list, its
/// value in a `set`, its position otherwise.
fn item_element(list_type: &ListType, index: usize, item: &Value) -> PathElement {
    match list_type {
        ListType::Map(keys) => {
            let mut fields: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            PathElement::Key(fields)
        }
        ListType::Set => PathElement::Value(item.clone()),
        ListType::Atomic => PathElement::Index(index),
    }
}

/// The items of an associative list by path element, first occurrence wins.
fn index_items<'v>(list_type: &ListType, items: &'v [Value]) -> Vec<(PathElement, &'v Value)> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let element = item_element(list_type, i, item);
        if !out.iter().any(|(seen, _)| *seen == element) {
            out.push((element, item));
        }
    }
    out
}

fn lookup<'v>(indexed: &[(PathElement, &'v Value)], element: &PathElement) -> Option<&'v Value> {
    indexed.iter().find(|(e, _)| e == element).map(|(_, v)| *v)
}

/// The fields an applied configuration sets (`ToFieldSet`): every scalar,
/// atomic list or map, `null` and empty object, every list item, and every
/// entry of a map whose keys are data.
pub(crate) fn to_field_set(config: &Value, types: &dyn TypeInfo) -> FieldSet {
    let mut set = FieldSet::default();
    visit(config, &mut Vec::new(), &TypePath::default(), types, &mut set);
    set
}

fn visit(value: &Value, path: &mut Path, tpath: &TypePath, types: &dyn TypeInfo, set: &mut FieldSet) {
    match value {
        Value::Object(map) => {
            let map_type = tpath.map_type(types);
            if map_type == MapType::Atomic {
                set.insert(path);
                return;
            }
            for (key, child) in map {
                let element = PathElement::Field(key.clone());
                let child_tpath = tpath.child(&element);
                path.push(element);
                visit(child, path, &child_tpath, types, set);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || map_type == MapType::Granular {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let list_type = tpath.list_type(types);
            if list_type == ListType::Atomic {
                set.insert(path);
                return;
            }
            for (element, item) in index_items(&list_type, items) {
                let child_tpath = tpath.child(&element);
                path.push(element);
                visit(item, path, &child_tpath, types, set);
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
}

/// What changed from `lhs` to `rhs`, as structured-merge-diff's `Compare`.
#[derive(Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Drops paths the field manager does not track.
    pub(crate) fn without(self, untracked: impl Fn(&mut FieldSet)) -> Comparison {
        let mut c = self;
        untracked(&mut c.added);
        untracked(&mut c.modified);
        untracked(&mut c.removed);
        c
    }
}

pub(crate) fn compare(lhs: &Value, rhs: &Value, types: &dyn TypeInfo) -> Comparison {
    let mut comparison = Comparison::default();
    compare_at(
        Some(lhs),
        Some(rhs),
        &mut Vec::new(),
        &TypePath::default(),
        types,
        &mut comparison,
    );
    comparison
}

fn compare_leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(l), Some(r)) if l != r => out.modified.insert(path),
        _ => {}
    }
}

fn is_empty_container(value: Option<&Value>) -> bool {
    match value {
        None => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}

fn compare_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    tpath: &TypePath,
    types: &dyn TypeInfo,
    out: &mut Comparison,
) {
    let both_empty = is_empty_container(lhs) && is_empty_container(rhs);
    match (lhs, rhs) {
        (None | Some(Value::Object(_)), None | Some(Value::Object(_))) => {
            if tpath.map_type(types) == MapType::Atomic || both_empty {
                return compare_leaf(lhs, rhs, path, out);
            }
            let empty = Map::new();
            let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let element = PathElement::Field(key.clone());
                let child_tpath = tpath.child(&element);
                path.push(element);
                compare_at(l.get(key), r.get(key), path, &child_tpath, types, out);
                path.pop();
            }
        }
        (None | Some(Value::Array(_)), None | Some(Value::Array(_))) => {
            let list_type = tpath.list_type(types);
            if list_type == ListType::Atomic || both_empty {
                return compare_leaf(lhs, rhs, path, out);
            }
            let l = index_items(
                &list_type,
                lhs.and_then(Value::as_array).map_or(&[], Vec::as_slice),
            );
            let r = index_items(
                &list_type,
                rhs.and_then(Value::as_array).map_or(&[], Vec::as_slice),
            );
            let mut elements: Vec<&PathElement> = l.iter().chain(&r).map(|(e, _)| e).collect();
            elements.sort();
            elements.dedup();
            for element in elements {
                let child_tpath = tpath.child(element);
                path.push(element.clone());
                compare_at(
                    lookup(&l, element),
                    lookup(&r, element),
                    path,
                    &child_tpath,
                    types,
                    out,
                );
                path.pop();
            }
        }
        _ => return compare_leaf(lhs, rhs, path, out),
    }
    // A container that appears or disappears is itself added or removed.
    match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        _ => {}
    }
}

/// Merges `config` into `live` (`Merge` with the configuration winning):
/// objects field by field, associative lists item by item, the rest replaced.
pub(crate) fn merge(live: &Value, config: &Value, types: &dyn TypeInfo) -> Value {
    merge_at(live, config, &TypePath::default(), types)
}

fn merge_at(live: &Value, config: &Value, tpath: &TypePath, types: &dyn TypeInfo) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(r)) if tpath.map_type(types) != MapType::Atomic => {
            let mut out = l.clone();
            for (key, value) in r {
                let child_tpath = tpath.child(&PathElement::Field(key.clone()));
                let merged = match l.get(key) {
                    Some(existing) => merge_at(existing, value, &child_tpath, types),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(r)) => {
            let list_type = tpath.list_type(types);
            if list_type == ListType::Atomic {
                return config.clone();
            }
            Value::Array(merge_items(&list_type, l, r, tpath, types))
        }
        _ => config.clone(),
    }
}

/// structured-merge-diff's item order: live items the configuration does not
/// mention stay where they are, shared items follow the configuration's order.
fn merge_items(
    list_type: &ListType,
    live: &[Value],
    config: &[Value],
    tpath: &TypePath,
    types: &dyn TypeInfo,
) -> Vec<Value> {
    let lhs = index_items(list_type, live);
    let rhs = index_items(list_type, config);
    let mut shared = rhs.iter().map(|(e, _)| e).filter(|e| lookup(&lhs, e).is_some());
    let mut next_shared = shared.next();
    let mut merged_rhs: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let merge_item = |element: &PathElement, config_item: &Value| {
        let child_tpath = tpath.child(element);
        match lookup(&lhs, element) {
            Some(existing) => merge_at(existing, config_item, &child_tpath, types),
            None => config_item.clone(),
        }
    };
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let (element, _) = &lhs[li];
            if *element == rhs[ri].0 {
                out.push(merge_item(element, rhs[ri].1));
                merged_rhs.push(element);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            let in_rhs = lookup(&rhs, element).is_some();
            if in_rhs && next_shared.is_some_and(|next| next != element) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let (element, item) = &lhs[li];
            if lookup(&rhs, element).is_none() {
                out.push((*item).clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(&element) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let (element, item) = &rhs[ri];
            out.push(merge_item(element, item));
            merged_rhs.push(element);
            ri += 1;
            if next_shared == Some(element) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the value at `path` from `object`, if it is there.
pub(crate) fn remove(object: &mut Value, path: &[PathElement], types: &dyn TypeInfo) {
    remove_at(object, path, &TypePath::default(), types);
}

fn remove_at(value: &mut Value, path: &[PathElement], tpath: &TypePath, types: &dyn TypeInfo) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let child_tpath = tpath.child(first);
    match (value, first) {
        (Value::Object(map), PathElement::Field(name)) => {
            if rest.is_empty() {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                remove_at(child, rest, &child_tpath, types);
            }
        }
        (Value::Array(items), element) => {
            let list_type = tpath.list_type(types);
            let position = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(&list_type, i, item) == *element);
            let Some(position) = position else { return };
            if rest.is_empty() {
                items.remove(position);
            } else {
                remove_at(&mut items[position], rest, &child_tpath, types);
            }
        }
        _ => {}
    }
}
