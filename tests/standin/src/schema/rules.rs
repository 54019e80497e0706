//! What kube-apiserver checks about the `x-kubernetes-validations` of a CRD
//! schema when the CRD is written (apiextensions'
//! `ValidateCustomResourceDefinitionOpenAPISchema` and `cel.Compile`), with
//! the same field paths and wording:
//!
//! - each rule's `message`, `messageExpression`, `reason` and `fieldPath`;
//! - each rule and `messageExpression` compiles (see [`cost`] for how far
//!   the type check goes) to a `bool`, respectively a `string`;
//! - `oldSelf` only where old and new values can be paired (not inside
//!   atomic or set lists);
//! - the cost budget: a rule's estimated cost times the number of times its
//!   node can occur (the product of the `maxItems`/`maxProperties` above it,
//!   or, below an unbounded list or map, as many as fit into a request) must
//!   not exceed `StaticEstimatedCostLimit`, nor all expressions of the schema
//!   together `StaticEstimatedCRDCostLimit`.
//!
//! The schema is walked in the server's order: `additionalProperties`,
//! `properties` (sorted by name, where the server's order is Go's map
//! order), `items`, then the node's own rules. Rules inside `allOf`,
//! `anyOf`, `oneOf` and `not` are not compiled, as on the server.

use serde_json::Value;

use super::FieldError;
use super::cost::{self, CompileError, Decl, Output, PER_EXPRESSION_LIMIT, PER_SCHEMA_LIMIT};
use super::field::{self, BadValue};

/// The `reason`s a rule may give.
const SUPPORTED_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// The estimated cost of one `x-kubernetes-validations` expression of a CRD
/// schema, as kube-apiserver figures it when the CRD is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionCost {
    /// Field path of the expression, e.g.
    /// `spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule`.
    pub path: String,
    /// The CEL expression.
    pub expression: String,
    /// A rule's worst-case cost of one evaluation times the number of times
    /// its node can occur; a `messageExpression`'s cost of one evaluation.
    pub cost: u64,
    /// The most it may cost (`StaticEstimatedCostLimit`).
    pub limit: u64,
}

/// What kube-apiserver would say about the `x-kubernetes-validations` of one
/// CRD schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesReport {
    /// Why the CRD is refused, in the server's order; empty if it is not.
    pub errors: Vec<FieldError>,
    /// Every rule and `messageExpression` that was compiled, with its cost
    /// (0 for one that does not compile).
    pub costs: Vec<ExpressionCost>,
    /// The cost of all expressions together.
    pub total: u64,
    /// The most the total may be (`StaticEstimatedCRDCostLimit`).
    pub total_limit: u64,
}

/// Checks the rules of `schema`, a CRD version's `openAPIV3Schema` at
/// `schema_path` (`spec.validation.openAPIV3Schema` when all versions share
/// one schema, as the server reports it).
pub(super) fn check(schema: &Value, schema_path: &str) -> RulesReport {
    let mut walk = Walk {
        report: RulesReport {
            total_limit: PER_SCHEMA_LIMIT,
            ..RulesReport::default()
        },
        most_expensive: Vec::new(),
    };
    walk.node(
        schema,
        &Context {
            path: schema_path.to_owned(),
            cardinality: Some(1),
            resource_root: true,
            old_self_forbidden_at: None,
        },
    );
    if walk.report.total > PER_SCHEMA_LIMIT {
        for (path, _) in &walk.most_expensive {
            walk.report.errors.push(field::forbidden(
                path,
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        walk.report.errors.push(field::forbidden(
            schema_path,
            &cost_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                walk.report.total,
                PER_SCHEMA_LIMIT,
            ),
        ));
    }
    walk.report
}

/// apiextensions' `getCostErrorMessage`.
fn cost_message(name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_owned()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, \
         maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

struct Context {
    path: String,
    /// How many times the node can occur; `None` below an unbounded list or
    /// map.
    cardinality: Option<u64>,
    resource_root: bool,
    /// The list (or map) above that makes old and new values impossible to
    /// pair, where `oldSelf` is refused.
    old_self_forbidden_at: Option<String>,
}

struct Walk {
    report: RulesReport,
    /// The (at most 4) dearest expressions costing at least 1% of the
    /// schema's limit, dearest first.
    most_expensive: Vec<(String, u64)>,
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// apiextensions' `extractMaxElements`: by how much a node multiplies the
/// number of its children; `None` for an unbounded list or map.
fn children_factor(schema: &Value) -> Option<u64> {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") if schema.get("additionalProperties").is_some() => {
            cost::bound(schema, "maxProperties")
        }
        Some("array") => cost::bound(schema, "maxItems"),
        _ => Some(1),
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

impl Walk {
    /// Walks one schema node; true if a rule at or below it is malformed,
    /// in which case, as on the server, the node's rules are not compiled.
    fn node(&mut self, schema: &Value, context: &Context) -> bool {
        let cardinality = context
            .cardinality
            .zip(children_factor(schema))
            .map(|(n, f)| n.saturating_mul(f));
        let child = |path: String, node: &Value, old_self_forbidden_at: Option<String>| Context {
            path,
            cardinality,
            resource_root: flag(node, "x-kubernetes-embedded-resource"),
            old_self_forbidden_at,
        };
        let mut malformed = false;
        if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            let path = format!("{}.additionalProperties", context.path);
            malformed |= self.node(
                values,
                &child(path, values, context.old_self_forbidden_at.clone()),
            );
        }
        // A map type other than granular or atomic would not be correlatable.
        let correlatable_map = matches!(
            schema.get("x-kubernetes-map-type").and_then(Value::as_str),
            None | Some("granular" | "atomic")
        );
        let property_forbidden = match (&context.old_self_forbidden_at, correlatable_map) {
            (Some(path), _) => Some(path.clone()),
            (None, false) => Some(context.path.clone()),
            (None, true) => None,
        };
        let mut properties: Vec<(&String, &Value)> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .collect();
        properties.sort_by_key(|(name, _)| *name);
        for (name, property) in properties {
            let path = format!("{}.properties[{name}]", context.path);
            malformed |= self.node(property, &child(path, property, property_forbidden.clone()));
        }
        if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
            // Only the items of map lists are paired by key; set items are
            // not paired for rules, atomic items not at all.
            let map_list = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            let forbidden = match &context.old_self_forbidden_at {
                Some(path) => Some(path.clone()),
                None if !map_list => Some(context.path.clone()),
                None => None,
            };
            let path = format!("{}.items", context.path);
            malformed |= self.node(items, &child(path, items, forbidden));
        }
        let rules: &[Value] = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        if rules.is_empty() {
            return malformed;
        }
        let rules_path = format!("{}.x-kubernetes-validations", context.path);
        for (index, rule) in rules.iter().enumerate() {
            let errors = rule_shape(schema, rule, &format!("{rules_path}[{index}]"));
            malformed |= !errors.is_empty();
            self.report.errors.extend(errors);
        }
        if !malformed {
            self.compile(schema, rules, &rules_path, context);
        }
        malformed
    }

    fn compile(&mut self, schema: &Value, rules: &[Value], rules_path: &str, context: &Context) {
        let Some(decl) = Decl::of_schema(schema, context.resource_root) else {
            self.report.errors.push(field::internal(
                rules_path,
                "internal error: failed to construct type information for x-kubernetes-validations rules: \
                 unable to convert structural schema to CEL declarations",
            ));
            return;
        };
        let cardinality = context.cardinality.unwrap_or_else(|| decl.max_cardinality());
        for (index, rule) in rules.iter().enumerate() {
            let rule_path = format!("{rules_path}[{index}].rule");
            let source = text(rule, "rule");
            let optional_old_self = rule.get("optionalOldSelf").filter(|v| !v.is_null());
            let compiled = if source.trim().is_empty() {
                Ok(None)
            } else if optional_old_self.and_then(Value::as_bool) == Some(true) {
                Err(format!(
                    "compilation failed: {}",
                    CompileError::Unsupported("rules with optionalOldSelf".to_owned())
                ))
            } else {
                match cost::estimate(source, &decl) {
                    Err(error) => Err(format!("compilation failed: {error}")),
                    Ok(estimate) if estimate.output != Output::Bool => {
                        Err("cel expression must evaluate to a bool".to_owned())
                    }
                    Ok(estimate) => Ok(Some(estimate)),
                }
            };
            let (max_cost, uses_old_self) = match &compiled {
                Ok(Some(estimate)) => (estimate.max_cost, estimate.uses_old_self),
                _ => (0, false),
            };
            let cost = max_cost.saturating_mul(cardinality);
            if cost > PER_EXPRESSION_LIMIT {
                self.report.errors.push(field::forbidden(
                    &rule_path,
                    &cost_message("estimated rule cost", cost, PER_EXPRESSION_LIMIT),
                ));
            }
            self.observe(&rule_path, source, cost);
            if let Err(detail) = &compiled {
                self.report.errors.push(field::invalid(
                    &rule_path,
                    BadValue::Raw(&go_validation_rule(rule)),
                    detail,
                ));
            }
            if matches!(compiled, Ok(Some(_))) {
                self.message_expression(rule, &decl, &format!("{rules_path}[{index}].messageExpression"));
            }
            if uses_old_self {
                if let Some(at) = &context.old_self_forbidden_at {
                    self.report.errors.push(field::invalid(
                        &rule_path,
                        BadValue::Str(source),
                        &format!(
                            "oldSelf cannot be used on the uncorrelatable portion of the schema within {at}"
                        ),
                    ));
                }
            } else if let Some(value) = optional_old_self
                && compiled.is_ok()
            {
                self.report.errors.push(field::invalid(
                    &format!("{rules_path}[{index}].optionalOldSelf"),
                    BadValue::Json(value),
                    "may not be set if oldSelf is not used in rule",
                ));
            }
        }
    }

    /// A `messageExpression` is compiled once its rule compiles; its cost is
    /// not multiplied by the node's cardinality.
    fn message_expression(&mut self, rule: &Value, decl: &Decl, path: &str) {
        let source = text(rule, "messageExpression");
        if source.is_empty() {
            return;
        }
        let detail = match cost::estimate(source, decl) {
            Err(error) => format!("messageExpression compilation failed: {error}"),
            Ok(estimate) if estimate.output != Output::String => {
                "messageExpression must evaluate to a string".to_owned()
            }
            Ok(estimate) => {
                if estimate.max_cost > PER_EXPRESSION_LIMIT {
                    self.report.errors.push(field::forbidden(
                        path,
                        &cost_message(
                            "estimated messageExpression cost",
                            estimate.max_cost,
                            PER_EXPRESSION_LIMIT,
                        ),
                    ));
                }
                self.observe(path, source, estimate.max_cost);
                return;
            }
        };
        self.report.errors.push(field::invalid(
            path,
            BadValue::Raw(&go_validation_rule(rule)),
            &detail,
        ));
    }

    /// apiextensions' `TotalCost.ObserveExpressionCost`.
    fn observe(&mut self, path: &str, expression: &str, cost: u64) {
        self.report.total = self.report.total.saturating_add(cost);
        if !expression.trim().is_empty() {
            self.report.costs.push(ExpressionCost {
                path: path.to_owned(),
                expression: expression.to_owned(),
                cost,
                limit: PER_EXPRESSION_LIMIT,
            });
        }
        if cost < PER_SCHEMA_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path.to_owned(), cost));
        self.most_expensive
            .sort_by_key(|(_, cost)| std::cmp::Reverse(*cost));
        self.most_expensive.truncate(4);
    }
}

/// The checks of one rule's fields that come before compiling.
fn rule_shape(schema: &Value, rule: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let source = text(rule, "rule");
    let message = text(rule, "message");
    let (trimmed_rule, trimmed_message) = (source.trim(), message.trim());
    if trimmed_rule.is_empty() {
        errors.push(field::required(&format!("{path}.rule"), "rule is not specified"));
    } else if !message.is_empty() && trimmed_message.is_empty() {
        errors.push(field::invalid(
            &format!("{path}.message"),
            BadValue::Str(message),
            "message must be non-empty if specified",
        ));
    } else if has_newlines(trimmed_message) {
        errors.push(field::invalid(
            &format!("{path}.message"),
            BadValue::Str(message),
            "message must not contain line breaks",
        ));
    } else if has_newlines(trimmed_rule) && trimmed_message.is_empty() {
        errors.push(field::required(
            &format!("{path}.message"),
            "message must be specified if rule contains line breaks",
        ));
    }
    let message_expression = text(rule, "messageExpression");
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        errors.push(field::required(
            &format!("{path}.messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(reason) = rule.get("reason").and_then(Value::as_str)
        && !SUPPORTED_REASONS.contains(&reason)
    {
        let supported: Vec<String> = SUPPORTED_REASONS.iter().map(|r| (*r).to_owned()).collect();
        errors.push(field::not_supported(
            &format!("{path}.reason"),
            BadValue::Str(reason),
            &supported,
        ));
    }
    let field_path = text(rule, "fieldPath");
    if !field_path.is_empty() && field_path.trim().is_empty() {
        errors.push(field::invalid(
            &format!("{path}.fieldPath"),
            BadValue::Str(field_path),
            "fieldPath must be non-empty if specified",
        ));
    }
    if has_newlines(field_path) {
        errors.push(field::invalid(
            &format!("{path}.fieldPath"),
            BadValue::Str(field_path),
            "fieldPath must not contain line breaks",
        ));
    }
    if !field_path.is_empty() && !valid_field_path(schema, field_path) {
        errors.push(field::invalid(
            &format!("{path}.fieldPath"),
            BadValue::Str(field_path),
            "fieldPath must be a valid path",
        ));
    }
    errors
}

/// apiextensions' `ValidFieldPath`: `.name` and `['name']` steps through
/// declared properties or `additionalProperties`; no list indexes.
fn valid_field_path(schema: &Value, path: &str) -> bool {
    let Some(tokens) = tokenize(path) else {
        return false;
    };
    let mut node = schema;
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let name = match token {
            Token::Dot => match tokens.next() {
                Some(Token::Name(name)) => name,
                _ => return false,
            },
            Token::Open => {
                let Some(Token::Quoted(name)) = tokens.next() else {
                    return false;
                };
                if !matches!(tokens.next(), Some(Token::Close)) {
                    return false;
                }
                name
            }
            _ => return false,
        };
        let next = match node.get("properties").and_then(Value::as_object) {
            Some(properties) => properties.get(&name),
            None => node.get("additionalProperties").filter(|a| a.is_object()),
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

enum Token {
    Dot,
    Open,
    Close,
    Name(String),
    /// A single-quoted name, unescaped (`\\` and `\'`).
    Quoted(String),
}

fn tokenize(path: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => tokens.push(Token::Dot),
            '[' => tokens.push(Token::Open),
            ']' => tokens.push(Token::Close),
            '\'' => {
                let mut name = String::new();
                loop {
                    match chars.next()? {
                        '\'' => break,
                        '\\' => match chars.next()? {
                            escaped @ ('\\' | '\'') => name.push(escaped),
                            _ => return None,
                        },
                        other => name.push(other),
                    }
                }
                tokens.push(Token::Quoted(name));
            }
            first => {
                let mut name = String::from(first);
                while let Some(&next) = chars.peek() {
                    if matches!(next, '.' | '[' | ']') {
                        break;
                    }
                    name.push(next);
                    chars.next();
                }
                tokens.push(Token::Name(name));
            }
        }
    }
    Some(tokens)
}

/// Go's `%#v` of the internal `apiextensions.ValidationRule`, which the
/// server prints as the invalid value of a rule that does not compile. A
/// set pointer prints as an address that differs on every request; a fixed
/// one stands in for it.
fn go_validation_rule(rule: &Value) -> String {
    let pointer = |key: &str, go_type: &str| {
        let address = if rule.get(key).is_some_and(|v| !v.is_null()) {
            "0xc000000000"
        } else {
            "nil"
        };
        format!("(*{go_type})({address})")
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{}, FieldPath:{}, OptionalOldSelf:{}}}",
        field::go_quote(text(rule, "rule")),
        field::go_quote(text(rule, "message")),
        field::go_quote(text(rule, "messageExpression")),
        pointer("reason", "apiextensions.FieldValueErrorReason"),
        field::go_quote(text(rule, "fieldPath")),
        pointer("optionalOldSelf", "bool"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ROOT: &str = "spec.validation.openAPIV3Schema";

    fn root(spec: Value) -> Value {
        json!({"type": "object", "properties": {"spec": spec}})
    }

    fn messages(report: &RulesReport) -> Vec<&str> {
        report.errors.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn the_factor_is_worded_as_the_server_words_it() {
        let message = |cost| cost_message("estimated rule cost", cost, PER_EXPRESSION_LIMIT);
        assert!(message(40_279_040).contains("by factor of 4.0x (try simplifying"));
        assert!(message(12_345_678).contains("by factor of 1.234568x"));
        assert!(message(1_000_000_001).contains("by factor of more than 100x"));
    }

    #[test]
    fn a_rule_below_an_unbounded_list_counts_once_per_item_that_fits() {
        let list = json!({"type": "array", "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 10}},
            "x-kubernetes-validations": [{"rule": "self.name != 'x'"}]
        }});
        let report = check(&root(list), ROOT);
        // {"name":""}: 12 bytes, 241,979 per 3 MiB; the rule costs 1 + 2.
        let path = format!("{ROOT}.properties[spec].items.x-kubernetes-validations[0].rule");
        assert_eq!(
            report.costs,
            vec![ExpressionCost {
                path,
                expression: "self.name != 'x'".to_owned(),
                cost: 3 * (MAX_REQUEST_SIZE / 13),
                limit: PER_EXPRESSION_LIMIT
            }]
        );
        assert_eq!(report.errors, vec![]);
    }

    const MAX_REQUEST_SIZE: u64 = cost::MAX_REQUEST_SIZE_BYTES;

    #[test]
    fn the_total_of_a_schema_has_its_own_limit() {
        // Each rule: 9,999,992 (maxItems 909,090 strings of maxLength 16), under
        // the per-rule limit; eleven of them exceed 100,000,000.
        let tags = json!({"type": "array", "maxItems": 909_090, "items": {"type": "string", "maxLength": 16},
            "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}]});
        let properties: serde_json::Map<String, Value> =
            (0..11).map(|i| (format!("t{i:02}"), tags.clone())).collect();
        let report = check(&root(json!({"type": "object", "properties": properties})), ROOT);
        assert_eq!(report.total, 11 * 9_999_992);
        let contributed = |i: usize| {
            format!(
                "{ROOT}.properties[spec].properties[t{i:02}].x-kubernetes-validations[0].rule: Forbidden: \
                 contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
            )
        };
        let total = format!(
            "{ROOT}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema \
             exceeds budget by factor of 1.099999x (try simplifying the rule, or adding maxItems, maxProperties, \
             and maxLength where arrays, maps, and strings are declared)"
        );
        assert_eq!(
            messages(&report),
            vec![
                contributed(0).as_str(),
                contributed(1).as_str(),
                contributed(2).as_str(),
                contributed(3).as_str(),
                total.as_str()
            ]
        );
        let ten = check(
            &root(
                json!({"type": "object", "properties": properties.into_iter().take(10).collect::<serde_json::Map<_, _>>()}),
            ),
            ROOT,
        );
        assert_eq!(ten.errors, vec![]);
    }

    #[test]
    fn malformed_rules_are_refused_before_compiling() {
        let spec = json!({"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-validations": [
            {"rule": " "},
            {"rule": "self.a == 'x'", "message": "two\nlines"},
            {"rule": "self.a ==\n'x'"},
            {"rule": "self.a == 'x'", "reason": "Nope", "fieldPath": ".b"},
            {"rule": "self.b == 'x'"}
        ]});
        let report = check(&root(spec), ROOT);
        let at = format!("{ROOT}.properties[spec].x-kubernetes-validations");
        assert_eq!(
            messages(&report),
            vec![
                format!("{at}[0].rule: Required value: rule is not specified"),
                format!(
                    "{at}[1].message: Invalid value: \"two\\nlines\": message must not contain line breaks"
                ),
                format!(
                    "{at}[2].message: Required value: message must be specified if rule contains line breaks"
                ),
                format!(
                    "{at}[3].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \
                     \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
                ),
                format!("{at}[3].fieldPath: Invalid value: \".b\": fieldPath must be a valid path"),
            ]
        );
    }

    #[test]
    fn rules_that_do_not_compile_are_invalid_at_their_path() {
        let spec = json!({"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-validations": [
            {"rule": "self.b == 'x'", "message": "m"},
            {"rule": "self.a", "fieldPath": ".a"},
            {"rule": "self.a == 'x'", "messageExpression": "1"}
        ]});
        let report = check(&root(spec), ROOT);
        let at = format!("{ROOT}.properties[spec].x-kubernetes-validations");
        assert_eq!(
            messages(&report),
            vec![
                format!(
                    "{at}[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.b == 'x'\", Message:\"m\", \
                     MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", \
                     OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>: undefined field 'b'"
                ),
                format!(
                    "{at}[1].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.a\", Message:\"\", \
                     MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\".a\", \
                     OptionalOldSelf:(*bool)(nil)}}: cel expression must evaluate to a bool"
                ),
                format!(
                    "{at}[2].messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:\"self.a == 'x'\", \
                     Message:\"\", MessageExpression:\"1\", Reason:(*apiextensions.FieldValueErrorReason)(nil), \
                     FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: messageExpression must evaluate to a string"
                ),
            ]
        );
    }

    #[test]
    fn old_self_is_refused_where_old_and_new_items_cannot_be_paired() {
        let item = json!({"type": "object", "required": ["k"], "properties": {"k": {"type": "string", "maxLength": 8}},
            "x-kubernetes-validations": [{"rule": "self.k == oldSelf.k"}]});
        let list = |list_type: Option<&str>| {
            let mut list =
                json!({"type": "array", "maxItems": 4, "items": item, "x-kubernetes-list-map-keys": ["k"]});
            if let Some(list_type) = list_type {
                list["x-kubernetes-list-type"] = json!(list_type);
            }
            list
        };
        assert_eq!(check(&root(list(Some("map"))), ROOT).errors, vec![]);
        let atomic = check(&root(list(None)), ROOT);
        assert_eq!(
            messages(&atomic),
            vec![format!(
                "{ROOT}.properties[spec].items.x-kubernetes-validations[0].rule: Invalid value: \"self.k == oldSelf.k\": \
                 oldSelf cannot be used on the uncorrelatable portion of the schema within {ROOT}.properties[spec]"
            )]
        );
    }

    #[test]
    fn field_paths_follow_properties_and_map_values() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b.c": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": "array", "items": {"type": "string"}}
        }});
        for valid in [".a", ".a['b.c']", ".m.anything", ".m['x y']", "['a']"] {
            assert!(valid_field_path(&schema, valid), "{valid}");
        }
        for invalid in ["a", ".x", ".a.b", ".l[0]", ".a['b.c'", ".a[b]", "."] {
            assert!(!valid_field_path(&schema, invalid), "{invalid}");
        }
    }
}
