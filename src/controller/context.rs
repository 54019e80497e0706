//! What every reconciler shares: the client, the registry resolver, the
//! reflector stores, the event recorder and the metrics.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
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

    /// Server-side applies `status` to `object`'s status subresource.
    pub async fn apply_status<K, S>(
        &self,
        object: &K,
        status: &S,
        controller: &'static str,
    ) -> Result<(), Error>
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
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(Error::Kube)?;
        self.metrics.write(controller);
        Ok(())
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

/// Shared handle to the context.
pub type Ctx = Arc<Context>;
