//! The first step of an Environment's reconcile on the cluster: everything
//! its decision takes, from the caches, read from the API where a cache
//! cannot yet hold it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use crate::api::{Artifact, Environment, WorkloadKind};
use crate::controller::context::Ctx;
use crate::controller::{Error, keys, supply_chain, workloads};
use crate::core::config::{self, ConfigSources, RenderedConfig, SecretDigest};
use crate::core::environment::{target_namespace, target_workload};
use crate::core::tenancy;
use crate::core::workload::{Workload, WorkloadId};
use crate::reconcile::{self, Dereferenced};

/// Base ConfigMaps and Secret digests of one namespace, for a reconcile.
struct Fetched {
    config_maps: BTreeMap<String, Arc<ConfigMap>>,
    secrets: BTreeMap<String, SecretDigest>,
    /// False for an Environment the operator reads no Secret for.
    secrets_read: bool,
}

impl ConfigSources for Fetched {
    fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.config_maps.get(name).map(Arc::as_ref)
    }
    fn secret(&self, name: &str) -> Option<SecretDigest> {
        self.secrets.get(name).cloned()
    }
    fn secrets_read(&self) -> bool {
        self.secrets_read
    }
}

/// What the decision about `environment` takes, and the configuration
/// snapshot ConfigMaps it has (which the apply step keeps or deletes).
pub(super) async fn dereference(
    ctx: &Ctx,
    environment: Arc<Environment>,
) -> Result<(Dereferenced, Vec<Arc<ConfigMap>>), Error> {
    // Runs only once every cache has listed (see `controller::reconciler`):
    // deciding earlier would take existing snapshots and workloads for
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
            && let Some(artifact) = Api::<Artifact>::namespaced(ctx.hub.clone(), &namespace)
                .get_opt(&promotion.spec.artifact)
                .await
                .map_err(Error::Kube)?
        {
            artifacts.insert(promotion.spec.artifact.clone(), Arc::new(artifact));
        }
    }

    // Target workloads of the kinds served: from the caches once Hoist
    // labelled them, read otherwise.
    let mut workloads: BTreeMap<WorkloadId, Workload> = BTreeMap::new();
    let mut target_namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    for target in &environment.spec.targets {
        let target_ns = target_namespace(&environment, target);
        if target_ns != namespace
            && !target_namespaces.contains_key(&target_ns)
            && let Some(ns) = stores.namespaces.get(&ObjectRef::new(&target_ns))
        {
            target_namespaces.insert(target_ns.clone(), ns.as_ref().clone());
        }
        let Some(id) = target_workload(&environment, target) else {
            continue;
        };
        if workloads.contains_key(&id) || stores.unserved_kinds.contains(&id.kind) {
            continue;
        }
        let cached = match id.kind {
            WorkloadKind::Deployment => stores
                .deployments
                .get(&ObjectRef::new(&id.name).within(&id.namespace))
                .map(|deployment| Workload::Deployment(deployment.as_ref().clone())),
            _ => stores.workloads.get(&id),
        };
        let workload = match cached {
            Some(workload) => Some(workload),
            None => workloads::get(&ctx.local, &id).await.map_err(Error::Kube)?,
        };
        if let Some(workload) = workload {
            workloads.insert(id, workload);
        }
    }

    // Without the admission policy on Environments, no Secret they name is read.
    let boundaries = stores.boundaries();
    let secrets_read = tenancy::held(&environment, &boundaries).is_none();
    let sources = fetch_config_sources(ctx, &environment, secrets_read).await?;
    let configs = reconcile::configs(&environment, &sources);
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

    let jobs = stores.jobs.indexed(&keys::verification_jobs(&namespace, &name));
    let trust = match secrets_read {
        true => supply_chain::trust_sources(ctx, &environment).await?,
        false => Default::default(),
    };
    let dereferenced = Dereferenced {
        environment,
        environments,
        artifacts,
        promotions,
        workloads,
        unserved: stores.unserved_kinds.clone(),
        namespaces: target_namespaces,
        configs,
        config_history,
        approvals: stores.approval_trust(),
        boundaries,
        operator: ctx.identity.clone(),
        jobs,
        trust,
        tenant_notifications: ctx.config.notifications.clone(),
        tiers: ctx.config.tiers.clone(),
        tenant_labels: stores.tenant_labels(&namespace),
        now: ctx.now(),
    };
    Ok((dereferenced, snapshots))
}

/// The base ConfigMaps and Secret digests the Environment's config names,
/// read through the context's cache of configuration sources (the Secrets
/// only when `secrets_read`).
async fn fetch_config_sources(
    ctx: &Ctx,
    environment: &Environment,
    secrets_read: bool,
) -> Result<Fetched, Error> {
    let namespace = environment.namespace().unwrap_or_default();
    let mut fetched = Fetched {
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
        secrets_read,
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
    if !secrets_read {
        return Ok(fetched);
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
