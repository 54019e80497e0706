//! Gates decided by the clock and by what runs: soak, change windows, compatibility.

use hoist::api::{Artifact, GateName, GateState, Phase, Promotion, PromotionSpec};
use hoist_testkit::registry::push_multi;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{REVISION, Scenario, TIMEOUT, gate};

impl Scenario {
    /// A Promotion of `artifact` into `environment` that waives `waive`.
    async fn promote_with_override(&self, name: &str, artifact: &str, environment: &str, waive: GateName) {
        let promotion = Promotion::new(
            name,
            PromotionSpec {
                artifact: artifact.into(),
                environment: environment.into(),
                reason: Some("test".into()),
                requested_by: Some(self.cluster.admin_user().to_string()),
                r#override: Some(hoist::api::Override {
                    waive: vec![waive],
                    justification: "hotfix INC-42 cannot wait".into(),
                }),
                approvals: Vec::new(),
            },
        );
        Api::<Promotion>::namespaced(self.client(), self.namespace())
            .create(&PostParams::default(), &promotion)
            .await
            .expect("create promotion");
    }
}

#[tokio::test]
async fn a_soak_holds_the_promotion_until_exactly_its_end_and_not_a_poll_later() {
    let mut scenario = Scenario::new().await;
    scenario
        .update_environment("staging", |spec| {
            spec.gates.soak = Some(hoist::api::SoakGate {
                duration: "6s".into(),
            })
        })
        .await;
    scenario.start().await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    scenario.environment_observed("staging").await;
    let dev = scenario.environment("dev").await;
    let since = dev.status.expect("status").applications[0]
        .health_since
        .clone()
        .expect("healthSince");
    let end = since.0 + k8s_openapi::jiff::SignedDuration::from_secs(6);

    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let waiting = scenario.wait_phase("to-staging", Phase::Waiting).await;
    // The soak may already be over on a slow machine; then there is nothing to hold.
    if k8s_openapi::jiff::Timestamp::now() < end {
        let soak = gate(&waiting, GateName::Soak);
        let message = format!(
            "shop-1-0-0 soaks until {end}: Healthy in dev since {}, soak 6s",
            since.0
        );
        assert_eq!(
            (soak.state, soak.message.as_str(), soak.next_check.map(|t| t.0)),
            (GateState::Pending, message.as_str(), Some(end))
        );
        assert_eq!(
            waiting.status.as_ref().and_then(|s| s.message.clone()),
            Some(format!("waiting for the Soak gate: {message}"))
        );
    }
    // Decided again when the soak ends: well before the 300-second resync.
    let done = scenario.wait_phase("to-staging", Phase::Succeeded).await;
    let started = done
        .status
        .as_ref()
        .and_then(|s| s.started_at.clone())
        .expect("startedAt");
    assert!(
        started.0 >= end,
        "started at {} before the soak ended at {end}",
        started.0
    );
    let soak = gate(&done, GateName::Soak);
    assert_eq!(
        (soak.state, soak.message),
        (
            GateState::Passed,
            format!(
                "shop-1-0-0 has soaked 6s upstream: Healthy in dev since {}, soak ended at {end}",
                since.0
            )
        )
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_freeze_holds_prod_and_an_override_with_an_approval_waives_it() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    scenario.release_through_staging(Some(REVISION)).await;

    // A weekly freeze, in Berlin, that opened at the start of the last minute and lasts two hours.
    let berlin = TimeZone::get("Europe/Berlin").expect("time zone");
    let opened = Timestamp::from_second((Timestamp::now().as_second() / 60 - 1) * 60).expect("instant");
    let local = opened.to_zoned(berlin.clone());
    let schedule = format!(
        "{} {} * * {}",
        local.minute(),
        local.hour(),
        local.weekday().to_sunday_zero_offset()
    );
    let end = opened + SignedDuration::from_hours(2);
    scenario
        .update_environment("prod", |spec| {
            spec.gates.windows = vec![hoist::api::ChangeWindow {
                name: "weekly-freeze".into(),
                r#type: hoist::api::WindowType::Deny,
                schedule: Some(schedule.clone()),
                duration: Some("2h".into()),
                time_zone: Some("Europe/Berlin".into()),
                start: None,
                end: None,
            }]
        })
        .await;
    let prod = scenario.environment_observed("prod").await;
    let gates_valid = prod
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "GatesValid")
        .expect("GatesValid");
    assert_eq!(
        (gates_valid.status.as_str(), gates_valid.message.as_str()),
        ("True", "soak, change windows and verification steps are valid")
    );

    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    scenario.approve("to-prod", "alice").await;
    let message = format!(
        "change window weekly-freeze (Deny) is on until {} ({end}); no Promotion starts before then unless an \
         override waives Windows",
        end.to_zoned(berlin).strftime("%Y-%m-%d %H:%M %Z")
    );
    let held = scenario
        .cluster
        .wait_for::<Promotion>("to-prod", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.message.as_deref() == Some(format!("waiting for the Windows gate: {message}").as_str())
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let windows = gate(&held, GateName::Windows);
    assert_eq!(
        (windows.state, windows.next_check.map(|t| t.0)),
        (GateState::Pending, Some(end))
    );
    assert_eq!(gate(&held, GateName::Approval).state, GateState::Passed);

    // Break glass: an override needs an approval too, and is told as a warning.
    scenario
        .promote_with_override("to-prod-now", "shop-1-0-0", "prod", GateName::Windows)
        .await;
    scenario.approve("to-prod-now", "bob").await;
    let done = scenario.wait_phase("to-prod-now", Phase::Succeeded).await;
    let waived = gate(&done, GateName::Windows);
    assert_eq!(
        (waived.state, waived.message.as_str(), waived.next_check),
        (
            GateState::Waived,
            format!("waived by override: {message}").as_str(),
            None
        )
    );
    let first = scenario.wait_phase("to-prod", Phase::Succeeded).await;
    assert_eq!(
        first.status.and_then(|s| s.message),
        Some("shop-1-0-0 already runs in prod; nothing to change".into())
    );
    let events = scenario.cluster.recent_events().await.expect("events");
    let expected = format!(
        "Warning to-prod-now GateWaived: Windows gate waived by override: {message} (justification: hotfix INC-42 cannot wait)"
    );
    assert!(
        events.lines().any(|line| line.trim() == expected),
        "missing event {expected:?} in:\n{events}"
    );
    scenario.stop().await;
}

#[tokio::test]
async fn a_compatibility_range_holds_a_release_until_what_it_needs_runs_and_compat_prints_the_matrix() {
    let mut scenario = Scenario::new().await;
    scenario.create_deployment("dev", "payments", "api", 0).await;
    let payments_namespace = scenario.stages["dev"].clone();
    scenario
        .update_environment("dev", |spec| {
            spec.targets.push(hoist::api::Target {
                application: "payments".into(),
                component: "api".into(),
                deployment: Some(hoist::api::DeploymentReference {
                    name: "payments".into(),
                    namespace: Some(payments_namespace),
                }),
                workload: None,
                container: "api".into(),
            });
            spec.gates.compatibility = Some(hoist::api::CompatibilityGate { enforce: true });
        })
        .await;
    scenario.start().await;
    for (name, version) in [("payments-1-3-0", "1.3.0"), ("payments-1-4-0", "1.4.0")] {
        let images = push_multi("payments", &[("api", version)])
            .await
            .expect("push images");
        scenario
            .apply::<Artifact>(
                name,
                json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": name},
                       "spec": {"application": "payments", "version": version,
                                "images": [{"component": "api", "image": images["api"].reference}],
                                "compatibility": [{"application": "shop", "versions": ">=1.0.0, <3.0.0"}]}}),
            )
            .await;
    }
    let images = push_multi("shop", &[("backend", "2.0.0"), ("frontend", "2.0.0")])
        .await
        .expect("push images");
    scenario
        .apply::<Artifact>(
            "shop-2-0-0",
            json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "shop-2-0-0"},
                   "spec": {"application": "shop", "version": "2.0.0",
                            "images": [{"component": "backend", "image": images["backend"].reference},
                                       {"component": "frontend", "image": images["frontend"].reference}],
                            "compatibility": [{"application": "payments", "versions": ">=1.4.0, <2.0.0"}]}}),
        )
        .await;
    scenario.environment_observed("dev").await;

    scenario
        .promote_and_wait("payments-old", "payments-1-3-0", "dev")
        .await;
    scenario.promote("shop-new", "shop-2-0-0", "dev").await;
    let message = "shop-2-0-0 needs payments >=1.4.0, <2.0.0, and payments 1.3.0 (payments-1-3-0) runs here; \
                   promote compatible releases first, or waive Compatibility";
    let held = scenario
        .cluster
        .wait_for::<Promotion>("shop-new", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.message.as_deref()
                    == Some(format!("waiting for the Compatibility gate: {message}").as_str())
            })
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(gate(&held, GateName::Compatibility).state, GateState::Pending);

    // payments 1.4.0 accepts shop 2.0.0 and is what shop 2.0.0 needs: both go through.
    scenario
        .promote_and_wait("payments-new", "payments-1-4-0", "dev")
        .await;
    let done = scenario.wait_phase("shop-new", Phase::Succeeded).await;
    assert_eq!(
        gate(&done, GateName::Compatibility).message,
        "2 compatibility range(s) hold against what runs here"
    );

    let matrix = hoist::plugin::compat(&scenario.client(), scenario.namespace(), Some("dev"))
        .await
        .expect("compat");
    assert_eq!(
        matrix,
        "\
Environment dev (Compatibility gate: enforced)
APPLICATION   ARTIFACT         VERSION   DECLARES                   RUNS HERE        CHECK
payments      payments-1-4-0   1.4.0     shop >=1.0.0, <3.0.0       shop 2.0.0       holds
shop          shop-2-0-0       2.0.0     payments >=1.4.0, <2.0.0   payments 1.4.0   holds
Every declared range holds.
"
    );
    scenario.stop().await;
}
