//! `kubectl hoist gc --dry-run ENVIRONMENT|--all`: what retention would
//! delete now and why each survivor stays, decided by the operator's own
//! core ([`crate::core::retention`]) from the namespace's objects. The
//! operator does the deleting; this only shows it.

use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::table::{NONE, Table};
use super::{PluginError, list};
use crate::api::{Artifact, Environment, Promotion};
use crate::core::operator_config;
use crate::core::retention::{self, Kind, Outcome, RetentionDefaults, Snapshot};

/// The retention defaults of the operator configuration file at `path`;
/// the built-in ones without a file.
pub fn retention_defaults(path: Option<&Path>) -> Result<RetentionDefaults, PluginError> {
    let Some(path) = path else {
        return Ok(RetentionDefaults::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| PluginError::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    operator_config::parse(&text)
        .map(|config| config.retention)
        .map_err(|source| PluginError::ConfigInvalid {
            path: path.to_owned(),
            source,
        })
}

/// The verdicts on `environment`'s finished Promotions and the Artifacts
/// of the applications it targets, or on everything in `namespace`
/// (`None`).
pub async fn gc(
    client: &Client,
    namespace: &str,
    environment: Option<&str>,
    defaults: &RetentionDefaults,
    now: &Time,
) -> Result<String, PluginError> {
    let environments: Vec<Environment> = list(
        &Api::namespaced(client.clone(), namespace),
        "Environment",
        namespace,
    )
    .await?;
    if let Some(name) = environment
        && !environments.iter().any(|e| e.name_any() == name)
    {
        return Err(PluginError::NotFound {
            kind: "Environment",
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    let artifacts: Vec<Artifact> =
        list(&Api::namespaced(client.clone(), namespace), "Artifact", namespace).await?;
    let promotions: Vec<Promotion> = list(
        &Api::namespaced(client.clone(), namespace),
        "Promotion",
        namespace,
    )
    .await?;
    Ok(render_gc(
        &environments,
        &artifacts,
        &promotions,
        environment,
        defaults,
        now,
    ))
}

/// One row per object (Artifacts by application, then Promotions by
/// Environment, newest first), whether it would go and why, then a count.
pub fn render_gc(
    environments: &[Environment],
    artifacts: &[Artifact],
    promotions: &[Promotion],
    environment: Option<&str>,
    defaults: &RetentionDefaults,
    now: &Time,
) -> String {
    let decision = retention::decide(&Snapshot {
        environments: environments.iter().collect(),
        artifacts: artifacts.iter().collect(),
        promotions: promotions.iter().collect(),
        defaults,
        now: now.clone(),
    });
    let targets = |application: &str| match environment {
        None => true,
        Some(name) => environments
            .iter()
            .any(|e| e.name_any() == name && e.spec.targets.iter().any(|t| t.application == application)),
    };
    let shown: Vec<_> = decision
        .verdicts
        .iter()
        .filter(|verdict| match verdict.kind {
            Kind::Artifact => targets(&verdict.group),
            Kind::Promotion => environment.is_none_or(|name| verdict.group == name),
        })
        .collect();
    let mut table = Table::new(&["KIND", "NAME", "OF", "WOULD", "REASON", "NEEDED BY"]);
    for verdict in &shown {
        let (would, reason, by) = match &verdict.outcome {
            Outcome::Keep { reason, by } => ("stay", reason.as_str(), by.as_deref()),
            Outcome::Delete(reason) => ("go", reason.as_str(), None),
        };
        table.row(vec![
            verdict.kind.as_str().to_owned(),
            verdict.name.clone(),
            verdict.group.clone(),
            would.to_owned(),
            reason.to_owned(),
            by.unwrap_or(NONE).to_owned(),
        ]);
    }
    let going = shown.iter().filter(|verdict| verdict.deletes()).count();
    let mut out = table.render();
    out.push_str(&format!("{going} of {} would go\n", shown.len()));
    for error in &decision.errors {
        out.push_str(&format!("not decided: {error}\n"));
    }
    out
}
