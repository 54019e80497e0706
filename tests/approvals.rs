//! Approvals nobody can forge, end to end: the admission policy shipped
//! with the chart refuses what it must at the API server (stand-in, or a
//! real cluster with HOIST_TEST_KUBECONFIG), and the operator (run with the
//! chart's RBAC only) counts what the approval gate's rules allow.
//!
//! People, each a client of their own through impersonation:
//! - carol (group dev) asks for promotions;
//! - alice and bob (group staff) and dave (group client) may approve in prod
//!   (Role with the verb `approve` on environments/prod);
//! - erin (groups staff and client) may approve too;
//! - mallory (group staff) may edit Promotions but holds no `approve`.

use std::time::Duration;

use hoist::api::{ApprovalDecision, Environment, GateName, GateState, Phase, Promotion};
use hoist::controller::Settings;
use hoist_testkit::cluster::TestCluster;
use hoist_testkit::registry::{push_multi, registry_address};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER: &str = "hoist-tests";

struct Operator {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Operator {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("operator stops")
            .expect("operator task");
    }
}

struct Tenant {
    cluster: TestCluster,
}

/// Who is who: (user, groups).
const CAROL: (&str, &[&str]) = ("carol", &["dev"]);
const ALICE: (&str, &[&str]) = ("alice", &["staff"]);
const BOB: (&str, &[&str]) = ("bob", &["staff"]);
const DAVE: (&str, &[&str]) = ("dave", &["client"]);
const ERIN: (&str, &[&str]) = ("erin", &["staff", "client"]);
const MALLORY: (&str, &[&str]) = ("mallory", &["staff"]);

impl Tenant {
    /// A tenant whose `prod` needs one approval from group staff and one
    /// from group client, by distinct people, and whose `dev` promotes
    /// automatically; the RBAC of the people above; the Artifact `shop-1`.
    async fn new() -> Self {
        let cluster = TestCluster::new().await.expect("test cluster");
        let tenant = Tenant { cluster };
        for name in ["dev-backend", "prod-backend"] {
            let deployment: Deployment = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app", "image": "example.invalid/x:1"}]}}}
            }))
            .expect("deployment");
            Api::<Deployment>::namespaced(tenant.admin(), tenant.namespace())
                .create(&PostParams::default(), &deployment)
                .await
                .expect("create deployment");
        }
        tenant
            .environment("dev", json!({"autoPromote": false}), "dev-backend")
            .await;
        tenant
            .environment(
                "prod",
                json!({"gates": {"approval": {"rules": [
                    {"name": "staff", "groups": ["staff"]},
                    {"name": "client", "groups": ["client"]}
                ]}}}),
                "prod-backend",
            )
            .await;
        tenant.grant().await;
        let images = push_multi("approvals", &[("backend", "1.0.0")])
            .await
            .expect("push images");
        tenant
            .apply::<hoist::api::Artifact>(
                json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact", "metadata": {"name": "shop-1"},
                   "spec": {"application": "shop", "version": "1.0.0",
                            "images": [{"component": "backend", "image": images["backend"].reference}]}}),
            )
            .await;
        tenant
    }

    fn namespace(&self) -> &str {
        self.cluster.namespace()
    }

    fn admin(&self) -> Client {
        self.cluster.client()
    }

    fn client(&self, (user, groups): (&str, &[&str])) -> Client {
        self.cluster.user_client(user, groups).expect("user client")
    }

    async fn apply<K>(&self, body: serde_json::Value) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let name = body["metadata"]["name"].as_str().expect("name").to_owned();
        Api::<K>::namespaced(self.admin(), self.namespace())
            .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
            .await
            .unwrap_or_else(|error| panic!("apply {name}: {error}"))
    }

    async fn environment(&self, name: &str, extra: serde_json::Value, deployment: &str) {
        let mut spec = json!({"targets": [{"application": "shop", "component": "backend",
                                            "deployment": {"name": deployment}, "container": "app"}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.apply::<Environment>(json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                                         "metadata": {"name": name}, "spec": spec}))
            .await;
    }

    /// Roles as a cluster admin would grant them: promoters create
    /// Promotions; approvers also patch them and hold `approve` on
    /// environments/prod only; mallory may patch but not approve.
    async fn grant(&self) {
        let role = |name: &str, rules: serde_json::Value| -> Role {
            serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).expect("role")
        };
        let edit = json!({"apiGroups": ["hoist.dev"], "resources": ["promotions"],
                          "verbs": ["get", "list", "watch", "create", "patch", "update"]});
        let read = json!({"apiGroups": ["hoist.dev"], "resources": ["artifacts", "environments"],
                          "verbs": ["get", "list", "watch"]});
        let roles = [
            role("promoter", json!([edit, read])),
            role(
                "prod-approver",
                json!([edit, read, {"apiGroups": ["hoist.dev"], "resources": ["environments"],
                                    "resourceNames": ["prod"], "verbs": ["approve"]}]),
            ),
        ];
        let roles_api: Api<Role> = Api::namespaced(self.admin(), self.namespace());
        for role in roles {
            roles_api
                .create(&PostParams::default(), &role)
                .await
                .expect("create role");
        }
        let bind = |role: &str, users: &[&str]| -> RoleBinding {
            serde_json::from_value(json!({
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": users.iter().map(|user| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user})).collect::<Vec<_>>()
            }))
            .expect("binding")
        };
        let bindings: Api<RoleBinding> = Api::namespaced(self.admin(), self.namespace());
        for binding in [
            bind("promoter", &["carol", "mallory"]),
            bind("prod-approver", &["alice", "bob", "dave", "erin"]),
        ] {
            bindings
                .create(&PostParams::default(), &binding)
                .await
                .expect("create binding");
        }
    }

    /// Starts the operator, as its ServiceAccount with the chart's RBAC only.
    async fn start(&self, settings: Settings) -> Operator {
        let (client, _) = self.cluster.counted_client().expect("operator client");
        let settings = Settings {
            health_address: ([127, 0, 0, 1], 0).into(),
            insecure_registries: vec![registry_address().expect("HOIST_TEST_REGISTRY (run scripts/test)")],
            namespaces: vec![self.namespace().to_string()],
            ..settings
        };
        let operator = hoist::controller::start(client, settings)
            .await
            .expect("operator starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            operator
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("operator runs");
        });
        Operator { stop, task }
    }

    /// `who` asks for shop-1 in `environment`, as `kubectl hoist promote` does.
    async fn promote(&self, who: (&str, &[&str]), name: &str, environment: &str) -> Promotion {
        let promotion = hoist::plugin::new_promotion(
            self.namespace(),
            "shop-1",
            environment,
            Some("test".into()),
            Some(name.into()),
            Some(who.0.into()),
        );
        Api::<Promotion>::namespaced(self.client(who), self.namespace())
            .create(&PostParams::default(), &promotion)
            .await
            .unwrap_or_else(|error| panic!("{} promotes {name}: {error}", who.0))
    }

    /// `who` approves as `kubectl hoist approve` does.
    async fn approve(&self, who: (&str, &[&str]), promotion: &str) {
        hoist::plugin::approve(&self.client(who), self.namespace(), promotion, Some("ok"))
            .await
            .unwrap_or_else(|error| panic!("{} approves {promotion}: {error}", who.0));
    }

    async fn wait<K>(&self, name: &str, condition: impl Fn(&K) -> bool) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        self.cluster
            .wait_for::<K>(name, TIMEOUT, condition)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn wait_phase(&self, name: &str, phase: Phase) -> Promotion {
        self.wait::<Promotion>(name, |p| p.status.as_ref().is_some_and(|s| s.phase == phase))
            .await
    }

    /// The approval gate's state once the operator has judged `entries` entries.
    async fn approval_gate(&self, name: &str, entries: usize) -> (Promotion, GateState, String) {
        let promotion = self
            .wait::<Promotion>(name, |p| {
                p.status.as_ref().is_some_and(|s| {
                    s.approvals.len() == entries && s.gates.iter().any(|g| g.gate == GateName::Approval)
                })
            })
            .await;
        let gate = promotion
            .status
            .as_ref()
            .and_then(|s| s.gates.iter().find(|g| g.gate == GateName::Approval))
            .cloned()
            .expect("approval gate");
        (promotion, gate.state, gate.message)
    }
}

/// The refusal of a write: its code and message.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `who` sends the JSON patch `patch` of `promotion`.
async fn json_patch(
    tenant: &Tenant,
    who: (&str, &[&str]),
    promotion: &str,
    patch: serde_json::Value,
) -> Result<Promotion, kube::Error> {
    let patch = serde_json::from_value(patch).expect("patch");
    Api::<Promotion>::namespaced(tenant.client(who), tenant.namespace())
        .patch(promotion, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
}

/// `who` appends `entry` to spec.approvals with a JSON patch.
async fn append(
    tenant: &Tenant,
    who: (&str, &[&str]),
    promotion: &str,
    entry: serde_json::Value,
) -> Result<Promotion, kube::Error> {
    json_patch(
        tenant,
        who,
        promotion,
        json!([{"op": "add", "path": "/spec/approvals", "value": [entry]}]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_in_someone_elses_name_is_refused_at_admission() {
    let tenant = Tenant::new().await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    // mallory may edit Promotions: she writes bob's name.
    let (code, message) = refused(
        append(
            &tenant,
            MALLORY,
            "to-prod",
            json!({"user": "bob", "groups": ["staff"]}),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("ValidatingAdmissionPolicy 'hoist-approvals' with binding 'hoist-approvals' denied request: user mallory may not approve promotions into environment prod in the name of bob: an approval must name the user who adds it (kubectl hoist approve records who you are)"),
        "{message}"
    );
    // Even an approver may not claim groups the API server did not authenticate.
    let (code, message) = refused(
        append(
            &tenant,
            ALICE,
            "to-prod",
            json!({"user": "alice", "groups": ["staff", "client"]}),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(
            "user alice may not approve promotions into environment prod with groups [staff, client]: an approval must carry exactly the groups the API server authenticated, [staff, system:authenticated] (kubectl hoist approve records them)"
        ),
        "{message}"
    );
    let stored: Promotion = Api::namespaced(tenant.admin(), tenant.namespace())
        .get("to-prod")
        .await
        .expect("promotion");
    assert!(stored.spec.approvals.is_empty(), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_by_a_user_without_the_approve_verb_is_refused() {
    let tenant = Tenant::new().await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    let error = hoist::plugin::approve(&tenant.client(MALLORY), tenant.namespace(), "to-prod", None)
        .await
        .expect_err("refused");
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(
        chain.contains(&format!(
            "user mallory may not approve promotions into environment prod: needs RBAC verb approve on environments/prod in namespace {}",
            tenant.namespace()
        )),
        "{chain}"
    );
    // alice holds approve on environments/prod only: not on dev.
    tenant.promote(CAROL, "to-dev", "dev").await;
    let (code, message) = refused(
        append(
            &tenant,
            ALICE,
            "to-dev",
            json!({"user": "alice", "groups": ["staff", "system:authenticated"]}),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("may not approve promotions into environment dev"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_is_recorded_at_creation_and_never_changes() {
    let tenant = Tenant::new().await;
    let promotions: Api<Promotion> = Api::namespaced(tenant.client(CAROL), tenant.namespace());
    let mut anonymous = hoist::plugin::new_promotion(
        tenant.namespace(),
        "shop-1",
        "dev",
        None,
        Some("nobody".into()),
        None,
    );
    let (code, message) = refused(promotions.create(&PostParams::default(), &anonymous).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("user carol may not create a Promotion into environment dev requested by nobody: spec.requestedBy must be carol (kubectl hoist promote sets it)"),
        "{message}"
    );
    anonymous.spec.requested_by = Some("alice".into());
    let (code, message) = refused(promotions.create(&PostParams::default(), &anonymous).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("requested by alice: spec.requestedBy must be carol"),
        "{message}"
    );

    let created = tenant.promote(CAROL, "to-dev", "dev").await;
    assert_eq!(created.spec.requested_by.as_deref(), Some("carol"));
    let change = json!({"spec": {"requestedBy": "alice"}});
    let (code, message) = refused(
        promotions
            .patch("to-dev", &PatchParams::default(), &Patch::Merge(&change))
            .await,
    );
    assert!(code == 422 || code == 403, "{code} {message}");
    assert!(message.contains("requestedBy cannot change"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_and_client_approvals_come_from_two_distinct_people_and_are_verified() {
    let tenant = Tenant::new().await;
    let operator = tenant.start(Settings::default()).await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    // erin is in both groups, but one person counts for one rule.
    tenant.approve(ERIN, "to-prod").await;
    let (_, state, message) = tenant.approval_gate("to-prod", 1).await;
    assert_eq!(state, GateState::Pending, "{message}");
    assert!(message.starts_with("1 of 2 rules met: "), "{message}");
    assert!(
        message.contains("(erin)") && message.contains("needs 1 approval from group"),
        "{message}"
    );
    tenant.approve(DAVE, "to-prod").await;
    let done = tenant.wait_phase("to-prod", Phase::Succeeded).await;
    let status = done.status.expect("status");
    let judged: Vec<(&str, bool, bool)> = status
        .approvals
        .iter()
        .map(|a| (a.user.as_str(), a.verified, a.counted))
        .collect();
    assert_eq!(judged, vec![("erin", true, true), ("dave", true, true)]);
    let rules: Vec<(&str, Vec<String>, bool)> = status
        .approval_rules
        .iter()
        .map(|r| (r.name.as_str(), r.approvers.clone(), r.met))
        .collect();
    // dave can only count for client, so erin counts for staff.
    assert_eq!(
        rules,
        vec![
            ("staff", vec!["erin".to_string()], true),
            ("client", vec!["dave".to_string()], true)
        ]
    );
    let prod = tenant
        .wait::<Environment>("prod", |e| {
            e.status.as_ref().is_some_and(|s| !s.history.is_empty())
        })
        .await;
    let verified = prod
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ApprovalsVerified")
        .expect("ApprovalsVerified");
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "PolicyInstalled")
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_by_the_requester_does_not_count() {
    let tenant = Tenant::new().await;
    let operator = tenant.start(Settings::default()).await;
    // alice asks, then approves her own request: the policy lets her (she
    // may approve), the gate does not count it.
    tenant.promote(ALICE, "alices", "prod").await;
    tenant.approve(ALICE, "alices").await;
    tenant.approve(DAVE, "alices").await;
    let (promotion, state, message) = tenant.approval_gate("alices", 2).await;
    assert_eq!(state, GateState::Pending, "{message}");
    assert!(
        message.contains("not counted: alice (self-approval: alice requested this Promotion)"),
        "{message}"
    );
    let alice = &promotion.status.expect("status").approvals[0];
    assert_eq!(
        (alice.user.as_str(), alice.verified, alice.counted),
        ("alice", true, false)
    );
    tenant.approve(BOB, "alices").await;
    tenant.wait_phase("alices", Phase::Succeeded).await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_by_an_approver_ends_the_promotion() {
    let tenant = Tenant::new().await;
    let operator = tenant.start(Settings::default()).await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    tenant.approve(DAVE, "to-prod").await;
    hoist::plugin::reject(
        &tenant.client(BOB),
        tenant.namespace(),
        "to-prod",
        "breaks checkout",
    )
    .await
    .expect("bob rejects");
    let rejected = tenant.wait_phase("to-prod", Phase::Rejected).await;
    let status = rejected.status.expect("status");
    assert_eq!(
        status.message.as_deref(),
        Some("rejected by bob: breaks checkout")
    );
    let bob = status
        .approvals
        .iter()
        .find(|a| a.user == "bob")
        .expect("bob's entry");
    assert_eq!(bob.decision, ApprovalDecision::Reject);
    let prod: Deployment = Api::namespaced(tenant.admin(), tenant.namespace())
        .get("prod-backend")
        .await
        .expect("deployment");
    let image = prod
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].image.clone());
    assert_eq!(
        image,
        Some(Some("example.invalid/x:1".to_string())),
        "prod untouched"
    );
    // The Event follows the status that records the rejection.
    let expected = "Warning to-prod Rejected: rejected by bob: breaks checkout";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = tenant.cluster.recent_events().await.expect("events");
        if events.lines().any(|line| line.trim() == expected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing {expected:?} in:\n{events}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_policy_approvals_are_unverified_and_the_gate_fails_closed() {
    let tenant = Tenant::new().await;
    // The operator looks for a policy nobody installed (on a real cluster
    // the chart's stays in place for the other tests).
    let absent = format!("hoist-approvals-absent-{}", tenant.namespace());
    let operator = tenant
        .start(Settings {
            approval_policy: absent.clone(),
            ..Settings::default()
        })
        .await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    tenant.approve(ALICE, "to-prod").await;
    tenant.approve(DAVE, "to-prod").await;
    let (promotion, state, message) = tenant.approval_gate("to-prod", 2).await;
    assert_eq!(state, GateState::Pending, "{message}");
    assert!(
        message.contains(&format!("approvals cannot be verified (the ValidatingAdmissionPolicy {absent} is not installed): a cluster admin must install")),
        "{message}"
    );
    let status = promotion.status.expect("status");
    assert!(
        status.approvals.iter().all(|a| !a.verified && !a.counted),
        "{:?}",
        status.approvals
    );
    assert_eq!(status.phase, Phase::Waiting);
    let prod = tenant
        .wait::<Environment>("prod", |e| {
            e.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "ApprovalsVerified"))
        })
        .await;
    let condition = prod
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ApprovalsVerified")
        .expect("condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "PolicyMissing")
    );

    // An admin of an older cluster opts in to unverified approvals.
    tenant
        .environment(
            "prod",
            json!({"gates": {"approval": {"allowUnverified": true, "rules": [
                {"name": "staff", "groups": ["staff"]}, {"name": "client", "groups": ["client"]}]}}}),
            "prod-backend",
        )
        .await;
    tenant.wait_phase("to-prod", Phase::Succeeded).await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promote_works_under_the_policy_with_the_operators_identity() {
    let tenant = Tenant::new().await;
    tenant
        .environment("dev", json!({"autoPromote": true}), "dev-backend")
        .await;
    let operator = tenant.start(Settings::default()).await;
    let created = tenant
        .wait::<Promotion>("shop-1-dev", |p| {
            p.status.as_ref().is_some_and(|s| s.phase == Phase::Succeeded)
        })
        .await;
    assert_eq!(created.spec.requested_by, Some(tenant.cluster.operator_user()));
    operator.stop().await;
}

/// Entries are compared as a multiset: a copy of an entry already there is
/// added like any other, so nobody but its user may append it, and an
/// update that swaps one copy for something else removes an entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_an_approval_is_checked_like_a_new_one() {
    let tenant = Tenant::new().await;
    tenant.promote(CAROL, "to-prod", "prod").await;
    tenant.approve(ALICE, "to-prod").await;
    let promotions: Api<Promotion> = Api::namespaced(tenant.admin(), tenant.namespace());
    let alices = serde_json::to_value(&promotions.get("to-prod").await.expect("promotion").spec.approvals[0])
        .expect("entry");
    let add = |entry: &serde_json::Value| json!([{"op": "add", "path": "/spec/approvals/-", "value": entry}]);
    // mallory copies alice's entry word for word.
    let (code, message) = refused(json_patch(&tenant, MALLORY, "to-prod", add(&alices)).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message
            .contains("user mallory may not approve promotions into environment prod in the name of alice"),
        "{message}"
    );
    // alice may repeat herself; then swapping her copy for a rejection
    // removes an entry, which the CRD's rule (every old entry still there)
    // does not see and the policy does.
    json_patch(&tenant, ALICE, "to-prod", add(&alices))
        .await
        .expect("alice repeats her approval");
    let mut rejection = alices.clone();
    rejection["decision"] = json!("Reject");
    let replace = json!([{"op": "replace", "path": "/spec/approvals/1", "value": rejection}]);
    let (code, message) = refused(json_patch(&tenant, ALICE, "to-prod", replace).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(
            "user alice may not change or remove approvals of a Promotion into environment prod: spec.approvals can only grow"
        ),
        "{message}"
    );
    assert_eq!(
        promotions
            .get("to-prod")
            .await
            .expect("promotion")
            .spec
            .approvals
            .len(),
        2
    );
}

/// The operator watches the policy it is told to: removing the binding
/// makes approvals written from then on unverified for good, restoring it
/// makes new ones verified again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_follows_the_policy_as_its_binding_goes_and_comes_back() {
    let tenant = Tenant::new().await;
    let policy = format!("hoist-approvals-{}", tenant.namespace());
    tenant
        .cluster
        .install_policy_copy(&policy)
        .await
        .expect("a copy of the policy");
    let operator = tenant
        .start(Settings {
            approval_policy: policy.clone(),
            ..Settings::default()
        })
        .await;
    let condition = |status: &'static str| {
        move |e: &Environment| {
            e.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "ApprovalsVerified" && c.status == status)
            })
        }
    };
    tenant.wait::<Environment>("prod", condition("True")).await;

    tenant
        .cluster
        .delete_policy_binding(&policy)
        .await
        .expect("binding deleted");
    let prod = tenant.wait::<Environment>("prod", condition("False")).await;
    let missing = prod
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ApprovalsVerified")
        .expect("condition");
    assert_eq!(missing.reason, "PolicyMissing");
    assert!(
        missing.message.starts_with(&format!(
            "approvals cannot be verified (the ValidatingAdmissionPolicyBinding {policy} is not installed): \
             a cluster admin must install the ValidatingAdmissionPolicy {policy} and its \
             ValidatingAdmissionPolicyBinding {policy}"
        )),
        "{}",
        missing.message
    );
    tenant.promote(CAROL, "to-prod", "prod").await;
    tenant.approve(ALICE, "to-prod").await;
    let (_, state, message) = tenant.approval_gate("to-prod", 1).await;
    assert_eq!(state, GateState::Pending, "{message}");
    assert!(message.starts_with("approvals cannot be verified"), "{message}");

    tenant
        .cluster
        .restore_policy_binding(&policy)
        .await
        .expect("binding restored");
    tenant.wait::<Environment>("prod", condition("True")).await;
    tenant.approve(DAVE, "to-prod").await;
    let (promotion, state, message) = tenant.approval_gate("to-prod", 2).await;
    assert_eq!(state, GateState::Pending, "{message}");
    let judged: Vec<(String, bool, bool)> = promotion
        .status
        .expect("status")
        .approvals
        .into_iter()
        .map(|a| (a.user, a.verified, a.counted))
        .collect();
    // alice's approval was written while nothing checked it: it stays unverified.
    assert_eq!(
        judged,
        vec![("alice".into(), false, false), ("dave".into(), true, true)]
    );
    tenant.approve(BOB, "to-prod").await;
    tenant.wait_phase("to-prod", Phase::Succeeded).await;
    operator.stop().await;
}
