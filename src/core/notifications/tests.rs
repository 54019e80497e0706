use super::*;
use crate::api::{GateStatus, Notification};
use crate::core::environment::fixture::{at, environment, promotion};

const UID: &str = "6f1c2a1e-3b5d-4c8e-9f00-1a2b3c4d5e6f";

fn gate(gate: GateName, state: GateState) -> GateStatus {
    GateStatus {
        gate,
        state,
        message: String::new(),
        last_checked: None,
        next_check: None,
    }
}

fn status(phase: Phase, gates: Vec<GateStatus>) -> PromotionStatus {
    PromotionStatus {
        phase,
        gates,
        ..Default::default()
    }
}

fn subscription(target: &str, on: &[NotificationEvent]) -> Subscription {
    Subscription {
        target: target.into(),
        on: on.to_vec(),
    }
}

fn pending(event: NotificationEvent, target: &str, seconds: i64) -> NotificationDelivery {
    NotificationDelivery {
        id: delivery_id(UID, event),
        event,
        target: target.into(),
        state: DeliveryState::Pending,
        at: at(seconds),
        attempts: 0,
        last_error: None,
        delivered_at: None,
        next_attempt_at: Some(at(seconds)),
    }
}

#[test]
fn each_phase_stands_for_its_event_and_a_failed_verification_for_one_more() {
    use NotificationEvent::*;
    let approval_pending = vec![gate(GateName::Approval, GateState::Pending)];
    let verification_failed = vec![gate(GateName::Verification, GateState::Failed)];
    assert_eq!(
        events(&status(Phase::Waiting, approval_pending)),
        [WaitingForApproval]
    );
    assert_eq!(
        events(&status(
            Phase::Waiting,
            vec![gate(GateName::Soak, GateState::Pending)]
        )),
        []
    );
    assert_eq!(events(&status(Phase::Succeeded, Vec::new())), [Succeeded]);
    assert_eq!(events(&status(Phase::Failed, Vec::new())), [Failed]);
    assert_eq!(
        events(&status(Phase::Failed, verification_failed.clone())),
        [Failed, VerificationFailed]
    );
    assert_eq!(
        events(&status(Phase::RolledBack, verification_failed)),
        [RolledBack, VerificationFailed]
    );
    assert_eq!(events(&status(Phase::Rejected, Vec::new())), [Rejected]);
    for quiet in [
        Phase::Pending,
        Phase::Promoting,
        Phase::Verifying,
        Phase::Superseded,
    ] {
        assert_eq!(events(&status(quiet, Vec::new())), [], "{quiet:?}");
    }
}

#[test]
fn a_phase_change_records_one_pending_delivery_per_subscribed_notification_once() {
    let subscriptions = [
        subscription("chat", &[NotificationEvent::Succeeded, NotificationEvent::Failed]),
        subscription("tickets", &[NotificationEvent::Failed]),
        subscription("operator/audit", &[NotificationEvent::Succeeded]),
    ];
    let mut succeeded = status(Phase::Succeeded, Vec::new());
    record(&mut succeeded, UID, &subscriptions, &at(100));
    assert_eq!(
        succeeded.notifications,
        [
            pending(NotificationEvent::Succeeded, "chat", 100),
            pending(NotificationEvent::Succeeded, "operator/audit", 100),
        ]
    );
    assert_eq!(succeeded.notifications[0].id, format!("{UID}/Succeeded"));

    // Decided again later (or after a restart): nothing new, nothing reset.
    let delivered = attempted(&mut succeeded.notifications[0], Attempt::Accepted, at(101).0);
    assert_eq!(delivered, Outcome::Delivered);
    let before = succeeded.clone();
    record(&mut succeeded, UID, &subscriptions, &at(200));
    assert_eq!(succeeded, before);
}

#[test]
fn an_environments_own_notifications_come_first_then_the_tenant_wide_ones() {
    let environment = environment(
        "dev",
        "  notifications:\n    - {name: chat, url: \"https://hooks.example.com/x\", on: [Succeeded]}\n",
    );
    let wide: TenantNotification = serde_yaml::from_str(
        "{name: audit, url: \"https://audit.example.com\", on: [Failed, Rejected], format: Slack}",
    )
    .expect("parses");
    assert_eq!(
        subscriptions(&environment, &[wide]),
        [
            subscription("chat", &[NotificationEvent::Succeeded]),
            subscription(
                "operator/audit",
                &[NotificationEvent::Failed, NotificationEvent::Rejected]
            ),
        ]
    );
    let own: &Notification = &environment.spec.notifications[0];
    assert_eq!(own.format, NotificationFormat::CloudEvents);
    assert_eq!(own.signing_key_secret_ref, None);
}

#[test]
fn a_tenant_wide_notification_is_checked_as_it_is_read() {
    let read = |yaml: &str| serde_yaml::from_str::<TenantNotification>(yaml).map_err(|e| e.to_string());
    let full = read(
        "{name: audit, urlSecretRef: {namespace: hoist-system, name: hooks, key: audit}, on: [Succeeded], \
         signingKeySecretRef: {namespace: hoist-system, name: hooks, key: signing}}",
    )
    .expect("parses");
    assert_eq!(
        full.signing_key_secret_ref,
        Some(NamespacedSecretKey {
            namespace: "hoist-system".into(),
            name: "hooks".into(),
            key: "signing".into()
        })
    );
    let both = read(
        "{name: audit, url: \"https://a\", urlSecretRef: {namespace: n, name: s, key: k}, on: [Failed]}",
    );
    assert!(
        both.as_ref()
            .is_err_and(|e| e.contains("set exactly one of url and urlSecretRef")),
        "{both:?}"
    );
    let neither = read("{name: audit, on: [Failed]}");
    assert!(neither.is_err(), "{neither:?}");
    let nothing = read("{name: audit, url: \"https://a\", on: []}");
    assert!(
        nothing.as_ref().is_err_and(|e| e.contains("`on` names no event")),
        "{nothing:?}"
    );
    let name = read("{name: Audit_1, url: \"https://a\", on: [Failed]}");
    assert!(name.as_ref().is_err_and(|e| e.contains("DNS label")), "{name:?}");
    let unknown = read("{name: audit, url: \"https://a\", on: [Failed], retries: 3}");
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("unknown field `retries`")),
        "{unknown:?}"
    );
}

#[test]
fn the_backoff_doubles_from_five_seconds_up_to_five_minutes() {
    let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(backoff(i32::MAX).as_secs(), 300);
}

#[test]
fn failed_attempts_are_retried_at_exact_instants_then_given_up() {
    let mut delivery = pending(NotificationEvent::Failed, "chat", 100);
    assert!(is_due(&delivery, at(100).0));
    assert!(!is_due(&delivery, at(99).0));

    let outcome = attempted(&mut delivery, Attempt::Transient("HTTP 500".into()), at(100).0);
    assert_eq!(outcome, Outcome::Retried);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.next_attempt_at, Some(at(105)));
    assert_eq!(delivery.last_error.as_deref(), Some("HTTP 500"));
    assert!(!is_due(&delivery, at(104).0));
    assert!(is_due(&delivery, at(105).0));

    let mut now = 105;
    let mut instants = Vec::new();
    while delivery.state == DeliveryState::Pending {
        attempted(&mut delivery, Attempt::Transient("timed out".into()), at(now).0);
        if let Some(next) = &delivery.next_attempt_at {
            now = next.0.as_second() - at(0).0.as_second();
            instants.push(now);
        }
    }
    assert_eq!(instants, [115, 135, 175, 255, 415, 715]);
    assert_eq!(delivery.attempts, MAX_ATTEMPTS);
    assert_eq!(delivery.state, DeliveryState::Failed);
    assert_eq!(delivery.next_attempt_at, None);
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("timed out (gave up after 8 attempts)")
    );
    assert!(!is_due(&delivery, at(10_000).0));
}

#[test]
fn a_refusal_is_given_up_at_once_and_an_acceptance_is_recorded() {
    let mut refused = pending(NotificationEvent::Succeeded, "chat", 100);
    let outcome = attempted(
        &mut refused,
        Attempt::of_status(401, "HTTP 401: bad signature".into()),
        at(101).0,
    );
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(refused.state, DeliveryState::Failed);
    assert_eq!(
        refused.last_error.as_deref(),
        Some("HTTP 401: bad signature (not tried again)")
    );

    let mut accepted = pending(NotificationEvent::Succeeded, "chat", 100);
    attempted(&mut accepted, Attempt::Transient("HTTP 503".into()), at(100).0);
    assert_eq!(
        attempted(&mut accepted, Attempt::of_status(204, String::new()), at(106).0),
        Outcome::Delivered
    );
    assert_eq!(accepted.state, DeliveryState::Delivered);
    assert_eq!(accepted.delivered_at, Some(at(106)));
    assert_eq!(accepted.next_attempt_at, None);
    assert_eq!(accepted.attempts, 2);
    // The last failure stays on record.
    assert_eq!(accepted.last_error.as_deref(), Some("HTTP 503"));

    assert_eq!(
        Attempt::of_status(429, "busy".into()),
        Attempt::Transient("busy".into())
    );
    assert_eq!(
        Attempt::of_status(408, "slow".into()),
        Attempt::Transient("slow".into())
    );
    assert_eq!(
        Attempt::of_status(502, "gateway".into()),
        Attempt::Transient("gateway".into())
    );
}

#[test]
fn the_next_due_instant_is_the_earliest_pending_one() {
    let mut status = status(Phase::Failed, Vec::new());
    assert_eq!(next_due(&status), None);
    let mut later = pending(NotificationEvent::Failed, "tickets", 100);
    later.next_attempt_at = Some(at(140));
    let mut done = pending(NotificationEvent::Failed, "chat", 100);
    attempted(&mut done, Attempt::Accepted, at(100).0);
    status.notifications = vec![done, later, pending(NotificationEvent::Failed, "audit", 120)];
    assert_eq!(next_due(&status), Some(at(120).0));
}

fn promotion_of_uid() -> Promotion {
    let mut promotion = promotion("to-dev", "shop-1-0-0", 50);
    promotion.metadata.uid = Some(UID.into());
    promotion
}

#[test]
fn a_cloudevent_is_json_structured_mode_with_the_idempotency_id() {
    let delivery = pending(NotificationEvent::Succeeded, "chat", 100);
    let body = body(NotificationFormat::CloudEvents, &promotion_of_uid(), &delivery);
    assert_eq!(body.content_type, "application/cloudevents+json");
    let document: serde_json::Value = serde_json::from_slice(&body.bytes).expect("JSON");
    assert_eq!(
        document,
        json!({
            "specversion": "1.0",
            "id": format!("{UID}/Succeeded"),
            "source": "/apis/hoist.dev/v1alpha1/namespaces/shop/environments/dev",
            "type": "dev.hoist.promotion.succeeded",
            "subject": "promotions/to-dev",
            "time": "2026-11-18T11:08:20Z",
            "datacontenttype": "application/json",
            "data": {
                "event": "Succeeded",
                "namespace": "shop",
                "promotion": "to-dev",
                "environment": "dev",
                "artifact": "shop-1-0-0",
            },
        })
    );
    // Every attempt sends the same bytes.
    let mut retried = delivery.clone();
    attempted(&mut retried, Attempt::Transient("HTTP 500".into()), at(100).0);
    assert_eq!(
        super::body(NotificationFormat::CloudEvents, &promotion_of_uid(), &retried),
        body
    );
}

#[test]
fn a_slack_message_has_a_fallback_text_and_an_escaped_section() {
    let mut promotion = promotion_of_uid();
    promotion.spec.artifact = "shop<1>&co".into();
    let delivery = pending(NotificationEvent::VerificationFailed, "chat", 100);
    let body = body(NotificationFormat::Slack, &promotion, &delivery);
    assert_eq!(body.content_type, "application/json");
    let document: serde_json::Value = serde_json::from_slice(&body.bytes).expect("JSON");
    assert_eq!(
        document,
        json!({
            "text": "VerificationFailed: shop<1>&co into dev (Promotion to-dev in namespace shop)",
            "blocks": [{
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*VerificationFailed*: `shop&lt;1&gt;&amp;co` into *dev*\nPromotion `to-dev` in namespace `shop`",
                },
            }],
        })
    );
}

#[test]
fn the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() {
    // python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
    assert_eq!(
        signature(b"key", 1_700_000_000, br#"{"a":1}"#),
        "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
    );
    assert_ne!(
        signature(b"key", 1_700_000_001, br#"{"a":1}"#),
        signature(b"key", 1_700_000_000, br#"{"a":1}"#)
    );
}

#[test]
fn the_plan_records_the_deliveries_with_the_phase_change_and_decided_again_writes_nothing_new() {
    use crate::core::environment::fixture::Objects;
    let mut objects = Objects::new(environment(
        "dev",
        "  gates: {approval: {minApprovals: 1}}\n  notifications:\n    - {name: chat, url: \"https://hooks.example.com/x\", on: [WaitingForApproval, Succeeded]}\n",
    ));
    let mut promotion = promotion_of_uid();
    promotion.spec.artifact = "shop-1".into();
    objects.promotions = vec![promotion];
    let wide: TenantNotification =
        serde_yaml::from_str("{name: audit, url: \"https://audit.example.com\", on: [WaitingForApproval]}")
            .expect("parses");
    let mut snapshot = objects.snapshot();
    snapshot.tenant_notifications = vec![wide.clone()];
    let first = crate::core::environment::plan(&snapshot);
    let status = &first.promotions["to-dev"];
    assert_eq!(status.phase, Phase::Waiting);
    assert_eq!(
        status.notifications,
        [
            pending(NotificationEvent::WaitingForApproval, "chat", 100),
            pending(NotificationEvent::WaitingForApproval, "operator/audit", 100),
        ]
    );

    objects.promotions[0].status = Some(status.clone());
    objects.now = at(400);
    let mut snapshot = objects.snapshot();
    snapshot.tenant_notifications = vec![wide];
    let later = crate::core::environment::plan(&snapshot);
    assert_eq!(later.promotions["to-dev"], *status, "nothing new to write");
}
