//! Label and field selectors, with the syntax of `labelSelector` and
//! `fieldSelector` query parameters.

use serde_json::Value;

use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SelectorError {
    #[error("unable to parse requirement: {0}")]
    Label(String),
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    #[error("\"{0}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")]
    UnknownField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed `labelSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_set(key: &str, rest: &str, requirement: &str) -> Result<Vec<String>, SelectorError> {
    let values = rest
        .trim()
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| {
            SelectorError::Label(format!("{requirement}: values for {key} must be in parentheses"))
        })?;
    Ok(values
        .split(',')
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .collect())
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for raw in split_top_level(text) {
            let requirement = raw.trim();
            if requirement.is_empty() {
                continue;
            }
            let parsed = if let Some(key) = requirement.strip_prefix('!') {
                LabelRequirement::DoesNotExist(key.trim().to_owned())
            } else if let Some((key, value)) = requirement.split_once("!=") {
                LabelRequirement::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = requirement.split_once("==") {
                LabelRequirement::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = requirement.split_once('=') {
                LabelRequirement::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, rest)) = requirement.split_once(" notin ") {
                LabelRequirement::NotIn(key.trim().to_owned(), parse_set(key, rest, requirement)?)
            } else if let Some((key, rest)) = requirement.split_once(" in ") {
                LabelRequirement::In(key.trim().to_owned(), parse_set(key, rest, requirement)?)
            } else if requirement
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                LabelRequirement::Exists(requirement.to_owned())
            } else {
                return Err(SelectorError::Label(requirement.to_owned()));
            };
            requirements.push(parsed);
        }
        Ok(LabelSelector { requirements })
    }

    /// A `metav1.LabelSelector` (`matchLabels`, `matchExpressions`); the
    /// error says which field is wrong and why, as `ValidateLabelSelector`
    /// words it, relative to `path`.
    pub fn from_structured(selector: &Value, path: &str) -> Result<Self, Vec<FieldError>> {
        let mut requirements = Vec::new();
        let mut errors = Vec::new();
        if let Some(labels) = selector["matchLabels"].as_object() {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default();
                if !crate::meta::is_qualified_name(key) {
                    errors.push(field::invalid(
                        &format!("{path}.matchLabels"),
                        BadValue::Str(key),
                        crate::meta::QUALIFIED_NAME_MESSAGE,
                    ));
                }
                if !crate::meta::is_label_value(value) {
                    errors.push(field::invalid(
                        &format!("{path}.matchLabels"),
                        BadValue::Str(value),
                        crate::meta::LABEL_VALUE_MESSAGE,
                    ));
                }
                requirements.push(LabelRequirement::Equals(key.clone(), value.to_owned()));
            }
        }
        for (index, expression) in selector["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{path}.matchExpressions[{index}]");
            let key = expression["key"].as_str().unwrap_or_default().to_owned();
            let values: Vec<String> = expression["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let operator = expression["operator"].as_str().unwrap_or_default();
            if !crate::meta::is_qualified_name(&key) {
                errors.push(field::invalid(
                    &format!("{at}.key"),
                    BadValue::Str(&key),
                    crate::meta::QUALIFIED_NAME_MESSAGE,
                ));
            }
            match operator {
                "In" | "NotIn" if values.is_empty() => errors.push(field::required(
                    &format!("{at}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if !values.is_empty() => errors.push(field::forbidden(
                    &format!("{at}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "In" => requirements.push(LabelRequirement::In(key, values)),
                "NotIn" => requirements.push(LabelRequirement::NotIn(key, values)),
                "Exists" => requirements.push(LabelRequirement::Exists(key)),
                "DoesNotExist" => requirements.push(LabelRequirement::DoesNotExist(key)),
                other => errors.push(field::invalid(
                    &format!("{at}.operator"),
                    BadValue::Str(other),
                    "not a valid selector operator",
                )),
            }
        }
        if errors.is_empty() {
            Ok(LabelSelector { requirements })
        } else {
            Err(errors)
        }
    }

    /// An empty selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.matches_labels(&object["metadata"]["labels"])
    }

    /// Whether a `metadata.labels` map (or null) is selected.
    pub fn matches_labels(&self, labels: &Value) -> bool {
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.requirements.iter().all(|requirement| match requirement {
            LabelRequirement::Equals(key, value) => label(key) == Some(value.as_str()),
            LabelRequirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            LabelRequirement::In(key, values) => {
                label(key).is_some_and(|found| values.iter().any(|value| value == found))
            }
            LabelRequirement::NotIn(key, values) => {
                label(key).is_none_or(|found| values.iter().all(|value| value != found))
            }
            LabelRequirement::Exists(key) => label(key).is_some(),
            LabelRequirement::DoesNotExist(key) => label(key).is_none(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// Dotted path from the object root, e.g. `metadata.name`.
    field: String,
    value: String,
    equal: bool,
}

/// A parsed `fieldSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a selector over `metadata.name`, `metadata.namespace` and the
    /// resource's `selectable` fields; other fields are refused like the real
    /// server refuses fields a resource does not index.
    pub fn parse(text: &str, selectable: &[String]) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for raw in text.split(',') {
            let requirement = raw.trim();
            if requirement.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((field, value)) = requirement.split_once("!=") {
                (field, value, false)
            } else if let Some((field, value)) = requirement.split_once("==") {
                (field, value, true)
            } else if let Some((field, value)) = requirement.split_once('=') {
                (field, value, true)
            } else {
                return Err(SelectorError::Field(text.to_owned(), requirement.to_owned()));
            };
            let field = field.trim();
            let known = field == "metadata.name"
                || field == "metadata.namespace"
                || selectable.iter().any(|selectable| selectable == field);
            if !known {
                return Err(SelectorError::UnknownField(field.to_owned()));
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                value: value.trim().to_owned(),
                equal,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|requirement| {
            let found = requirement
                .field
                .split('.')
                .try_fold(object, |value, segment| value.get(segment));
            let text = match found {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (text == requirement.value) == requirement.equal
        })
    }
}

/// Both selectors of a list or watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "front"}}, "spec": {"color": "red"}})
    }

    #[test]
    fn label_requirements_match_like_kubernetes() {
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app in (web, db)", true),
            ("app in (db)", false),
            ("app notin (db,cache)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("app=web,tier in (front),!missing", true),
            ("app=web,tier=back", false),
            ("", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).unwrap();
            assert_eq!(selector.matches(&object()), expected, "{text}");
        }
    }

    #[test]
    fn field_selectors_cover_metadata_and_selectable_fields() {
        let selectable = vec!["spec.color".to_owned()];
        let cases = [
            ("metadata.name=a", true),
            ("metadata.name==b", false),
            ("metadata.name!=b", true),
            ("metadata.namespace=ns,spec.color=red", true),
            ("spec.color!=red", false),
        ];
        for (text, expected) in cases {
            let selector = FieldSelector::parse(text, &selectable).unwrap();
            assert_eq!(selector.matches(&object()), expected, "{text}");
        }
        assert_eq!(
            FieldSelector::parse("spec.size=1", &selectable),
            Err(SelectorError::UnknownField("spec.size".to_owned()))
        );
    }
}
