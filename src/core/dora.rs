//! The four DORA figures of an Environment, from its status.history alone,
//! so they survive restarts and Artifacts deleted by retention:
//! deployments by outcome (deployment frequency), lead time for changes
//! (from the commit's time, else the build's, to success), change failure
//! rate (Failed and RolledBack, including failed verifications, over all)
//! and time to restore (from a failed release to the next healthy one).
//!
//! A deployment is a Promotion that ended here; a configuration change
//! alone is not one, but its healthy rollout may restore a failure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{ChangeKind, HistoryEntry, Phase};

/// How a deployment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Succeeded,
    /// The rollout or its verification failed and the release stayed.
    Failed,
    /// The rollout or its verification failed and the previous release was restored.
    RolledBack,
}

impl Outcome {
    /// The outcome of a Promotion's history entry; None for a
    /// configuration change.
    pub fn of(entry: &HistoryEntry) -> Option<Self> {
        if entry.change == ChangeKind::Configuration {
            return None;
        }
        match entry.outcome {
            Phase::Succeeded => Some(Outcome::Succeeded),
            Phase::Failed => Some(Outcome::Failed),
            Phase::RolledBack => Some(Outcome::RolledBack),
            _ => None,
        }
    }

    /// The phase's name, as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
            Outcome::RolledBack => "RolledBack",
        }
    }
}

/// A Promotion that ended in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub application: String,
    pub outcome: Outcome,
    /// When it ended (when it started, for entries without an end).
    pub at: Timestamp,
    /// Succeeded releases (not rollbacks): from the commit (else the build) to success.
    pub lead_time: Option<SignedDuration>,
}

/// A failed release and the moment the application ran healthy again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    pub application: String,
    pub failed_at: Timestamp,
    pub restored_at: Timestamp,
}

impl Restore {
    pub fn duration(&self) -> SignedDuration {
        self.restored_at.duration_since(self.failed_at)
    }
}

fn instant(time: Option<&Time>) -> Option<Timestamp> {
    time.map(|time| time.0)
}

/// The deployment an entry records, if it records one.
fn deployment(entry: &HistoryEntry) -> Option<Deployment> {
    let outcome = Outcome::of(entry)?;
    let at = instant(entry.completed_at.as_ref()).or(instant(entry.promoted_at.as_ref()))?;
    let lead_time = (outcome == Outcome::Succeeded && entry.change == ChangeKind::Release)
        .then(|| {
            let start = instant(entry.committed_at.as_ref()).or(instant(entry.built_at.as_ref()))?;
            let completed = instant(entry.completed_at.as_ref())?;
            Some(completed.duration_since(start)).filter(|lead| !lead.is_negative())
        })
        .flatten();
    Some(Deployment {
        application: entry.application.clone(),
        outcome,
        at,
        lead_time,
    })
}

/// The deployments of `history`, newest first.
pub fn deployments(history: &[HistoryEntry]) -> Vec<Deployment> {
    history.iter().filter_map(deployment).collect()
}

/// The failures of `history` that were restored, oldest first. A failure
/// starts when a release ends Failed or RolledBack (failures in a row are
/// one); it is restored when a rolled-back-to release is healthy again
/// (the entry's restoredAt), a later Promotion succeeds, or a later
/// configuration change rolls out healthy.
pub fn restores(history: &[HistoryEntry]) -> Vec<Restore> {
    let mut failing: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut restores = Vec::new();
    for entry in history.iter().rev() {
        let application = entry.application.as_str();
        let completed = instant(entry.completed_at.as_ref());
        let restored = match entry.outcome {
            Phase::Failed | Phase::RolledBack => {
                if let Some(completed) = completed {
                    failing.entry(application).or_insert(completed);
                }
                instant(entry.restored_at.as_ref())
            }
            Phase::Succeeded => completed,
            _ => None,
        };
        if let Some(restored_at) = restored
            && let Some(failed_at) = failing.remove(application)
        {
            restores.push(Restore {
                application: application.to_owned(),
                failed_at,
                restored_at,
            });
        }
    }
    restores
}

/// The figures of one application in one environment over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub succeeded: u32,
    pub failed: u32,
    pub rolled_back: u32,
    /// Lead times of the releases that succeeded, shortest first.
    pub lead_times: Vec<SignedDuration>,
    /// Times to restore, shortest first.
    pub restores: Vec<SignedDuration>,
}

impl Figures {
    pub fn deployments(&self) -> u32 {
        self.succeeded + self.failed + self.rolled_back
    }

    /// Failed and RolledBack over all deployments; None without deployments.
    pub fn change_failure_rate(&self) -> Option<f64> {
        let all = self.deployments();
        (all > 0).then(|| f64::from(self.failed + self.rolled_back) / f64::from(all))
    }

    /// Deployments per day over `window`.
    pub fn per_day(&self, window: SignedDuration) -> f64 {
        let days = window.as_secs_f64() / 86_400.0;
        if days > 0.0 {
            f64::from(self.deployments()) / days
        } else {
            0.0
        }
    }

    pub fn median_lead_time(&self) -> Option<SignedDuration> {
        median(&self.lead_times)
    }

    pub fn median_time_to_restore(&self) -> Option<SignedDuration> {
        median(&self.restores)
    }
}

/// The middle of sorted `values` (the mean of the two middles of an even count).
fn median(values: &[SignedDuration]) -> Option<SignedDuration> {
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => values.get(middle).copied(),
        _ => {
            let (low, high) = (values.get(middle - 1)?, values.get(middle)?);
            Some(*low + (*high - *low) / 2)
        }
    }
}

/// The figures of each application of `history`: the deployments that
/// ended and the failures restored at or after `since`.
pub fn figures(history: &[HistoryEntry], since: Timestamp) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for deployment in deployments(history).into_iter().filter(|d| d.at >= since) {
        let figures = out.entry(deployment.application).or_default();
        match deployment.outcome {
            Outcome::Succeeded => figures.succeeded += 1,
            Outcome::Failed => figures.failed += 1,
            Outcome::RolledBack => figures.rolled_back += 1,
        }
        figures.lead_times.extend(deployment.lead_time);
    }
    for restore in restores(history).into_iter().filter(|r| r.restored_at >= since) {
        let duration = restore.duration();
        out.entry(restore.application)
            .or_default()
            .restores
            .push(duration);
    }
    for figures in out.values_mut() {
        figures.lead_times.sort();
        figures.restores.sort();
    }
    out
}

/// When a history at its limit of `limit` entries begins: older entries
/// were dropped, so figures reach back no further. None while the history
/// holds everything since the environment's first release.
pub fn reaches_back(history: &[HistoryEntry], limit: i32) -> Option<Timestamp> {
    let full = usize::try_from(limit).is_ok_and(|limit| history.len() >= limit);
    let oldest = history.last()?;
    full.then(|| instant(oldest.completed_at.as_ref()).or(instant(oldest.promoted_at.as_ref())))
        .flatten()
}

/// What one write of an Environment's history newly recorded, for the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Deployment(Deployment),
    Restore {
        application: String,
        duration: SignedDuration,
    },
}

/// What `after` records that none of the histories `known` did:
/// deployments (a Promotion is known by its name and start, as the history
/// takes it once) and restores (known by application and when it was
/// restored). A history written again after a restart or a crash records
/// nothing new, so each outcome is observed once.
pub fn newly_recorded(known: &[&[HistoryEntry]], after: &[HistoryEntry]) -> Vec<Observation> {
    let promotions: BTreeSet<(&str, Option<Timestamp>)> = known
        .iter()
        .flat_map(|history| history.iter())
        .map(|entry| (entry.promotion.as_str(), instant(entry.promoted_at.as_ref())))
        .collect();
    let mut observations: Vec<Observation> = after
        .iter()
        .rev()
        .filter(|entry| {
            !promotions.contains(&(entry.promotion.as_str(), instant(entry.promoted_at.as_ref())))
        })
        .filter_map(deployment)
        .map(Observation::Deployment)
        .collect();
    let restored: BTreeSet<(String, Timestamp)> = known
        .iter()
        .flat_map(|history| restores(history))
        .map(|restore| (restore.application, restore.restored_at))
        .collect();
    observations.extend(
        restores(after)
            .into_iter()
            .filter(|restore| !restored.contains(&(restore.application.clone(), restore.restored_at)))
            .map(|restore| Observation::Restore {
                duration: restore.duration(),
                application: restore.application,
            }),
    );
    observations
}

#[cfg(test)]
mod tests;
