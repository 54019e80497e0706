use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().expect("a valid instant")
}

/// A Lease exactly as leader election writes it for the agent of `cluster`.
fn lease(cluster: &str, holder: &str, acquired: &str, renewed: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(cluster)),
            namespace: Some("hoist".into()),
            labels: Some(BTreeMap::from([(LABEL_CLUSTER.into(), cluster.into())])),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_AGENT_VERSION.into(),
                "0.9.0".into(),
            )])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(at(acquired))),
            renew_time: Some(MicroTime(at(renewed))),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    }
}

const CREATED: &str = "2026-12-07T08:00:00Z";

fn state_at(leases: &[Lease], now: &str) -> AgentState {
    let heartbeats: Vec<Heartbeat> = leases.iter().map(Heartbeat::of).collect();
    state("eu", &heartbeats, at(CREATED), at(now))
}

#[test]
fn connected_until_the_lease_duration_after_the_last_renewal() {
    let leases = [lease(
        "eu",
        "agent-eu-1",
        "2026-12-07T09:00:00Z",
        "2026-12-07T10:00:00Z",
    )];
    let connected = AgentState::Connected {
        holder: "agent-eu-1".into(),
        version: Some("0.9.0".into()),
        since: at("2026-12-07T09:00:00Z"),
        last_heartbeat: at("2026-12-07T10:00:00Z"),
        until: at("2026-12-07T10:00:15Z"),
    };
    assert_eq!(state_at(&leases, "2026-12-07T10:00:14.999Z"), connected);
    assert_eq!(connected.expires(), Some(at("2026-12-07T10:00:15Z")));
    assert_eq!(
        state_at(&leases, "2026-12-07T10:00:15Z"),
        AgentState::Silent {
            since: at("2026-12-07T10:00:15Z"),
            silence: Silence::Expired {
                last_heartbeat: Some(at("2026-12-07T10:00:00Z"))
            },
        }
    );
}

#[test]
fn without_a_lease_silent_since_the_environment_was_created() {
    let other = lease("us", "agent-us-1", "2026-12-07T09:00:00Z", "2026-12-07T10:00:00Z");
    assert_eq!(
        state_at(&[other], "2026-12-07T10:00:01Z"),
        AgentState::Silent {
            since: at(CREATED),
            silence: Silence::NoLease
        }
    );
}

#[test]
fn a_lease_named_for_the_cluster_counts_only_with_its_label() {
    let mut mislabelled = lease("eu", "agent-eu-1", "2026-12-07T09:00:00Z", "2026-12-07T10:00:00Z");
    mislabelled.metadata.labels = Some(BTreeMap::from([(LABEL_CLUSTER.into(), "us".into())]));
    let mut misnamed = lease("eu", "agent-eu-1", "2026-12-07T09:00:00Z", "2026-12-07T10:00:00Z");
    misnamed.metadata.name = Some("hoist-agent-eu-2".into());
    assert_eq!(
        state_at(&[mislabelled, misnamed], "2026-12-07T10:00:01Z"),
        AgentState::Silent {
            since: at(CREATED),
            silence: Silence::NoLease
        }
    );
}

#[test]
fn a_released_lease_is_silent_since_its_release() {
    let mut released = lease("eu", "", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z");
    if let Some(spec) = released.spec.as_mut() {
        spec.lease_duration_seconds = Some(1);
    }
    assert_eq!(
        state_at(&[released], "2026-12-07T09:30:00.5Z"),
        AgentState::Silent {
            since: at("2026-12-07T09:30:00Z"),
            silence: Silence::Released {
                last_heartbeat: Some(at("2026-12-07T09:30:00Z"))
            },
        }
    );
}

#[test]
fn the_condition_names_version_replica_and_connection_or_last_heartbeat() {
    let leases = [lease(
        "eu",
        "agent-eu-1",
        "2026-12-07T09:00:00Z",
        "2026-12-07T10:00:00Z",
    )];
    let connected = condition("eu", "hoist", &state_at(&leases, "2026-12-07T10:00:05Z"));
    assert_eq!(
        (connected.status, connected.reason, connected.message.as_str()),
        (
            true,
            ConditionReason::LeaseRenewed,
            "the agent of cluster eu (version 0.9.0, replica agent-eu-1) renews Lease hoist/hoist-agent-eu on the hub, \
             connected since 2026-12-07T09:00:00Z"
        )
    );
    // A renewal changes nothing the condition says.
    let renewed = [lease(
        "eu",
        "agent-eu-1",
        "2026-12-07T09:00:00Z",
        "2026-12-07T10:00:04Z",
    )];
    assert_eq!(
        condition("eu", "hoist", &state_at(&renewed, "2026-12-07T10:00:05Z")),
        connected
    );
    let silent = condition("eu", "hoist", &state_at(&leases, "2026-12-07T11:00:00Z"));
    assert_eq!(
        (silent.status, silent.reason, silent.message.as_str()),
        (
            false,
            ConditionReason::AgentSilent,
            "the agent of cluster eu is silent since 2026-12-07T10:00:15Z: its Lease expired (last heartbeat \
             2026-12-07T10:00:00Z); Promotions into this Environment wait until an agent of cluster eu renews Lease \
             hoist/hoist-agent-eu (run `hoist agent --cluster eu` in the workload cluster)"
        )
    );
    let never = condition("eu", "hoist", &state_at(&[], "2026-12-07T11:00:00Z"));
    assert_eq!(
        never.message,
        "no agent of cluster eu has connected since 2026-12-07T08:00:00Z (no Lease); Promotions into this Environment \
         wait until an agent of cluster eu renews Lease hoist/hoist-agent-eu (run `hoist agent --cluster eu` in the \
         workload cluster)"
    );
}

#[test]
fn promotions_not_started_wait_while_the_agent_is_silent() {
    let leases = [lease(
        "eu",
        "agent-eu-1",
        "2026-12-07T09:00:00Z",
        "2026-12-07T10:00:00Z",
    )];
    let silent = state_at(&leases, "2026-12-07T10:00:15Z");
    let message = "waiting for the agent of cluster eu: the agent of cluster eu is silent since \
                   2026-12-07T10:00:15Z: its Lease expired (last heartbeat 2026-12-07T10:00:00Z)";
    assert_eq!(
        promotion_writes("eu", None, Phase::Pending, None, &silent),
        PromotionWrites {
            label: Some("eu".into()),
            waiting: Some(message.into()),
            release: false,
        }
    );
    assert_eq!(
        promotion_writes(
            "eu",
            Some("us"),
            Phase::Waiting,
            Some("held by Approval"),
            &silent
        ),
        PromotionWrites {
            label: Some("eu".into()),
            waiting: Some(message.into()),
            release: false,
        }
    );
    // Already written: nothing to write.
    assert_eq!(
        promotion_writes("eu", Some("eu"), Phase::Waiting, Some(message), &silent),
        PromotionWrites::default()
    );
    // In flight or finished: the agent's.
    for phase in [
        Phase::Promoting,
        Phase::Verifying,
        Phase::Succeeded,
        Phase::Failed,
    ] {
        assert_eq!(
            promotion_writes("eu", Some("eu"), phase, None, &silent),
            PromotionWrites::default()
        );
    }
    // Connected: the agent writes the status, the hub only the label.
    let connected = state_at(&leases, "2026-12-07T10:00:14Z");
    assert_eq!(
        promotion_writes("eu", None, Phase::Pending, None, &connected),
        PromotionWrites {
            label: Some("eu".into()),
            waiting: None,
            release: false,
        }
    );
    // Back: the hub's Waiting is given up, once; the agent's own Waiting stays.
    assert_eq!(
        promotion_writes("eu", Some("eu"), Phase::Waiting, Some(message), &connected),
        PromotionWrites {
            label: None,
            waiting: None,
            release: true,
        }
    );
    assert_eq!(
        promotion_writes(
            "eu",
            Some("eu"),
            Phase::Waiting,
            Some("held by Approval"),
            &connected
        ),
        PromotionWrites::default()
    );
}

#[test]
fn holds_compares_what_the_condition_says() {
    let wanted = condition("eu", "hoist", &state_at(&[], "2026-12-07T11:00:00Z"));
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at("2026-12-07T11:00:00Z"));
    let written = crate::core::conditions::set(&[], wanted.clone(), Some(2), &now);
    assert!(holds(&written, &wanted, Some(2)));
    assert!(!holds(&written, &wanted, Some(3)));
    assert!(!holds(&[], &wanted, Some(2)));
}
