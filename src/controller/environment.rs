//! The Environment reconciler: builds a snapshot from the caches, lets the
//! core decide, and carries the plan out with server-side applies, writing
//! only what differs from what is there.
//!
//! Order matters for crash safety: Deployments and ConfigMaps are written
//! before the statuses that record them, so a restart at any point either
//! finds the work done (and only records it) or does it again with the same
//! result; a promotion is never lost nor carried out twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::instrument;

use super::Error;
use super::context::{Ctx, FIELD_MANAGER, await_cached};
use super::keys;
use super::supply_chain;
use crate::api::{Artifact, Environment, Promotion};
use crate::core::config::{self, ConfigSources, RenderedConfig, SecretDigest};
use crate::core::environment::{self, Plan, RenderedConfigMap, Snapshot, target_namespace};
use crate::core::gates::verification;
use crate::core::reasons::EventReason;

const CONTROLLER: &str = "environment";
/// How often an idle Environment is looked at again (watches normally trigger).
const RESYNC: Duration = Duration::from_secs(300);
/// How often a rollout is looked at while one is under way, besides watch events.
const VERIFYING: Duration = Duration::from_secs(15);

/// Base ConfigMaps and Secret digests of one namespace, for a reconcile.
struct Fetched {
    config_maps: BTreeMap<String, Arc<ConfigMap>>,
    secrets: BTreeMap<String, SecretDigest>,
}

impl ConfigSources for Fetched {
    fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.config_maps.get(name).map(Arc::as_ref)
    }
    fn secret(&self, name: &str) -> Option<SecretDigest> {
        self.secrets.get(name).cloned()
    }
}

#[instrument(skip_all, fields(name = %environment.name_any(), namespace = environment.namespace(), generation = environment.metadata.generation))]
pub async fn reconcile(environment: Arc<Environment>, ctx: Ctx) -> Result<Action, Error> {
    // Runs only once every cache has listed (see `controller::reconciler`):
    // deciding earlier would take existing snapshots and Deployments for
    // missing ones and write them again.
    let namespace = environment.namespace().unwrap_or_default();
    let name = environment.name_any();
    let stores = &ctx.stores;

    let environments = stores.environments.indexed(&keys::in_namespace(&namespace));
    let promotions = stores
        .promotions
        .indexed(&keys::into_environment(&namespace, &name));
    // The Artifacts of the applications it runs, and any its Promotions name.
    let mut artifacts: BTreeMap<String, Arc<Artifact>> = BTreeMap::new();
    let applications: BTreeSet<&String> = environment.spec.targets.iter().map(|t| &t.application).collect();
    for application in applications {
        for artifact in stores
            .artifacts
            .indexed(&keys::application(&namespace, application))
        {
            artifacts.insert(artifact.name_any(), artifact);
        }
    }
    for promotion in &promotions {
        if artifacts.contains_key(&promotion.spec.artifact) {
            continue;
        }
        if let Some(artifact) = stores
            .artifacts
            .get(&ObjectRef::new(&promotion.spec.artifact).within(&namespace))
        {
            artifacts.insert(promotion.spec.artifact.clone(), artifact);
            continue;
        }
        // An Artifact applied with its Promotion may reach the cache after
        // it: a Promotion is rejected for a missing Artifact only once the
        // API server says there is none.
        let open = promotion.status.as_ref().is_none_or(|s| !s.phase.is_terminal());
        if open
            && let Some(artifact) = Api::<Artifact>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&promotion.spec.artifact)
                .await
                .map_err(Error::Kube)?
        {
            artifacts.insert(promotion.spec.artifact.clone(), Arc::new(artifact));
        }
    }

    // Target Deployments: from the cache once Hoist labelled them, read otherwise.
    let mut deployments: BTreeMap<(String, String), Deployment> = BTreeMap::new();
    let mut target_namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    for target in &environment.spec.targets {
        let target_ns = target_namespace(&environment, target);
        let key = (target_ns.clone(), target.deployment.name.clone());
        if deployments.contains_key(&key) {
            continue;
        }
        let cached = stores
            .deployments
            .get(&ObjectRef::new(&target.deployment.name).within(&target_ns));
        let deployment = match cached {
            Some(deployment) => Some(deployment.as_ref().clone()),
            None => Api::<Deployment>::namespaced(ctx.client.clone(), &target_ns)
                .get_opt(&target.deployment.name)
                .await
                .map_err(Error::Kube)?,
        };
        if let Some(deployment) = deployment {
            deployments.insert(key, deployment);
        }
        if target_ns != namespace
            && !target_namespaces.contains_key(&target_ns)
            && let Some(ns) = stores.namespaces.get(&ObjectRef::new(&target_ns))
        {
            target_namespaces.insert(target_ns.clone(), ns.as_ref().clone());
        }
    }

    let sources = fetch_config_sources(&ctx, &environment).await?;
    let configs = environment
        .spec
        .config
        .iter()
        .map(|c| (c.application.clone(), config::render(c, &namespace, &sources)))
        .collect();
    let snapshots: Vec<Arc<ConfigMap>> = stores
        .config_maps
        .indexed(&keys::snapshots(&namespace, &name))
        .into_iter()
        // Snapshots live in the Environment's own namespace.
        .filter(|cm| cm.namespace().as_deref() == Some(&namespace))
        .collect();
    let config_history: BTreeMap<String, RenderedConfig> = snapshots
        .iter()
        .filter_map(|cm| config::from_snapshot(cm))
        .map(|rendered| (rendered.hash.clone(), rendered))
        .collect();

    let jobs: Vec<Arc<Job>> = stores.jobs.indexed(&keys::verification_jobs(&namespace, &name));
    let key_secrets = supply_chain::key_secrets(&ctx, &environment).await?;
    // Artifacts as the supply-chain checks of this reconcile recorded them.
    let checked: BTreeMap<String, Artifact>;
    let mut snapshot = Snapshot {
        environment: &environment,
        environments: environments.iter().map(|e| (e.name_any(), e.as_ref())).collect(),
        artifacts: artifacts
            .iter()
            .map(|(name, a)| (name.clone(), a.as_ref()))
            .collect(),
        promotions: promotions.iter().map(|p| p.as_ref()).collect(),
        deployments: deployments.iter().map(|(k, d)| (k.clone(), d)).collect(),
        namespaces: target_namespaces.iter().map(|(k, n)| (k.clone(), n)).collect(),
        configs,
        config_history,
        approvals: stores.approval_trust(),
        operator: ctx.identity.clone(),
        jobs: jobs
            .iter()
            .map(|job| {
                (
                    (job.namespace().unwrap_or_default(), job.name_any()),
                    job.as_ref(),
                )
            })
            .collect(),
        measurements: BTreeMap::new(),
        key_secrets,
        now: ctx.now(),
    };
    let mut plan = environment::plan(&snapshot);
    if !plan.queries.is_empty() {
        // Verification measurements are due: take them, then decide with them.
        snapshot.measurements = ctx
            .prometheus
            .measure_all(&ctx.client, &namespace, &plan.queries, snapshot.now.0)
            .await;
        plan = environment::plan(&snapshot);
    }
    if !plan.checks.is_empty() {
        // Signatures, provenance or scans of a digest are due: check them
        // once, record them on the Artifacts, then decide with the records.
        checked = supply_chain::run(&ctx, &namespace, &plan.checks, &artifacts).await?;
        for (name, artifact) in &checked {
            snapshot.artifacts.insert(name.clone(), artifact);
        }
        plan = environment::plan(&snapshot);
    }
    let pinned = write_objects(&ctx, &environment, &deployments, &snapshots, &plan).await?;
    write_jobs(&ctx, &plan, &promotions).await?;
    let plan = if pinned.is_empty() {
        plan
    } else {
        for (before, written) in &pinned {
            await_cached(&ctx.stores.deployments, before.as_deref(), written).await;
        }
        // Events already received (a rollout's status right behind the
        // pin) get their turn to reach the cache first.
        tokio::task::yield_now().await;
        let seen = deployments_seen(&ctx, &snapshot);
        environment::settle(
            &snapshot,
            plan,
            seen.iter().map(|(k, d)| (k.clone(), d)).collect(),
        )
    };
    let verifying = plan.rolling_out();
    let base = if verifying { VERIFYING } else { RESYNC };
    // A soak ending or a change window opening is seen at that instant, not on a poll.
    let next = plan
        .next_check_in(&ctx.now())
        .map_or(base, |clock| clock.min(base));
    write_statuses(&ctx, &environment, &promotions, plan).await?;
    Ok(Action::requeue(next))
}

/// The target Deployments of `snapshot` as cached now, for the look right
/// after pinning ([`environment::settle`]).
fn deployments_seen(ctx: &Ctx, snapshot: &Snapshot<'_>) -> BTreeMap<(String, String), Deployment> {
    snapshot
        .deployments
        .iter()
        .filter_map(|((namespace, name), known)| {
            let current = current_deployment(ctx, namespace, name, Some(*known))?;
            Some(((namespace.clone(), name.clone()), current))
        })
        .collect()
}

/// A target Deployment as cached now, else as this reconcile `known` it
/// (read before Hoist labelled it, so not in the cache yet).
fn current_deployment(
    ctx: &Ctx,
    namespace: &str,
    name: &str,
    known: Option<&Deployment>,
) -> Option<Deployment> {
    ctx.stores
        .deployments
        .get(&ObjectRef::new(name).within(namespace))
        .map(|cached| cached.as_ref().clone())
        .or_else(|| known.cloned())
}

/// The base ConfigMaps and Secret digests the Environment's config names,
/// read through the context's cache of configuration sources.
async fn fetch_config_sources(ctx: &Ctx, environment: &Environment) -> Result<Fetched, Error> {
    let namespace = environment.namespace().unwrap_or_default();
    let mut fetched = Fetched {
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let bases: BTreeSet<&String> = environment
        .spec
        .config
        .iter()
        .filter_map(|c| c.base_config_map.as_ref())
        .collect();
    for name in bases {
        if let Some(config_map) = ctx.config_map(&namespace, name).await? {
            fetched.config_maps.insert(name.clone(), config_map);
        }
    }
    let secrets: BTreeSet<&String> = environment
        .spec
        .config
        .iter()
        .flat_map(|c| c.secret_refs.iter().map(|s| &s.name))
        .collect();
    for name in secrets {
        if let Some(digest) = ctx.secret_digest(&namespace, name).await? {
            fetched.secrets.insert(name.clone(), digest);
        }
    }
    Ok(fetched)
}

fn owner(environment: &Environment) -> Option<OwnerReference> {
    environment.controller_owner_ref(&()).map(|mut owner| {
        owner.controller = Some(false);
        owner.block_owner_deletion = Some(false);
        owner
    })
}

/// Carries out `plan` up to the statuses: new Promotions, configuration
/// snapshots, rendered ConfigMaps and Deployment pins, writing only what
/// differs. Returns the Deployments written, with the resourceVersion each
/// had before.
async fn write_objects(
    ctx: &Ctx,
    environment: &Environment,
    deployments: &BTreeMap<(String, String), Deployment>,
    snapshots: &[Arc<ConfigMap>],
    plan: &Plan,
) -> Result<Vec<(Option<String>, Deployment)>, Error> {
    let namespace = environment.namespace().unwrap_or_default();
    let name = environment.name_any();
    let apply = PatchParams::apply(FIELD_MANAGER).force();

    for promotion in &plan.new_promotions {
        let api: Api<Promotion> = Api::namespaced(ctx.client.clone(), &namespace);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.create(&params, promotion).await {
            Ok(created) => {
                ctx.metrics.write(CONTROLLER);
                ctx.event(
                    &created,
                    EventReason::AutoPromoted,
                    format!("{} qualifies for {name}", created.spec.artifact),
                );
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(Error::Kube(error)),
        }
    }

    // Configuration snapshots first: a rollback must never find its configuration gone.
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
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

    // The Deployments at once: fewer round trips on the way to `Succeeded`.
    let pin_writes = plan.pins.iter().filter_map(|pin| {
        let known = deployments.get(&(pin.namespace.clone(), pin.name.clone()));
        let live = current_deployment(ctx, &pin.namespace, &pin.name, known);
        if live.as_ref().is_some_and(|d| pin.is_satisfied_by(d)) {
            return None;
        }
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &pin.namespace);
        let apply = &apply;
        Some(async move {
            let written = api
                .patch(&pin.name, apply, &Patch::Apply(&pin.apply_body()))
                .await
                .map_err(Error::Kube)?;
            ctx.metrics.write(CONTROLLER);
            Ok::<_, Error>((live.and_then(|d| d.resource_version()), written))
        })
    });
    try_join_all(pin_writes).await
}

/// Records `plan`: the Promotions' statuses (all at once), then the
/// Environment's, then the Events of its notices.
async fn write_statuses(
    ctx: &Ctx,
    environment: &Environment,
    promotions: &[Arc<Promotion>],
    plan: Plan,
) -> Result<(), Error> {
    let promotion_writes = promotions.iter().filter_map(|promotion| {
        let status = plan.promotions.get(&promotion.name_any())?;
        (promotion.status.as_ref() != Some(status)).then_some(async move {
            let written = ctx.apply_status(promotion.as_ref(), status, CONTROLLER).await?;
            Ok::<_, Error>((promotion.resource_version(), written))
        })
    });
    // The Environment's record first: a crash before the Promotions' writes
    // decides the same ends again (the history takes each Promotion once),
    // while the other order could leave a finished Promotion that no
    // Environment records, since finished Promotions are not decided again.
    let recorded = if environment.status.as_ref() != Some(&plan.status) {
        Some(ctx.apply_status(environment, &plan.status, CONTROLLER).await?)
    } else {
        None
    };
    let promoted = try_join_all(promotion_writes).await?;
    // Only after every write: waiting between them would widen the moment in
    // which a crash leaves a Promotion's outcome without the Environment's record.
    for (before, written) in &promoted {
        await_cached(&ctx.stores.promotions, before.as_deref(), written).await;
    }
    if let Some(written) = &recorded {
        await_cached(
            &ctx.stores.environments,
            environment.resource_version().as_deref(),
            written,
        )
        .await;
    }

    for notice in plan.notices {
        match notice
            .promotion
            .and_then(|p| promotions.iter().find(|candidate| candidate.name_any() == p))
        {
            Some(promotion) => ctx.event(promotion.as_ref(), notice.reason, notice.note),
            None => ctx.event(environment, notice.reason, notice.note),
        }
    }
    Ok(())
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
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &rendered.namespace);
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
async fn write_jobs(ctx: &Ctx, plan: &Plan, promotions: &[Arc<Promotion>]) -> Result<(), Error> {
    for job in &plan.jobs {
        let namespace = job.namespace().unwrap_or_default();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match Api::<Job>::namespaced(ctx.client.clone(), &namespace)
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
        match Api::<Job>::namespaced(ctx.client.clone(), namespace)
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
