//! What every gate returns.

use jiff::Timestamp;

use crate::api::GateState;

/// A gate's verdict: its state, what it saw, and when the clock alone
/// changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: GateState,
    pub message: String,
    pub next_check: Option<Timestamp>,
}

impl Outcome {
    pub fn passed(message: impl Into<String>) -> Self {
        Outcome {
            state: GateState::Passed,
            message: message.into(),
            next_check: None,
        }
    }

    /// Holds the Promotion until something but the clock changes.
    pub fn pending(message: impl Into<String>) -> Self {
        Outcome {
            state: GateState::Pending,
            message: message.into(),
            next_check: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Outcome {
            state: GateState::Failed,
            message: message.into(),
            next_check: None,
        }
    }
}
