//! Errors answered to clients, as `metav1.Status` bodies worded like the
//! real API server's (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::schema::FieldError;

/// A failed request: the HTTP code and the `Status` body that explains it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header.
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// The answer for paths that name no known resource.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(
            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn not_found(resource: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.group_resource()),
        )
        .with_details(resource_details(resource, name))
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{namespace}\" not found"))
            .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn already_exists(resource: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource.group_resource()),
        )
        .with_details(resource_details(resource, name))
    }

    /// A write against a stale `resourceVersion` or failed precondition.
    pub fn conflict(resource: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                resource.group_resource()
            ),
        )
        .with_details(resource_details(resource, name))
    }

    pub fn stale_resource_version(resource: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with the field errors, worded as `Kind.group "name" is invalid: ...`.
    pub fn invalid(resource: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let kind = if resource.group.is_empty() {
            resource.kind.clone()
        } else {
            format!("{}.{}", resource.kind, resource.group)
        };
        Self::invalid_kind(&kind, &resource.kind, &resource.group, name, errors)
    }

    /// 422 for a kind that is not a stored resource (e.g. `PatchOptions`).
    pub fn invalid_kind(
        qualified_kind: &str,
        kind: &str,
        group: &str,
        name: &str,
        errors: &[FieldError],
    ) -> Self {
        let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
        let joined = match messages.as_slice() {
            [single] => (*single).to_owned(),
            several => format!("[{}]", several.join(", ")),
        };
        // A cause's message is the error's body, without its field (`ErrorBody()`).
        let causes: Vec<Value> = errors
            .iter()
            .map(|error| {
                let body = error
                    .message
                    .strip_prefix(&format!("{}: ", error.field))
                    .unwrap_or(&error.message);
                json!({"reason": error.reason, "message": body, "field": error.field})
            })
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(details)
    }

    /// The reason the real server gives for a bare HTTP code.
    pub fn reason_for_code(code: u16) -> &'static str {
        match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Expired",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `StatusDetails` naming a resource (its plural as `kind`, as the real server does).
fn resource_details(resource: &ResourceInfo, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    details
}

/// A `FieldError` worded like apimachinery's `field.Error`.
pub(crate) fn field_error(
    field: &str,
    reason: FieldReason,
    detail: &str,
    value: Option<&Value>,
) -> FieldError {
    let message = match (reason, value) {
        (FieldReason::Required, _) => format!("{field}: Required value: {detail}"),
        (FieldReason::Forbidden, _) => format!("{field}: Forbidden: {detail}"),
        (FieldReason::Invalid, Some(value)) => format!("{field}: Invalid value: {value}: {detail}"),
        (FieldReason::Invalid, None) => format!("{field}: Invalid value: {detail}"),
    };
    FieldError {
        field: field.to_owned(),
        reason: reason.as_str().to_owned(),
        message,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldReason {
    Required,
    Invalid,
    Forbidden,
}

impl FieldReason {
    fn as_str(self) -> &'static str {
        match self {
            FieldReason::Required => "FieldValueRequired",
            FieldReason::Invalid => "FieldValueInvalid",
            FieldReason::Forbidden => "FieldValueForbidden",
        }
    }
}
