//! What the workload kinds beyond Deployments and Jobs share: the API
//! server's defaulting and validation hooks of StatefulSets, DaemonSets and
//! CronJobs, the validation of a selector against its Pod template, and the
//! emulated Pods their controllers roll.

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::deployments::{POD_START, pods_can_start};
use crate::resources::ResourceInfo;
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::selector::LabelSelector;
use crate::{cronjobs, daemonsets, statefulsets};

/// Defaults of the real server's decoding for the workload kinds.
pub(crate) fn apply_defaults(resource: &ResourceInfo, object: &mut Value) {
    match (resource.group.as_str(), resource.plural.as_str()) {
        (statefulsets::GROUP, statefulsets::PLURAL) => statefulsets::apply_defaults(object),
        (daemonsets::GROUP, daemonsets::PLURAL) => daemonsets::apply_defaults(object),
        (cronjobs::GROUP, cronjobs::PLURAL) => cronjobs::apply_defaults(object),
        _ => {}
    }
}

/// The real server's validation of the workload kinds (`old` on update).
pub(crate) fn validate(resource: &ResourceInfo, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match (resource.group.as_str(), resource.plural.as_str()) {
        (statefulsets::GROUP, statefulsets::PLURAL) => statefulsets::validate(object, old),
        (daemonsets::GROUP, daemonsets::PLURAL) => daemonsets::validate(object, old),
        (cronjobs::GROUP, cronjobs::PLURAL) => cronjobs::validate(object),
        _ => Vec::new(),
    }
}

/// Inserts `default` at `field` of `map` when it is absent or null.
pub(crate) fn default_field(map: &mut Map<String, Value>, field: &str, default: Value) {
    if map.get(field).is_none_or(Value::is_null) {
        map.insert(field.to_owned(), default);
    }
}

/// `spec.updateStrategy` defaulted to `RollingUpdate`, and the fields of its
/// `rollingUpdate` to `defaults` when it is one.
pub(crate) fn default_rolling_update(spec: &mut Map<String, Value>, defaults: &[(&str, Value)]) {
    default_field(spec, "updateStrategy", json!({}));
    let Some(strategy) = spec.get_mut("updateStrategy").and_then(Value::as_object_mut) else {
        return;
    };
    default_field(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] != "RollingUpdate" {
        return;
    }
    default_field(strategy, "rollingUpdate", json!({}));
    if let Some(rolling) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
        for (field, default) in defaults {
            default_field(rolling, field, default.clone());
        }
    }
}

/// Whether the object's `spec.updateStrategy` is `RollingUpdate` (the default).
pub(crate) fn rolls(object: &Value) -> bool {
    object["spec"]["updateStrategy"]["type"]
        .as_str()
        .is_none_or(|kind| kind == "RollingUpdate")
}

/// `spec`, created when missing (`None` when the object or its spec is not an object).
pub(crate) fn spec_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    object
        .as_object_mut()?
        .entry("spec")
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

/// How a kind's validation treats its selector.
pub(crate) struct SelectorRules {
    /// `spec.selector: Required value` when it is missing (StatefulSets;
    /// DaemonSets only find that it does not match).
    pub required: bool,
    /// The kind in `empty selector is invalid for <kind>`.
    pub kind: &'static str,
}

/// `spec.selector` against `spec.template` as apps validation checks it
/// (`ValidateLabelSelector`, `LabelSelectorAsSelector`, then the template's
/// labels must match; a missing selector matches nothing), the template's
/// containers, and its `restartPolicy` (`Always` only, the Pod default).
pub(crate) fn validate_selector_and_template(spec: &Value, rules: &SelectorRules) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let selector_value = &spec["selector"];
    let labels = &spec["template"]["metadata"]["labels"];
    let shown_labels = if labels.is_null() {
        json!({})
    } else {
        labels.clone()
    };
    let mismatch = || {
        field::invalid(
            "spec.template.metadata.labels",
            BadValue::Json(&shown_labels),
            "`selector` does not match template `labels`",
        )
    };
    if selector_value.is_null() {
        if rules.required {
            errors.push(field::required("spec.selector", ""));
        }
        errors.push(mismatch());
    } else {
        match LabelSelector::from_structured(selector_value, "spec.selector") {
            Err(selector_errors) => errors.extend(selector_errors),
            Ok(selector) if selector.is_empty() => errors.push(field::invalid(
                "spec.selector",
                BadValue::Json(selector_value),
                &format!("empty selector is invalid for {}", rules.kind),
            )),
            Ok(selector) if !selector.matches_labels(labels) => errors.push(mismatch()),
            Ok(_) => {}
        }
    }
    errors.extend(validate_pod_spec(
        &spec["template"]["spec"],
        "spec.template.spec",
        &["Always"],
    ));
    errors
}

/// A Pod template's spec: it has containers, and its `restartPolicy` (when
/// given: absent, it is the Pod default `Always`) is one of `supported`.
pub(crate) fn validate_pod_spec(pod: &Value, path: &str, supported: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let policy = &pod["restartPolicy"];
    if let Some(given) = policy.as_str()
        && !supported.contains(&given)
    {
        let supported: Vec<String> = supported.iter().map(|value| (*value).to_owned()).collect();
        errors.push(field::not_supported(
            &format!("{path}.restartPolicy"),
            BadValue::Json(policy),
            &supported,
        ));
    }
    if pod["containers"].as_array().is_none_or(Vec::is_empty) {
        errors.push(field::required(&format!("{path}.containers"), ""));
    }
    errors
}

/// An emulated Pod: the revision (template hash) it runs and when it
/// becomes ready (`None`: never, an image cannot be pulled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pod {
    pub revision: String,
    pub ready_at: Option<Instant>,
}

impl Pod {
    /// A Pod of `object`'s template (`spec.template`), created `now`.
    pub fn start(revision: &str, object: &Value, now: Instant) -> Pod {
        Pod {
            revision: revision.to_owned(),
            ready_at: pods_can_start(object).then_some(now + POD_START),
        }
    }

    /// A Pod of a revision whose Pods can (or cannot) start, created `now`.
    pub fn start_of(revision: &str, can_start: bool, now: Instant) -> Pod {
        Pod {
            revision: revision.to_owned(),
            ready_at: can_start.then_some(now + POD_START),
        }
    }

    pub fn is_ready(&self, now: Instant) -> bool {
        self.ready_at.is_some_and(|at| at <= now)
    }

    /// When it becomes ready, if that is still to come.
    pub fn becomes_ready(&self, now: Instant) -> Option<Instant> {
        self.ready_at.filter(|at| *at > now)
    }
}

/// The earliest moment one of `pods` becomes ready.
pub(crate) fn next_ready<'a>(pods: impl IntoIterator<Item = &'a Pod>, now: Instant) -> Option<Instant> {
    pods.into_iter().filter_map(|pod| pod.becomes_ready(now)).min()
}

/// A count for a status: Go's `omitempty` leaves zeros out.
pub(crate) fn insert_count(status: &mut Map<String, Value>, field: &str, count: usize, omit_zero: bool) {
    if count > 0 || !omit_zero {
        status.insert(field.to_owned(), json!(count));
    }
}

/// The counts `fields` of a status, zero where absent.
#[cfg(test)]
pub(crate) fn counts<const N: usize>(status: &Value, fields: [&str; N]) -> [i64; N] {
    fields.map(|field| status[field].as_i64().unwrap_or(0))
}

/// The spec `apply_defaults` makes of an empty one.
#[cfg(test)]
pub(crate) fn spec_defaults(apply_defaults: fn(&mut Value)) -> Value {
    let mut empty = json!({"spec": {}});
    apply_defaults(&mut empty);
    empty["spec"].take()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|error| error.message).collect()
    }

    fn spec(selector: Value, labels: Value) -> Value {
        json!({
            "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": "nginx:1"}]}},
        })
    }

    const STATEFUL: SelectorRules = SelectorRules {
        required: true,
        kind: "statefulset",
    };
    const DAEMON: SelectorRules = SelectorRules {
        required: false,
        kind: "daemonset",
    };

    #[test]
    fn a_selector_must_be_given_not_empty_and_match_the_template() {
        let missing = spec(Value::Null, json!({"app": "web"}));
        assert_eq!(
            messages(validate_selector_and_template(&missing, &STATEFUL)),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        assert_eq!(
            messages(validate_selector_and_template(&missing, &DAEMON)),
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let empty = spec(json!({}), json!({"app": "web"}));
        assert_eq!(
            messages(validate_selector_and_template(&empty, &DAEMON)),
            ["spec.selector: Invalid value: {}: empty selector is invalid for daemonset"]
        );
        let matching = spec(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
            json!({"app": "web", "tier": "front"}),
        );
        assert!(validate_selector_and_template(&matching, &STATEFUL).is_empty());
    }

    #[test]
    fn a_pod_template_needs_containers_and_a_supported_restart_policy() {
        let pod = json!({"restartPolicy": "Never", "containers": []});
        assert_eq!(
            messages(validate_pod_spec(&pod, "spec.template.spec", &["Always"])),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.template.spec.containers: Required value",
            ]
        );
    }

    #[test]
    fn pods_become_ready_after_they_start_unless_an_image_cannot_be_pulled() {
        let now = Instant::now();
        let pullable =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1"}]}}}});
        let pod = Pod::start("web-1", &pullable, now);
        assert_eq!(
            (
                pod.is_ready(now),
                pod.becomes_ready(now),
                pod.is_ready(now + POD_START)
            ),
            (false, Some(now + POD_START), true)
        );
        let stuck = Pod::start_of("web-2", false, now);
        assert_eq!(next_ready([&pod, &stuck], now), Some(now + POD_START));
        assert_eq!(next_ready([&stuck], now), None);
    }
}
