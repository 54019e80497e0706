//! Watches: events from a resourceVersion, initial state, bookmarks,
//! expiry, selectors and timeouts.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube_standin::StandIn;

use crate::common::{config_map, labels, resource_version};

/// A short description of each event: `(type, name, data value of "a")`.
fn describe(event: &WatchEvent<ConfigMap>) -> (String, String, Option<String>) {
    let (kind, object) = match event {
        WatchEvent::Added(object) => ("ADDED", object),
        WatchEvent::Modified(object) => ("MODIFIED", object),
        WatchEvent::Deleted(object) => ("DELETED", object),
        WatchEvent::Bookmark(bookmark) => {
            return (
                "BOOKMARK".to_owned(),
                bookmark.metadata.resource_version.clone(),
                None,
            );
        }
        WatchEvent::Error(status) => {
            return (
                "ERROR".to_owned(),
                status.reason.clone(),
                Some(status.code.to_string()),
            );
        }
    };
    let value = object.data.as_ref().and_then(|data| data.get("a").cloned());
    (
        kind.to_owned(),
        object.metadata.name.clone().unwrap_or_default(),
        value,
    )
}

fn event(kind: &str, name: &str, value: Option<&str>) -> (String, String, Option<String>) {
    (kind.to_owned(), name.to_owned(), value.map(str::to_owned))
}

async fn next_events<S>(stream: &mut S, count: usize) -> anyhow::Result<Vec<(String, String, Option<String>)>>
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    let mut events = Vec::new();
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
        match next {
            Some(event) => {
                let event = event?;
                if !matches!(event, WatchEvent::Bookmark(_)) {
                    events.push(describe(&event));
                }
            }
            None => break,
        }
    }
    Ok(events)
}

fn data(value: &str) -> Option<std::collections::BTreeMap<String, String>> {
    Some(labels(&[("a", value)]))
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_later_changes_only() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("before", &[("a", "0")]))
        .await?;
    let from = server.resource_version().to_string();
    let mut stream = config_maps.watch(&WatchParams::default(), &from).await?.boxed();

    let created = config_maps
        .create(&PostParams::default(), &config_map("cm", &[("a", "1")]))
        .await?;
    let mut changed = created.clone();
    changed.data = data("2");
    config_maps
        .replace("cm", &PostParams::default(), &changed)
        .await?;
    config_maps.delete("cm", &DeleteParams::default()).await?;

    let events = next_events(&mut stream, 3).await?;
    assert_eq!(
        events,
        vec![
            event("ADDED", "cm", Some("1")),
            event("MODIFIED", "cm", Some("2")),
            event("DELETED", "cm", Some("2"))
        ]
    );
    Ok(())
}

#[tokio::test]
async fn watch_from_zero_starts_with_the_current_state() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("a", &[("a", "1")]))
        .await?;
    config_maps
        .create(&PostParams::default(), &config_map("b", &[("a", "2")]))
        .await?;
    let mut stream = config_maps.watch(&WatchParams::default(), "0").await?.boxed();
    let events = next_events(&mut stream, 2).await?;
    assert_eq!(
        events,
        vec![event("ADDED", "a", Some("1")), event("ADDED", "b", Some("2"))]
    );
    Ok(())
}

#[tokio::test]
async fn bookmarks_carry_the_current_resource_version() -> anyhow::Result<()> {
    let server = StandIn::builder()
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = config_maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await?;
    let from = resource_version(&created).to_string();
    let mut stream = config_maps.watch(&WatchParams::default(), &from).await?.boxed();
    // Another resource's change still advances the bookmark (one global version).
    let other: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(server.client(), "default");
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("s".to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    other.create(&PostParams::default(), &secret).await?;
    let expected = server.resource_version().to_string();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
    match next {
        Some(Ok(WatchEvent::Bookmark(bookmark))) => {
            assert_eq!(bookmark.metadata.resource_version, expected);
            assert_eq!(bookmark.types.kind, "ConfigMap");
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_is_gone() -> anyhow::Result<()> {
    let server = StandIn::builder().event_history(2).start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = config_maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await?;
    for name in ["b", "c", "d"] {
        config_maps
            .create(&PostParams::default(), &config_map(name, &[]))
            .await?;
    }
    let mut stream = config_maps
        .watch(&WatchParams::default(), &resource_version(&first).to_string())
        .await?
        .boxed();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
    match next {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version: "),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn selectors_turn_objects_leaving_the_selection_into_deletions() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let from = server.resource_version().to_string();
    let mut stream = config_maps
        .watch(&WatchParams::default().labels("app=web"), &from)
        .await?
        .boxed();

    let mut object = config_map("cm", &[("a", "1")]);
    object.metadata.labels = Some(labels(&[("app", "db")]));
    let created = config_maps.create(&PostParams::default(), &object).await?;
    let mut joined = created.clone();
    joined.metadata.labels = Some(labels(&[("app", "web")]));
    let joined = config_maps.replace("cm", &PostParams::default(), &joined).await?;
    let mut changed = joined.clone();
    changed.data = data("2");
    let changed = config_maps
        .replace("cm", &PostParams::default(), &changed)
        .await?;
    let mut left = changed.clone();
    left.metadata.labels = Some(labels(&[("app", "db")]));
    config_maps.replace("cm", &PostParams::default(), &left).await?;

    let events = next_events(&mut stream, 3).await?;
    assert_eq!(
        events,
        vec![
            event("ADDED", "cm", Some("1")),
            event("MODIFIED", "cm", Some("2")),
            event("DELETED", "cm", Some("2"))
        ]
    );
    Ok(())
}

#[tokio::test]
async fn watches_end_after_their_timeout() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let started = Instant::now();
    let mut stream = config_maps
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
        .await?
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
    assert!(
        end.is_none(),
        "no objects, so the first thing is the end: {end:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    Ok(())
}
