//! Target workloads of every kind: which kinds the cluster serves, the
//! watches and caches of those Hoist labelled (Deployments' is
//! `Stores::deployments`, older than the others), and reading and pinning
//! one through the API.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use kube::runtime::watcher;

use super::cache::{Cache, Watches, keep, no_keys};
use super::namespaces::Watched;

use crate::api::WorkloadKind;
use crate::core::workload::{ArgoRollout, Workload, WorkloadId, WorkloadPin};

/// The workload kinds the API server does not serve (Argo Rollouts not
/// installed, say), found by discovery at start-up. A kind discovery cannot
/// tell about for another reason is taken as served: reading it then says
/// what is wrong.
pub async fn unserved_kinds(client: &Client) -> BTreeSet<WorkloadKind> {
    let mut unserved = BTreeSet::new();
    for kind in WorkloadKind::ALL {
        match client.list_api_group_resources(kind.api_version()).await {
            Ok(resources) if resources.resources.iter().any(|r| r.name == kind.plural()) => {}
            Ok(_) => {
                unserved.insert(kind);
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                unserved.insert(kind);
            }
            Err(error) => {
                tracing::warn!(%error, %kind, "cannot tell whether the kind is served; taking it as served");
            }
        }
    }
    unserved
}

/// Reads the workload `id` through the API.
pub async fn get(client: &Client, id: &WorkloadId) -> Result<Option<Workload>, kube::Error> {
    let namespace = id.namespace.as_str();
    let name = id.name.as_str();
    Ok(match id.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::Deployment),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::StatefulSet),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::DaemonSet),
        WorkloadKind::CronJob => Api::<CronJob>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::CronJob),
        WorkloadKind::Rollout => Api::<ArgoRollout>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::Rollout),
    })
}

/// Applies `pin` (server-side, with `params`); returns the workload as written.
pub async fn apply(
    client: &Client,
    pin: &WorkloadPin,
    params: &PatchParams,
) -> Result<Workload, kube::Error> {
    let body = Patch::Apply(pin.apply_body());
    let namespace = pin.namespace.as_str();
    let name = pin.name.as_str();
    Ok(match pin.kind {
        WorkloadKind::Deployment => Workload::Deployment(
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch(name, params, &body)
                .await?,
        ),
        WorkloadKind::StatefulSet => Workload::StatefulSet(
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .patch(name, params, &body)
                .await?,
        ),
        WorkloadKind::DaemonSet => Workload::DaemonSet(
            Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .patch(name, params, &body)
                .await?,
        ),
        WorkloadKind::CronJob => Workload::CronJob(
            Api::<CronJob>::namespaced(client.clone(), namespace)
                .patch(name, params, &body)
                .await?,
        ),
        WorkloadKind::Rollout => Workload::Rollout(
            Api::<ArgoRollout>::namespaced(client.clone(), namespace)
                .patch(name, params, &body)
                .await?,
        ),
    })
}

/// Caches of the target workloads Hoist labelled, one per kind the cluster
/// serves (the Deployments' cache is the older `Stores::deployments`).
#[derive(Clone, Default)]
pub struct WorkloadCaches {
    pub stateful_sets: Option<Cache<StatefulSet>>,
    pub daemon_sets: Option<Cache<DaemonSet>>,
    pub cron_jobs: Option<Cache<CronJob>>,
    pub rollouts: Option<Cache<ArgoRollout>>,
}

impl WorkloadCaches {
    /// The workload `id` as cached, when its kind is watched and it is labelled.
    pub fn get(&self, id: &WorkloadId) -> Option<Workload> {
        match id.kind {
            WorkloadKind::Deployment => None,
            WorkloadKind::StatefulSet => cached(&self.stateful_sets, id, Workload::StatefulSet),
            WorkloadKind::DaemonSet => cached(&self.daemon_sets, id, Workload::DaemonSet),
            WorkloadKind::CronJob => cached(&self.cron_jobs, id, Workload::CronJob),
            WorkloadKind::Rollout => cached(&self.rollouts, id, Workload::Rollout),
        }
    }
}

fn cached<K: Watched>(
    cache: &Option<Cache<K>>,
    id: &WorkloadId,
    wrap: fn(K) -> Workload,
) -> Option<Workload> {
    let object = cache
        .as_ref()?
        .get(&ObjectRef::new(&id.name).within(&id.namespace))?;
    Some(wrap(object.as_ref().clone()))
}

/// The event streams of [`WorkloadCaches`]' watches, for the Environment
/// controller's triggers.
#[derive(Default)]
pub struct WorkloadEvents {
    pub stateful_sets: Vec<ReflectHandle<StatefulSet>>,
    pub daemon_sets: Vec<ReflectHandle<DaemonSet>>,
    pub cron_jobs: Vec<ReflectHandle<CronJob>>,
    pub rollouts: Vec<ReflectHandle<ArgoRollout>>,
}

/// Watches the workloads of each served kind besides Deployments that carry
/// Hoist's labels (`managed`).
pub fn watch(
    watches: &mut Watches,
    client: &Client,
    managed: &watcher::Config,
    unserved: &BTreeSet<WorkloadKind>,
) -> (WorkloadCaches, WorkloadEvents) {
    let mut caches = WorkloadCaches::default();
    let mut events = WorkloadEvents::default();
    let served = |kind| !unserved.contains(&kind);
    if served(WorkloadKind::StatefulSet) {
        let (cache, handles) = watches.add(
            "statefulsets.apps",
            Api::<StatefulSet>::all(client.clone()),
            managed.clone(),
            1,
            no_keys,
            keep,
        );
        caches.stateful_sets = Some(cache);
        events.stateful_sets = handles;
    }
    if served(WorkloadKind::DaemonSet) {
        let (cache, handles) = watches.add(
            "daemonsets.apps",
            Api::<DaemonSet>::all(client.clone()),
            managed.clone(),
            1,
            no_keys,
            keep,
        );
        caches.daemon_sets = Some(cache);
        events.daemon_sets = handles;
    }
    if served(WorkloadKind::CronJob) {
        let (cache, handles) = watches.add(
            "cronjobs.batch",
            Api::<CronJob>::all(client.clone()),
            managed.clone(),
            1,
            no_keys,
            keep,
        );
        caches.cron_jobs = Some(cache);
        events.cron_jobs = handles;
    }
    if served(WorkloadKind::Rollout) {
        let (cache, handles) = watches.add(
            "rollouts.argoproj.io",
            Api::<ArgoRollout>::all(client.clone()),
            managed.clone(),
            1,
            no_keys,
            keep,
        );
        caches.rollouts = Some(cache);
        events.rollouts = handles;
    }
    (caches, events)
}
