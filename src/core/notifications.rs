//! Notifications: which webhook deliveries a Promotion's phase change makes,
//! what each one sends, how it is signed, and when a failed one is tried
//! again.
//!
//! A delivery is recorded in the Promotion's `status.notifications` in the
//! same write as the phase change that made it, so no restart loses it; the
//! controller's sender sends what is due and records each attempt with
//! [`attempted`]. Every attempt of one delivery sends the same body with the
//! same id (`<Promotion uid>/<event>`), so a receiver that keeps the ids it
//! saw drops the duplicates an at-least-once delivery can make.
//!
//! Bodies are CloudEvents 1.0 in JSON structured mode
//! (<https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md>)
//! or a Slack incoming-webhook message (`text` as the notification's
//! fallback, `blocks` with one `mrkdwn` section). The signature follows
//! Stripe's webhook scheme (<https://docs.stripe.com/webhooks#verify-manually>):
//! HMAC-SHA256 over `<unix seconds>.<body>`, sent as
//! `Hoist-Signature: t=<unix seconds>,v1=<hex>`, so a receiver can refuse a
//! replayed request by its age.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::json;

use crate::api::{
    DeliveryState, Environment, GateName, GateState, NotificationDelivery, NotificationEvent,
    NotificationFormat, Phase, Promotion, PromotionStatus,
};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Hoist-Signature";
/// The header that carries the delivery's idempotency id.
pub const DELIVERY_HEADER: &str = "Hoist-Delivery";
/// How many attempts a delivery gets before it is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// The wait after the first failed attempt; each further one doubles it.
const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(5);
/// The longest wait between two attempts.
const LONGEST_RETRY: SignedDuration = SignedDuration::from_secs(300);
/// The prefix of the status target of a tenant-wide notification.
pub const OPERATOR_TARGET: &str = "operator/";

/// A tenant-wide notification of the operator configuration (section
/// `notifications`): told of every tenant's Promotions. Its Secrets are
/// named with their namespace, since it belongs to no tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    try_from = "TenantNotificationFields"
)]
pub struct TenantNotification {
    pub name: String,
    pub url: Option<String>,
    pub url_secret_ref: Option<NamespacedSecretKey>,
    pub on: Vec<NotificationEvent>,
    pub format: NotificationFormat,
    pub signing_key_secret_ref: Option<NamespacedSecretKey>,
}

/// A key of a Secret in a named namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespacedSecretKey {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// A tenant-wide notification as written, before its checks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantNotificationFields {
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_secret_ref: Option<NamespacedSecretKey>,
    on: Vec<NotificationEvent>,
    #[serde(default)]
    format: NotificationFormat,
    #[serde(default)]
    signing_key_secret_ref: Option<NamespacedSecretKey>,
}

/// Why a tenant-wide notification cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNotificationError {
    #[error("notification {0:?}: set exactly one of url and urlSecretRef")]
    Webhook(String),
    #[error("notification {0:?}: `on` names no event")]
    NoEvent(String),
    #[error("notification {0:?}: a name is a DNS label (lowercase letters, digits and '-', at most 63)")]
    Name(String),
}

impl TryFrom<TenantNotificationFields> for TenantNotification {
    type Error = TenantNotificationError;

    fn try_from(fields: TenantNotificationFields) -> Result<Self, TenantNotificationError> {
        let name = fields.name;
        let label = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !label {
            return Err(TenantNotificationError::Name(name));
        }
        if fields.url.is_some() == fields.url_secret_ref.is_some() {
            return Err(TenantNotificationError::Webhook(name));
        }
        if fields.on.is_empty() {
            return Err(TenantNotificationError::NoEvent(name));
        }
        Ok(TenantNotification {
            name,
            url: fields.url,
            url_secret_ref: fields.url_secret_ref,
            on: fields.on,
            format: fields.format,
            signing_key_secret_ref: fields.signing_key_secret_ref,
        })
    }
}

/// Who is told of which events: a notification's status target and its `on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub target: String,
    pub on: Vec<NotificationEvent>,
}

/// The notifications of Promotions into `environment`: its own, then the
/// tenant-wide ones.
pub fn subscriptions(environment: &Environment, tenant_wide: &[TenantNotification]) -> Vec<Subscription> {
    let own = environment.spec.notifications.iter().map(|n| Subscription {
        target: n.name.clone(),
        on: n.on.clone(),
    });
    own.chain(tenant_subscriptions(tenant_wide)).collect()
}

/// The tenant-wide notifications alone: those of a Promotion whose
/// Environment does not exist (refused, so told as `Rejected`).
pub fn tenant_subscriptions(tenant_wide: &[TenantNotification]) -> Vec<Subscription> {
    tenant_wide
        .iter()
        .map(|n| Subscription {
            target: format!("{OPERATOR_TARGET}{}", n.name),
            on: n.on.clone(),
        })
        .collect()
}

/// The events `status` stands for.
pub fn events(status: &PromotionStatus) -> Vec<NotificationEvent> {
    let gate = |name: GateName, state: GateState| {
        status
            .gates
            .iter()
            .any(|gate| gate.gate == name && gate.state == state)
    };
    let mut events = Vec::new();
    match status.phase {
        Phase::Waiting if gate(GateName::Approval, GateState::Pending) => {
            events.push(NotificationEvent::WaitingForApproval);
        }
        Phase::Succeeded => events.push(NotificationEvent::Succeeded),
        Phase::Failed => events.push(NotificationEvent::Failed),
        Phase::RolledBack => events.push(NotificationEvent::RolledBack),
        Phase::Rejected => events.push(NotificationEvent::Rejected),
        _ => {}
    }
    if matches!(status.phase, Phase::Failed | Phase::RolledBack)
        && gate(GateName::Verification, GateState::Failed)
    {
        events.push(NotificationEvent::VerificationFailed);
    }
    events
}

/// The idempotency id of `event` of the Promotion with `uid`.
pub fn delivery_id(uid: &str, event: NotificationEvent) -> String {
    format!("{uid}/{}", event.as_str())
}

/// Adds to `status` a pending delivery, due `now`, for each event it stands
/// for and each subscription to that event that has none yet: an event is
/// told to each notification once.
pub fn record(status: &mut PromotionStatus, uid: &str, subscriptions: &[Subscription], now: &Time) {
    for event in events(status) {
        let id = delivery_id(uid, event);
        for subscription in subscriptions.iter().filter(|s| s.on.contains(&event)) {
            let known = status
                .notifications
                .iter()
                .any(|d| d.id == id && d.target == subscription.target);
            if !known {
                status.notifications.push(NotificationDelivery {
                    id: id.clone(),
                    event,
                    target: subscription.target.clone(),
                    state: DeliveryState::Pending,
                    at: now.clone(),
                    attempts: 0,
                    last_error: None,
                    delivered_at: None,
                    next_attempt_at: Some(now.clone()),
                });
            }
        }
    }
}

/// Whether `delivery` is to be sent at `now`.
pub fn is_due(delivery: &NotificationDelivery, now: Timestamp) -> bool {
    delivery.state == DeliveryState::Pending && delivery.next_attempt_at.as_ref().is_none_or(|at| at.0 <= now)
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Accepted,
    /// Worth trying again: no answer, a timeout, 5xx, 408 or 429.
    Transient(String),
    /// Not worth trying again: the receiver refused the request as such
    /// (any other 4xx), or the operator cannot send it.
    Refused(String),
}

impl Attempt {
    /// How an HTTP answer of `status` went; `reason` says what was answered.
    pub fn of_status(status: u16, reason: String) -> Attempt {
        match status {
            200..=299 => Attempt::Accepted,
            408 | 429 => Attempt::Transient(reason),
            400..=499 => Attempt::Refused(reason),
            _ => Attempt::Transient(reason),
        }
    }
}

/// What an attempt did to its delivery, as the metric
/// `hoist_notifications_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Delivered,
    /// Failed, to be tried again.
    Retried,
    /// Failed, given up.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
        }
    }
}

/// How long after failed attempt number `attempts` (1 for the first) the
/// next one is made: 5 seconds, doubled each time, at most 5 minutes.
pub fn backoff(attempts: i32) -> SignedDuration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    FIRST_RETRY
        .checked_mul(1 << doublings)
        .unwrap_or(LONGEST_RETRY)
        .min(LONGEST_RETRY)
}

/// Records `attempt`, made at `now`, in `delivery`.
pub fn attempted(delivery: &mut NotificationDelivery, attempt: Attempt, now: Timestamp) -> Outcome {
    delivery.attempts = delivery.attempts.saturating_add(1);
    let (outcome, error) = match attempt {
        Attempt::Accepted => (Outcome::Delivered, None),
        Attempt::Transient(error) if delivery.attempts < MAX_ATTEMPTS => (Outcome::Retried, Some(error)),
        Attempt::Transient(error) => (
            Outcome::Failed,
            Some(format!("{error} (gave up after {MAX_ATTEMPTS} attempts)")),
        ),
        Attempt::Refused(error) => (Outcome::Failed, Some(format!("{error} (not tried again)"))),
    };
    match outcome {
        Outcome::Delivered => {
            delivery.state = DeliveryState::Delivered;
            delivery.delivered_at = Some(Time(now));
            delivery.next_attempt_at = None;
        }
        Outcome::Retried => {
            delivery.next_attempt_at = Some(Time(now.checked_add(backoff(delivery.attempts)).unwrap_or(now)));
        }
        Outcome::Failed => {
            delivery.state = DeliveryState::Failed;
            delivery.next_attempt_at = None;
        }
    }
    if error.is_some() {
        delivery.last_error = error;
    }
    outcome
}

/// The earliest instant a pending delivery of `status` falls due.
pub fn next_due(status: &PromotionStatus) -> Option<Timestamp> {
    status
        .notifications
        .iter()
        .filter(|d| d.state == DeliveryState::Pending)
        .map(|d| d.next_attempt_at.as_ref().map_or(Timestamp::MIN, |at| at.0))
        .min()
}

/// A request's body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The body `delivery` of `promotion` sends in `format`. The same for every
/// attempt: it reads only what a delivery records and what never changes
/// once the event happened.
pub fn body(format: NotificationFormat, promotion: &Promotion, delivery: &NotificationDelivery) -> Body {
    let namespace = promotion.namespace().unwrap_or_default();
    let name = promotion.name_any();
    let environment = &promotion.spec.environment;
    let artifact = &promotion.spec.artifact;
    let event = delivery.event.as_str();
    match format {
        NotificationFormat::CloudEvents => {
            let document = json!({
                "specversion": "1.0",
                "id": delivery.id,
                "source": format!("/apis/hoist.dev/v1alpha1/namespaces/{namespace}/environments/{environment}"),
                "type": format!("dev.hoist.promotion.{}", event_type(delivery.event)),
                "subject": format!("promotions/{name}"),
                "time": delivery.at.0.to_string(),
                "datacontenttype": "application/json",
                "data": {
                    "event": event,
                    "namespace": namespace,
                    "promotion": name,
                    "environment": environment,
                    "artifact": artifact,
                },
            });
            Body {
                content_type: "application/cloudevents+json",
                bytes: document.to_string().into_bytes(),
            }
        }
        NotificationFormat::Slack => {
            let text =
                format!("{event}: {artifact} into {environment} (Promotion {name} in namespace {namespace})");
            let markdown = format!(
                "*{}*: `{}` into *{}*\nPromotion `{}` in namespace `{}`",
                slack_escape(event),
                slack_escape(artifact),
                slack_escape(environment),
                slack_escape(&name),
                slack_escape(&namespace)
            );
            let document = json!({
                "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": markdown}}],
            });
            Body {
                content_type: "application/json",
                bytes: document.to_string().into_bytes(),
            }
        }
    }
}

/// The last word of an event's CloudEvents `type`.
fn event_type(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::WaitingForApproval => "waiting_for_approval",
        NotificationEvent::Succeeded => "succeeded",
        NotificationEvent::Failed => "failed",
        NotificationEvent::RolledBack => "rolled_back",
        NotificationEvent::Rejected => "rejected",
        NotificationEvent::VerificationFailed => "verification_failed",
    }
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` mentions everyone).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `Hoist-Signature` value of `body` sent at `timestamp` (unix
/// seconds), signed with `key`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut context = aws_lc_rs::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut hex = String::with_capacity(64);
    for byte in tag.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
#[path = "notifications/tests.rs"]
mod tests;
