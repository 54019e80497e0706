//! Field ownership: `metadata.managedFields` and server-side apply, after
//! structured-merge-diff's `merge.Updater` and the apiserver's field manager.

mod builtin;
mod fieldset;
mod managed;
mod walk;

use serde_json::Value;

pub use self::builtin::BuiltinTypes;
use self::fieldset::{FieldSet, Path, PathElement};
use self::managed::{Entry, ManagerKey, Managers};
use crate::schema::{ListType, MapType, StructuralSchema};

/// Tells the field manager how lists at a path merge.
pub trait TypeInfo {
    /// `path`: field names from the object root, `[]` for a list element.
    fn list_type(&self, path: &[&str]) -> ListType;

    /// How the object at `path` merges; declared fields unless said otherwise.
    fn map_type(&self, _path: &[&str]) -> MapType {
        MapType::Struct
    }
}

impl TypeInfo for StructuralSchema {
    fn list_type(&self, path: &[&str]) -> ListType {
        StructuralSchema::list_type(self, path)
    }

    fn map_type(&self, path: &[&str]) -> MapType {
        StructuralSchema::map_type(self, path)
    }
}

/// A field owned by another manager whose value an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    /// Field path as the API server prints it, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
}

/// Top-level fields no manager owns.
const UNTRACKED_TOP_LEVEL: [&str; 2] = ["apiVersion", "kind"];

/// `metadata` fields the apiserver keeps for itself: never owned, and never
/// taken from an applied configuration.
const BOOKKEEPING_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

/// Removes what no manager may own: bookkeeping fields and the `ignored`
/// top-level fields of this endpoint.
fn strip_untracked(set: &mut FieldSet, ignored: &[&str]) {
    for name in UNTRACKED_TOP_LEVEL.iter().chain(ignored) {
        set.remove_tree(&[PathElement::Field((*name).to_owned())]);
    }
    let metadata = PathElement::Field("metadata".to_owned());
    for name in BOOKKEEPING_METADATA {
        set.remove_tree(&[metadata.clone(), PathElement::Field(name.to_owned())]);
    }
    // `metadata` itself is a structure, owned only through its fields.
    set.remove_member(&[metadata]);
}

fn is_untracked(path: &[PathElement], ignored: &[&str]) -> bool {
    match path {
        [PathElement::Field(top), ..]
            if UNTRACKED_TOP_LEVEL.contains(&top.as_str()) || ignored.contains(&top.as_str()) =>
        {
            true
        }
        [PathElement::Field(top)] => top == "metadata",
        [PathElement::Field(top), PathElement::Field(name), ..] => {
            top == "metadata" && BOOKKEEPING_METADATA.contains(&name.as_str())
        }
        _ => false,
    }
}

/// An applied configuration as it is merged: without the ignored top-level
/// fields and without the bookkeeping metadata the apiserver sets itself
/// (`name` and `namespace` stay: they name the object being created).
fn applicable(applied: &Value, ignored: &[&str]) -> Value {
    let mut config = applied.clone();
    if let Some(object) = config.as_object_mut() {
        for name in ignored {
            object.remove(*name);
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for name in BOOKKEEPING_METADATA
                .iter()
                .filter(|n| !matches!(**n, "name" | "namespace"))
            {
                metadata.remove(*name);
            }
        }
    }
    config
}

fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    out
}

fn api_version(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Server-side apply of `applied` over `live` by `manager`.
///
/// Returns the new object with `metadata.managedFields` updated, or the
/// conflicts (unless `force`, which takes the fields over).
/// `subresource` is `Some("status")` for applies to `/status`.
/// `ignored` are top-level fields this endpoint does not own (`status` on the
/// main resource; everything but `status` on `/status`).
#[allow(clippy::too_many_arguments)] // the contract the server is written against
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    ignored: &[&str],
    types: &dyn TypeInfo,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let live = live
        .cloned()
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    // Unreadable managed fields are dropped, as the apiserver does.
    let mut managers = managed::decode(&live).unwrap_or_default();
    let live = without_managed_fields(&live);
    let config = applicable(applied, ignored);
    let mut merged = walk::merge(&live, &config, types);

    let key = ManagerKey {
        manager: manager.to_owned(),
        operation: "Apply".to_owned(),
        subresource: subresource.map(str::to_owned),
    };
    let previous = managers.remove(&key);
    let mut applied_set = walk::to_field_set(&config, types);
    strip_untracked(&mut applied_set, ignored);

    if let Some(previous) = &previous {
        let owned = managers
            .values()
            .fold(applied_set.clone(), |owned, entry| owned.union(&entry.set));
        prune(&mut merged, &previous.set, &owned, ignored, types);
    }

    let comparison = walk::compare(&live, &merged, types).without(|set| strip_untracked(set, ignored));
    let changed = comparison.added.union(&comparison.modified);
    let mut conflicts = Vec::new();
    for (other, entry) in &managers {
        for path in entry.set.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: other.manager.clone(),
                field: fieldset::render(&path),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    for entry in managers.values_mut() {
        entry.set = entry.set.difference(&changed).difference(&comparison.removed);
    }

    let unchanged = previous.as_ref().is_some_and(|p| p.set == applied_set) && merged == live;
    let time = match previous {
        Some(previous) if unchanged => previous.time,
        _ => Some(now.to_owned()),
    };
    managers.insert(
        key,
        Entry {
            api_version: api_version(applied),
            time,
            set: applied_set,
        },
    );
    managed::encode(&mut merged, &managers);
    Ok(merged)
}

/// Removes from `merged` what the manager applied last time, no longer
/// applies, and nobody else owns: a field, or a list item with all its
/// content. Anything with an owned field below it stays.
fn prune(merged: &mut Value, previous: &FieldSet, owned: &FieldSet, ignored: &[&str], types: &dyn TypeInfo) {
    let mut candidates: Vec<Path> = Vec::new();
    for path in previous.paths() {
        // The declared fields leading to an applied field were applied too.
        for len in 1..=path.len() {
            let prefix = &path[..len];
            let is_member = len == path.len();
            let is_declared_field =
                matches!(prefix.last(), Some(PathElement::Field(_))) && declared_in_parent(prefix, types);
            if (is_member || is_declared_field) && !candidates.iter().any(|c| c.as_slice() == prefix) {
                candidates.push(prefix.to_vec());
            }
        }
    }
    candidates.sort_by_key(Vec::len);
    for path in candidates {
        if is_untracked(&path, ignored) || owned.contains(&path) || owned.has_below(&path) {
            continue;
        }
        walk::remove(merged, &path, types);
    }
}

/// Whether the last element of `path` is a declared field of its parent
/// object (rather than a map key).
fn declared_in_parent(path: &[PathElement], types: &dyn TypeInfo) -> bool {
    let parent = walk::type_path_of(&path[..path.len() - 1]);
    let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
    types.map_type(&parent) == MapType::Struct
}

/// Records a non-apply write (create, update, merge/JSON patch) by `manager`:
/// fields it changed become its own (operation `Update`) and leave other
/// managers' sets. Mutates `new`'s `metadata.managedFields`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    ignored: &[&str],
    types: &dyn TypeInfo,
    now: &str,
) {
    let old = old
        .cloned()
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    // The apiserver takes the request's managed fields on the main resource
    // (`[{}]` clears them), and the stored ones when the request has none,
    // or on a subresource.
    let from_request = if subresource.is_none() && managed::is_reset(new) {
        Some(Managers::new())
    } else if subresource.is_none() {
        managed::decode(new).ok().filter(|m| !m.is_empty())
    } else {
        None
    };
    let mut managers = from_request.unwrap_or_else(|| managed::decode(&old).unwrap_or_default());

    let comparison = walk::compare(&without_managed_fields(&old), &without_managed_fields(new), types)
        .without(|set| strip_untracked(set, ignored));
    let taken = comparison.added.union(&comparison.modified);
    for entry in managers.values_mut() {
        entry.set = entry.set.difference(&taken).difference(&comparison.removed);
    }
    if !taken.is_empty() {
        let key = ManagerKey {
            manager: manager.to_owned(),
            operation: "Update".to_owned(),
            subresource: subresource.map(str::to_owned),
        };
        let set = managers
            .remove(&key)
            .map_or_else(|| taken.clone(), |previous| previous.set.union(&taken));
        managers.insert(
            key,
            Entry {
                api_version: api_version(new),
                time: Some(now.to_owned()),
                set,
            },
        );
    }
    managed::encode(new, &managers);
}
