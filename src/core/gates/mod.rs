//! The gates of one Promotion: what each sees, and whether it passes.
//!
//! One file (or folder) per gate, each returning an [`Outcome`]; this
//! module gives each gate what it looks at, in the order `status.gates`
//! lists them, and applies an override's waivers.

pub mod approval;
pub mod artifact_ready;
pub mod compatibility;
mod outcome;
pub mod provenance;
pub mod records;
pub mod soak;
pub mod upstream;
pub mod verification;
pub mod vulnerabilities;
pub mod windows;

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ApplicationStatus, Approval, ApprovalRuleStatus, Artifact, Environment, GateName, GateState, GateStatus,
    Promotion,
};
use crate::core::{supply_chain, version};
use approval::{ApprovalInput, ApprovalNotice, ApprovalTrust, Rejection};
pub use outcome::Outcome;
use soak::SoakInput;

/// Everything the gates of one Promotion look at.
pub struct GateInput<'a> {
    pub environment: &'a Environment,
    /// Finds another Environment of the namespace by name.
    pub environments: &'a dyn Fn(&str) -> Option<&'a Environment>,
    /// Finds an Artifact of the namespace by name (for the ranges of what runs).
    pub artifacts: &'a dyn Fn(&str) -> Option<&'a Artifact>,
    /// Releases of other applications rolling out here now: they will run.
    pub in_flight: &'a [&'a Artifact],
    pub artifact: &'a Artifact,
    pub promotion: &'a Promotion,
    /// What runs in the environment now for the Artifact's application.
    pub current: Option<&'a ApplicationStatus>,
    /// The Artifact ran here before: upstream gates do not apply.
    pub rollback: bool,
    /// Whether the API server vouches for approvers now.
    pub trust: &'a ApprovalTrust,
    /// The Environment's supply-chain policies, keys read.
    pub supply_chain: &'a [Result<supply_chain::Policy, supply_chain::PolicyProblem>],
    pub now: &'a Time,
}

/// The gates' verdicts, and what the approval gate made of spec.approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVerdict {
    pub gates: Vec<GateStatus>,
    /// status.approvals: every entry, whether it counts and why.
    pub approvals: Vec<Approval>,
    /// status.approvalRules.
    pub approval_rules: Vec<ApprovalRuleStatus>,
    /// A rejection by an allowed approver: the Promotion ends Rejected.
    pub rejection: Option<Rejection>,
    /// Events about entries seen for the first time.
    pub approval_notices: Vec<ApprovalNotice>,
}

impl GateVerdict {
    /// The first gate that holds the Promotion, if any. Verification runs
    /// after the rollout, so it never holds one from starting.
    pub fn first_holding(&self) -> Option<&GateStatus> {
        self.gates.iter().find(|gate| {
            gate.gate != GateName::Verification
                && matches!(gate.state, GateState::Pending | GateState::Failed)
        })
    }
}

/// Evaluates every gate of `input.promotion`. `previous` approvals keep the
/// time each was first seen, and whether it was verified then.
pub fn evaluate(input: &GateInput<'_>, previous: &[Approval]) -> GateVerdict {
    let environment = input.environment;
    let gates = &environment.spec.gates;
    let artifact = input.artifact;
    let running = input.current.map(|current| current.version.as_str());
    let approval_gate = approval::policy(environment, input.promotion);
    let approval = approval::evaluate(&ApprovalInput {
        gate: approval_gate.as_ref(),
        environment: environment.metadata.name.as_deref().unwrap_or_default(),
        promotion: input.promotion,
        bump: version::bump(artifact.spec.version_scheme, running, &artifact.spec.version),
        direction: version::direction(artifact.spec.version_scheme, running, &artifact.spec.version),
        trust: input.trust,
        previous,
        now: input.now,
    });
    let upstream: Vec<(&str, Option<&Environment>)> = environment
        .spec
        .upstream
        .iter()
        .map(|name| (name.as_str(), (input.environments)(name)))
        .collect();
    let now = input.now.0;
    let outcomes = [
        (GateName::ArtifactReady, artifact_ready::evaluate(artifact)),
        (
            GateName::Upstream,
            upstream::evaluate(artifact, input.rollback, &upstream),
        ),
        (GateName::Approval, approval.outcome),
        (
            GateName::Provenance,
            provenance::evaluate(gates.provenance.as_ref(), artifact, input.supply_chain, now),
        ),
        (
            GateName::Vulnerabilities,
            vulnerabilities::evaluate(input.supply_chain, artifact, now),
        ),
        (
            GateName::Soak,
            soak::evaluate(&SoakInput {
                gate: gates.soak.as_ref(),
                artifact: artifact.metadata.name.as_deref().unwrap_or_default(),
                application: &artifact.spec.application,
                rollback: input.rollback,
                upstream: &upstream,
                now,
            }),
        ),
        (GateName::Windows, windows::evaluate(&gates.windows, now)),
        (GateName::Compatibility, compatibility(input)),
        (
            GateName::Verification,
            verification::before_rollout(&gates.verification),
        ),
    ];
    let waived = waivers(input.promotion);
    GateVerdict {
        gates: outcomes
            .into_iter()
            .map(|(gate, outcome)| {
                let Outcome {
                    state,
                    message,
                    next_check,
                } = waive(gate, outcome, &waived);
                GateStatus {
                    gate,
                    state,
                    message,
                    last_checked: Some(input.now.clone()),
                    next_check: next_check.map(Time),
                }
            })
            .collect(),
        approvals: approval.approvals,
        approval_rules: approval.rules,
        rejection: approval.rejection,
        approval_notices: approval.notices,
    }
}

/// The gates a break-glass override waives.
fn waivers(promotion: &Promotion) -> BTreeSet<GateName> {
    promotion
        .spec
        .r#override
        .iter()
        .flat_map(|o| o.waive.iter().copied())
        .collect()
}

/// `outcome` of `gate` with the override's waivers applied: a gate that
/// does not pass is Waived, except Approval, which an override never waives.
fn waive(gate: GateName, outcome: Outcome, waived: &BTreeSet<GateName>) -> Outcome {
    if waived.contains(&gate) && gate != GateName::Approval && outcome.state != GateState::Passed {
        Outcome {
            state: GateState::Waived,
            message: format!("waived by override: {}", outcome.message),
            next_check: None,
        }
    } else {
        outcome
    }
}

/// The Compatibility gate against what runs here and what is rolling out.
fn compatibility(input: &GateInput<'_>) -> Outcome {
    let candidate = compatibility::Release::of(input.artifact);
    let application = &input.artifact.spec.application;
    let running: Vec<compatibility::Release<'_>> = input
        .environment
        .status
        .iter()
        .flat_map(|status| &status.applications)
        .filter(|app| &app.application != application)
        .map(|app| compatibility::running_release(app, input.artifacts))
        .chain(
            input
                .in_flight
                .iter()
                .filter(|other| &other.spec.application != application)
                .map(|other| compatibility::Release::of(other)),
        )
        .collect();
    compatibility::evaluate(
        input.environment.spec.gates.compatibility.as_ref(),
        &candidate,
        &running,
    )
}
