//! `FieldError`s worded like `k8s.io/apimachinery/pkg/util/validation/field`
//! (the 1.33 `ErrorBody`): `<field>: <type>[: <value>][: <detail>]`.

use serde_json::Value;

use super::FieldError;

/// The `BadValue` of a field error, rendered the way the apiserver does.
pub(crate) enum BadValue<'a> {
    /// A JSON value from the object: strings quoted, numbers and booleans
    /// plain, anything else as JSON.
    Json(&'a Value),
    /// A string the apiserver puts in place of the value, e.g. a type name.
    Str(&'a str),
    /// A count, e.g. the number of items.
    Count(usize),
    /// Text the apiserver prints as it is, e.g. a Go struct.
    Raw(&'a str),
}

impl BadValue<'_> {
    fn render(&self) -> String {
        match self {
            BadValue::Json(Value::String(s)) => go_quote(s),
            BadValue::Str(s) => go_quote(s),
            BadValue::Json(Value::Number(n)) => render_number(n),
            BadValue::Json(Value::Bool(b)) => b.to_string(),
            BadValue::Json(other) => go_json(other),
            BadValue::Count(n) => n.to_string(),
            BadValue::Raw(s) => (*s).to_owned(),
        }
    }
}

fn error(reason: &str, field: &str, body: String) -> FieldError {
    FieldError {
        field: field.to_owned(),
        reason: reason.to_owned(),
        message: format!("{field}: {body}"),
    }
}

fn with_detail(body: String, detail: &str) -> String {
    if detail.is_empty() {
        body
    } else {
        format!("{body}: {detail}")
    }
}

pub(crate) fn invalid(field: &str, value: BadValue<'_>, detail: &str) -> FieldError {
    error(
        "FieldValueInvalid",
        field,
        with_detail(format!("Invalid value: {}", value.render()), detail),
    )
}

pub(crate) fn type_invalid(field: &str, value: BadValue<'_>, detail: &str) -> FieldError {
    error(
        "FieldValueTypeInvalid",
        field,
        with_detail(format!("Invalid value: {}", value.render()), detail),
    )
}

pub(crate) fn required(field: &str, detail: &str) -> FieldError {
    error(
        "FieldValueRequired",
        field,
        with_detail("Required value".to_owned(), detail),
    )
}

pub(crate) fn forbidden(field: &str, detail: &str) -> FieldError {
    error(
        "FieldValueForbidden",
        field,
        with_detail("Forbidden".to_owned(), detail),
    )
}

pub(crate) fn internal(field: &str, detail: &str) -> FieldError {
    error(
        "InternalError",
        field,
        with_detail("Internal error".to_owned(), detail),
    )
}

pub(crate) fn duplicate(field: &str, value: BadValue<'_>) -> FieldError {
    error(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", value.render()),
    )
}

pub(crate) fn not_supported(field: &str, value: BadValue<'_>, supported: &[String]) -> FieldError {
    let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    let detail = if quoted.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", quoted.join(", "))
    };
    error(
        "FieldValueNotSupported",
        field,
        with_detail(format!("Unsupported value: {}", value.render()), &detail),
    )
}

pub(crate) fn too_long(field: &str, max: u64) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    error(
        "FieldValueTooLong",
        field,
        format!("Too long: may not be more than {max} {unit}"),
    )
}

pub(crate) fn too_many(field: &str, actual: usize, max: u64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    error(
        "FieldValueTooMany",
        field,
        format!("Too many: {actual}: must have at most {max} {unit}"),
    )
}

/// Go's `%q` for the strings that occur in objects: printable characters as
/// they are, the usual escapes otherwise.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of the `int64` or `float64` a JSON number decodes to.
pub(crate) fn render_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() => render_float(f),
        _ => n.to_string(),
    }
}

/// Go's `%v` of a `float64`: integral values without a fraction.
pub(crate) fn render_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// Go's `json.Marshal`, which escapes HTML characters inside strings.
fn go_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
