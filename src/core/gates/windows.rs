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
mod tests;
