//! Seeing when objects reach a state: one watch per kind, recording when each
//! object was first seen in the state. Operator and bare writes are observed
//! the same way, so the watch's own delay is in both figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use hoist::core::workload::{Rollout, Workload};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

pub struct Tracker {
    seen: Seen,
    changes: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(seen: &Seen) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `namespace/name`.
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Tracker {
    /// Watches `api` and records objects for which `state` holds.
    pub fn start(api: Api<DynamicObject>, state: fn(&Value) -> bool) -> Self {
        Self::keyed(api, move |object| {
            state(object).then(|| {
                key(
                    object["metadata"]["namespace"].as_str().unwrap_or_default(),
                    object["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
        })
    }

    /// Watches `api` and records the key `key_of` answers for an object,
    /// when it answers one.
    pub fn keyed(
        api: Api<DynamicObject>,
        key_of: impl Fn(&Value) -> Option<String> + Send + 'static,
    ) -> Self {
        let seen: Seen = Arc::default();
        let (sender, changes) = watch::channel(0);
        let recorded = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut objects = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(object) = objects.next().await {
                let Ok(object) = object else { continue };
                let Ok(json) = serde_json::to_value(&object) else {
                    continue;
                };
                let Some(key) = key_of(&json) else {
                    continue;
                };
                let count = {
                    let mut seen = lock(&recorded);
                    let before = seen.len();
                    seen.entry(key).or_insert_with(Instant::now);
                    (seen.len() > before).then_some(seen.len())
                };
                if let Some(count) = count {
                    sender.send_replace(count);
                }
            }
        });
        Tracker { seen, changes, task }
    }

    pub fn count(&self) -> usize {
        lock(&self.seen).len()
    }

    /// When `key` was first seen in the state.
    pub async fn wait(&self, key: &str, timeout: Duration) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changes.clone();
        loop {
            if let Some(at) = lock(&self.seen).get(key) {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                bail!("{key} did not reach the state within {timeout:?}");
            }
        }
    }

    /// Waits until `count` objects were seen in the state.
    pub async fn wait_count(&self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changes.clone();
        loop {
            let seen = self.count();
            if seen >= count {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                bail!("only {seen} of {count} objects reached the state within {timeout:?}");
            }
        }
    }
}

/// `status.phase == "Succeeded"`.
pub fn succeeded(object: &Value) -> bool {
    object["status"]["phase"] == "Succeeded"
}

/// A `Ready` condition with status `True`.
pub fn ready(object: &Value) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The controller has looked at the current generation.
pub fn observed(object: &Value) -> bool {
    object["status"]["observedGeneration"].is_u64()
        && object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// The key of Deployment `namespace/name` rolled out at `generation` in
/// the tracker of [`rollouts`].
pub fn rollout_key(namespace: &str, name: &str, generation: i64) -> String {
    format!("{}@{generation}", key(namespace, name))
}

/// When the Deployment controller had rolled out each generation of each
/// Deployment `client` may see (keys of [`rollout_key`]), judged as the
/// operator's core judges a Deployment's rollout ([`Workload::rollout`]:
/// `observedGeneration` caught up, no failed `Progressing` condition, every
/// replica updated and available). The operator waits for exactly this
/// before `Succeeded`, so bare writes wait for it too, and the time from
/// it to `Succeeded` is the operator's own.
pub fn rollouts(client: &kube::Client) -> Tracker {
    let api = Api::all_with(client.clone(), &ApiResource::erase::<Deployment>(&()));
    Tracker::keyed(api, |object| {
        let deployment: Deployment = serde_json::from_value(object.clone()).ok()?;
        let key = rollout_key(
            deployment.metadata.namespace.as_deref().unwrap_or_default(),
            deployment.metadata.name.as_deref().unwrap_or_default(),
            deployment.metadata.generation.unwrap_or(0),
        );
        (Workload::Deployment(deployment).rollout() == Rollout::Complete).then_some(key)
    })
}
