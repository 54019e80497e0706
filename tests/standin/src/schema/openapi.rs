//! The OpenAPI v3 value validations of a structural schema, checked by
//! `jsonschema` and reported as the apiserver reports them (kube-openapi's
//! messages, converted by apiextensions' `kubeOpenAPIResultToFieldErrors`).
//!
//! OpenAPI v3.0 schemas are JSON Schema draft 4 plus extensions; the
//! translation turns the extensions into draft 4 (`nullable` and
//! `x-kubernetes-int-or-string` into type lists, embedded resources into
//! declared `apiVersion`/`kind`/`metadata`) and keeps only the string
//! formats the apiserver checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{Draft, JsonType, PatternOptions, ValidationError, Validator};
use regex::Regex;
use serde_json::{Map, Value, json};

use super::FieldError;
use super::field::{self, BadValue};

/// Keywords with the same meaning in OpenAPI v3.0 and JSON Schema draft 4.
const PLAIN_KEYWORDS: [&str; 16] = [
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "maxProperties",
    "minProperties",
    "required",
    "enum",
    "type",
];

/// Keywords holding one sub-schema.
const SCHEMA_KEYWORDS: [&str; 2] = ["items", "not"];

/// Keywords holding a list of sub-schemas.
const SCHEMA_LIST_KEYWORDS: [&str; 3] = ["allOf", "anyOf", "oneOf"];

pub(super) fn compile(schema: &Value) -> Result<Validator, ValidationError<'static>> {
    let mut options = jsonschema::options()
        .with_draft(Draft::Draft4)
        .should_validate_formats(true)
        // Kubernetes patterns are Go RE2 expressions, as are Rust regex's.
        .with_pattern_options(PatternOptions::regex());
    for (name, check) in FORMATS {
        options = options.with_format(*name, *check);
    }
    options.build(&translate(schema))
}

fn translate(schema: &Value) -> Value {
    let Value::Object(node) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for keyword in PLAIN_KEYWORDS {
        if let Some(v) = node.get(keyword) {
            out.insert(keyword.to_owned(), v.clone());
        }
    }
    for keyword in SCHEMA_KEYWORDS {
        if let Some(v) = node.get(keyword) {
            out.insert(keyword.to_owned(), translate(v));
        }
    }
    for keyword in SCHEMA_LIST_KEYWORDS {
        if let Some(Value::Array(branches)) = node.get(keyword) {
            out.insert(
                keyword.to_owned(),
                Value::Array(branches.iter().map(translate).collect()),
            );
        }
    }
    if let Some(Value::Object(properties)) = node.get("properties") {
        let translated = properties
            .iter()
            .map(|(k, v)| (k.clone(), translate(v)))
            .collect();
        out.insert("properties".to_owned(), Value::Object(translated));
    }
    match node.get("additionalProperties") {
        Some(a @ Value::Object(_)) => {
            out.insert("additionalProperties".to_owned(), translate(a));
        }
        Some(b @ Value::Bool(_)) => {
            out.insert("additionalProperties".to_owned(), b.clone());
        }
        _ => {}
    }
    if flag(node, "x-kubernetes-embedded-resource") {
        let properties = out.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(properties) = properties {
            properties
                .entry("apiVersion")
                .or_insert_with(|| json!({"type": "string"}));
            properties
                .entry("kind")
                .or_insert_with(|| json!({"type": "string"}));
            properties
                .entry("metadata")
                .or_insert_with(|| json!({"type": "object"}));
        }
    }
    if flag(node, "x-kubernetes-int-or-string") {
        out.insert("type".to_owned(), json!(["integer", "string"]));
    }
    let is_string = out.get("type").and_then(Value::as_str) == Some("string");
    if let Some(Value::String(format)) = node.get("format")
        && is_string
        && FORMATS.iter().any(|(name, _)| name == format)
    {
        out.insert("format".to_owned(), Value::String(format.clone()));
    }
    if flag(node, "nullable") {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".to_owned(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push(json!("null")),
            _ => {}
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    Value::Object(out)
}

fn flag(node: &Map<String, Value>, name: &str) -> bool {
    node.get(name).and_then(Value::as_bool) == Some(true)
}

/// The value validations' errors for a whole object, in the apiserver's words.
pub(super) fn validate(validator: &Validator, object: &Value) -> Vec<FieldError> {
    validator
        .iter_errors(object)
        .map(|error| to_field_error(&error))
        .collect()
}

/// kube-openapi's path: `.` before property names and map keys, `[i]` for
/// list items.
fn openapi_path(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// kube-openapi's name of the type of a decoded JSON value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn declared_types(kind: &TypeKind) -> String {
    let types: Vec<JsonType> = match kind {
        TypeKind::Single(t) => vec![*t],
        TypeKind::Multiple(set) => set.iter().collect(),
    };
    // `null` comes from `nullable`, which kube-openapi does not list as a type.
    types
        .into_iter()
        .filter(|t| *t != JsonType::Null)
        .map(JsonType::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn to_field_error(error: &ValidationError<'_>) -> FieldError {
    let path = openapi_path(error);
    let instance: &Value = error.instance();
    let value = BadValue::Json(instance);
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let field = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            field::required(&field, "")
        }
        ValidationErrorKind::Type { kind } => {
            let actual = type_name(instance);
            let detail = format!(
                "{path} in body must be of type {}: {}",
                declared_types(kind),
                field::go_quote(actual)
            );
            field::type_invalid(&path, BadValue::Str(actual), &detail)
        }
        ValidationErrorKind::Format { format } => {
            let detail = format!(
                "{path} in body must be of type {format}: {}",
                field::go_quote(&json_text(instance))
            );
            field::type_invalid(&path, value, &detail)
        }
        ValidationErrorKind::Enum { options } => {
            let supported: Vec<String> = options
                .as_array()
                .map(|values| values.iter().filter(|v| !v.is_null()).map(json_text).collect())
                .unwrap_or_default();
            field::not_supported(&path, value, &supported)
        }
        ValidationErrorKind::MaxLength { limit } => field::too_long(&path, *limit),
        ValidationErrorKind::MinLength { limit } => field::invalid(
            &path,
            value,
            &format!("{path} in body should be at least {limit} chars long"),
        ),
        ValidationErrorKind::Pattern { pattern } => {
            field::invalid(&path, value, &format!("{path} in body should match '{pattern}'"))
        }
        ValidationErrorKind::MaxItems { limit } => field::too_many(&path, array_len(instance), *limit),
        ValidationErrorKind::MinItems { limit } => field::invalid(
            &path,
            BadValue::Count(array_len(instance)),
            &format!("{path} in body should have at least {limit} items"),
        ),
        ValidationErrorKind::MaxProperties { limit } => field::too_many(&path, object_len(instance), *limit),
        ValidationErrorKind::MinProperties { limit } => field::invalid(
            &path,
            BadValue::Count(object_len(instance)),
            &format!("{path} in body should have at least {limit} properties"),
        ),
        ValidationErrorKind::Maximum { limit } => field::invalid(
            &path,
            value,
            &format!("{path} in body should be less than or equal to {}", number(limit)),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => field::invalid(
            &path,
            value,
            &format!("{path} in body should be less than {}", number(limit)),
        ),
        ValidationErrorKind::Minimum { limit } => field::invalid(
            &path,
            value,
            &format!(
                "{path} in body should be greater than or equal to {}",
                number(limit)
            ),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => field::invalid(
            &path,
            value,
            &format!("{path} in body should be greater than {}", number(limit)),
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => field::invalid(
            &path,
            value,
            &format!(
                "{path} in body should be a multiple of {}",
                field::render_float(*multiple_of)
            ),
        ),
        ValidationErrorKind::UniqueItems => field::invalid(
            &path,
            value,
            &format!("{path} in body shouldn't contain duplicates"),
        ),
        // kube-openapi words these with the quoted path and no "in body".
        ValidationErrorKind::AnyOf { .. } => field::invalid(
            &path,
            BadValue::Str(""),
            &format!(
                "{} must validate at least one schema (anyOf)",
                field::go_quote(&path)
            ),
        ),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. } => {
            field::invalid(
                &path,
                BadValue::Str(""),
                &format!(
                    "{} must validate one and only one schema (oneOf)",
                    field::go_quote(&path)
                ),
            )
        }
        ValidationErrorKind::Not { .. } => field::invalid(
            &path,
            BadValue::Str(""),
            &format!("{} must not validate the schema (not)", field::go_quote(&path)),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => field::invalid(
            &path,
            BadValue::Str(""),
            &unexpected
                .iter()
                .map(|key| format!("{path}.{key} in body is a forbidden property"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => field::invalid(&path, value, &error.to_string()),
    }
}

fn json_text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

fn number(limit: &Value) -> String {
    match limit {
        Value::Number(n) => field::render_number(n),
        other => other.to_string(),
    }
}

fn array_len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

fn object_len(value: &Value) -> usize {
    value.as_object().map_or(0, Map::len)
}

type FormatCheck = fn(&str) -> bool;

/// The string formats the apiserver checks (kube-openapi's `strfmt.Default`
/// registry minus what apiextensions strips), with the checks kube-openapi
/// makes. Other formats are annotations only.
const FORMATS: &[(&str, FormatCheck)] = &[
    ("date-time", is_date_time),
    ("datetime", is_date_time),
    ("date", is_date),
    ("byte", is_base64),
    ("uuid", |s| is_uuid(s, None)),
    ("uuid3", |s| is_uuid(s, Some('3'))),
    ("uuid4", |s| is_uuid(s, Some('4'))),
    ("uuid5", |s| is_uuid(s, Some('5'))),
    ("ipv4", |s| s.parse::<Ipv4Addr>().is_ok()),
    ("ipv6", |s| s.parse::<Ipv6Addr>().is_ok()),
    ("cidr", is_cidr),
    ("mac", |s| MAC.is_match(s)),
    ("hostname", |s| HOSTNAME.is_match(s) && s.len() <= 255),
    ("email", |s| EMAIL.is_match(s)),
    ("uri", |s| URI.is_match(s)),
    ("duration", |s| DURATION.is_match(s)),
    ("hexcolor", |s| HEXCOLOR.is_match(s)),
    ("rgbcolor", |s| RGBCOLOR.is_match(s)),
    ("bsonobjectid", |s| {
        s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }),
    ("ssn", |s| SSN.is_match(s)),
];

/// Compiles one of the constant patterns below; a failure is a bug here.
fn constant_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|error| panic!("format pattern {pattern:?} does not compile: {error}"))
}

static MAC: LazyLock<Regex> = LazyLock::new(|| {
    constant_regex(r"^(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^(?:[0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    constant_regex(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"^[^@\s<>]+@[^@\s<>]+$"));
static URI: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:\S*|/\S*)$"));
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    constant_regex(
        r"^\s*(?:[-+]?\d+(?:\.\d+)?\s*(?:ns|us|µs|ms|s|m|h|d|w|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|wks?|weeks?)\s*)+$",
    )
});
static HEXCOLOR: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGBCOLOR: LazyLock<Regex> =
    LazyLock::new(|| constant_regex(r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$"));
static SSN: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));

/// kube-openapi's `ParseDateTime`: RFC 3339, with or without fractional
/// seconds, and the `Z0700` zone form.
fn is_date_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// Go's `base64.StdEncoding.DecodeString` succeeds: padded standard alphabet.
fn is_base64(s: &str) -> bool {
    let data = s.trim_end_matches('=');
    let padding = s.len() - data.len();
    s.len().is_multiple_of(4)
        && padding <= 2
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A hyphenated UUID, of the given version if any.
fn is_uuid(s: &str, version: Option<char>) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    lengths_ok
        && version.is_none_or(|v| {
            groups[2].starts_with(v)
                && (v == '3' || v == '4' || v == '5')
                && groups[3].starts_with(|c: char| matches!(c.to_ascii_lowercase(), '8' | '9' | 'a' | 'b'))
        })
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix <= 32,
        Ok(IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}
