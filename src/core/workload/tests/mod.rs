//! The pin on every kind, and each kind's rollout at exact instants of its
//! controller's status, in the shape that controller writes it.

mod argo_rollout;
mod cron_job;
mod daemon_set;
mod deployment;
mod pin;
mod stateful_set;

use super::*;

/// A workload of `kind` read from YAML.
fn workload(kind: WorkloadKind, text: &str) -> Workload {
    fn parsed<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).expect("fixture parses")
    }
    match kind {
        WorkloadKind::Deployment => Workload::Deployment(parsed(text)),
        WorkloadKind::StatefulSet => Workload::StatefulSet(parsed(text)),
        WorkloadKind::DaemonSet => Workload::DaemonSet(parsed(text)),
        WorkloadKind::CronJob => Workload::CronJob(parsed(text)),
        WorkloadKind::Rollout => Workload::Rollout(parsed(text)),
    }
}

/// `text` with `status` replaced by the YAML `status` (indented as given).
fn with_status(kind: WorkloadKind, text: &str, status: &str) -> Workload {
    workload(kind, &format!("{text}\nstatus:\n{status}"))
}
