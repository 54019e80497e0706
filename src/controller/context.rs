//! What every reconciler shares: the client, the registry resolver, the
//! reflector stores, the event recorder and the metrics.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::Error;
use super::metrics::Metrics;
use crate::api::{Artifact, Environment, Promotion};
use crate::registry::Resolver;

/// The field manager of every write Hoist makes.
pub const FIELD_MANAGER: &str = "hoist";

/// Caches of the objects Hoist reads, fed by watches.
#[derive(Clone)]
pub struct Stores {
    pub environments: Store<Environment>,
    pub promotions: Store<Promotion>,
    pub artifacts: Store<Artifact>,
    /// Deployments Hoist manages (labelled `hoist.dev/environment`).
    pub deployments: Store<Deployment>,
    pub namespaces: Store<Namespace>,
    /// ConfigMaps Hoist writes (labelled `hoist.dev/environment`).
    pub config_maps: Store<ConfigMap>,
}

impl Stores {
    /// Waits until every cache has listed once; false if one never will
    /// (its writer was dropped at shutdown).
    pub async fn wait_until_ready(&self) -> bool {
        let synced = futures::future::join_all([
            self.environments.wait_until_ready().boxed(),
            self.promotions.wait_until_ready().boxed(),
            self.artifacts.wait_until_ready().boxed(),
            self.deployments.wait_until_ready().boxed(),
            self.namespaces.wait_until_ready().boxed(),
            self.config_maps.wait_until_ready().boxed(),
        ])
        .await;
        synced.iter().all(Result::is_ok)
    }
}

/// Shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub resolver: Resolver,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub stores: Stores,
}

impl Context {
    pub fn now(&self) -> Time {
        Time(Timestamp::now())
    }

    /// Server-side applies `status` to `object`'s status subresource and
    /// returns the object as written.
    pub async fn apply_status<K, S>(
        &self,
        object: &K,
        status: &S,
        controller: &'static str,
    ) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let namespace = object.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": object.name_any(), "namespace": namespace},
            "status": status,
        });
        let written = api
            .patch_status(
                &object.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::Kube)?;
        self.metrics.write(controller);
        Ok(written)
    }

    /// Publishes an Event about `object`; failing to record one never fails a reconcile.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, reason, "could not record an event");
        }
    }
}

/// How long a reconcile waits for its own writes to reach the caches.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);

/// Waits until `store` no longer holds the version of an object from before
/// this reconcile wrote it (`before`, `None` if it was not cached), or holds
/// the version written (`written`, for a write that changed nothing).
///
/// Watches deliver a reconcile's own writes a moment later, and the next
/// reconcile of the same object may start at once: deciding on the cache
/// from before the write would redo old steps (re-pin a Deployment to the
/// previous release whose Promotion still looks in flight). Returning only
/// once the cache has caught up makes each reconcile see what the last one
/// wrote. Gives up after [`CACHE_CATCH_UP`]; the next watch event triggers
/// another reconcile anyway.
pub async fn await_cached<K>(store: &Store<K>, before: Option<&str>, written: &K)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let key = ObjectRef::from_obj(written);
    let written = written.resource_version();
    let caught_up = || {
        let cached = store.get(&key).and_then(|object| object.resource_version());
        cached.is_some() && (cached == written || cached.as_deref() != before)
    };
    let deadline = tokio::time::Instant::now() + CACHE_CATCH_UP;
    while !caught_up() {
        if tokio::time::Instant::now() >= deadline {
            tracing::debug!(object = %key, "cache did not catch up with a write");
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Shared handle to the context.
pub type Ctx = Arc<Context>;
