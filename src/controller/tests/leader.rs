//! The fence: what a replica's client lets out while it leads, and after.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;

use super::{Leadership, fenced};

/// A client whose every request reaches a counter and is answered `{}`,
/// after `delay`.
fn answering(delay: Duration) -> (Client, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let service = tower::service_fn(move |_: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(b"{}".to_vec())))
        }
    });
    (Client::new(service, "default"), sent)
}

fn request(method: Method) -> Request<Vec<u8>> {
    Request::builder()
        .method(method)
        .uri("/api/v1/namespaces/default/configmaps/a")
        .body(Vec::new())
        .expect("request")
}

#[tokio::test]
async fn a_standby_reads_but_sends_no_write() {
    let (client, sent) = answering(Duration::ZERO);
    let leadership = Leadership::candidate("replica-b");
    let client = fenced(client, leadership.clone());
    client
        .request_text(request(Method::GET))
        .await
        .expect("a read passes");
    let refused = client
        .request_text(request(Method::PUT))
        .await
        .expect_err("a write is refused");
    assert!(
        refused.to_string().contains("replica replica-b does not lead"),
        "{refused}"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 1, "only the read was sent");

    leadership.extend(Instant::now() + Duration::from_secs(10));
    client
        .request_text(request(Method::PATCH))
        .await
        .expect("the leader writes");
    assert_eq!(sent.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_write_still_unanswered_when_the_lead_ends_is_given_up() {
    let (client, _) = answering(Duration::from_secs(5));
    let leadership = Leadership::candidate("replica-a");
    let client = fenced(client, leadership.clone());
    let started = Instant::now();
    leadership.extend(started + Duration::from_millis(200));
    let refused = client
        .request_text(request(Method::POST))
        .await
        .expect_err("the write outlived the lead");
    assert!(refused.to_string().contains("does not lead"), "{refused}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "given up after {waited:?}"
    );
    // Reads have no such deadline: a watch lasts as long as it lasts.
    leadership.resign();
    client
        .request_text(request(Method::GET))
        .await
        .expect("a slow read is answered");
}

#[test]
fn without_election_a_replica_always_leads() {
    let sole = Leadership::sole();
    assert!(sole.is_leading());
    assert_eq!(sole.deadline(), None);
}
