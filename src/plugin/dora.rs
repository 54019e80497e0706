//! `kubectl hoist dora [ENVIRONMENT] [--since 30d] [-o json]`: the four DORA
//! figures per Environment and application, computed by the core from the
//! Environments' status.history, so they survive operator restarts; with
//! how far back each history reaches when `--since` asks for more.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::table::{NONE, Table, elapsed};
use super::{PluginError, get, list};
use crate::api::Environment;
use crate::core::dora::{Figures, figures, reaches_back};

/// How `dora` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DoraOutput {
    #[default]
    Table,
    /// The JSON document (docs/kubectl-hoist.md).
    Json,
}

/// `--since`: a duration such as `30d`, `2w` or `72h`, days taken as 24 hours.
pub fn parse_since(text: &str) -> Result<SignedDuration, PluginError> {
    let invalid = |source| PluginError::Since {
        text: text.to_owned(),
        source,
    };
    let span: Span = text.parse().map_err(invalid)?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(invalid)?;
    if duration.is_positive() {
        Ok(duration)
    } else {
        Err(PluginError::SinceNotPositive {
            text: text.to_owned(),
        })
    }
}

/// `dora [ENVIRONMENT]`: every Environment of the namespace when `None`.
pub async fn dora(
    client: &Client,
    namespace: &str,
    environment: Option<&str>,
    since: SignedDuration,
    now: &Time,
    output: DoraOutput,
) -> Result<String, PluginError> {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let mut environments = match environment {
        Some(name) => vec![get(&api, "Environment", name, namespace).await?],
        None => list(&api, "Environment", namespace).await?,
    };
    environments.sort_by_key(ResourceExt::name_any);
    Ok(match output {
        DoraOutput::Table => render_dora(namespace, &environments, since, now),
        DoraOutput::Json => {
            serde_json::to_string_pretty(&dora_document(namespace, &environments, since, now))
                .unwrap_or_default()
                + "\n"
        }
    })
}

/// One Environment's figures per application, and where its history begins
/// when that is after `since`.
struct Measured<'e> {
    environment: &'e Environment,
    figures: Vec<(String, Figures)>,
    short: Option<Timestamp>,
}

fn measure<'e>(environments: &'e [Environment], since: Timestamp) -> Vec<Measured<'e>> {
    environments
        .iter()
        .map(|environment| {
            let history = environment
                .status
                .as_ref()
                .map(|s| s.history.as_slice())
                .unwrap_or_default();
            Measured {
                environment,
                figures: figures(history, since).into_iter().collect(),
                short: reaches_back(history, environment.spec.history_limit).filter(|begins| *begins > since),
            }
        })
        .collect()
}

fn start(now: &Time, since: SignedDuration) -> Timestamp {
    now.0.checked_sub(since).unwrap_or(Timestamp::MIN)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| NONE.to_string(), |rate| format!("{:.0}%", rate * 100.0))
}

fn median(duration: Option<SignedDuration>) -> String {
    duration.map_or_else(|| NONE.to_string(), |d| elapsed(d.as_secs()))
}

/// The table: one row per Environment and application with deployments or
/// restores in the window; lead time and time to restore are medians.
pub fn render_dora(
    namespace: &str,
    environments: &[Environment],
    since: SignedDuration,
    now: &Time,
) -> String {
    let begin = start(now, since);
    let measured = measure(environments, begin);
    let mut table = Table::new(&[
        "ENVIRONMENT",
        "APPLICATION",
        "DEPLOYMENTS",
        "PER DAY",
        "SUCCEEDED",
        "FAILED",
        "ROLLED BACK",
        "CHANGE FAILURE RATE",
        "LEAD TIME",
        "TIME TO RESTORE",
    ]);
    let mut rows = 0;
    for environment in &measured {
        for (application, figures) in &environment.figures {
            rows += 1;
            table.row(vec![
                environment.environment.name_any(),
                application.clone(),
                figures.deployments().to_string(),
                format!("{:.2}", figures.per_day(since)),
                figures.succeeded.to_string(),
                figures.failed.to_string(),
                figures.rolled_back.to_string(),
                percent(figures.change_failure_rate()),
                median(figures.median_lead_time()),
                median(figures.median_time_to_restore()),
            ]);
        }
    }
    let window = elapsed(since.as_secs());
    let mut out = if rows == 0 {
        format!("No deployments in namespace {namespace} since {begin} ({window}).\n")
    } else {
        format!(
            "DORA figures of namespace {namespace} since {begin} ({window}); lead time and time to restore are \
             medians:\n{}",
            table.render()
        )
    };
    for environment in &measured {
        if let Some(begins) = environment.short {
            out.push_str(&format!(
                "history of {} reaches back to {begins} (historyLimit {}): older deployments are not counted\n",
                environment.environment.name_any(),
                environment.environment.spec.history_limit
            ));
        }
    }
    out
}

/// The JSON document: the window, then per Environment its figures per
/// application (durations in seconds) and where its history begins.
pub fn dora_document(
    namespace: &str,
    environments: &[Environment],
    since: SignedDuration,
    now: &Time,
) -> Value {
    let begin = start(now, since);
    let seconds = |duration: Option<SignedDuration>| duration.map(|d| d.as_secs());
    let environments: Vec<Value> = measure(environments, begin)
        .into_iter()
        .map(|measured| {
            let applications: Vec<Value> = measured
                .figures
                .iter()
                .map(|(application, figures)| {
                    json!({
                        "application": application,
                        "deployments": {
                            "total": figures.deployments(),
                            "succeeded": figures.succeeded,
                            "failed": figures.failed,
                            "rolledBack": figures.rolled_back,
                            "perDay": figures.per_day(since),
                        },
                        "changeFailureRate": figures.change_failure_rate(),
                        "leadTimeSeconds": {
                            "median": seconds(figures.median_lead_time()),
                            "values": figures.lead_times.iter().map(|d| d.as_secs()).collect::<Vec<_>>(),
                        },
                        "timeToRestoreSeconds": {
                            "median": seconds(figures.median_time_to_restore()),
                            "values": figures.restores.iter().map(|d| d.as_secs()).collect::<Vec<_>>(),
                        },
                    })
                })
                .collect();
            json!({
                "environment": measured.environment.name_any(),
                "historyLimit": measured.environment.spec.history_limit,
                "historyReachesBackTo": measured.short.map(|begins| begins.to_string()),
                "applications": applications,
            })
        })
        .collect();
    json!({
        "namespace": namespace,
        "since": begin.to_string(),
        "now": now.0.to_string(),
        "environments": environments,
    })
}
