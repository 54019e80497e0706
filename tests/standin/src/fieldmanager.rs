//! Field ownership: `metadata.managedFields` and server-side apply.
//!
//! CONTRACT (used by the server; bodies are filled in by the field-manager work):

use serde_json::Value;

use crate::schema::ListType;

/// Tells the field manager how lists at a path merge.
pub trait TypeInfo {
    /// `path`: field names from the object root, `[]` for a list element.
    fn list_type(&self, path: &[&str]) -> ListType;
}

/// A field owned by another manager whose value an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    /// Field path as the API server prints it, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
}

/// Server-side apply of `applied` over `live` by `manager`.
///
/// Returns the new object with `metadata.managedFields` updated, or the
/// conflicts (unless `force`, which takes the fields over).
/// `subresource` is `Some("status")` for applies to `/status`.
/// `ignored` are top-level fields this endpoint does not own (`status` on the
/// main resource; everything but `status` on `/status`).
#[allow(clippy::too_many_arguments, reason = "the contract's signature")]
pub fn apply(
    _live: Option<&Value>,
    _applied: &Value,
    _manager: &str,
    _force: bool,
    _subresource: Option<&str>,
    _ignored: &[&str],
    _types: &dyn TypeInfo,
    _now: &str,
) -> Result<Value, Vec<Conflict>> {
    let mut merged = _live.cloned().unwrap_or(Value::Null);
    merge_over(&mut merged, _applied);
    Ok(merged)
}

fn merge_over(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(target), Value::Object(applied)) => {
            for (key, value) in applied {
                merge_over(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (target, applied) => *target = applied.clone(),
    }
}

/// Records a non-apply write (create, update, merge/JSON patch) by `manager`:
/// fields it changed become its own (operation `Update`) and leave other
/// managers' sets. Mutates `new`'s `metadata.managedFields`.
pub fn record_update(
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _subresource: Option<&str>,
    _ignored: &[&str],
    _types: &dyn TypeInfo,
    _now: &str,
) {
}
