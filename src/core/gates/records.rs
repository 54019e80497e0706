//! What the supply-chain records on an Artifact say for one check of an
//! Environment's policies: shared by the Provenance gate (signatures and
//! SLSA provenance) and the Vulnerabilities gate.

use jiff::Timestamp;

use crate::api::{Artifact, GateState, SupplyChainCheck, SupplyChainVerdict};
use crate::core::duration;
use crate::core::supply_chain::{self, Policy, PolicyProblem, Rule};

use super::outcome::Outcome;

/// The verdict of the policies of `check` on `artifact` at `now`, or `None`
/// without such a policy.
pub fn evaluate(
    check: SupplyChainCheck,
    policies: &[Result<Policy, PolicyProblem>],
    artifact: &Artifact,
    now: Timestamp,
) -> Option<Outcome> {
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    let mut passed = Vec::new();
    let mut next_check: Option<Timestamp> = None;
    let mut any = false;
    for policy in policies {
        let policy = match policy {
            Ok(policy) if policy.check == check => policy,
            Ok(_) => continue,
            Err(problem) if problem.check == check => {
                any = true;
                if problem.waiting {
                    pending.push(problem.message.clone());
                } else {
                    failed.push(problem.message.clone());
                }
                continue;
            }
            Err(_) => continue,
        };
        any = true;
        let resolved = artifact
            .status
            .as_ref()
            .map(|s| s.images.as_slice())
            .unwrap_or_default();
        for image in resolved {
            let at = format!("{}@{}", image.component, supply_chain::short(&image.digest));
            let Some(record) = supply_chain::record_of(artifact, &image.component, policy)
                .filter(|r| r.digest == image.digest)
            else {
                pending.push(format!("{at}: checking"));
                continue;
            };
            match record.verdict {
                SupplyChainVerdict::Failed => {
                    failed.push(format!("{at}: {} ({})", record.message, record.reason))
                }
                SupplyChainVerdict::Unavailable => pending.push(format!(
                    "{at}: {}; checking again (attempt {})",
                    record.message,
                    record.attempts + 1
                )),
                SupplyChainVerdict::Verified => {
                    if let Rule::Vulnerabilities {
                        max_age: Some(max_age),
                        ..
                    } = &policy.rule
                        && let Some(scanned) = &record.scanned_at
                    {
                        let stale = scanned.0 + *max_age;
                        if now >= stale {
                            let again = supply_chain::due_at(record, policy).unwrap_or(now);
                            pending.push(format!(
                                "{at}: the newest scan finished {}, longer ago than maxAge {}: push a newer scan (looked for again at {})",
                                scanned.0,
                                duration::format(*max_age),
                                again
                            ));
                            next_check = Some(next_check.map_or(again, |n| n.min(again)));
                            continue;
                        }
                        next_check = Some(next_check.map_or(stale, |n| n.min(stale)));
                    }
                    passed.push(format!("{at}: {}", record.message));
                }
            }
        }
    }
    if !any {
        return None;
    }
    let (state, lines) = if !failed.is_empty() {
        (GateState::Failed, failed)
    } else if !pending.is_empty() {
        (GateState::Pending, pending)
    } else {
        (GateState::Passed, passed)
    };
    Some(Outcome {
        state,
        message: lines.join("; "),
        next_check: if state == GateState::Failed {
            None
        } else {
            next_check
        },
    })
}
