//! Notifications against a real HTTP receiver (scripts/webhook-receiver on
//! 127.0.0.1) that checks the signature: each phase is told once, 500s are
//! retried, a crash between the phase change and the delivery loses
//! nothing, a wrong key is refused, and a slow receiver delays no Promotion.

use std::path::PathBuf;
use std::time::Duration;

use hoist::api::{DeliveryState, NotificationDelivery, NotificationEvent, Phase, Promotion};
use hoist_testkit::health;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{REVISION, Scenario, TIMEOUT};

const KEY: &str = "whsec-4c1d7e2a9b";

/// The receiver, killed when dropped.
struct Receiver {
    _child: tokio::process::Child,
    port: u16,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    async fn start(args: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().expect("temporary directory");
        let record = dir.path().join("received.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/webhook-receiver");
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .arg("--record")
            .arg(&record)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start scripts/webhook-receiver");
        let stdout = child.stdout.take().expect("receiver's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("receiver's port");
        let port = line
            .trim()
            .strip_prefix("port=")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("receiver printed {line:?}"));
        Receiver {
            _child: child,
            port,
            record,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hoist", self.port)
    }

    /// The allow-list entry that admits it.
    fn destination(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it recorded, in order.
    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a recorded line"))
            .collect()
    }

    /// (id, status, verified) of each request answered.
    fn answered(&self) -> Vec<(String, u64, bool)> {
        self.entries()
            .into_iter()
            .filter(|entry| entry["event"] == "answered")
            .map(|entry| {
                (
                    entry["id"].as_str().unwrap_or_default().to_string(),
                    entry["status"].as_u64().unwrap_or_default(),
                    entry["verified"].as_bool().unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn wait_arrivals(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self
            .entries()
            .iter()
            .filter(|entry| entry["event"] == "arrived")
            .count()
            < count
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {:?}",
                self.entries()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The tenant's Secret `hooks` with the signing key `key`.
async fn signing_key(scenario: &Scenario, key: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hooks"},
        "stringData": {"signing": key},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(scenario.client(), scenario.namespace())
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret hooks");
}

/// Dev tells `receiver` of `on`, signed with the key of Secret `hooks`.
async fn notify_dev(scenario: &Scenario, receiver: &Receiver, on: &[&str]) {
    let notifications = json!([{
        "name": "chat",
        "url": receiver.url(),
        "on": on,
        "signingKeySecretRef": {"name": "hooks", "key": "signing"},
    }]);
    scenario
        .update_environment("dev", |spec| {
            spec.notifications = serde_json::from_value(notifications).expect("notifications");
        })
        .await;
}

/// The scenario's operator admitting `receiver`, trusting Environments
/// without the admission policy (the stand-in installs none), started.
async fn start(scenario: &mut Scenario, receiver: &Receiver) {
    scenario.allowed_destinations.push(receiver.destination());
    scenario.start_with(settings(scenario)).await;
}

/// The settings [`start`] uses, for a restart.
fn settings(scenario: &Scenario) -> hoist::controller::Settings {
    hoist::controller::Settings {
        trust_environments_without_policy: true,
        ..scenario.settings()
    }
}

/// Promotion `name`'s deliveries once none is pending.
async fn settled(scenario: &Scenario, name: &str) -> Vec<NotificationDelivery> {
    let promotion = scenario
        .cluster
        .wait_for::<Promotion>(name, Duration::from_secs(60), |p| {
            p.status.as_ref().is_some_and(|s| {
                !s.notifications.is_empty()
                    && s.notifications.iter().all(|d| d.state != DeliveryState::Pending)
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    promotion.status.unwrap_or_default().notifications
}

/// Releases shop 1.0.0 to dev (Promotion to-dev) and returns its
/// deliveries once none is pending.
async fn released_to_dev(scenario: &Scenario) -> Vec<NotificationDelivery> {
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    settled(scenario, "to-dev").await
}

fn uid(promotion: &Promotion) -> String {
    promotion.metadata.uid.clone().expect("uid")
}

#[tokio::test]
async fn each_phase_is_told_once_signed_and_retried_after_500s() {
    let mut scenario = Scenario::new().await;
    let receiver = Receiver::start(&["--key", KEY, "--fail", "2"]).await;
    signing_key(&scenario, KEY).await;
    notify_dev(&scenario, &receiver, &["Succeeded", "Failed"]).await;
    start(&mut scenario, &receiver).await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promotion = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    let id = format!("{}/Succeeded", uid(&promotion));

    let deliveries = settled(&scenario, "to-dev").await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert_eq!(
        (
            delivery.id.as_str(),
            delivery.event,
            delivery.target.as_str(),
            delivery.state,
            delivery.attempts
        ),
        (
            id.as_str(),
            NotificationEvent::Succeeded,
            "chat",
            DeliveryState::Delivered,
            3
        )
    );
    assert_eq!(
        delivery.last_error.as_deref(),
        Some(
            format!(
                "127.0.0.1:{} answered HTTP 500 Internal Server Error",
                receiver.port
            )
            .as_str()
        )
    );
    assert!(delivery.delivered_at.is_some() && delivery.next_attempt_at.is_none());
    assert_eq!(
        receiver.answered(),
        [
            (id.clone(), 500, true),
            (id.clone(), 500, true),
            (id.clone(), 200, true)
        ]
    );
    let accepted = receiver
        .entries()
        .into_iter()
        .rfind(|entry| entry["event"] == "answered")
        .expect("an answer");
    assert_eq!(accepted["contentType"], "application/cloudevents+json");
    let event = &accepted["body"];
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["type"], "dev.hoist.promotion.succeeded");
    assert_eq!(
        event["source"],
        format!(
            "/apis/hoist.dev/v1alpha1/namespaces/{}/environments/dev",
            scenario.namespace()
        )
    );
    assert_eq!(event["subject"], "promotions/to-dev");
    assert_eq!(event["data"]["artifact"], "shop-1-0-0");

    // Nothing more is sent for a phase already told.
    scenario.quiet().await;
    assert_eq!(receiver.answered().len(), 3);
    let health = scenario.health();
    assert_eq!(
        health::metric(health, "hoist_notifications_total{outcome=\"retried\"}").await,
        2.0
    );
    assert_eq!(
        health::metric(health, "hoist_notifications_total{outcome=\"delivered\"}").await,
        1.0
    );
    scenario.stop().await;
}

/// Dev's Promotion to-dev succeeded, and the receiver holds (for a
/// minute) the request that tells it.
async fn first_notification_held() -> (Scenario, Receiver, Promotion) {
    let mut scenario = Scenario::new().await;
    let receiver = Receiver::start(&["--key", KEY, "--delay", "60"]).await;
    signing_key(&scenario, KEY).await;
    notify_dev(&scenario, &receiver, &["Succeeded"]).await;
    start(&mut scenario, &receiver).await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let promotion = scenario.wait_phase("to-dev", Phase::Succeeded).await;
    receiver.wait_arrivals(1).await;
    (scenario, receiver, promotion)
}

#[tokio::test]
async fn a_crash_between_the_phase_change_and_the_delivery_loses_nothing() {
    // The operator dies with the first request in flight.
    let (mut scenario, receiver, promotion) = first_notification_held().await;
    scenario.kill().await;
    let recorded = scenario
        .cluster
        .wait_for::<Promotion>("to-dev", TIMEOUT, |_| true)
        .await
        .expect("to-dev")
        .status
        .unwrap_or_default()
        .notifications;
    assert_eq!(
        recorded.iter().map(|d| (d.state, d.attempts)).collect::<Vec<_>>(),
        [(DeliveryState::Pending, 0)],
        "recorded with the phase change, not yet delivered"
    );

    scenario.start_with(settings(&scenario)).await;
    let deliveries = settled(&scenario, "to-dev").await;
    let id = format!("{}/Succeeded", uid(&promotion));
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.id.as_str(), d.state, d.attempts))
            .collect::<Vec<_>>(),
        [(id.as_str(), DeliveryState::Delivered, 1)]
    );
    // The restarted operator sent it again, with the same id: the receiver
    // drops the duplicate by it.
    let arrivals: Vec<String> = receiver
        .entries()
        .into_iter()
        .filter(|entry| entry["event"] == "arrived")
        .map(|entry| entry["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(arrivals, [id.clone(), id]);
    scenario.stop().await;
}

#[tokio::test]
async fn a_signature_made_with_another_key_is_refused_and_given_up_at_once() {
    let mut scenario = Scenario::new().await;
    let receiver = Receiver::start(&["--key", KEY]).await;
    signing_key(&scenario, "not-the-receivers-key").await;
    notify_dev(&scenario, &receiver, &["Succeeded"]).await;
    start(&mut scenario, &receiver).await;
    let deliveries = released_to_dev(&scenario).await;
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.state, d.attempts, d.last_error.clone()))
            .collect::<Vec<_>>(),
        [(
            DeliveryState::Failed,
            1,
            Some(format!(
                "127.0.0.1:{} answered HTTP 401 Unauthorized (not tried again)",
                receiver.port
            ))
        )]
    );
    let answered = receiver.answered();
    assert_eq!(
        answered
            .iter()
            .map(|(_, status, verified)| (*status, *verified))
            .collect::<Vec<_>>(),
        [(401, false)]
    );
    assert_eq!(
        health::metric(scenario.health(), "hoist_notifications_total{outcome=\"failed\"}").await,
        1.0
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_delays_no_promotion() {
    let (mut scenario, receiver, first) = first_notification_held().await;
    // While the receiver holds the first notification, the next release
    // goes all the way through.
    scenario.release("shop-1-1-0", "1.1.0", Some(REVISION)).await;
    let started = tokio::time::Instant::now();
    scenario.promote_and_wait("to-dev-2", "shop-1-1-0", "dev").await;
    assert!(started.elapsed() < Duration::from_secs(30));
    let held = format!("{}/Succeeded", uid(&first));
    assert!(
        receiver.answered().iter().all(|(id, _, _)| *id != held),
        "the first request is still held: {:?}",
        receiver.entries()
    );
    scenario.kill().await;
}

/// A scenario whose operator configuration has the tenant-wide notification
/// `audit` to a new receiver, with `fields` (its `on` and `format`).
async fn with_tenant_wide(fields: &str) -> (Scenario, Receiver) {
    let mut scenario = Scenario::new().await;
    let receiver = Receiver::start(&[]).await;
    scenario.allowed_destinations.push(receiver.destination());
    let config = hoist::core::operator_config::parse(&format!(
        "notifications:\n  - {{name: audit, url: \"{}\", {fields}}}\n",
        receiver.url()
    ))
    .expect("configuration");
    scenario
        .start_with(hoist::controller::Settings {
            config: std::sync::Arc::new(config),
            ..scenario.settings()
        })
        .await;
    (scenario, receiver)
}

#[tokio::test]
async fn a_tenant_wide_notification_of_the_operator_configuration_is_told_in_slack_format() {
    let (mut scenario, receiver) = with_tenant_wide("on: [Succeeded], format: Slack").await;
    let deliveries = released_to_dev(&scenario).await;
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.target.as_str(), d.state, d.attempts))
            .collect::<Vec<_>>(),
        [("operator/audit", DeliveryState::Delivered, 1)]
    );
    let answered: Vec<Value> = receiver
        .entries()
        .into_iter()
        .filter(|entry| entry["event"] == "answered")
        .collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["signed"], false);
    assert_eq!(answered[0]["contentType"], "application/json");
    assert_eq!(
        answered[0]["body"],
        json!({
            "text": format!("Succeeded: shop-1-0-0 into dev (Promotion to-dev in namespace {})", scenario.namespace()),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!(
                "*Succeeded*: `shop-1-0-0` into *dev*\nPromotion `to-dev` in namespace `{}`",
                scenario.namespace()
            )}}],
        })
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_promotion_into_a_missing_environment_is_told_to_the_tenant_wide_notifications() {
    let (mut scenario, receiver) = with_tenant_wide("on: [Rejected]").await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote("to-qa", "shop-1-0-0", "qa").await;
    let promotion = scenario.wait_phase("to-qa", Phase::Rejected).await;
    let id = format!("{}/Rejected", uid(&promotion));
    let deliveries = settled(&scenario, "to-qa").await;
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.id.as_str(), d.target.as_str(), d.state, d.attempts))
            .collect::<Vec<_>>(),
        [(id.as_str(), "operator/audit", DeliveryState::Delivered, 1)]
    );
    let answered: Vec<Value> = receiver
        .entries()
        .into_iter()
        .filter(|entry| entry["event"] == "answered")
        .collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    let event = &answered[0]["body"];
    assert_eq!(event["type"], "dev.hoist.promotion.rejected");
    assert_eq!(event["subject"], "promotions/to-qa");
    assert_eq!(
        event["source"],
        format!(
            "/apis/hoist.dev/v1alpha1/namespaces/{}/environments/qa",
            scenario.namespace()
        )
    );
    scenario.stop().await;
}
