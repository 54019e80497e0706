//! Leader election: of the replicas that run, one reconciles and writes.
//!
//! Every replica lists and watches (so a standby that takes over decides
//! from warm caches) and serves `/healthz` and `/readyz`; only the holder of
//! the `coordination.k8s.io/v1` Lease reconciles. The decisions are the
//! core's ([`crate::core::lease`]); this module reads and writes the Lease
//! and fences the operator's client: a write leaves the process only while
//! this replica leads, that is until the renew deadline after the start of
//! its last successful renewal, which ends before any standby may take over.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use http::{Method, Request, Response};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::client::Body;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::core::lease::{self, Observed, Record, Step, Timing};

/// What a replica needs to take part in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace; the client's default namespace (in a pod,
    /// the pod's own) when `None`.
    pub lease_namespace: Option<String>,
    /// This replica's name in `spec.holderIdentity` (its pod's name).
    pub identity: String,
    pub timing: Timing,
    /// Labels and annotations the Lease carries (an agent's heartbeat
    /// Lease names its cluster and version); none for the operator's.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Whether this replica leads now, shared by the elector, the fence, the
/// reconcilers and the metrics.
#[derive(Clone)]
pub struct Leadership(Arc<Shared>);

struct Shared {
    /// This replica's identity, for logs and the metric's label.
    identity: String,
    base: Instant,
    /// Nanoseconds after `base` until which this replica may act; 0 when it
    /// does not lead, `u64::MAX` without election.
    until: AtomicU64,
    /// Flips to true each time this replica becomes the leader.
    leading: watch::Sender<bool>,
    /// Who else held the Lease at the last look, while this replica waits.
    other_holder: Mutex<Option<String>>,
}

impl Leadership {
    fn with(identity: String, until: u64) -> Leadership {
        Leadership(Arc::new(Shared {
            identity,
            base: Instant::now(),
            until: AtomicU64::new(until),
            leading: watch::Sender::new(until > 0),
            other_holder: Mutex::new(None),
        }))
    }

    /// A replica that always leads: one operator and no election.
    pub fn sole() -> Leadership {
        Leadership::with(String::new(), u64::MAX)
    }

    /// A replica that leads once the election says so.
    pub fn candidate(identity: &str) -> Leadership {
        Leadership::with(identity.to_owned(), 0)
    }

    pub fn identity(&self) -> &str {
        &self.0.identity
    }

    /// The other replica that held the Lease at the last look, if one did.
    pub fn other_holder(&self) -> Option<String> {
        self.0
            .other_holder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records who holds the Lease at this look (`None`: nobody else).
    fn seen_holder(&self, holder: Option<String>) {
        *self
            .0
            .other_holder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = holder;
    }

    /// Whether this replica may reconcile and write at this instant.
    pub fn is_leading(&self) -> bool {
        self.is_leading_at(Instant::now())
    }

    fn is_leading_at(&self, now: Instant) -> bool {
        let until = self.0.until.load(Ordering::Acquire);
        until == u64::MAX || self.nanos(now) < until
    }

    /// Until when this replica may act: `None` without election.
    fn deadline(&self) -> Option<Instant> {
        let until = self.0.until.load(Ordering::Acquire);
        (until != u64::MAX).then(|| self.0.base + Duration::from_nanos(until))
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.0.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Leads until `until` (a successful renewal).
    fn extend(&self, until: Instant) {
        let was = self.is_leading();
        self.0.until.store(self.nanos(until).max(1), Ordering::Release);
        if !was {
            self.0.leading.send_replace(true);
        }
    }

    /// Stops leading now (lost, released or shutting down).
    fn resign(&self) {
        self.0.until.store(0, Ordering::Release);
        self.0.leading.send_replace(false);
    }

    /// Yields each time this replica becomes the leader, so the controllers
    /// decide every object then (standby replicas left them alone).
    pub fn acquired(&self) -> impl Stream<Item = ()> + Send + 'static {
        let mut changes = self.0.leading.subscribe();
        changes.mark_unchanged();
        futures::stream::unfold(changes, |mut changes| async move {
            loop {
                changes.changed().await.ok()?;
                if *changes.borrow_and_update() {
                    return Some(((), changes));
                }
            }
        })
    }
}

/// A write refused because this replica does not lead.
#[derive(Debug, thiserror::Error)]
#[error("not sent: replica {identity} does not lead (another replica holds or may hold the Lease)")]
pub struct NotLeading {
    identity: String,
}

/// `client`, whose writes (every request but GET and HEAD) leave the
/// process only while `leadership` says this replica leads.
pub fn fenced(client: Client, leadership: Leadership) -> Client {
    let namespace = client.default_namespace().to_owned();
    Client::new(Fence { client, leadership }, namespace)
}

#[derive(Clone)]
struct Fence {
    client: Client,
    leadership: Leadership,
}

type Sent = Pin<Box<dyn Future<Output = Result<Response<Body>, tower::BoxError>> + Send>>;

impl tower::Service<Request<Body>> for Fence {
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = Sent;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let client = self.client.clone();
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            return Box::pin(async move { client.send(request).await.map_err(Into::into) });
        }
        let refused = NotLeading {
            identity: self.leadership.identity().to_owned(),
        };
        if !self.leadership.is_leading() {
            return Box::pin(async move { Err(refused.into()) });
        }
        // A write still unanswered when the lead ends is given up: it must
        // not reach the API server after a standby may have taken over.
        match self.leadership.deadline() {
            None => Box::pin(async move { client.send(request).await.map_err(Into::into) }),
            Some(deadline) => Box::pin(async move {
                match tokio::time::timeout_at(deadline.into(), client.send(request)).await {
                    Ok(sent) => sent.map_err(Into::into),
                    Err(_) => Err(refused.into()),
                }
            }),
        }
    }
}

/// Takes part in the election until `stop` resolves, then releases the
/// Lease if this replica holds it. `client` must not be fenced.
pub async fn run(client: Client, election: Election, leadership: Leadership, stop: impl Future<Output = ()>) {
    let api: Api<Lease> = match &election.lease_namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::default_namespaced(client),
    };
    let mut observed: Option<Observed> = None;
    let mut lease: Option<Lease> = None;
    tokio::pin!(stop);
    loop {
        let now = Instant::now();
        let round = try_round(&api, &election, &leadership, &mut observed, &mut lease);
        let next = tokio::select! {
            () = &mut stop => break,
            next = round => match next {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(lease = %election.lease_name, %error, "reading or writing the leader Lease failed");
                    now + election.timing.retry_period
                }
            },
        };
        if !leadership.is_leading() && *leadership.0.leading.borrow() {
            tracing::warn!(identity = %election.identity, "stopped leading: the Lease was not renewed within the renew deadline");
            leadership.resign();
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep_until(next.into()) => {}
        }
    }
    if leadership.is_leading() {
        leadership.resign();
        match release(&api, &election, lease).await {
            Ok(()) => tracing::info!(identity = %election.identity, "released the leader Lease"),
            Err(error) => {
                tracing::warn!(%error, "releasing the leader Lease failed; another replica takes over once it expires")
            }
        }
    }
}

/// One look at the Lease, and a claim where the core says so; returns when
/// to look again.
async fn try_round(
    api: &Api<Lease>,
    election: &Election,
    leadership: &Leadership,
    observed: &mut Option<Observed>,
    lease: &mut Option<Lease>,
) -> Result<Instant, kube::Error> {
    *lease = bounded(election.timing.retry_period, api.get_opt(&election.lease_name)).await?;
    // Seen when the answer came: a renewal written while the read was on
    // its way is not taken for older than it is.
    let now = Instant::now();
    let retry = now + election.timing.retry_period;
    let seen = Observed::update(observed.take(), lease.as_ref().map(record), now);
    let step = lease::decide(&election.identity, &seen, now, election.timing.lease_duration);
    let holder = lease
        .as_ref()
        .and_then(|lease| lease.spec.as_ref())
        .and_then(|spec| spec.holder_identity.clone())
        .filter(|holder| *holder != election.identity && !holder.is_empty());
    *observed = Some(seen);
    match step {
        Step::Wait { until } => {
            if holder.is_some() && holder != leadership.other_holder() {
                tracing::info!(
                    identity = %election.identity,
                    holder = holder.as_deref().unwrap_or_default(),
                    lease = %election.lease_name,
                    "another replica holds the Lease: standing by"
                );
            }
            leadership.seen_holder(holder);
            if leadership.is_leading() {
                tracing::warn!(identity = %election.identity, "another replica holds the leader Lease: stopped leading");
                leadership.resign();
            }
            Ok(until.min(retry))
        }
        Step::Claim {
            transitions,
            acquired,
        } => {
            leadership.seen_holder(None);
            let sent = Instant::now();
            let written = match claim(api, election, lease.take(), transitions, acquired).await {
                Ok(written) => written,
                Err(error) => {
                    // Another replica wrote the Lease first (it took over, or
                    // created it after it was deleted): stop at once.
                    if matches!(&error, kube::Error::Api(status) if status.code == 409)
                        && leadership.is_leading()
                    {
                        tracing::warn!(identity = %election.identity, "another replica wrote the leader Lease first: stopped leading");
                        leadership.resign();
                    }
                    return Err(error);
                }
            };
            leadership.extend(lease::leads_until(sent, election.timing));
            if acquired {
                tracing::info!(identity = %election.identity, "became the leader");
            }
            *observed = Some(Observed::update(
                observed.take(),
                Some(record(&written)),
                Instant::now(),
            ));
            *lease = Some(written);
            Ok(retry)
        }
    }
}

/// A request that gives up after `limit`: a renewal that takes longer than
/// the retry period would not keep the lead anyway.
async fn bounded<T>(
    limit: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| Err(kube::Error::Service(format!("no answer within {limit:?}").into())))
}

fn record(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity,
        duration_seconds: spec.lease_duration_seconds,
        renew_time: spec.renew_time.map(|t| t.0.to_string()),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// Writes the Lease as held by this replica: created when missing, else
/// replaced at the version read, so of two replicas claiming at once one
/// gets a conflict.
async fn claim(
    api: &Api<Lease>,
    election: &Election,
    current: Option<Lease>,
    transitions: i32,
    acquired: bool,
) -> Result<Lease, kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let seconds = i32::try_from(election.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let previous = current.as_ref().and_then(|l| l.spec.clone()).unwrap_or_default();
    let spec = LeaseSpec {
        holder_identity: Some(election.identity.clone()),
        lease_duration_seconds: Some(seconds),
        acquire_time: if acquired {
            Some(now.clone())
        } else {
            previous.acquire_time
        },
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let limit = election.timing.retry_period;
    match current {
        Some(mut lease) => {
            lease.spec = Some(spec);
            lease.labels_mut().extend(election.labels.clone());
            lease.annotations_mut().extend(election.annotations.clone());
            let name = lease.name_any();
            bounded(limit, api.replace(&name, &PostParams::default(), &lease)).await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(election.lease_name.clone()),
                    labels: Some(election.labels.clone()).filter(|labels| !labels.is_empty()),
                    annotations: Some(election.annotations.clone())
                        .filter(|annotations| !annotations.is_empty()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            bounded(limit, api.create(&PostParams::default(), &lease)).await
        }
    }
}

/// Gives the Lease up, as client-go does on release: no holder, a lease
/// of one second, so a standby takes over at its next look.
async fn release(api: &Api<Lease>, election: &Election, lease: Option<Lease>) -> Result<(), kube::Error> {
    let mut lease = match lease {
        Some(lease) => lease,
        None => match bounded(election.timing.retry_period, api.get_opt(&election.lease_name)).await? {
            Some(lease) => lease,
            None => return Ok(()),
        },
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(election.identity.as_str()) {
        return Ok(());
    }
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
    let name = lease.name_any();
    bounded(
        election.timing.retry_period,
        api.replace(&name, &PostParams::default(), &lease),
    )
    .await
    .map(drop)
}

#[cfg(test)]
#[path = "tests/leader.rs"]
mod tests;
