//! `kubectl hoist hotfix`: the break-glass Promotion in one step, and what
//! still has to happen before it runs. An override waives gates, never
//! Approval, and every gate it does not waive is still checked.

use std::fmt;

use kube::api::Api;
use kube::{Client, ResourceExt};

use super::promote::{create, new_promotion, requester};
use super::{PluginError, get};
use crate::api::{Artifact, Environment, GateName, Override, Promotion};

/// A created hotfix Promotion and what still applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotfix {
    pub promotion: String,
    pub namespace: String,
    pub waived: Vec<GateName>,
    /// Checked before it starts: gates not waived that this Environment has.
    pub checked: Vec<String>,
    /// Who must approve (an override always needs an approval).
    pub approval: String,
    /// Checked after the rollout, before it succeeds.
    pub verification: Vec<String>,
}

/// `--waive` as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waive(pub Vec<GateName>);

/// Reads `--waive Upstream,Soak`.
pub fn waive_arg(text: &str) -> Result<Waive, String> {
    parse_waive(text).map(Waive)
}

/// The gates a hotfix may waive: all but Approval.
pub fn parse_waive(text: &str) -> Result<Vec<GateName>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let gate: GateName = serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
                format!(
                    "{name:?} is not a gate: ArtifactReady, Upstream, Provenance, Vulnerabilities, Soak, Windows, Compatibility or Verification"
                )
            })?;
            if gate == GateName::Approval {
                return Err("an override always needs approval: Approval cannot be waived".into());
            }
            Ok(gate)
        })
        .collect()
}

/// What still applies to a hotfix of `environment` waiving `waived`.
pub fn plan_hotfix(promotion: &Promotion, environment: &Environment, waived: &[GateName]) -> Hotfix {
    let gates = &environment.spec.gates;
    let configured = [
        (
            GateName::ArtifactReady,
            true,
            "the Artifact is resolved".to_string(),
        ),
        (
            GateName::Upstream,
            !environment.spec.upstream.is_empty(),
            format!("it runs healthy in {}", environment.spec.upstream.join(", ")),
        ),
        (
            GateName::Provenance,
            gates.provenance.is_some(),
            "the provenance this Environment requires".to_string(),
        ),
        (
            GateName::Vulnerabilities,
            gates.vulnerabilities.is_some(),
            "a recent signed vulnerability scan".to_string(),
        ),
        (
            GateName::Soak,
            gates.soak.is_some(),
            format!(
                "a soak of {} upstream",
                gates
                    .soak
                    .as_ref()
                    .map(|s| s.duration.as_str())
                    .unwrap_or_default()
            ),
        ),
        (
            GateName::Windows,
            !gates.windows.is_empty(),
            format!(
                "change windows {}",
                gates
                    .windows
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            GateName::Compatibility,
            gates.compatibility.as_ref().is_some_and(|c| c.enforce),
            "the compatibility ranges".to_string(),
        ),
    ];
    let checked = configured
        .into_iter()
        .filter(|(gate, present, _)| *present && !waived.contains(gate))
        .map(|(gate, _, what)| format!("{gate:?}: {what}"))
        .collect();
    let approval = match &gates.approval {
        Some(gate) if !gate.rules.is_empty() => format!(
            "rules {}",
            gate.rules
                .iter()
                .map(|rule| rule.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(gate) if !gate.users.is_empty() || !gate.groups.is_empty() => {
            let mut who: Vec<String> = gate.users.clone();
            who.extend(gate.groups.iter().map(|g| format!("group {g}")));
            format!("{} of {}", gate.min_approvals, who.join(", "))
        }
        Some(gate) => format!("{} approver(s)", gate.min_approvals),
        None => "1 approver (an override needs one even without an approval gate)".to_string(),
    };
    let verification = if waived.contains(&GateName::Verification) {
        Vec::new()
    } else {
        gates
            .verification
            .iter()
            .map(|step| {
                format!(
                    "{} ({})",
                    step.name,
                    if step.job.is_some() { "Job" } else { "Prometheus" }
                )
            })
            .collect()
    };
    Hotfix {
        promotion: promotion.name_any(),
        namespace: promotion.namespace().unwrap_or_default(),
        waived: waived.to_vec(),
        checked,
        approval,
        verification,
    }
}

/// `hotfix ARTIFACT ENVIRONMENT --waive G,… --justification J [--name N]`.
pub async fn hotfix(
    client: &Client,
    namespace: &str,
    artifact: &str,
    environment: &str,
    waive: Vec<GateName>,
    justification: String,
    name: Option<String>,
) -> Result<Hotfix, PluginError> {
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    get(&artifacts, "Artifact", artifact, namespace).await?;
    let environments: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let target = get(&environments, "Environment", environment, namespace).await?;
    let requested_by = requester(client).await?;
    let mut promotion = new_promotion(
        namespace,
        artifact,
        environment,
        Some(format!("hotfix: {justification}")),
        name,
        requested_by,
    );
    promotion.spec.r#override = Some(Override {
        waive: waive.clone(),
        justification,
    });
    let created = create(client, namespace, &promotion).await?;
    Ok(plan_hotfix(&created, &target, &waive))
}

impl fmt::Display for Hotfix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waived: Vec<String> = self.waived.iter().map(|g| format!("{g:?}")).collect();
        writeln!(
            f,
            "Promotion {} created: a break-glass override waiving {}.",
            self.promotion,
            waived.join(", ")
        )?;
        writeln!(
            f,
            "Now:     needs approval from {}: kubectl hoist approve {} -n {}",
            self.approval, self.promotion, self.namespace
        )?;
        if self.checked.is_empty() {
            writeln!(f, "Checked: nothing else before it starts.")?;
        } else {
            writeln!(f, "Checked: {}.", self.checked.join("; "))?;
        }
        writeln!(
            f,
            "Then:    once approved and checked it starts at once (queued only behind a rollout of the same application)."
        )?;
        if !self.verification.is_empty() {
            writeln!(
                f,
                "After:   verified by {} before it succeeds.",
                self.verification.join(", ")
            )?;
        }
        writeln!(
            f,
            "Follow:  kubectl hoist why {} -n {}",
            self.promotion, self.namespace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waivable_gates_are_read_and_approval_never_is() {
        assert_eq!(
            parse_waive("Upstream, Soak"),
            Ok(vec![GateName::Upstream, GateName::Soak])
        );
        assert_eq!(
            parse_waive("Upstream,Approval"),
            Err("an override always needs approval: Approval cannot be waived".into())
        );
        assert!(
            parse_waive("Upstrem")
                .unwrap_err()
                .starts_with("\"Upstrem\" is not a gate")
        );
    }

    #[test]
    fn a_hotfix_says_what_still_applies_and_when() {
        let environment: Environment = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: prod, namespace: shop}
spec:
  upstream: [staging]
  gates:
    approval: {rules: [{name: staff, groups: [staff]}, {name: client, groups: [client]}]}
    provenance: {requireSourceRevision: true}
    soak: {duration: 24h}
    windows: [{name: friday-evening, type: Deny, schedule: "0 18 * * FRI", duration: 62h, timeZone: Europe/Berlin}]
    verification: [{name: smoke, job: {image: "busybox:1.36"}}]
"#,
        )
        .expect("fixture parses");
        let mut promotion = new_promotion("shop", "shop-1.4.3", "prod", None, Some("hotfix-1".into()), None);
        promotion.metadata.namespace = Some("shop".into());
        let hotfix = plan_hotfix(&promotion, &environment, &[GateName::Upstream, GateName::Soak]);
        assert_eq!(
            hotfix.to_string(),
            "\
Promotion hotfix-1 created: a break-glass override waiving Upstream, Soak.
Now:     needs approval from rules staff, client: kubectl hoist approve hotfix-1 -n shop
Checked: ArtifactReady: the Artifact is resolved; Provenance: the provenance this Environment requires; Windows: change windows friday-evening.
Then:    once approved and checked it starts at once (queued only behind a rollout of the same application).
After:   verified by smoke (Job) before it succeeds.
Follow:  kubectl hoist why hotfix-1 -n shop
"
        );
    }
}
