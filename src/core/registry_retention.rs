//! Registry retention (opt-in): when retention deletes an Artifact, which
//! of its images' manifests also go from their registries, decided from
//! the operator configuration's allow-list and every Artifact the operator
//! sees.
//!
//! A manifest goes only when its registry is in
//! `registryRetention.registries` and no remaining Artifact, of any
//! namespace, references the same repository and digest (resolved, or
//! pinned in its spec and not resolved yet). An Artifact retention deletes
//! carries the finalizer [`FINALIZER`] until its manifests are dealt with:
//! the pending deletion is recorded on the object itself, so it survives
//! an operator restart, and the Artifact is deleted at once all the same
//! (it shows as terminating until the registry answered).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use serde::Deserialize;

use crate::api::Artifact;
use crate::core::reasons::{ManifestKeepReason, RegistryDeletionOutcome};
use crate::core::reference::{canonical_registry, parse_image};

/// Held by an Artifact retention deleted until its manifests are deleted
/// from their registries (or the registries refused).
pub const FINALIZER: &str = "hoist.dev/registry-retention";

/// Attempts at one manifest deletion when the registry fails transiently.
pub const ATTEMPTS: u32 = 3;

/// The operator configuration's `registryRetention`. Off (an empty
/// allow-list) unless configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryRetention {
    /// Registries (`host` or `host:port`, as image references spell them)
    /// whose manifests may be deleted.
    #[serde(default)]
    pub registries: Vec<AllowedRegistry>,
}

impl RegistryRetention {
    /// Whether manifests in `registry` (as a parsed reference names it) may go.
    pub fn allows(&self, registry: &str) -> bool {
        self.registries
            .iter()
            .any(|allowed| allowed.0 == canonical_registry(registry))
    }
}

/// A registry of the allow-list, checked when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedRegistry(String);

/// Why an allow-list entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a registry host: write it as image references do, host[:port] in lowercase without scheme or \
     path (e.g. registry.example.com:5000)"
)]
pub struct NotARegistry(pub String);

impl TryFrom<String> for AllowedRegistry {
    type Error = NotARegistry;

    fn try_from(text: String) -> Result<Self, NotARegistry> {
        let (host, port) = text.split_once(':').unwrap_or((text.as_str(), ""));
        let host_ok = !host.is_empty()
            && !host.starts_with(['.', '-'])
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let port_ok = !text.contains(':') || (!port.is_empty() && port.parse::<u16>().is_ok());
        if host_ok && port_ok {
            Ok(AllowedRegistry(canonical_registry(&text).to_owned()))
        } else {
            Err(NotARegistry(text))
        }
    }
}

/// One image manifest in its registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Manifest {
    /// The reference the Artifact gives (its pull secret is chosen by it).
    pub image: String,
    pub registry: String,
    pub repository: String,
    pub digest: String,
}

impl Manifest {
    /// `registry/repository@digest`.
    pub fn whole(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

/// What becomes of one image of a deleted Artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delete(Manifest),
    /// The manifest stays; `by` names the Artifact (`namespace/name`) that
    /// shares it, where one does.
    Keep {
        image: String,
        reason: ManifestKeepReason,
        by: Option<String>,
    },
}

/// Whether `artifact` waits for its manifests to be dealt with.
pub fn is_pending(artifact: &Artifact) -> bool {
    artifact.meta().deletion_timestamp.is_some() && artifact.finalizers().iter().any(|f| f == FINALIZER)
}

/// Whether retention holds `artifact` with the finalizer before deleting
/// it: some image of it has a digest in an allowed registry. Sharing is
/// decided later, by [`decide`] when the registry is asked, once every
/// Artifact retention deletes in the same pass shows as deleted: two old
/// Artifacts that share a digest and go together still delete it.
pub fn is_held(config: &RegistryRetention, artifact: &Artifact) -> bool {
    deletions(&decide(config, artifact, &[])).next().is_some()
}

/// What becomes of each distinct image of `artifact`, which retention
/// deletes, given every Artifact the operator sees (`artifact` itself and
/// those being deleted are not counted as remaining).
pub fn decide(config: &RegistryRetention, artifact: &Artifact, artifacts: &[&Artifact]) -> Vec<Verdict> {
    let remaining: Vec<&Artifact> = artifacts
        .iter()
        .copied()
        .filter(|other| other.meta().deletion_timestamp.is_none() && !same_object(other, artifact))
        .collect();
    let mut seen = BTreeSet::new();
    let mut verdicts = Vec::new();
    for (image, digest) in referenced(artifact) {
        let keep = |reason, by| Verdict::Keep {
            image: image.clone(),
            reason,
            by,
        };
        let Some(digest) = digest else {
            verdicts.push(keep(ManifestKeepReason::Unresolved, None));
            continue;
        };
        let Some(manifest) = manifest(&image, &digest) else {
            verdicts.push(keep(ManifestKeepReason::Unresolved, None));
            continue;
        };
        if !seen.insert((manifest.registry.clone(), manifest.repository.clone(), digest)) {
            continue;
        }
        if !config.allows(&manifest.registry) {
            verdicts.push(keep(ManifestKeepReason::NotAllowed, None));
        } else if let Some(other) = remaining.iter().find(|other| references(other, &manifest)) {
            let by = format!("{}/{}", other.namespace().unwrap_or_default(), other.name_any());
            verdicts.push(keep(ManifestKeepReason::SharedDigest, Some(by)));
        } else {
            verdicts.push(Verdict::Delete(manifest));
        }
    }
    verdicts
}

/// The manifests of `decide`'s verdicts that go.
pub fn deletions(verdicts: &[Verdict]) -> impl Iterator<Item = &Manifest> {
    verdicts.iter().filter_map(|verdict| match verdict {
        Verdict::Delete(manifest) => Some(manifest),
        Verdict::Keep { .. } => None,
    })
}

fn same_object(a: &Artifact, b: &Artifact) -> bool {
    a.namespace() == b.namespace() && a.name_any() == b.name_any()
}

/// Each image of `artifact` with its digest: the resolved one, else the
/// one its spec pins.
fn referenced(artifact: &Artifact) -> Vec<(String, Option<String>)> {
    artifact
        .spec
        .images
        .iter()
        .map(|spec| {
            let resolved = artifact
                .status
                .iter()
                .flat_map(|status| &status.images)
                .find(|resolved| resolved.component == spec.component)
                .map(|resolved| resolved.digest.clone());
            let pinned = spec
                .digest
                .clone()
                .or_else(|| spec.image.split_once('@').map(|(_, digest)| digest.to_owned()));
            (spec.image.clone(), resolved.or(pinned))
        })
        .collect()
}

fn manifest(image: &str, digest: &str) -> Option<Manifest> {
    let reference = parse_image(image).ok()?;
    Some(Manifest {
        image: image.to_owned(),
        registry: reference.registry().to_owned(),
        repository: reference.repository().to_owned(),
        digest: digest.to_owned(),
    })
}

fn references(artifact: &Artifact, wanted: &Manifest) -> bool {
    referenced(artifact).into_iter().any(|(image, digest)| {
        digest
            .and_then(|digest| manifest(&image, &digest))
            .is_some_and(|found| {
                found.registry == wanted.registry
                    && found.repository == wanted.repository
                    && found.digest == wanted.digest
            })
    })
}

/// What one answer of the registry to `DELETE /v2/<name>/manifests/<digest>`
/// comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Final: reported once, never tried again.
    Final(RegistryDeletionOutcome),
    /// Transient: worth another attempt, if any is left.
    Transient,
}

/// Reads the HTTP status of the registry's answer (OCI distribution spec:
/// 202 Accepted; 404 when the manifest is unknown; 405 when the registry
/// does not allow deletion).
pub fn answer(status: u16) -> Answer {
    match status {
        200..=299 => Answer::Final(RegistryDeletionOutcome::Deleted),
        404 => Answer::Final(RegistryDeletionOutcome::NotFound),
        405 => Answer::Final(RegistryDeletionOutcome::Unsupported),
        408 | 429 | 500..=599 => Answer::Transient,
        _ => Answer::Final(RegistryDeletionOutcome::Denied),
    }
}

/// The wait before attempt `attempt + 1` after a transient failure of
/// attempt `attempt` (counted from 1), or `None` once [`ATTEMPTS`] are spent.
pub fn retry_after(attempt: u32) -> Option<Duration> {
    (attempt < ATTEMPTS).then(|| Duration::from_secs(1 << (attempt - 1).min(4)))
}

#[cfg(test)]
mod tests;
