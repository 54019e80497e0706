use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{
    Deployment, Figures, Observation, Outcome, Restore, deployments, figures, newly_recorded, reaches_back,
    restores,
};
use crate::api::{ChangeKind, HistoryEntry, Phase};

/// 2026-11-16T00:00:00Z plus `seconds`.
fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_305_600 + seconds).expect("valid time")
}

fn at(seconds: i64) -> Option<Time> {
    Some(Time(t(seconds)))
}

const HOUR: i64 = 3600;

/// A Promotion's entry that started at `started` and ended at `ended`.
fn entry(promotion: &str, change: ChangeKind, outcome: Phase, started: i64, ended: i64) -> HistoryEntry {
    HistoryEntry {
        application: "shop".into(),
        artifact: format!("shop-{promotion}"),
        version: "1.0.0".into(),
        change,
        images: Vec::new(),
        source_repository: None,
        source_revision: None,
        build_id: None,
        build_url: None,
        committed_at: None,
        built_at: None,
        config_hash: None,
        promotion: promotion.into(),
        promoted_at: at(started),
        approvers: Vec::new(),
        approvals: Vec::new(),
        outcome,
        completed_at: at(ended),
        restored_at: None,
    }
}

fn release(promotion: &str, outcome: Phase, started: i64, ended: i64) -> HistoryEntry {
    entry(promotion, ChangeKind::Release, outcome, started, ended)
}

/// Newest first, as status.history keeps it: a release committed at 0 and
/// built at 1h succeeds at 3h; one built at 4h (no commit time) fails at
/// 5h and is rolled back, healthy again at 5h10m; one fails at 8h and
/// stays until a release succeeds at 9h30m; a configuration change alone
/// succeeds at 10h.
fn week() -> Vec<HistoryEntry> {
    let first = HistoryEntry {
        committed_at: at(0),
        built_at: at(HOUR),
        ..release("p1", Phase::Succeeded, 2 * HOUR, 3 * HOUR)
    };
    let rolled_back = HistoryEntry {
        built_at: at(4 * HOUR),
        restored_at: at(5 * HOUR + 600),
        ..release("p2", Phase::RolledBack, 4 * HOUR + 1800, 5 * HOUR)
    };
    let failed = HistoryEntry {
        committed_at: at(6 * HOUR),
        ..release("p3", Phase::Failed, 7 * HOUR, 8 * HOUR)
    };
    let fixed = HistoryEntry {
        committed_at: at(9 * HOUR),
        ..release("p4", Phase::Succeeded, 9 * HOUR, 9 * HOUR + 1800)
    };
    let configuration = entry(
        "p4",
        ChangeKind::Configuration,
        Phase::Succeeded,
        10 * HOUR - 60,
        10 * HOUR,
    );
    vec![configuration, fixed, failed, rolled_back, first]
}

#[test]
fn each_promotion_that_ended_is_a_deployment_with_the_lead_time_of_a_succeeded_release() {
    assert_eq!(
        deployments(&week()),
        vec![
            Deployment {
                application: "shop".into(),
                outcome: Outcome::Succeeded,
                at: t(9 * HOUR + 1800),
                lead_time: Some(SignedDuration::from_secs(1800)),
            },
            Deployment {
                application: "shop".into(),
                outcome: Outcome::Failed,
                at: t(8 * HOUR),
                lead_time: None,
            },
            Deployment {
                application: "shop".into(),
                outcome: Outcome::RolledBack,
                at: t(5 * HOUR),
                lead_time: None,
            },
            Deployment {
                application: "shop".into(),
                outcome: Outcome::Succeeded,
                at: t(3 * HOUR),
                // From the commit, not the build.
                lead_time: Some(SignedDuration::from_hours(3)),
            },
        ]
    );
}

#[test]
fn lead_time_starts_at_the_build_without_a_commit_time_and_a_rollback_has_none() {
    let built = HistoryEntry {
        built_at: at(HOUR),
        ..release("p1", Phase::Succeeded, 2 * HOUR, 3 * HOUR)
    };
    let rollback = HistoryEntry {
        committed_at: at(0),
        ..entry("p2", ChangeKind::Rollback, Phase::Succeeded, 4 * HOUR, 5 * HOUR)
    };
    let unknown = release("p3", Phase::Succeeded, 6 * HOUR, 7 * HOUR);
    let lead_times: Vec<_> = deployments(&[unknown, rollback, built])
        .into_iter()
        .map(|deployment| (deployment.outcome, deployment.lead_time))
        .collect();
    assert_eq!(
        lead_times,
        vec![
            (Outcome::Succeeded, None),
            (Outcome::Succeeded, None),
            (Outcome::Succeeded, Some(SignedDuration::from_hours(2))),
        ]
    );
}

#[test]
fn a_failure_is_restored_by_the_healthy_rollback_or_the_next_success() {
    assert_eq!(
        restores(&week()),
        vec![
            Restore {
                application: "shop".into(),
                failed_at: t(5 * HOUR),
                restored_at: t(5 * HOUR + 600),
            },
            Restore {
                application: "shop".into(),
                failed_at: t(8 * HOUR),
                restored_at: t(9 * HOUR + 1800),
            },
        ]
    );
}

#[test]
fn failures_in_a_row_are_one_restored_by_a_healthy_configuration_change_and_other_applications_apart() {
    let other = HistoryEntry {
        application: "billing".into(),
        ..release("b1", Phase::Succeeded, 2 * HOUR, 2 * HOUR + 60)
    };
    let still_rolling = HistoryEntry {
        completed_at: None,
        ..entry("p2", ChangeKind::Configuration, Phase::Succeeded, 3 * HOUR, 0)
    };
    let history = vec![
        entry(
            "p2",
            ChangeKind::Configuration,
            Phase::Succeeded,
            4 * HOUR,
            4 * HOUR + 300,
        ),
        still_rolling,
        other,
        release("p2", Phase::Failed, HOUR, 2 * HOUR),
        release("p1", Phase::Failed, 0, HOUR),
    ];
    assert_eq!(
        restores(&history),
        vec![Restore {
            application: "shop".into(),
            failed_at: t(HOUR),
            restored_at: t(4 * HOUR + 300),
        }]
    );
    // A rollback not yet healthy restores nothing.
    let unrestored = release("p3", Phase::RolledBack, 0, HOUR);
    assert_eq!(restores(&[unrestored]), Vec::new());
}

#[test]
fn figures_count_what_ended_since_and_rate_failures_over_all() {
    let all = figures(&week(), t(0));
    let shop = Figures {
        succeeded: 2,
        failed: 1,
        rolled_back: 1,
        lead_times: vec![SignedDuration::from_secs(1800), SignedDuration::from_hours(3)],
        restores: vec![SignedDuration::from_secs(600), SignedDuration::from_secs(5400)],
    };
    assert_eq!(all, [("shop".to_string(), shop.clone())].into());
    assert_eq!(shop.deployments(), 4);
    assert_eq!(shop.change_failure_rate(), Some(0.5));
    assert_eq!(shop.per_day(SignedDuration::from_hours(48)), 2.0);
    assert_eq!(shop.median_lead_time(), Some(SignedDuration::from_secs(6300)));
    assert_eq!(
        shop.median_time_to_restore(),
        Some(SignedDuration::from_secs(3000))
    );

    // Since 6h: the failure at 8h and its restore at 9h30m, the success at 9h30m.
    let recent = figures(&week(), t(6 * HOUR));
    assert_eq!(
        recent["shop"],
        Figures {
            succeeded: 1,
            failed: 1,
            rolled_back: 0,
            lead_times: vec![SignedDuration::from_secs(1800)],
            restores: vec![SignedDuration::from_secs(5400)],
        }
    );
    assert_eq!(figures(&week(), t(11 * HOUR)), [].into());
    assert_eq!(Figures::default().change_failure_rate(), None);
    assert_eq!(Figures::default().median_lead_time(), None);
}

#[test]
fn a_full_history_says_how_far_back_it_reaches() {
    assert_eq!(reaches_back(&week(), 5), Some(t(3 * HOUR)));
    assert_eq!(reaches_back(&week(), 20), None, "nothing dropped yet");
    assert_eq!(reaches_back(&[], 1), None);
}

#[test]
fn a_write_of_the_history_observes_each_outcome_and_restore_once() {
    let history = week();
    // The success at 9h30m is written: one deployment and the restore it ends.
    let before = &history[2..];
    let after = &history[1..];
    assert_eq!(
        newly_recorded(&[before], after),
        vec![
            Observation::Deployment(Deployment {
                application: "shop".into(),
                outcome: Outcome::Succeeded,
                at: t(9 * HOUR + 1800),
                lead_time: Some(SignedDuration::from_secs(1800)),
            }),
            Observation::Restore {
                application: "shop".into(),
                duration: SignedDuration::from_secs(5400),
            },
        ]
    );
    // Written again (a restart, a crash before the Promotion's write): nothing new.
    assert_eq!(newly_recorded(&[after], after), Vec::new());
    // A configuration change is no deployment.
    assert_eq!(newly_recorded(&[&history[1..]], &history), Vec::new());

    // The rollback recorded, then healthy again: the restore is observed when restoredAt is written.
    let rolled_back = &history[3..];
    let unrestored: Vec<HistoryEntry> = rolled_back
        .iter()
        .cloned()
        .map(|entry| HistoryEntry {
            restored_at: None,
            ..entry
        })
        .collect();
    assert_eq!(
        newly_recorded(&[&history[4..]], &unrestored),
        vec![Observation::Deployment(Deployment {
            application: "shop".into(),
            outcome: Outcome::RolledBack,
            at: t(5 * HOUR),
            lead_time: None,
        })]
    );
    assert_eq!(
        newly_recorded(&[&unrestored], rolled_back),
        vec![Observation::Restore {
            application: "shop".into(),
            duration: SignedDuration::from_secs(600),
        }]
    );
    // Entries dropped at the history's limit are not observed again, nor their restores.
    assert_eq!(newly_recorded(&[&history], &history[..3]), Vec::new());
    // Known from either of two histories (the cache's, and the last one written): not observed.
    assert_eq!(newly_recorded(&[&history[3..], after], after), Vec::new());
}
