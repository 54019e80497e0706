//! The Vulnerabilities gate: the newest signed scan of every digest has no
//! finding above the allowed severity, and is not older than maxAge.

use jiff::Timestamp;

use crate::api::{Artifact, SupplyChainCheck};
use crate::core::supply_chain::{Policy, PolicyProblem};

use super::outcome::Outcome;
use super::records;

/// `policies`: the Environment's supply-chain policies, keys read.
pub fn evaluate(policies: &[Result<Policy, PolicyProblem>], artifact: &Artifact, now: Timestamp) -> Outcome {
    records::evaluate(SupplyChainCheck::Vulnerabilities, policies, artifact, now)
        .unwrap_or_else(|| Outcome::passed("no vulnerability scan required here"))
}
