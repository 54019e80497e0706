//! The notification sender: a controller of its own over Promotions, so a
//! slow or failing webhook never delays an Environment's reconcile. It
//! sends the deliveries of a Promotion's `status.notifications` that are
//! due (recorded there with the phase change, see
//! [`crate::core::notifications`]) and records each attempt in the same
//! list, with the resourceVersion it read: a Promotion written meanwhile is
//! not overwritten, and its deliveries are attempted again (at least once,
//! never lost; receivers drop duplicates by the id).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tracing::instrument;

use super::Error;
use super::context::{Ctx, FIELD_MANAGER, await_cached};
use super::outbound::{OutboundError, pinned_client, secret_text, source_chain};
use crate::api::{Environment, NotificationDelivery, NotificationFormat, Promotion, SecretKeyReference};
use crate::core::clusters::Scope;
use crate::core::destinations::Destination;
use crate::core::notifications::{self, Attempt, NamespacedSecretKey, OPERATOR_TARGET, Outcome};
use crate::core::reasons::EventReason;
use crate::core::tenancy;

const CONTROLLER: &str = "notifications";
/// How long one attempt may take before it counts as failed (and is tried
/// again).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[instrument(skip_all, fields(name = %promotion.name_any(), namespace = promotion.namespace()))]
pub async fn reconcile(promotion: Arc<Promotion>, ctx: Ctx) -> Result<Action, Error> {
    let Some(status) = promotion.status.as_ref() else {
        return Ok(Action::await_change());
    };
    let Some(due) = notifications::next_due(status) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if due > now {
        let wait = now.duration_until(due);
        return Ok(Action::requeue(Duration::try_from(wait).unwrap_or_default()));
    }
    let namespace = promotion.namespace().unwrap_or_default();
    let environment = ctx
        .stores
        .environments
        .get(&ObjectRef::new(&promotion.spec.environment).within(&namespace));
    // Sent by whoever reconciles the Environment (the hub, or a workload
    // cluster's agent), so by one process only; those of a Promotion into
    // a missing Environment by the hub, which refused it.
    let environment = match environment {
        Some(environment) if ctx.scope.reconciles(&environment) => Some(environment),
        None if matches!(ctx.scope, Scope::Hub) => None,
        _ => return Ok(Action::await_change()),
    };

    let mut deliveries = status.notifications.clone();
    let attempts = join_all(
        deliveries
            .iter()
            .filter(|delivery| notifications::is_due(delivery, now))
            .map(|delivery| attempt(&ctx, &promotion, environment.as_deref(), delivery)),
    )
    .await;
    let finished = Timestamp::now();
    let mut outcomes = Vec::new();
    for (delivery, attempt) in deliveries
        .iter_mut()
        .filter(|delivery| notifications::is_due(delivery, now))
        .zip(attempts)
    {
        let outcome = notifications::attempted(delivery, attempt, finished);
        outcomes.push((outcome, delivery.clone()));
    }

    let patch = json!({
        "metadata": {"resourceVersion": promotion.resource_version()},
        "status": {"notifications": deliveries},
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match Api::<Promotion>::namespaced(ctx.hub.clone(), &namespace)
        .patch_status(&promotion.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(written) => {
            ctx.metrics.write(CONTROLLER);
            // A reconcile of this Promotion queued meanwhile must see what
            // was sent, or it would send it again from the cache's older
            // version (and only then be refused its write).
            await_cached(
                &ctx.stores.promotions,
                promotion.resource_version().as_deref(),
                &written,
            )
            .await;
        }
        // Written meanwhile: the new version is looked at, and what was
        // just sent is sent again.
        Err(kube::Error::Api(status)) if status.code == 409 => return Ok(Action::await_change()),
        Err(error) => return Err(Error::Kube(error)),
    }
    for (outcome, delivery) in outcomes {
        ctx.metrics.notification(outcome);
        if outcome == Outcome::Failed {
            ctx.event(
                promotion.as_ref(),
                EventReason::NotificationFailed,
                format!(
                    "notification {} of {} given up after {} attempts: {}",
                    delivery.target,
                    delivery.event.as_str(),
                    delivery.attempts,
                    delivery.last_error.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    // The write brings the Promotion back with its next due instant.
    Ok(Action::await_change())
}

/// Where a notification sends to, how, and with which key.
struct Webhook {
    url: String,
    format: NotificationFormat,
    key: Option<String>,
}

/// Sends `delivery` once.
async fn attempt(
    ctx: &Ctx,
    promotion: &Promotion,
    environment: Option<&Environment>,
    delivery: &NotificationDelivery,
) -> Attempt {
    let webhook = match webhook(ctx, promotion, environment, &delivery.target).await {
        Ok(webhook) => webhook,
        Err(attempt) => return attempt,
    };
    let target = match Destination::parse(&webhook.url) {
        Ok(destination) => destination.target(),
        Err(refusal) => return Attempt::Refused(refusal.to_string()),
    };
    let http = match pinned_client(&ctx.destinations, &webhook.url, ATTEMPT_TIMEOUT).await {
        Ok(http) => http,
        Err(OutboundError::Refused(refusal)) => return Attempt::Refused(refusal.to_string()),
        Err(error) => return Attempt::Transient(error.to_string()),
    };
    let body = notifications::body(webhook.format, promotion, delivery);
    let mut request = http
        .post(&webhook.url)
        .header(http::header::CONTENT_TYPE, body.content_type)
        .header(notifications::DELIVERY_HEADER, &delivery.id);
    if let Some(key) = &webhook.key {
        let signature = notifications::signature(key.as_bytes(), Timestamp::now().as_second(), &body.bytes);
        request = request.header(notifications::SIGNATURE_HEADER, signature);
    }
    // The URL may carry a token (Slack's do): messages name the host only.
    match request.body(body.bytes).send().await {
        Ok(response) => {
            let status = response.status();
            Attempt::of_status(status.as_u16(), format!("{target} answered HTTP {status}"))
        }
        Err(error) => Attempt::Transient(format!(
            "cannot reach {target}: {}",
            source_chain(&error.without_url())
        )),
    }
}

/// A key of a Secret: namespace, name, key.
type SecretKey = (String, String, String);

/// The webhook of the notification `target` names, its Secrets read; or
/// why there is none to send to.
async fn webhook(
    ctx: &Ctx,
    promotion: &Promotion,
    environment: Option<&Environment>,
    target: &str,
) -> Result<Webhook, Attempt> {
    let (url, url_secret, key_secret, format) = match target.strip_prefix(OPERATOR_TARGET) {
        Some(name) => {
            let notification = ctx
                .config
                .notifications
                .iter()
                .find(|n| n.name == name)
                .ok_or_else(|| {
                    Attempt::Refused(format!(
                        "the operator configuration has no notification {name} any more"
                    ))
                })?;
            let secret = |s: &NamespacedSecretKey| (s.namespace.clone(), s.name.clone(), s.key.clone());
            (
                notification.url.clone(),
                notification.url_secret_ref.as_ref().map(secret),
                notification.signing_key_secret_ref.as_ref().map(secret),
                notification.format,
            )
        }
        None => {
            let environment = environment.ok_or_else(|| {
                Attempt::Refused(format!(
                    "Environment {} does not exist any more",
                    promotion.spec.environment
                ))
            })?;
            let notification = environment
                .spec
                .notifications
                .iter()
                .find(|n| n.name == target)
                .ok_or_else(|| {
                    Attempt::Refused(format!(
                        "Environment {} has no notification {target} any more",
                        environment.name_any()
                    ))
                })?;
            // Without the admission policy, no Secret an Environment names is read.
            let reads_secret =
                notification.url_secret_ref.is_some() || notification.signing_key_secret_ref.is_some();
            if reads_secret && let Some(held) = tenancy::held(environment, &ctx.stores.boundaries()) {
                return Err(Attempt::Transient(held));
            }
            let namespace = environment.namespace().unwrap_or_default();
            let secret = |s: &SecretKeyReference| (namespace.clone(), s.name.clone(), s.key.clone());
            (
                notification.url.clone(),
                notification.url_secret_ref.as_ref().map(secret),
                notification.signing_key_secret_ref.as_ref().map(secret),
                notification.format,
            )
        }
    };
    let read = |(namespace, name, key): SecretKey| async move {
        secret_text(&ctx.local, &namespace, &name, &key)
            .await
            .map_err(Attempt::Transient)
    };
    let url = match (url, url_secret) {
        (Some(url), _) => url,
        (None, Some(secret)) => read(secret).await?,
        (None, None) => return Err(Attempt::Refused(format!("notification {target} has no URL"))),
    };
    let key = match key_secret {
        Some(secret) => Some(read(secret).await?),
        None => None,
    };
    Ok(Webhook { url, format, key })
}
