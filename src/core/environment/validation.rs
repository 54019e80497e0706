//! Whether an Environment's spec can be carried out: its targets (Deployment,
//! container, tenant opt-in of other namespaces), its upstream (exists, no
//! cycles) and its configuration (renders), each as a condition naming the
//! field, summarised in `Ready`; for an Environment with a soak or change
//! windows, whether they can be read (`GatesValid`, also in `Ready`); and,
//! for an Environment with an approval
//! gate, whether approvals can be verified (`ApprovalsVerified`).
//!
//! For an Environment with a verification Job step or a Secret reference
//! while the admission policy hoist-environments is not enforced,
//! `TenantBoundaries` is False and so is `Ready`: the operator then acts on
//! none of those fields, so no Promotion can go through.
//!
//! An Environment its namespace's tier does not allow (see
//! [`crate::core::tiers`]) is `Ready` False with reason `TierForbidden`,
//! the tier's message first.
//!
//! `ApprovalsVerified` stays out of `Ready`: it is a property of the
//! cluster (is the admission policy installed?), not of the Environment's
//! spec, and the approval gate already holds every Promotion that needs a
//! verified approval. Folding it into `Ready` would turn every gated
//! Environment unready on clusters before Kubernetes 1.30, including those
//! that opted into `allowUnverified`, and break the health checks
//! (`kubectl wait`, Argo CD, Flux) that read `Ready` for what runs.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use crate::api::{Environment, WorkloadKind};
use crate::core::conditions::{self, Wanted};
use crate::core::duration;
use crate::core::gates::approval::{self, ApprovalTrust};
use crate::core::gates::{soak, verification, windows};
use crate::core::reasons::ConditionReason;
use crate::core::tenancy;
use crate::core::tiers::{self, Forbidden};
use crate::core::workload::LABEL_TENANT;

use super::{Snapshot, target_namespace, target_workload};

/// Condition types of an Environment.
pub const TARGETS_VALID: &str = "TargetsValid";
pub const UPSTREAM_VALID: &str = "UpstreamValid";
pub const CONFIG_VALID: &str = "ConfigValid";
pub const APPROVALS_VERIFIED: &str = "ApprovalsVerified";
pub const GATES_VALID: &str = "GatesValid";
pub const TENANT_BOUNDARIES: &str = "TenantBoundaries";
const ENVIRONMENT_CONDITIONS: &[&str] = &[
    crate::api::CONDITION_READY,
    TARGETS_VALID,
    UPSTREAM_VALID,
    CONFIG_VALID,
    GATES_VALID,
    APPROVALS_VERIFIED,
    TENANT_BOUNDARIES,
];

pub(super) struct Validation {
    pub(super) conditions: Vec<Condition>,
    /// The `Ready` condition wanted, for kstatus' conditions.
    pub(super) ready: Wanted<'static>,
    /// Applications with a target in a namespace not opted in for this tenant.
    pub(super) forbidden: BTreeMap<String, String>,
    /// Applications whose targets are not all usable yet, with why.
    pub(super) not_ready: BTreeMap<String, String>,
    /// Why the namespace's tier does not allow the Environment: nothing new
    /// is promoted into it, what runs keeps running.
    pub(super) tier: Option<Forbidden>,
}

pub(super) fn validate(snapshot: &Snapshot<'_>) -> Validation {
    let environment = snapshot.environment;
    let own_namespace = environment.namespace().unwrap_or_default();
    let mut target_problems = Vec::new();
    let mut forbidden = BTreeMap::new();
    let mut not_ready: BTreeMap<String, String> = BTreeMap::new();
    // Without the admission policy the operator acts on no Job step and
    // reads no Secret: no Promotion can start (its configuration or gates
    // need them), which this says first.
    let held = tenancy::held(environment, &snapshot.boundaries);
    for target in held.iter().flat_map(|_| &environment.spec.targets) {
        not_ready
            .entry(target.application.clone())
            .or_insert_with(|| format!("{TENANT_BOUNDARIES}: {}", held.as_deref().unwrap_or_default()));
    }
    let mut seen = BTreeMap::new();
    if let Some(Err(error)) = environment.spec.rollout.timeout.as_deref().map(duration::parse) {
        target_problems.push(format!("spec.rollout.timeout: {error}"));
    }
    for (index, target) in environment.spec.targets.iter().enumerate() {
        let namespace = target_namespace(environment, target);
        let field = format!("spec.targets[{index}]");
        let workload_field = format!("{field}.{}", target.workload_field());
        let Some(id) = target_workload(environment, target) else {
            target_problems.push(format!("{field}: names neither deployment nor workload"));
            continue;
        };
        if namespace != own_namespace {
            match snapshot.namespaces.get(&namespace) {
                None => {
                    let problem = format!("{workload_field}.namespace: namespace {namespace} not found");
                    not_ready
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                    continue;
                }
                Some(ns) if ns.labels().get(LABEL_TENANT) != Some(&own_namespace) => {
                    let problem = format!(
                        "{workload_field}.namespace: namespace {namespace} is not opted in for tenant {own_namespace}; \
                         a cluster admin must label it {LABEL_TENANT}={own_namespace}"
                    );
                    forbidden
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                    continue;
                }
                Some(_) => {}
            }
        }
        if snapshot.unserved.contains(&id.kind) {
            let problem = format!(
                "{workload_field}.kind: the operator does not act on {} ({}) here: the cluster does not serve it{}",
                id.kind,
                id.kind.api_version(),
                match id.kind {
                    WorkloadKind::Rollout => {
                        " or Argo Rollouts is not enabled; install Argo Rollouts and set the chart value \
                         argoRollouts.enabled, or target another kind"
                    }
                    _ => "",
                }
            );
            not_ready
                .entry(target.application.clone())
                .or_insert(problem.clone());
            target_problems.push(problem);
            continue;
        }
        let key = (id.clone(), target.container.clone());
        if let Some(previous) = seen.insert(key, index) {
            target_problems.push(format!(
                "{field}: container {} of {} {namespace}/{} is already targeted by spec.targets[{previous}]",
                target.container, id.kind, id.name
            ));
            continue;
        }
        match snapshot.workloads.get(&id) {
            None => {
                let problem = format!("{workload_field}: {} {namespace}/{} not found", id.kind, id.name);
                not_ready
                    .entry(target.application.clone())
                    .or_insert(problem.clone());
                target_problems.push(problem);
            }
            Some(workload) => {
                let has_container = workload
                    .pod_template()
                    .and_then(|template| template.spec.as_ref())
                    .is_some_and(|pod| pod.containers.iter().any(|c| c.name == target.container));
                if !has_container {
                    let problem = format!(
                        "{field}.container: {} {namespace}/{} has no container {}",
                        id.kind, id.name, target.container
                    );
                    not_ready
                        .entry(target.application.clone())
                        .or_insert(problem.clone());
                    target_problems.push(problem);
                }
            }
        }
    }

    let mut upstream_problems = Vec::new();
    let name = environment.name_any();
    for (index, upstream) in environment.spec.upstream.iter().enumerate() {
        if !snapshot.environments.contains_key(upstream) {
            upstream_problems.push(format!(
                "spec.upstream[{index}]: Environment {upstream} not found"
            ));
        }
    }
    if let Some(cycle) = find_cycle(&name, &snapshot.environments) {
        upstream_problems.push(format!("spec.upstream: cycle {}", cycle.join(" → ")));
    }

    let mut config_problems = Vec::new();
    for (application, rendered) in &snapshot.configs {
        if let Err(error) = rendered {
            config_problems.push(error.to_string());
            not_ready.entry(application.clone()).or_insert(error.to_string());
        }
    }

    // Soak durations, change windows and verification steps hold things the
    // schema cannot check.
    let gates = &environment.spec.gates;
    let has_clock_gates = gates.soak.is_some() || !gates.windows.is_empty() || !gates.verification.is_empty();
    let gate_problems: Vec<String> = gates
        .soak
        .as_ref()
        .and_then(soak::problem)
        .into_iter()
        .chain(windows::problems(&gates.windows))
        .chain(verification::problems(&gates.verification))
        .collect();

    // A policy without autoPromote would be ignored without a word. (Not a
    // CEL rule: one on the spec would count every field of it against the
    // API server's cost budget.)
    let promotion_problems: Vec<String> = (environment.spec.auto_promotion.is_some()
        && !environment.spec.auto_promote)
        .then(|| {
            "spec.autoPromotion is the policy of autoPromote, which is false: set autoPromote: true, or \
             remove autoPromotion"
                .to_string()
        })
        .into_iter()
        .collect();

    let generation = environment.metadata.generation;
    let verdict = |type_: &'static str, problems: &[String], ok: &str, reason: ConditionReason| Wanted {
        type_,
        status: problems.is_empty(),
        reason: if problems.is_empty() {
            ConditionReason::Valid
        } else {
            reason
        },
        message: if problems.is_empty() {
            ok.to_string()
        } else {
            problems.join("; ")
        },
    };
    let tier = tiers::decide(
        snapshot.tiers,
        snapshot.tenant_labels,
        snapshot.environments.values().copied(),
        environment,
    )
    .err();
    let tier_problem = tier.as_ref().map(ToString::to_string);
    let all: Vec<&String> = tier_problem
        .iter()
        .chain(&target_problems)
        .chain(&upstream_problems)
        .chain(&config_problems)
        .chain(&gate_problems)
        .chain(&promotion_problems)
        .chain(&held)
        .collect();
    let ready = Wanted {
        type_: crate::api::CONDITION_READY,
        status: all.is_empty(),
        reason: if all.is_empty() {
            ConditionReason::Ready
        } else if tier.is_some() {
            ConditionReason::TierForbidden
        } else if all.len() == usize::from(held.is_some()) {
            ConditionReason::PolicyMissing
        } else {
            ConditionReason::InvalidSpec
        },
        message: if all.is_empty() {
            "targets, upstream and configuration are valid".to_string()
        } else {
            all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
        },
    };
    let previous = environment
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let approvals_verified = environment
        .spec
        .gates
        .approval
        .as_ref()
        .map(|gate| approvals_verified(&snapshot.approvals, gate.allow_unverified));
    let conditions = conditions::set_all(
        &previous,
        [
            ready.clone(),
            verdict(
                TARGETS_VALID,
                &target_problems,
                "every target workload and container exists",
                ConditionReason::InvalidTarget,
            ),
            verdict(
                UPSTREAM_VALID,
                &upstream_problems,
                "upstream environments exist, without cycles",
                ConditionReason::InvalidUpstream,
            ),
            verdict(
                CONFIG_VALID,
                &config_problems,
                "configuration renders",
                ConditionReason::InvalidConfig,
            ),
        ]
        .into_iter()
        .chain(has_clock_gates.then(|| {
            verdict(
                GATES_VALID,
                &gate_problems,
                "soak, change windows and verification steps are valid",
                ConditionReason::InvalidGates,
            )
        }))
        .chain(approvals_verified)
        .chain(held.as_ref().map(|message| Wanted {
            type_: TENANT_BOUNDARIES,
            status: false,
            reason: ConditionReason::PolicyMissing,
            message: message.clone(),
        }))
        .collect(),
        ENVIRONMENT_CONDITIONS,
        generation,
        &snapshot.now,
    );
    Validation {
        conditions,
        ready,
        forbidden,
        not_ready,
        tier,
    }
}

/// `ApprovalsVerified` of an Environment with an approval gate.
fn approvals_verified(trust: &ApprovalTrust, allow_unverified: bool) -> Wanted<'static> {
    match trust {
        ApprovalTrust::Verified => Wanted {
            type_: APPROVALS_VERIFIED,
            status: true,
            reason: ConditionReason::PolicyInstalled,
            message: "the admission policy and its binding are installed as Hoist ships them: approvers are who the API server says"
                .into(),
        },
        ApprovalTrust::Unverified { policy, reason } => {
            let mut message = approval::admin_message(policy, reason);
            if allow_unverified {
                message.push_str("; the approval gate counts unverified approvals (allowUnverified)");
            }
            Wanted {
                type_: APPROVALS_VERIFIED,
                status: false,
                reason: ConditionReason::PolicyMissing,
                message,
            }
        }
    }
}

/// A cycle through `start` along spec.upstream, as environment names.
fn find_cycle(start: &str, environments: &BTreeMap<String, &Environment>) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        start: &str,
        environments: &BTreeMap<String, &Environment>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> bool {
        let Some(environment) = environments.get(name) else {
            return false;
        };
        for upstream in &environment.spec.upstream {
            if upstream == start {
                path.push(upstream.clone());
                return true;
            }
            if done.insert(upstream.clone()) {
                path.push(upstream.clone());
                if visit(upstream, start, environments, path, done) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut done = BTreeSet::new();
    visit(start, start, environments, &mut path, &mut done).then_some(path)
}

#[cfg(test)]
mod tests;
