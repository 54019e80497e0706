//! What the emulated controllers of StatefulSets, DaemonSets and Argo
//! Rollouts share with the store: each sees every stored change of its
//! resource, answers the status to write and when to look again, and the
//! store writes that status right after the change (under the same lock, as
//! [`crate::deployments`] does) and wakes the controller when asked.

use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};

use serde_json::Value;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::meta;
use crate::resources::ResourceKey;
use crate::store::{EventType, ObjectKey, Store, StoredEvent, wake_at};

/// What one sync of an emulated controller answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Synced {
    /// The whole status the controller writes.
    pub status: Value,
    /// When it must look at the object again (Pods become ready, a pause or
    /// a deadline ends); `None` when nothing will change by itself.
    pub wake: Option<Instant>,
}

/// One emulated controller of one resource.
pub(crate) trait Emulation: Send {
    fn resource(&self) -> ResourceKey;

    /// The field manager of its status writes: by default
    /// kube-controller-manager's, whose controllers these are.
    fn manager(&self) -> &'static str {
        crate::deployments::MANAGER
    }

    /// Whether a stored change (not a deletion) calls for a sync: by
    /// default a new object or a new generation, as the controllers of
    /// kube-controller-manager look at spec changes.
    fn wants_sync(&self, event: &StoredEvent) -> bool {
        generation_changed(event)
    }

    fn sync(&mut self, object: &Value, now: Instant) -> Synced;

    /// The object is gone.
    fn forget(&mut self, key: &ObjectKey);
}

/// A new object, or a change of `metadata.generation`.
pub(crate) fn generation_changed(event: &StoredEvent) -> bool {
    event
        .previous
        .as_ref()
        .is_none_or(|previous| previous["metadata"]["generation"] != event.object["metadata"]["generation"])
}

/// A status the store must write for a controller.
pub(crate) struct StatusWrite {
    pub resource: ResourceKey,
    pub manager: &'static str,
    pub object: Value,
    pub status: Value,
}

/// The running emulated controllers and their pending timers.
pub(crate) struct Emulations {
    store: Weak<Mutex<Store>>,
    controllers: Vec<Box<dyn Emulation>>,
    /// The pending timer of each object, with its id (a stale timer that
    /// already woke up when it was replaced must not sync).
    timers: BTreeMap<(ResourceKey, ObjectKey), (u64, AbortHandle)>,
    next_timer: u64,
}

impl Drop for Emulations {
    fn drop(&mut self) {
        for (_, timer) in self.timers.values() {
            timer.abort();
        }
    }
}

/// `(namespace, name)` of a stored object.
pub(crate) fn object_key(object: &Value) -> ObjectKey {
    (meta::namespace(object).to_owned(), meta::name(object).to_owned())
}

impl Emulations {
    /// Timers lock `store` when they fire; it must be the store that owns
    /// these controllers.
    pub fn new(store: Weak<Mutex<Store>>) -> Self {
        Emulations {
            store,
            controllers: Vec::new(),
            timers: BTreeMap::new(),
            next_timer: 0,
        }
    }

    /// Runs `controller` from now on, unless one for its resource runs already.
    pub fn add(&mut self, controller: Box<dyn Emulation>) {
        let resource = controller.resource();
        if !self
            .controllers
            .iter()
            .any(|running| running.resource() == resource)
        {
            self.controllers.push(controller);
        }
    }

    /// Takes note of a stored change; answers the status to write when the
    /// change calls for a sync.
    pub fn observe(&mut self, event: &StoredEvent) -> Option<StatusWrite> {
        let index = self
            .controllers
            .iter()
            .position(|controller| controller.resource() == event.resource)?;
        if event.event_type == EventType::Deleted {
            let key = object_key(&event.object);
            self.controllers[index].forget(&key);
            if let Some((_, timer)) = self.timers.remove(&(event.resource.clone(), key)) {
                timer.abort();
            }
            return None;
        }
        if !self.controllers[index].wants_sync(event) {
            return None;
        }
        Some(self.sync(index, &event.object))
    }

    /// The resource and object whose pending timer is `id`, if it is still pending.
    pub fn timer(&self, key: &ObjectKey, id: u64) -> Option<ResourceKey> {
        self.timers
            .iter()
            .find(|((_, object), (current, _))| object == key && *current == id)
            .map(|((resource, _), _)| resource.clone())
    }

    /// Syncs `object` of `resource` (a timer of it fired).
    pub fn sync_object(&mut self, resource: &ResourceKey, object: &Value) -> Option<StatusWrite> {
        let index = self
            .controllers
            .iter()
            .position(|controller| controller.resource() == *resource)?;
        Some(self.sync(index, object))
    }

    fn sync(&mut self, index: usize, object: &Value) -> StatusWrite {
        let controller = &mut self.controllers[index];
        let resource = controller.resource();
        let synced = controller.sync(object, Instant::now());
        let key = object_key(object);
        let timer_key = (resource.clone(), key.clone());
        if let Some((_, timer)) = self.timers.remove(&timer_key) {
            timer.abort();
        }
        if let Some(at) = synced.wake {
            self.next_timer += 1;
            let id = self.next_timer;
            let timer = wake_at(&self.store, at, key, id, Store::emulation_timer_fired);
            self.timers.insert(timer_key, (id, timer));
        }
        StatusWrite {
            resource,
            manager: controller.manager(),
            object: object.clone(),
            status: synced.status,
        }
    }
}
