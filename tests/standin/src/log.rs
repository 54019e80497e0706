//! The request log and fault injection.
//!
//! Every request the stand-in serves is recorded, so tests can assert how a
//! controller talks to the API ("this reconcile made no writes", "no list
//! calls after the initial sync"). Faults make chosen requests fail or slow
//! down, to prove retry and backoff paths.

use std::fmt;
use std::time::Duration;

/// The Kubernetes verb of a request, named as in RBAC and audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    /// Every patch, server-side apply included; [`RequestRecord::patch_type`]
    /// tells them apart.
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// Whether requests with this verb ask to change state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content type of a PATCH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    pub(crate) fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match media_type {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// `None` for requests that are not about a resource (discovery, `/version`).
    pub verb: Option<Verb>,
    pub patch_type: Option<PatchType>,
    /// API group, empty for the core group.
    pub group: String,
    pub version: String,
    /// Plural resource name, e.g. `deployments`; empty for non-resource requests.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Who asked: the user the bearer token authenticated, or the one it
    /// impersonated; `None` when the request was not authenticated (401).
    pub user: Option<String>,
    /// The HTTP status code answered.
    pub code: u16,
    /// Whether the request changed stored state (bumped a resourceVersion).
    pub changed: bool,
    /// Whether an injected [`Fault`] answered the request.
    pub faulted: bool,
    /// When the request arrived.
    pub received: std::time::Instant,
    /// How long answering it took (for a watch: until its headers were ready).
    pub took: std::time::Duration,
}

impl RequestRecord {
    pub fn is_write(&self) -> bool {
        self.verb.is_some_and(Verb::is_write)
    }
}

/// Selects requests, for [`RequestLog`] queries and for [`Fault`]s.
///
/// Every criterion left unset matches anything. `resource` is a plural
/// resource name (`deployments`) or a plural qualified by its group
/// (`deployments.apps`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    verb: Option<Verb>,
    patch_type: Option<PatchType>,
    resource: Option<String>,
    subresource: Option<Option<String>>,
    namespace: Option<String>,
    name: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only PATCH requests of this type (sets the verb to [`Verb::Patch`]).
    pub fn patch_type(mut self, patch_type: PatchType) -> Self {
        self.verb = Some(Verb::Patch);
        self.patch_type = Some(patch_type);
        self
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Only requests to this subresource (`Some("status")`) or only requests
    /// to the main resource (`None`).
    pub fn subresource(mut self, subresource: Option<&str>) -> Self {
        self.subresource = Some(subresource.map(str::to_owned));
        self
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn matches(&self, record: &RequestRecord) -> bool {
        self.matches_request(&RequestKey {
            verb: record.verb,
            patch_type: record.patch_type,
            group: &record.group,
            resource: &record.resource,
            subresource: record.subresource.as_deref(),
            namespace: record.namespace.as_deref(),
            name: record.name.as_deref(),
        })
    }

    pub(crate) fn matches_request(&self, request: &RequestKey<'_>) -> bool {
        let resource_matches = self.resource.as_deref().is_none_or(|wanted| {
            if request.resource.is_empty() {
                return false;
            }
            wanted == request.resource
                || (!request.group.is_empty() && wanted == format!("{}.{}", request.resource, request.group))
        });
        self.verb.is_none_or(|verb| request.verb == Some(verb))
            && self
                .patch_type
                .is_none_or(|patch_type| request.patch_type == Some(patch_type))
            && resource_matches
            && self
                .subresource
                .as_ref()
                .is_none_or(|subresource| subresource.as_deref() == request.subresource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|namespace| request.namespace == Some(namespace))
            && self.name.as_deref().is_none_or(|name| request.name == Some(name))
    }
}

/// What a [`RequestMatch`] looks at, borrowed from a request being served.
pub(crate) struct RequestKey<'a> {
    pub verb: Option<Verb>,
    pub patch_type: Option<PatchType>,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// A snapshot of the requests served so far, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLog {
    records: Vec<RequestRecord>,
}

impl RequestLog {
    pub(crate) fn new(records: Vec<RequestRecord>) -> Self {
        Self { records }
    }

    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    /// Requests whose verb asks for a change, whether or not one happened
    /// (a no-op apply is still a write request).
    pub fn writes(&self) -> Vec<&RequestRecord> {
        self.records.iter().filter(|record| record.is_write()).collect()
    }

    /// Requests that changed stored state.
    pub fn changes(&self) -> Vec<&RequestRecord> {
        self.records.iter().filter(|record| record.changed).collect()
    }

    pub fn matching(&self, selector: &RequestMatch) -> Vec<&RequestRecord> {
        self.records
            .iter()
            .filter(|record| selector.matches(record))
            .collect()
    }

    /// How many requests had this verb on this resource (see [`RequestMatch::resource`]).
    pub fn count(&self, verb: Verb, resource: &str) -> usize {
        self.matching(&RequestMatch::any().verb(verb).resource(resource))
            .len()
    }
}

/// The error answered by a [`Fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultResponse {
    pub code: u16,
    /// The `Status.reason`; derived from the code when not set.
    pub reason: Option<String>,
    pub message: String,
    /// Seconds for the `Retry-After` header and `details.retryAfterSeconds`.
    pub retry_after_seconds: Option<u32>,
}

/// Makes matching requests fail and/or slow down.
///
/// ```
/// use kube_standin::{Fault, RequestMatch, Verb};
/// // The next two updates of any Deployment answer 500.
/// let fault = Fault::fail(RequestMatch::any().verb(Verb::Update).resource("deployments"), 500).times(2);
/// # let _ = fault;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) selector: RequestMatch,
    pub(crate) response: Option<FaultResponse>,
    pub(crate) delay: Option<Duration>,
    /// `None`: every matching request until [`crate::StandIn::clear_faults`].
    pub(crate) times: Option<u32>,
}

impl Fault {
    /// Answers matching requests with `code` and a `Status` body, once unless
    /// [`Fault::times`] or [`Fault::always`] say otherwise.
    pub fn fail(selector: RequestMatch, code: u16) -> Self {
        Fault {
            selector,
            response: Some(FaultResponse {
                code,
                reason: None,
                message: format!("injected fault: HTTP {code}"),
                retry_after_seconds: None,
            }),
            delay: None,
            times: Some(1),
        }
    }

    /// Delays every matching request (until [`crate::StandIn::clear_faults`]),
    /// then serves it normally.
    pub fn delay(selector: RequestMatch, delay: Duration) -> Self {
        Fault {
            selector,
            response: None,
            delay: Some(delay),
            times: None,
        }
    }

    /// Applies to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Applies to every matching request until cleared.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        if let Some(response) = &mut self.response {
            response.reason = Some(reason.into());
        }
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        if let Some(response) = &mut self.response {
            response.message = message.into();
        }
        self
    }

    /// Adds `Retry-After` (as the real server does with 429 and some 5xx).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        if let Some(response) = &mut self.response {
            response.retry_after_seconds = Some(seconds);
        }
        self
    }

    /// Also delays the matching requests before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// The faults in force, consumed as requests match them.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<Fault>,
}

/// What the first matching fault asks for one request.
pub(crate) struct FaultAction {
    pub delay: Option<Duration>,
    pub response: Option<FaultResponse>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        if fault.times != Some(0) {
            self.active.push(fault);
        }
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The action of the first fault matching `request`, counting it as used.
    pub fn take(&mut self, request: &RequestKey<'_>) -> Option<FaultAction> {
        let index = self
            .active
            .iter()
            .position(|fault| fault.selector.matches_request(request))?;
        let fault = &mut self.active[index];
        let action = FaultAction {
            delay: fault.delay,
            response: fault.response.clone(),
        };
        if let Some(remaining) = &mut fault.times {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.active.remove(index);
            }
        }
        Some(action)
    }
}
