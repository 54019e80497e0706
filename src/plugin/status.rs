//! `kubectl hoist status` and `kubectl hoist history`: what runs in each
//! Environment, what is on its way, and what ran before.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::table::{NONE, Table, age, joined, or_none};
use super::{PluginError, get, list};
use crate::api::{ApplicationStatus, CONDITION_READY, Environment, Promotion};
use crate::core::conditions;

/// `status [ENVIRONMENT]`: one block per Environment (all of the namespace
/// when `environment` is `None`).
pub async fn status(
    client: &Client,
    namespace: &str,
    environment: Option<&str>,
    now: &Time,
) -> Result<String, PluginError> {
    let environments_api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environments = match environment {
        Some(name) => vec![get(&environments_api, "Environment", name, namespace).await?],
        None => list(&environments_api, "Environment", namespace).await?,
    };
    let promotions_api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let promotions = list(&promotions_api, "Promotion", namespace).await?;
    Ok(render_status(namespace, &environments, &promotions, now))
}

/// Per Environment, upstream ones first: a line naming it (and why it is
/// not Ready, if so), a table of what runs per application, and a table of
/// the Promotions into it that have not ended, in queue order.
pub fn render_status(
    namespace: &str,
    environments: &[Environment],
    promotions: &[Promotion],
    now: &Time,
) -> String {
    if environments.is_empty() {
        return format!("no Environments in namespace {namespace}\n");
    }
    pipeline_order(environments)
        .into_iter()
        .map(|environment| render_environment(environment, promotions, now))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_environment(environment: &Environment, promotions: &[Promotion], now: &Time) -> String {
    let name = environment.name_any();
    let mut out = format!("Environment {name}");
    if !environment.spec.upstream.is_empty() {
        out.push_str(&format!(" (upstream: {})", environment.spec.upstream.join(", ")));
    }
    out.push('\n');
    let status = environment.status.clone().unwrap_or_default();
    if let Some(ready) = conditions::find(&status.conditions, CONDITION_READY)
        && ready.status == "False"
    {
        out.push_str(&format!("Not ready ({}): {}\n", ready.reason, ready.message));
    }

    if status.applications.is_empty() {
        out.push_str("Nothing runs here yet.\n");
    } else {
        let mut table = Table::new(&[
            "APPLICATION",
            "ARTIFACT",
            "VERSION",
            "HEALTH",
            "PROMOTED",
            "PROMOTION",
            "APPROVERS",
        ]);
        for app in &status.applications {
            table.row(application_row(app, now));
        }
        out.push_str(&table.render());
    }

    let mut pending: Vec<&Promotion> = promotions
        .iter()
        .filter(|p| p.spec.environment == name)
        .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .collect();
    // The engine serves Promotions in creation order; show them in that order.
    pending.sort_by_key(|p| (p.metadata.creation_timestamp.clone(), p.name_any()));
    if pending.is_empty() {
        out.push_str("No Promotions in flight.\n");
    } else {
        let mut table = Table::new(&["PROMOTION", "ARTIFACT", "PHASE", "MESSAGE"]);
        for promotion in pending {
            let status = promotion.status.clone().unwrap_or_default();
            table.row(vec![
                promotion.name_any(),
                promotion.spec.artifact.clone(),
                format!("{:?}", status.phase),
                or_none(status.message.as_deref()),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}

fn application_row(app: &ApplicationStatus, now: &Time) -> Vec<String> {
    let health = match &app.health_since {
        Some(since) => format!("{:?} for {}", app.health, age(now, since)),
        None => format!("{:?}", app.health),
    };
    vec![
        app.application.clone(),
        app.artifact.clone(),
        app.version.clone(),
        health,
        app.promoted_at
            .as_ref()
            .map_or_else(|| NONE.to_string(), |at| format!("{} ago", age(now, at))),
        app.promotion.clone(),
        joined(&app.approvers),
    ]
}

/// Environments ordered along the pipeline: those without upstream first,
/// then by their longest upstream chain, then by name (dev, staging, prod).
pub(super) fn pipeline_order(environments: &[Environment]) -> Vec<&Environment> {
    let by_name: BTreeMap<String, &Environment> = environments.iter().map(|e| (e.name_any(), e)).collect();
    fn depth(name: &str, by_name: &BTreeMap<String, &Environment>, seen: &mut BTreeSet<String>) -> usize {
        // An upstream cycle is reported on the Environment itself; here it
        // only must not recurse forever.
        if !seen.insert(name.to_string()) {
            return 0;
        }
        let deepest = by_name.get(name).map_or(0, |environment| {
            environment
                .spec
                .upstream
                .iter()
                .filter(|upstream| by_name.contains_key(*upstream))
                .map(|upstream| 1 + depth(upstream, by_name, seen))
                .max()
                .unwrap_or(0)
        });
        seen.remove(name);
        deepest
    }
    let mut ordered: Vec<(usize, &Environment)> = by_name
        .iter()
        .map(|(name, environment)| (depth(name, &by_name, &mut BTreeSet::new()), *environment))
        .collect();
    ordered.sort_by_key(|(depth, environment)| (*depth, environment.name_any()));
    ordered.into_iter().map(|(_, environment)| environment).collect()
}

/// `history ENVIRONMENT [--application A]`.
pub async fn history(
    client: &Client,
    namespace: &str,
    environment: &str,
    application: Option<&str>,
    now: &Time,
) -> Result<String, PluginError> {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environment = get(&api, "Environment", environment, namespace).await?;
    Ok(render_history(&environment, application, now))
}

/// The Environment's status.history, newest first (the order the operator
/// keeps it in), optionally of one application.
pub fn render_history(environment: &Environment, application: Option<&str>, now: &Time) -> String {
    let name = environment.name_any();
    let history = environment
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    let entries: Vec<_> = history
        .iter()
        .filter(|entry| application.is_none_or(|a| entry.application == a))
        .collect();
    if entries.is_empty() {
        return match application {
            Some(application) => format!("No history of {application} in Environment {name}.\n"),
            None => format!("No history in Environment {name}.\n"),
        };
    }
    let mut table = Table::new(&[
        "APPLICATION",
        "VERSION",
        "ARTIFACT",
        "OUTCOME",
        "COMPLETED",
        "PROMOTION",
        "APPROVERS",
    ]);
    for entry in entries {
        table.row(vec![
            entry.application.clone(),
            entry.version.clone(),
            entry.artifact.clone(),
            format!("{:?}", entry.outcome),
            entry
                .completed_at
                .as_ref()
                .map_or_else(|| NONE.to_string(), |at| format!("{} ago", age(now, at))),
            entry.promotion.clone(),
            joined(&entry.approvers),
        ]);
    }
    format!("History of Environment {name}, newest first:\n{}", table.render())
}
