//! Prometheus' answers read: a query API response becomes a measurement
//! against a step's condition (`result < 0.01`).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Measurement, MeasurementOutcome};
use crate::core::destinations::Refusal;

/// `result <op> <number>`, read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Condition {
    op: &'static str,
    threshold: f64,
}

/// Why a step's condition cannot be read. Each names the condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("condition {text:?} must start with `result`")]
    NoResult { text: String },

    #[error("condition {text:?} must compare result with <, <=, >, >=, == or !=")]
    NoComparison { text: String },

    #[error("condition {text:?}: {number:?} is not a number")]
    NotANumber { text: String, number: String },
}

pub(super) fn parse_condition(text: &str) -> Result<Condition, ConditionError> {
    let rest = text
        .strip_prefix("result")
        .ok_or_else(|| ConditionError::NoResult {
            text: text.to_owned(),
        })?
        .trim_start();
    let op = ["<=", ">=", "==", "!=", "<", ">"]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| ConditionError::NoComparison {
            text: text.to_owned(),
        })?;
    let number = rest[op.len()..].trim();
    let threshold = number.parse::<f64>().map_err(|_| ConditionError::NotANumber {
        text: text.to_owned(),
        number: number.to_owned(),
    })?;
    Ok(Condition { op, threshold })
}

impl Condition {
    fn holds(&self, value: f64) -> bool {
        match self.op {
            "<" => value < self.threshold,
            "<=" => value <= self.threshold,
            ">" => value > self.threshold,
            ">=" => value >= self.threshold,
            "==" => value == self.threshold,
            _ => value != self.threshold,
        }
    }
}

/// A measurement of the Prometheus query API's JSON response `body` at `at`.
pub fn measure(body: &serde_json::Value, condition: &str, at: Timestamp) -> Measurement {
    let error = |message: String| self::error(at, message);
    if body["status"] != "success" {
        // Prometheus' own error (`errorType` and `error`) is shown, bounded;
        // any other answer is not: it may be another service's content.
        let reason = match (body["errorType"].as_str(), body["error"].as_str()) {
            (Some(_), Some(reason)) => reason,
            _ => "the answer is not a Prometheus query API response",
        };
        return error(format!("Prometheus refused the query: {reason}"));
    }
    let data = &body["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => {
                return Measurement {
                    at: Time(at),
                    outcome: MeasurementOutcome::Inconclusive,
                    value: None,
                    message: Some("the query returned no sample".into()),
                };
            }
            Some([one]) => &one["value"],
            Some(many) => {
                return error(format!(
                    "the query returned {} series; aggregate them to one (sum, max, avg)",
                    many.len()
                ));
            }
            None => return error("the response has no result list".into()),
        },
        other => {
            return error(format!(
                "the query returned a {}, not a scalar or a vector of one sample",
                other.unwrap_or("result of no type")
            ));
        }
    };
    let Some(text) = sample[1].as_str() else {
        return error("the sample has no value".into());
    };
    let Ok(value) = text.parse::<f64>() else {
        return error(format!("the sample value {text:?} is not a number"));
    };
    let condition = match parse_condition(condition) {
        Ok(condition) => condition,
        Err(problem) => return error(problem.to_string()),
    };
    if value.is_nan() {
        return Measurement {
            at: Time(at),
            outcome: MeasurementOutcome::Inconclusive,
            value: Some(text.to_string()),
            message: Some("the query returned NaN".into()),
        };
    }
    Measurement {
        at: Time(at),
        outcome: if condition.holds(value) {
            MeasurementOutcome::Successful
        } else {
            MeasurementOutcome::Failed
        },
        value: Some(text.to_string()),
        message: None,
    }
}

/// A measurement that could not be taken (server unreachable, an answer
/// that is not a query result); its message is [`bounded`].
pub fn error(at: Timestamp, message: String) -> Measurement {
    Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Error,
        value: None,
        message: Some(bounded(&message)),
    }
}

/// A measurement not taken because the operator's allow-list does not
/// admit the server: the step fails with `refusal`, bounded.
pub fn refused(at: Timestamp, refusal: &Refusal) -> Measurement {
    Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Refused,
        value: None,
        message: Some(bounded(&refusal.to_string())),
    }
}

/// The longest message a measurement keeps, in bytes: status is read by
/// everyone who may read the Promotion, and what a server answers (or an
/// address a tenant wrote) must not fill it.
pub const MESSAGE_LIMIT: usize = 256;

/// `text` cut to [`MESSAGE_LIMIT`] bytes on a character boundary, ending
/// with `…` when cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= MESSAGE_LIMIT {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = MESSAGE_LIMIT - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}
