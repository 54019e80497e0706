//! Durations as the API and the command line write them (`30m`, `1h30m`,
//! `90s`, or ISO 8601 such as `PT3M`): elapsed time, read by jiff.

use std::str::FromStr;

use jiff::SignedDuration;

/// Why a duration cannot be used. Each names the text as written.
#[derive(Debug, thiserror::Error)]
pub enum DurationError {
    #[error("{text:?} is not a duration such as {examples}: {source}")]
    Unreadable {
        text: String,
        /// Durations the field takes, for the message.
        examples: &'static str,
        #[source]
        source: jiff::Error,
    },

    #[error("{text:?} must be longer than zero")]
    NotPositive { text: String },

    #[error("{text:?} is negative")]
    Negative { text: String },
}

/// A duration of the API (soak, change windows, verification intervals and
/// timeouts, maxAge): longer than zero.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    let duration = read(text, "30m or 1h30m")?;
    if duration.is_positive() {
        Ok(duration)
    } else {
        Err(DurationError::NotPositive {
            text: text.to_owned(),
        })
    }
}

/// A duration of a command-line flag (`--startup-timeout 3m`): zero or
/// longer.
pub fn parse_flag(text: &str) -> Result<std::time::Duration, DurationError> {
    let duration = read(text, "3m or 90s")?;
    std::time::Duration::try_from(duration).map_err(|_| DurationError::Negative {
        text: text.to_owned(),
    })
}

fn read(text: &str, examples: &'static str) -> Result<SignedDuration, DurationError> {
    SignedDuration::from_str(text).map_err(|source| DurationError::Unreadable {
        text: text.to_owned(),
        examples,
        source,
    })
}

/// A duration as messages show it: whole hours (`72h`) or minutes (`30m`),
/// else seconds (`90s`).
pub fn format(duration: SignedDuration) -> String {
    let secs = duration.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (h, 0, 0) => format!("{h}h"),
        (0, m, 0) => format!("{m}m"),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_duration_is_longer_than_zero_and_says_what_it_takes() {
        assert_eq!(parse("1h30m").unwrap(), SignedDuration::from_mins(90));
        assert_eq!(
            parse("0m").unwrap_err().to_string(),
            "\"0m\" must be longer than zero"
        );
        assert!(
            parse("soon")
                .unwrap_err()
                .to_string()
                .starts_with("\"soon\" is not a duration such as 30m or 1h30m: "),
        );
    }

    #[test]
    fn a_flag_may_be_zero_but_not_negative() {
        assert_eq!(parse_flag("90s").unwrap(), std::time::Duration::from_secs(90));
        assert_eq!(parse_flag("PT3M").unwrap(), std::time::Duration::from_secs(180));
        assert_eq!(parse_flag("0s").unwrap(), std::time::Duration::ZERO);
        assert_eq!(parse_flag("-1s").unwrap_err().to_string(), "\"-1s\" is negative");
        assert!(
            parse_flag("soon")
                .unwrap_err()
                .to_string()
                .starts_with("\"soon\" is not a duration such as 3m or 90s: ")
        );
    }

    #[test]
    fn whole_hours_and_minutes_read_as_such() {
        assert_eq!(format(SignedDuration::from_hours(72)), "72h");
        assert_eq!(format(SignedDuration::from_mins(30)), "30m");
        assert_eq!(format(SignedDuration::from_secs(90)), "90s");
    }
}
