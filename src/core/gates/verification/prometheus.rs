//! Prometheus' answers read: a query API response (and, for a step with a
//! baseline, the baseline query's) becomes a measurement against a step's
//! condition (`result < 0.01`, `result <= baseline * 1.1`).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Measurement, MeasurementOutcome};
use crate::core::destinations::Refusal;

/// A step's condition, read: `left <op> right`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Condition {
    left: Left,
    op: Comparison,
    right: Right,
}

/// What a condition compares.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Left {
    /// `result`
    Result,
    /// `result - baseline`
    Difference,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

/// What it is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Right {
    Number(f64),
    /// `baseline * factor`
    Scaled(f64),
    /// `baseline + offset` (`baseline - 0.5` is an offset of -0.5; `baseline` alone 0)
    Offset(f64),
}

const COMPARISONS: [(&str, Comparison); 6] = [
    ("<=", Comparison::LessOrEqual),
    (">=", Comparison::GreaterOrEqual),
    ("==", Comparison::Equal),
    ("!=", Comparison::NotEqual),
    ("<", Comparison::Less),
    (">", Comparison::Greater),
];

/// Why a step's condition cannot be read. Each names the condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("condition {text:?} must start with `result` or `result - baseline`")]
    NoResult { text: String },

    #[error("condition {text:?} must compare with <, <=, >, >=, == or !=")]
    NoComparison { text: String },

    #[error("condition {text:?}: {number:?} is not a number")]
    NotANumber { text: String, number: String },

    #[error(
        "condition {text:?}: after `baseline` only `* <number>`, `+ <number>` or `- <number>` may follow, not {rest:?}"
    )]
    NotAnArithmetic { text: String, rest: String },

    #[error("condition {text:?}: `result - baseline` is compared with a number, not with baseline again")]
    BaselineTwice { text: String },
}

pub(super) fn parse_condition(text: &str) -> Result<Condition, ConditionError> {
    let after_result = text
        .strip_prefix("result")
        .ok_or_else(|| ConditionError::NoResult {
            text: text.to_owned(),
        })?
        .trim_start();
    let (left, rest) = match after_result
        .strip_prefix('-')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("baseline"))
    {
        Some(rest) => (Left::Difference, rest.trim_start()),
        None => (Left::Result, after_result),
    };
    let (symbol, op) = COMPARISONS
        .into_iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
        .ok_or_else(|| ConditionError::NoComparison {
            text: text.to_owned(),
        })?;
    let right = rest[symbol.len()..].trim();
    let number = |number: &str| {
        let number = number.trim();
        number.parse::<f64>().map_err(|_| ConditionError::NotANumber {
            text: text.to_owned(),
            number: number.to_owned(),
        })
    };
    let right = match right.strip_prefix("baseline").map(str::trim_start) {
        None => Right::Number(number(right)?),
        Some(_) if left == Left::Difference => {
            return Err(ConditionError::BaselineTwice {
                text: text.to_owned(),
            });
        }
        Some("") => Right::Offset(0.0),
        Some(arithmetic) => match arithmetic.split_at(1) {
            ("*", factor) => Right::Scaled(number(factor)?),
            ("+", offset) => Right::Offset(number(offset)?),
            ("-", offset) => Right::Offset(-number(offset)?),
            _ => {
                return Err(ConditionError::NotAnArithmetic {
                    text: text.to_owned(),
                    rest: arithmetic.to_owned(),
                });
            }
        },
    };
    Ok(Condition { left, op, right })
}

impl Condition {
    /// Whether the condition reads `baseline`.
    pub(super) fn reads_baseline(&self) -> bool {
        self.left == Left::Difference || !matches!(self.right, Right::Number(_))
    }

    /// Whether `result` (and `baseline`, read only when the condition reads it) meet it.
    fn holds(&self, result: f64, baseline: f64) -> bool {
        let value = match self.left {
            Left::Result => result,
            Left::Difference => result - baseline,
        };
        let threshold = match self.right {
            Right::Number(number) => number,
            Right::Scaled(factor) => baseline * factor,
            Right::Offset(offset) => baseline + offset,
        };
        match self.op {
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::Greater => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }
}

/// What a query's answer holds: its sample as written and read, or the
/// measurement it comes to without one.
enum Sample {
    Value(String, f64),
    /// No sample, or one that is not a number (NaN), as written.
    Inconclusive(Option<String>, String),
    Error(String),
}

/// The one sample of a Prometheus query API response.
fn sample(body: &serde_json::Value) -> Sample {
    if body["status"] != "success" {
        // Prometheus' own error (`errorType` and `error`) is shown, bounded;
        // any other answer is not: it may be another service's content.
        let reason = match (body["errorType"].as_str(), body["error"].as_str()) {
            (Some(_), Some(reason)) => reason,
            _ => "the answer is not a Prometheus query API response",
        };
        return Sample::Error(format!("Prometheus refused the query: {reason}"));
    }
    let data = &body["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => return Sample::Inconclusive(None, "the query returned no sample".into()),
            Some([one]) => &one["value"],
            Some(many) => {
                return Sample::Error(format!(
                    "the query returned {} series; aggregate them to one (sum, max, avg)",
                    many.len()
                ));
            }
            None => return Sample::Error("the response has no result list".into()),
        },
        other => {
            return Sample::Error(format!(
                "the query returned a {}, not a scalar or a vector of one sample",
                other.unwrap_or("result of no type")
            ));
        }
    };
    let Some(text) = sample[1].as_str() else {
        return Sample::Error("the sample has no value".into());
    };
    match text.parse::<f64>() {
        Err(_) => Sample::Error(format!("the sample value {text:?} is not a number")),
        Ok(value) if value.is_nan() => {
            Sample::Inconclusive(Some(text.to_string()), "the query returned NaN".into())
        }
        Ok(value) => Sample::Value(text.to_string(), value),
    }
}

/// A measurement of the Prometheus query API's JSON response `body` at
/// `at`. `baseline` is the baseline query's response, or why there is none
/// (the server could not be asked, or there is no release to compare with),
/// for a condition that reads it; it is not looked at otherwise.
pub fn measure(
    body: &serde_json::Value,
    baseline: Option<Result<&serde_json::Value, String>>,
    condition: &str,
    at: Timestamp,
) -> Measurement {
    let (text, value) = match sample(body) {
        Sample::Value(text, value) => (text, value),
        Sample::Inconclusive(value, message) => return inconclusive(at, value, message),
        Sample::Error(message) => return error(at, message),
    };
    let condition = match parse_condition(condition) {
        Ok(condition) => condition,
        Err(problem) => return error(at, problem.to_string()),
    };
    let mut baseline_text = None;
    let baseline_value = if condition.reads_baseline() {
        // A baseline that cannot be read is inconclusive, never a pass.
        let read = match baseline {
            None => Err("the step has no baseline query".to_string()),
            Some(Err(why)) => Err(why),
            Some(Ok(body)) => match sample(body) {
                Sample::Value(text, value) => {
                    baseline_text = Some(text);
                    Ok(value)
                }
                Sample::Inconclusive(_, why) | Sample::Error(why) => Err(why),
            },
        };
        match read {
            Ok(value) => value,
            Err(why) => return inconclusive(at, Some(text), format!("baseline: {why}")),
        }
    } else {
        0.0
    };
    Measurement {
        at: Time(at),
        outcome: if condition.holds(value, baseline_value) {
            MeasurementOutcome::Successful
        } else {
            MeasurementOutcome::Failed
        },
        value: Some(text),
        baseline: baseline_text,
        message: None,
    }
}

/// An inconclusive measurement: no sample to judge, or no baseline to
/// judge it against; its message is [`bounded`].
pub(super) fn inconclusive(at: Timestamp, value: Option<String>, message: String) -> Measurement {
    Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Inconclusive,
        value,
        baseline: None,
        message: Some(bounded(&message)),
    }
}

/// A measurement that could not be taken (server unreachable, an answer
/// that is not a query result); its message is [`bounded`].
pub fn error(at: Timestamp, message: String) -> Measurement {
    Measurement {
        at: Time(at),
        outcome: MeasurementOutcome::Error,
        value: None,
        baseline: None,
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
        baseline: None,
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
