//! Starting, shutting down and dropping the stand-in.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, WatchParams};
use kube_standin::StandIn;

#[tokio::test]
async fn starts_with_default_and_kube_system_namespaces_on_loopback() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    assert!(server.url().starts_with("http://127.0.0.1:"), "{}", server.url());
    let namespaces: Api<Namespace> = Api::all(server.client());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|namespace| namespace.metadata.name)
        .collect();
    assert_eq!(names, vec!["default", "kube-system"]);
    let client = kube::Client::try_from(server.config())?;
    assert_eq!(client.default_namespace(), "default");
    client.apiserver_version().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_watches_and_refuses_new_requests() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let client = server.client();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = config_maps
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await?
        .boxed();

    tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await?;

    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await?;
    assert!(end.is_none(), "the watch ended: {end:?}");
    assert!(client.apiserver_version().await.is_err());
    Ok(())
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let client = server.client();
    client.apiserver_version().await?;
    let clone = server.clone();
    drop(server);
    clone.client().apiserver_version().await?;
    drop(clone);

    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        while client.apiserver_version().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "requests fail once the server is dropped");
    Ok(())
}
