//! Custom resource schemas: pruning, defaulting and validation against a
//! CRD version's `openAPIV3Schema`, including `x-kubernetes-validations`
//! (CEL) rules with `oldSelf` transition rules.
//!
//! CONTRACT (used by the server; bodies are filled in by the schema work):

use serde_json::Value;

/// One field-level validation failure, shaped like a Kubernetes `StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Kubernetes field path, e.g. `spec.images[0].digest`.
    pub field: String,
    /// `StatusCause.reason`, e.g. `FieldValueInvalid`, `FieldValueRequired`,
    /// `FieldValueNotSupported`, `FieldValueTypeInvalid`, `FieldValueForbidden`.
    pub reason: String,
    /// The full message, as the API server words it, e.g.
    /// `spec.images[0].digest: Invalid value: "x": spec.images[0].digest in body should match '^sha256:[a-f0-9]{64}$'`.
    pub message: String,
}

/// How a list is merged by server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    /// An associative list keyed by these fields.
    Map(Vec<String>),
}

/// A compiled structural schema of one CRD version.
pub struct StructuralSchema {
    _schema: Value,
}

impl StructuralSchema {
    /// Compiles the `openAPIV3Schema` of a CRD version.
    pub fn new(openapi_v3_schema: &Value) -> Result<Self, String> {
        Ok(Self {
            _schema: openapi_v3_schema.clone(),
        })
    }

    /// Prunes unknown fields (honouring `x-kubernetes-preserve-unknown-fields`
    /// and `x-kubernetes-embedded-resource`), drops `null` for non-nullable
    /// fields and applies `default`s, in place, on a whole object.
    pub fn normalize(&self, _object: &mut Value) {}

    /// Validates a whole object (after `normalize`) against the schema and its
    /// CEL rules. `old` is the stored object on update (transition rules run
    /// only then).
    pub fn validate(&self, _object: &Value, _old: Option<&Value>) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    /// The list type at `path` (field names from the object root, `[]` for a
    /// list element), from `x-kubernetes-list-type`/`-list-map-keys`.
    /// Lists without an annotation are atomic.
    pub fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}
