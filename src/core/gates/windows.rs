//! The change-window gate: `Deny` windows (freezes) hold every Promotion
//! while they are on; with `Allow` windows, a Promotion starts only inside
//! one. A window is a cron schedule read in an IANA time zone with a
//! duration of elapsed time after each opening, or an absolute start and
//! end. The verdict is a function of the windows and `now`, and says when it
//! changes by the clock alone.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::api::{ChangeWindow, GateState, WindowType};
use crate::core::duration::{self, DurationError};

use super::outcome::Outcome;

/// Openings of one schedule followed while looking for where overlapping
/// openings end; a window on for longer than this many openings in a row
/// is reported as on until the last one followed ends.
const MAX_CHAINED_OPENINGS: usize = 1000;

/// A window whose fields have been read.
struct Window<'a> {
    spec: &'a ChangeWindow,
    when: When,
}

enum When {
    Schedule {
        // A parsed pattern is large next to two instants.
        cron: Box<Cron>,
        zone: TimeZone,
        duration: SignedDuration,
    },
    Fixed {
        start: Timestamp,
        end: Timestamp,
    },
}

/// Why a change window cannot be read. Each names its field in
/// `spec.gates.windows[index]`.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("spec.gates.windows[{index}].schedule: {schedule:?} is not a five-field cron schedule: {source}")]
    Schedule {
        index: usize,
        schedule: String,
        #[source]
        source: croner::errors::CronError,
    },

    #[error("spec.gates.windows[{index}].timeZone: {zone:?} is not an IANA time zone such as Europe/Berlin")]
    TimeZone { index: usize, zone: String },

    #[error("spec.gates.windows[{index}].duration: required with schedule")]
    DurationMissing { index: usize },

    #[error("spec.gates.windows[{index}].duration: {source}")]
    Duration {
        index: usize,
        #[source]
        source: DurationError,
    },

    #[error("spec.gates.windows[{index}].end: {end} is not after start {start}")]
    EndNotAfterStart {
        index: usize,
        start: Timestamp,
        end: Timestamp,
    },

    #[error("spec.gates.windows[{index}]: a window is either schedule with duration, or start with end")]
    Shape { index: usize },
}

fn read(index: usize, spec: &ChangeWindow) -> Result<Window<'_>, WindowError> {
    let when = match (&spec.schedule, &spec.start, &spec.end) {
        (Some(schedule), None, None) => {
            let cron = CronParser::builder()
                .seconds(Seconds::Disallowed)
                .build()
                .parse(schedule)
                .map_err(|source| WindowError::Schedule {
                    index,
                    schedule: schedule.clone(),
                    source,
                })?;
            let zone_name = spec.time_zone.as_deref().unwrap_or("UTC");
            let zone = TimeZone::get(zone_name).map_err(|_| WindowError::TimeZone {
                index,
                zone: zone_name.to_owned(),
            })?;
            let text = spec
                .duration
                .as_deref()
                .ok_or(WindowError::DurationMissing { index })?;
            let duration = duration::parse(text).map_err(|source| WindowError::Duration { index, source })?;
            When::Schedule {
                cron: Box::new(cron),
                zone,
                duration,
            }
        }
        (None, Some(start), Some(end)) => {
            if end.0 <= start.0 {
                return Err(WindowError::EndNotAfterStart {
                    index,
                    start: start.0,
                    end: end.0,
                });
            }
            When::Fixed {
                start: start.0,
                end: end.0,
            }
        }
        _ => return Err(WindowError::Shape { index }),
    };
    Ok(Window { spec, when })
}

/// The problems of spec.gates.windows that the schema cannot see (cron
/// syntax, time zones, durations, order of start and end), each naming its
/// field.
pub fn problems(windows: &[ChangeWindow]) -> Vec<String> {
    windows
        .iter()
        .enumerate()
        .filter_map(|(index, spec)| read(index, spec).err())
        .map(|problem| problem.to_string())
        .collect()
}

impl Window<'_> {
    /// When the window that is on at `now` ends, following openings that
    /// overlap; `None` when it is off.
    fn on_until(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.when {
            When::Fixed { start, end } => (*start <= now && now < *end).then_some(*end),
            When::Schedule { cron, zone, duration } => {
                let here = now.to_zoned(zone.clone());
                let opened = cron.find_previous_occurrence(&here, true).ok()?;
                let mut end = opened.timestamp().checked_add(*duration).ok()?;
                if now >= end {
                    return None;
                }
                let mut last = opened;
                for _ in 0..MAX_CHAINED_OPENINGS {
                    let Ok(next) = cron.find_next_occurrence(&last, false) else {
                        break;
                    };
                    if next.timestamp() > end {
                        break;
                    }
                    end = end.max(next.timestamp().checked_add(*duration).ok()?);
                    last = next;
                }
                Some(end)
            }
        }
    }

    /// When the window next opens after `now`, if it ever does.
    fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.when {
            When::Fixed { start, .. } => (*start > now).then_some(*start),
            When::Schedule { cron, zone, .. } => cron
                .find_next_occurrence(&now.to_zoned(zone.clone()), false)
                .ok()
                .map(|next| next.timestamp()),
        }
    }

    /// An instant as the window's own clock shows it.
    fn show(&self, instant: Timestamp) -> String {
        match &self.when {
            When::Schedule { zone, .. } if zone.iana_name() != Some("UTC") => {
                let zoned: Zoned = instant.to_zoned(zone.clone());
                format!("{} ({instant})", zoned.strftime("%Y-%m-%d %H:%M %Z"))
            }
            _ => instant.to_string(),
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }
}

/// The verdict of the change-window gate at `now`.
pub fn evaluate(windows: &[ChangeWindow], now: Timestamp) -> Outcome {
    if windows.is_empty() {
        return Outcome::passed("no change windows here");
    }
    let mut read_windows = Vec::new();
    for (index, spec) in windows.iter().enumerate() {
        match read(index, spec) {
            Ok(window) => read_windows.push(window),
            Err(problem) => return Outcome::failed(format!("{problem}; fix the Environment")),
        }
    }
    let (deny, allow): (Vec<&Window>, Vec<&Window>) = read_windows
        .iter()
        .partition(|window| window.spec.r#type == WindowType::Deny);

    // The freeze that is on and ends last holds until then.
    let frozen = deny
        .iter()
        .filter_map(|window| window.on_until(now).map(|end| (end, *window)))
        .max_by_key(|(end, _)| *end);
    if let Some((end, window)) = frozen {
        return Outcome {
            state: GateState::Pending,
            message: format!(
                "change window {} (Deny) is on until {}; no Promotion starts before then unless an override waives Windows",
                window.name(),
                window.show(end)
            ),
            next_check: Some(end),
        };
    }
    let next_freeze = deny.iter().filter_map(|window| window.next_opening(now)).min();

    if allow.is_empty() {
        return Outcome {
            state: GateState::Passed,
            message: "no Deny change window is on".into(),
            next_check: next_freeze,
        };
    }
    let open = allow
        .iter()
        .filter_map(|window| window.on_until(now).map(|end| (end, *window)))
        .max_by_key(|(end, _)| *end);
    match open {
        Some((end, window)) => Outcome {
            state: GateState::Passed,
            message: format!(
                "change window {} (Allow) is on until {}",
                window.name(),
                window.show(end)
            ),
            next_check: Some(next_freeze.map_or(end, |freeze| freeze.min(end))),
        },
        None => {
            let next = allow
                .iter()
                .filter_map(|window| window.next_opening(now).map(|start| (start, *window)))
                .min_by_key(|(start, _)| *start);
            let message = match next {
                Some((start, window)) => format!(
                    "outside every Allow change window; the next, {}, opens at {}",
                    window.name(),
                    window.show(start)
                ),
                None => "outside every Allow change window, and none opens again; change spec.gates.windows"
                    .to_string(),
            };
            Outcome {
                state: GateState::Pending,
                message,
                next_check: next.map(|(start, _)| start),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
            found[0].starts_with(
                "spec.gates.windows[0].schedule: \"0 18 * *\" is not a five-field cron schedule"
            )
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
        assert!(
            found[4].starts_with("spec.gates.windows[4].schedule: \"0 0 18 * * FRI\" is not a five-field")
        );
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
}
