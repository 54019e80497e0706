//! `kubectl hoist why PROMOTION`: everything the operator recorded about
//! why a Promotion is where it is.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::diff::ContainerDiff;
use super::table::{NONE, Table, age, build, or_none};
use super::{PluginError, get};
use crate::api::{Artifact, Promotion};

/// `why PROMOTION`.
pub async fn why(
    client: &Client,
    namespace: &str,
    promotion: &str,
    now: &Time,
) -> Result<String, PluginError> {
    let api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let promotion = get(&api, "Promotion", promotion, namespace).await?;
    // The Artifact only adds its build: a Promotion naming one that is gone
    // is still explained.
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let artifact = artifacts
        .get_opt(&promotion.spec.artifact)
        .await
        .map_err(|source| PluginError::Api {
            action: format!(
                "read Artifact {} in namespace {namespace}",
                promotion.spec.artifact
            ),
            source,
        })?;
    Ok(render_why(&promotion, artifact.as_ref(), now))
}

/// Phase and message (and the build of `artifact`, the Promotion's), then each gate, each approval (as written in the
/// spec, and how the operator judged it: verified, counted, why not), each
/// approval rule with who satisfied it, and each change.
pub fn render_why(promotion: &Promotion, artifact: Option<&Artifact>, now: &Time) -> String {
    let status = promotion.status.clone().unwrap_or_default();
    let spec = &promotion.spec;
    let mut out = format!(
        "Promotion {}: Artifact {} into Environment {}\n",
        promotion.name_any(),
        spec.artifact,
        spec.environment
    );
    let mut facts = vec![
        ("Phase", format!("{:?}", status.phase)),
        ("Message", or_none(status.message.as_deref())),
        ("Reason", or_none(spec.reason.as_deref())),
        ("Requested", or_none(spec.requested_by.as_deref())),
    ];
    if let Some(build) = artifact
        .and_then(|artifact| artifact.spec.source.as_ref())
        .and_then(|source| build(source.build_id.as_deref(), source.build_url.as_deref()))
    {
        facts.push(("Build", build));
    }
    if status.rollback {
        facts.push((
            "Rollback",
            "yes: the Artifact ran here before, so upstream gates do not apply".to_string(),
        ));
    }
    if let Some(waiver) = &spec.r#override {
        let gates: Vec<String> = waiver.waive.iter().map(|gate| format!("{gate:?}")).collect();
        facts.push((
            "Override",
            format!("waives {}: {}", gates.join(", "), waiver.justification),
        ));
    }
    if let Some(started) = &status.started_at {
        facts.push(("Started", format!("{} ago", age(now, started))));
    }
    if let Some(completed) = &status.completed_at {
        facts.push(("Completed", format!("{} ago", age(now, completed))));
    }
    for (label, value) in facts {
        out.push_str(&format!("{:<10} {value}\n", format!("{label}:")));
    }

    out.push('\n');
    if status.gates.is_empty() {
        out.push_str("Gates: not evaluated yet.\n");
    } else {
        out.push_str("Gates:\n");
        // A gate the clock alone changes (soak, change windows) says when.
        let clocked = status.gates.iter().any(|gate| gate.next_check.is_some());
        let header: &[&str] = if clocked {
            &["GATE", "STATE", "CHECKED", "NEXT CHECK", "MESSAGE"]
        } else {
            &["GATE", "STATE", "CHECKED", "MESSAGE"]
        };
        let mut table = Table::new(header);
        for gate in &status.gates {
            let mut row = vec![
                format!("{:?}", gate.gate),
                format!("{:?}", gate.state),
                gate.last_checked
                    .as_ref()
                    .map_or_else(|| NONE.to_string(), |at| format!("{} ago", age(now, at))),
            ];
            if clocked {
                row.push(
                    gate.next_check
                        .as_ref()
                        .map_or_else(|| NONE.to_string(), |at| format!("in {}", age(at, now))),
                );
            }
            row.push(gate.message.clone());
            table.row(row);
        }
        out.push_str(&table.render());
    }

    out.push('\n');
    if spec.approvals.is_empty() {
        out.push_str("Approvals: none.\n");
    } else {
        // status.approvals has one entry per spec entry, in order, once
        // the operator has judged them.
        out.push_str("Approvals:\n");
        let mut table = Table::new(&[
            "USER", "GROUPS", "DECISION", "SEEN", "VERIFIED", "COUNTED", "NOTE", "COMMENT",
        ]);
        for (index, requested) in spec.approvals.iter().enumerate() {
            let judged = status
                .approvals
                .get(index)
                .filter(|j| j.user == requested.user && j.decision == requested.decision);
            table.row(vec![
                requested.user.clone(),
                if requested.groups.is_empty() {
                    NONE.to_string()
                } else {
                    requested.groups.join(",")
                },
                format!("{:?}", requested.decision),
                judged.map_or_else(|| "not yet".to_string(), |j| format!("{} ago", age(now, &j.at))),
                judged.map_or_else(|| NONE.to_string(), |j| yes_no(j.verified)),
                judged.map_or_else(|| NONE.to_string(), |j| yes_no(j.counted)),
                or_none(judged.and_then(|j| j.note.as_deref())),
                or_none(requested.comment.as_deref()),
            ]);
        }
        out.push_str(&table.render());
    }
    if !status.approval_rules.is_empty() {
        out.push('\n');
        out.push_str("Approval rules:\n");
        let mut table = Table::new(&["RULE", "NEEDED", "APPROVED BY", "MET"]);
        for rule in &status.approval_rules {
            table.row(vec![
                rule.name.clone(),
                rule.needed.to_string(),
                if rule.approvers.is_empty() {
                    NONE.to_string()
                } else {
                    rule.approvers.join(", ")
                },
                yes_no(rule.met),
            ]);
        }
        out.push_str(&table.render());
    }

    if !status.verification.is_empty() {
        // Where each step's evidence is: the Job to read logs of, or the
        // query as sent (and the baseline query it is compared with); and
        // the last value measured, next to its baseline.
        out.push_str("\nVerification:\n");
        let mut table = Table::new(&["STEP", "PHASE", "RUNS", "LAST", "MESSAGE"]);
        for step in &status.verification {
            let runs = match (&step.job, &step.query, &step.baseline_query) {
                (Some(job), _, _) => format!("job/{} -n {}", job.name, job.namespace),
                (None, Some(query), Some(baseline)) => format!("{query} vs baseline {baseline}"),
                (None, Some(query), None) => query.clone(),
                (None, None, _) => NONE.to_string(),
            };
            let last = step
                .measurements
                .iter()
                .rev()
                .find(|m| m.value.is_some() || m.baseline.is_some());
            let last = match last.map(|m| (m.value.as_deref(), m.baseline.as_deref())) {
                Some((value, Some(baseline))) => format!("{} (baseline {baseline})", or_none(value)),
                Some((value, None)) => or_none(value).to_string(),
                None => NONE.to_string(),
            };
            table.row(vec![
                step.name.clone(),
                format!("{:?}", step.phase),
                runs,
                last,
                step.message.clone(),
            ]);
        }
        out.push_str(&table.render());
    }

    out.push('\n');
    if status.changes.is_empty() && status.config.is_none() {
        out.push_str("Changes: none recorded (they are recorded when the rollout starts).\n");
    } else {
        out.push_str("Changes:\n");
        for change in &status.changes {
            out.push_str(&ContainerDiff::from(change).to_string());
        }
        if let Some(config) = &status.config {
            out.push_str(&format!(
                "  configuration: {} → {}\n",
                or_none(config.from.as_deref()),
                config.to
            ));
        }
    }
    out
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ten_twenty() -> Time {
        Time("2026-12-02T10:20:00Z".parse().expect("instant"))
    }

    /// The `count` lines after the line `title`.
    fn section<'a>(text: &'a str, title: &str, count: usize) -> Vec<&'a str> {
        text.lines()
            .skip_while(|line| *line != title)
            .skip(1)
            .take(count)
            .collect()
    }

    #[test]
    fn a_gate_the_clock_changes_shows_when_it_is_looked_at_next() {
        let promotion: Promotion = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {name: to-staging, namespace: shop}
spec: {artifact: shop-1, environment: staging, requestedBy: carol}
status:
  phase: Waiting
  message: "waiting for the Soak gate: shop-1 soaks until 2026-12-02T10:40:00Z: Healthy in dev since 2026-12-02T10:10:00Z, soak 30m"
  gates:
    - {gate: Upstream, state: Passed, message: shop-1 is healthy in dev, lastChecked: "2026-12-02T10:15:00Z"}
    - {gate: Soak, state: Pending, message: "shop-1 soaks until 2026-12-02T10:40:00Z: Healthy in dev since 2026-12-02T10:10:00Z, soak 30m", lastChecked: "2026-12-02T10:15:00Z", nextCheck: "2026-12-02T10:40:00Z"}
"#,
        )
        .expect("fixture parses");
        let text = render_why(&promotion, None, &at_ten_twenty());
        assert_eq!(
            section(&text, "Gates:", 3),
            vec![
                "GATE       STATE     CHECKED   NEXT CHECK   MESSAGE",
                "Upstream   Passed    5m ago    <none>       shop-1 is healthy in dev",
                "Soak       Pending   5m ago    in 20m       shop-1 soaks until 2026-12-02T10:40:00Z: Healthy in dev since 2026-12-02T10:10:00Z, soak 30m",
            ]
        );
    }

    #[test]
    fn verification_steps_show_where_their_evidence_is() {
        let promotion: Promotion = serde_yaml::from_str(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {name: to-prod, namespace: shop}
spec: {artifact: shop-1, environment: prod}
status:
  phase: Verifying
  verification:
    - {name: smoke, phase: Passed, message: "Job shop-prod/to-prod-smoke completed; logs: kubectl logs -n shop-prod job/to-prod-smoke", job: {namespace: shop-prod, name: to-prod-smoke}}
    - {name: error-rate, phase: Running, message: "1 of 3 measurement(s)", query: "max(errors)"}
    - name: p99
      phase: Running
      message: "2 of 3 measurement(s)"
      query: 'max(p99{v="1.1"})'
      baselineQuery: 'max(p99{v="1.0"})'
      measurements:
        - {at: "2026-12-02T10:19:00Z", outcome: Successful, value: "0.21", baseline: "0.2"}
        - {at: "2026-12-02T10:19:30Z", outcome: Error, message: "cannot reach prometheus"}
"#,
        )
        .expect("fixture parses");
        let text = render_why(&promotion, None, &at_ten_twenty());
        assert_eq!(
            section(&text, "Verification:", 4),
            vec![
                "STEP         PHASE     RUNS                                              LAST                  MESSAGE",
                "smoke        Passed    job/to-prod-smoke -n shop-prod                    <none>                Job shop-prod/to-prod-smoke completed; logs: kubectl logs -n shop-prod job/to-prod-smoke",
                "error-rate   Running   max(errors)                                       <none>                1 of 3 measurement(s)",
                "p99          Running   max(p99{v=\"1.1\"}) vs baseline max(p99{v=\"1.0\"})   0.21 (baseline 0.2)   2 of 3 measurement(s)",
            ]
        );
    }
}
