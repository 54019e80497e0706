//! Object metadata: validation of names, labels and annotations, generated
//! names and timestamps.

use serde_json::{Value, json};

use crate::schema::FieldError;
use crate::status::{FieldReason, field_error};

pub(crate) const DNS_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub(crate) const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
pub(crate) const QUALIFIED_NAME_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The current time as the API server writes timestamps: RFC 3339, seconds, UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random 5-character suffix from the alphabet of `utilrand.String`.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

pub(crate) fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !text.is_empty()
        && text.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

pub(crate) fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

fn is_qualified_name_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    !text.is_empty()
        && text.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

pub(crate) fn is_qualified_name(text: &str) -> bool {
    match text.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(text),
    }
}

pub(crate) fn is_label_value(text: &str) -> bool {
    text.is_empty() || is_qualified_name_part(text)
}

/// How a kind's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    DnsSubdomain,
    /// Namespaces are DNS labels.
    DnsLabel,
    /// RBAC objects only need to be usable as a path segment (`system:discovery`).
    PathSegment,
}

/// `path.IsValidPathSegmentName`: why `name` cannot be a segment of a URL path.
pub(crate) fn path_segment_problems(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Validates `metadata.name`, labels and annotations of a stored object.
pub(crate) fn validate(object: &Value, rule: NameRule) -> Vec<FieldError> {
    let metadata = &object["metadata"];
    let mut errors = Vec::new();
    let name = metadata["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        errors.push(field_error(
            "metadata.name",
            FieldReason::Required,
            "name or generateName is required",
            None,
        ));
    } else {
        let problems = match rule {
            NameRule::DnsSubdomain if !is_dns_subdomain(name) => vec![DNS_SUBDOMAIN_MESSAGE.to_owned()],
            NameRule::DnsLabel if !is_dns_label(name) => vec![DNS_LABEL_MESSAGE.to_owned()],
            NameRule::PathSegment => path_segment_problems(name),
            _ => Vec::new(),
        };
        for problem in problems {
            errors.push(field_error(
                "metadata.name",
                FieldReason::Invalid,
                &problem,
                Some(&json!(name)),
            ));
        }
    }
    for (field, shape_ok) in [
        ("labels", metadata["labels"].is_object()),
        ("annotations", metadata["annotations"].is_object()),
        ("finalizers", metadata["finalizers"].is_array()),
        ("ownerReferences", metadata["ownerReferences"].is_array()),
    ] {
        let value = &metadata[field];
        if !value.is_null() && !shape_ok {
            errors.push(field_error(
                &format!("metadata.{field}"),
                FieldReason::Invalid,
                "has the wrong type",
                Some(value),
            ));
        }
    }
    if let Some(labels) = metadata["labels"].as_object() {
        for (key, value) in labels {
            if !is_qualified_name(key) {
                errors.push(field_error(
                    "metadata.labels",
                    FieldReason::Invalid,
                    QUALIFIED_NAME_MESSAGE,
                    Some(&json!(key)),
                ));
            }
            match value.as_str() {
                Some(text) if is_label_value(text) => {}
                _ => errors.push(field_error(
                    "metadata.labels",
                    FieldReason::Invalid,
                    LABEL_VALUE_MESSAGE,
                    Some(value),
                )),
            }
        }
    }
    if let Some(annotations) = metadata["annotations"].as_object() {
        for (key, value) in annotations {
            if !is_qualified_name(key) {
                errors.push(field_error(
                    "metadata.annotations",
                    FieldReason::Invalid,
                    QUALIFIED_NAME_MESSAGE,
                    Some(&json!(key)),
                ));
            }
            if !value.is_string() {
                errors.push(field_error(
                    &format!("metadata.annotations[{key}]"),
                    FieldReason::Invalid,
                    "must be a string",
                    Some(value),
                ));
            }
        }
    }
    errors
}

pub(crate) fn resource_version(object: &Value) -> Option<&str> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
}

pub(crate) fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub(crate) fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub(crate) fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

pub(crate) fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn is_deleting(object: &Value) -> bool {
    object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|timestamp| !timestamp.is_null())
}

/// `metadata`, as a mutable map (created when missing or not an object).
pub(crate) fn metadata_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(metadata)) => metadata,
        _ => unreachable!("metadata was just made an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(is_dns_subdomain("web.example-1"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_subdomain("-web"));
        assert!(is_dns_label("team-a"));
        assert!(!is_dns_label("team.a"));
        assert!(is_qualified_name("hoist.dev/tenant"));
        assert!(!is_qualified_name("hoist.dev/"));
    }

    #[test]
    fn suffixes_are_five_characters_of_the_kubernetes_alphabet() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }
}
