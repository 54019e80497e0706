//! `kubectl hoist status` and `kubectl hoist history`: what runs in each
//! Environment, what is on its way, and what ran before.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::table::{NONE, Table, age, build, joined, or_none, short_commit, short_digest};
use super::{PluginError, get, list};
use crate::api::{
    ApplicationStatus, Artifact, CONDITION_READY, Environment, HistoryEntry, Promotion, Source,
};
use crate::core::conditions;

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Tables, digests and commits shortened.
    #[default]
    Table,
    /// Tables with full digests, commits and the source repository.
    Wide,
    /// The stable JSON document (docs/kubectl-hoist.md).
    Json,
    /// The same document as YAML.
    Yaml,
}

/// `status [ENVIRONMENT]`: one block per Environment (all of the namespace
/// when `environment` is `None`).
pub async fn status(
    client: &Client,
    namespace: &str,
    environment: Option<&str>,
    now: &Time,
    output: Output,
) -> Result<String, PluginError> {
    let environments_api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environments = match environment {
        Some(name) => vec![get(&environments_api, "Environment", name, namespace).await?],
        None => list(&environments_api, "Environment", namespace).await?,
    };
    let promotions_api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let promotions = list(&promotions_api, "Promotion", namespace).await?;
    let artifacts_api: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let artifacts = list(&artifacts_api, "Artifact", namespace).await?;
    let view = View {
        namespace,
        environments: &environments,
        promotions: &promotions,
        artifacts: &artifacts,
        now,
    };
    Ok(match output {
        Output::Table => render_status(&view, false),
        Output::Wide => render_status(&view, true),
        Output::Json => serde_json::to_string_pretty(&status_document(&view)).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(&status_document(&view)).unwrap_or_default(),
    })
}

/// What `status` shows.
pub struct View<'a> {
    pub namespace: &'a str,
    pub environments: &'a [Environment],
    pub promotions: &'a [Promotion],
    /// For each running release's source repository.
    pub artifacts: &'a [Artifact],
    pub now: &'a Time,
}

impl View<'_> {
    fn source(&self, artifact: &str) -> Option<&Source> {
        self.artifacts
            .iter()
            .find(|a| a.name_any() == artifact)
            .and_then(|a| a.spec.source.as_ref())
    }

    fn repository(&self, artifact: &str) -> Option<&str> {
        self.source(artifact).map(|s| s.repository.as_str())
    }

    /// The build that produced `artifact`, as [`build`] tells it.
    fn build(&self, artifact: &str) -> Option<String> {
        self.source(artifact)
            .and_then(|s| build(s.build_id.as_deref(), s.build_url.as_deref()))
    }
}

/// The stable document of `status -o json|yaml`: namespace, and per
/// Environment (upstream first) its upstream, Ready, what runs per
/// application (artifact, version, source repository and revision, health
/// and since when, promotion, approvers, and each component's kind of
/// workload and digest) and
/// the Promotions in flight.
pub fn status_document(view: &View<'_>) -> serde_json::Value {
    let environments: Vec<serde_json::Value> = pipeline_order(view.environments)
        .into_iter()
        .map(|environment| {
            let name = environment.name_any();
            let status = environment.status.clone().unwrap_or_default();
            let ready = conditions::find(&status.conditions, CONDITION_READY).map(|ready| {
                serde_json::json!({"status": ready.status, "reason": ready.reason, "message": ready.message})
            });
            let applications: Vec<serde_json::Value> = status
                .applications
                .iter()
                .map(|app| {
                    serde_json::json!({
                        "application": app.application,
                        "artifact": app.artifact,
                        "version": app.version,
                        "source": {
                            "repository": view.repository(&app.artifact),
                            "revision": app.source_revision,
                            "buildId": view.source(&app.artifact).and_then(|s| s.build_id.as_deref()),
                            "buildUrl": view.source(&app.artifact).and_then(|s| s.build_url.as_deref()),
                        },
                        "health": app.health,
                        "healthSince": app.health_since,
                        "promotion": app.promotion,
                        "promotedAt": app.promoted_at,
                        "approvers": app.approvers,
                        "components": app.images.iter().map(|i| serde_json::json!({
                            "component": i.component,
                            "kind": kinds_of(environment, &app.application, &i.component),
                            "digest": i.digest,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let in_flight: Vec<serde_json::Value> = in_flight(environment, view.promotions)
                .into_iter()
                .map(|p| {
                    let status = p.status.clone().unwrap_or_default();
                    serde_json::json!({"name": p.name_any(), "artifact": p.spec.artifact, "phase": status.phase, "message": status.message})
                })
                .collect();
            serde_json::json!({
                "name": name,
                "upstream": environment.spec.upstream,
                "ready": ready,
                "applications": applications,
                "promotions": in_flight,
            })
        })
        .collect();
    serde_json::json!({"namespace": view.namespace, "environments": environments})
}

/// Per Environment, upstream ones first: a line naming it (and why it is
/// not Ready, if so), a table of what runs, a row per application
/// component with the kind of workload it runs as, its digest and the
/// source commit, and a table of the
/// Promotions into it that have not ended, in queue order.
pub fn render_status(view: &View<'_>, wide: bool) -> String {
    if view.environments.is_empty() {
        return format!("no Environments in namespace {}\n", view.namespace);
    }
    pipeline_order(view.environments)
        .into_iter()
        .map(|environment| render_environment(view, environment, wide))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The kinds of workload that run `component` of `application` here, as
/// its targets name them (`StatefulSet`, `Deployment,CronJob`).
fn kinds_of(environment: &Environment, application: &str, component: &str) -> Option<String> {
    let mut kinds: Vec<String> = environment
        .spec
        .targets
        .iter()
        .filter(|t| t.application == application && t.component == component)
        .filter_map(|t| Some(t.workload()?.kind.to_string()))
        .collect();
    kinds.dedup();
    (!kinds.is_empty()).then(|| kinds.join(","))
}

/// The Promotions into `environment` that have not ended, in queue order.
fn in_flight<'a>(environment: &Environment, promotions: &'a [Promotion]) -> Vec<&'a Promotion> {
    let name = environment.name_any();
    let mut pending: Vec<&Promotion> = promotions
        .iter()
        .filter(|p| p.spec.environment == name)
        .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .collect();
    // The engine serves Promotions in creation order; show them in that order.
    pending.sort_by_key(|p| (p.metadata.creation_timestamp.clone(), p.name_any()));
    pending
}

fn render_environment(view: &View<'_>, environment: &Environment, wide: bool) -> String {
    let now = view.now;
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
        let mut header = vec![
            "APPLICATION",
            "ARTIFACT",
            "VERSION",
            "HEALTH",
            "PROMOTED",
            "PROMOTION",
            "APPROVERS",
        ];
        // Wide: where each release comes from, and the build column when
        // some Artifact names its build.
        let builds = wide
            && status
                .applications
                .iter()
                .any(|app| view.build(&app.artifact).is_some());
        if wide {
            header.push("REPOSITORY");
        }
        if builds {
            header.push("BUILD");
        }
        let mut table = Table::new(&header);
        for app in &status.applications {
            let mut row = application_row(app, now);
            if wide {
                row.push(or_none(view.repository(&app.artifact)));
            }
            if builds {
                row.push(or_none(view.build(&app.artifact).as_deref()));
            }
            table.row(row);
        }
        out.push_str(&table.render());
        // What exactly runs: each component's digest and the commit it was built from.
        let mut components = Table::new(&["APPLICATION", "COMPONENT", "KIND", "DIGEST", "COMMIT"]);
        for app in &status.applications {
            let commit = app.source_revision.as_deref().map(|revision| {
                if wide {
                    revision.to_string()
                } else {
                    short_commit(revision)
                }
            });
            for image in &app.images {
                components.row(vec![
                    app.application.clone(),
                    image.component.clone(),
                    or_none(kinds_of(environment, &app.application, &image.component).as_deref()),
                    if wide {
                        image.digest.clone()
                    } else {
                        short_digest(&image.digest)
                    },
                    or_none(commit.as_deref()),
                ]);
            }
        }
        out.push_str(&components.render());
    }

    let pending = in_flight(environment, view.promotions);
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
    let build_of = |entry: &HistoryEntry| build(entry.build_id.as_deref(), entry.build_url.as_deref());
    // The build column when some release names its build.
    let builds = entries.iter().any(|entry| build_of(entry).is_some());
    let mut header = vec![
        "APPLICATION",
        "VERSION",
        "ARTIFACT",
        "CHANGE",
        "OUTCOME",
        "COMPLETED",
        "PROMOTION",
        "APPROVERS",
    ];
    if builds {
        header.push("BUILD");
    }
    let mut table = Table::new(&header);
    for entry in entries {
        let mut row = vec![
            entry.application.clone(),
            entry.version.clone(),
            entry.artifact.clone(),
            format!("{:?}", entry.change),
            format!("{:?}", entry.outcome),
            entry
                .completed_at
                .as_ref()
                .map_or_else(|| NONE.to_string(), |at| format!("{} ago", age(now, at))),
            entry.promotion.clone(),
            approved(entry, now),
        ];
        if builds {
            row.push(or_none(build_of(entry).as_deref()));
        }
        table.row(row);
    }
    format!("History of Environment {name}, newest first:\n{}", table.render())
}

/// Who approved a past release: each with whether the API server vouched
/// for them and when (entries recorded before that was kept: names only).
fn approved(entry: &HistoryEntry, now: &Time) -> String {
    if entry.approvals.is_empty() {
        return joined(&entry.approvers);
    }
    entry
        .approvals
        .iter()
        .map(|approval| {
            format!(
                "{} ({}, {} ago)",
                approval.user,
                if approval.verified {
                    "verified"
                } else {
                    "unverified"
                },
                age(now, &approval.at)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
