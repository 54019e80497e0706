//! Object storage with the write semantics of the real API server: one
//! global resourceVersion (like etcd's revision), a bounded event history for
//! watches, no-op detection, generation, status subresource rules,
//! finalizers, owner-reference garbage collection, namespace deletion and
//! CustomResourceDefinition registration.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::admission::{self, Admission, Operation, Policies};
use crate::deployments::{self, DeploymentController};
use crate::emulation::{Emulations, StatusWrite};
use crate::fieldmanager;
use crate::jobs::{self, JobController};
use crate::meta::{self, NameRule};
use crate::rbac::{self, RbacIndex};
use crate::resources::{self, GenerationPolicy, ResourceInfo, ResourceKey, ResourceTypes, Resources};
use crate::schema::FieldError;
use crate::status::{ApiError, FieldReason, field_error};
use crate::workloads;
use crate::{
    daemonsets::DaemonSetController, rollouts::RolloutController, statefulsets::StatefulSetController,
};

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
/// Ordered like etcd keys, so lists come out sorted by namespace then name.
pub(crate) type ObjectKey = (String, String);

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";
const DEPLOYMENT_GROUP: &str = "apps";
const DEPLOYMENT_PLURAL: &str = "deployments";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub resource_version: u64,
    pub resource: ResourceKey,
    pub event_type: EventType,
    /// The object after the change (for deletions: its last state, carrying
    /// the deletion's resourceVersion).
    pub object: Value,
    /// The object before the change, for selector transitions and for
    /// rewinding the store to an older resourceVersion.
    pub previous: Option<Value>,
}

struct Watcher {
    resource: ResourceKey,
    namespace: Option<String>,
    sender: UnboundedSender<Arc<StoredEvent>>,
}

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteTarget {
    Main,
    Status,
}

impl WriteTarget {
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            WriteTarget::Main => None,
            WriteTarget::Status => Some("status"),
        }
    }
}

/// How one write is carried out.
pub(crate) struct WriteOptions<'a> {
    pub manager: &'a str,
    pub now: &'a str,
    pub target: WriteTarget,
    /// Server-side apply already computed `metadata.managedFields`.
    pub fields_recorded: bool,
    /// An update (PUT) of a custom resource must name the resourceVersion it
    /// replaces; patches need not.
    pub require_resource_version: bool,
    /// The client's request, which admission policies see; the store's own
    /// writes have none.
    pub admission: Option<Admission<'a>>,
}

pub(crate) struct WriteOutcome {
    pub object: Value,
    /// Whether anything was stored (a no-op write stores nothing).
    pub changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

pub(crate) struct DeleteOptions<'a> {
    pub propagation: Propagation,
    pub precondition_uid: Option<&'a str>,
    pub precondition_resource_version: Option<&'a str>,
    pub now: &'a str,
    /// As for [`WriteOptions::admission`].
    pub admission: Option<Admission<'a>>,
}

pub(crate) struct DeleteOutcome {
    /// The deleted object, or the object now marked for deletion.
    pub object: Value,
    /// Removed from storage now (otherwise finalizers hold it).
    pub removed: bool,
    pub changed: bool,
}

/// How a watch starts.
pub(crate) struct WatchStart {
    /// Events after the requested resourceVersion, oldest first.
    pub backlog: Vec<Arc<StoredEvent>>,
    pub receiver: UnboundedReceiver<Arc<StoredEvent>>,
}

/// The requested resourceVersion is older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub(crate) struct Expired {
    pub requested: u64,
    /// The oldest resourceVersion still servable.
    pub oldest: u64,
}

pub(crate) struct Store {
    pub resources: Resources,
    objects: BTreeMap<ResourceKey, BTreeMap<ObjectKey, Value>>,
    resource_version: u64,
    history: VecDeque<Arc<StoredEvent>>,
    history_limit: usize,
    /// Watches and lists from below this resourceVersion can no longer be
    /// served: the events after it were dropped from the history.
    compacted: u64,
    watchers: Vec<Watcher>,
    /// The emulated Deployment controller, when the cluster has one. It is
    /// taken out while it syncs, so its own status writes do not feed it.
    deployment_controller: Option<DeploymentController>,
    /// The emulated Job controller, when the cluster has one.
    job_controller: Option<JobController>,
    /// The other emulated controllers (StatefulSets, DaemonSets, Argo
    /// Rollouts), taken out while they sync as the Deployment controller is.
    emulations: Option<Emulations>,
    /// The RBAC objects, indexed for the authorizer.
    rbac: Arc<RbacIndex>,
    /// The admission policies and their bindings, compiled.
    policies: Arc<Policies>,
}

fn key_of(resource: &ResourceInfo, namespace: Option<&str>, name: &str) -> ObjectKey {
    let namespace = if resource.namespaced {
        namespace.unwrap_or_default()
    } else {
        ""
    };
    (namespace.to_owned(), name.to_owned())
}

fn is_crd(resource: &ResourceInfo) -> bool {
    resource.group == CRD_GROUP && resource.plural == CRD_PLURAL
}

fn is_deployment(resource: &ResourceInfo) -> bool {
    resource.group == DEPLOYMENT_GROUP && resource.plural == DEPLOYMENT_PLURAL
}

fn is_job(resource: &ResourceInfo) -> bool {
    resource.group == jobs::GROUP && resource.plural == jobs::PLURAL
}

fn job_key() -> ResourceKey {
    ResourceKey {
        group: jobs::GROUP.to_owned(),
        plural: jobs::PLURAL.to_owned(),
    }
}

fn deployment_key() -> ResourceKey {
    ResourceKey {
        group: DEPLOYMENT_GROUP.to_owned(),
        plural: DEPLOYMENT_PLURAL.to_owned(),
    }
}

fn is_namespace(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && resource.plural == "namespaces"
}

fn set_resource_version(object: &mut Value, resource_version: u64) {
    meta::metadata_mut(object).insert("resourceVersion".to_owned(), json!(resource_version.to_string()));
}

/// The object without `managedFields` timestamps: a write whose only effect
/// would be new timestamps is a no-op, as on the real server.
fn without_managed_field_times(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(entries) = copy
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for entry in entries {
            if let Some(entry) = entry.as_object_mut() {
                entry.remove("time");
            }
        }
    }
    copy
}

/// The parts of an object whose change bumps `metadata.generation`.
fn generation_relevant(object: &Value, policy: GenerationPolicy) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        let annotations = map
            .get("metadata")
            .map(|metadata| metadata["annotations"].clone());
        map.remove("metadata");
        if policy != GenerationPolicy::AllButMetadata {
            map.remove("status");
        }
        if policy == GenerationPolicy::SpecAndAnnotations {
            map.insert("annotations".to_owned(), annotations.unwrap_or(Value::Null));
        }
    }
    copy
}

fn metadata_name_rule(resource: &ResourceInfo) -> NameRule {
    if is_namespace(resource) {
        NameRule::DnsLabel
    } else if rbac::is_rbac_resource(&resource.group, &resource.plural) {
        NameRule::PathSegment
    } else {
        NameRule::DnsSubdomain
    }
}

fn is_admission_resource(key: &ResourceKey) -> bool {
    key.group == admission::GROUP && (key.plural == admission::POLICIES || key.plural == admission::BINDINGS)
}

/// Defaults the real server's decoding applies to built-in kinds the
/// stand-in knows.
fn apply_builtin_defaults(resource: &ResourceInfo, object: &mut Value) {
    if is_deployment(resource) {
        deployments::apply_defaults(object);
    }
    if is_job(resource) {
        jobs::apply_defaults(object);
    }
    workloads::apply_defaults(resource, object);
    if resource.group.is_empty() && resource.plural == "secrets" {
        merge_string_data(object);
    }
    if resource.group == rbac::GROUP {
        rbac::apply_defaults(&resource.plural, object);
    }
    if resource.group == admission::GROUP {
        admission::apply_defaults(&resource.plural, object);
    }
}

/// Calls `fired(store, key, id)` under the store's lock at `at`, unless the
/// store is gone: the timers of the emulated controllers. Aborting the
/// answered handle cancels it.
pub(crate) fn wake_at(
    store: &Weak<Mutex<Store>>,
    at: tokio::time::Instant,
    key: ObjectKey,
    id: u64,
    fired: fn(&mut Store, &ObjectKey, u64),
) -> tokio::task::AbortHandle {
    let store = Weak::clone(store);
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        if let Some(store) = store.upgrade() {
            fired(&mut crate::server::lock(&store), &key, id);
        }
    })
    .abort_handle()
}

/// A Secret's `stringData` is write-only: the API server merges it into
/// `data` (base64, its keys winning) and stores no `stringData`.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(object) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = object.remove("stringData") else {
        return;
    };
    let data = object.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            resources: Resources::with_builtins(),
            objects: BTreeMap::new(),
            resource_version: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            watchers: Vec::new(),
            deployment_controller: None,
            job_controller: None,
            emulations: None,
            rbac: Arc::default(),
            policies: Arc::default(),
        }
    }

    /// The RBAC data the authorizer reads, as of now.
    pub fn rbac(&self) -> Arc<RbacIndex> {
        Arc::clone(&self.rbac)
    }

    fn objects_of(&self, group: &str, plural: &str) -> impl Iterator<Item = &Value> {
        let key = ResourceKey {
            group: group.to_owned(),
            plural: plural.to_owned(),
        };
        self.objects.get(&key).into_iter().flat_map(BTreeMap::values)
    }

    /// Rebuilds the index of RBAC objects or admission policies after one
    /// of them changed.
    fn reindex(&mut self, changed: &ResourceKey) {
        if rbac::is_rbac_resource(&changed.group, &changed.plural) {
            self.rbac = RbacIndex::new(
                self.objects_of(rbac::GROUP, rbac::CLUSTER_ROLES),
                self.objects_of(rbac::GROUP, rbac::ROLES),
                self.objects_of(rbac::GROUP, rbac::CLUSTER_ROLE_BINDINGS),
                self.objects_of(rbac::GROUP, rbac::ROLE_BINDINGS),
            );
        }
        if is_admission_resource(changed) {
            self.policies = Policies::new(
                self.objects_of(admission::GROUP, admission::POLICIES),
                self.objects_of(admission::GROUP, admission::BINDINGS),
            );
        }
    }

    /// `withAuthorization` of the update and patch handlers: a PUT or an
    /// apply that creates its object must also be allowed to `create` it,
    /// refused with the authorizer's bare reason.
    fn authorize_create_on_update(
        &self,
        resource: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        user: &crate::auth::UserInfo,
    ) -> Result<(), ApiError> {
        let attributes = rbac::Attributes::resource(
            user,
            "create",
            &resource.group,
            &resource.plural,
            "",
            namespace.unwrap_or_default(),
            name,
        );
        let decision = self.rbac.authorize(&attributes);
        if decision.allowed {
            return Ok(());
        }
        let mut details = json!({"name": name, "kind": resource.plural});
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} {} is forbidden: {}",
                resource.group_resource(),
                crate::schema::field::go_quote(name),
                decision.reason
            ),
        )
        .with_details(details))
    }

    /// Validating admission of a client's write (after schema validation,
    /// as `genericregistry.Store` calls it): the policies that match.
    fn admit(
        &self,
        request: &admission::Request<'_>,
        warnings: &std::sync::Mutex<Vec<String>>,
    ) -> Result<(), ApiError> {
        if self.policies.is_empty() {
            return Ok(());
        }
        let namespace = self
            .namespace_resource()
            .and_then(|namespaces| self.get(&namespaces, None, request.namespace));
        if request.resource.namespaced && !request.namespace.is_empty() && namespace.is_none() {
            return Err(ApiError::namespace_not_found(request.namespace));
        }
        self.policies.admit(request, &self.rbac, namespace, warnings)
    }

    /// Runs the emulated Deployment controller from now on; `this` is the
    /// shared handle of this store, which its deadline timers lock.
    pub fn run_deployment_controller(&mut self, this: Weak<Mutex<Store>>) {
        self.deployment_controller = Some(DeploymentController::new(Weak::clone(&this)));
        self.job_controller = Some(JobController::new(this));
    }

    /// Runs the emulated StatefulSet and DaemonSet controllers from now on,
    /// on a cluster of `nodes` nodes.
    pub fn run_workload_controllers(&mut self, this: Weak<Mutex<Store>>, nodes: usize) {
        let emulations = self.emulations.get_or_insert_with(|| Emulations::new(this));
        emulations.add(Box::new(StatefulSetController::default()));
        emulations.add(Box::new(DaemonSetController::new(nodes)));
    }

    /// Runs the emulated Argo Rollouts controller from now on.
    pub fn run_rollout_controller(&mut self, this: Weak<Mutex<Store>>) {
        self.emulations
            .get_or_insert_with(|| Emulations::new(this))
            .add(Box::new(RolloutController::default()));
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, resource: &ResourceInfo, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects
            .get(&resource.key())?
            .get(&key_of(resource, namespace, name))
    }

    /// The objects of a resource (in one namespace, or all) as they were at
    /// `at` (default: now), sorted by key.
    pub fn list(
        &self,
        resource: &ResourceInfo,
        namespace: Option<&str>,
        at: Option<u64>,
    ) -> Result<Vec<(ObjectKey, Value)>, Expired> {
        let mut objects = self.objects.get(&resource.key()).cloned().unwrap_or_default();
        if let Some(at) = at.filter(|at| *at < self.resource_version) {
            if at < self.compacted {
                return Err(Expired {
                    requested: at,
                    oldest: self.compacted,
                });
            }
            let key = resource.key();
            for event in self
                .history
                .iter()
                .rev()
                .take_while(|event| event.resource_version > at)
            {
                if event.resource != key {
                    continue;
                }
                let object_key = (
                    meta::namespace(&event.object).to_owned(),
                    meta::name(&event.object).to_owned(),
                );
                match (&event.event_type, &event.previous) {
                    (EventType::Added, _) | (_, None) => {
                        objects.remove(&object_key);
                    }
                    (EventType::Modified | EventType::Deleted, Some(previous)) => {
                        objects.insert(object_key, previous.clone());
                    }
                }
            }
        }
        Ok(objects
            .into_iter()
            .filter(|((object_namespace, _), _)| {
                namespace.is_none_or(|namespace| namespace == object_namespace)
            })
            .collect())
    }

    /// Subscribes to changes of a resource after `since` (`None`: from now).
    pub fn watch(
        &mut self,
        resource: &ResourceInfo,
        namespace: Option<&str>,
        since: Option<u64>,
    ) -> Result<WatchStart, Expired> {
        let key = resource.key();
        let backlog = match since {
            Some(since) if since < self.compacted => {
                return Err(Expired {
                    requested: since,
                    oldest: self.compacted,
                });
            }
            Some(since) => self
                .history
                .iter()
                .filter(|event| event.resource_version > since && event.resource == key)
                .filter(|event| namespace.is_none_or(|namespace| namespace == meta::namespace(&event.object)))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let (sender, receiver) = unbounded_channel();
        self.watchers.push(Watcher {
            resource: key,
            namespace: namespace.map(str::to_owned),
            sender,
        });
        Ok(WatchStart { backlog, receiver })
    }

    fn emit(
        &mut self,
        resource: &ResourceInfo,
        event_type: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(StoredEvent {
            resource_version: self.resource_version,
            resource: resource.key(),
            event_type,
            object,
            previous,
        });
        let namespace = meta::namespace(&event.object).to_owned();
        self.watchers.retain(|watcher| {
            if watcher.resource != event.resource
                || watcher
                    .namespace
                    .as_deref()
                    .is_some_and(|wanted| wanted != namespace)
            {
                return !watcher.sender.is_closed();
            }
            watcher.sender.send(Arc::clone(&event)).is_ok()
        });
        if rbac::is_rbac_resource(&event.resource.group, &event.resource.plural)
            || is_admission_resource(&event.resource)
        {
            self.reindex(&event.resource);
        }
        self.history.push_back(Arc::clone(&event));
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.resource_version;
            }
        }
        if event.resource.group == DEPLOYMENT_GROUP && event.resource.plural == DEPLOYMENT_PLURAL {
            self.notify_deployment_controller(&event);
        }
        if event.resource == job_key() {
            self.notify_job_controller(&event);
        }
        self.notify_emulations(&event);
    }

    /// The emulated controller sees every stored change of a Deployment, as
    /// the real one watches them, and writes its status right after the
    /// change that caused it (under the same lock, so the next read sees it).
    fn notify_deployment_controller(&mut self, event: &StoredEvent) {
        let Some(mut controller) = self.deployment_controller.take() else {
            return;
        };
        if controller.observe(event) {
            let status = controller.sync(&event.object);
            self.write_deployment_status(&event.object, status);
        }
        self.deployment_controller = Some(controller);
    }

    /// A timer of the emulated controller fired (Pods became ready, or a
    /// progress deadline passed): it looks at the Deployment again, unless
    /// the timer was replaced meanwhile.
    pub fn deployment_timer_fired(&mut self, key: &ObjectKey, timer: u64) {
        let Some(mut controller) = self.deployment_controller.take() else {
            return;
        };
        let deployment = self
            .objects
            .get(&deployment_key())
            .and_then(|objects| objects.get(key))
            .cloned();
        if let Some(deployment) = deployment.filter(|_| controller.is_current_timer(key, timer)) {
            let status = controller.sync(&deployment);
            self.write_deployment_status(&deployment, status);
        }
        self.deployment_controller = Some(controller);
    }

    /// The emulated Job controller sees every stored change of a Job.
    fn notify_job_controller(&mut self, event: &StoredEvent) {
        let Some(mut controller) = self.job_controller.take() else {
            return;
        };
        if controller.observe(event) {
            let status = controller.sync(&event.object);
            self.write_controller_status(&job_key(), &event.object, status);
        }
        self.job_controller = Some(controller);
    }

    /// A timer of the emulated Job controller fired (a Pod ended, a
    /// back-off or a deadline passed).
    pub fn job_timer_fired(&mut self, key: &ObjectKey, timer: u64) {
        let Some(mut controller) = self.job_controller.take() else {
            return;
        };
        let job = self
            .objects
            .get(&job_key())
            .and_then(|objects| objects.get(key))
            .cloned();
        if let Some(job) = job.filter(|_| controller.is_current_timer(key, timer)) {
            let status = controller.sync(&job);
            self.write_controller_status(&job_key(), &job, status);
        }
        self.job_controller = Some(controller);
    }

    /// The other emulated controllers see every stored change of their resource.
    fn notify_emulations(&mut self, event: &StoredEvent) {
        let Some(mut emulations) = self.emulations.take() else {
            return;
        };
        if let Some(write) = emulations.observe(event) {
            self.write_emulated_status(write);
        }
        self.emulations = Some(emulations);
    }

    /// A timer of one of the other emulated controllers fired: it looks at
    /// the object again, unless the timer was replaced meanwhile.
    pub fn emulation_timer_fired(&mut self, key: &ObjectKey, timer: u64) {
        let Some(mut emulations) = self.emulations.take() else {
            return;
        };
        if let Some(resource) = emulations.timer(key, timer)
            && let Some(object) = self
                .objects
                .get(&resource)
                .and_then(|objects| objects.get(key))
                .cloned()
            && let Some(write) = emulations.sync_object(&resource, &object)
        {
            self.write_emulated_status(write);
        }
        self.emulations = Some(emulations);
    }

    fn write_emulated_status(&mut self, write: StatusWrite) {
        self.write_status_as(write.manager, &write.resource, &write.object, write.status);
    }

    fn write_deployment_status(&mut self, deployment: &Value, status: Value) {
        self.write_controller_status(&deployment_key(), deployment, status);
    }

    /// An emulated controller's status update: a write to `/status` by
    /// `kube-controller-manager`, not a request of any client.
    fn write_controller_status(&mut self, key: &ResourceKey, deployment: &Value, status: Value) {
        self.write_status_as(deployments::MANAGER, key, deployment, status);
    }

    /// A status update by an emulated controller with field manager `manager`.
    fn write_status_as(&mut self, manager: &str, key: &ResourceKey, deployment: &Value, status: Value) {
        let Some(resource) = self.resources.get(key).cloned() else {
            return;
        };
        let now = meta::now();
        let options = WriteOptions {
            manager,
            now: &now,
            target: WriteTarget::Status,
            fields_recorded: false,
            require_resource_version: false,
            admission: None,
        };
        let name = meta::name(deployment);
        let namespace = meta::namespace(deployment);
        // The Deployment was read under this lock, so only a bug fails the write.
        if let Err(error) = self.update(
            &resource,
            Some(namespace),
            name,
            json!({"status": status}),
            &options,
        ) {
            tracing::warn!(%error, namespace, name, "an emulated controller could not write status");
        }
    }

    /// Stores a new state of an object under a fresh resourceVersion.
    fn commit(&mut self, resource: &ResourceInfo, mut object: Value, previous: Option<Value>) -> Value {
        self.resource_version += 1;
        set_resource_version(&mut object, self.resource_version);
        let key = (
            meta::namespace(&object).to_owned(),
            meta::name(&object).to_owned(),
        );
        self.objects
            .entry(resource.key())
            .or_default()
            .insert(key, object.clone());
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(resource, event_type, object.clone(), previous);
        object
    }

    /// Removes an object; `last_state` is what watchers see deleted.
    fn remove(&mut self, resource: &ResourceInfo, key: &ObjectKey, last_state: Value, now: &str) -> Value {
        let previous = self
            .objects
            .get_mut(&resource.key())
            .and_then(|objects| objects.remove(key));
        self.resource_version += 1;
        let mut object = last_state;
        set_resource_version(&mut object, self.resource_version);
        self.emit(resource, EventType::Deleted, object.clone(), previous);
        self.after_removal(resource, &object, Propagation::Background, now);
        object
    }

    /// Consequences of an object leaving storage: its dependents, its
    /// namespace's termination, a CRD's resource.
    fn after_removal(
        &mut self,
        resource: &ResourceInfo,
        object: &Value,
        propagation: Propagation,
        now: &str,
    ) {
        self.collect_dependents(meta::uid(object).to_owned(), propagation, now);
        if is_crd(resource) {
            self.unregister_crd(object, now);
        }
        let namespace = meta::namespace(object).to_owned();
        if resource.namespaced && !namespace.is_empty() {
            self.finish_namespace_if_empty(&namespace, now);
        }
    }

    /// Garbage collection: dependents lose their reference to a removed
    /// owner; those left without owners are deleted (unless orphaned).
    fn collect_dependents(&mut self, owner_uid: String, propagation: Propagation, now: &str) {
        if owner_uid.is_empty() {
            return;
        }
        let mut dependents = Vec::new();
        for (resource_key, objects) in &self.objects {
            for (key, object) in objects {
                let owned = object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| {
                        owners
                            .iter()
                            .any(|owner| owner["uid"].as_str() == Some(&owner_uid))
                    });
                if owned {
                    dependents.push((resource_key.clone(), key.clone()));
                }
            }
        }
        for (resource_key, key) in dependents {
            let (Some(resource), Some(object)) = (
                self.resources.get(&resource_key).cloned(),
                self.objects
                    .get(&resource_key)
                    .and_then(|objects| objects.get(&key))
                    .cloned(),
            ) else {
                continue;
            };
            let remaining: Vec<Value> = object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|owner| owner["uid"].as_str() != Some(&owner_uid))
                .cloned()
                .collect();
            if propagation == Propagation::Orphan || !remaining.is_empty() {
                let mut updated = object.clone();
                let metadata = meta::metadata_mut(&mut updated);
                if remaining.is_empty() {
                    metadata.remove("ownerReferences");
                } else {
                    metadata.insert("ownerReferences".to_owned(), Value::Array(remaining));
                }
                self.commit(&resource, updated, Some(object));
            } else {
                let options = DeleteOptions {
                    propagation: Propagation::Background,
                    precondition_uid: None,
                    precondition_resource_version: None,
                    now,
                    admission: None,
                };
                // The dependent exists (just read), so deleting it cannot fail.
                let _ = self.delete(&resource, Some(&key.0), &key.1, &options);
            }
        }
    }

    fn namespace_resource(&self) -> Option<Arc<ResourceInfo>> {
        self.resources
            .get(&ResourceKey {
                group: String::new(),
                plural: "namespaces".to_owned(),
            })
            .cloned()
    }

    /// Removes a terminating namespace once nothing is left in it.
    fn finish_namespace_if_empty(&mut self, namespace: &str, now: &str) {
        let Some(namespaces) = self.namespace_resource() else {
            return;
        };
        let Some(object) = self.get(&namespaces, None, namespace).cloned() else {
            return;
        };
        if !meta::is_deleting(&object) {
            return;
        }
        let occupied = self.objects.values().any(|objects| {
            objects
                .keys()
                .any(|(object_namespace, _)| object_namespace == namespace)
        });
        if occupied {
            return;
        }
        let mut last_state = object;
        if let Some(spec) = last_state.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("finalizers".to_owned(), json!([]));
        }
        self.remove(
            &namespaces,
            &(String::new(), namespace.to_owned()),
            last_state,
            now,
        );
    }

    /// Whether objects may be created in `namespace`.
    fn check_namespace_open(&self, namespace: &str) -> Result<(), ApiError> {
        let namespaces = self.namespace_resource();
        let object = namespaces
            .as_ref()
            .and_then(|namespaces| self.get(namespaces, None, namespace));
        match object {
            None => Err(ApiError::namespace_not_found(namespace)),
            Some(object) if meta::is_deleting(object) => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
            )
            .with_details(json!({
                "name": namespace,
                "kind": "namespaces",
                "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {namespace} is being terminated"),
                    "field": "metadata.namespace",
                }],
            }))),
            Some(_) => Ok(()),
        }
    }

    /// Checks that a body addresses the resource and object of the URL.
    fn check_identity(
        resource: &ResourceInfo,
        namespace: Option<&str>,
        name: Option<&str>,
        body: &Value,
    ) -> Result<(), ApiError> {
        if let Some(kind) = body["kind"].as_str().filter(|kind| !kind.is_empty())
            && kind != resource.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        if let Some(api_version) = body["apiVersion"]
            .as_str()
            .filter(|api_version| !api_version.is_empty())
        {
            let served = resource
                .versions
                .iter()
                .any(|version| resource.api_version(&version.name) == api_version);
            if !served {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({api_version}) does not match the expected API version ({})",
                    resource.api_version(resource.storage_version())
                )));
            }
        }
        let body_namespace = meta::namespace(body);
        if resource.namespaced && !body_namespace.is_empty() && Some(body_namespace) != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let body_name = meta::name(body);
        if let Some(name) = name
            && !body_name.is_empty()
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    /// Schema pruning, defaulting and validation of a custom resource, plus
    /// metadata validation for every kind.
    fn validate(resource: &ResourceInfo, object: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let mut errors: Vec<FieldError> = meta::validate(object, metadata_name_rule(resource));
        if resource.group == rbac::GROUP {
            errors.extend(rbac::validate(&resource.plural, object, old));
        }
        if resource.group == admission::GROUP {
            errors.extend(admission::validate(&resource.plural, object));
        }
        if is_job(resource) {
            errors.extend(jobs::validate(object));
        }
        errors.extend(workloads::validate(resource, object, old));
        if let Some(schema) = resource.schema() {
            schema.normalize(object);
            if let Err(schema_errors) = schema.validate(object, old, &errors) {
                errors.extend(schema_errors);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(resource, meta::name(object), &errors))
        }
    }

    /// Fields a write to `target` does not own, for the field manager.
    fn ignored_fields(resource: &ResourceInfo, target: WriteTarget, objects: &[&Value]) -> Vec<String> {
        match target {
            WriteTarget::Main if resource.status_subresource => vec!["status".to_owned()],
            WriteTarget::Main => Vec::new(),
            WriteTarget::Status => {
                let mut fields: Vec<String> = objects
                    .iter()
                    .filter_map(|object| object.as_object())
                    .flat_map(|object| object.keys().cloned())
                    .filter(|field| !["apiVersion", "kind", "metadata", "status"].contains(&field.as_str()))
                    .collect();
                fields.sort();
                fields.dedup();
                fields
            }
        }
    }

    fn record_update(
        resource: &ResourceInfo,
        old: Option<&Value>,
        new: &mut Value,
        options: &WriteOptions<'_>,
    ) {
        let objects: Vec<&Value> = old.into_iter().chain(std::iter::once(&*new)).collect();
        let ignored = Self::ignored_fields(resource, options.target, &objects);
        let ignored: Vec<&str> = ignored.iter().map(String::as_str).collect();
        let types = ResourceTypes {
            schema: resource.schema().map(Arc::as_ref),
        };
        fieldmanager::record_update(
            old,
            new,
            options.manager,
            options.target.subresource(),
            &ignored,
            &types,
            options.now,
        );
    }

    /// Server-side apply of `applied` over the stored object (or nothing).
    /// Only the field manager runs here; the result is stored by
    /// [`Store::create`] or [`Store::update`].
    pub fn apply(
        resource: &ResourceInfo,
        live: Option<&Value>,
        applied: &Value,
        force: bool,
        options: &WriteOptions<'_>,
    ) -> Result<Value, Vec<fieldmanager::Conflict>> {
        let objects: Vec<&Value> = live.into_iter().chain(std::iter::once(applied)).collect();
        let ignored = Self::ignored_fields(resource, options.target, &objects);
        let ignored: Vec<&str> = ignored.iter().map(String::as_str).collect();
        let types = ResourceTypes {
            schema: resource.schema().map(Arc::as_ref),
        };
        fieldmanager::apply(
            live,
            applied,
            options.manager,
            force,
            options.target.subresource(),
            &ignored,
            &types,
            options.now,
        )
    }

    /// Creates an object (POST, apply or PUT on a missing object).
    pub fn create(
        &mut self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        Self::check_identity(resource, namespace, None, &body)?;
        let mut object = body;
        let now = options.now;
        let mut requested_name = String::new();
        if let Some(map) = object.as_object_mut() {
            map.insert(
                "apiVersion".to_owned(),
                json!(resource.api_version(resource.storage_version())),
            );
            map.insert("kind".to_owned(), json!(resource.kind));
        }
        {
            let metadata = meta::metadata_mut(&mut object);
            if resource.namespaced {
                metadata.insert("namespace".to_owned(), json!(namespace.unwrap_or_default()));
            } else {
                metadata.remove("namespace");
            }
            let name = metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            requested_name.clone_from(&name);
            let generate_name = metadata
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if name.is_empty() && !generate_name.is_empty() {
                let objects = self.objects.get(&resource.key());
                let generated =
                    std::iter::repeat_with(|| format!("{generate_name}{}", meta::random_suffix()))
                        .find(|candidate| {
                            objects.is_none_or(|objects| {
                                !objects.contains_key(&key_of(resource, namespace, candidate))
                            })
                        })
                        .unwrap_or_default();
                metadata.insert("name".to_owned(), json!(generated));
            }
            for server_managed in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "resourceVersion",
            ] {
                metadata.remove(server_managed);
            }
            metadata.insert("uid".to_owned(), json!(uuid::Uuid::new_v4().to_string()));
            metadata.insert("creationTimestamp".to_owned(), json!(now));
            if resource.generation == GenerationPolicy::None {
                metadata.remove("generation");
            } else {
                metadata.insert("generation".to_owned(), json!(1));
            }
        }
        if resource.status_subresource
            && options.target == WriteTarget::Main
            && let Some(map) = object.as_object_mut()
        {
            match &resource.initial_status {
                Some(status) => map.insert("status".to_owned(), status.clone()),
                None => map.remove("status"),
            };
        }
        if is_namespace(resource) {
            let name = meta::name(&object).to_owned();
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            let metadata = meta::metadata_mut(&mut object);
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
            }
        }
        apply_builtin_defaults(resource, &mut object);
        Self::validate(resource, &mut object, None)?;
        let name = meta::name(&object).to_owned();
        if resource.namespaced {
            self.check_namespace_open(namespace.unwrap_or_default())?;
        }
        if let Some(admission) = options.admission
            && admission.creates_on_update
        {
            self.authorize_create_on_update(resource, namespace, &name, admission.user)?;
        }
        if let Some(admission) = options.admission {
            let request = admission::Request {
                operation: Operation::Create,
                resource,
                version: admission.version,
                subresource: options.target.subresource().unwrap_or_default(),
                namespace: if is_namespace(resource) {
                    &name
                } else {
                    namespace.unwrap_or_default()
                },
                name: &requested_name,
                object: Some(&object),
                old_object: None,
                user: admission.user,
            };
            self.admit(&request, admission.warnings)?;
        }
        if self.get(resource, namespace, &name).is_some() {
            return Err(ApiError::already_exists(resource, &name));
        }
        let registration = if is_crd(resource) {
            Some(self.prepare_crd(&mut object, None, now)?)
        } else {
            None
        };
        if !options.fields_recorded {
            Self::record_update(resource, None, &mut object, options);
        }
        let stored = self.commit(resource, object, None);
        if let Some(registration) = registration {
            self.resources.insert(registration);
        }
        Ok(stored)
    }

    /// Replaces an object (PUT, patches, applies; to the main resource or `/status`).
    pub fn update(
        &mut self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        new: Value,
        options: &WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        let Some(old) = self.get(resource, namespace, name).cloned() else {
            return Err(ApiError::not_found(resource, name));
        };
        Self::check_identity(resource, namespace, Some(name), &new)?;
        match meta::resource_version(&new) {
            Some(requested) if Some(requested) != meta::resource_version(&old) => {
                return Err(ApiError::stale_resource_version(resource, name));
            }
            None if options.require_resource_version && resource.custom => {
                // The real server prints the missing (zero) version as Go's `%#v` of 0u64.
                let error = field_error(
                    "metadata.resourceVersion",
                    FieldReason::Invalid,
                    "0x0: must be specified for an update",
                    None,
                );
                return Err(ApiError::invalid(resource, name, &[error]));
            }
            _ => {}
        }
        let mut candidate = match options.target {
            WriteTarget::Main => {
                let mut candidate = new.clone();
                let old_metadata = old["metadata"].clone();
                let metadata = meta::metadata_mut(&mut candidate);
                for server_managed in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                    "selfLink",
                ] {
                    match old_metadata.get(server_managed) {
                        Some(value) => metadata.insert(server_managed.to_owned(), value.clone()),
                        None => metadata.remove(server_managed),
                    };
                }
                if !metadata.contains_key("managedFields")
                    && let Some(managed_fields) = old_metadata.get("managedFields")
                {
                    metadata.insert("managedFields".to_owned(), managed_fields.clone());
                }
                if let Some(map) = candidate.as_object_mut() {
                    if resource.status_subresource {
                        match old.get("status") {
                            Some(status) => map.insert("status".to_owned(), status.clone()),
                            None => map.remove("status"),
                        };
                    }
                    if is_namespace(resource) {
                        map.insert("spec".to_owned(), old["spec"].clone());
                    }
                }
                apply_builtin_defaults(resource, &mut candidate);
                if is_namespace(resource) {
                    let labels = meta::metadata_mut(&mut candidate)
                        .entry("labels")
                        .or_insert_with(|| json!({}));
                    if let Some(labels) = labels.as_object_mut() {
                        labels.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
                    }
                }
                candidate
            }
            WriteTarget::Status => {
                let mut candidate = old.clone();
                if let Some(map) = candidate.as_object_mut() {
                    match new.get("status") {
                        Some(status) => map.insert("status".to_owned(), status.clone()),
                        None => map.remove("status"),
                    };
                }
                if options.fields_recorded {
                    let managed_fields = new["metadata"].get("managedFields").cloned();
                    let metadata = meta::metadata_mut(&mut candidate);
                    match managed_fields {
                        Some(managed_fields) => metadata.insert("managedFields".to_owned(), managed_fields),
                        None => metadata.remove("managedFields"),
                    };
                }
                candidate
            }
        };
        if let Some(map) = candidate.as_object_mut() {
            map.insert(
                "apiVersion".to_owned(),
                json!(resource.api_version(resource.storage_version())),
            );
            map.insert("kind".to_owned(), json!(resource.kind));
        }
        if meta::is_deleting(&old) {
            let old_finalizers = meta::finalizers(&old);
            if meta::finalizers(&candidate)
                .iter()
                .any(|finalizer| !old_finalizers.contains(finalizer))
            {
                let error = field_error(
                    "metadata.finalizers",
                    FieldReason::Forbidden,
                    "no new finalizers can be added if the object is being deleted",
                    None,
                );
                return Err(ApiError::invalid(resource, name, &[error]));
            }
        }
        Self::validate(resource, &mut candidate, Some(&old))?;
        let registration = if is_crd(resource) {
            Some(self.prepare_crd(&mut candidate, Some(&old), options.now)?)
        } else {
            None
        };
        if let Some(admission) = options.admission {
            let request = admission::Request {
                operation: Operation::Update,
                resource,
                version: admission.version,
                subresource: options.target.subresource().unwrap_or_default(),
                namespace: if is_namespace(resource) {
                    name
                } else {
                    namespace.unwrap_or_default()
                },
                name,
                object: Some(&candidate),
                old_object: Some(&old),
                user: admission.user,
            };
            self.admit(&request, admission.warnings)?;
        }
        if !options.fields_recorded {
            Self::record_update(resource, Some(&old), &mut candidate, options);
        }
        if without_managed_field_times(&candidate) == without_managed_field_times(&old) {
            return Ok(WriteOutcome {
                object: old,
                changed: false,
            });
        }
        if resource.generation != GenerationPolicy::None
            && generation_relevant(&candidate, resource.generation)
                != generation_relevant(&old, resource.generation)
        {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta::metadata_mut(&mut candidate).insert("generation".to_owned(), json!(generation));
        }
        if meta::is_deleting(&candidate) && meta::finalizers(&candidate).is_empty() {
            let key = key_of(resource, namespace, name);
            let object = self.remove(resource, &key, candidate, options.now);
            return Ok(WriteOutcome {
                object,
                changed: true,
            });
        }
        let object = self.commit(resource, candidate, Some(old));
        if let Some(registration) = registration {
            self.resources.insert(registration);
        }
        Ok(WriteOutcome {
            object,
            changed: true,
        })
    }

    /// Deletes an object, or marks it for deletion while finalizers remain.
    pub fn delete(
        &mut self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions<'_>,
    ) -> Result<DeleteOutcome, ApiError> {
        let Some(object) = self.get(resource, namespace, name).cloned() else {
            return Err(ApiError::not_found(resource, name));
        };
        if let Some(uid) = options.precondition_uid
            && uid != meta::uid(&object)
        {
            let why = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(&object)
            );
            return Err(ApiError::conflict(resource, name, &why));
        }
        if let Some(resource_version) = options.precondition_resource_version
            && Some(resource_version) != meta::resource_version(&object)
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {resource_version}, ResourceVersion in object meta: {}",
                meta::resource_version(&object).unwrap_or_default()
            );
            return Err(ApiError::conflict(resource, name, &why));
        }
        if meta::is_deleting(&object) {
            return Ok(DeleteOutcome {
                object,
                removed: false,
                changed: false,
            });
        }
        if let Some(admission) = options.admission {
            let request = admission::Request {
                operation: Operation::Delete,
                resource,
                version: admission.version,
                subresource: "",
                namespace: if is_namespace(resource) {
                    name
                } else {
                    namespace.unwrap_or_default()
                },
                name,
                object: None,
                old_object: Some(&object),
                user: admission.user,
            };
            self.admit(&request, admission.warnings)?;
        }
        if is_namespace(resource) {
            return Ok(self.delete_namespace(resource, object, options.now));
        }
        if !meta::finalizers(&object).is_empty() {
            let mut marked = object.clone();
            let metadata = meta::metadata_mut(&mut marked);
            metadata.insert("deletionTimestamp".to_owned(), json!(options.now));
            metadata.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
            let object = self.commit(resource, marked, Some(object));
            return Ok(DeleteOutcome {
                object,
                removed: false,
                changed: true,
            });
        }
        let key = key_of(resource, namespace, name);
        let previous = self
            .objects
            .get_mut(&resource.key())
            .and_then(|objects| objects.remove(&key));
        self.resource_version += 1;
        let mut deleted = object;
        set_resource_version(&mut deleted, self.resource_version);
        self.emit(resource, EventType::Deleted, deleted.clone(), previous);
        self.after_removal(resource, &deleted, options.propagation, options.now);
        Ok(DeleteOutcome {
            object: deleted,
            removed: true,
            changed: true,
        })
    }

    /// A namespace goes Terminating, its content is deleted, and it goes
    /// away once empty (objects with finalizers can hold it).
    fn delete_namespace(
        &mut self,
        namespaces: &Arc<ResourceInfo>,
        object: Value,
        now: &str,
    ) -> DeleteOutcome {
        let name = meta::name(&object).to_owned();
        let mut terminating = object.clone();
        meta::metadata_mut(&mut terminating).insert("deletionTimestamp".to_owned(), json!(now));
        terminating["status"] = json!({"phase": "Terminating"});
        let terminating = self.commit(namespaces, terminating, Some(object));
        let contents: Vec<(ResourceKey, String)> = self
            .objects
            .iter()
            .flat_map(|(resource_key, objects)| {
                objects
                    .keys()
                    .filter(|(object_namespace, _)| *object_namespace == name)
                    .map(move |(_, object_name)| (resource_key.clone(), object_name.clone()))
            })
            .collect();
        for (resource_key, object_name) in contents {
            let Some(resource) = self.resources.get(&resource_key).cloned() else {
                continue;
            };
            let options = DeleteOptions {
                propagation: Propagation::Background,
                precondition_uid: None,
                precondition_resource_version: None,
                now,
                admission: None,
            };
            // Objects may already be gone through garbage collection; that is fine.
            let _ = self.delete(&resource, Some(&name), &object_name, &options);
        }
        self.finish_namespace_if_empty(&name, now);
        match self.get(namespaces, None, &name) {
            Some(still_there) => DeleteOutcome {
                object: still_there.clone(),
                removed: false,
                changed: true,
            },
            None => DeleteOutcome {
                object: terminating,
                removed: true,
                changed: true,
            },
        }
    }

    /// Compiles a CRD being stored and fills in its status as the CRD
    /// controllers of the real server would (names accepted, established).
    fn prepare_crd(&self, crd: &mut Value, old: Option<&Value>, now: &str) -> Result<ResourceInfo, ApiError> {
        let crds = self.resources.get(&ResourceKey {
            group: CRD_GROUP.to_owned(),
            plural: CRD_PLURAL.to_owned(),
        });
        let info = resources::from_crd(crd).map_err(|errors| match crds {
            Some(crds) => ApiError::invalid(crds, meta::name(crd), &errors),
            None => ApiError::bad_request(format!("invalid CustomResourceDefinition: {errors:?}")),
        })?;
        let old_conditions = old
            .map(|old| old["status"]["conditions"].clone())
            .unwrap_or(Value::Null);
        let transition_time = |condition_type: &str| {
            old_conditions
                .as_array()
                .into_iter()
                .flatten()
                .find(|condition| condition["type"] == condition_type && condition["status"] == "True")
                .and_then(|condition| condition["lastTransitionTime"].as_str())
                .unwrap_or(now)
                .to_owned()
        };
        let mut accepted_names = crd["spec"]["names"].clone();
        if let Some(names) = accepted_names.as_object_mut() {
            names.insert("singular".to_owned(), json!(info.singular));
            names.insert("listKind".to_owned(), json!(info.list_kind));
        }
        crd["status"] = json!({
            "acceptedNames": accepted_names,
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": transition_time("NamesAccepted"),
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": transition_time("Established"),
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "storedVersions": [info.storage_version()],
        });
        Ok(info)
    }

    /// A deleted CRD takes its objects with it.
    fn unregister_crd(&mut self, crd: &Value, now: &str) {
        let key = ResourceKey {
            group: crd["spec"]["group"].as_str().unwrap_or_default().to_owned(),
            plural: crd["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        let Some(resource) = self.resources.get(&key).cloned() else {
            return;
        };
        let keys: Vec<ObjectKey> = self
            .objects
            .get(&key)
            .map(|objects| objects.keys().cloned().collect())
            .unwrap_or_default();
        for object_key in keys {
            if let Some(object) = self
                .objects
                .get(&key)
                .and_then(|objects| objects.get(&object_key))
                .cloned()
            {
                self.remove(&resource, &object_key, object, now);
            }
        }
        self.objects.remove(&key);
        self.resources.remove(&key);
    }
}

#[cfg(test)]
mod string_data_tests {
    use super::*;

    #[test]
    fn string_data_is_merged_into_data_and_not_stored() {
        let mut secret = json!({"metadata": {"name": "s"}, "data": {"a": "b2xk", "b": "Yg=="}, "stringData": {"a": "new"}});
        merge_string_data(&mut secret);
        assert_eq!(
            secret,
            json!({"metadata": {"name": "s"}, "data": {"a": "bmV3", "b": "Yg=="}})
        );
    }
}
