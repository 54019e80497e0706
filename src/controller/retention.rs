//! Retention in the operator: a pass over every namespace each interval
//! (`--retention-interval`), on the hub, while leading, only once every
//! cache has listed. It runs apart from the reconciles because Artifacts
//! are shared by a namespace's Environments: the namespace is decided as a
//! whole, once, from the caches (see [`crate::core::retention`]), not again
//! by each Environment on each of its many reconciles; and deleting is never
//! urgent, so a pass every few minutes costs next to nothing.
//!
//! Each deletion is foreground (what an object owns goes first; a few at
//! once, [`CONCURRENT_DELETIONS`]), logged and
//! counted (`hoist_retention_deletions_total`); each Environment concerned
//! gets one Event per pass naming what went: its own Promotions and the
//! Artifacts of the applications it targets.
//!
//! With registry retention on, an Artifact with images in an allowed
//! registry is held by a finalizer before it is deleted, and each pass
//! ends by deleting the manifests of those held (see
//! [`super::registry_retention`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::context::Ctx;
use super::registry_retention;
use crate::api::{Artifact, Environment, Promotion};
use crate::core::reasons::EventReason;
use crate::core::retention::{self, Kind, Outcome, Snapshot, Verdict};

/// Deletions of a namespace in flight at once: one request at a time
/// (a round trip each) fell behind a busy install's releases, and a few
/// at once stay far within the API server's limits on requests in flight.
const CONCURRENT_DELETIONS: usize = 8;

/// Runs a pass each `interval` (at least a second) until `stop`.
pub async fn run(ctx: Ctx, interval: Duration, stop: impl Future<Output = ()>) {
    let interval = interval.max(Duration::from_secs(1));
    tokio::pin!(stop);
    tokio::select! {
        synced = ctx.stores.readiness.wait_until_synced() => if !synced { return },
        () = &mut stop => return,
    }
    loop {
        if ctx.leadership.is_leading() {
            sweep(&ctx).await;
            registry_retention::sweep(&ctx).await;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => return,
        }
    }
}

/// One pass over every namespace the caches hold.
async fn sweep(ctx: &Ctx) {
    let mut namespaces: BTreeMap<String, Namespace> = BTreeMap::new();
    for environment in ctx.stores.environments.store().state() {
        namespace_of(&mut namespaces, environment.as_ref())
            .environments
            .push(environment);
    }
    for artifact in ctx.stores.artifacts.store().state() {
        namespace_of(&mut namespaces, artifact.as_ref())
            .artifacts
            .push(artifact);
    }
    for promotion in ctx.stores.promotions.store().state() {
        namespace_of(&mut namespaces, promotion.as_ref())
            .promotions
            .push(promotion);
    }
    for (namespace, objects) in namespaces {
        // A cache that lost its watch and lists again may lack objects
        // that need what would go.
        if !ctx.stores.readiness.is_ready() {
            return;
        }
        let snapshot = Snapshot {
            environments: objects.environments.iter().map(AsRef::as_ref).collect(),
            artifacts: objects.artifacts.iter().map(AsRef::as_ref).collect(),
            promotions: objects.promotions.iter().map(AsRef::as_ref).collect(),
            defaults: &ctx.config.retention,
            now: ctx.now(),
        };
        let decision = retention::decide(&snapshot);
        for error in &decision.errors {
            tracing::warn!(namespace, %error, "retention left an Environment's Promotions alone");
        }
        let namespace = namespace.as_str();
        let deletions: Vec<&Verdict> = decision.deletions().collect();
        let mut deleted = Vec::new();
        for batch in deletions.chunks(CONCURRENT_DELETIONS) {
            let gone = join_all(batch.iter().map(|verdict| delete(ctx, namespace, verdict))).await;
            deleted.extend(
                batch
                    .iter()
                    .zip(gone)
                    .filter(|(_, gone)| *gone)
                    .map(|(verdict, _)| *verdict),
            );
        }
        announce(ctx, &objects.environments, &deleted);
    }
}

#[derive(Default)]
struct Namespace {
    environments: Vec<Arc<Environment>>,
    artifacts: Vec<Arc<Artifact>>,
    promotions: Vec<Arc<Promotion>>,
}

fn namespace_of<'n>(
    namespaces: &'n mut BTreeMap<String, Namespace>,
    object: &impl Resource,
) -> &'n mut Namespace {
    namespaces
        .entry(object.meta().namespace.clone().unwrap_or_default())
        .or_default()
}

/// Deletes one object (foreground); true when it is gone or going.
async fn delete(ctx: &Ctx, namespace: &str, verdict: &Verdict) -> bool {
    let Outcome::Delete(reason) = verdict.outcome else {
        return false;
    };
    let params = DeleteParams::foreground();
    let result = match verdict.kind {
        Kind::Artifact => {
            if let Some(artifact) = ctx
                .stores
                .artifacts
                .store()
                .get(&ObjectRef::new(&verdict.name).within(namespace))
                && let Err(error) = registry_retention::hold(ctx, &artifact).await
            {
                tracing::warn!(namespace, name = verdict.name, %error, "retention did not delete the Artifact; the next pass tries again");
                return false;
            }
            Api::<Artifact>::namespaced(ctx.hub.clone(), namespace)
                .delete(&verdict.name, &params)
                .await
                .map(|_| ())
        }
        Kind::Promotion => Api::<Promotion>::namespaced(ctx.hub.clone(), namespace)
            .delete(&verdict.name, &params)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => {
            ctx.metrics.write("retention");
            ctx.metrics
                .retention_deletion(verdict.kind.as_str(), reason.as_str(), namespace);
            tracing::info!(
                namespace,
                kind = verdict.kind.as_str(),
                name = verdict.name,
                of = verdict.group,
                %reason,
                "retention deleted"
            );
            true
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => false,
        Err(error) => {
            tracing::warn!(
                namespace,
                kind = verdict.kind.as_str(),
                name = verdict.name,
                error = %error,
                "retention could not delete; the next pass tries again"
            );
            false
        }
    }
}

/// One Event per Environment concerned: its Promotions and the Artifacts
/// of the applications it targets that went.
fn announce(ctx: &Ctx, environments: &[Arc<Environment>], deleted: &[&Verdict]) {
    for environment in environments {
        let name = environment.name_any();
        let targets = |application: &str| {
            environment
                .spec
                .targets
                .iter()
                .any(|target| target.application == application)
        };
        let artifacts: Vec<&str> = deleted
            .iter()
            .filter(|verdict| verdict.kind == Kind::Artifact && targets(&verdict.group))
            .map(|verdict| verdict.name.as_str())
            .collect();
        let promotions: Vec<&str> = deleted
            .iter()
            .filter(|verdict| verdict.kind == Kind::Promotion && verdict.group == name)
            .map(|verdict| verdict.name.as_str())
            .collect();
        let parts: Vec<String> = [("Artifacts", artifacts), ("finished Promotions", promotions)]
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(what, names)| format!("{} {what} ({})", names.len(), listed(&names)))
            .collect();
        if !parts.is_empty() {
            ctx.event(
                environment.as_ref(),
                EventReason::RetentionDeleted,
                format!(
                    "Retention deleted {}: older than what it keeps, and nothing needs them",
                    parts.join(" and ")
                ),
            );
        }
    }
}

/// Names for an Event's note (at most 1 kB): the first ten, then how many more.
fn listed(names: &[&str]) -> String {
    const SHOWN: usize = 10;
    let shown = names[..names.len().min(SHOWN)].join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}
