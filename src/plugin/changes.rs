//! `kubectl hoist changes`: what changed between two releases of an
//! application in an Environment — the version step, the commit range,
//! each component's digest and the configuration keys — from the
//! Environment's history and the configuration snapshots the operator keeps.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::table::{build, or_none, short_commit, short_digest};
use super::{PluginError, get};
use crate::api::{Artifact, ChangeKind, Environment, HistoryEntry, Phase, VersionScheme};
use crate::core::config::{self, ConfigKeyChange, Presence, RenderedConfig};
use crate::core::version;

/// Which releases `changes` compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only this application (required to tell releases apart when FROM
    /// or TO could name releases of several).
    pub application: Option<String>,
    /// The older release, by Artifact name or version.
    pub from: Option<String>,
    /// The newer release, by Artifact name or version.
    pub to: Option<String>,
}

/// What changed from one release of an application to a later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub environment: String,
    pub from: HistoryEntry,
    pub to: HistoryEntry,
    /// The version step as people say it.
    pub step: String,
    pub commits: Commits,
    /// Per component: its digest before and after (`None` when it was
    /// not part of that release).
    pub images: Vec<(String, Option<String>, Option<String>)>,
    pub configuration: Configuration,
}

/// The source commits of two releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commits {
    /// The same commit.
    Same(String),
    /// `from..to` in one repository, with a compare link when the
    /// repository is a GitHub- or GitLab-style URL.
    Range {
        from: String,
        to: String,
        link: Option<String>,
    },
    /// Commits of two different repositories.
    Moved {
        from: (String, String),
        to: (String, String),
    },
    /// At least one release has no recorded commit.
    Unknown,
}

/// The configuration of two releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configuration {
    /// The same configuration hash (or neither release had one).
    Unchanged(Option<String>),
    /// Both snapshots found: each key that differs.
    Changed {
        from: String,
        to: String,
        keys: Vec<ConfigKeyChange>,
    },
    /// The hashes differ but a snapshot is gone (pruned past the history,
    /// or deleted) or may not be read: which keys changed cannot be told,
    /// for the reason given.
    Unknown {
        from: Option<String>,
        to: Option<String>,
        why: String,
    },
}

/// `changes ENVIRONMENT [--application A] [FROM] [TO]`: one block per
/// application compared (all applications of the history when neither
/// `--application` nor FROM/TO is given).
pub async fn changes(
    client: &Client,
    namespace: &str,
    environment: &str,
    selection: &Selection,
) -> Result<String, PluginError> {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environment = get(&api, "Environment", environment, namespace).await?;
    let pairs = select(&environment, selection)?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let name = environment.name_any();
    let mut out = String::new();
    for pair in pairs {
        let (from, to) = match pair {
            Pair::Two(from, to) => (from, to),
            Pair::One(application) => {
                let _ = writeln!(
                    out,
                    "{application} in {name}: only one release in status.history, nothing to compare"
                );
                continue;
            }
        };
        let mut snapshots = Vec::new();
        let mut unreadable = None;
        for hash in [&from.config_hash, &to.config_hash].into_iter().flatten() {
            let snapshot = config::snapshot_name(&name, hash);
            match config_maps.get_opt(&snapshot).await {
                Ok(config_map) => snapshots.extend(config_map.as_ref().and_then(config::from_snapshot)),
                // Reading ConfigMaps is a grant of its own: without it the rest still answers.
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    unreadable = Some(format!(
                        "you may not read ConfigMaps in namespace {namespace} (RBAC verb get on configmaps)"
                    ));
                }
                Err(source) => {
                    return Err(PluginError::Api {
                        action: format!("read ConfigMap {snapshot} in namespace {namespace}"),
                        source,
                    });
                }
            }
        }
        // The scheme that orders versions is the Artifact's; a deleted one reads as SemVer.
        let scheme = artifacts
            .get_opt(&to.artifact)
            .await
            .ok()
            .flatten()
            .map(|artifact| artifact.spec.version_scheme)
            .unwrap_or_default();
        let mut changes = plan_changes(&name, from, to, scheme, &snapshots);
        if let (Some(reason), Configuration::Unknown { why, .. }) = (unreadable, &mut changes.configuration) {
            *why = reason;
        }
        out.push_str(&changes.to_string());
    }
    Ok(out)
}

/// Two releases to compare, or an application with only one.
#[derive(Debug, PartialEq)]
pub enum Pair<'e> {
    Two(&'e HistoryEntry, &'e HistoryEntry),
    One(String),
}

/// The releases `selection` names in `environment`'s history (newest
/// first): TO is the newest Succeeded release matching it (default: the
/// newest), FROM the newest Succeeded release older than TO matching it
/// (default: the one just before TO).
pub fn select<'e>(environment: &'e Environment, selection: &Selection) -> Result<Vec<Pair<'e>>, PluginError> {
    let name = environment.name_any();
    let history: Vec<&HistoryEntry> = environment
        .status
        .iter()
        .flat_map(|status| &status.history)
        .filter(|entry| entry.outcome == Phase::Succeeded)
        .collect();
    let matches = |entry: &HistoryEntry, wanted: &str| entry.artifact == wanted || entry.version == wanted;
    let applications: BTreeSet<&str> = match &selection.application {
        Some(application) => [application.as_str()].into(),
        // The applications with a release matching each of FROM and TO given.
        None => history
            .iter()
            .map(|entry| entry.application.as_str())
            .filter(|application| {
                [&selection.from, &selection.to]
                    .into_iter()
                    .flatten()
                    .all(|wanted| {
                        history
                            .iter()
                            .any(|entry| entry.application == *application && matches(entry, wanted))
                    })
            })
            .collect(),
    };
    if selection.application.is_none()
        && (selection.from.is_some() || selection.to.is_some())
        && applications.len() > 1
    {
        let release = selection
            .to
            .clone()
            .or_else(|| selection.from.clone())
            .unwrap_or_default();
        return Err(PluginError::Ambiguous {
            release,
            environment: name,
            applications: applications.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let mut pairs = Vec::new();
    for application in &applications {
        let releases: Vec<&HistoryEntry> = history
            .iter()
            .copied()
            .filter(|entry| entry.application == *application)
            .collect();
        let not_found = |release: &str| PluginError::NoSuchRelease {
            application: application.to_string(),
            environment: name.clone(),
            release: release.to_string(),
        };
        let to_index = match &selection.to {
            Some(wanted) => releases
                .iter()
                .position(|entry| matches(entry, wanted))
                .ok_or_else(|| not_found(wanted))?,
            None if releases.is_empty() => {
                return Err(PluginError::NoReleases {
                    application: application.to_string(),
                    environment: name,
                });
            }
            None => 0,
        };
        let older = releases.iter().enumerate().skip(to_index + 1);
        let from = match &selection.from {
            Some(wanted) => Some(
                older
                    .clone()
                    .find(|(_, entry)| matches(entry, wanted))
                    .map(|(_, entry)| *entry)
                    .ok_or_else(|| {
                        not_found(&format!("{wanted} (older than {})", releases[to_index].version))
                    })?,
            ),
            None => older.clone().next().map(|(_, entry)| *entry),
        };
        pairs.push(match from {
            Some(from) => Pair::Two(from, releases[to_index]),
            None => Pair::One(application.to_string()),
        });
    }
    if pairs.is_empty() {
        return Err(match selection.to.clone().or_else(|| selection.from.clone()) {
            Some(release) => PluginError::NoSuchRelease {
                application: "any application".into(),
                environment: name,
                release,
            },
            None => PluginError::NoReleases {
                application: "any application".into(),
                environment: name,
            },
        });
    }
    Ok(pairs)
}

/// What changed from `from` to `to` in Environment `environment`, with the
/// configuration snapshots found (`snapshots` may lack either).
pub fn plan_changes(
    environment: &str,
    from: &HistoryEntry,
    to: &HistoryEntry,
    scheme: VersionScheme,
    snapshots: &[RenderedConfig],
) -> Changes {
    let size = version::describe(
        version::bump(scheme, Some(&from.version), &to.version),
        version::direction(scheme, Some(&from.version), &to.version),
    );
    let step = match to.change {
        ChangeKind::Configuration => "configuration change only, the same images".to_string(),
        ChangeKind::Rollback => format!("rollback to an earlier release, {size}"),
        ChangeKind::Release => size,
    };
    let components: BTreeSet<&String> = from
        .images
        .iter()
        .chain(&to.images)
        .map(|image| &image.component)
        .collect();
    let digest_of = |entry: &HistoryEntry, component: &str| {
        entry
            .images
            .iter()
            .find(|image| image.component == component)
            .map(|image| image.digest.clone())
    };
    let images = components
        .into_iter()
        .map(|component| {
            (
                component.clone(),
                digest_of(from, component),
                digest_of(to, component),
            )
        })
        .collect();
    let find = |hash: &Option<String>| {
        hash.as_ref()
            .and_then(|hash| snapshots.iter().find(|rendered| &rendered.hash == hash))
    };
    let configuration = if from.config_hash == to.config_hash {
        Configuration::Unchanged(to.config_hash.clone())
    } else {
        match (find(&from.config_hash), find(&to.config_hash)) {
            (Some(before), Some(after)) => Configuration::Changed {
                from: before.hash.clone(),
                to: after.hash.clone(),
                keys: config::changes(before, after),
            },
            (before, after) => {
                let missing: Vec<String> = [(&from.config_hash, before), (&to.config_hash, after)]
                    .into_iter()
                    .filter(|(_, found)| found.is_none())
                    .filter_map(|(hash, _)| {
                        hash.as_ref().map(|hash| config::snapshot_name(environment, hash))
                    })
                    .collect();
                Configuration::Unknown {
                    from: from.config_hash.clone(),
                    to: to.config_hash.clone(),
                    why: format!("snapshot {} no longer kept", missing.join(", ")),
                }
            }
        }
    };
    Changes {
        environment: environment.to_string(),
        from: from.clone(),
        to: to.clone(),
        step,
        commits: commits(from, to),
        images,
        configuration,
    }
}

fn commits(from: &HistoryEntry, to: &HistoryEntry) -> Commits {
    let (Some(before), Some(after)) = (&from.source_revision, &to.source_revision) else {
        return Commits::Unknown;
    };
    let repository = |entry: &HistoryEntry| entry.source_repository.clone().unwrap_or_default();
    if repository(from) != repository(to) {
        return Commits::Moved {
            from: (repository(from), before.clone()),
            to: (repository(to), after.clone()),
        };
    }
    if before == after {
        return Commits::Same(after.clone());
    }
    Commits::Range {
        from: before.clone(),
        to: after.clone(),
        link: to
            .source_repository
            .as_deref()
            .and_then(|repository| compare_link(repository, before, after)),
    }
}

/// The web page comparing two commits of `repository`, when it is a
/// GitHub-style (`…/compare/A...B`) or GitLab-style (`…/-/compare/A...B`)
/// URL, in https or scp-like SSH form (`git@host:group/project.git`).
pub fn compare_link(repository: &str, from: &str, to: &str) -> Option<String> {
    let repository = repository.trim().trim_end_matches('/');
    let repository = repository.strip_suffix(".git").unwrap_or(repository);
    let (host, path) = if let Some(rest) = repository
        .strip_prefix("https://")
        .or_else(|| repository.strip_prefix("http://"))
        .or_else(|| repository.strip_prefix("ssh://"))
    {
        let rest = rest.split_once('@').map_or(rest, |(_, rest)| rest);
        rest.split_once('/')?
    } else {
        let rest = repository.split_once('@').map_or(repository, |(_, rest)| rest);
        rest.split_once(':')?
    };
    let host = host.split(':').next().unwrap_or(host);
    if path.split('/').filter(|part| !part.is_empty()).count() < 2 {
        return None;
    }
    let base = format!("https://{host}/{path}");
    let host = host.to_ascii_lowercase();
    if host == "github.com" || host.starts_with("github.") {
        Some(format!("{base}/compare/{from}...{to}"))
    } else if host == "gitlab.com" || host.starts_with("gitlab.") {
        Some(format!("{base}/-/compare/{from}...{to}"))
    } else {
        None
    }
}

/// A value as it shows in one line: quoted, escapes for newlines, long
/// values cut with how long they are.
fn shown(value: &str) -> String {
    const MAX: usize = 60;
    let quoted = format!("{value:?}");
    if quoted.chars().count() <= MAX {
        return quoted;
    }
    let cut: String = quoted.chars().take(MAX - 4).collect();
    format!("{cut}…\" ({} characters)", value.chars().count())
}

fn presence(change: Presence) -> &'static str {
    match change {
        Presence::Added => "added",
        Presence::Removed => "removed",
        Presence::Changed => "changed",
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = (&self.from, &self.to);
        writeln!(
            f,
            "{} in {}: {} → {} ({})",
            to.application, self.environment, from.version, to.version, self.step
        )?;
        for (label, entry) in [("from", from), ("to", to)] {
            let when = entry
                .promoted_at
                .as_ref()
                .map_or_else(String::new, |at| format!(", {}", at.0));
            let what = match entry.change {
                ChangeKind::Configuration => format!("configuration of Promotion {}", entry.promotion),
                _ => format!("Promotion {}", entry.promotion),
            };
            writeln!(f, "  {label:<5} {} ({what}{when})", entry.artifact)?;
        }
        let builds = [from, to].map(|entry| build(entry.build_id.as_deref(), entry.build_url.as_deref()));
        if let [before, after] = &builds
            && (before.is_some() || after.is_some())
        {
            if before == after {
                writeln!(f, "  build: {} (unchanged)", or_none(after.as_deref()))?;
            } else {
                writeln!(
                    f,
                    "  builds: {} → {}",
                    or_none(before.as_deref()),
                    or_none(after.as_deref())
                )?;
            }
        }
        match &self.commits {
            Commits::Same(commit) => writeln!(f, "  commit: {} (unchanged)", short_commit(commit))?,
            Commits::Range { from, to, link } => {
                writeln!(f, "  commits: {}..{}", short_commit(from), short_commit(to))?;
                if let Some(link) = link {
                    writeln!(f, "  compare: {link}")?;
                }
            }
            Commits::Moved { from, to } => writeln!(
                f,
                "  commits: {} of {} → {} of {}",
                short_commit(&from.1),
                from.0,
                short_commit(&to.1),
                to.0
            )?,
            Commits::Unknown => writeln!(f, "  commits: not recorded for both releases")?,
        }
        writeln!(f, "  images:")?;
        let width = self.images.iter().map(|(c, _, _)| c.len()).max().unwrap_or(0);
        for (component, before, after) in &self.images {
            let line = match (before, after) {
                (Some(before), Some(after)) if before == after => {
                    format!("unchanged ({})", short_digest(after))
                }
                (Some(before), Some(after)) => format!("{} → {}", short_digest(before), short_digest(after)),
                (None, Some(after)) => format!("added ({})", short_digest(after)),
                (Some(before), None) => format!("removed (was {})", short_digest(before)),
                (None, None) => "unknown".to_string(),
            };
            writeln!(f, "    {component:<width$}  {line}")?;
        }
        match &self.configuration {
            Configuration::Unchanged(Some(hash)) => {
                writeln!(f, "  configuration: unchanged ({})", short_digest(hash))?
            }
            Configuration::Unchanged(None) => writeln!(f, "  configuration: none")?,
            Configuration::Changed { from, to, keys } => {
                writeln!(
                    f,
                    "  configuration: {} → {}",
                    short_digest(from),
                    short_digest(to)
                )?;
                for key in keys {
                    let line = match key {
                        ConfigKeyChange::Added { key, value } => format!("+ {key}: {}", shown(value)),
                        ConfigKeyChange::Removed { key, value } => format!("- {key}: {}", shown(value)),
                        ConfigKeyChange::Changed { key, from, to } => {
                            format!("~ {key}: {} → {}", shown(from), shown(to))
                        }
                        ConfigKeyChange::Binary { key, change } => {
                            format!("{} {key}: binary, {}", marker(*change), presence(*change))
                        }
                        ConfigKeyChange::Secret {
                            name,
                            change,
                            keys,
                            added,
                            removed,
                        } => {
                            let mut line = format!(
                                "{} Secret {name}: {} (keys {}",
                                marker(*change),
                                presence(*change),
                                keys.join(", ")
                            );
                            if !added.is_empty() {
                                line.push_str(&format!("; new {}", added.join(", ")));
                            }
                            if !removed.is_empty() {
                                line.push_str(&format!("; gone {}", removed.join(", ")));
                            }
                            line.push_str("; values never shown)");
                            line
                        }
                        ConfigKeyChange::Unrecorded => {
                            "~ a referenced Secret changed (its snapshot predates Secret records)".into()
                        }
                    };
                    writeln!(f, "    {line}")?;
                }
            }
            Configuration::Unknown { from, to, why } => writeln!(
                f,
                "  configuration: {} → {}; which keys changed cannot be told: {why}",
                from.as_deref().map_or_else(|| "none".into(), short_digest),
                to.as_deref().map_or_else(|| "none".into(), short_digest),
            )?,
        }
        Ok(())
    }
}

fn marker(change: Presence) -> char {
    match change {
        Presence::Added => '+',
        Presence::Removed => '-',
        Presence::Changed => '~',
    }
}

#[cfg(test)]
mod tests;
