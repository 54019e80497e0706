//! The static cost of `x-kubernetes-validations` expressions, estimated as
//! kube-apiserver estimates it when a CRD is written: cel-go's
//! `checker.Cost` (its per-function costs, `checker/cost.go`) with
//! apiextensions' size estimator, which takes the size of every string, list
//! and map from `maxLength`, `maxItems` and `maxProperties`, or else from
//! what fits into one 3 MiB request, and Kubernetes' settings (`has()` costs
//! nothing beyond its operand; no Kubernetes library function is priced
//! differently from cel-go for the functions covered here).
//!
//! Estimating needs the type of every sub-expression, so this is also a
//! small type checker: fields must exist, and the functions covered must be
//! applied to operands of their types, as cel-go's checker requires.
//! Functions, macros and syntax it does not cover are refused (see
//! [`CompileError::Unsupported`]) rather than guessed, so the stand-in never
//! accepts a rule the API server might refuse.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue, MapExpr, SelectExpr,
};
use kube_cel::cel::parser::Parser;
use serde_json::{Map, Value};

/// `celconfig.MaxRequestSizeBytes`: the largest request the server accepts.
pub(super) const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;
/// `StaticEstimatedCostLimit`: the most one expression may cost, times the
/// number of times its node can occur.
pub(super) const PER_EXPRESSION_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: the most all expressions of one schema may
/// cost together.
pub(super) const PER_SCHEMA_LIMIT: u64 = 100_000_000;

// Sizes of serialized JSON values, from k8s.io/apiserver/pkg/cel/limits.go.
const MAX_DURATION_SIZE_JSON: u64 = 32;
const MAX_DATETIME_SIZE_JSON: u64 = 32;
const MIN_DURATION_SIZE_JSON: u64 = 3;
const JSON_DATE_SIZE: u64 = 12;
const MIN_DATETIME_SIZE_JSON: u64 = 21;
const MIN_STRING_SIZE: u64 = 2;
const MIN_BOOL_SIZE: u64 = 4;
const MIN_NUMBER_SIZE: u64 = 1;

// cel-go's cost constants (common/cost.go).
const STRING_TRAVERSAL_COST_FACTOR: f64 = 0.1;
const REGEX_STRING_LENGTH_COST_FACTOR: f64 = 0.25;
const LIST_CREATE_BASE_COST: u64 = 10;
const MAP_CREATE_BASE_COST: u64 = 30;

/// CEL's reserved words, which apiextensions escapes as `__{word}__` when a
/// property has that name (and which are no variable names).
pub(crate) const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL declaration of a schema node, as apiextensions' `SchemaDeclType`
/// builds it: its type, `MaxElements` (the size the estimator assumes) and
/// `MinSerializedSize` (which bounds how many of it fit into a request).
#[derive(Debug)]
pub(super) struct Decl {
    kind: DeclKind,
    max_elements: u64,
    min_size: u64,
}

#[derive(Debug)]
enum DeclKind {
    Bool,
    Int,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    /// `x-kubernetes-int-or-string`.
    Dyn,
    List(Box<Decl>),
    /// A map with string keys (`additionalProperties`).
    Map(Box<Decl>),
    /// An object with declared fields, by escaped CEL name.
    Object(BTreeMap<String, Decl>),
}

/// The key type of every map: apiextensions' `StringType`, whose
/// `MaxElements` is 0.
static MAP_KEY: Decl = Decl {
    kind: DeclKind::String,
    max_elements: 0,
    min_size: MIN_STRING_SIZE,
};

impl Decl {
    fn new(kind: DeclKind, max_elements: u64, min_size: u64) -> Self {
        Self {
            kind,
            max_elements,
            min_size,
        }
    }

    /// The declaration of `schema`, or `None` where rules cannot see the
    /// node (no type, an array without items). `resource_root` is set for the
    /// root of a custom resource and for embedded resources, which always
    /// expose `apiVersion`, `kind` and `metadata.name`/`generateName`.
    pub(super) fn of_schema(schema: &Value, resource_root: bool) -> Option<Self> {
        if flag(schema, "x-kubernetes-int-or-string") {
            let max = bound(schema, "maxLength").map_or(MAX_REQUEST_SIZE_BYTES - 2, |n| n.saturating_mul(4));
            return Some(Self::new(DeclKind::Dyn, max, 1));
        }
        let schema = if resource_root {
            with_type_and_object_meta(schema)
        } else {
            Cow::Borrowed(schema)
        };
        match schema.get("type").and_then(Value::as_str)? {
            "array" => {
                let items = schema.get("items")?;
                let elem = Self::of_schema(items, flag(items, "x-kubernetes-embedded-resource"))?;
                let max = bound(&schema, "maxItems")
                    .unwrap_or_else(|| (MAX_REQUEST_SIZE_BYTES - 2) / (elem.min_size + 1));
                Some(Self::new(DeclKind::List(Box::new(elem)), max, 2))
            }
            "object" => match schema.get("additionalProperties").filter(|a| a.is_object()) {
                Some(values) => {
                    let elem = Self::of_schema(values, flag(values, "x-kubernetes-embedded-resource"))?;
                    let max = bound(&schema, "maxProperties")
                        .unwrap_or_else(|| (MAX_REQUEST_SIZE_BYTES - 2) / (elem.min_size + 6));
                    Some(Self::new(DeclKind::Map(Box::new(elem)), max, 2))
                }
                None => Some(Self::object(&schema)),
            },
            "string" => Some(Self::string(&schema)),
            "boolean" => Some(Self::new(DeclKind::Bool, 0, MIN_BOOL_SIZE)),
            "number" => Some(Self::new(DeclKind::Double, 0, MIN_NUMBER_SIZE)),
            "integer" => Some(Self::new(DeclKind::Int, 0, MIN_NUMBER_SIZE)),
            _ => None,
        }
    }

    fn object(schema: &Value) -> Self {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut fields = BTreeMap::new();
        // `{}`, plus `"name":` and the smallest value of every required
        // property the server does not default.
        let mut min_size = 2u64;
        for (name, property) in properties(schema) {
            let Some(field) = Self::of_schema(property, flag(property, "x-kubernetes-embedded-resource"))
            else {
                continue;
            };
            if required.contains(&name.as_str()) && property.get("default").is_none() {
                min_size = min_size.saturating_add(name.len() as u64 + field.min_size + 4);
            }
            if let Some(escaped) = escape(name) {
                fields.insert(escaped, field);
            }
        }
        Self::new(DeclKind::Object(fields), 0, min_size)
    }

    fn string(schema: &Value) -> Self {
        let max_length = bound(schema, "maxLength");
        match schema.get("format").and_then(Value::as_str) {
            Some("byte") => Self::new(
                DeclKind::Bytes,
                max_length.unwrap_or(MAX_REQUEST_SIZE_BYTES - 2),
                MIN_STRING_SIZE,
            ),
            Some("duration") => Self::new(DeclKind::Duration, MAX_DURATION_SIZE_JSON, MIN_DURATION_SIZE_JSON),
            Some("date") => Self::new(DeclKind::Timestamp, JSON_DATE_SIZE, JSON_DATE_SIZE),
            Some("date-time") => Self::new(
                DeclKind::Timestamp,
                MAX_DATETIME_SIZE_JSON,
                MIN_DATETIME_SIZE_JSON,
            ),
            _ => {
                let longest_enum = schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .filter(|values| !values.is_empty())
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|value| value.len() as u64)
                            .max()
                            .unwrap_or(0)
                    });
                // maxLength counts characters; a character may take 4 bytes.
                let max = max_length
                    .map(|n| n.saturating_mul(4))
                    .or(longest_enum)
                    .unwrap_or(MAX_REQUEST_SIZE_BYTES - 2);
                Self::new(DeclKind::String, max, MIN_STRING_SIZE)
            }
        }
    }

    /// How many times a node of this declaration fits into one request:
    /// the cardinality of a rule's node below unbounded lists or maps.
    pub(super) fn max_cardinality(&self) -> u64 {
        MAX_REQUEST_SIZE_BYTES / (self.min_size + 1)
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// A `maxLength`/`maxItems`/`maxProperties`, negative values as 0.
pub(super) fn bound(schema: &Value, name: &str) -> Option<u64> {
    let value = schema.get(name)?;
    value
        .as_u64()
        .or_else(|| value.as_i64().map(|n| n.max(0).unsigned_abs()))
}

/// apiextensions' `WithTypeAndObjectMeta`: the root of a resource always
/// declares `kind`, `apiVersion` and `metadata.name`/`generateName`.
fn with_type_and_object_meta(schema: &Value) -> Cow<'_, Value> {
    let is_string = |node: Option<&Value>| node.and_then(|n| n.get("type")) == Some(&Value::from("string"));
    let props = schema.get("properties");
    let metadata = props.and_then(|p| p.get("metadata"));
    let complete = is_string(props.and_then(|p| p.get("kind")))
        && is_string(props.and_then(|p| p.get("apiVersion")))
        && metadata.and_then(|m| m.get("type")) == Some(&Value::from("object"))
        && is_string(metadata.and_then(|m| m.pointer("/properties/name")))
        && is_string(metadata.and_then(|m| m.pointer("/properties/generateName")));
    if complete {
        return Cow::Borrowed(schema);
    }
    let string = serde_json::json!({"type": "string"});
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert("kind".to_owned(), string.clone());
            properties.insert("apiVersion".to_owned(), string.clone());
            properties.insert(
                "metadata".to_owned(),
                serde_json::json!({"type": "object", "properties": {"name": string, "generateName": string}}),
            );
        }
    }
    Cow::Owned(schema)
}

/// apiextensions' `Escape`: the CEL name of a property, `None` when a rule
/// cannot name it.
fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/');
    let first = name.chars().next()?;
    if first.is_ascii_digit() || !name.chars().all(allowed) {
        return None;
    }
    Some(
        name.replace("__", "__underscores__")
            .replace('.', "__dot__")
            .replace('-', "__dash__")
            .replace('/', "__slash__"),
    )
}

/// A range of sizes or costs, as cel-go's `SizeEstimate`/`CostEstimate`:
/// arithmetic saturates at `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    min: u64,
    max: u64,
}

impl Range {
    const ZERO: Range = Range { min: 0, max: 0 };
    const UNKNOWN: Range = Range {
        min: 0,
        max: u64::MAX,
    };

    fn fixed(n: u64) -> Self {
        Self { min: n, max: n }
    }

    fn add(self, other: Self) -> Self {
        Self {
            min: self.min.saturating_add(other.min),
            max: self.max.saturating_add(other.max),
        }
    }

    fn mul(self, other: Self) -> Self {
        Self {
            min: self.min.saturating_mul(other.min),
            max: self.max.saturating_mul(other.max),
        }
    }

    /// cel-go's `MultiplyByCostFactor`: rounded up.
    fn factor(self, factor: f64) -> Self {
        Self {
            min: times_factor(self.min, factor),
            max: times_factor(self.max, factor),
        }
    }

    fn union(self, other: Self) -> Self {
        Self {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

fn times_factor(n: u64, factor: f64) -> u64 {
    let product = (n as f64 * factor).ceil();
    if product >= u64::MAX as f64 {
        u64::MAX
    } else {
        product as u64
    }
}

/// The sizes of the keys (or indexes) and values of a list or map literal,
/// which cel-go tracks so that iterating over one is estimated exactly.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Range,
    val: Range,
}

impl Entry {
    fn union(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
        let (a, b) = (a?, b?);
        Some(Entry {
            key: a.key.union(b.key),
            val: a.val.union(b.val),
        })
    }
}

/// The type of an expression, as far as the estimate needs it.
#[derive(Debug, Clone)]
enum Ty<'d> {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Dyn,
    Type,
    List(Box<Ty<'d>>),
    Map(Box<Ty<'d>>, Box<Ty<'d>>),
    /// An object of the schema, by its declaration: two objects have the
    /// same type only if they come from the same schema node.
    Object(&'d Decl),
}

impl<'d> Ty<'d> {
    fn of(decl: &'d Decl) -> Self {
        match &decl.kind {
            DeclKind::Bool => Ty::Bool,
            DeclKind::Int => Ty::Int,
            DeclKind::Double => Ty::Double,
            DeclKind::String => Ty::String,
            DeclKind::Bytes => Ty::Bytes,
            DeclKind::Duration => Ty::Duration,
            DeclKind::Timestamp => Ty::Timestamp,
            DeclKind::Dyn => Ty::Dyn,
            DeclKind::List(elem) => Ty::List(Box::new(Ty::of(elem))),
            DeclKind::Map(elem) => Ty::Map(Box::new(Ty::String), Box::new(Ty::of(elem))),
            DeclKind::Object(_) => Ty::Object(decl),
        }
    }

    /// cel-go's `isScalar`: types whose size is always 1.
    fn is_scalar(&self) -> bool {
        matches!(
            self,
            Ty::Bool | Ty::Double | Ty::Duration | Ty::Int | Ty::Timestamp | Ty::Uint
        )
    }

    fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".to_owned(),
            Ty::Int => "int".to_owned(),
            Ty::Uint => "uint".to_owned(),
            Ty::Double => "double".to_owned(),
            Ty::String => "string".to_owned(),
            Ty::Bytes => "bytes".to_owned(),
            Ty::Null => "null_type".to_owned(),
            Ty::Duration => "google.protobuf.Duration".to_owned(),
            Ty::Timestamp => "google.protobuf.Timestamp".to_owned(),
            Ty::Dyn => "dyn".to_owned(),
            Ty::Type => "type".to_owned(),
            Ty::List(elem) => format!("list({})", elem.name()),
            Ty::Map(key, value) => format!("map({}, {})", key.name(), value.name()),
            Ty::Object(_) => "object".to_owned(),
        }
    }
}

/// Whether values of the two types may meet in one overload (equality, a
/// list and its element, the branches of `?:`).
fn compatible(a: &Ty<'_>, b: &Ty<'_>) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        (Ty::Null, Ty::Null | Ty::Object(_) | Ty::Timestamp | Ty::Duration)
        | (Ty::Object(_) | Ty::Timestamp | Ty::Duration, Ty::Null) => true,
        (Ty::List(x), Ty::List(y)) => compatible(x, y),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => compatible(k1, k2) && compatible(v1, v2),
        (Ty::Object(x), Ty::Object(y)) => std::ptr::eq(*x, *y),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The more specific of two compatible types.
fn unify<'d>(a: &Ty<'d>, b: &Ty<'d>) -> Ty<'d> {
    match (a, b) {
        (Ty::Dyn | Ty::Null, other) | (other, Ty::Dyn | Ty::Null) => other.clone(),
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(unify(x, y))),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => Ty::Map(Box::new(unify(k1, k2)), Box::new(unify(v1, v2))),
        (a, _) => a.clone(),
    }
}

/// One step of the field path of a value reached from `self`/`oldSelf`,
/// which the size estimator follows through the schema.
#[derive(Debug, Clone)]
enum Step {
    Field(String),
    Items,
    Values,
    Keys,
    Indices,
}

/// An estimated sub-expression.
struct Node<'d> {
    ty: Ty<'d>,
    cost: Range,
    /// cel-go's `computeSize`: known from the expression, else from the
    /// schema by path, else 1 for scalars; `None` is unknown.
    size: Option<Range>,
    entry: Option<Entry>,
    path: Option<Vec<Step>>,
}

impl Node<'_> {
    fn size_or_unknown(&self) -> Range {
        self.size.unwrap_or(Range::UNKNOWN)
    }
}

/// What the function part of a call contributes (arguments included,
/// target excluded).
struct Call<'d> {
    ty: Ty<'d>,
    cost: Range,
    size: Option<Range>,
    entry: Option<Entry>,
    path: Option<Vec<Step>>,
}

impl<'d> Call<'d> {
    fn new(ty: Ty<'d>, cost: Range) -> Self {
        Self {
            ty,
            cost,
            size: None,
            entry: None,
            path: None,
        }
    }
}

struct Local<'d> {
    name: String,
    ty: Ty<'d>,
    path: Option<Vec<Step>>,
    size: Option<Range>,
    entry: Option<Entry>,
}

/// Why an expression cannot be estimated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CompileError {
    /// The expression does not parse (cel-go's wording, from the same
    /// ANTLR grammar).
    Syntax(String),
    /// The expression parses but cel-go's checker would refuse it.
    Check(String),
    /// The expression uses something this estimator does not price. The
    /// stand-in refuses it instead of guessing.
    Unsupported(String),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Syntax(message) => f.write_str(message),
            CompileError::Check(message) => write!(f, "ERROR: <input>: {message}"),
            CompileError::Unsupported(what) => write!(
                f,
                "kube-standin cannot estimate the cost of {what}, so it refuses the rule rather than \
                 accept one kube-apiserver may refuse (see \"CEL cost budget\" in kube-standin's README)"
            ),
        }
    }
}

/// The result type of an expression, where the caller cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    Bool,
    String,
    Other,
}

/// The estimate of one expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Estimate {
    /// The largest cost of one evaluation (cel-go's `CostEstimate.Max`).
    pub(super) max_cost: u64,
    pub(super) output: Output,
    pub(super) uses_old_self: bool,
}

/// Estimates `source` evaluated on a node declared by `root` (`self` and
/// `oldSelf`).
pub(super) fn estimate(source: &str, root: &Decl) -> Result<Estimate, CompileError> {
    let ast = Parser::new()
        .parse(source)
        .map_err(|errors| CompileError::Syntax(errors.to_string()))?;
    let mut estimator = Estimator {
        root,
        locals: Vec::new(),
        uses_old_self: false,
    };
    let node = estimator.expr(&ast)?;
    let output = match node.ty {
        Ty::Bool => Output::Bool,
        Ty::String => Output::String,
        _ => Output::Other,
    };
    Ok(Estimate {
        max_cost: node.cost.max,
        output,
        uses_old_self: estimator.uses_old_self,
    })
}

struct Estimator<'d> {
    root: &'d Decl,
    locals: Vec<Local<'d>>,
    uses_old_self: bool,
}

fn check(message: String) -> CompileError {
    CompileError::Check(message)
}

fn no_overload(function: &str, target: Option<&Node<'_>>, args: &[Node<'_>]) -> CompileError {
    let args: Vec<String> = args.iter().map(|a| a.ty.name()).collect();
    let applied = match target {
        Some(target) => format!("{}.({})", target.ty.name(), args.join(", ")),
        None => format!("({})", args.join(", ")),
    };
    check(format!(
        "found no matching overload for '{function}' applied to '{applied}'"
    ))
}

fn with_step(path: &Option<Vec<Step>>, step: Step) -> Option<Vec<Step>> {
    path.as_ref().map(|path| {
        let mut path = path.clone();
        path.push(step);
        path
    })
}

/// cel-go's comparison of two values by size (`==`, `!=`, and `<`… on
/// strings and bytes): a traversal of the shorter one.
fn by_size(a: &Node<'_>, b: &Node<'_>, args: Range) -> Range {
    let smallest_max = a.size_or_unknown().max.min(b.size_or_unknown().max);
    let min = u64::from(smallest_max > 0);
    Range {
        min,
        max: smallest_max,
    }
    .factor(STRING_TRAVERSAL_COST_FACTOR)
    .add(args)
}

impl<'d> Estimator<'d> {
    fn expr(&mut self, expr: &IdedExpr) -> Result<Node<'d>, CompileError> {
        match &expr.expr {
            Expr::Literal(literal) => Ok(literal_node(literal)),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => self.select(select),
            Expr::Call(call) => self.call(call),
            Expr::List(list) => self.list(list),
            Expr::Map(map) => self.map(map),
            Expr::Comprehension(comprehension) => self.comprehension(comprehension),
            Expr::Struct(_) => Err(CompileError::Unsupported("message construction".to_owned())),
            Expr::Unspecified => Err(CompileError::Unsupported("an empty expression".to_owned())),
        }
    }

    /// The size cel-go's `computeSize` finds after a known one: the schema's
    /// bound by path, then 1 for scalars.
    fn sized(&self, known: Option<Range>, ty: &Ty<'_>, path: &Option<Vec<Step>>) -> Option<Range> {
        known
            .or_else(|| path.as_deref().and_then(|path| self.size_at(path)))
            .or_else(|| ty.is_scalar().then_some(Range::fixed(1)))
    }

    /// apiextensions' `sizeEstimator.EstimateSize`: `MaxElements` of the
    /// declaration at `path`.
    fn size_at(&self, path: &[Step]) -> Option<Range> {
        let mut decl = self.root;
        for step in path {
            decl = match (step, &decl.kind) {
                (Step::Field(name), DeclKind::Object(fields)) => fields.get(name)?,
                (Step::Items | Step::Values, DeclKind::List(elem) | DeclKind::Map(elem)) => elem,
                (Step::Keys, DeclKind::Map(_)) => &MAP_KEY,
                _ => return None,
            };
        }
        Some(Range {
            min: 0,
            max: decl.max_elements,
        })
    }

    fn local(&self, name: &str) -> Option<&Local<'d>> {
        self.locals.iter().rev().find(|local| local.name == name)
    }

    fn ident(&mut self, name: &str) -> Result<Node<'d>, CompileError> {
        let cost = Range::fixed(1);
        if let Some(local) = self.local(name) {
            let size = self.sized(None, &local.ty, &local.path).or(local.size);
            return Ok(Node {
                ty: local.ty.clone(),
                cost,
                size,
                entry: local.entry,
                path: local.path.clone(),
            });
        }
        match name {
            "self" | "oldSelf" => {
                self.uses_old_self |= name == "oldSelf";
                let ty = Ty::of(self.root);
                let path = Some(Vec::new());
                Ok(Node {
                    size: self.sized(None, &ty, &path),
                    ty,
                    cost,
                    entry: None,
                    path,
                })
            }
            "bool" | "int" | "uint" | "double" | "string" | "bytes" | "list" | "map" | "null_type"
            | "type" => Ok(Node {
                ty: Ty::Type,
                cost,
                size: None,
                entry: None,
                path: None,
            }),
            _ => Err(check(format!(
                "undeclared reference to '{name}' (in container '')"
            ))),
        }
    }

    fn field_type(&self, operand: &Node<'d>, field: &str) -> Result<(Ty<'d>, Range), CompileError> {
        match &operand.ty {
            Ty::Object(decl) => match &decl.kind {
                DeclKind::Object(fields) => fields
                    .get(field)
                    .map(|f| (Ty::of(f), Range::fixed(1)))
                    .ok_or_else(|| check(format!("undefined field '{field}'"))),
                _ => Err(check(format!("undefined field '{field}'"))),
            },
            Ty::Map(_, value) => Ok(((**value).clone(), Range::fixed(1))),
            Ty::Dyn => Ok((Ty::Dyn, Range::ZERO)),
            other => Err(check(format!(
                "type '{}' does not support field selection",
                other.name()
            ))),
        }
    }

    fn select(&mut self, select: &SelectExpr) -> Result<Node<'d>, CompileError> {
        let operand = self.expr(&select.operand)?;
        let (ty, cost) = self.field_type(&operand, &select.field)?;
        if select.test {
            // Kubernetes keeps has() at cost 0 (PresenceTestHasCost(false)).
            return Ok(Node {
                ty: Ty::Bool,
                cost: operand.cost,
                size: Some(Range::fixed(1)),
                entry: None,
                path: None,
            });
        }
        let path = with_step(&operand.path, Step::Field(select.field.clone()));
        Ok(Node {
            size: self.sized(None, &ty, &path),
            ty,
            cost: operand.cost.add(cost),
            entry: None,
            path,
        })
    }

    fn list(&mut self, list: &ListExpr) -> Result<Node<'d>, CompileError> {
        if !list.optional_indices.is_empty() {
            return Err(CompileError::Unsupported("optional list elements".to_owned()));
        }
        let mut cost = Range::fixed(LIST_CREATE_BASE_COST);
        let mut elem_ty = Ty::Dyn;
        let mut item_size = if list.elements.is_empty() {
            Range::ZERO
        } else {
            Range {
                min: u64::MAX,
                max: 0,
            }
        };
        for (index, element) in list.elements.iter().enumerate() {
            let node = self.expr(element)?;
            if index > 0 && !compatible(&elem_ty, &node.ty) {
                return Err(check(format!(
                    "expected type '{}' but found '{}'",
                    elem_ty.name(),
                    node.ty.name()
                )));
            }
            elem_ty = if index == 0 {
                node.ty.clone()
            } else {
                unify(&elem_ty, &node.ty)
            };
            cost = cost.add(node.cost);
            item_size = item_size.union(node.size_or_unknown());
        }
        Ok(Node {
            ty: Ty::List(Box::new(elem_ty)),
            cost,
            size: Some(Range::fixed(list.elements.len() as u64)),
            entry: Some(Entry {
                key: Range::fixed(1),
                val: item_size,
            }),
            path: None,
        })
    }

    fn map(&mut self, map: &MapExpr) -> Result<Node<'d>, CompileError> {
        let mut cost = Range::fixed(MAP_CREATE_BASE_COST);
        let (mut key_ty, mut val_ty) = (Ty::Dyn, Ty::Dyn);
        let empty = if map.entries.is_empty() {
            Range::ZERO
        } else {
            Range {
                min: u64::MAX,
                max: 0,
            }
        };
        let (mut key_size, mut val_size) = (empty, empty);
        for (index, entry) in map.entries.iter().enumerate() {
            let EntryExpr::MapEntry(entry) = &entry.expr else {
                return Err(CompileError::Unsupported("message construction".to_owned()));
            };
            if entry.optional {
                return Err(CompileError::Unsupported("optional map entries".to_owned()));
            }
            let key = self.expr(&entry.key)?;
            let value = self.expr(&entry.value)?;
            for (seen, node) in [(&key_ty, &key), (&val_ty, &value)] {
                if index > 0 && !compatible(seen, &node.ty) {
                    return Err(check(format!(
                        "expected type '{}' but found '{}'",
                        seen.name(),
                        node.ty.name()
                    )));
                }
            }
            key_ty = if index == 0 {
                key.ty.clone()
            } else {
                unify(&key_ty, &key.ty)
            };
            val_ty = if index == 0 {
                value.ty.clone()
            } else {
                unify(&val_ty, &value.ty)
            };
            cost = cost.add(key.cost).add(value.cost);
            key_size = key_size.union(key.size_or_unknown());
            val_size = val_size.union(value.size_or_unknown());
        }
        Ok(Node {
            ty: Ty::Map(Box::new(key_ty), Box::new(val_ty)),
            cost,
            size: Some(Range::fixed(map.entries.len() as u64)),
            entry: Some(Entry {
                key: key_size,
                val: val_size,
            }),
            path: None,
        })
    }

    /// cel-go's `costComprehension`: the range, the accumulator's start and
    /// the result once, the loop condition and step once per element.
    fn comprehension(&mut self, comprehension: &ComprehensionExpr) -> Result<Node<'d>, CompileError> {
        let range = self.expr(&comprehension.iter_range)?;
        let init = self.expr(&comprehension.accu_init)?;
        let entry = range.entry;
        let (first, second) = match &range.ty {
            Ty::List(elem) => {
                let item = (
                    (**elem).clone(),
                    with_step(&range.path, Step::Items),
                    entry.map(|e| e.val),
                );
                let index = (
                    Ty::Int,
                    with_step(&range.path, Step::Indices),
                    entry.map(|e| e.key),
                );
                if comprehension.iter_var2.is_some() {
                    (index, Some(item))
                } else {
                    (item, None)
                }
            }
            Ty::Map(key, value) => {
                let key = (
                    (**key).clone(),
                    with_step(&range.path, Step::Keys),
                    entry.map(|e| e.key),
                );
                let value = (
                    (**value).clone(),
                    with_step(&range.path, Step::Values),
                    entry.map(|e| e.val),
                );
                (key, comprehension.iter_var2.is_some().then_some(value))
            }
            Ty::Dyn => {
                let any = (Ty::Dyn, with_step(&range.path, Step::Keys), None);
                (any.clone(), comprehension.iter_var2.is_some().then_some(any))
            }
            other => {
                return Err(check(format!(
                    "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                    other.name()
                )));
            }
        };
        let scope = self.locals.len();
        self.locals.push(Local {
            name: comprehension.accu_var.clone(),
            ty: init.ty.clone(),
            path: None,
            size: init.size,
            entry: init.entry,
        });
        let mut vars = vec![(comprehension.iter_var.clone(), first)];
        if let (Some(name), Some(second)) = (&comprehension.iter_var2, second) {
            vars.push((name.clone(), second));
        }
        for (name, (ty, path, size)) in vars {
            self.locals.push(Local {
                name,
                ty,
                path,
                size,
                entry: None,
            });
        }
        let condition = self.expr(&comprehension.loop_cond);
        let step = self.expr(&comprehension.loop_step);
        self.locals.truncate(scope + 1);
        let (condition, step) = match (condition, step) {
            (Ok(condition), Ok(step)) => (condition, step),
            (Err(error), _) | (_, Err(error)) => {
                self.locals.truncate(scope);
                return Err(error);
            }
        };
        // The checker gives `[]` the type the step builds.
        if let Some(accu) = self.locals.last_mut() {
            accu.ty = unify(&accu.ty, &step.ty);
        }
        let result = self.expr(&comprehension.result);
        self.locals.truncate(scope);
        let result = result?;

        let count = range.size_or_unknown();
        let cost = range
            .cost
            .add(init.cost)
            .add(result.cost)
            .add(count.mul(step.cost.add(condition.cost)));
        let (size, entry) = match &comprehension.accu_init.expr {
            Expr::Literal(_) => (init.size, None),
            Expr::List(_) | Expr::Map(_) => (Some(count), step.entry),
            _ => (None, None),
        };
        Ok(Node {
            size: self.sized(size, &result.ty, &None),
            ty: result.ty,
            cost,
            entry,
            path: None,
        })
    }

    fn call(&mut self, call: &CallExpr) -> Result<Node<'d>, CompileError> {
        let name = call.func_name.as_str();
        if name == "matches" {
            check_regex_literal(call.args.last())?;
        }
        let args = call
            .args
            .iter()
            .map(|arg| self.expr(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let target = match &call.target {
            Some(target) => Some(self.expr(target)?),
            None => None,
        };
        let arg_cost = args.iter().fold(Range::ZERO, |sum, arg| sum.add(arg.cost));
        let target_cost = target.as_ref().map_or(Range::ZERO, |t| t.cost);
        let result = match &target {
            None => self.global(name, &args, arg_cost)?,
            Some(target) => member(name, target, &args, arg_cost)?,
        };
        Ok(Node {
            size: self.sized(result.size, &result.ty, &result.path),
            ty: result.ty,
            cost: target_cost.add(result.cost),
            entry: result.entry,
            path: result.path,
        })
    }

    fn global(&self, name: &str, args: &[Node<'d>], arg_cost: Range) -> Result<Call<'d>, CompileError> {
        let fixed = Range::fixed(1).add(arg_cost);
        let refuse = || no_overload(name, None, args);
        let is_bool = |node: &Node<'_>| matches!(node.ty, Ty::Bool | Ty::Dyn);
        match (name, args) {
            ("_&&_" | "_||_", [lhs, rhs]) => {
                if !is_bool(lhs) || !is_bool(rhs) {
                    return Err(refuse());
                }
                // Short-circuits: at least the left side, at most both.
                let cost = Range {
                    min: lhs.cost.min,
                    max: lhs.cost.add(rhs.cost).max,
                };
                Ok(Call::new(Ty::Bool, cost))
            }
            ("!_" | "@not_strictly_false", [operand]) => {
                if !is_bool(operand) {
                    return Err(refuse());
                }
                Ok(Call::new(Ty::Bool, fixed))
            }
            ("-_", [operand]) => match operand.ty {
                Ty::Int | Ty::Double | Ty::Dyn => Ok(Call::new(operand.ty.clone(), fixed)),
                _ => Err(refuse()),
            },
            ("_?_:_", [condition, if_true, if_false]) => {
                if !is_bool(condition) || !compatible(&if_true.ty, &if_false.ty) {
                    return Err(refuse());
                }
                let cost = condition.cost.add(if_true.cost.union(if_false.cost));
                Ok(Call {
                    ty: unify(&if_true.ty, &if_false.ty),
                    cost,
                    size: Some(if_true.size_or_unknown().union(if_false.size_or_unknown())),
                    entry: Entry::union(if_true.entry, if_false.entry),
                    path: None,
                })
            }
            ("_==_" | "_!=_", [lhs, rhs]) => {
                if !compatible(&lhs.ty, &rhs.ty) {
                    return Err(refuse());
                }
                Ok(Call::new(Ty::Bool, by_size(lhs, rhs, arg_cost)))
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", [lhs, rhs]) => {
                let cost = match (&lhs.ty, &rhs.ty) {
                    (Ty::String, Ty::String | Ty::Dyn)
                    | (Ty::Dyn, Ty::String)
                    | (Ty::Bytes, Ty::Bytes | Ty::Dyn)
                    | (Ty::Dyn, Ty::Bytes) => by_size(lhs, rhs, arg_cost),
                    (Ty::Dyn, Ty::Dyn) => by_size(lhs, rhs, arg_cost).union(fixed),
                    (a, b) if a.is_numeric() && (b.is_numeric() || b.is_dyn()) => fixed,
                    (Ty::Dyn, b) if b.is_numeric() => fixed,
                    (Ty::Timestamp, Ty::Timestamp)
                    | (Ty::Duration, Ty::Duration)
                    | (Ty::Bool, Ty::Bool)
                    | (Ty::Dyn, Ty::Timestamp | Ty::Duration | Ty::Bool)
                    | (Ty::Timestamp | Ty::Duration | Ty::Bool, Ty::Dyn) => fixed,
                    _ => return Err(refuse()),
                };
                Ok(Call::new(Ty::Bool, cost))
            }
            ("_+_", [lhs, rhs]) => add(lhs, rhs, arg_cost).ok_or_else(refuse),
            ("_-_", [lhs, rhs]) => {
                let ty = match (&lhs.ty, &rhs.ty) {
                    (Ty::Timestamp, Ty::Timestamp) => Ty::Duration,
                    (Ty::Timestamp, Ty::Duration) => Ty::Timestamp,
                    (Ty::Duration, Ty::Duration) => Ty::Duration,
                    (a, b) if same_numeric(a, b) => unify(a, b),
                    _ => return Err(refuse()),
                };
                Ok(Call::new(ty, fixed))
            }
            ("_*_" | "_/_", [lhs, rhs]) if same_numeric(&lhs.ty, &rhs.ty) => {
                Ok(Call::new(unify(&lhs.ty, &rhs.ty), fixed))
            }
            ("_%_", [lhs, rhs])
                if same_numeric(&lhs.ty, &rhs.ty) && !matches!(unify(&lhs.ty, &rhs.ty), Ty::Double) =>
            {
                Ok(Call::new(unify(&lhs.ty, &rhs.ty), fixed))
            }
            ("_[_]", [container, index]) => self.index(container, index, fixed).ok_or_else(refuse),
            ("@in", [element, container]) => match &container.ty {
                Ty::List(elem) if compatible(elem, &element.ty) => Ok(Call::new(
                    Ty::Bool,
                    container.size_or_unknown().factor(1.0).add(arg_cost),
                )),
                Ty::Map(key, _) if compatible(key, &element.ty) => Ok(Call::new(Ty::Bool, fixed)),
                // Either overload: a list's traversal or a map's lookup.
                Ty::Dyn => Ok(Call::new(
                    Ty::Bool,
                    container.size_or_unknown().factor(1.0).add(arg_cost).union(fixed),
                )),
                _ => Err(refuse()),
            },
            ("size", [operand]) => sized_function(operand, fixed).ok_or_else(refuse),
            ("matches", [text, regex]) if string_like(text) && string_like(regex) => {
                Ok(Call::new(Ty::Bool, fixed))
            }
            ("dyn", [operand]) => Ok(Call {
                ty: Ty::Dyn,
                cost: fixed,
                size: operand.size,
                entry: operand.entry,
                path: None,
            }),
            ("type", [_]) => Ok(Call::new(Ty::Type, fixed)),
            ("string", [operand]) => match operand.ty {
                Ty::Bytes | Ty::Dyn => {
                    let size = operand.size_or_unknown();
                    let traversal = size.factor(STRING_TRAVERSAL_COST_FACTOR).add(arg_cost);
                    // A dyn operand may be bytes, or anything converted in O(1).
                    let cost = if operand.ty.is_dyn() {
                        traversal.union(fixed)
                    } else {
                        traversal
                    };
                    Ok(Call {
                        size: Some(Range {
                            min: size.min / 4,
                            max: size.max,
                        }),
                        ..Call::new(Ty::String, cost)
                    })
                }
                Ty::String | Ty::Int | Ty::Uint | Ty::Double | Ty::Bool | Ty::Timestamp | Ty::Duration => {
                    Ok(Call::new(Ty::String, fixed))
                }
                _ => Err(refuse()),
            },
            ("bytes", [operand]) => match operand.ty {
                Ty::String | Ty::Dyn => {
                    let size = operand.size_or_unknown();
                    let traversal = size.factor(STRING_TRAVERSAL_COST_FACTOR).add(arg_cost);
                    let cost = if operand.ty.is_dyn() {
                        traversal.union(fixed)
                    } else {
                        traversal
                    };
                    Ok(Call {
                        size: Some(Range {
                            min: size.min,
                            max: size.max.saturating_mul(4),
                        }),
                        ..Call::new(Ty::Bytes, cost)
                    })
                }
                Ty::Bytes => Ok(Call::new(Ty::Bytes, fixed)),
                _ => Err(refuse()),
            },
            ("int" | "uint" | "double" | "bool" | "duration" | "timestamp", [operand]) => {
                let (ty, accepted): (Ty<'d>, bool) = match name {
                    "int" => (
                        Ty::Int,
                        operand.ty.is_numeric() || matches!(operand.ty, Ty::String | Ty::Timestamp | Ty::Dyn),
                    ),
                    "uint" => (
                        Ty::Uint,
                        operand.ty.is_numeric() || matches!(operand.ty, Ty::String | Ty::Dyn),
                    ),
                    "double" => (
                        Ty::Double,
                        operand.ty.is_numeric() || matches!(operand.ty, Ty::String | Ty::Dyn),
                    ),
                    "bool" => (Ty::Bool, matches!(operand.ty, Ty::Bool | Ty::String | Ty::Dyn)),
                    "duration" => (
                        Ty::Duration,
                        matches!(operand.ty, Ty::Duration | Ty::String | Ty::Dyn),
                    ),
                    _ => (
                        Ty::Timestamp,
                        matches!(operand.ty, Ty::Timestamp | Ty::String | Ty::Int | Ty::Dyn),
                    ),
                };
                if !accepted {
                    return Err(refuse());
                }
                Ok(Call::new(ty, fixed))
            }
            _ => Err(CompileError::Unsupported(format!("the CEL function '{name}'"))),
        }
    }

    fn index(&self, container: &Node<'d>, index: &Node<'d>, fixed: Range) -> Option<Call<'d>> {
        let (ty, step) = match &container.ty {
            Ty::List(elem) if matches!(index.ty, Ty::Int | Ty::Uint | Ty::Dyn) => {
                ((**elem).clone(), Step::Items)
            }
            Ty::Map(key, value) if compatible(key, &index.ty) => ((**value).clone(), Step::Values),
            Ty::Dyn => (Ty::Dyn, Step::Values),
            _ => return None,
        };
        Some(Call {
            ty,
            cost: fixed,
            size: container.entry.map(|entry| entry.val),
            entry: None,
            path: with_step(&container.path, step),
        })
    }
}

fn literal_node<'d>(literal: &LiteralValue) -> Node<'d> {
    let (ty, size) = match literal {
        LiteralValue::String(s) => (Ty::String, s.chars().count() as u64),
        LiteralValue::Bytes(b) => (Ty::Bytes, b.len() as u64),
        LiteralValue::Boolean(_) => (Ty::Bool, 1),
        LiteralValue::Int(_) => (Ty::Int, 1),
        LiteralValue::UInt(_) => (Ty::Uint, 1),
        LiteralValue::Double(_) => (Ty::Double, 1),
        LiteralValue::Null => (Ty::Null, 1),
    };
    Node {
        ty,
        cost: Range::ZERO,
        size: Some(Range::fixed(size)),
        entry: None,
        path: None,
    }
}

fn string_like(node: &Node<'_>) -> bool {
    matches!(node.ty, Ty::String | Ty::Dyn)
}

fn same_numeric(a: &Ty<'_>, b: &Ty<'_>) -> bool {
    match (a, b) {
        (Ty::Dyn, other) | (other, Ty::Dyn) => other.is_numeric() || other.is_dyn(),
        (a, b) => a.is_numeric() && std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// `size()` of a string, bytes, list or map: O(1).
fn sized_function<'d>(operand: &Node<'d>, fixed: Range) -> Option<Call<'d>> {
    matches!(
        operand.ty,
        Ty::String | Ty::Bytes | Ty::List(_) | Ty::Map(_, _) | Ty::Dyn
    )
    .then(|| Call::new(Ty::Int, fixed))
}

/// `_+_`: strings and bytes are copied (their joint size, times 0.1), lists
/// are concatenated in O(1), numbers, timestamps and durations added in O(1).
fn add<'d>(lhs: &Node<'d>, rhs: &Node<'d>, arg_cost: Range) -> Option<Call<'d>> {
    let fixed = Range::fixed(1).add(arg_cost);
    let joint = lhs.size_or_unknown().add(rhs.size_or_unknown());
    let entry = Entry::union(lhs.entry, rhs.entry);
    let copy = |ty: Ty<'d>| Call {
        ty,
        cost: joint.factor(STRING_TRAVERSAL_COST_FACTOR).add(arg_cost),
        size: Some(joint),
        entry,
        path: None,
    };
    match (&lhs.ty, &rhs.ty) {
        (Ty::String, Ty::String | Ty::Dyn) | (Ty::Dyn, Ty::String) => Some(copy(Ty::String)),
        (Ty::Bytes, Ty::Bytes | Ty::Dyn) | (Ty::Dyn, Ty::Bytes) => Some(copy(Ty::Bytes)),
        (Ty::List(a), Ty::List(b)) if compatible(a, b) => Some(Call {
            ty: Ty::List(Box::new(unify(a, b))),
            cost: fixed,
            size: Some(joint),
            entry,
            path: None,
        }),
        (Ty::List(_), Ty::Dyn) | (Ty::Dyn, Ty::List(_)) => Some(Call {
            ty: unify(&lhs.ty, &rhs.ty),
            cost: fixed,
            size: Some(joint),
            entry,
            path: None,
        }),
        (Ty::Dyn, Ty::Dyn) => Some(Call {
            cost: copy(Ty::Dyn).cost.union(fixed),
            ..copy(Ty::Dyn)
        }),
        (Ty::Timestamp, Ty::Duration) | (Ty::Duration, Ty::Timestamp) => {
            Some(Call::new(Ty::Timestamp, fixed))
        }
        (Ty::Duration, Ty::Duration) => Some(Call::new(Ty::Duration, fixed)),
        (a, b) if same_numeric(a, b) => Some(Call::new(unify(a, b), fixed)),
        _ => None,
    }
}

/// Member functions (`target.f(args)`).
fn member<'d>(
    name: &str,
    target: &Node<'d>,
    args: &[Node<'d>],
    arg_cost: Range,
) -> Result<Call<'d>, CompileError> {
    let fixed = Range::fixed(1).add(arg_cost);
    let refuse = || no_overload(name, Some(target), args);
    let traversal = |node: &Node<'_>| node.size_or_unknown().factor(STRING_TRAVERSAL_COST_FACTOR);
    match (name, args) {
        ("size", []) => sized_function(target, fixed).ok_or_else(refuse),
        ("contains", [substring]) if string_like(target) && string_like(substring) => Ok(Call::new(
            Ty::Bool,
            traversal(target).mul(traversal(substring)).add(arg_cost),
        )),
        ("startsWith" | "endsWith", [affix]) if string_like(target) && string_like(affix) => {
            Ok(Call::new(Ty::Bool, traversal(affix).add(arg_cost)))
        }
        ("matches", [regex]) if string_like(target) && string_like(regex) => {
            // One more than the string's length, so that an empty string
            // still costs something against an expensive regex.
            let text = target
                .size_or_unknown()
                .add(Range::fixed(1))
                .factor(STRING_TRAVERSAL_COST_FACTOR);
            let regex_cost = regex.size_or_unknown().factor(REGEX_STRING_LENGTH_COST_FACTOR);
            Ok(Call::new(Ty::Bool, text.mul(regex_cost).add(arg_cost)))
        }
        (
            "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate" | "getDayOfWeek",
            [] | [_],
        ) if matches!(target.ty, Ty::Timestamp | Ty::Dyn) && args.iter().all(string_like) => {
            Ok(Call::new(Ty::Int, fixed))
        }
        ("getHours" | "getMinutes" | "getSeconds" | "getMilliseconds", [] | [_])
            if matches!(target.ty, Ty::Timestamp | Ty::Duration | Ty::Dyn)
                && args.iter().all(string_like) =>
        {
            Ok(Call::new(Ty::Int, fixed))
        }
        (
            "size" | "contains" | "startsWith" | "endsWith" | "matches" | "getFullYear" | "getMonth"
            | "getDayOfYear" | "getDayOfMonth" | "getDate" | "getDayOfWeek" | "getHours" | "getMinutes"
            | "getSeconds" | "getMilliseconds",
            _,
        ) => Err(refuse()),
        _ => Err(CompileError::Unsupported(format!("the CEL function '{name}'"))),
    }
}

/// cel-go's `ValidateRegexLiterals`, which Kubernetes enables: a regex
/// given as a literal must compile.
fn check_regex_literal(regex: Option<&IdedExpr>) -> Result<(), CompileError> {
    if let Some(IdedExpr {
        expr: Expr::Literal(LiteralValue::String(pattern)),
        ..
    }) = regex
        && let Err(error) = regex::Regex::new(pattern)
    {
        return Err(check(format!("invalid matches argument: {error}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The cost of `rule` on a node of `schema`.
    fn cost(schema: Value, rule: &str) -> u64 {
        let decl = Decl::of_schema(&schema, false).expect("schema has a declaration");
        estimate(rule, &decl).expect("rule estimates").max_cost
    }

    fn error(schema: Value, rule: &str) -> CompileError {
        let decl = Decl::of_schema(&schema, false).expect("schema has a declaration");
        estimate(rule, &decl).expect_err("rule is refused")
    }

    fn component_image(digest: Value) -> Value {
        json!({
            "type": "object",
            "required": ["component", "image"],
            "properties": {
                "component": {"type": "string", "maxLength": 63},
                "image": {"type": "string", "maxLength": 512},
                "digest": digest,
            }
        })
    }

    const DIGEST_RULE: &str =
        "!has(self.digest) || !self.image.contains('@') || self.image.endsWith('@' + self.digest)";

    #[test]
    fn the_digest_rule_costs_what_kube_apiserver_estimated_once_per_image() {
        // !has(self.digest): 1 + 1; !contains('@'): 1 + 2 + ceil(2048 * 0.1) * 1;
        // endsWith('@' + digest): 2 + ceil(3145727 * 0.1) + (ceil(3145727 * 0.1) + 2).
        // Times 64 images: 40,279,040, which the server reported as 4.0x.
        let unbounded = cost(component_image(json!({"type": "string"})), DIGEST_RULE);
        assert_eq!(unbounded, 2 + 208 + 629_150);
        let bounded = cost(
            component_image(json!({"type": "string", "maxLength": 71})),
            DIGEST_RULE,
        );
        assert_eq!(bounded, 2 + 208 + (2 + 29 + 31));
    }

    /// `self.all(x, x.contains('gpu'))` on a list of strings, at the largest
    /// `maxItems` that kube-apiserver v0.36.3's validation was measured to
    /// accept for several `maxLength`s: 4 + ceil(0.4 * maxLength) per item.
    #[test]
    fn a_comprehension_costs_what_was_measured_on_a_real_server() {
        for (max_length, largest_accepted) in [(16, 909_090), (63, 333_333), (253, 94_339), (1024, 24_154)] {
            let list = |max_items: u64| json!({"type": "array", "maxItems": max_items, "items": {"type": "string", "maxLength": max_length}});
            let rule = "self.all(x, x.contains('gpu'))";
            assert!(
                cost(list(largest_accepted), rule) <= PER_EXPRESSION_LIMIT,
                "{max_length}"
            );
            assert!(
                cost(list(largest_accepted + 1), rule) > PER_EXPRESSION_LIMIT,
                "{max_length}"
            );
        }
    }

    #[test]
    fn unbounded_strings_are_as_long_as_a_request_and_bounded_ones_four_bytes_a_character() {
        let text = |schema: Value| {
            cost(
                json!({"type": "object", "properties": {"s": schema}}),
                "self.s == 'x'",
            )
        };
        // ceil(min(size, 1) * 0.1) + 2: equality costs the shorter side.
        assert_eq!(text(json!({"type": "string"})), 3);
        let long = |schema: Value| {
            cost(
                json!({"type": "object", "properties": {"s": schema, "t": schema}}),
                "self.s == self.t",
            )
        };
        assert_eq!(long(json!({"type": "string"})), 314_573 + 4);
        assert_eq!(long(json!({"type": "string", "maxLength": 10})), 4 + 4);
        assert_eq!(
            long(json!({"type": "string", "enum": ["SemVer", "Opaque"]})),
            1 + 4
        );
        assert_eq!(long(json!({"type": "string", "format": "date-time"})), 4 + 4);
        assert_eq!(
            long(json!({"type": "string", "format": "byte", "maxLength": 100})),
            10 + 4
        );
    }

    #[test]
    fn equality_of_objects_costs_nothing_and_of_lists_their_length() {
        let object = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        // apiextensions gives objects MaxElements 0.
        assert_eq!(cost(object, "self == oldSelf"), 2);
        let list = |max_items: Option<u64>| {
            let mut schema = json!({"type": "array", "items": {"type": "string"}});
            if let Some(max) = max_items {
                schema["maxItems"] = json!(max);
            }
            schema
        };
        assert_eq!(cost(list(Some(100)), "self == oldSelf"), 10 + 2);
        // Without maxItems: as many `""` as fit into 3 MiB.
        assert_eq!(
            cost(list(None), "self == oldSelf"),
            ((MAX_REQUEST_SIZE_BYTES - 2) / 3).div_ceil(10) + 2
        );
    }

    fn approvals(max_items: Option<u64>) -> Value {
        let mut list = json!({
            "type": "array",
            "items": {
                "type": "object",
                "required": ["user"],
                "properties": {"user": {"type": "string", "maxLength": 253}, "comment": {"type": "string"}}
            }
        });
        if let Some(max) = max_items {
            list["maxItems"] = json!(max);
        }
        json!({"type": "object", "properties": {"approvals": list}})
    }

    const APPEND_ONLY: &str =
        "!has(oldSelf.approvals) || (has(self.approvals) && oldSelf.approvals.all(a, a in self.approvals))";

    #[test]
    fn a_quadratic_rule_is_cheap_only_with_max_items() {
        // !has(): 2; has(): 1; all(): range 2, result 1, per approval
        // @not_strictly_false 2 and @result && (a in self.approvals) 1 + (32 + 1 + 2).
        assert_eq!(cost(approvals(Some(32)), APPEND_ONLY), 2 + 1 + (2 + 1 + 32 * 38));
        // An approval is at least {"user":""} (12 bytes): 241,978 of them.
        let n = (MAX_REQUEST_SIZE_BYTES - 2) / 13;
        assert_eq!(
            cost(approvals(None), APPEND_ONLY),
            2 + 1 + (2 + 1 + n * (2 + 1 + n + 3))
        );
    }

    #[test]
    fn macros_cost_their_range_times_condition_and_step() {
        let gates = json!({
            "type": "object",
            "properties": {"waive": {"type": "array", "maxItems": 8, "items": {"type": "string", "enum": ["ArtifactReady", "Approval"]}}}
        });
        // exists: per item @not_strictly_false(!@result) 3 and @result || (g == 'Approval') 1 + 2.
        assert_eq!(
            cost(gates.clone(), "!self.waive.exists(g, g == 'Approval')"),
            1 + 2 + 1 + 8 * 6
        );
        // exists_one: per item (g == 'Approval') ? @result + 1 : @result, 2 + 2; result @result == 1.
        assert_eq!(
            cost(gates.clone(), "self.waive.exists_one(g, g == 'Approval')"),
            2 + 2 + 8 * 4
        );
        // map: [] 10, per item @result + [g] 1 + 1 + 11; then size() 1.
        assert_eq!(
            cost(gates.clone(), "self.waive.map(g, g).size() == 1"),
            1 + 2 + 10 + 1 + 8 * 13 + 1
        );
        // filter: per item (g == 'Approval') ? @result + [g] : @result.
        assert_eq!(
            cost(gates, "self.waive.filter(g, g == 'Approval').size() == 0"),
            1 + 2 + 10 + 1 + 8 * 15 + 1
        );
    }

    #[test]
    fn matches_costs_the_string_times_the_regex() {
        let version = json!({"type": "object", "properties": {"v": {"type": "string", "maxLength": 128}}});
        // ceil((512 + 1) * 0.1) * ceil(8 * 0.25) + 2
        assert_eq!(cost(version, "self.v.matches('^[0-9]+$')"), 52 * 2 + 2);
    }

    #[test]
    fn has_costs_only_its_operand_and_conditionals_their_dearer_branch() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 100}, "b": {"type": "integer"}}});
        assert_eq!(cost(schema.clone(), "has(self.a)"), 1);
        // 1 + max(ceil(min(400, 1) * 0.1) + 2, 2 + 0 + 1)
        assert_eq!(
            cost(schema.clone(), "has(self.a) ? self.a == 'x' : self.b > 0"),
            1 + 3
        );
        assert_eq!(cost(schema, "self.b in [1, 2, 3]"), 3 + 2 + 10);
    }

    #[test]
    fn maps_without_max_properties_hold_as_many_entries_as_fit() {
        let labels = json!({"type": "object", "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}});
        // (3 MiB - 2) / (2 + 6) entries, each: @not_strictly_false 2, @result && (k != '') 1 + 1
        // (keys have MaxElements 0, so comparing them costs nothing but the operands).
        let n = (MAX_REQUEST_SIZE_BYTES - 2) / 8;
        assert_eq!(cost(labels, "self.labels.all(k, k != '')"), 2 + 1 + n * 4);
    }

    #[test]
    fn rules_that_cel_go_would_not_compile_are_refused() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(
            error(schema.clone(), "self.b == 'x'"),
            check("undefined field 'b'".to_owned())
        );
        assert_eq!(
            error(schema.clone(), "self.a.contains(1)"),
            check("found no matching overload for 'contains' applied to 'string.(int)'".to_owned())
        );
        assert_eq!(
            error(schema.clone(), "self.a == 1"),
            check("found no matching overload for '_==_' applied to '(string, int)'".to_owned())
        );
        assert_eq!(
            error(schema.clone(), "other.a == 'x'"),
            check("undeclared reference to 'other' (in container '')".to_owned())
        );
        assert!(matches!(
            error(schema.clone(), "self.a =="),
            CompileError::Syntax(_)
        ));
        assert!(matches!(
            error(schema, "self.a.matches('(')"),
            CompileError::Check(message) if message.starts_with("invalid matches argument")
        ));
    }

    #[test]
    fn functions_the_estimator_does_not_price_are_refused() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(
            error(schema, "self.a.lowerAscii() == 'x'"),
            CompileError::Unsupported("the CEL function 'lowerAscii'".to_owned())
        );
    }

    #[test]
    fn the_output_type_and_old_self_are_reported() -> Result<(), CompileError> {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let decl = Decl::of_schema(&schema, false).ok_or(CompileError::Check("no decl".to_owned()))?;
        let message = estimate("'a is ' + self.a", &decl)?;
        assert_eq!((message.output, message.uses_old_self), (Output::String, false));
        let transition = estimate("self.a == oldSelf.a", &decl)?;
        assert_eq!(
            (transition.output, transition.uses_old_self),
            (Output::Bool, true)
        );
        Ok(())
    }

    #[test]
    fn property_names_are_escaped_and_resource_roots_expose_their_meta() {
        let schema = json!({"type": "object", "properties": {"x-y": {"type": "string", "maxLength": 1}, "in": {"type": "integer"}}});
        assert_eq!(
            cost(schema.clone(), "self.x__dash__y == 'a' && self.__in__ > 1"),
            3 + 3
        );
        let root = Decl::of_schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object"}}}),
            true,
        )
        .expect("root declaration");
        let name = estimate("self.metadata.name == 'a'", &root).map(|e| e.max_cost);
        assert_eq!(name, Ok(1 + 3));
    }

    #[test]
    fn a_node_below_unbounded_lists_occurs_as_often_as_its_smallest_form_fits() {
        let image = Decl::of_schema(&component_image(json!({"type": "string"})), false).expect("declaration");
        // {"component":"","image":""}: 2 + (9 + 2 + 4) + (5 + 2 + 4) = 28 bytes.
        assert_eq!(image.max_cardinality(), MAX_REQUEST_SIZE_BYTES / 29);
    }
}
