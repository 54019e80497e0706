//! Custom resource schemas: pruning, defaulting and validation against a
//! CRD version's `openAPIV3Schema`, including `x-kubernetes-validations`
//! (CEL) rules with `oldSelf` transition rules.
//!
//! The structural checks are done by `jsonschema` on a translation of the
//! OpenAPI v3 schema to JSON Schema draft 4 (see [`openapi`]); the CEL rules by
//! `kube-cel`. What neither knows about (list-type uniqueness, embedded
//! resources, the apiserver's error wording) is done here, following
//! `k8s.io/apiextensions-apiserver`.
//!
//! When a CRD is written, [`check_rules`] does what kube-apiserver does with
//! its rules before accepting it: their shape, compilation, `oldSelf`
//! placement and the CEL cost budget (see [`rules`] and [`cost`]).

mod cel;
pub(crate) mod cost;
pub(crate) mod field;
mod listtype;
mod normalize;
mod openapi;
mod rules;

use serde_json::Value;

use field::BadValue;
pub use rules::{ExpressionCost, RulesReport};

/// Checks the `x-kubernetes-validations` of a CRD version's
/// `openAPIV3Schema` as kube-apiserver does when the CRD is created or
/// updated, reporting at `schema_path` (`spec.validation.openAPIV3Schema`
/// when every version has the same schema, as the server reports it, else
/// `spec.versions[i].schema.openAPIV3Schema`). The CRD is refused if
/// [`RulesReport::errors`] is not empty.
pub fn check_rules(openapi_v3_schema: &Value, schema_path: &str) -> RulesReport {
    rules::check(openapi_v3_schema, schema_path)
}

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

/// How an object is merged and tracked by server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// An object with declared fields (`properties`): each field is tracked
    /// on its own, the object itself is not.
    Struct,
    /// A map whose keys are data (`additionalProperties`, labels, or an
    /// object the schema does not describe): each entry is tracked on its own
    /// and also counts as owned itself.
    Granular,
    /// `x-kubernetes-map-type: atomic`: replaced and owned as a whole.
    Atomic,
}

impl FieldError {
    /// Whether this error keeps the CEL rules from running, as apiextensions'
    /// `hasBlockingErr` decides: a value of the wrong type, a required field
    /// missing, a value outside the enum, too long a string, or too many items
    /// or properties mean the object lacks the shape its rules were written for.
    fn blocks_rules(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "FieldValueNotSupported"
                | "FieldValueRequired"
                | "FieldValueTooLong"
                | "FieldValueTooMany"
                | "FieldValueTypeInvalid"
        )
    }
}

/// What the apiserver reports in place of the CEL rules it did not run.
const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// A compiled structural schema of one CRD version.
pub struct StructuralSchema {
    schema: Value,
    openapi: jsonschema::Validator,
    cel: kube_cel::CompiledSchema,
    /// Whether the schema has CEL rules at all: the apiserver has no CEL
    /// validator for a schema without them, so nothing is reported as unchecked.
    has_rules: bool,
}

impl StructuralSchema {
    /// Compiles the `openAPIV3Schema` of a CRD version.
    ///
    /// The error is the reason the CRD is refused, worded for the client.
    pub fn new(openapi_v3_schema: &Value) -> Result<Self, String> {
        let openapi = openapi::compile(openapi_v3_schema)
            .map_err(|error| format!("invalid openAPIV3Schema: {error}"))?;
        let cel = kube_cel::compile_schema(openapi_v3_schema);
        if let Some(error) = cel::first_compilation_error(&cel) {
            return Err(format!("invalid x-kubernetes-validations rule: {error}"));
        }
        Ok(Self {
            schema: openapi_v3_schema.clone(),
            openapi,
            cel,
            has_rules: has_rules(openapi_v3_schema),
        })
    }

    /// Prunes unknown fields (honouring `x-kubernetes-preserve-unknown-fields`
    /// and `x-kubernetes-embedded-resource`), drops `null` for non-nullable
    /// fields and applies `default`s, in place, on a whole object.
    pub fn normalize(&self, object: &mut Value) {
        normalize::prune(object, &self.schema, true);
        normalize::drop_non_nullable_nulls(object, &self.schema);
        normalize::apply_defaults(object, &self.schema);
    }

    /// Validates a whole object (after `normalize`) against the schema and its
    /// CEL rules, as the apiserver's custom resource strategy does. `old` is
    /// the stored object on update (transition rules run only then).
    /// `metadata_errors` are what the validation of the object's metadata
    /// found, which the apiserver does first, in the same list.
    ///
    /// The CEL rules run only if no error so far blocks them (see
    /// [`FieldError::blocks_rules`]); if one does and the schema has rules,
    /// the apiserver adds an error of its own at field `<nil>` saying that
    /// some rules were not checked, and so does this.
    pub fn validate(
        &self,
        object: &Value,
        old: Option<&Value>,
        metadata_errors: &[FieldError],
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = openapi::validate(&self.openapi, object);
        listtype::validate(object, &self.schema, &mut errors);
        if self.has_rules {
            if metadata_errors
                .iter()
                .chain(&errors)
                .any(FieldError::blocks_rules)
            {
                errors.push(field::invalid(
                    "<nil>",
                    BadValue::Json(&Value::Null),
                    RULES_NOT_CHECKED,
                ));
            } else {
                errors.extend(cel::validate(&self.cel, &self.schema, object, old));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The list type at `path` (field names from the object root, `[]` for a
    /// list element), from `x-kubernetes-list-type`/`-list-map-keys`.
    /// Lists without an annotation are atomic.
    pub fn list_type(&self, path: &[&str]) -> ListType {
        if let Some((&"metadata", rest)) = path.split_first() {
            return object_meta_list_type(rest);
        }
        node_at(&self.schema, path).map_or(ListType::Atomic, list_type_of)
    }

    /// The map type at `path` (same path convention as [`Self::list_type`]):
    /// `x-kubernetes-map-type: atomic`, an object with `properties`, or a map.
    /// Objects the schema does not describe are maps, as for the apiserver.
    pub fn map_type(&self, path: &[&str]) -> MapType {
        if let Some((&"metadata", rest)) = path.split_first() {
            return object_meta_map_type(rest);
        }
        node_at(&self.schema, path).map_or(MapType::Granular, map_type_of)
    }
}

/// Whether `node` or a node below it has `x-kubernetes-validations`, looked
/// for where apiextensions' `hasXValidations` looks: properties, items and
/// additionalProperties.
fn has_rules(node: &Value) -> bool {
    node.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|rules| !rules.is_empty())
        || node.get("items").is_some_and(has_rules)
        || node.get("additionalProperties").is_some_and(has_rules)
        || node
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|properties| properties.values().any(has_rules))
}

/// The schema node describing the value at `path`, if the schema describes it.
fn node_at<'s>(schema: &'s Value, path: &[&str]) -> Option<&'s Value> {
    path.iter().try_fold(schema, |node, segment| {
        if *segment == "[]" {
            node.get("items")
        } else {
            node.get("properties")
                .and_then(|properties| properties.get(*segment))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
        }
    })
}

fn list_type_of(node: &Value) -> ListType {
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            node.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

fn map_type_of(node: &Value) -> MapType {
    if node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
        MapType::Atomic
    } else if node
        .get("properties")
        .is_some_and(|p| p.as_object().is_some_and(|p| !p.is_empty()))
    {
        MapType::Struct
    } else {
        MapType::Granular
    }
}

/// List types inside `metadata` (ObjectMeta), which CRD schemas do not
/// describe: the apiserver merges them with the ObjectMeta schema.
pub(crate) fn object_meta_list_type(path: &[&str]) -> ListType {
    match path {
        ["finalizers"] => ListType::Set,
        ["ownerReferences"] => ListType::Map(vec!["uid".to_owned()]),
        _ => ListType::Atomic,
    }
}

/// Map types inside `metadata` (ObjectMeta).
pub(crate) fn object_meta_map_type(path: &[&str]) -> MapType {
    match path {
        ["labels"] | ["annotations"] => MapType::Granular,
        _ => MapType::Struct,
    }
}
