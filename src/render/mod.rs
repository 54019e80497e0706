//! `hoist render`: the Hoist model on files, for GitOps repositories and for
//! trying Hoist without a cluster. Artifacts, Environments, Promotions,
//! workloads of every kind Hoist pins (Deployments, StatefulSets,
//! DaemonSets, CronJobs, Argo Rollouts' Rollouts), ConfigMaps, Secrets and
//! Namespaces are read from a directory; images resolve through an OCI
//! layout found in it or through their registries; every Environment is
//! reconciled through the same steps the operator runs
//! ([`crate::reconcile`]) on an in-memory [`World`], assuming each rollout
//! completes (each kind's controller is simulated, and the core judges the
//! status it reports as on a cluster); the pinned workloads and rendered
//! ConfigMaps are printed, with a report of every Promotion. Verification
//! (Jobs, Prometheus queries) is left to the cluster.
//!
//! Signatures, provenance attestations and vulnerability scans the gates
//! ask for are verified from the OCI layout (or the registry an image
//! resolved through) and recorded on the Artifacts as the operator records
//! them, so an unsigned release is blocked on files too.
//!
//! No API server vouches for the approvals in files, so they are
//! unverified: an approval gate counts them only with `allowUnverified`
//! (a repository's review of the commit is then what stands behind them).

// These errors end a command and carry the file, document and field they
// name; their size is irrelevant next to the I/O that produced them.
#![allow(clippy::result_large_err)]

mod load;
mod supply_chain;
pub mod world;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Serialize;

pub use load::{LoadError, Manifests};

use crate::api::WorkloadKind;
use crate::api::{GateName, GateState, Phase};
use crate::core::artifact::{self, Resolution};
use crate::core::reasons::ResolutionFailure;
use crate::core::workload::{LABEL_ROLE, Workload, WorkloadId};
use crate::registry::{LayoutError, OciLayout, PullSecrets, Resolver};
use supply_chain::Attached;
use world::{RolloutOutcome, World};

/// Why rendering could not run at all (a blocked Promotion is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("cannot serialize the output: {0}")]
    Serialize(#[source] serde_yaml::Error),
}

/// Rounds of reconciling every Environment: each stage of a pipeline
/// promotes once its upstream did, and may ask for checks of its own
/// policies then.
const ROUNDS: usize = 64;

/// What became of one Promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionReport {
    pub namespace: String,
    pub name: String,
    pub phase: Phase,
    pub message: String,
    /// Rolled out, and only its verification remains, which needs a cluster
    /// (Prometheus queries): the rendered output is what Git should hold.
    pub needs_cluster: bool,
}

/// The result of a render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Pinned workloads and rendered ConfigMaps, as a YAML stream.
    pub yaml: String,
    pub promotions: Vec<PromotionReport>,
}

impl Rendered {
    /// Every Promotion succeeded, or rolled out with only its in-cluster
    /// verification left.
    pub fn all_done(&self) -> bool {
        self.promotions
            .iter()
            .all(|p| p.phase == Phase::Succeeded || p.needs_cluster)
    }
}

/// Renders `dir`. Objects without a namespace are in `namespace`.
pub async fn render(
    dir: &Path,
    namespace: &str,
    resolver: &Resolver,
    now: Time,
) -> Result<Rendered, RenderError> {
    let mut manifests = Manifests::load(dir, namespace)?;
    let layout = OciLayout::discover(dir)?;
    let mut world = World::new(now.clone());
    let originals: BTreeMap<WorkloadId, Workload> = manifests
        .workloads()
        .iter()
        .map(|workload| (workload.id(), as_written(workload)))
        .collect();

    let wanted: Vec<(String, String)> = manifests
        .promotions
        .iter()
        .map(|p| (p.namespace().unwrap_or_default(), p.spec.artifact.clone()))
        .collect();
    for artifact in &mut manifests.artifacts {
        if wanted.contains(&(artifact.namespace().unwrap_or_default(), artifact.name_any())) {
            let mut resolutions = BTreeMap::new();
            for (component, image, expected) in artifact::unresolved(artifact) {
                let resolution = match (layout.digest(&image), expected) {
                    (Some(digest), Some(expected)) if digest != expected => Resolution::Failed {
                        failure: ResolutionFailure::DigestMismatch,
                        message: format!(
                            "component {component}: image {image} has digest {digest} in the OCI layout, but {expected} was expected"
                        ),
                    },
                    (Some(digest), _) => Resolution::Resolved(digest.to_string()),
                    (None, expected) => {
                        match resolver
                            .resolve(&image, expected.as_deref(), &PullSecrets::default())
                            .await
                        {
                            Ok(digest) => Resolution::Resolved(digest),
                            Err(error) => error.resolution(&component),
                        }
                    }
                };
                resolutions.insert(component, resolution);
            }
            artifact.status = Some(artifact::status(artifact, &resolutions, &now));
        }
    }
    world.objects = manifests;
    // Workloads are assumed to roll out: render shows the state Git should
    // hold. The supply-chain checks the plans ask for are made on the way.
    let mut attached = Attached {
        layout: &layout,
        resolver,
        fetched: HashMap::new(),
    };
    world
        .settle_checking(ROUNDS, |_| RolloutOutcome::Completes, &mut attached)
        .await?;

    let mut yaml = String::new();
    for workload in world.objects.workloads() {
        let written = as_written(&workload);
        if originals.get(&written.id()) == Some(&written) {
            continue;
        }
        yaml.push_str("---\n");
        yaml.push_str(&document(&written).map_err(RenderError::Serialize)?);
    }
    for config_map in world
        .objects
        .config_maps
        .iter()
        .filter(|cm| cm.labels().get(LABEL_ROLE).is_some_and(|r| r == "config"))
    {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(config_map).map_err(RenderError::Serialize)?);
    }
    let promotions = world
        .objects
        .promotions
        .iter()
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            let verifying = world
                .left_to_cluster(p)
                .then(|| {
                    status
                        .gates
                        .iter()
                        .find(|g| g.gate == GateName::Verification && g.state == GateState::Pending)
                })
                .flatten();
            let (needs_cluster, message) = match verifying {
                Some(gate) => (
                    true,
                    format!(
                        "rolled out; verification runs in the cluster (hoist render runs no Jobs and queries no Prometheus): {}",
                        gate.message
                    ),
                ),
                None => (false, status.message.unwrap_or_default()),
            };
            PromotionReport {
                namespace: p.namespace().unwrap_or_default(),
                name: p.name_any(),
                phase: status.phase,
                message,
                needs_cluster,
            }
        })
        .collect();
    Ok(Rendered { yaml, promotions })
}

/// `workload` as Git holds it: without the status and generation its
/// controller and the API server keep.
fn as_written(workload: &Workload) -> Workload {
    let mut written = workload.clone();
    written.metadata_mut().generation = None;
    match &mut written {
        Workload::Deployment(object) => object.status = None,
        Workload::StatefulSet(object) => object.status = None,
        Workload::DaemonSet(object) => object.status = None,
        Workload::CronJob(object) => object.status = None,
        Workload::Rollout(object) => object.status = None,
    }
    written
}

/// A Rollout with its apiVersion and kind, which the core's type leaves
/// out (the Kubernetes types write their own).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypedRollout<'a> {
    api_version: &'static str,
    kind: String,
    #[serde(flatten)]
    rollout: &'a crate::core::workload::ArgoRollout,
}

/// One workload as a YAML document.
fn document(workload: &Workload) -> Result<String, serde_yaml::Error> {
    match workload {
        Workload::Deployment(object) => serde_yaml::to_string(object),
        Workload::StatefulSet(object) => serde_yaml::to_string(object),
        Workload::DaemonSet(object) => serde_yaml::to_string(object),
        Workload::CronJob(object) => serde_yaml::to_string(object),
        Workload::Rollout(rollout) => serde_yaml::to_string(&TypedRollout {
            api_version: WorkloadKind::Rollout.api_version(),
            kind: WorkloadKind::Rollout.to_string(),
            rollout,
        }),
    }
}
