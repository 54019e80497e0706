//! Fault injection and the request log.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube_standin::{Fault, RequestMatch, StandIn, Verb};

use crate::common::{config_map, status_of};

#[tokio::test]
async fn faults_fail_the_next_matching_requests_with_a_status() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.inject_fault(
        Fault::fail(RequestMatch::any().verb(Verb::Create).resource("configmaps"), 500).times(2),
    );

    for _ in 0..2 {
        let status = status_of(
            config_maps
                .create(&PostParams::default(), &config_map("cm", &[]))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"));
        assert_eq!(status.message, "injected fault: HTTP 500");
    }
    config_maps
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await?;

    let log = server.requests();
    let creates = log.matching(&RequestMatch::any().verb(Verb::Create));
    let outcome: Vec<(u16, bool, bool)> = creates
        .iter()
        .map(|record| (record.code, record.faulted, record.changed))
        .collect();
    assert_eq!(
        outcome,
        vec![(500, true, false), (500, true, false), (201, false, true)]
    );
    Ok(())
}

#[tokio::test]
async fn conflict_faults_carry_the_chosen_reason_and_message() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await?;
    server.inject_fault(
        Fault::fail(RequestMatch::any().verb(Verb::Update).name("cm"), 409)
            .reason("Conflict")
            .message("busy"),
    );
    let status = status_of(
        config_maps
            .replace("cm", &PostParams::default(), &config_map("cm", &[]))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (409, "Conflict", "busy")
    );
    Ok(())
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_retried_by_kube() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.inject_fault(Fault::fail(RequestMatch::any().verb(Verb::List), 429).retry_after(1));
    let list = config_maps.list(&ListParams::default()).await?;
    assert!(list.items.is_empty());
    let codes: Vec<u16> = server
        .requests()
        .matching(&RequestMatch::any().verb(Verb::List))
        .iter()
        .map(|r| r.code)
        .collect();
    assert_eq!(
        codes,
        vec![429, 200],
        "kube's default retry policy honours Retry-After"
    );
    Ok(())
}

#[tokio::test]
async fn delays_slow_matching_requests_until_cleared() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.inject_fault(Fault::delay(
        RequestMatch::any().resource("configmaps"),
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    config_maps.list(&ListParams::default()).await?;
    config_maps.list(&ListParams::default()).await?;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );

    server.clear_faults();
    let started = Instant::now();
    config_maps.list(&ListParams::default()).await?;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn the_request_log_counts_by_verb_and_resource() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await?;
    config_maps.get("cm").await?;
    config_maps.list(&ListParams::default()).await?;
    config_maps.list(&ListParams::default()).await?;
    let log = server.requests();
    assert_eq!(log.count(Verb::Create, "configmaps"), 1);
    assert_eq!(log.count(Verb::Get, "configmaps"), 1);
    assert_eq!(log.count(Verb::List, "configmaps"), 2);
    assert_eq!(log.count(Verb::List, "secrets"), 0);
    assert_eq!(log.writes().len(), 1);
    let get = log.matching(&RequestMatch::any().verb(Verb::Get))[0].clone();
    assert_eq!(
        (
            get.group.as_str(),
            get.version.as_str(),
            get.namespace.as_deref(),
            get.name.as_deref(),
            get.code
        ),
        ("", "v1", Some("default"), Some("cm"), 200)
    );
    server.reset_requests();
    assert_eq!(server.requests().records().len(), 0);
    Ok(())
}
