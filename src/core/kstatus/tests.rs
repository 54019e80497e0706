use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::core::reasons::ResolutionFailure;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).expect("instant"))
}

fn promotion(phase: Phase, message: &str) -> PromotionStatus {
    PromotionStatus {
        phase,
        message: Some(message.to_string()),
        ..Default::default()
    }
}

fn application(name: &str, version: &str, health: Health) -> ApplicationStatus {
    serde_json::from_value(serde_json::json!({
        "application": name,
        "artifact": format!("{name}-{version}"),
        "version": version,
        "promotion": format!("{name}-{version}"),
        "health": health,
    }))
    .expect("application status")
}

fn ready(status: bool, reason: ConditionReason, message: &str) -> Wanted<'static> {
    Wanted {
        type_: crate::api::CONDITION_READY,
        status,
        reason,
        message: message.to_string(),
    }
}

#[test]
fn a_promotion_reconciles_until_it_ends_and_stalls_when_its_artifact_does_not_run() {
    for phase in [Phase::Pending, Phase::Waiting, Phase::Promoting, Phase::Verifying] {
        assert_eq!(
            of_promotion(&promotion(phase, "waiting for approval")),
            Progress::Reconciling {
                reason: phase.reason(),
                message: "waiting for approval".into()
            },
            "{phase:?}"
        );
    }
    for phase in [Phase::Failed, Phase::RolledBack, Phase::Rejected] {
        assert_eq!(
            of_promotion(&promotion(phase, "rollout failed")),
            Progress::Stalled {
                reason: phase.reason(),
                message: "rollout failed".into()
            },
            "{phase:?}"
        );
    }
    for phase in [Phase::Succeeded, Phase::Superseded] {
        assert_eq!(
            of_promotion(&promotion(phase, "done")),
            Progress::Current,
            "{phase:?}"
        );
    }
    let silent = PromotionStatus::default();
    assert_eq!(
        of_promotion(&silent),
        Progress::Reconciling {
            reason: ConditionReason::Pending,
            message: "Pending".into()
        }
    );
}

#[test]
fn an_environment_stalls_on_an_invalid_spec_or_a_degraded_release_and_reconciles_while_rolling_out() {
    let valid = ready(true, ConditionReason::Ready, "valid");
    let invalid = ready(
        false,
        ConditionReason::InvalidSpec,
        "spec.targets[0]: no Deployment",
    );
    let healthy = application("shop", "1.0.0", Health::Healthy);
    assert_eq!(
        of_environment(&invalid, std::slice::from_ref(&healthy)),
        Progress::Stalled {
            reason: ConditionReason::InvalidSpec,
            message: "spec.targets[0]: no Deployment".into()
        }
    );
    assert_eq!(
        of_environment(
            &valid,
            &[healthy.clone(), application("cart", "2.0.0", Health::Degraded)]
        ),
        Progress::Stalled {
            reason: ConditionReason::Degraded,
            message: "degraded: cart@2.0.0".into()
        }
    );
    assert_eq!(
        of_environment(
            &valid,
            &[healthy.clone(), application("cart", "2.0.0", Health::Progressing)]
        ),
        Progress::Reconciling {
            reason: ConditionReason::Progressing,
            message: "rolling out: cart@2.0.0".into()
        }
    );
    assert_eq!(of_environment(&valid, &[healthy]), Progress::Current);
    assert_eq!(of_environment(&valid, &[]), Progress::Current);
}

#[test]
fn an_artifact_stalls_only_on_failures_no_retry_mends() {
    assert_eq!(
        of_artifact(&ready(true, ConditionReason::Resolved, "all resolved")),
        Progress::Current
    );
    assert_eq!(
        of_artifact(&ready(false, ConditionReason::Resolving, "resolving images")),
        Progress::Reconciling {
            reason: ConditionReason::Resolving,
            message: "resolving images".into()
        }
    );
    for &failure in ResolutionFailure::ALL {
        let progress = of_artifact(&ready(false, failure.reason(), "no"));
        assert_eq!(
            matches!(progress, Progress::Stalled { .. }),
            failure.is_terminal(),
            "{failure:?}: {progress:?}"
        );
    }
}

#[test]
fn the_conditions_move_with_progress_and_keep_their_transition_time() {
    let reconciling = set(
        &[],
        Progress::Reconciling {
            reason: ConditionReason::Promoting,
            message: "pinning".into(),
        },
        Some(3),
        &at(100),
    );
    assert_eq!(reconciling.len(), 1);
    assert_eq!(reconciling[0].type_, RECONCILING);
    assert_eq!(reconciling[0].status, "True");
    assert_eq!(reconciling[0].observed_generation, Some(3));
    let again = set(
        &reconciling,
        Progress::Reconciling {
            reason: ConditionReason::Verifying,
            message: "verifying".into(),
        },
        Some(3),
        &at(160),
    );
    assert_eq!(
        again[0].last_transition_time,
        at(100),
        "still True: no transition"
    );
    assert_eq!(again[0].reason, "Verifying");
    let stalled = set(
        &again,
        Progress::Stalled {
            reason: ConditionReason::Failed,
            message: "rollout failed".into(),
        },
        Some(3),
        &at(200),
    );
    assert_eq!(
        stalled.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
        vec![STALLED]
    );
    let other = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Succeeded".into(),
        message: String::new(),
        observed_generation: Some(3),
        last_transition_time: at(300),
    };
    let current = set(
        &[other.clone(), stalled[0].clone()],
        Progress::Current,
        Some(3),
        &at(300),
    );
    assert_eq!(
        current,
        vec![other],
        "arrived: neither condition, the others kept"
    );
}
