//! Two replicas of the operator against one cluster, electing a leader over
//! a Lease in the tenant's namespace (the operator's Role for it mirrors the
//! chart's): one reconciles and writes, the other stands by with warm
//! caches; the standby completes what a killed leader left, takes over at
//! once from a leader stopped by SIGTERM, and a leader cut off from the
//! Lease stops writing before anyone may take over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hoist::controller::leader::Election;
use hoist::core::lease::Timing;
use hoist_testkit::cluster::RequestCounter;
use hoist_testkit::health;
use k8s_openapi::api::coordination::v1::Lease;

use super::*;

const LEASE: &str = "hoist-leader";
/// Short, so the tests take seconds: a standby takes over a lease not
/// renewed for 3 s; a leader that could not renew for 2 s stops.
const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(250),
};

/// While set, the status writes of a replica started with
/// [`hold_status_writes`] wait a minute before they are sent.
static HOLD_STATUS: AtomicBool = AtomicBool::new(false);
/// While set, the Lease requests of a replica started with [`cut_lease`]
/// get no answer, as across a network partition.
static CUT_LEASE: AtomicBool = AtomicBool::new(false);

fn hold_status_writes(method: &http::Method, uri: &http::Uri) -> Option<Duration> {
    (HOLD_STATUS.load(Ordering::SeqCst) && method != http::Method::GET && uri.path().ends_with("/status"))
        .then_some(Duration::from_secs(60))
}

fn cut_lease(_: &http::Method, uri: &http::Uri) -> Option<Duration> {
    (CUT_LEASE.load(Ordering::SeqCst) && uri.path().contains("/leases")).then_some(Duration::from_secs(60))
}

fn unhindered(_: &http::Method, _: &http::Uri) -> Option<Duration> {
    None
}

/// A replica: the operator and what its client sent.
struct Replica {
    identity: &'static str,
    operator: Operator,
}

impl Replica {
    fn requests(&self) -> &RequestCounter {
        &self.operator.requests
    }

    /// Whether its /metrics say it leads.
    async fn leads(&self) -> bool {
        let sample = format!("hoist_leader{{identity=\"{}\"}}", self.identity);
        health::metric(self.operator.health, &sample).await == 1.0
    }

    /// Kills it wherever it is: no release of the Lease, no last write.
    async fn kill(self) {
        self.operator.task.abort();
        let _ = self.operator.task.await;
    }

    /// Stops it as SIGTERM does.
    async fn stop(self) {
        let _ = self.operator.stop.send(());
        tokio::time::timeout(TIMEOUT, self.operator.task)
            .await
            .expect("replica stops")
            .expect("replica task");
    }
}

impl Scenario {
    /// Lets the operator hold the Lease, as the chart's Role does.
    async fn grant_lease(&self) {
        let rules = json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [LEASE], "verbs": ["get", "update"]},
        ]);
        self.grant("hoist-leader-election", rules, &[&self.cluster.operator_user()])
            .await;
    }

    /// Starts a replica named `identity` taking part in the election, its
    /// requests passed through `slowness`.
    async fn replica(&self, identity: &'static str, slowness: hoist_testkit::delay::Slowness) -> Replica {
        let (client, requests) = self.cluster.delayed_client(slowness).expect("client");
        let settings = Settings {
            election: Some(Election {
                lease_name: LEASE.into(),
                lease_namespace: Some(self.namespace().to_string()),
                identity: identity.into(),
                timing: TIMING,
                labels: Default::default(),
                annotations: Default::default(),
            }),
            ..self.settings()
        };
        Replica {
            identity,
            operator: Operator::spawn(client, requests, settings).await,
        }
    }

    /// The Lease's holder now.
    async fn holder(&self) -> Option<String> {
        Api::<Lease>::namespaced(self.client(), self.namespace())
            .get_opt(LEASE)
            .await
            .expect("read the Lease")
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity)
            .filter(|holder| !holder.is_empty())
    }

    /// Waits until `identity` holds the Lease; returns when it was seen.
    async fn wait_holder(&self, identity: &str) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.holder().await.as_deref() == Some(identity) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{identity} did not take the Lease {LEASE} within {TIMEOUT:?}; it is held by {:?}",
                self.holder().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The history of `environment`: each Promotion and how it ended.
    async fn history(&self, environment: &str) -> Vec<(String, Phase)> {
        self.environment(environment)
            .await
            .status
            .map(|s| {
                s.history
                    .iter()
                    .map(|h| (h.promotion.clone(), h.outcome))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Waits until `requests` saw nothing but Lease requests for a second: the
/// replica's reconciles have settled.
async fn settled(requests: &RequestCounter) {
    let deadline = Instant::now() + TIMEOUT;
    let others = || {
        requests
            .all()
            .iter()
            .filter(|r| !r.path.contains("/leases"))
            .count()
    };
    let mut seen = others();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = others();
        if now == seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not settle within {TIMEOUT:?}"
        );
        seen = now;
    }
}

/// The writes a replica's client sent, as `VERB path`.
fn writes(requests: &RequestCounter) -> Vec<String> {
    requests
        .writes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn of_two_replicas_only_the_leader_reconciles_and_writes() {
    let scenario = Scenario::new().await;
    scenario.grant_lease().await;
    let leader = scenario.replica("replica-a", unhindered).await;
    scenario.wait_holder("replica-a").await;
    let standby = scenario.replica("replica-b", unhindered).await;

    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    assert_eq!(
        scenario.images("dev", "backend").await[0].1,
        pinned(&images["backend"])
    );
    assert_eq!(scenario.holder().await.as_deref(), Some("replica-a"));
    assert!(leader.leads().await, "replica-a's hoist_leader is not 1");
    assert!(!standby.leads().await, "replica-b's hoist_leader is not 0");
    assert!(
        writes(leader.requests())
            .iter()
            .any(|w| w.starts_with("PATCH") && w.contains("/deployments/backend")),
        "the leader pinned nothing: {:?}",
        writes(leader.requests())
    );
    // The standby listed and watched everything, and wrote nothing at all:
    // not the Lease (it never claimed it), not a status, not an Event.
    assert_eq!(writes(standby.requests()), Vec::<String>::new());
    assert!(
        standby
            .requests()
            .all()
            .iter()
            .any(|r| r.is_list_or_watch(&format!(
                "/apis/hoist.dev/v1alpha1/namespaces/{}/promotions",
                scenario.namespace()
            ))),
        "the standby keeps no cache of Promotions"
    );
    standby.stop().await;
    leader.stop().await;
}

#[tokio::test]
async fn a_standby_completes_exactly_once_a_promotion_its_killed_leader_pinned_but_did_not_record() {
    let scenario = Scenario::new().await;
    scenario.grant_lease().await;
    let deployments: Api<Deployment> = Api::namespaced(scenario.client(), &scenario.stages["dev"]);
    let generation_before = scenario
        .deployment("dev", "backend")
        .await
        .metadata
        .generation
        .unwrap_or(0);
    let leader = scenario.replica("replica-a", hold_status_writes).await;
    scenario.wait_holder("replica-a").await;
    let standby = scenario.replica("replica-b", unhindered).await;
    let images = scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    artifact_ready(&scenario, "shop-1-0-0").await;
    settled(leader.requests()).await;

    // From here the leader's status writes hang: it pins dev's Deployments
    // and is killed before it records the release.
    HOLD_STATUS.store(true, Ordering::SeqCst);
    scenario.promote("to-dev", "shop-1-0-0", "dev").await;
    let expected = pinned(&images["backend"]);
    wait_pinned(
        &scenario.cluster,
        &scenario.stages["dev"],
        "backend",
        &expected,
        "the leader pinned backend",
    )
    .await;
    assert_eq!(
        scenario.history("dev").await,
        Vec::new(),
        "the leader recorded the release"
    );
    let killed = Instant::now();
    leader.kill().await;

    let taken = scenario.wait_holder("replica-b").await;
    let failover = taken.duration_since(killed);
    println!(
        "failover after kill -9: {failover:?} (lease duration {:?})",
        TIMING.lease_duration
    );
    assert!(
        // The lease duration, and then the standby's next look; what a busy
        // machine adds to that is not what this test is about.
        failover <= TIMING.lease_duration + Duration::from_secs(2),
        "the standby took {failover:?} to take over a lease of {:?}",
        TIMING.lease_duration
    );
    scenario.wait_phase("to-dev", Phase::Succeeded).await;
    assert_eq!(
        scenario.history("dev").await,
        vec![("to-dev".to_string(), Phase::Succeeded)],
        "exactly one release"
    );
    let deployment = deployments.get("backend").await.expect("backend");
    assert_eq!(
        deployment.metadata.generation,
        Some(generation_before + 1),
        "the pod template changed once"
    );
    assert_eq!(scenario.images("dev", "backend").await[0].1, expected);
    standby.stop().await;
}

#[tokio::test]
async fn a_leader_stopped_by_sigterm_hands_over_at_once() {
    let scenario = Scenario::new().await;
    scenario.grant_lease().await;
    let leader = scenario.replica("replica-a", unhindered).await;
    scenario.wait_holder("replica-a").await;
    let standby = scenario.replica("replica-b", unhindered).await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    artifact_ready(&scenario, "shop-1-0-0").await;

    let stopping = Instant::now();
    leader.stop().await;
    let taken = scenario.wait_holder("replica-b").await;
    let handover = taken.duration_since(stopping);
    println!("handover after SIGTERM: {handover:?}");
    assert!(
        handover < Duration::from_secs(2),
        "the handover took {handover:?}"
    );

    // The new leader promotes.
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    assert!(standby.leads().await);
    standby.stop().await;
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_writing_before_its_lease_expires() {
    let scenario = Scenario::new().await;
    scenario.grant_lease().await;
    let leader = scenario.replica("replica-a", cut_lease).await;
    scenario.wait_holder("replica-a").await;
    let standby = scenario.replica("replica-b", unhindered).await;
    scenario.release("shop-1-0-0", "1.0.0", Some(REVISION)).await;
    artifact_ready(&scenario, "shop-1-0-0").await;
    assert!(leader.leads().await);

    // Its Lease requests get no answer from now on; everything else does.
    CUT_LEASE.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    let deadline = cut + TIMEOUT;
    while leader.leads().await {
        assert!(
            Instant::now() < deadline,
            "replica-a still leads {TIMEOUT:?} after it was cut off"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = Instant::now();
    let written = leader.requests().writes().len();
    // It stopped while the Lease still names it: no standby had taken over.
    let holder = scenario.holder().await;
    let taken = scenario.wait_holder("replica-b").await;
    println!(
        "cut off: stopped leading after {:?}, the standby took over after {:?}",
        stopped.duration_since(cut),
        taken.duration_since(cut)
    );
    assert_eq!(
        holder.as_deref(),
        Some("replica-a"),
        "replica-a led until {:?} after the cut, when the Lease was already held by {holder:?}",
        stopped.duration_since(cut)
    );

    // The new leader promotes; the old one, still running and still
    // watching, sends no write.
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    assert_eq!(
        writes(leader.requests())[written..].to_vec(),
        Vec::<String>::new(),
        "replica-a wrote after it stopped leading"
    );
    assert!(!leader.leads().await);
    standby.stop().await;
    CUT_LEASE.store(false, Ordering::SeqCst);
    leader.kill().await;
}
