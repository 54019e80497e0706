//! The supply-chain checks of `hoist render`: what is attached to a digest
//! is read from the OCI layout when it holds the image's repository, else
//! from its registry, once per digest per render, and recorded on the
//! Artifacts as the operator records it.

use std::collections::{BTreeMap, HashMap};

use kube::ResourceExt;

use crate::api::Artifact;
use crate::core::supply_chain::{self, Attachments, DueCheck};
use crate::registry::{LayoutError, OciLayout, PullSecrets, Resolver};
use crate::render::world::{SupplyChain, World};

/// Where a render reads attachments from, and what it read of each
/// (image, digest).
pub(super) struct Attached<'a> {
    pub layout: &'a OciLayout,
    pub resolver: &'a Resolver,
    pub fetched: HashMap<(String, String), Result<Attachments, String>>,
}

impl SupplyChain for Attached<'_> {
    type Error = LayoutError;

    async fn check(
        &mut self,
        world: &mut World,
        namespace: &str,
        checks: &[DueCheck],
    ) -> Result<BTreeMap<String, Artifact>, LayoutError> {
        let mut recorded = BTreeMap::new();
        for check in checks {
            let key = (check.image.clone(), check.digest.clone());
            if !self.fetched.contains_key(&key) {
                let attachments = if self.layout.has_repository(&check.image) {
                    Ok(self.layout.attachments(&check.image, &check.digest)?)
                } else {
                    self.resolver
                        .attachments(&check.image, &check.digest, &PullSecrets::default())
                        .await
                        .map_err(|error| error.to_string())
                };
                self.fetched.insert(key.clone(), attachments);
            }
            let Some(artifact) = world
                .objects
                .artifacts
                .iter_mut()
                .find(|a| a.namespace().as_deref() == Some(namespace) && a.name_any() == check.artifact)
            else {
                continue;
            };
            let previous = supply_chain::record_of(artifact, &check.component, &check.policy).cloned();
            let record = supply_chain::record(
                check,
                self.fetched[&key].as_ref().map_err(Clone::clone),
                artifact.spec.source.as_ref(),
                previous.as_ref(),
                &world.now,
            );
            supply_chain::merge(artifact.status.get_or_insert_with(Default::default), [&record]);
            recorded.insert(check.artifact.clone(), artifact.clone());
        }
        Ok(recorded)
    }
}
