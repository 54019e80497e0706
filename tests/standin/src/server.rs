//! The HTTP layer: routing of Kubernetes API paths, query parameters,
//! content types, the request log and faults.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch as signal};

use crate::admission::Admission;
use crate::auth::{self, UserInfo, Users};
use crate::discovery;
use crate::fieldmanager::Conflict;
use crate::log::{FaultResponse, Faults, PatchType, RequestKey, RequestRecord, Verb};
use crate::meta;
use crate::rbac::{self, Attributes};
use crate::resources::ResourceInfo;
use crate::reviews::{self, AccessReview};
use crate::schema::FieldError;
use crate::schema::field;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::status::{ApiError, FieldReason, field_error};
use crate::store::{DeleteOptions, Propagation, Store, WriteOptions, WriteTarget};
use crate::watch::{self, WatchBegin, WatchRequest};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Watches without `timeoutSeconds` end after this long, like the real
/// server's `--min-request-timeout` default.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// State shared by every connection.
pub(crate) struct Shared {
    pub store: Arc<Mutex<Store>>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Faults>,
    pub bookmark_interval: Duration,
    pub address: String,
    pub shutdown: signal::Receiver<bool>,
    /// The static token file: who each bearer token is.
    pub users: Mutex<Users>,
}

/// Locks a mutex; a panic in another request must not wedge the server.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A request path, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList { group: String, version: String },
    Resource(ResourcePath),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourcePath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["apis", group] => return Route::Group((*group).to_owned()),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::Unknown,
    };
    let resource = |plural: &str, namespace: Option<&str>, name: Option<&str>, subresource: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        })
    };
    match rest {
        [] => Route::ResourceList {
            group: group.to_owned(),
            version: version.to_owned(),
        },
        ["namespaces", namespace, subresource @ ("status" | "finalize")] if group.is_empty() => {
            resource("namespaces", None, Some(namespace), Some(subresource))
        }
        ["namespaces", namespace, plural] => resource(plural, Some(namespace), None, None),
        ["namespaces", namespace, plural, name] => resource(plural, Some(namespace), Some(name), None),
        ["namespaces", namespace, plural, name, subresource] => {
            resource(plural, Some(namespace), Some(name), Some(subresource))
        }
        [plural] => resource(plural, None, None, None),
        [plural, name] => resource(plural, None, Some(name), None),
        [plural, name, subresource] => resource(plural, None, Some(name), Some(subresource)),
        _ => Route::Unknown,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (percent_decode(key), percent_decode(value)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

fn is_true(query: &BTreeMap<String, String>, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after_seconds
        && let Ok(value) = hyper::header::HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(hyper::header::RETRY_AFTER, value);
    }
    response
}

/// What a handler answers.
struct Reply {
    response: Response<Body>,
    changed: bool,
}

impl Reply {
    fn json(code: u16, value: &Value) -> Self {
        Reply {
            response: json_response(code, value),
            changed: false,
        }
    }

    fn changed(mut self, changed: bool) -> Self {
        self.changed = changed;
        self
    }
}

/// A request, read fully except for its streaming answer.
struct Call {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: String,
    accept: String,
    user_agent: String,
    body: Bytes,
    /// Who the request is from, after impersonation.
    user: UserInfo,
    /// Warnings for the `Warning` header (admission policies' `Warn`).
    warnings: Mutex<Vec<String>>,
}

impl Call {
    fn json_body(&self) -> Result<Value, ApiError> {
        let value: Value = serde_json::from_slice(&self.body).map_err(|error| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {error}"))
        })?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ))
        }
    }

    /// The field manager: the `fieldManager` parameter, else the User-Agent
    /// up to its first `/`, as the real server derives it.
    fn manager(&self) -> String {
        match self
            .query
            .get("fieldManager")
            .filter(|manager| !manager.is_empty())
        {
            Some(manager) => manager.clone(),
            None => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|character| !character.is_control())
                .take(128)
                .collect(),
        }
    }

    /// What an admission policy learns about this write.
    fn admission<'a>(&'a self, target: &'a Target<'_>) -> Admission<'a> {
        Admission {
            user: &self.user,
            version: &target.path.version,
            warnings: &self.warnings,
            creates_on_update: false,
        }
    }

    fn refuse_dry_run(&self) -> Result<(), ApiError> {
        if self.query.contains_key("dryRun") {
            return Err(ApiError::bad_request(
                "dryRun is not supported by the kube-standin API server",
            ));
        }
        Ok(())
    }
}

/// The name a `fieldSelector` requires `metadata.name` to equal, if it is a
/// valid name (`RequiresExactMatch`), which list and watch are authorized on.
fn selected_name(query: &BTreeMap<String, String>) -> Option<String> {
    query
        .get("fieldSelector")?
        .split(',')
        .find_map(|requirement| {
            let requirement = requirement.trim();
            let (field, value) = requirement
                .split_once("==")
                .or_else(|| requirement.split_once('='))?;
            (field.trim() == "metadata.name").then(|| value.trim().to_owned())
        })
        .filter(|name| !name.is_empty() && meta::path_segment_problems(name).is_empty())
}

/// The attributes the authorizer sees for a request, as `RequestInfoFactory`
/// computes them: the verb from the method (`list`/`watch` for collections,
/// `deletecollection`), the namespace of a Namespace being its name.
fn request_attributes<'u>(
    user: &'u UserInfo,
    method: &Method,
    query: &BTreeMap<String, String>,
    path: &str,
    route: &Route,
) -> Attributes<'u> {
    let Route::Resource(resource) = route else {
        return Attributes::path(user, &method.as_str().to_lowercase(), path);
    };
    let mut name = resource.name.clone().unwrap_or_default();
    let verb = match *method {
        Method::GET | Method::HEAD if !name.is_empty() => "get".to_owned(),
        Method::GET | Method::HEAD => {
            name = selected_name(query).unwrap_or_default();
            if is_true(query, "watch") { "watch" } else { "list" }.to_owned()
        }
        Method::POST => "create".to_owned(),
        Method::PUT => "update".to_owned(),
        Method::PATCH => "patch".to_owned(),
        Method::DELETE if name.is_empty() => "deletecollection".to_owned(),
        Method::DELETE => "delete".to_owned(),
        ref other => other.as_str().to_lowercase(),
    };
    let namespace = match &resource.namespace {
        Some(namespace) => namespace.clone(),
        None if resource.group.is_empty() && resource.plural == "namespaces" => {
            resource.name.clone().unwrap_or_default()
        }
        None => String::new(),
    };
    Attributes::resource(
        user,
        &verb,
        &resource.group,
        &resource.plural,
        resource.subresource.as_deref().unwrap_or_default(),
        &namespace,
        &name,
    )
}

/// Authenticates (401) and impersonates (400, 403) a request, as the
/// server's filter chain does first; authorization comes after faults.
fn identify(
    shared: &Shared,
    headers: &hyper::HeaderMap,
    record: &mut RequestRecord,
) -> Result<UserInfo, ApiError> {
    let requestor = lock(&shared.users).authenticate(headers)?;
    record.user = Some(requestor.name.clone());
    let rbac = lock(&shared.store).rbac();
    let user = auth::impersonate(requestor, headers, &rbac)?;
    record.user = Some(user.name.clone());
    Ok(user)
}

pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let received = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the body failed: {error}"
            )));
        }
    };
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = parts.uri.path().to_owned();
    let query = parse_query(parts.uri.query());
    let route = route(&path);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        verb: None,
        patch_type: None,
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        user: None,
        code: 0,
        changed: false,
        faulted: false,
        received,
        took: std::time::Duration::ZERO,
    };
    let identified = identify(&shared, &parts.headers, &mut record);
    let call = Call {
        method: parts.method.clone(),
        path,
        query,
        content_type: header(hyper::header::CONTENT_TYPE),
        accept: header(hyper::header::ACCEPT),
        user_agent: header(hyper::header::USER_AGENT),
        body,
        user: identified.as_ref().cloned().unwrap_or_default(),
        warnings: Mutex::new(Vec::new()),
    };
    if let Route::Resource(path) = &route {
        record.verb = verb(&call, path);
        record.patch_type = (call.method == Method::PATCH)
            .then(|| PatchType::from_content_type(&call.content_type))
            .flatten();
        record.group.clone_from(&path.group);
        record.version.clone_from(&path.version);
        record.resource.clone_from(&path.plural);
        record.subresource.clone_from(&path.subresource);
        record.namespace.clone_from(&path.namespace);
        record.name.clone_from(&path.name);
    }
    let reply = match identified {
        Err(error) => Reply {
            response: error_response(&error),
            changed: false,
        },
        Ok(_) => serve(&shared, &call, &route, &mut record).await,
    };
    let mut response = reply.response;
    for warning in lock(&call.warnings).iter() {
        let text = format!("299 - {}", field::go_quote(warning));
        if let Ok(value) = hyper::header::HeaderValue::from_str(&text) {
            response.headers_mut().append(hyper::header::WARNING, value);
        }
    }
    record.code = response.status().as_u16();
    record.took = received.elapsed();
    record.changed = reply.changed;
    lock(&shared.log).push(record);
    response
}

/// Faults, authorization, then the handler.
async fn serve(shared: &Arc<Shared>, call: &Call, route: &Route, record: &mut RequestRecord) -> Reply {
    let action = lock(&shared.faults).take(&RequestKey {
        verb: record.verb,
        patch_type: record.patch_type,
        group: &record.group,
        resource: &record.resource,
        subresource: record.subresource.as_deref(),
        namespace: record.namespace.as_deref(),
        name: record.name.as_deref(),
    });
    let mut fault_response = None;
    if let Some(action) = action {
        if let Some(delay) = action.delay {
            tokio::time::sleep(delay).await;
        }
        fault_response = action.response;
    }
    if let Some(fault) = fault_response {
        record.faulted = true;
        return Reply {
            response: error_response(&fault_error(&fault)),
            changed: false,
        };
    }
    let attributes = request_attributes(&call.user, &call.method, &call.query, &call.path, route);
    let decision = lock(&shared.store).rbac().authorize(&attributes);
    if !decision.allowed {
        return Reply {
            response: error_response(&rbac::forbidden(&attributes, &decision.reason)),
            changed: false,
        };
    }
    match dispatch(shared, call, route).await {
        Ok(reply) => reply,
        Err(error) => Reply {
            response: error_response(&error),
            changed: false,
        },
    }
}

/// The review resources: create-only, answered and never stored.
fn review(shared: &Shared, call: &Call, path: &ResourcePath) -> Result<Reply, ApiError> {
    if call.method != Method::POST || path.name.is_some() || path.namespace.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let answer = match (path.group.as_str(), path.plural.as_str()) {
        ("authentication.k8s.io", _) => reviews::self_subject_review(&call.user, &path.version),
        (_, plural) => {
            let kind = if plural == "selfsubjectaccessreviews" {
                AccessReview::SelfSubject
            } else {
                AccessReview::Subject
            };
            let rbac = lock(&shared.store).rbac();
            reviews::access_review(kind, &call.json_body()?, &call.user, &rbac, &path.version)?
        }
    };
    Ok(Reply::json(201, &answer))
}

fn fault_error(fault: &FaultResponse) -> ApiError {
    let reason = fault
        .reason
        .clone()
        .unwrap_or_else(|| ApiError::reason_for_code(fault.code).to_owned());
    let mut error = ApiError::new(fault.code, &reason, fault.message.clone());
    if let Some(seconds) = fault.retry_after_seconds {
        error.retry_after_seconds = Some(seconds);
        error.details = Some(json!({"retryAfterSeconds": seconds}));
    }
    error
}

fn verb(call: &Call, path: &ResourcePath) -> Option<Verb> {
    let named = path.name.is_some();
    match call.method {
        Method::GET if named => Some(Verb::Get),
        Method::GET if is_true(&call.query, "watch") => Some(Verb::Watch),
        Method::GET => Some(Verb::List),
        Method::POST if !named => Some(Verb::Create),
        Method::PUT if named => Some(Verb::Update),
        Method::PATCH if named => Some(Verb::Patch),
        Method::DELETE if named => Some(Verb::Delete),
        Method::DELETE => Some(Verb::DeleteCollection),
        _ => None,
    }
}

async fn dispatch(shared: &Arc<Shared>, call: &Call, route: &Route) -> Result<Reply, ApiError> {
    if call.method != Method::GET && !matches!(route, Route::Resource(_)) {
        return Err(ApiError::method_not_allowed());
    }
    let store = Arc::clone(&shared.store);
    match route {
        Route::Version => Ok(Reply::json(200, &discovery::version())),
        Route::CoreVersions if discovery::wants_aggregated(&call.accept) => Ok(aggregated_reply(
            &discovery::aggregated(&lock(&store).resources, true),
        )),
        Route::CoreVersions => Ok(Reply::json(200, &discovery::core_versions(&shared.address))),
        Route::Groups if discovery::wants_aggregated(&call.accept) => Ok(aggregated_reply(
            &discovery::aggregated(&lock(&store).resources, false),
        )),
        Route::Groups => Ok(Reply::json(200, &discovery::group_list(&lock(&store).resources))),
        Route::Group(group) => discovery::group(&lock(&store).resources, group)
            .map(|document| Reply::json(200, &document))
            .ok_or_else(ApiError::path_not_found),
        Route::ResourceList { group, version } => {
            discovery::resource_list(&lock(&store).resources, group, version)
                .map(|document| Reply::json(200, &document))
                .ok_or_else(ApiError::path_not_found)
        }
        Route::Unknown => Err(ApiError::path_not_found()),
        Route::Resource(path)
            if (path.group == "authentication.k8s.io" && path.plural == "selfsubjectreviews")
                || (path.group == "authorization.k8s.io"
                    && (path.plural == "selfsubjectaccessreviews"
                        || path.plural == "subjectaccessreviews")) =>
        {
            review(shared, call, path)
        }
        Route::Resource(path) => resource_request(shared, call, path).await,
    }
}

fn aggregated_reply(document: &Value) -> Reply {
    let mut reply = Reply::json(200, document);
    reply.response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
    );
    reply
}

/// A request about a resource, with the resource resolved.
struct Target<'a> {
    resource: Arc<ResourceInfo>,
    path: &'a ResourcePath,
    write_target: WriteTarget,
}

impl Target<'_> {
    fn namespace(&self) -> Option<&str> {
        self.path.namespace.as_deref()
    }

    fn present(&self, object: Value) -> Value {
        watch::present(&self.resource, &self.path.version, object)
    }
}

fn resolve<'a>(store: &Store, path: &'a ResourcePath) -> Result<Target<'a>, ApiError> {
    let resource = store
        .resources
        .lookup(&path.group, &path.version, &path.plural)
        .ok_or_else(ApiError::path_not_found)?;
    // Cluster-scoped resources have no namespaced paths; namespaced objects
    // are only addressed inside their namespace (listing across all
    // namespaces is the exception).
    if path.namespace.is_some() && !resource.namespaced {
        return Err(ApiError::path_not_found());
    }
    if path.namespace.is_none() && resource.namespaced && path.name.is_some() {
        return Err(ApiError::path_not_found());
    }
    let write_target = match path.subresource.as_deref() {
        None => WriteTarget::Main,
        Some("status") if resource.status_subresource => WriteTarget::Status,
        Some(_) => return Err(ApiError::path_not_found()),
    };
    Ok(Target {
        resource,
        path,
        write_target,
    })
}

async fn resource_request(shared: &Arc<Shared>, call: &Call, path: &ResourcePath) -> Result<Reply, ApiError> {
    let Some(verb) = verb(call, path) else {
        return Err(ApiError::method_not_allowed());
    };
    if verb == Verb::Watch {
        return start_watch(shared, call, path);
    }
    let now = meta::now();
    let mut store = lock(&shared.store);
    let target = resolve(&store, path)?;
    if target.write_target == WriteTarget::Status && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch) {
        return Err(ApiError::method_not_allowed());
    }
    if verb.is_write() {
        call.refuse_dry_run()?;
    }
    match verb {
        Verb::Get => get(&store, &target),
        Verb::List => list(&store, call, &target),
        Verb::Create => create(&mut store, call, &target, &now),
        Verb::Update => update(&mut store, call, &target, &now),
        Verb::Patch => patch(&mut store, call, &target, &now),
        Verb::Delete => delete(&mut store, call, &target, &now),
        Verb::DeleteCollection => delete_collection(&mut store, call, &target, &now),
        Verb::Watch => Err(ApiError::method_not_allowed()),
    }
}

fn name_of<'a>(target: &'a Target<'_>) -> &'a str {
    target.path.name.as_deref().unwrap_or_default()
}

fn get(store: &Store, target: &Target<'_>) -> Result<Reply, ApiError> {
    let name = name_of(target);
    let object = store
        .get(&target.resource, target.namespace(), name)
        .ok_or_else(|| ApiError::not_found(&target.resource, name))?;
    Ok(Reply::json(200, &target.present(object.clone())))
}

fn selectors(call: &Call, target: &Target<'_>) -> Result<Selectors, ApiError> {
    let labels = LabelSelector::parse(call.query.get("labelSelector").map_or("", String::as_str))
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let selectable = target
        .resource
        .version(&target.path.version)
        .map(|version| version.selectable_fields.clone())
        .unwrap_or_default();
    let fields = FieldSelector::parse(
        call.query.get("fieldSelector").map_or("", String::as_str),
        &selectable,
    )
    .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(Selectors { labels, fields })
}

/// A continue token: the list's resourceVersion and the last key returned.
fn encode_continue(resource_version: u64, namespace: &str, name: &str) -> String {
    json!({"rv": resource_version, "start": [namespace, name]})
        .to_string()
        .bytes()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|index| {
            token
                .get(index..index + 2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        })
        .collect();
    let value: Value = serde_json::from_slice(&bytes?).ok()?;
    Some((
        value["rv"].as_u64()?,
        value["start"][0].as_str()?.to_owned(),
        value["start"][1].as_str()?.to_owned(),
    ))
}

fn list(store: &Store, call: &Call, target: &Target<'_>) -> Result<Reply, ApiError> {
    let selectors = selectors(call, target)?;
    let limit = match call.query.get("limit") {
        Some(limit) => limit
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {limit}")))?,
        None => 0,
    };
    let continue_from = match call.query.get("continue").filter(|token| !token.is_empty()) {
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        })?),
        None => None,
    };
    let exact = match (
        call.query.get("resourceVersionMatch").map(String::as_str),
        call.query.get("resourceVersion"),
    ) {
        (Some("Exact"), Some(resource_version)) => {
            Some(resource_version.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {resource_version}"))
            })?)
        }
        _ => None,
    };
    let at = continue_from
        .as_ref()
        .map(|(resource_version, _, _)| *resource_version)
        .or(exact);
    let objects = store.list(&target.resource, target.namespace(), at).map_err(|_| {
        let message = if continue_from.is_some() {
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
        } else {
            "The resourceVersion for the provided list is too old."
        };
        ApiError::new(410, "Expired", message)
    })?;
    let list_version = at.unwrap_or_else(|| store.resource_version());
    let mut matching: Vec<_> = objects
        .into_iter()
        .filter(|(key, _)| {
            continue_from
                .as_ref()
                .is_none_or(|(_, namespace, name)| key > &(namespace.clone(), name.clone()))
        })
        .filter(|(_, object)| selectors.matches(object))
        .collect();
    let mut metadata = json!({"resourceVersion": list_version.to_string()});
    if limit > 0 && matching.len() > limit {
        let remaining = matching.len() - limit;
        matching.truncate(limit);
        if let Some(((namespace, name), _)) = matching.last() {
            metadata["continue"] = json!(encode_continue(list_version, namespace, name));
        }
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = matching
        .into_iter()
        .map(|(_, object)| {
            let mut item = target.present(object);
            // Typed lists of built-in kinds carry no kind/apiVersion per
            // item on the real server; custom resources (unstructured) do.
            if !target.resource.custom
                && let Some(map) = item.as_object_mut()
            {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "kind": target.resource.list_kind,
            "apiVersion": target.resource.api_version(&target.path.version),
            "metadata": metadata,
            "items": items,
        }),
    ))
}

fn write_options<'a>(
    call: &'a Call,
    target: &'a Target<'a>,
    manager: &'a str,
    now: &'a str,
) -> WriteOptions<'a> {
    WriteOptions {
        manager,
        now,
        target: target.write_target,
        fields_recorded: false,
        require_resource_version: false,
        admission: Some(call.admission(target)),
    }
}

/// The options of a PUT or apply that creates its object.
fn creating_on_update(options: WriteOptions<'_>) -> WriteOptions<'_> {
    WriteOptions {
        admission: options.admission.map(|admission| Admission {
            creates_on_update: true,
            ..admission
        }),
        ..options
    }
}

fn create(store: &mut Store, call: &Call, target: &Target<'_>, now: &str) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    if meta::resource_version(&body).is_some() {
        return Err(ApiError::new(
            500,
            "InternalError",
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let manager = call.manager();
    let object = store.create(
        &target.resource,
        target.namespace(),
        body,
        &write_options(call, target, &manager, now),
    )?;
    Ok(Reply::json(201, &target.present(object)).changed(true))
}

fn update(store: &mut Store, call: &Call, target: &Target<'_>, now: &str) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    let manager = call.manager();
    let name = name_of(target);
    let exists = store.get(&target.resource, target.namespace(), name).is_some();
    if !exists && target.resource.create_on_update && target.write_target == WriteTarget::Main {
        let mut body = body;
        meta::metadata_mut(&mut body).remove("resourceVersion");
        if meta::name(&body) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(&body)
            )));
        }
        let object = store.create(
            &target.resource,
            target.namespace(),
            body,
            &creating_on_update(write_options(call, target, &manager, now)),
        )?;
        return Ok(Reply::json(201, &target.present(object)).changed(true));
    }
    let options = WriteOptions {
        require_resource_version: true,
        ..write_options(call, target, &manager, now)
    };
    let outcome = store.update(&target.resource, target.namespace(), name, body, &options)?;
    Ok(Reply::json(200, &target.present(outcome.object)).changed(outcome.changed))
}

fn patch_options_invalid(field: &str, reason: FieldReason, detail: &str) -> ApiError {
    let error: FieldError = field_error(field, reason, detail, None);
    ApiError::invalid_kind(
        "PatchOptions.meta.k8s.io",
        "PatchOptions",
        "meta.k8s.io",
        "",
        &[error],
    )
}

fn unsupported_patch(target: &Target<'_>) -> ApiError {
    let accepted = if target.resource.custom {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not implemented by the kube-standin API server)"
    };
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: {accepted}"
        ),
    )
}

fn patch(store: &mut Store, call: &Call, target: &Target<'_>, now: &str) -> Result<Reply, ApiError> {
    let patch_type =
        PatchType::from_content_type(&call.content_type).ok_or_else(|| unsupported_patch(target))?;
    let name = name_of(target);
    let force = call.query.get("force").map(String::as_str);
    if patch_type != PatchType::Apply && force.is_some() {
        return Err(patch_options_invalid(
            "force",
            FieldReason::Forbidden,
            "may not be specified for non-apply patch",
        ));
    }
    let live = store.get(&target.resource, target.namespace(), name).cloned();
    let patched = match patch_type {
        PatchType::StrategicMerge => return Err(unsupported_patch(target)),
        PatchType::Apply => return apply(store, call, target, live, now),
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(&call.body)
                .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
            let mut patched = live.ok_or_else(|| ApiError::not_found(&target.resource, name))?;
            json_patch::merge(&mut patched, &patch);
            patched
        }
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_slice(&call.body)
                .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
            let mut patched = live.ok_or_else(|| ApiError::not_found(&target.resource, name))?;
            for operation in operations.iter() {
                // The real server's JSON patch treats a missing path as equal
                // to null in `test`; kube-runtime's finalizer helper relies on it.
                if let json_patch::PatchOperation::Test(test) = operation
                    && test.value.is_null()
                    && patched.pointer(test.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut patched, std::slice::from_ref(operation))
                    .map_err(|error| ApiError::new(422, "Invalid", error.to_string()))?;
            }
            patched
        }
    };
    if !patched.is_object() {
        return Err(ApiError::bad_request("the patched object must be a JSON object"));
    }
    let manager = call.manager();
    let outcome = store.update(
        &target.resource,
        target.namespace(),
        name,
        patched,
        &write_options(call, target, &manager, now),
    )?;
    Ok(Reply::json(200, &target.present(outcome.object)).changed(outcome.changed))
}

/// Prints a conflicting manager as the real server does: its name, plus the
/// API version and time when it wrote through an update.
fn describe_manager(live: Option<&Value>, manager: &str) -> String {
    let entry = live
        .and_then(|live| live["metadata"]["managedFields"].as_array())
        .into_iter()
        .flatten()
        .find(|entry| entry["manager"].as_str() == Some(manager));
    let mut text = format!("{manager:?}");
    if let Some(entry) = entry {
        if let Some(subresource) = entry["subresource"]
            .as_str()
            .filter(|subresource| !subresource.is_empty())
        {
            text = format!("{text} with subresource {subresource:?}");
        }
        if entry["operation"] == "Update" {
            let api_version = entry["apiVersion"].as_str().unwrap_or_default();
            text = match entry["time"].as_str() {
                Some(time) => format!("{text} using {api_version} at {time}"),
                None => format!("{text} using {api_version}"),
            };
        }
    }
    text
}

fn conflict_error(live: Option<&Value>, conflicts: &[Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|conflict| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", describe_manager(live, &conflict.manager)),
                "field": conflict.field,
            })
        })
        .collect();
    let message = match conflicts {
        [single] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            describe_manager(live, &single.manager),
            single.field
        ),
        several => {
            let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for conflict in several {
                by_manager
                    .entry(&conflict.manager)
                    .or_default()
                    .push(&conflict.field);
            }
            let mut lines = Vec::new();
            for (manager, fields) in by_manager {
                lines.push(format!("conflicts with {}:", describe_manager(live, manager)));
                lines.extend(fields.iter().map(|field| format!("- {field}")));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                several.len(),
                lines.join("\n")
            )
        }
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

fn apply(
    store: &mut Store,
    call: &Call,
    target: &Target<'_>,
    live: Option<Value>,
    now: &str,
) -> Result<Reply, ApiError> {
    let manager = match call
        .query
        .get("fieldManager")
        .filter(|manager| !manager.is_empty())
    {
        Some(manager) => manager.clone(),
        None => {
            return Err(patch_options_invalid(
                "fieldManager",
                FieldReason::Required,
                "is required for apply patch",
            ));
        }
    };
    let force = is_true(&call.query, "force");
    let applied: Value = serde_yaml::from_slice(&call.body)
        .map_err(|error| ApiError::bad_request(format!("error decoding YAML: {error}")))?;
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    for (field, present) in [("apiVersion", &applied["apiVersion"]), ("kind", &applied["kind"])] {
        if present.as_str().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(format!(
                "{field} must be set in an apply configuration"
            )));
        }
    }
    let name = name_of(target);
    if meta::name(&applied) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&applied)
        )));
    }
    if live.is_none() && target.write_target == WriteTarget::Status {
        return Err(ApiError::not_found(&target.resource, name));
    }
    let options = WriteOptions {
        fields_recorded: true,
        ..write_options(call, target, &manager, now)
    };
    let result = Store::apply(&target.resource, live.as_ref(), &applied, force, &options)
        .map_err(|conflicts| conflict_error(live.as_ref(), &conflicts))?;
    match live {
        None => {
            let mut result = result;
            meta::metadata_mut(&mut result).remove("resourceVersion");
            let object = store.create(
                &target.resource,
                target.namespace(),
                result,
                &creating_on_update(options),
            )?;
            Ok(Reply::json(201, &target.present(object)).changed(true))
        }
        Some(_) => {
            let outcome = store.update(&target.resource, target.namespace(), name, result, &options)?;
            Ok(Reply::json(200, &target.present(outcome.object)).changed(outcome.changed))
        }
    }
}

/// `DeleteOptions` from the body (as kube sends them) or the query.
fn delete_options<'a>(
    call: &'a Call,
    target: &'a Target<'a>,
    body: &'a Value,
    now: &'a str,
) -> Result<DeleteOptions<'a>, ApiError> {
    let policy = body["propagationPolicy"]
        .as_str()
        .or_else(|| call.query.get("propagationPolicy").map(String::as_str));
    let propagation = match policy {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            let error = field_error(
                "propagationPolicy",
                FieldReason::Invalid,
                "supported values: \"Foreground\", \"Background\", \"Orphan\"",
                Some(&json!(other)),
            );
            return Err(ApiError::invalid_kind(
                "DeleteOptions.meta.k8s.io",
                "DeleteOptions",
                "meta.k8s.io",
                "",
                &[error],
            ));
        }
    };
    if body
        .get("dryRun")
        .is_some_and(|dry_run| dry_run.as_array().is_none_or(|values| !values.is_empty()))
    {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the kube-standin API server",
        ));
    }
    Ok(DeleteOptions {
        propagation,
        precondition_uid: body["preconditions"]["uid"].as_str(),
        precondition_resource_version: body["preconditions"]["resourceVersion"].as_str(),
        now,
        admission: Some(call.admission(target)),
    })
}

fn delete_body(call: &Call) -> Result<Value, ApiError> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        call.json_body()
    }
}

fn delete(store: &mut Store, call: &Call, target: &Target<'_>, now: &str) -> Result<Reply, ApiError> {
    let body = delete_body(call)?;
    let options = delete_options(call, target, &body, now)?;
    let outcome = store.delete(&target.resource, target.namespace(), name_of(target), &options)?;
    // 200 when the object is gone, 202 when finalizers keep it for now.
    let code = if outcome.removed { 200 } else { 202 };
    Ok(Reply::json(code, &target.present(outcome.object)).changed(outcome.changed))
}

fn delete_collection(
    store: &mut Store,
    call: &Call,
    target: &Target<'_>,
    now: &str,
) -> Result<Reply, ApiError> {
    let body = delete_body(call)?;
    let options = delete_options(call, target, &body, now)?;
    let selectors = selectors(call, target)?;
    let names: Vec<(String, String)> = store
        .list(&target.resource, target.namespace(), None)
        .map_err(|expired| watch::expired_error(expired.to_string()))?
        .into_iter()
        .filter(|(_, object)| selectors.matches(object))
        .map(|(key, _)| key)
        .collect();
    let mut items = Vec::new();
    let mut changed = false;
    for (namespace, object_name) in names {
        let namespace = (!namespace.is_empty()).then_some(namespace);
        // Garbage collection of an earlier item may have removed this one.
        if let Ok(outcome) = store.delete(&target.resource, namespace.as_deref(), &object_name, &options) {
            changed |= outcome.changed;
            items.push(target.present(outcome.object));
        }
    }
    Ok(Reply::json(
        200,
        &json!({
            "kind": target.resource.list_kind,
            "apiVersion": target.resource.api_version(&target.path.version),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": items,
        }),
    )
    .changed(changed))
}

fn start_watch(shared: &Arc<Shared>, call: &Call, path: &ResourcePath) -> Result<Reply, ApiError> {
    let mut store = lock(&shared.store);
    let target = resolve(&store, path)?;
    let selectors = selectors(call, &target)?;
    let send_initial_events = is_true(&call.query, "sendInitialEvents");
    let bookmarks = is_true(&call.query, "allowWatchBookmarks");
    if send_initial_events
        && (call.query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") || !bookmarks)
    {
        let error = field_error(
            "sendInitialEvents",
            FieldReason::Forbidden,
            "sendInitialEvents is forbidden for watch unless resourceVersionMatch is NotOlderThan and allowWatchBookmarks is true",
            None,
        );
        return Err(ApiError::invalid_kind(
            "ListOptions.meta.k8s.io",
            "ListOptions",
            "meta.k8s.io",
            "",
            &[error],
        ));
    }
    let since =
        match call.query.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(_) if send_initial_events => None,
            Some(resource_version) => Some(resource_version.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {resource_version}"))
            })?),
        };
    let timeout = match call.query.get("timeoutSeconds") {
        Some(seconds) => Duration::from_secs(
            seconds
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {seconds}")))?,
        ),
        None => DEFAULT_WATCH_TIMEOUT,
    };
    let request = WatchRequest {
        resource: Arc::clone(&target.resource),
        version: path.version.clone(),
        selectors,
        bookmarks,
        bookmark_interval: shared.bookmark_interval,
        timeout,
        initial_events_end: send_initial_events,
    };
    let begin = watch::begin(&mut store, &request, target.namespace(), since);
    drop(store);
    if let WatchBegin::Expired(error) = &begin {
        tracing::debug!(%error, "watch from a compacted resourceVersion");
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    tokio::spawn(watch::run(
        request,
        begin,
        Arc::clone(&shared.store),
        sender,
        shared.shutdown.clone(),
    ));
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), receiver))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(Reply {
        response,
        changed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_the_real_server() {
        let resource = |group: &str,
                        plural: &str,
                        namespace: Option<&str>,
                        name: Option<&str>,
                        subresource: Option<&str>| {
            Route::Resource(ResourcePath {
                group: group.to_owned(),
                version: "v1".to_owned(),
                plural: plural.to_owned(),
                namespace: namespace.map(str::to_owned),
                name: name.map(str::to_owned),
                subresource: subresource.map(str::to_owned),
            })
        };
        assert_eq!(
            route("/api/v1/namespaces"),
            resource("", "namespaces", None, None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/a"),
            resource("", "namespaces", None, Some("a"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/a/status"),
            resource("", "namespaces", None, Some("a"), Some("status"))
        );
        assert_eq!(
            route("/api/v1/namespaces/a/configmaps"),
            resource("", "configmaps", Some("a"), None, None)
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/a/deployments/web/status"),
            resource("apps", "deployments", Some("a"), Some("web"), Some("status"))
        );
        assert_eq!(
            route("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".to_owned(),
                version: "v1".to_owned()
            }
        );
        assert_eq!(route("/apis/apps"), Route::Group("apps".to_owned()));
        assert_eq!(route("/healthz/x/y"), Route::Unknown);
    }

    #[test]
    fn queries_decode_percent_and_plus() {
        let query = parse_query(Some("&labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=true"));
        assert_eq!(
            query.get("labelSelector").map(String::as_str),
            Some("app=web,tier in (a)")
        );
        assert_eq!(query.get("watch").map(String::as_str), Some("true"));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(42, "ns", "a/b");
        assert_eq!(
            decode_continue(&token),
            Some((42, "ns".to_owned(), "a/b".to_owned()))
        );
        assert_eq!(decode_continue("zz"), None);
    }
}
