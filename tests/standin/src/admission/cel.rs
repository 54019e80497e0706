//! The CEL of admission policies: compiling an expression against the
//! variables its place in the policy may use, the `authorizer` library of
//! `k8s.io/apiserver/pkg/cel/library/authz.go` (opaque values with the same
//! methods: `path`, `group`, `serviceAccount`, `resource`, `subresource`,
//! `namespace`, `name`, `fieldSelector`, `labelSelector`, `check`,
//! `allowed`, `reason`, `errored`, `error`), and evaluation with cel-rust
//! plus the Kubernetes CEL libraries of kube-cel.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr};
use kube_cel::cel::extractors::This;
use kube_cel::cel::objects::{Key, Map, Opaque};
use kube_cel::cel::{Context, ExecutionError, FunctionContext, Program, ResolveResult, Value};

use crate::auth::UserInfo;
use crate::rbac::{Attributes, RbacIndex};

/// What an expression may refer to besides the object, request and
/// namespace, by where it sits in a policy (`OptionalVariableDeclarations`
/// and variable composition).
pub(super) struct Declarations<'a> {
    pub authorizer: bool,
    /// The policy's variables visible here (those declared before, for a
    /// variable), or `None` where `variables` is not declared at all.
    pub variables: Option<&'a [String]>,
}

/// A compiled expression.
#[derive(Debug)]
pub(super) struct Expression {
    pub text: String,
    program: Program,
    /// The `variables.<name>` it reads.
    variables: BTreeSet<String>,
}

const ROOTS: [&str; 4] = ["object", "oldObject", "request", "namespaceObject"];

/// Walks an expression for the references the server's type checker would
/// refuse: an undeclared identifier, a variable not declared before.
struct Checker<'a> {
    declarations: &'a Declarations<'a>,
    bound: Vec<String>,
    variables: BTreeSet<String>,
}

impl Checker<'_> {
    fn declared(&self, name: &str) -> bool {
        self.bound.iter().any(|bound| bound == name)
            || ROOTS.contains(&name)
            || (name == "authorizer" && self.declarations.authorizer)
            || (name == "variables" && self.declarations.variables.is_some())
    }

    fn walk(&mut self, expression: &IdedExpr) -> Result<(), String> {
        match &expression.expr {
            Expr::Ident(name) if !self.declared(name) => {
                Err(format!("undeclared reference to '{name}' (in container '')"))
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Ok(()),
            Expr::Select(select) => {
                if let Expr::Ident(root) = &select.operand.expr
                    && root == "variables"
                    && !self.bound.iter().any(|bound| bound == "variables")
                    && let Some(declared) = self.declarations.variables
                {
                    if !declared.contains(&select.field) {
                        return Err(format!("undefined field '{}'", select.field));
                    }
                    self.variables.insert(select.field.clone());
                    return Ok(());
                }
                self.walk(&select.operand)
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.walk(target)?;
                }
                call.args.iter().try_for_each(|argument| self.walk(argument))
            }
            Expr::Comprehension(comprehension) => {
                self.walk(&comprehension.iter_range)?;
                self.walk(&comprehension.accu_init)?;
                let depth = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                self.bound.extend(comprehension.iter_var2.clone());
                self.bound.push(comprehension.accu_var.clone());
                let inner = [
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ]
                .into_iter()
                .try_for_each(|part| self.walk(part));
                self.bound.truncate(depth);
                inner
            }
            Expr::List(list) => list.elements.iter().try_for_each(|element| self.walk(element)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    self.walk(&entry.key)?;
                    self.walk(&entry.value)
                }
                EntryExpr::StructField(field) => self.walk(&field.value),
            }),
            Expr::Struct(construction) => Err(format!(
                "undeclared reference to '{}' (in container '')",
                construction.type_name
            )),
        }
    }
}

/// Compiles `text`; the error is the `detail` the server reports after the
/// field path (`compilation failed: ...`).
pub(super) fn compile(text: &str, declarations: &Declarations<'_>) -> Result<Expression, String> {
    let program = Program::compile(text).map_err(|error| format!("compilation failed: {error}"))?;
    let mut checker = Checker {
        declarations,
        bound: Vec::new(),
        variables: BTreeSet::new(),
    };
    checker
        .walk(program.expression())
        .map_err(|error| format!("compilation failed: ERROR: <input>: {error}"))?;
    Ok(Expression {
        text: text.to_owned(),
        program,
        variables: checker.variables,
    })
}

/// A runtime error, worded as cel-go words the common ones.
pub(super) fn error_text(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload => "no such overload".to_owned(),
        ExecutionError::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The variables of one evaluation, and the errors of those that failed.
#[derive(Default)]
pub(super) struct Variables {
    values: BTreeMap<String, Value>,
    errors: BTreeMap<String, String>,
}

impl Variables {
    fn as_value(&self) -> Value {
        let map: std::collections::HashMap<Key, Value> = self
            .values
            .iter()
            .map(|(name, value)| (Key::String(Arc::new(name.clone())), value.clone()))
            .collect();
        Value::Map(Map { map: Arc::new(map) })
    }
}

/// What the expressions of one policy see.
pub(super) struct Evaluation<'c> {
    scope: Context<'c>,
    /// What the authorizer's checks cost in this evaluation.
    budget: Arc<CheckBudget>,
}

impl<'c> Evaluation<'c> {
    /// A scope of `root` with the policy's inputs bound, its checks charged
    /// to `budget`.
    pub fn new(
        root: &'c Context<'c>,
        bindings: Vec<(&'static str, Value)>,
        budget: Arc<CheckBudget>,
    ) -> Self {
        let mut scope = root.new_inner_scope();
        for (name, value) in bindings {
            scope.add_variable_from_value(name, value);
        }
        Evaluation { scope, budget }
    }

    /// Evaluates the policy's variables in order, each seeing those before
    /// it. A variable that fails is left out, so reading it fails too, with
    /// its own error: the effect of the server's lazy evaluation.
    pub fn variables(&self, variables: &[(String, Expression)]) -> Variables {
        let mut result = Variables::default();
        for (name, expression) in variables {
            let mut scope = self.scope.new_inner_scope();
            scope.add_variable_from_value("variables", result.as_value());
            self.budget.start_expression();
            match expression.program.execute(&scope) {
                Ok(value) => {
                    result.values.insert(name.clone(), value);
                }
                Err(error) => {
                    let text = self.explain(expression, &error, &result);
                    result.errors.insert(name.clone(), text);
                }
            }
        }
        result
    }

    fn explain(&self, expression: &Expression, error: &ExecutionError, variables: &Variables) -> String {
        if let ExecutionError::NoSuchKey(key) = error
            && expression.variables.contains(key.as_str())
            && let Some(inner) = variables.errors.get(key.as_str())
        {
            return inner.clone();
        }
        error_text(error)
    }

    /// The value of `expression`, or the server's evaluation error
    /// (`expression '<text>' resulted in error: <error>`).
    pub fn evaluate(&self, expression: &Expression, variables: &Variables) -> Result<Value, String> {
        let mut scope = self.scope.new_inner_scope();
        scope.add_variable_from_value("variables", variables.as_value());
        self.budget.start_expression();
        expression.program.execute(&scope).map_err(|error| {
            format!(
                "expression '{}' resulted in error: {}",
                expression.text,
                self.explain(expression, &error, variables)
            )
        })
    }
}

/// `serde_json` to CEL: integers as `int` where they fit, as Kubernetes
/// converts unstructured objects.
pub(super) fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(flag) => Value::Bool(*flag),
        serde_json::Value::Number(number) => number
            .as_i64()
            .map(Value::Int)
            .or_else(|| number.as_u64().map(Value::UInt))
            .or_else(|| number.as_f64().map(Value::Float))
            .unwrap_or(Value::Null),
        serde_json::Value::String(text) => Value::String(Arc::new(text.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        serde_json::Value::Object(fields) => {
            let map: std::collections::HashMap<Key, Value> = fields
                .iter()
                .map(|(key, value)| (Key::String(Arc::new(key.clone())), from_json(value)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// Whom the `authorizer` checks, against which RBAC data, and what its
/// checks cost so far.
#[derive(Debug)]
pub(super) struct Authorizer {
    pub rbac: Arc<RbacIndex>,
    pub user: UserInfo,
    pub budget: Arc<CheckBudget>,
}

/// The run-time cost of authorization checks (`k8s.io/apiserver/pkg/cel/
/// library/cost.go`: a `check` costs 350,000, "to allow for only two
/// authorization checks per expression"), against the limits the server
/// enforces: 1,000,000 per expression (`PerCallLimit`) and 10,000,000 per
/// evaluation of a policy (`RuntimeCELCostBudget`). Other operations cost
/// far less and are not counted, so what the stand-in refuses the server
/// refuses too.
#[derive(Debug, Default)]
pub(super) struct CheckBudget {
    in_expression: AtomicU64,
    in_policy: AtomicU64,
}

const CHECK_COST: u64 = 350_000;
const PER_CALL_LIMIT: u64 = 1_000_000;
const POLICY_BUDGET: u64 = 10_000_000;

impl CheckBudget {
    /// A new expression starts.
    fn start_expression(&self) {
        self.in_expression.store(0, Ordering::Relaxed);
    }

    /// Charges one check, or fails as the server's cost tracker does.
    fn charge(&self) -> Result<(), ExecutionError> {
        let expression = self.in_expression.fetch_add(CHECK_COST, Ordering::Relaxed) + CHECK_COST;
        let policy = self.in_policy.fetch_add(CHECK_COST, Ordering::Relaxed) + CHECK_COST;
        let exceeded = |message: &str| ExecutionError::FunctionError {
            function: "check".to_owned(),
            message: message.to_owned(),
        };
        if expression > PER_CALL_LIMIT {
            return Err(exceeded("operation cancelled: actual cost limit exceeded"));
        }
        if policy > POLICY_BUDGET {
            return Err(exceeded(
                "validation failed due to running out of cost budget, no further validation rules will be run",
            ));
        }
        Ok(())
    }
}

/// The values of the authz library's types.
#[derive(Debug, Clone)]
enum Authz {
    Authorizer(Arc<Authorizer>),
    PathCheck {
        authorizer: Arc<Authorizer>,
        path: String,
    },
    GroupCheck {
        authorizer: Arc<Authorizer>,
        group: String,
    },
    ResourceCheck {
        authorizer: Arc<Authorizer>,
        group: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    Decision {
        allowed: bool,
        reason: String,
    },
}

impl PartialEq for Authz {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Authz::Authorizer(a), Authz::Authorizer(b)) => Arc::ptr_eq(a, b),
            (
                Authz::PathCheck {
                    authorizer: a,
                    path: p,
                },
                Authz::PathCheck {
                    authorizer: b,
                    path: q,
                },
            ) => Arc::ptr_eq(a, b) && p == q,
            (
                Authz::GroupCheck {
                    authorizer: a,
                    group: g,
                },
                Authz::GroupCheck {
                    authorizer: b,
                    group: h,
                },
            ) => Arc::ptr_eq(a, b) && g == h,
            (
                Authz::ResourceCheck {
                    authorizer: a,
                    group,
                    resource,
                    subresource,
                    namespace,
                    name,
                },
                Authz::ResourceCheck {
                    authorizer: b,
                    group: group2,
                    resource: resource2,
                    subresource: subresource2,
                    namespace: namespace2,
                    name: name2,
                },
            ) => {
                Arc::ptr_eq(a, b)
                    && (group, resource, subresource, namespace, name)
                        == (group2, resource2, subresource2, namespace2, name2)
            }
            (
                Authz::Decision { allowed, reason },
                Authz::Decision {
                    allowed: allowed2,
                    reason: reason2,
                },
            ) => allowed == allowed2 && reason == reason2,
            _ => false,
        }
    }
}

impl Eq for Authz {}

impl Opaque for Authz {
    fn runtime_type_name(&self) -> &str {
        match self {
            Authz::Authorizer(_) => "kubernetes.authorization.Authorizer",
            Authz::PathCheck { .. } => "kubernetes.authorization.PathCheck",
            Authz::GroupCheck { .. } => "kubernetes.authorization.GroupCheck",
            Authz::ResourceCheck { .. } => "kubernetes.authorization.ResourceCheck",
            Authz::Decision { .. } => "kubernetes.authorization.Decision",
        }
    }
}

/// The `authorizer` variable for `user`.
pub(super) fn authorizer_value(authorizer: Authorizer) -> Value {
    opaque(Authz::Authorizer(Arc::new(authorizer)))
}

fn opaque(value: Authz) -> Value {
    Value::Opaque(Arc::new(value))
}

fn authz(value: &Value) -> Option<&Authz> {
    match value {
        Value::Opaque(opaque) => opaque.downcast_ref::<Authz>(),
        _ => None,
    }
}

fn path(ftx: &FunctionContext, This(this): This<Value>, path: Arc<String>) -> ResolveResult {
    let Some(Authz::Authorizer(authorizer)) = authz(&this) else {
        return Err(ExecutionError::NoSuchOverload);
    };
    if path.trim().is_empty() {
        return Err(ftx.error("path must not be empty"));
    }
    Ok(opaque(Authz::PathCheck {
        authorizer: Arc::clone(authorizer),
        path: path.to_string(),
    }))
}

fn group(This(this): This<Value>, group: Arc<String>) -> ResolveResult {
    let Some(Authz::Authorizer(authorizer)) = authz(&this) else {
        return Err(ExecutionError::NoSuchOverload);
    };
    Ok(opaque(Authz::GroupCheck {
        authorizer: Arc::clone(authorizer),
        group: group.to_string(),
    }))
}

fn service_account(
    ftx: &FunctionContext,
    This(this): This<Value>,
    namespace: Arc<String>,
    name: Arc<String>,
) -> ResolveResult {
    let Some(Authz::Authorizer(authorizer)) = authz(&this) else {
        return Err(ExecutionError::NoSuchOverload);
    };
    if !crate::meta::is_dns_subdomain(&name) {
        return Err(ftx.error("Invalid service account name"));
    }
    if !crate::meta::is_dns_label(&namespace) {
        return Err(ftx.error("Invalid service account namespace"));
    }
    Ok(authorizer_value(Authorizer {
        rbac: Arc::clone(&authorizer.rbac),
        user: UserInfo::service_account(&namespace, &name),
        budget: Arc::clone(&authorizer.budget),
    }))
}

fn resource(ftx: &FunctionContext, This(this): This<Value>, resource: Arc<String>) -> ResolveResult {
    let Some(Authz::GroupCheck { authorizer, group }) = authz(&this) else {
        return Err(ExecutionError::NoSuchOverload);
    };
    if resource.trim().is_empty() {
        return Err(ftx.error("resource must not be empty"));
    }
    Ok(opaque(Authz::ResourceCheck {
        authorizer: Arc::clone(authorizer),
        group: group.clone(),
        resource: resource.to_string(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
    }))
}

/// `subresource`, `namespace`, `name` (and the selectors, which RBAC does
/// not look at) each set one attribute of a resource check.
fn set_attribute(ftx: &FunctionContext, This(this): This<Value>, value: Arc<String>) -> ResolveResult {
    let Some(Authz::ResourceCheck {
        authorizer,
        group,
        resource,
        subresource,
        namespace,
        name,
    }) = authz(&this)
    else {
        return Err(ExecutionError::NoSuchOverload);
    };
    let (mut subresource, mut namespace, mut name) = (subresource.clone(), namespace.clone(), name.clone());
    match ftx.name {
        "subresource" => subresource = value.to_string(),
        "namespace" => namespace = value.to_string(),
        "name" => name = value.to_string(),
        _ => {}
    }
    Ok(opaque(Authz::ResourceCheck {
        authorizer: Arc::clone(authorizer),
        group: group.clone(),
        resource: resource.clone(),
        subresource,
        namespace,
        name,
    }))
}

fn check(This(this): This<Value>, verb: Arc<String>) -> ResolveResult {
    let decision = match authz(&this) {
        Some(Authz::PathCheck { authorizer, path }) => {
            authorizer.budget.charge()?;
            authorizer
                .rbac
                .authorize(&Attributes::path(&authorizer.user, &verb, path))
        }
        Some(Authz::ResourceCheck {
            authorizer,
            group,
            resource,
            subresource,
            namespace,
            name,
        }) => {
            authorizer.budget.charge()?;
            authorizer.rbac.authorize(&Attributes::resource(
                &authorizer.user,
                &verb,
                group,
                resource,
                subresource,
                namespace,
                name,
            ))
        }
        _ => return Err(ExecutionError::NoSuchOverload),
    };
    Ok(opaque(Authz::Decision {
        allowed: decision.allowed,
        reason: decision.reason,
    }))
}

fn decision(this: &Value) -> Result<(bool, &str), ExecutionError> {
    match authz(this) {
        Some(Authz::Decision { allowed, reason }) => Ok((*allowed, reason.as_str())),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

fn allowed(This(this): This<Value>) -> ResolveResult {
    decision(&this).map(|(allowed, _)| Value::Bool(allowed))
}

fn reason(This(this): This<Value>) -> ResolveResult {
    decision(&this).map(|(_, reason)| Value::String(Arc::new(reason.to_owned())))
}

/// The in-process authorizer never fails, so no decision has an error.
fn errored(This(this): This<Value>) -> ResolveResult {
    decision(&this).map(|_| Value::Bool(false))
}

fn error(This(this): This<Value>) -> ResolveResult {
    decision(&this).map(|_| Value::String(Arc::new(String::new())))
}

/// The root context: cel-rust's standard functions, Kubernetes' libraries
/// and the authz library.
pub(super) fn root_context() -> Context<'static> {
    let mut context = Context::default();
    context.register_all();
    context.add_function("path", path);
    context.add_function("group", group);
    context.add_function("serviceAccount", service_account);
    context.add_function("resource", resource);
    for name in [
        "subresource",
        "namespace",
        "name",
        "fieldSelector",
        "labelSelector",
    ] {
        context.add_function(name, set_attribute);
    }
    context.add_function("check", check);
    context.add_function("allowed", allowed);
    context.add_function("reason", reason);
    context.add_function("errored", errored);
    context.add_function("error", error);
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declarations() -> Declarations<'static> {
        Declarations {
            authorizer: true,
            variables: None,
        }
    }

    #[test]
    fn undeclared_identifiers_and_later_variables_are_refused_like_the_type_checker() {
        assert_eq!(
            compile("self.x == 1", &declarations()).expect_err("refused"),
            "compilation failed: ERROR: <input>: undeclared reference to 'self' (in container '')"
        );
        assert!(compile("object.spec.all(x, x == 'a')", &declarations()).is_ok());
        let earlier = ["a".to_owned()];
        let with_a = Declarations {
            authorizer: false,
            variables: Some(&earlier),
        };
        assert!(compile("variables.a == 1", &with_a).is_ok());
        assert_eq!(
            compile("variables.b == 1", &with_a).expect_err("refused"),
            "compilation failed: ERROR: <input>: undefined field 'b'"
        );
        assert_eq!(
            compile(
                "authorizer.group('').resource('pods').check('get').allowed()",
                &with_a
            )
            .expect_err("refused"),
            "compilation failed: ERROR: <input>: undeclared reference to 'authorizer' (in container '')"
        );
        assert!(compile("object.(", &declarations()).is_err());
    }

    #[test]
    fn the_authorizer_answers_from_rbac_through_method_chains() {
        let role = json!({"metadata": {"name": "approver", "namespace": "shop"}, "rules": [
            {"apiGroups": ["hoist.dev"], "resources": ["environments"], "resourceNames": ["prod"], "verbs": ["approve"]}
        ]});
        let binding = json!({"metadata": {"name": "alice-approves", "namespace": "shop"},
            "roleRef": {"kind": "Role", "name": "approver"},
            "subjects": [{"kind": "User", "name": "alice"}]});
        let rbac = RbacIndex::new([].iter(), [role].iter(), [].iter(), [binding].iter());
        let alice = UserInfo {
            name: "alice".to_owned(),
            ..UserInfo::default()
        };
        let root = root_context();
        let budget = Arc::new(CheckBudget::default());
        let evaluation = Evaluation::new(
            &root,
            vec![(
                "authorizer",
                authorizer_value(Authorizer {
                    rbac,
                    user: alice,
                    budget: Arc::clone(&budget),
                }),
            )],
            budget,
        );
        let run = |text: &str| {
            let expression = compile(text, &declarations()).expect("compiles");
            evaluation.evaluate(&expression, &Variables::default())
        };
        let check = "authorizer.group('hoist.dev').resource('environments').namespace('shop')";
        assert_eq!(
            run(&format!("{check}.name('prod').check('approve').allowed()")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(&format!("{check}.name('dev').check('approve').allowed()")),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(&format!("{check}.name('prod').check('approve').reason()")),
            Ok(Value::String(Arc::new(
                "RBAC: allowed by RoleBinding \"alice-approves/shop\" of Role \"approver\" to User \"alice\""
                    .to_owned()
            )))
        );
        assert_eq!(
            run(&format!("{check}.name('prod').check('approve').errored()")),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(
                "authorizer.serviceAccount('shop', 'hoist').group('hoist.dev').resource('environments').namespace('shop').name('prod').check('approve').allowed()"
            ),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run("authorizer.path('/version').check('get').allowed()"),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run("authorizer.group('').resource('').check('get').allowed()"),
            Err("expression 'authorizer.group('').resource('').check('get').allowed()' resulted in error: resource must not be empty".to_owned())
        );
        assert_eq!(
            run("'x'.check('get')"),
            Err("expression ''x'.check('get')' resulted in error: no such overload".to_owned())
        );
    }

    #[test]
    fn authorization_checks_cost_what_the_server_charges_per_expression_and_per_policy() {
        let rbac = RbacIndex::new([].iter(), [].iter(), [].iter(), [].iter());
        let root = root_context();
        let budget = Arc::new(CheckBudget::default());
        let authorizer = Authorizer {
            rbac,
            user: UserInfo::default(),
            budget: Arc::clone(&budget),
        };
        let evaluation = Evaluation::new(&root, vec![("authorizer", authorizer_value(authorizer))], budget);
        let run = |text: &str| {
            let expression = compile(text, &declarations()).expect("compiles");
            evaluation.evaluate(&expression, &Variables::default())
        };
        let check = |name: &str| {
            format!("!authorizer.group('').resource('secrets').name('{name}').check('get').allowed()")
        };
        let two = format!("{} && {}", check("a"), check("b"));
        assert_eq!(run(&two), Ok(Value::Bool(true)));
        let three = format!("{two} && {}", check("c"));
        assert_eq!(
            run(&three),
            Err(format!(
                "expression '{three}' resulted in error: operation cancelled: actual cost limit exceeded"
            ))
        );
        // 2 + 3 checks so far; 28 in all fit in 10,000,000, the 29th does not.
        for _ in 0..11 {
            assert_eq!(run(&two), Ok(Value::Bool(true)));
        }
        assert_eq!(run(&check("d")), Ok(Value::Bool(true)));
        assert_eq!(
            run(&check("e")),
            Err(format!(
                "expression '{}' resulted in error: validation failed due to running out of cost budget, no further \
                 validation rules will be run",
                check("e")
            ))
        );
    }

    #[test]
    fn the_macros_and_operators_of_an_approval_policy_work_on_lists_of_objects() {
        let root = root_context();
        let old =
            json!({"spec": {"requestedBy": "carol", "approvals": [{"user": "alice", "groups": ["staff"]}]}});
        let new = json!({"spec": {"requestedBy": "carol", "approvals": [
            {"user": "alice", "groups": ["staff"]},
            {"user": "bob", "groups": ["client", "system:authenticated"]},
        ]}});
        let request = json!({"operation": "UPDATE", "userInfo": {"username": "bob", "groups": ["client", "system:authenticated"]}});
        let evaluation = Evaluation::new(
            &root,
            vec![
                ("object", from_json(&new)),
                ("oldObject", from_json(&old)),
                ("request", from_json(&request)),
            ],
            Default::default(),
        );
        let run = |text: &str| {
            let expression = compile(text, &declarations()).expect("compiles");
            evaluation.evaluate(&expression, &Variables::default())
        };
        let added = "object.spec.approvals.filter(a, !(a in oldObject.spec.approvals))";
        assert_eq!(
            run("oldObject.spec.approvals.all(a, a in object.spec.approvals)"),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(&format!(
                "{added}.all(a, a.user == request.userInfo.username && a.groups == request.userInfo.groups)"
            )),
            Ok(Value::Bool(true))
        );
        assert_eq!(run(&format!("size({added}) == 1")), Ok(Value::Bool(true)));
        assert_eq!(
            run("object.spec.approvals.exists(a, a.user == object.spec.requestedBy)"),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run("has(object.spec.requestedBy) ? 'requested by ' + object.spec.requestedBy : 'nobody'"),
            Ok(Value::String(Arc::new("requested by carol".to_owned())))
        );
        assert_eq!(run("has(object.spec.reason)"), Ok(Value::Bool(false)));
        assert_eq!(
            run("request.operation == 'CREATE' || oldObject.spec.requestedBy == object.spec.requestedBy"),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn a_failed_variable_fails_what_reads_it_with_its_own_error() {
        let root = root_context();
        let evaluation = Evaluation::new(
            &root,
            vec![("object", from_json(&json!({"spec": {"n": 2}})))],
            Default::default(),
        );
        let names = ["broken".to_owned(), "double".to_owned()];
        let compile_variable = |index: usize, text: &str| {
            let visible = Declarations {
                authorizer: true,
                variables: Some(&names[..index]),
            };
            (names[index].clone(), compile(text, &visible).expect("compiles"))
        };
        let variables = vec![
            compile_variable(0, "object.spec.missing"),
            compile_variable(1, "object.spec.n * 2"),
        ];
        let values = evaluation.variables(&variables);
        let all = Declarations {
            authorizer: true,
            variables: Some(&names),
        };
        let uses_double = compile("variables.double == 4", &all).expect("compiles");
        assert_eq!(evaluation.evaluate(&uses_double, &values), Ok(Value::Bool(true)));
        let uses_broken = compile("variables.broken == 1", &all).expect("compiles");
        assert_eq!(
            evaluation.evaluate(&uses_broken, &values),
            Err("expression 'variables.broken == 1' resulted in error: no such key: missing".to_owned())
        );
        let short_circuit = compile("true || variables.broken == 1", &all).expect("compiles");
        assert_eq!(
            evaluation.evaluate(&short_circuit, &values),
            Ok(Value::Bool(true))
        );
    }
}
