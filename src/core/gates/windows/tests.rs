use super::*;

fn windows(yaml: &str) -> Vec<ChangeWindow> {
    serde_yaml::from_str(yaml).expect("fixture parses")
}

fn instant(text: &str) -> Timestamp {
    text.parse().expect("valid instant")
}

fn verdict(windows: &[ChangeWindow], now: &str) -> (GateState, String, Option<String>) {
    let outcome = evaluate(windows, instant(now));
    (
        outcome.state,
        outcome.message,
        outcome.next_check.map(|t| t.to_string()),
    )
}

const FRIDAY_FREEZE: &str = r#"
- {name: friday-evening, type: Deny, schedule: "0 18 * * FRI", duration: 62h, timeZone: Europe/Berlin}
"#;

#[test]
fn a_friday_evening_freeze_holds_from_its_first_second_to_its_last() {
    let freeze = windows(FRIDAY_FREEZE);
    // Friday 2026-12-04, 18:00 in Berlin is 17:00 UTC (CET, +01:00).
    let held = "change window friday-evening (Deny) is on until 2026-12-07 08:00 CET (2026-12-07T07:00:00Z); \
                    no Promotion starts before then unless an override waives Windows";
    assert_eq!(
        verdict(&freeze, "2026-12-04T16:59:59Z"),
        (
            GateState::Passed,
            "no Deny change window is on".into(),
            Some("2026-12-04T17:00:00Z".into())
        )
    );
    for now in [
        "2026-12-04T17:00:00Z",
        "2026-12-05T12:00:00Z",
        "2026-12-07T06:59:59Z",
    ] {
        assert_eq!(
            verdict(&freeze, now),
            (
                GateState::Pending,
                held.into(),
                Some("2026-12-07T07:00:00Z".into())
            ),
            "{now}"
        );
    }
    assert_eq!(
        verdict(&freeze, "2026-12-07T07:00:00Z"),
        (
            GateState::Passed,
            "no Deny change window is on".into(),
            Some("2026-12-11T17:00:00Z".into())
        )
    );
}

#[test]
fn a_freeze_over_the_change_to_summer_time_ends_after_its_elapsed_duration() {
    let freeze = windows(FRIDAY_FREEZE);
    // Friday 2027-03-26 18:00 CET is 17:00 UTC; clocks go forward on Sunday 2027-03-28 at
    // 02:00 CET. 62 hours later is 07:00 UTC, which Berlin shows as 09:00 CEST.
    assert_eq!(
        verdict(&freeze, "2027-03-26T17:00:00Z"),
        (
            GateState::Pending,
            "change window friday-evening (Deny) is on until 2027-03-29 09:00 CEST (2027-03-29T07:00:00Z); \
                 no Promotion starts before then unless an override waives Windows"
                .into(),
            Some("2027-03-29T07:00:00Z".into())
        )
    );
    // The next Friday the freeze opens at 18:00 CEST, 16:00 UTC.
    assert_eq!(
        verdict(&freeze, "2027-03-29T07:00:00Z").2,
        Some("2027-04-02T16:00:00Z".into())
    );
    assert_eq!(verdict(&freeze, "2027-04-02T15:59:59Z").0, GateState::Passed);
    assert_eq!(verdict(&freeze, "2027-04-02T16:00:00Z").0, GateState::Pending);
}

#[test]
fn a_nightly_window_spanning_midnight_is_on_from_each_evening_to_the_next_morning() {
    let nightly = windows(
        r#"
- {name: nightly, type: Allow, schedule: "0 22 * * *", duration: 8h, timeZone: UTC}
"#,
    );
    let closed = |opens: &str| {
        (
            GateState::Pending,
            format!("outside every Allow change window; the next, nightly, opens at {opens}"),
            Some(opens.to_string()),
        )
    };
    assert_eq!(
        verdict(&nightly, "2026-12-31T21:59:59Z"),
        closed("2026-12-31T22:00:00Z")
    );
    let open = (
        GateState::Passed,
        "change window nightly (Allow) is on until 2027-01-01T06:00:00Z".to_string(),
        Some("2027-01-01T06:00:00Z".to_string()),
    );
    assert_eq!(verdict(&nightly, "2026-12-31T22:00:00Z"), open);
    assert_eq!(verdict(&nightly, "2027-01-01T00:00:00Z"), open);
    assert_eq!(verdict(&nightly, "2027-01-01T05:59:59Z"), open);
    assert_eq!(
        verdict(&nightly, "2027-01-01T06:00:00Z"),
        closed("2027-01-01T22:00:00Z")
    );
}

#[test]
fn a_deny_window_wins_over_an_allow_window_and_the_next_check_is_the_first_change() {
    let both = windows(
        r#"
- {name: business-hours, type: Allow, schedule: "0 9 * * MON-FRI", duration: 8h, timeZone: Europe/Berlin}
- {name: year-end, type: Deny, start: "2026-12-23T00:00:00Z", end: "2027-01-04T00:00:00Z"}
"#,
    );
    // Tuesday 2026-12-22 10:00 Berlin: business hours, the year-end freeze starts at midnight UTC.
    assert_eq!(
        verdict(&both, "2026-12-22T09:00:00Z"),
        (
            GateState::Passed,
            "change window business-hours (Allow) is on until 2026-12-22 17:00 CET (2026-12-22T16:00:00Z)"
                .into(),
            Some("2026-12-22T16:00:00Z".into())
        )
    );
    assert_eq!(
        verdict(&both, "2026-12-28T09:00:00Z"),
        (
            GateState::Pending,
            "change window year-end (Deny) is on until 2027-01-04T00:00:00Z; \
                 no Promotion starts before then unless an override waives Windows"
                .into(),
            Some("2027-01-04T00:00:00Z".into())
        )
    );
    // Saturday: the next business hours open on Monday 09:00 CET.
    assert_eq!(
        verdict(&both, "2027-01-09T12:00:00Z"),
        (
            GateState::Pending,
            "outside every Allow change window; the next, business-hours, opens at \
                 2027-01-11 09:00 CET (2027-01-11T08:00:00Z)"
                .into(),
            Some("2027-01-11T08:00:00Z".into())
        )
    );
}

#[test]
fn overlapping_openings_of_one_schedule_are_one_window() {
    // Opens every hour for 90 minutes: on without a break.
    let chained = windows(
        r#"
- {name: busy, type: Deny, schedule: "0 8-11 * * *", duration: 90m}
"#,
    );
    assert_eq!(
        verdict(&chained, "2026-12-02T08:10:00Z").2,
        Some("2026-12-02T12:30:00Z".into())
    );
    assert_eq!(verdict(&chained, "2026-12-02T12:30:00Z").0, GateState::Passed);
}

#[test]
fn a_fixed_window_that_has_passed_or_is_to_come_does_not_hold() {
    let fixed = windows(
        r#"
- {name: launch, type: Deny, start: "2026-12-10T00:00:00Z", end: "2026-12-11T00:00:00Z"}
"#,
    );
    assert_eq!(
        verdict(&fixed, "2026-12-09T23:59:59Z"),
        (
            GateState::Passed,
            "no Deny change window is on".into(),
            Some("2026-12-10T00:00:00Z".into())
        )
    );
    assert_eq!(verdict(&fixed, "2026-12-10T00:00:00Z").0, GateState::Pending);
    assert_eq!(
        verdict(&fixed, "2026-12-11T00:00:00Z"),
        (GateState::Passed, "no Deny change window is on".into(), None)
    );
}

#[test]
fn every_problem_names_its_field() {
    let bad = windows(
        r#"
- {name: a, type: Deny, schedule: "0 18 * *", duration: 1h}
- {name: b, type: Deny, schedule: "0 18 * * FRI", duration: 1h, timeZone: Mars/Olympus}
- {name: c, type: Deny, schedule: "0 18 * * FRI", duration: 0s}
- {name: d, type: Deny, start: "2026-12-11T00:00:00Z", end: "2026-12-10T00:00:00Z"}
- {name: e, type: Deny, schedule: "0 0 18 * * FRI", duration: 1h}
- {name: ok, type: Allow, schedule: "@daily", duration: 1h}
"#,
    );
    let found = problems(&bad);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[0]
            .starts_with("spec.gates.windows[0].schedule: \"0 18 * *\" is not a five-field cron schedule")
    );
    assert_eq!(
        found[1],
        "spec.gates.windows[1].timeZone: \"Mars/Olympus\" is not an IANA time zone such as Europe/Berlin"
    );
    assert_eq!(
        found[2],
        "spec.gates.windows[2].duration: \"0s\" must be longer than zero"
    );
    assert_eq!(
        found[3],
        "spec.gates.windows[3].end: 2026-12-10T00:00:00Z is not after start 2026-12-11T00:00:00Z"
    );
    assert!(found[4].starts_with("spec.gates.windows[4].schedule: \"0 0 18 * * FRI\" is not a five-field"));
    let outcome = evaluate(&bad, instant("2026-12-02T00:00:00Z"));
    assert_eq!(outcome.state, GateState::Failed);
    assert_eq!(outcome.message, format!("{}; fix the Environment", found[0]));
}

#[test]
fn no_windows_pass_without_a_next_check() {
    assert_eq!(
        verdict(&[], "2026-12-02T00:00:00Z"),
        (GateState::Passed, "no change windows here".into(), None)
    );
}
