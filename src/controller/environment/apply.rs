//! Carrying out an Environment's plan on the cluster up to the statuses,
//! with server-side applies that write only what differs, and the look at
//! the pinned workloads right after.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::try_join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::CONTROLLER;
use crate::api::{Environment, Promotion};
use crate::controller::context::{Ctx, FIELD_MANAGER, await_cached};
use crate::controller::{Error, gitops, workloads};
use crate::core::config;
use crate::core::environment::{Plan, RenderedConfigMap};
use crate::core::gates::verification;
use crate::core::reasons::EventReason;
use crate::core::workload::{Workload, WorkloadId};
use crate::reconcile::Dereferenced;

/// A workload written, with the resourceVersion it had before.
pub(super) type Pinned = (Option<String>, Workload);

fn owner(environment: &Environment) -> Option<OwnerReference> {
    environment.controller_owner_ref(&()).map(|mut owner| {
        owner.controller = Some(false);
        owner.block_owner_deletion = Some(false);
        owner
    })
}

/// Creates the Promotions autoPromote decided on the hub, each announced by
/// an Event; one that exists already (created by an earlier reconcile) is
/// left as it is.
pub(in crate::controller) async fn create_auto_promotions(
    ctx: &Ctx,
    promotions: &[Promotion],
    controller: &'static str,
) -> Result<(), Error> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    for promotion in promotions {
        let api: Api<Promotion> =
            Api::namespaced(ctx.hub.clone(), &promotion.namespace().unwrap_or_default());
        match api.create(&params, promotion).await {
            Ok(created) => {
                ctx.metrics.write(controller);
                ctx.event(
                    &created,
                    EventReason::AutoPromoted,
                    format!(
                        "{} qualifies for {}",
                        created.spec.artifact, created.spec.environment
                    ),
                );
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(Error::Kube(error)),
        }
    }
    Ok(())
}

/// Carries out `plan` up to the statuses: new Promotions, configuration
/// snapshots (`snapshots` are those there are), rendered ConfigMaps and
/// workload pins, writing only what differs. Returns the workloads
/// written.
pub(super) async fn write_objects(
    ctx: &Ctx,
    dereferenced: &Dereferenced,
    snapshots: &[Arc<ConfigMap>],
    plan: &Plan,
) -> Result<Vec<Pinned>, Error> {
    let environment = dereferenced.environment.as_ref();
    let namespace = environment.namespace().unwrap_or_default();
    let name = environment.name_any();
    let apply = PatchParams::apply(FIELD_MANAGER).force();

    create_auto_promotions(ctx, &plan.new_promotions, CONTROLLER).await?;

    // Configuration snapshots first: a rollback must never find its configuration gone.
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.local.clone(), &namespace);
    let wanted: BTreeSet<String> = plan
        .config_history
        .iter()
        .map(|c| config::snapshot_name(&name, &c.hash))
        .collect();
    for rendered in &plan.config_history {
        let snapshot = config::snapshot_name(&name, &rendered.hash);
        if snapshots.iter().any(|cm| cm.name_any() == snapshot) {
            continue;
        }
        let config_map = config::snapshot_config_map(&name, &namespace, rendered, owner(environment));
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match config_maps.create(&params, &config_map).await {
            Ok(_) => ctx.metrics.write(CONTROLLER),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(Error::Kube(error)),
        }
    }
    for stale in snapshots.iter().filter(|cm| !wanted.contains(&cm.name_any())) {
        match config_maps
            .delete(&stale.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => ctx.metrics.write(CONTROLLER),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(Error::Kube(error)),
        }
    }

    for rendered in &plan.config_maps {
        apply_rendered_config_map(ctx, environment, rendered, &apply).await?;
    }

    // The workloads at once: fewer round trips on the way to `Succeeded`.
    let pin_writes = plan.pins.iter().filter_map(|pin| {
        let id = pin.id();
        let live = current_workload(ctx, &id, dereferenced.workloads.get(&id));
        if live
            .as_ref()
            .is_some_and(|workload| pin.is_satisfied_by(workload))
        {
            return None;
        }
        let apply = &apply;
        Some(async move {
            let written = workloads::apply(&ctx.local, pin, apply)
                .await
                .map_err(Error::Kube)?;
            ctx.metrics.write(CONTROLLER);
            // Told only once pinned again: a failed apply is retried and told then.
            if let Some(live) = &live {
                gitops::tell(ctx, environment, live, pin);
            }
            Ok::<_, Error>((live.and_then(|w| w.metadata().resource_version.clone()), written))
        })
    });
    try_join_all(pin_writes).await
}

/// Applies one rendered ConfigMap unless it already holds exactly this data.
async fn apply_rendered_config_map(
    ctx: &Ctx,
    environment: &Environment,
    rendered: &RenderedConfigMap,
    params: &PatchParams,
) -> Result<(), Error> {
    let name = environment.name_any();
    let cached = ctx
        .stores
        .config_maps
        .get(&ObjectRef::new(&rendered.name).within(&rendered.namespace));
    if cached.is_some_and(|live| rendered.is_satisfied_by(&live, &name)) {
        return Ok(());
    }
    let body = rendered.object(&name, &environment.namespace().unwrap_or_default());
    let api: Api<ConfigMap> = Api::namespaced(ctx.local.clone(), &rendered.namespace);
    api.patch(&rendered.name, params, &Patch::Apply(&body))
        .await
        .map_err(Error::Kube)?;
    ctx.metrics.write(CONTROLLER);
    Ok(())
}

/// Creates the verification Jobs the plan asks for (one that exists already
/// is left alone) and deletes finished ones beyond those kept. A Job the API
/// server refuses is told on its Promotion and tried again later; the step
/// fails once its timeout has passed without the Job.
pub(super) async fn write_jobs(ctx: &Ctx, plan: &Plan, promotions: &[Arc<Promotion>]) -> Result<(), Error> {
    for job in &plan.jobs {
        let namespace = job.namespace().unwrap_or_default();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match Api::<Job>::namespaced(ctx.local.clone(), &namespace)
            .create(&params, job)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
                let promotion = job
                    .annotations()
                    .get(verification::ANNOTATION_PROMOTION)
                    .and_then(|name| promotions.iter().find(|p| &p.name_any() == name));
                if let Some(promotion) = promotion {
                    ctx.event(
                        promotion.as_ref(),
                        EventReason::VerificationJobRefused,
                        format!(
                            "cannot create Job {namespace}/{}: {}",
                            job.name_any(),
                            status.message
                        ),
                    );
                }
            }
            Err(error) => return Err(Error::Kube(error)),
        }
    }
    for (namespace, name) in &plan.delete_jobs {
        match Api::<Job>::namespaced(ctx.local.clone(), namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(Error::Kube(error)),
        }
    }
    Ok(())
}

/// The target workloads right after the `pinned` writes, for the look
/// right after pinning ([`crate::core::environment::settle`]): Deployments
/// as cached once the cache holds the writes, the other kinds as written.
pub(super) async fn observe_after_pin(
    ctx: &Ctx,
    dereferenced: &Dereferenced,
    pinned: Vec<Pinned>,
) -> BTreeMap<WorkloadId, Workload> {
    let mut written: BTreeMap<WorkloadId, Workload> = BTreeMap::new();
    for (before, workload) in pinned {
        match &workload {
            Workload::Deployment(deployment) => {
                await_cached(&ctx.stores.deployments, before.as_deref(), deployment).await
            }
            _ => {
                written.insert(workload.id(), workload);
            }
        }
    }
    // Events already received (a rollout's status right behind the
    // pin) get their turn to reach the cache first.
    tokio::task::yield_now().await;
    dereferenced
        .workloads
        .iter()
        .filter_map(|(id, known)| {
            let current = match written.remove(id) {
                Some(workload) => workload,
                None => current_workload(ctx, id, Some(known))?,
            };
            Some((id.clone(), current))
        })
        .collect()
}

/// A target workload as cached now, else as this reconcile `known` it
/// (read before Hoist labelled it, so not in the cache yet).
fn current_workload(ctx: &Ctx, id: &WorkloadId, known: Option<&Workload>) -> Option<Workload> {
    let cached = match id.kind {
        crate::api::WorkloadKind::Deployment => ctx
            .stores
            .deployments
            .get(&ObjectRef::new(&id.name).within(&id.namespace))
            .map(|cached| Workload::Deployment(cached.as_ref().clone())),
        _ => ctx.stores.workloads.get(id),
    };
    cached.or_else(|| known.cloned())
}
