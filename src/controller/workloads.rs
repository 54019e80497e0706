//! Target workloads of the kinds besides Deployments (StatefulSets,
//! DaemonSets, CronJobs, Argo Rollouts' Rollouts): which of them the
//! cluster serves, and reading and pinning one through the API.
//! Deployments are cached by their watch (see `environment::dereference`).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

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
