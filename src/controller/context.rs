//! What every reconciler shares: the clients, the registry resolver, the
//! caches, the configuration sources read so far, the event writer and the
//! metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Error;
use super::cache::Cache;
use super::error::Backoff;
use super::metrics::Metrics;
use super::readiness::Readiness;
use super::secret_watches::{SecretVersions, Seen};
use crate::api::{Artifact, Environment, Promotion, SupplyChainRecord};
use crate::core::admission;
use crate::core::clusters::Scope;
use crate::core::config::{self, SecretDigest};
use crate::core::destinations::AllowList;
use crate::core::gates::approval::ApprovalTrust;
use crate::core::gitops::Told;
use crate::core::operator_config::OperatorConfig;
use crate::core::reasons::EventReason;
use crate::core::supply_chain::{self, DueCheck};
use crate::core::tenancy::Boundaries;
use crate::core::workload::WorkloadId;
use crate::registry::Resolver;

/// Creates `event` through `client` in the background; failing to record
/// one never fails a reconcile.
pub fn publish(client: Client, event: Event) {
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client, &namespace);
    tokio::spawn(async move {
        if let Err(error) = api.create(&PostParams::default(), &event).await {
            let reason = event.reason.as_deref().unwrap_or_default();
            tracing::warn!(%error, reason, "could not record an event");
        }
    });
}

/// The field manager of every write Hoist makes.
pub const FIELD_MANAGER: &str = "hoist";

/// Caches of the objects Hoist reads, fed by watches.
#[derive(Clone)]
pub struct Stores {
    pub environments: Cache<Environment>,
    pub promotions: Cache<Promotion>,
    pub artifacts: Cache<Artifact>,
    /// Deployments Hoist manages (labelled `hoist.dev/environment`).
    pub deployments: Cache<Deployment>,
    /// Target workloads of the other kinds Hoist labelled, per served kind.
    pub workloads: super::workloads::WorkloadCaches,
    /// Workload kinds the workload cluster does not serve (found at start-up).
    pub unserved_kinds: std::collections::BTreeSet<crate::api::WorkloadKind>,
    pub namespaces: Cache<Namespace>,
    /// The namespaces of the hub, where Environments live, for their tiers:
    /// `namespaces` on the hub; on an agent, a watch of the hub's own when
    /// the configuration has tiers (`None` without).
    pub tenant_namespaces: Option<Cache<Namespace>>,
    /// ConfigMaps Hoist writes (labelled `hoist.dev/environment`).
    pub config_maps: Cache<ConfigMap>,
    /// Verification Jobs Hoist creates (labelled `hoist.dev/environment`).
    pub jobs: Cache<Job>,
    /// Names and versions of every ConfigMap: when a base ConfigMap changed.
    pub config_map_versions: Cache<PartialObjectMeta<ConfigMap>>,
    /// Names and versions of the Secrets where Environments read them:
    /// when a referenced Secret changed.
    pub secret_versions: SecretVersions,
    /// Workload-cluster agents' Leases (labelled `hoist.dev/cluster`) in
    /// the agent namespace; on the hub only.
    pub leases: Option<Cache<Lease>>,
    /// The namespace of the agents' Leases on the hub (`--agent-namespace`).
    pub agent_namespace: String,
    /// The name of the admission policy that vouches for approvals (and of
    /// its binding).
    pub approval_policy_name: String,
    /// That policy and its binding, watched by name; `None` when the API
    /// server does not serve the kind.
    pub approval_policy: Option<(
        Cache<ValidatingAdmissionPolicy>,
        Cache<ValidatingAdmissionPolicyBinding>,
    )>,
    /// The name of the admission policy that keeps Environment authors
    /// within their RBAC (and of its binding).
    pub environment_policy_name: String,
    /// That policy and its binding, watched by name; `None` when the API
    /// server does not serve the kind.
    pub environment_policy: Option<(
        Cache<ValidatingAdmissionPolicy>,
        Cache<ValidatingAdmissionPolicyBinding>,
    )>,
    /// The cluster admin trusts Environments without that policy.
    pub trust_environments_without_policy: bool,
    /// Whether every cache has listed once (and the operator is not stopping).
    pub readiness: Readiness,
}

impl Stores {
    /// The labels of the hub namespace `namespace` (none when not cached).
    pub fn tenant_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.tenant_namespaces
            .as_ref()
            .and_then(|cache| cache.get(&ObjectRef::new(namespace)))
            .map(|namespace| namespace.labels().clone())
            .unwrap_or_default()
    }

    /// Whether the API server vouches for approvals now.
    pub fn approval_trust(&self) -> ApprovalTrust {
        let name = &self.approval_policy_name;
        match &self.approval_policy {
            None => admission::policy_state(name, false, None, None),
            Some((policies, bindings)) => {
                let policy = policies.get(&ObjectRef::new(name));
                let binding = bindings.get(&ObjectRef::new(name));
                admission::policy_state(name, true, policy.as_deref(), binding.as_deref())
            }
        }
    }

    /// Whether the API server keeps Environment authors within their RBAC now.
    pub fn boundaries(&self) -> Boundaries {
        let name = &self.environment_policy_name;
        let trusted = self.trust_environments_without_policy;
        match &self.environment_policy {
            None => admission::environments_policy_state(name, false, None, None, trusted),
            Some((policies, bindings)) => {
                let policy = policies.get(&ObjectRef::new(name));
                let binding = bindings.get(&ObjectRef::new(name));
                admission::environments_policy_state(
                    name,
                    true,
                    policy.as_deref(),
                    binding.as_deref(),
                    trusted,
                )
            }
        }
    }

    /// Waits until every cache has listed once; false if the operator stops first.
    pub async fn wait_until_synced(&self) -> bool {
        self.readiness.wait_until_synced().await
    }
}

/// Base ConfigMaps, Secret digests and the Secrets holding public keys read
/// from the API, each kept with the resourceVersion it was read at and read
/// again only once the watch has seen another. A configuration Secret's
/// content is never kept, only its digest; of a Secret a supply-chain
/// policy takes keys from, only the PEM public keys are.
#[derive(Default)]
pub struct ConfigSourceCache {
    config_maps: ReadAt<Arc<ConfigMap>>,
    secrets: ReadAt<SecretDigest>,
    key_secrets: ReadAt<Arc<SecretData>>,
}

/// A Secret's data by key.
pub type SecretData = std::collections::BTreeMap<String, Vec<u8>>;

/// What was read of `(namespace, name)`, with the resourceVersion read.
type ReadAt<T> = Mutex<HashMap<(String, String), (String, T)>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Supply-chain records this process made, by namespace, Artifact,
/// component, check and policy: an Environment reconciled before its cache
/// holds a record (or two reconciled at once) finds it here instead of
/// asking the registry again.
#[derive(Default)]
pub struct ChecksMade(Mutex<HashMap<String, SupplyChainRecord>>);

impl ChecksMade {
    fn key(namespace: &str, check: &DueCheck) -> String {
        format!(
            "{namespace}/{}/{}/{:?}/{}",
            check.artifact, check.component, check.policy.check, check.policy.id
        )
    }

    /// The record made of `check` in `namespace`, if any.
    pub fn get(&self, namespace: &str, check: &DueCheck) -> Option<SupplyChainRecord> {
        lock(&self.0).get(&Self::key(namespace, check)).cloned()
    }

    /// Keeps `record`, made of `check` in `namespace`.
    pub fn insert(&self, namespace: &str, check: &DueCheck, record: SupplyChainRecord) {
        lock(&self.0).insert(Self::key(namespace, check), record);
    }
}

/// The pin overwrites told so far, per workload (see `controller::gitops`).
#[derive(Default)]
pub struct PinOverwrites(pub(super) Mutex<HashMap<WorkloadId, ToldOverwrites>>);

/// What was told of one workload's overwrites, with the Events that told it.
pub(super) struct ToldOverwrites {
    pub(super) told: Told,
    /// The Events as created: on the hub (the Environment's), then in the
    /// workload's cluster (the workload's).
    pub(super) hub: Event,
    pub(super) local: Event,
}

/// Who writes Hoist's Events.
pub struct Reporter {
    /// `reportingController`.
    pub controller: String,
    /// `reportingInstance`: the Pod's name when known.
    pub instance: Option<String>,
}

/// Shared by all reconciles.
pub struct Context {
    /// Where Artifacts, Environments, Promotions, their statuses and Events
    /// live: the hub.
    pub hub: Client,
    /// Where Deployments, ConfigMaps, Secrets, Namespaces and Jobs live: the
    /// workload cluster of an agent; the hub itself for the operator.
    pub local: Client,
    /// Which Environments this process reconciles.
    pub scope: Scope,
    pub resolver: Resolver,
    pub reporter: Reporter,
    pub metrics: Metrics,
    pub stores: Stores,
    pub sources: ConfigSourceCache,
    /// Consecutive failures per object, for the retry delays.
    pub backoff: Backoff,
    /// The operator's own user name (from a SelfSubjectReview at start),
    /// the requester of the Promotions autoPromote creates.
    pub identity: Option<String>,
    /// Runs the verification queries.
    pub prometheus: super::prometheus::Prometheus,
    /// Where requests a tenant's object names may go: verification
    /// queries and notification webhooks.
    pub destinations: AllowList,
    /// Supply-chain records this process made, until its caches hold them.
    pub checks: ChecksMade,
    /// The pin overwrites told so far, per workload.
    pub pin_overwrites: PinOverwrites,
    /// Whether this replica leads: only the leader reconciles.
    pub leadership: super::leader::Leadership,
    /// `--trusted-root`: for keyless policies that name no root.
    pub trusted_root: Option<Arc<[u8]>>,
    /// The operator's configuration (`--config`): tenant-wide settings.
    pub config: Arc<OperatorConfig>,
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
        self.apply_status_as(FIELD_MANAGER, object, status, controller)
            .await
    }

    /// [`Context::apply_status`] with field manager `manager`.
    pub async fn apply_status_as<K, S>(
        &self,
        manager: &str,
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
        let api: Api<K> = Api::namespaced(self.hub.clone(), &namespace);
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": object.name_any(), "namespace": namespace},
            "status": status,
        });
        let written = api
            .patch_status(
                &object.name_any(),
                &PatchParams::apply(manager).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::Kube)?;
        self.metrics.write(controller);
        Ok(written)
    }

    /// Publishes an `events.k8s.io/v1` Event about `object` in the
    /// background: the reconcile does not wait for it, and failing to
    /// record one never fails a reconcile. Its `eventTime` is taken now, so
    /// Events order as their causes did.
    pub fn event<K: Resource<DynamicType = ()>>(&self, object: &K, reason: EventReason, note: String) {
        let event = self.new_event(object.object_ref(&()), reason, note);
        publish(self.hub.clone(), event);
    }

    /// An `events.k8s.io/v1` Event about `regarding`, taken now and named
    /// after it, in its namespace (`default` for a cluster-scoped object).
    pub fn new_event(&self, regarding: ObjectReference, reason: EventReason, note: String) -> Event {
        let now = Timestamp::now();
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        Event {
            action: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note),
            event_time: Some(MicroTime(now)),
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace),
                ..Default::default()
            },
            regarding: Some(regarding),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(if reason.is_warning() { "Warning" } else { "Normal" }.to_string()),
            ..Default::default()
        }
    }

    /// The ConfigMap `namespace/name`, from [`ConfigSourceCache`] while
    /// the watch has seen no newer version; `None` if it does not exist.
    pub async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<Arc<ConfigMap>>, Error> {
        let seen = Seen::in_cache(&self.stores.config_map_versions, namespace, name);
        self.read_through::<ConfigMap, _>(&self.sources.config_maps, seen, namespace, name, Arc::new)
            .await
    }

    /// The digest of Secret `namespace/name`'s content, read again only
    /// when the watch has seen a new version; `None` if it does not exist.
    pub async fn secret_digest(&self, namespace: &str, name: &str) -> Result<Option<SecretDigest>, Error> {
        let seen = self.stores.secret_versions.seen(namespace, name);
        self.read_through(&self.sources.secrets, seen, namespace, name, |secret: Secret| {
            config::secret_digest(&secret)
        })
        .await
    }

    /// The data of Secret `namespace/name`, which holds public keys a
    /// supply-chain policy names, read again only when the watch has seen a
    /// new version; `None` if it does not exist.
    pub async fn key_secret(&self, namespace: &str, name: &str) -> Result<Option<Arc<SecretData>>, Error> {
        let seen = self.stores.secret_versions.seen(namespace, name);
        self.read_through(
            &self.sources.key_secrets,
            seen,
            namespace,
            name,
            |secret: Secret| Arc::new(supply_chain::secret_data(&secret)),
        )
        .await
    }

    /// What `keep` takes of object `namespace/name`, from `cached` while the
    /// watch has seen no newer version of it (`seen`), else read from the
    /// API; `None` if it does not exist. A watch that knows nothing of it
    /// (not listed) sends the read to the API.
    async fn read_through<K, T>(
        &self,
        cached: &ReadAt<T>,
        seen: Seen,
        namespace: &str,
        name: &str,
        keep: impl FnOnce(K) -> T,
    ) -> Result<Option<T>, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + 'static,
        T: Clone,
    {
        let key = (namespace.to_string(), name.to_string());
        match seen {
            Seen::Absent => {
                lock(cached).remove(&key);
                return Ok(None);
            }
            Seen::Version(version) => {
                if let Some((read, value)) = lock(cached).get(&key)
                    && *read == version
                {
                    return Ok(Some(value.clone()));
                }
            }
            Seen::Unknown => {}
        }
        let api: Api<K> = Api::namespaced(self.local.clone(), namespace);
        let Some(object) = api.get_opt(name).await.map_err(Error::Kube)? else {
            return Ok(None);
        };
        let read = object.resource_version().unwrap_or_default();
        let value = keep(object);
        lock(cached).insert(key, (read, value.clone()));
        Ok(Some(value))
    }
}

/// How long a reconcile waits for its own writes to reach the caches.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);

/// Waits until `cache` no longer holds the version of an object from before
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
pub async fn await_cached<K>(cache: &Cache<K>, before: Option<&str>, written: &K)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let key = ObjectRef::from_obj(written);
    let caught_up =
        |store: &kube::runtime::reflector::Store<K>| shows_write(store.get(&key).as_deref(), before, written);
    if !cache.wait_until(caught_up, CACHE_CATCH_UP).await {
        tracing::debug!(object = %key, "cache did not catch up with a write");
    }
}

/// Whether `cached` (the cache's version of an object) shows the write
/// answered with `written` over the version `before`: it is the version
/// written, or a later one. A later version differs from `before` and keeps
/// at least the written generation; a version between the two differs from
/// `before` too, but has the older generation. Such a version is a status
/// write of another writer (kube-controller-manager's on a Deployment, late
/// under load) committed after the cache's `before` and before this write:
/// taking it as caught up let the next reconcile see a target Deployment
/// without its pin and apply the pin again.
fn shows_write<K: Resource>(cached: Option<&K>, before: Option<&str>, written: &K) -> bool {
    let Some(cached) = cached else {
        return false;
    };
    let version = cached.resource_version();
    version == written.resource_version()
        || (version.as_deref() != before && cached.meta().generation >= written.meta().generation)
}

/// Shared handle to the context.
pub type Ctx = Arc<Context>;

#[cfg(test)]
#[path = "tests/context.rs"]
mod tests;
