//! GitOps coexistence: telling when another field manager (Argo CD, Flux's
//! kustomize-controller, a person with `kubectl`) overwrote a field Hoist
//! pins on a workload, and whether to say so.
//!
//! Who wrote a field is read from `metadata.managedFields`: a server-side
//! apply with force, or an update, that changes a field takes it from its
//! owner, so the entry owning a pinned field whose value is not Hoist's
//! names who wrote it. Hoist re-pins either way (its apply is forced); the
//! fight is told in one `PinOverwritten` Event per change.
//!
//! What counts as an overwrite, so that Hoist's own writes never do:
//! - Hoist pinned the workload before (it has an entry of its own); the
//!   first pin of a workload someone else created takes its fields over
//!   silently.
//! - Hoist no longer owns the field: a field Hoist still owns with another
//!   value is Hoist's previous release, which a new pin replaces.
//! - For an image, Hoist still holds the container's list item (it keeps
//!   the shared `name` when another manager takes the image), so a
//!   container newly targeted is not taken for one overwritten.
//! - Another manager owns the field and the workload carries a value.
//!
//! Only the images and the two pod-template annotations are watched: the
//! labels are Hoist's bookkeeping for its watches, re-pinned silently.

#[cfg(test)]
mod tests;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::{Map, Value};

use crate::api::WorkloadKind;
use crate::core::workload::{ANNOTATION_ARTIFACT, ANNOTATION_CONFIG_HASH, Workload, WorkloadId, WorkloadPin};

/// A pinned field another manager wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Overwrite {
    /// The field as the API server prints it in a conflict, e.g.
    /// `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
    /// The field manager that owns it now.
    pub manager: String,
    /// The value it wrote.
    pub value: String,
    /// The value Hoist pins it back to.
    pub pinned: String,
}

/// One field Hoist pins, with the value it wants.
struct Pinned<'p> {
    /// Keys of the field in a `fieldsV1` set, from the object's root.
    path: Vec<String>,
    /// For an image: the path of its container's list item.
    item: Option<Vec<String>>,
    field: String,
    wanted: &'p str,
    live: Option<String>,
}

/// `fieldsV1` keys of the pod template of `kind`, and the same as printed.
fn template_path(kind: WorkloadKind) -> (Vec<&'static str>, &'static str) {
    match kind {
        WorkloadKind::CronJob => (
            vec!["f:spec", "f:jobTemplate", "f:spec", "f:template"],
            ".spec.jobTemplate.spec.template",
        ),
        _ => (vec!["f:spec", "f:template"], ".spec.template"),
    }
}

/// The key of a container's item in the `containers` list of a `fieldsV1`
/// set: `k:{"name":"app"}`.
fn container_key(name: &str) -> String {
    let key = serde_json::json!({ "name": name });
    format!("k:{key}")
}

/// The fields `pin` sets, with the values `live` carries.
fn pinned_fields<'p>(pin: &'p WorkloadPin, live: &Workload) -> Vec<Pinned<'p>> {
    let (prefix, printed) = template_path(pin.kind);
    let at =
        |tail: &[&str]| -> Vec<String> { prefix.iter().chain(tail).map(|key| (*key).to_owned()).collect() };
    let template = live.pod_template();
    let annotations = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref());
    let containers = template
        .and_then(|t| t.spec.as_ref())
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default();
    let mut fields = Vec::new();
    for (container, image) in &pin.images {
        let key = container_key(container);
        let item = at(&["f:spec", "f:containers", &key]);
        let mut path = item.clone();
        path.push("f:image".into());
        fields.push(Pinned {
            path,
            item: Some(item),
            field: format!("{printed}.spec.containers[name=\"{container}\"].image"),
            wanted: image,
            live: containers
                .iter()
                .find(|c| &c.name == container)
                .and_then(|c| c.image.clone()),
        });
    }
    let annotated = [
        (ANNOTATION_ARTIFACT, Some(pin.artifact.as_str())),
        (ANNOTATION_CONFIG_HASH, pin.config_hash.as_deref()),
    ];
    for (annotation, wanted) in annotated {
        let Some(wanted) = wanted else { continue };
        let key = format!("f:{annotation}");
        fields.push(Pinned {
            path: at(&["f:metadata", "f:annotations", &key]),
            item: None,
            field: format!("{printed}.metadata.annotations.{annotation}"),
            wanted,
            live: annotations.and_then(|a| a.get(annotation)).cloned(),
        });
    }
    fields
}

/// Whether the `fieldsV1` set of `entry` holds `path`.
fn owns(entry: &ManagedFieldsEntry, path: &[String]) -> bool {
    entry
        .fields_v1
        .as_ref()
        .and_then(|FieldsV1(set)| path.iter().try_fold(set, |value, key| value.get(key)))
        .is_some()
}

/// An entry of the object itself (not of its status or another subresource).
fn of_object(entry: &ManagedFieldsEntry) -> bool {
    entry.subresource.as_deref().is_none_or(str::is_empty)
}

/// The pinned fields of `live` that a manager other than `own_manager`
/// overwrote since Hoist last pinned them (see the module's rules), in
/// the order `pin` lists them: its images by container, then its
/// annotations.
pub fn overwrites(pin: &WorkloadPin, live: &Workload, own_manager: &str) -> Vec<Overwrite> {
    let entries = live.metadata().managed_fields.as_deref().unwrap_or_default();
    let own: Vec<&ManagedFieldsEntry> = entries
        .iter()
        .filter(|e| of_object(e) && e.manager.as_deref() == Some(own_manager))
        .collect();
    if own.is_empty() || live.kind() != pin.kind {
        return Vec::new();
    }
    pinned_fields(pin, live)
        .into_iter()
        .filter_map(|pinned| {
            let value = pinned.live?;
            if value == pinned.wanted || own.iter().any(|e| owns(e, &pinned.path)) {
                return None;
            }
            if let Some(item) = &pinned.item
                && !own.iter().any(|e| owns(e, item))
            {
                return None;
            }
            // Managers applying the same value share a field: the latest names it.
            let manager = entries
                .iter()
                .filter(|e| of_object(e) && e.manager.as_deref() != Some(own_manager))
                .filter(|e| owns(e, &pinned.path))
                .max_by_key(|e| e.time.as_ref().map(|time| time.0))?
                .manager
                .clone()?;
            Some(Overwrite {
                field: pinned.field,
                manager,
                value,
                pinned: pinned.wanted.to_owned(),
            })
        })
        .collect()
}

/// What Hoist last told about one workload's overwrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// The workload's resourceVersion the overwrites were seen at.
    pub resource_version: String,
    pub overwrites: Vec<Overwrite>,
    /// How often the same overwrites were told in a row.
    pub count: i32,
}

/// Whether and how to tell of overwrites seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Nothing to tell: no overwrite, or this very write was told already
    /// (a cache behind Hoist's own re-pin shows it again).
    Nothing,
    /// A new Event.
    New,
    /// The same manager wrote the same values again (a periodic apply):
    /// the `count`th occurrence of the Event told last, as an Event series.
    Repeat { count: i32 },
}

/// How to tell of `overwrites` seen at `resource_version`, given what was
/// told last about the same workload.
pub fn announcement(resource_version: &str, overwrites: &[Overwrite], last: Option<&Told>) -> Announcement {
    match last {
        _ if overwrites.is_empty() => Announcement::Nothing,
        Some(told) if told.resource_version == resource_version => Announcement::Nothing,
        Some(told) if told.overwrites == overwrites => Announcement::Repeat {
            count: told.count.saturating_add(1),
        },
        _ => Announcement::New,
    }
}

/// The most an Event's note may hold: kube-apiserver refuses a longer one.
pub const NOTE_LIMIT: usize = 1024;

/// The Event's note: who wrote what, and what to do about it. Overwrites
/// that would make it longer than [`NOTE_LIMIT`] are counted, not told.
pub fn note(workload: &WorkloadId, overwrites: &[Overwrite]) -> String {
    let advice = "; configure that tool to leave Hoist's fields alone (README: GitOps coexistence)";
    let mut note = format!("{workload}:");
    for (told, o) in overwrites.iter().enumerate() {
        let item = format!(
            "{} {} set {} to {:?} (pinned again to {:?})",
            if told == 0 { "" } else { ";" },
            o.manager,
            o.field,
            o.value,
            o.pinned
        );
        let more = format!("; and {} more", overwrites.len() - told);
        if note.len() + item.len() + more.len() + advice.len() > NOTE_LIMIT {
            note.push_str(&more);
            break;
        }
        note.push_str(&item);
    }
    note.push_str(advice);
    if note.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}

/// `entries` as a cache keeps them: only the ownership of the fields Hoist
/// pins (images and Hoist's pod-template annotations, with the container
/// items holding them), which [`overwrites`] reads; entries left empty are
/// dropped. `None` when none is left, so objects Hoist pins nothing on
/// keep nothing.
pub fn pinned_ownership(entries: Vec<ManagedFieldsEntry>) -> Option<Vec<ManagedFieldsEntry>> {
    let kept: Vec<ManagedFieldsEntry> = entries
        .into_iter()
        .filter_map(|mut entry| {
            let set = entry.fields_v1.take()?.0;
            let mut trimmed = Map::new();
            for kind in [WorkloadKind::Deployment, WorkloadKind::CronJob] {
                let (prefix, _) = template_path(kind);
                let Some(template) = descend(&set, &prefix) else {
                    continue;
                };
                if let Some(kept) = template_ownership(template) {
                    insert_at(&mut trimmed, &prefix, kept);
                }
            }
            (!trimmed.is_empty()).then(|| {
                entry.fields_v1 = Some(FieldsV1(Value::Object(trimmed)));
                entry
            })
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn descend<'v>(set: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(set, |value, key| value.get(*key))
}

/// Sets `value` at `path` in `map`, making the objects on the way.
fn insert_at(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let next = map
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(next) = next {
                insert_at(next, rest, value);
            }
        }
    }
}

/// Of a pod template's `fieldsV1` set: Hoist's annotations and each
/// container's item with its image.
fn template_ownership(template: &Value) -> Option<Value> {
    let mut kept = Map::new();
    let annotations: Map<String, Value> = descend(template, &["f:metadata", "f:annotations"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(key, _)| {
            key.as_str() == format!("f:{ANNOTATION_ARTIFACT}")
                || key.as_str() == format!("f:{ANNOTATION_CONFIG_HASH}")
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !annotations.is_empty() {
        insert_at(
            &mut kept,
            &["f:metadata", "f:annotations"],
            Value::Object(annotations),
        );
    }
    let containers: Map<String, Value> = descend(template, &["f:spec", "f:containers"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with("k:"))
        .map(|(key, item)| {
            let image: Map<String, Value> = item
                .get("f:image")
                .map(|image| ("f:image".to_owned(), image.clone()))
                .into_iter()
                .collect();
            (key.clone(), Value::Object(image))
        })
        .collect();
    if !containers.is_empty() {
        insert_at(&mut kept, &["f:spec", "f:containers"], Value::Object(containers));
    }
    (!kept.is_empty()).then_some(Value::Object(kept))
}
