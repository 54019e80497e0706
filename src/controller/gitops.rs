//! Telling a GitOps fight over pinned fields: when another field manager
//! overwrote an image or annotation Hoist pins (decided by
//! [`crate::core::gitops`]), a `PinOverwritten` Warning Event on the
//! Environment (where the tenant reads what Hoist does) and on the
//! workload (where `kubectl describe` and Argo CD's resource view show its
//! Events to whoever runs the other tool), once Hoist pinned it again.
//!
//! Each write by the other manager is told once: Hoist remembers, per
//! workload, the resourceVersion it told of. The same manager writing the
//! same values again (a periodic Flux apply) is a new change, told as the
//! next occurrence of the same Events (`series.count`), as client-go's
//! event recorder aggregates isomorphic Events, so a lasting fight is one
//! Event with a growing count rather than a stream of Events. The memory
//! is per process: after a restart the next overwrite starts a new Event.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;

use super::context::{Ctx, FIELD_MANAGER, ToldOverwrites, publish};
use crate::api::Environment;
use crate::core::gitops::{self, Announcement, Told};
use crate::core::reasons::EventReason;
use crate::core::workload::{Workload, WorkloadPin};

/// Tells the overwrites of `pin`'s fields that `live` shows, now that the
/// pin was applied again (see the module).
pub(super) fn tell(ctx: &Ctx, environment: &Environment, live: &Workload, pin: &WorkloadPin) {
    let overwrites = gitops::overwrites(pin, live, FIELD_MANAGER);
    let resource_version = live.metadata().resource_version.clone().unwrap_or_default();
    let id = pin.id();
    let mut recorded = ctx
        .pin_overwrites
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let last = recorded.get(&id);
    match gitops::announcement(&resource_version, &overwrites, last.map(|r| &r.told)) {
        Announcement::Nothing => {}
        Announcement::New => {
            let note = gitops::note(&id, &overwrites);
            tracing::warn!(%note, "pin overwritten");
            let reason = EventReason::PinOverwritten;
            let hub = ctx.new_event(environment.object_ref(&()), reason, note.clone());
            let local = ctx.new_event(reference(live), reason, note);
            publish(ctx.hub.clone(), hub.clone());
            publish(ctx.local.clone(), local.clone());
            recorded.insert(
                id,
                ToldOverwrites {
                    told: Told {
                        resource_version,
                        overwrites,
                        count: 1,
                    },
                    hub,
                    local,
                },
            );
        }
        Announcement::Repeat { count } => {
            if let Some(entry) = recorded.get_mut(&id) {
                tracing::warn!(workload = %id, count, "pin overwritten again");
                entry.told.resource_version = resource_version;
                entry.told.count = count;
                let series = EventSeries {
                    count,
                    last_observed_time: MicroTime(Timestamp::now()),
                };
                tokio::spawn(continue_series(
                    ctx.hub.clone(),
                    entry.hub.clone(),
                    series.clone(),
                ));
                tokio::spawn(continue_series(ctx.local.clone(), entry.local.clone(), series));
            }
        }
    }
}

/// A reference to `workload` for an Event's `regarding`.
fn reference(workload: &Workload) -> ObjectReference {
    let meta = workload.metadata();
    let kind = workload.kind();
    ObjectReference {
        api_version: Some(kind.api_version().to_owned()),
        kind: Some(kind.to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}

/// Records `series` on `event`; an Event gone meanwhile (Events expire,
/// an hour by default) is created again under its name with the series.
async fn continue_series(client: Client, mut event: Event, series: EventSeries) {
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let name = event.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client, &namespace);
    let patch = json!({ "series": series });
    let result = match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 404 => {
            event.series = Some(series);
            api.create(&PostParams::default(), &event).await
        }
        other => other,
    };
    if let Err(error) = result {
        tracing::warn!(%error, event = name, "could not record the next occurrence of an event");
    }
}
