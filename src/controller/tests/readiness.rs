use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;

use super::*;
use crate::controller::cache::{Cache, no_keys};

fn caches(count: usize) -> Vec<(Cache<ConfigMap>, reflector::store::Writer<ConfigMap>)> {
    const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    NAMES[..count]
        .iter()
        .map(|name| {
            let (store, writer) = reflector::store_shared(16);
            (Cache::new(name, store, no_keys), writer)
        })
        .collect()
}

/// What a watch driver does with its first list.
fn list(cache: &Cache<ConfigMap>, writer: &mut reflector::store::Writer<ConfigMap>) {
    for event in [Event::Init, Event::InitDone] {
        cache.observe(&event);
        writer.apply_watcher_event(&event);
        cache.applied(&Ok(event));
    }
}

/// Many tasks wait on every cache at once, as kube-runtime's controllers,
/// reconciles and the supervisor do; every one of them must be woken.
/// (`Store::wait_until_ready` wakes only the last of concurrent waiters:
/// with it, this test times out.)
#[tokio::test(start_paused = true)]
async fn every_concurrent_waiter_is_woken_once_each_cache_has_listed() {
    let mut caches = caches(8);
    let readiness = Readiness::new(caches.iter().map(|(cache, _)| cache.listed()).collect());
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let readiness = readiness.clone();
        waiters.spawn(async move { readiness.wait_until_synced().await });
        for (cache, _) in &caches {
            let listed = cache.listed();
            waiters.spawn(async move {
                listed.wait().await;
                true
            });
        }
    }
    // As kube-runtime's controllers do, one task per store waits on the
    // store itself; it must neither steal the wake-up from the others
    // nor lose its own.
    let mut stores = tokio::task::JoinSet::new();
    for (cache, _) in &caches {
        let store = cache.store();
        #[allow(clippy::disallowed_methods)] // the one waiter kube-runtime has
        stores.spawn(async move { store.wait_until_ready().await.is_ok() });
    }
    let combine = {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            readiness.all_listed().await;
            readiness.mark_synced();
        })
    };
    // Let every waiter register before anything lists.
    tokio::task::yield_now().await;
    assert_eq!(readiness.unlisted().len(), 8);
    for (cache, writer) in &mut caches {
        list(cache, writer);
    }
    tokio::time::timeout(Duration::from_secs(5), combine)
        .await
        .expect("combined")
        .expect("combine task");
    let woken = tokio::time::timeout(Duration::from_secs(5), waiters.join_all())
        .await
        .expect("every waiter woken");
    assert_eq!(woken.len(), 32 * 9);
    assert!(woken.into_iter().all(|synced| synced));
    let stores = tokio::time::timeout(Duration::from_secs(5), stores.join_all())
        .await
        .expect("every store waiter woken");
    assert_eq!(stores, vec![true; 8]);
    assert!(readiness.is_ready());
    assert_eq!(readiness.unlisted(), Vec::new());
}

#[tokio::test(start_paused = true)]
async fn unlisted_names_each_cache_still_listing_with_its_last_error() {
    let mut caches = caches(3);
    let readiness = Readiness::new(caches.iter().map(|(cache, _)| cache.listed()).collect());
    let (first, writer) = &mut caches[0];
    list(first, writer);
    let status: kube::core::Status = serde_json::from_value(serde_json::json!({
        "status": "Failure", "message": "secrets is forbidden", "reason": "Forbidden", "code": 403
    }))
    .expect("status");
    let forbidden = kube::runtime::watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)));
    caches[2].0.applied(&Err(forbidden));
    let unlisted = readiness.unlisted();
    assert_eq!(unlisted.len(), 2);
    assert_eq!(unlisted[0], ("b", None));
    assert_eq!(unlisted[1].0, "c");
    let error = unlisted[1].1.clone().expect("last error");
    assert!(error.contains("secrets is forbidden"), "{error}");
    assert!(!readiness.is_ready());
}

#[tokio::test(start_paused = true)]
async fn waiting_reconciles_give_up_when_the_operator_stops() {
    let readiness = Readiness::new(caches(1).iter().map(|(cache, _)| cache.listed()).collect());
    let waiting = {
        let readiness = readiness.clone();
        tokio::spawn(async move { readiness.wait_until_synced().await })
    };
    tokio::task::yield_now().await;
    readiness.mark_stopping();
    assert!(!waiting.await.expect("waiter"));
    assert!(!readiness.is_ready());
}
