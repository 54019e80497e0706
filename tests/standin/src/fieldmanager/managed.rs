//! `metadata.managedFields`: one entry per (manager, operation, subresource),
//! decoded into field sets and encoded back in the apiserver's order.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, FieldsV1Error};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ManagerKey {
    pub(crate) manager: String,
    /// `Apply` or `Update`.
    pub(crate) operation: String,
    pub(crate) subresource: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) set: FieldSet,
}

pub(crate) type Managers = BTreeMap<ManagerKey, Entry>;

/// Why `metadata.managedFields` could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagedFieldsError {
    #[error("managedFields must be a list of objects")]
    NotAList,
    #[error("managedFields entry {0} has no manager or operation")]
    Unnamed(usize),
    #[error("managedFields entry {index} has invalid fieldsV1")]
    Fields {
        index: usize,
        #[source]
        source: FieldsV1Error,
    },
}

fn string(entry: &Map<String, Value>, name: &str) -> Option<String> {
    entry.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The managers recorded in `object`; entries of the same manager are merged.
pub(crate) fn decode(object: &Value) -> Result<Managers, ManagedFieldsError> {
    let mut managers = Managers::new();
    let Some(entries) = object.pointer("/metadata/managedFields") else {
        return Ok(managers);
    };
    let entries = entries.as_array().ok_or(ManagedFieldsError::NotAList)?;
    for (index, entry) in entries.iter().enumerate() {
        let entry = entry.as_object().ok_or(ManagedFieldsError::NotAList)?;
        let (Some(manager), Some(operation)) = (string(entry, "manager"), string(entry, "operation")) else {
            return Err(ManagedFieldsError::Unnamed(index));
        };
        let set = match entry.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)
                .map_err(|source| ManagedFieldsError::Fields { index, source })?,
            None => FieldSet::default(),
        };
        let key = ManagerKey {
            manager,
            operation,
            subresource: string(entry, "subresource"),
        };
        let decoded = Entry {
            api_version: string(entry, "apiVersion").unwrap_or_default(),
            time: string(entry, "time"),
            set,
        };
        let merged = match managers.remove(&key) {
            Some(previous) => Entry {
                set: previous.set.union(&decoded.set),
                ..decoded
            },
            None => decoded,
        };
        managers.insert(key, merged);
    }
    Ok(managers)
}

/// Whether the client asked to clear the managed fields: `[{}]`.
pub(crate) fn is_reset(object: &Value) -> bool {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| entries.len() == 1 && entries[0].as_object().is_some_and(Map::is_empty))
}

/// Writes `managers` into `object`'s metadata, sorted as the apiserver sorts
/// them (operation, time, manager, apiVersion, subresource); no entries, no
/// field.
pub(crate) fn encode(object: &mut Value, managers: &Managers) {
    let mut entries: Vec<(&ManagerKey, &Entry)> =
        managers.iter().filter(|(_, e)| !e.set.is_empty()).collect();
    entries.sort_by(|(ka, ea), (kb, eb)| {
        (
            &ka.operation,
            &ea.time,
            &ka.manager,
            &ea.api_version,
            &ka.subresource,
        )
            .cmp(&(
                &kb.operation,
                &eb.time,
                &kb.manager,
                &eb.api_version,
                &kb.subresource,
            ))
    });
    let encoded: Vec<Value> = entries
        .into_iter()
        .map(|(key, entry)| {
            let mut out = json!({
                "manager": key.manager,
                "operation": key.operation,
                "apiVersion": entry.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": entry.set.to_fields_v1(),
            });
            if let Some(time) = &entry.time {
                out["time"] = json!(time);
            }
            if let Some(subresource) = &key.subresource {
                out["subresource"] = json!(subresource);
            }
            out
        })
        .collect();
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object.entry("metadata").or_insert_with(|| json!({}));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    if encoded.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".to_owned(), Value::Array(encoded));
    }
}
