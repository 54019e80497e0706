//! Watch streams: newline-delimited JSON events over a chunked response.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::resources::ResourceInfo;
use crate::selector::Selectors;
use crate::status::ApiError;
use crate::store::{EventType, Store, StoredEvent, WatchStart};

/// What one watch request asked for, resolved against the store.
pub(crate) struct WatchRequest {
    pub resource: Arc<ResourceInfo>,
    /// The API version the client asked for (objects are shown in it).
    pub version: String,
    pub selectors: Selectors,
    pub bookmarks: bool,
    pub bookmark_interval: Duration,
    pub timeout: Duration,
    /// `sendInitialEvents=true`: end the initial events with a bookmark.
    pub initial_events_end: bool,
}

/// The prepared start of a stream.
pub(crate) enum WatchBegin {
    /// Synthetic ADDED events (current state), then live events.
    Started {
        initial: Vec<Value>,
        start: WatchStart,
        resource_version: u64,
    },
    /// The requested resourceVersion is gone: one ERROR event, then the end.
    Expired(ApiError),
}

/// Shows a stored object in the version the client asked for.
pub(crate) fn present(resource: &ResourceInfo, version: &str, mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".to_owned(), json!(resource.api_version(version)));
        map.insert("kind".to_owned(), json!(resource.kind));
    }
    object
}

fn line(event_type: &str, object: Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// The event a watcher with selectors sees for a stored change: objects
/// entering the selection are ADDED, leaving it are DELETED, as the real
/// watch cache does.
fn visible_event(request: &WatchRequest, event: &StoredEvent) -> Option<Bytes> {
    let now_matches = request.selectors.matches(&event.object);
    let before_matches = event
        .previous
        .as_ref()
        .is_some_and(|previous| request.selectors.matches(previous));
    let (event_type, object) = match event.event_type {
        EventType::Added if now_matches => ("ADDED", event.object.clone()),
        EventType::Modified if now_matches && before_matches => ("MODIFIED", event.object.clone()),
        EventType::Modified if now_matches => ("ADDED", event.object.clone()),
        EventType::Modified if before_matches => {
            let mut previous = event.previous.clone().unwrap_or(Value::Null);
            previous["metadata"]["resourceVersion"] = json!(event.resource_version.to_string());
            ("DELETED", previous)
        }
        EventType::Deleted if now_matches || before_matches => ("DELETED", event.object.clone()),
        _ => return None,
    };
    Some(line(
        event_type,
        present(&request.resource, &request.version, object),
    ))
}

fn bookmark(request: &WatchRequest, resource_version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": resource_version.to_string(), "creationTimestamp": null});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({
        "kind": request.resource.kind,
        "apiVersion": request.resource.api_version(&request.version),
        "metadata": metadata,
    });
    line("BOOKMARK", object)
}

pub(crate) fn error_line(error: &ApiError) -> Bytes {
    line("ERROR", error.to_status())
}

/// Streams events into `output` until the timeout, the client leaving or
/// the server shutting down.
pub(crate) async fn run(
    request: WatchRequest,
    begin: WatchBegin,
    store: Arc<Mutex<Store>>,
    output: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (initial, start, start_version) = match begin {
        WatchBegin::Expired(error) => {
            // The client may already be gone; nothing else to do then.
            let _ = output.send(error_line(&error)).await;
            return;
        }
        WatchBegin::Started {
            initial,
            start,
            resource_version,
        } => (initial, start, resource_version),
    };
    let WatchStart {
        backlog,
        mut receiver,
    } = start;
    let mut sent_version = start_version;
    for object in initial {
        if output
            .send(line(
                "ADDED",
                present(&request.resource, &request.version, object),
            ))
            .await
            .is_err()
        {
            return;
        }
    }
    if request.initial_events_end
        && output
            .send(bookmark(&request, start_version, true))
            .await
            .is_err()
    {
        return;
    }
    for event in backlog {
        sent_version = sent_version.max(event.resource_version);
        if let Some(bytes) = visible_event(&request, &event)
            && output.send(bytes).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::sleep(request.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(request.bookmark_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            received = receiver.recv() => {
                let Some(event) = received else { return };
                sent_version = sent_version.max(event.resource_version);
                if let Some(bytes) = visible_event(&request, &event)
                    && output.send(bytes).await.is_err()
                {
                    return;
                }
            }
            _ = ticker.tick(), if request.bookmarks => {
                // Events up to the store's version are already queued (they
                // are queued under the same lock), so after draining them the
                // bookmark never claims progress the client has not seen.
                let current = match store.lock() {
                    Ok(store) => store.resource_version(),
                    Err(poisoned) => poisoned.into_inner().resource_version(),
                };
                while let Ok(event) = receiver.try_recv() {
                    sent_version = sent_version.max(event.resource_version);
                    if let Some(bytes) = visible_event(&request, &event)
                        && output.send(bytes).await.is_err()
                    {
                        return;
                    }
                }
                sent_version = sent_version.max(current);
                if output.send(bookmark(&request, sent_version, false)).await.is_err() {
                    return;
                }
            }
            () = &mut deadline => return,
            _ = shutdown.changed() => return,
            () = output.closed() => return,
        }
    }
}

/// Resolves where a watch starts, under the store lock.
pub(crate) fn begin(
    store: &mut Store,
    request: &WatchRequest,
    namespace: Option<&str>,
    since: Option<u64>,
) -> WatchBegin {
    let resource_version = store.resource_version();
    let initial = if since.is_none() {
        match store.list(&request.resource, namespace, None) {
            Ok(objects) => objects
                .into_iter()
                .map(|(_, object)| object)
                .filter(|object| request.selectors.matches(object))
                .collect(),
            Err(expired) => return WatchBegin::Expired(expired_error(expired.to_string())),
        }
    } else {
        Vec::new()
    };
    match store.watch(&request.resource, namespace, since) {
        Ok(start) => WatchBegin::Started {
            initial,
            start,
            resource_version,
        },
        Err(expired) => WatchBegin::Expired(expired_error(expired.to_string())),
    }
}

pub(crate) fn expired_error(message: String) -> ApiError {
    ApiError::new(410, "Expired", message)
}
