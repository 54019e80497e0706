//! Registry retention in the operator (opt-in, `registryRetention` of the
//! operator configuration): the manifests of the Artifacts retention
//! deletes go from their registries too, when the registry is allowed and
//! no remaining Artifact shares the digest (see
//! [`crate::core::registry_retention`]).
//!
//! Retention holds such an Artifact with the finalizer
//! `hoist.dev/registry-retention` before deleting it ([`hold`]), so the
//! Artifact is deleted without waiting on the registry and the pending
//! deletion is written down where a restarted operator finds it. Each
//! retention pass then deals with the Artifacts that wait ([`sweep`]):
//! decides again from the caches (an Artifact created since may share the
//! digest), asks the registry with the Artifact's pull secret, retries a
//! transient failure a bounded number of times, reports every answer once
//! (log, `hoist_registry_deletions_total{registry,outcome}`, an Event on
//! the Environments that target the application) and lets the Artifact go.
//! A refused deletion is never tried again. What cosign attached to the
//! digest by tag goes with it: it describes that digest only.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Ctx;
use super::pull_secrets::pull_secrets;
use crate::api::{Artifact, Environment};
use crate::core::reasons::{EventReason, RegistryDeletionOutcome};
use crate::core::registry_retention::{
    self, ATTEMPTS, Answer, FINALIZER, Manifest, Verdict, answer, retry_after,
};
use crate::registry::PullSecrets;

/// Why an Artifact could not be held or let go.
#[derive(Debug, thiserror::Error)]
pub(super) enum HoldError {
    // The source is in the message too: the log shows the message alone.
    #[error("cannot write the finalizer {FINALIZER} of Artifact {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot build the finalizer patch")]
    Patch {
        #[source]
        source: serde_json::Error,
    },
}

/// Before retention deletes `artifact`: adds the finalizer when some image
/// of it is in an allowed registry. Retention does not delete an Artifact
/// it could not hold.
pub(super) async fn hold(ctx: &Ctx, artifact: &Artifact) -> Result<(), HoldError> {
    let held = artifact.finalizers().iter().any(|f| f == FINALIZER);
    if held || !registry_retention::is_held(&ctx.config.registry_retention, artifact) {
        return Ok(());
    }
    // A JSON patch that fails if the finalizers changed since they were
    // read, as kube-runtime's finalizer helper writes it.
    let operations = match &artifact.metadata.finalizers {
        None => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(finalizers) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
    };
    patch(ctx, artifact, operations).await
}

async fn patch(ctx: &Ctx, artifact: &Artifact, operations: serde_json::Value) -> Result<(), HoldError> {
    let namespace = artifact.namespace().unwrap_or_default();
    let name = artifact.name_any();
    let operations = serde_json::from_value(operations).map_err(|source| HoldError::Patch { source })?;
    Api::<Artifact>::namespaced(ctx.hub.clone(), &namespace)
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(operations))
        .await
        .map_err(|source| HoldError::Write {
            namespace,
            name,
            source,
        })?;
    ctx.metrics.write("retention");
    Ok(())
}

/// Deals with every deleted Artifact that holds the finalizer.
pub(super) async fn sweep(ctx: &Ctx) {
    // A cache that lists again may lack the Artifact that shares a digest.
    if !ctx.stores.readiness.is_ready() {
        return;
    }
    let cached = ctx.stores.artifacts.store().state();
    let artifacts: Vec<&Artifact> = cached.iter().map(AsRef::as_ref).collect();
    for artifact in artifacts.iter().filter(|a| registry_retention::is_pending(a)) {
        let verdicts = registry_retention::decide(&ctx.config.registry_retention, artifact, &artifacts);
        let namespace = artifact.namespace().unwrap_or_default();
        for verdict in &verdicts {
            if let Verdict::Keep { image, reason, by } = verdict {
                tracing::info!(
                    namespace,
                    artifact = artifact.name_any(),
                    image,
                    %reason,
                    by = by.as_deref().unwrap_or_default(),
                    "registry retention keeps the manifest"
                );
            }
        }
        let manifests: Vec<&Manifest> = registry_retention::deletions(&verdicts).collect();
        let secrets = if manifests.is_empty() {
            PullSecrets::default()
        } else {
            match pull_secrets(ctx, artifact).await {
                Ok(secrets) => secrets,
                Err(super::pull_secrets::PullSecretError::Read { source }) => {
                    tracing::warn!(namespace, artifact = artifact.name_any(), error = %source,
                        "cannot read the pull secrets; the next pass tries again");
                    continue;
                }
                Err(error) => {
                    let reports: Vec<Report> = manifests
                        .iter()
                        .map(|manifest| Report {
                            manifest: (*manifest).clone(),
                            outcome: RegistryDeletionOutcome::Denied,
                            detail: error.to_string(),
                        })
                        .collect();
                    finish(ctx, artifact, &reports).await;
                    continue;
                }
            }
        };
        let mut reports = Vec::new();
        for manifest in manifests {
            reports.push(delete(ctx, manifest, &secrets).await);
        }
        finish(ctx, artifact, &reports).await;
    }
}

/// What the registry said about one manifest.
struct Report {
    manifest: Manifest,
    outcome: RegistryDeletionOutcome,
    /// The last answer or error, for the log and the Event.
    detail: String,
}

/// Deletes one manifest, retrying transient failures, and then what cosign
/// attached to it by tag.
async fn delete(ctx: &Ctx, manifest: &Manifest, secrets: &PullSecrets) -> Report {
    let mut attempt = 1;
    let (outcome, detail) = loop {
        let detail = match ctx
            .resolver
            .delete_manifest(&manifest.image, &manifest.digest, secrets)
            .await
        {
            Ok(status) => match answer(status) {
                Answer::Final(outcome) => break (outcome, format!("HTTP {status}")),
                Answer::Transient => format!("HTTP {status}"),
            },
            Err(error) if error.is_transient() => format!("{error}"),
            Err(error) => break (RegistryDeletionOutcome::Denied, error.to_string()),
        };
        match retry_after(attempt) {
            Some(wait) => {
                tracing::info!(manifest = manifest.whole(), attempt, %detail, "registry deletion failed; trying again");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            None => {
                break (
                    RegistryDeletionOutcome::Failed,
                    format!("{detail} after {ATTEMPTS} attempts"),
                );
            }
        }
    };
    ctx.metrics.registry_deletion(&manifest.registry, outcome);
    if outcome.is_gone() {
        tracing::info!(manifest = manifest.whole(), %outcome, "registry retention deleted the manifest");
        delete_attached(ctx, manifest, secrets).await;
    } else {
        tracing::warn!(manifest = manifest.whole(), %outcome, %detail, "registry retention could not delete the manifest; it is not tried again");
    }
    Report {
        manifest: manifest.clone(),
        outcome,
        detail,
    }
}

/// Deletes the signatures, attestations and referrers index cosign's tag
/// scheme attached to a deleted manifest's digest, once each.
async fn delete_attached(ctx: &Ctx, manifest: &Manifest, secrets: &PullSecrets) {
    let attached = match ctx
        .resolver
        .attached_by_tag(&manifest.image, &manifest.digest, secrets)
        .await
    {
        Ok(attached) => attached,
        Err(error) => {
            tracing::warn!(manifest = manifest.whole(), %error, "cannot look up what is attached to the deleted manifest; it stays");
            return;
        }
    };
    for digest in attached {
        let result = ctx
            .resolver
            .delete_manifest(&manifest.image, &digest, secrets)
            .await;
        tracing::info!(
            manifest = manifest.whole(),
            attached = digest,
            answer = ?result.as_ref().map(|status| answer(*status)),
            "registry retention deleted what was attached by tag"
        );
    }
}

/// Reports the outcomes on the Environments that target the Artifact's
/// application, then lets the Artifact go.
async fn finish(ctx: &Ctx, artifact: &Artifact, reports: &[Report]) {
    let namespace = artifact.namespace().unwrap_or_default();
    let name = artifact.name_any();
    let environments: Vec<Arc<Environment>> = ctx
        .stores
        .environments
        .store()
        .state()
        .into_iter()
        .filter(|environment| {
            environment.namespace().as_deref() == Some(namespace.as_str())
                && environment
                    .spec
                    .targets
                    .iter()
                    .any(|target| target.application == artifact.spec.application)
        })
        .collect();
    let deleted: Vec<String> = reports
        .iter()
        .filter(|report| report.outcome == RegistryDeletionOutcome::Deleted)
        .map(|report| report.manifest.whole())
        .collect();
    let refused: Vec<String> = reports
        .iter()
        .filter(|report| !report.outcome.is_gone())
        .map(|report| format!("{}: {}", report.manifest.whole(), explain(report)))
        .collect();
    for environment in &environments {
        if !deleted.is_empty() {
            ctx.event(
                environment.as_ref(),
                EventReason::RegistryManifestDeleted,
                format!(
                    "Registry retention deleted the manifests of Artifact {name}: {}",
                    deleted.join(", ")
                ),
            );
        }
        if !refused.is_empty() {
            ctx.event(
                environment.as_ref(),
                EventReason::RegistryDeletionRefused,
                format!(
                    "Registry retention could not delete the manifests of Artifact {name} and will not try again: {}",
                    refused.join("; ")
                ),
            );
        }
    }
    if let Err(error) = release(ctx, artifact).await {
        tracing::warn!(namespace, artifact = name, %error, "cannot let the Artifact go; the next pass tries again");
    }
}

/// What to do about a manifest that stays.
fn explain(report: &Report) -> String {
    let detail = &report.detail;
    match report.outcome {
        RegistryDeletionOutcome::Unsupported => format!(
            "the registry does not allow deletion ({detail}, UNSUPPORTED): enable it there \
             (docker-registry: storage.delete.enabled) or remove {} from registryRetention.registries",
            report.manifest.registry
        ),
        RegistryDeletionOutcome::Denied => {
            format!("refused ({detail}): the Artifact's pull secret must be allowed to delete")
        }
        RegistryDeletionOutcome::Failed => format!("the registry kept failing ({detail}): delete it by hand"),
        RegistryDeletionOutcome::Deleted | RegistryDeletionOutcome::NotFound => detail.clone(),
    }
}

/// Removes the finalizer, from the object as it is now (the API server
/// may have removed `foregroundDeletion` since the cache saw it).
async fn release(ctx: &Ctx, artifact: &Artifact) -> Result<(), HoldError> {
    let namespace = artifact.namespace().unwrap_or_default();
    let name = artifact.name_any();
    let write = |source| HoldError::Write {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    let api = Api::<Artifact>::namespaced(ctx.hub.clone(), &namespace);
    let Some(current) = api.get_opt(&name).await.map_err(write)? else {
        return Ok(());
    };
    let Some(index) = current.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    patch(
        ctx,
        &current,
        json!([
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path},
        ]),
    )
    .await
}
