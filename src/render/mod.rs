//! `hoist render`: the Hoist model on files, for GitOps repositories and for
//! trying Hoist without a cluster. Artifacts, Environments, Promotions,
//! Deployments, ConfigMaps, Secrets and Namespaces are read from a
//! directory; images resolve through an OCI layout found in it or through
//! their registries; the same engine the controller runs decides every
//! Promotion, assuming each rollout completes; the pinned Deployments and
//! rendered ConfigMaps are printed, with a report of every Promotion.
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
pub mod world;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

pub use load::{LoadError, Manifests};

use crate::api::{GateName, GateState, Phase};
use crate::core::artifact::{self, Resolution};
use crate::core::deployment::LABEL_ROLE;
use crate::core::reasons::ResolutionFailure;
use crate::core::supply_chain::{self, Attachments, DueCheck};
use crate::registry::{LayoutError, OciLayout, PullSecrets, Resolver};
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

/// Rounds of deciding and checking: each stage of a pipeline may ask for
/// checks of its own policies once its upstream promoted.
const CHECK_ROUNDS: usize = 16;

/// What was read for each (image, digest), once per render.
type Fetched = HashMap<(String, String), Result<Attachments, String>>;

/// Makes `checks` (those of several Environments sharing a policy once),
/// each digest's attachments read once per render, from the layout when it
/// holds the image's repository, else from its registry, and records them
/// on the Artifacts.
async fn supply_chain_checks(
    world: &mut World,
    layout: &OciLayout,
    resolver: &Resolver,
    mut checks: Vec<(String, DueCheck)>,
    fetched: &mut Fetched,
    now: &Time,
) -> Result<(), RenderError> {
    let same = |(ns, c): &(String, DueCheck)| {
        (
            ns.clone(),
            c.artifact.clone(),
            c.component.clone(),
            c.policy.check,
            c.policy.id.clone(),
        )
    };
    checks.sort_by_key(same);
    checks.dedup_by_key(|check| same(check));
    for (namespace, check) in checks {
        let key = (check.image.clone(), check.digest.clone());
        if !fetched.contains_key(&key) {
            let attachments = if layout.has_repository(&check.image) {
                Ok(layout.attachments(&check.image, &check.digest)?)
            } else {
                resolver
                    .attachments(&check.image, &check.digest, &PullSecrets::default())
                    .await
                    .map_err(|error| error.to_string())
            };
            fetched.insert(key.clone(), attachments);
        }
        let Some(artifact) =
            world.objects.artifacts.iter_mut().find(|a| {
                a.namespace().as_deref() == Some(namespace.as_str()) && a.name_any() == check.artifact
            })
        else {
            continue;
        };
        let previous = supply_chain::record_of(artifact, &check.component, &check.policy).cloned();
        let record = supply_chain::record(
            &check,
            fetched[&key].as_ref().map_err(Clone::clone),
            artifact.spec.source.as_ref(),
            previous.as_ref(),
            now,
        );
        supply_chain::merge(artifact.status.get_or_insert_with(Default::default), [&record]);
    }
    Ok(())
}

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
    /// Pinned Deployments and rendered ConfigMaps, as a YAML stream.
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
    let original_deployments: BTreeMap<(String, String), Deployment> = manifests
        .deployments
        .iter()
        .map(|d| ((d.namespace().unwrap_or_default(), d.name_any()), d.clone()))
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
    // Deployments are assumed to roll out: render shows the state Git should
    // hold. Each round makes the supply-chain checks the plans ask for; a
    // check is due again only later (a retry, a stale scan), so few rounds do.
    // The last round settles what the checks before it recorded.
    let mut fetched = Fetched::new();
    for round in 0..=CHECK_ROUNDS {
        world.settle(64, |_| RolloutOutcome::Completes);
        let checks = world.due_checks();
        if checks.is_empty() || round == CHECK_ROUNDS {
            break;
        }
        supply_chain_checks(&mut world, &layout, resolver, checks, &mut fetched, &now).await?;
    }

    let mut yaml = String::new();
    for deployment in &world.objects.deployments {
        let key = (deployment.namespace().unwrap_or_default(), deployment.name_any());
        if original_deployments.get(&key).is_some_and(|original| {
            original.spec == deployment.spec && original.metadata.labels == deployment.metadata.labels
        }) {
            continue;
        }
        let mut out = deployment.clone();
        out.status = None;
        out.metadata.generation = None;
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&out).map_err(RenderError::Serialize)?);
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
            let verifying = (status.phase == Phase::Verifying)
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
