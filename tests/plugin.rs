//! `kubectl hoist` against an API server: given Artifacts, Environments and
//! Promotions with the statuses the operator writes, the commands print
//! exactly this and create exactly these objects. Runs against the
//! stand-in, or a real cluster with HOIST_TEST_KUBECONFIG.

use hoist::api::{
    ApprovalDecision, ApprovalRequest, Artifact, AutoPromotion, AutoPromotionHold, Environment, Promotion,
    PromotionSpec, VersionPolicy,
};
use hoist::plugin::{self, ApprovalPatch, ApproveOutcome, Identity, PluginError};
use hoist_testkit::cluster::{KUBECONFIG_VAR, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const D: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
const E: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const F: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const G: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const REVISION: &str = "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f";

/// The fixed "now" every rendering is made at; fixture times are before it.
const NOW: i64 = 1_795_000_000;

fn now() -> Time {
    Time(Timestamp::from_second(NOW).expect("valid time"))
}

/// An RFC 3339 time `seconds` before now.
fn ago(seconds: i64) -> String {
    Timestamp::from_second(NOW - seconds)
        .expect("valid time")
        .to_string()
}

/// Creates the object of `yaml` in `namespace`, then writes its `status`
/// through the status subresource, as the operator would.
async fn create<K>(client: &Client, namespace: &str, yaml: &str) -> K
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let mut value: Value = serde_yaml::from_str(yaml).expect("fixture is YAML");
    let status = value.as_object_mut().and_then(|object| object.remove("status"));
    let mut object: K = serde_json::from_value(value).expect("fixture is the right kind");
    object.meta_mut().namespace = Some(namespace.to_string());
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("fixture accepted");
    match status {
        Some(status) => api
            .patch_status(
                &created.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("fixture status accepted"),
        None => created,
    }
}

fn artifact_yaml(name: &str, version: &str, images: &[(&str, &str)], ready: bool) -> String {
    let mut spec = String::new();
    let mut status = String::new();
    for (component, digest) in images {
        let image = format!("registry.example.com/shop/{component}:{version}");
        spec.push_str(&format!("    - {{component: {component}, image: \"{image}\"}}\n"));
        status.push_str(&format!(
            "    - {{component: {component}, image: \"{image}\", digest: \"{digest}\", resolvedAt: \"{}\"}}\n",
            ago(86_400)
        ));
    }
    let application = name.split('-').next().unwrap_or_default();
    let status = if ready {
        format!(
            "status:\n  conditions:\n    - {{type: Ready, status: \"True\", reason: Resolved, message: every image resolved, lastTransitionTime: \"{}\"}}\n  images:\n{status}",
            ago(86_400)
        )
    } else {
        String::new()
    };
    format!(
        "apiVersion: hoist.dev/v1alpha1\nkind: Artifact\nmetadata: {{name: {name}}}\nspec:\n  application: {application}\n  version: {version}\n  source: {{repository: \"https://git.example.com/{application}\", revision: \"{REVISION}\"}}\n  images:\n{spec}{status}"
    )
}

fn dev_yaml() -> String {
    format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: dev}}
spec:
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend}}, container: app}}
    - {{application: shop, component: frontend, deployment: {{name: frontend}}, container: web}}
status:
  conditions:
    - {{type: Ready, status: "False", reason: InvalidSpec, message: "spec.targets[0].deployment: Deployment backend not found", lastTransitionTime: "{}"}}
"#,
        ago(600)
    )
}

/// prod runs shop-1.4.2 (after shop-1.4.3 failed and shop-1.4.1 before it)
/// and billing-2.0.0.
fn prod_yaml() -> String {
    format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: prod}}
spec:
  upstream: [dev]
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend}}, container: app}}
    - {{application: shop, component: frontend, deployment: {{name: frontend}}, container: web}}
    - {{application: billing, component: api, workload: {{kind: StatefulSet, name: billing}}, container: api}}
  gates:
    approval: {{minApprovals: 2}}
status:
  summary: billing@2.0.0, shop@1.4.2
  applications:
    - application: billing
      artifact: billing-2.0.0
      version: 2.0.0
      images: [{{component: api, digest: "{G}"}}]
      promotion: billing-2.0.0-prod
      health: Progressing
      healthSince: "{progressing}"
    - application: shop
      artifact: shop-1.4.2
      version: 1.4.2
      images: [{{component: backend, digest: "{C}"}}, {{component: frontend, digest: "{D}"}}]
      sourceRevision: "{REVISION}"
      promotion: shop-1.4.2-prod
      promotedAt: "{promoted}"
      approvers: [alice, bob]
      health: Healthy
      healthSince: "{healthy}"
  history:
    - {{application: billing, artifact: billing-2.0.0, version: 2.0.0, promotion: billing-2.0.0-prod, outcome: Succeeded, completedAt: "{progressing}"}}
    - {{application: shop, artifact: shop-1.4.2, version: 1.4.2, promotion: shop-1.4.2-prod, approvers: [alice, bob], approvals: [{{user: alice, at: "{approved}", verified: true}}, {{user: bob, at: "{promoted}", verified: false}}], outcome: Succeeded, completedAt: "{promoted}"}}
    - {{application: shop, artifact: shop-1.4.3, version: 1.4.3, promotion: shop-1.4.3-prod, approvers: [alice], outcome: Failed, completedAt: "{failed}"}}
    - {{application: shop, artifact: shop-1.4.1, version: 1.4.1, promotion: shop-1.4.1-prod, outcome: Succeeded, completedAt: "{first}"}}
"#,
        progressing = ago(300),
        promoted = ago(3 * 3600),
        approved = ago(4 * 3600),
        healthy = ago(5 * 3600),
        failed = ago(26 * 3600),
        first = ago(3 * 86_400),
    )
}

/// A Promotion of shop-1.5.0 into prod, held by the approval gate.
fn waiting_promotion_yaml() -> String {
    format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {{name: shop-1.5.0-prod}}
spec:
  artifact: shop-1.5.0
  environment: prod
  reason: new checkout
  approvals: [{{user: alice, comment: lgtm}}, {{user: mallory}}]
status:
  phase: Waiting
  message: "waiting for the Approval gate: 1 of 2 approvals"
  gates:
    - {{gate: ArtifactReady, state: Passed, message: every image resolved, lastChecked: "{checked}"}}
    - {{gate: Upstream, state: Passed, message: shop-1.5.0 succeeded and is healthy in dev, lastChecked: "{checked}"}}
    - {{gate: Approval, state: Pending, message: "1 of 2 approvals; not counted: mallory (not allowed to approve here)", lastChecked: "{checked}"}}
  approvals:
    - {{user: alice, groups: [system:authenticated], at: "{approved}", verified: true, counted: true, note: counted for rule approvers}}
    - {{user: mallory, groups: [system:authenticated], at: "{checked}", verified: true, counted: false, note: not allowed to approve here}}
  approvalRules: [{{name: approvers, needed: 2, approvers: [alice], met: false}}]
"#,
        checked = ago(90),
        approved = ago(240),
    )
}

/// The Promotion that put shop-1.4.2 into prod.
fn succeeded_promotion_yaml() -> String {
    format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {{name: shop-1.4.2-prod}}
spec:
  artifact: shop-1.4.2
  environment: prod
  approvals: [{{user: alice}}, {{user: bob, comment: checked the dashboards}}]
status:
  phase: Succeeded
  message: shop-1.4.2 runs in prod
  rollback: true
  gates:
    - {{gate: Approval, state: Passed, message: "2 of 2 approvals (alice, bob)"}}
  approvals:
    - {{user: alice, groups: [system:authenticated], at: "{approved}", verified: true, counted: true, note: counted for rule approvers}}
    - {{user: bob, groups: [system:authenticated], at: "{approved}", verified: true, counted: true, note: counted for rule approvers}}
  approvalRules: [{{name: approvers, needed: 2, approvers: [alice, bob], met: true}}]
  changes:
    - {{component: backend, namespace: prod-apps, deployment: backend, container: app, from: "{A}", to: "{C}"}}
    - {{component: frontend, namespace: prod-apps, deployment: frontend, container: web, from: "{D}", to: "{D}"}}
  config: {{from: 5f1e2d, to: 9a8b7c}}
  startedAt: "{started}"
  completedAt: "{completed}"
"#,
        approved = ago(4 * 3600),
        started = ago(3 * 3600 + 300),
        completed = ago(3 * 3600),
    )
}

const PENDING_PROMOTION: &str = r#"apiVersion: hoist.dev/v1alpha1
kind: Promotion
metadata: {name: billing-2.1.0-prod}
spec: {artifact: billing-2.1.0, environment: prod}
"#;

/// Lets `users` approve Promotions into every Environment of the test's
/// namespace (verb `approve`), as a cluster admin would with the chart's
/// approver role.
async fn grant_approvers(cluster: &TestCluster, users: &[&str]) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "approver"},
        "rules": [
            {"apiGroups": ["hoist.dev"], "resources": ["environments"], "verbs": ["approve", "get", "list"]},
            {"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "list", "watch", "patch", "update"]},
        ]
    }))
    .expect("role");
    Api::<Role>::namespaced(cluster.client(), cluster.namespace())
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "approver"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "approver"},
        "subjects": users.iter().map(|user| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user})).collect::<Vec<_>>()
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(cluster.client(), cluster.namespace())
        .create(&PostParams::default(), &binding)
        .await
        .expect("create binding");
}

/// Creates a Promotion fixture as the admission policy lets it be made: by
/// the admin (its requester), each approval then added by its own user with
/// the groups the API server authenticates, then the status.
async fn create_promotion(cluster: &TestCluster, yaml: &str) -> Promotion {
    let mut value: Value = serde_yaml::from_str(yaml).expect("fixture is YAML");
    let approvals = value["spec"]
        .as_object_mut()
        .and_then(|spec| spec.remove("approvals"))
        .unwrap_or_else(|| json!([]));
    let status = value.as_object_mut().and_then(|object| object.remove("status"));
    value["spec"]["requestedBy"] = json!(cluster.admin_user());
    let name = value["metadata"]["name"].as_str().expect("name").to_string();
    create::<Promotion>(
        &cluster.client(),
        cluster.namespace(),
        &serde_yaml::to_string(&value).expect("yaml"),
    )
    .await;
    for approval in approvals.as_array().into_iter().flatten() {
        let user = approval["user"].as_str().expect("user");
        let client = cluster.user_client(user, &[]).expect("user client");
        let identity = plugin::whoami(&client).await.expect("whoami");
        let mut entry = approval.clone();
        entry["groups"] = json!(identity.groups);
        let api: Api<Promotion> = Api::namespaced(client, cluster.namespace());
        let current = api.get(&name).await.expect("promotion");
        let path = if current.spec.approvals.is_empty() {
            "/spec/approvals"
        } else {
            "/spec/approvals/-"
        };
        let value = if current.spec.approvals.is_empty() {
            json!([entry])
        } else {
            entry
        };
        let patch =
            serde_json::from_value(json!([{"op": "add", "path": path, "value": value}])).expect("patch");
        api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .unwrap_or_else(|error| panic!("{user} approves {name}: {error}"));
    }
    let api: Api<Promotion> = Api::namespaced(cluster.client(), cluster.namespace());
    match status {
        Some(status) => api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("fixture status accepted"),
        None => api.get(&name).await.expect("promotion"),
    }
}

/// The whole fixture, created as the operator would have left it.
async fn shop(cluster: &TestCluster) {
    grant_approvers(cluster, &["alice", "bob", "mallory"]).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    for yaml in [
        artifact_yaml("shop-1.4.1", "1.4.1", &[("backend", A), ("frontend", B)], true),
        artifact_yaml("shop-1.4.2", "1.4.2", &[("backend", C), ("frontend", D)], true),
        artifact_yaml(
            "shop-1.5.0",
            "1.5.0",
            &[("backend", E), ("frontend", F), ("docs", G)],
            true,
        ),
        artifact_yaml("shop-1.6.0", "1.6.0", &[("backend", E), ("frontend", F)], false),
        artifact_yaml("billing-2.0.0", "2.0.0", &[("api", G)], true),
    ] {
        create::<Artifact>(&client, ns, &yaml).await;
    }
    create::<Environment>(&client, ns, &dev_yaml()).await;
    create::<Environment>(&client, ns, &prod_yaml()).await;
    // Created in name order, so creation order and name order agree even
    // when both land in the same second.
    create_promotion(cluster, PENDING_PROMOTION).await;
    create_promotion(cluster, &succeeded_promotion_yaml()).await;
    create_promotion(cluster, &waiting_promotion_yaml()).await;
}

#[tokio::test]
async fn status_shows_what_runs_and_what_is_on_its_way_upstream_first() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let output = plugin::status(
        &cluster.client(),
        cluster.namespace(),
        None,
        &now(),
        plugin::Output::Table,
    )
    .await
    .expect("status");
    assert_eq!(
        output,
        "\
Environment dev
Not ready (InvalidSpec): spec.targets[0].deployment: Deployment backend not found
Nothing runs here yet.
No Promotions in flight.

Environment prod (upstream: dev)
APPLICATION   ARTIFACT        VERSION   HEALTH               PROMOTED   PROMOTION            APPROVERS
billing       billing-2.0.0   2.0.0     Progressing for 5m   <none>     billing-2.0.0-prod   <none>
shop          shop-1.4.2      1.4.2     Healthy for 5h       3h ago     shop-1.4.2-prod      alice, bob
APPLICATION   COMPONENT   KIND          DIGEST                COMMIT
billing       api         StatefulSet   sha256:111111111111   <none>
shop          backend     Deployment    sha256:cccccccccccc   3f2c9a1b7e4d
shop          frontend    Deployment    sha256:dddddddddddd   3f2c9a1b7e4d
PROMOTION            ARTIFACT        PHASE     MESSAGE
billing-2.1.0-prod   billing-2.1.0   Pending   <none>
shop-1.5.0-prod      shop-1.5.0      Waiting   waiting for the Approval gate: 1 of 2 approvals
"
    );

    let wide = plugin::status(
        &cluster.client(),
        cluster.namespace(),
        Some("prod"),
        &now(),
        plugin::Output::Wide,
    )
    .await
    .expect("status -o wide");
    assert!(
        wide.contains(&format!(
            "shop          backend     Deployment    {C}   {REVISION}"
        )),
        "{wide}"
    );
    assert!(
        wide.contains("alice, bob   https://git.example.com/shop"),
        "{wide}"
    );
    let json = plugin::status(
        &cluster.client(),
        cluster.namespace(),
        Some("prod"),
        &now(),
        plugin::Output::Json,
    )
    .await
    .expect("status -o json");
    let document: serde_json::Value = serde_json::from_str(&json).expect("json");
    let shop = &document["environments"][0]["applications"][1];
    assert_eq!(
        (
            shop["application"].as_str(),
            shop["version"].as_str(),
            shop["source"]["repository"].as_str(),
            shop["source"]["revision"].as_str(),
            shop["components"][0]["component"].as_str(),
            shop["components"][0]["digest"].as_str(),
            shop["health"].as_str(),
        ),
        (
            Some("shop"),
            Some("1.4.2"),
            Some("https://git.example.com/shop"),
            Some(REVISION),
            Some("backend"),
            Some(C),
            Some("Healthy")
        )
    );
    assert_eq!(document["environments"][0]["promotions"][1]["phase"], "Waiting");
    assert_eq!(
        (
            &document["environments"][0]["applications"][0]["components"],
            &shop["components"],
        ),
        (
            &json!([{"component": "api", "kind": "StatefulSet", "digest": G}]),
            &json!([
                {"component": "backend", "kind": "Deployment", "digest": C},
                {"component": "frontend", "kind": "Deployment", "digest": D},
            ]),
        ),
        "each component with the kind of workload it runs as"
    );
    let yaml: serde_json::Value = serde_yaml::from_str(
        &plugin::status(
            &cluster.client(),
            cluster.namespace(),
            Some("prod"),
            &now(),
            plugin::Output::Yaml,
        )
        .await
        .expect("status -o yaml"),
    )
    .expect("yaml");
    assert_eq!(yaml, document, "one document, two spellings");

    let dev = plugin::status(
        &cluster.client(),
        cluster.namespace(),
        Some("dev"),
        &now(),
        plugin::Output::Table,
    )
    .await
    .expect("status dev");
    assert_eq!(
        dev,
        "\
Environment dev
Not ready (InvalidSpec): spec.targets[0].deployment: Deployment backend not found
Nothing runs here yet.
No Promotions in flight.
"
    );
}

#[tokio::test]
async fn status_of_a_missing_environment_or_an_empty_namespace_says_so() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let client = cluster.client();
    let ns = cluster.namespace();
    assert_eq!(
        plugin::status(&client, ns, None, &now(), plugin::Output::Table)
            .await
            .expect("status"),
        format!("no Environments in namespace {ns}\n")
    );
    let error = plugin::status(&client, ns, Some("qa"), &now(), plugin::Output::Table)
        .await
        .expect_err("no such environment");
    assert_eq!(
        error.to_string(),
        format!("Environment qa not found in namespace {ns}")
    );
}

#[tokio::test]
async fn history_lists_releases_newest_first_optionally_of_one_application() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    assert_eq!(
        plugin::history(&client, ns, "prod", None, &now())
            .await
            .expect("history"),
        "\
History of Environment prod, newest first:
APPLICATION   VERSION   ARTIFACT        CHANGE    OUTCOME     COMPLETED   PROMOTION            APPROVERS
billing       2.0.0     billing-2.0.0   Release   Succeeded   5m ago      billing-2.0.0-prod   <none>
shop          1.4.2     shop-1.4.2      Release   Succeeded   3h ago      shop-1.4.2-prod      alice (verified, 4h ago), bob (unverified, 3h ago)
shop          1.4.3     shop-1.4.3      Release   Failed      26h ago     shop-1.4.3-prod      alice
shop          1.4.1     shop-1.4.1      Release   Succeeded   3d ago      shop-1.4.1-prod      <none>
"
    );
    assert_eq!(
        plugin::history(&client, ns, "prod", Some("billing"), &now())
            .await
            .expect("history of billing"),
        "\
History of Environment prod, newest first:
APPLICATION   VERSION   ARTIFACT        CHANGE    OUTCOME     COMPLETED   PROMOTION            APPROVERS
billing       2.0.0     billing-2.0.0   Release   Succeeded   5m ago      billing-2.0.0-prod   <none>
"
    );
    assert_eq!(
        plugin::history(&client, ns, "dev", Some("shop"), &now())
            .await
            .expect("empty history"),
        "No history of shop in Environment dev.\n"
    );
}

/// `changes` where a snapshot is pruned, and for a user who may not read
/// ConfigMaps: what cannot be told is named, the rest is shown.
#[tokio::test]
async fn changes_names_a_pruned_snapshot_and_configmaps_the_user_may_not_read() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    const H1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let canary = format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: canary}}
spec:
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend}}, container: app}}
status:
  history:
    - {{application: shop, artifact: shop-1.4.2, version: 1.4.2, change: Release, images: [{{component: backend, digest: "{C}"}}], sourceRepository: "git@github.com:acme/shop.git", sourceRevision: "{REVISION}", configHash: "{H2}", promotion: shop-1.4.2-canary, promotedAt: "{second}", outcome: Succeeded}}
    - {{application: shop, artifact: shop-1.4.1, version: 1.4.1, change: Release, images: [{{component: backend, digest: "{A}"}}], sourceRepository: "git@github.com:acme/shop.git", sourceRevision: "{REVISION}", configHash: "{H1}", promotion: shop-1.4.1-canary, promotedAt: "{first}", outcome: Succeeded}}
"#,
        second = ago(3600),
        first = ago(7200),
    );
    create::<Environment>(&client, ns, &canary).await;
    // Only the newer configuration's snapshot is still kept.
    let snapshot: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "hoist-canary-2222222222222222",
            "labels": {"hoist.dev/environment": "canary", "hoist.dev/role": "config-snapshot", "hoist.dev/application": "shop"},
            "annotations": {"hoist.dev/config-hash": H2}
        },
        "data": {"MODE": "fast"}
    }))
    .expect("snapshot");
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &snapshot)
        .await
        .expect("create snapshot");

    let selection = plugin::Selection::default();
    let shown = plugin::changes(&client, ns, "canary", &selection)
        .await
        .expect("changes");
    assert_eq!(
        shown,
        format!(
            "shop in canary: 1.4.1 → 1.4.2 (patch bump)
  from  shop-1.4.1 (Promotion shop-1.4.1-canary, {first})
  to    shop-1.4.2 (Promotion shop-1.4.2-canary, {second})
  commit: {short} (unchanged)
  images:
    backend  sha256:{a} → sha256:{c}
  configuration: sha256:111111111111 → sha256:222222222222; which keys changed cannot be told: snapshot hoist-canary-1111111111111111 no longer kept
",
            first = ago(7200),
            second = ago(3600),
            short = &REVISION[..12],
            a = &A[7..19],
            c = &C[7..19],
        )
    );

    // alice may read Hoist's objects, not ConfigMaps.
    let alice = cluster.user_client("alice", &[]).expect("alice's client");
    let shown = plugin::changes(&alice, ns, "canary", &selection)
        .await
        .expect("changes as alice");
    assert!(
        shown.ends_with(&format!(
            "  configuration: sha256:111111111111 → sha256:222222222222; which keys changed cannot be told: \
             you may not read ConfigMaps in namespace {ns} (RBAC verb get on configmaps)\n"
        )),
        "{shown}"
    );

    let error = plugin::changes(
        &client,
        ns,
        "canary",
        &plugin::Selection {
            to: Some("1.9.9".into()),
            ..plugin::Selection::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no successful release 1.9.9 of any application in the history of Environment canary \
         (kubectl hoist history canary lists them)"
    );
}

#[tokio::test]
async fn why_explains_a_waiting_promotion_gate_by_gate() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let output = plugin::why(&cluster.client(), cluster.namespace(), "shop-1.5.0-prod", &now())
        .await
        .expect("why");
    assert_eq!(
        output,
        format!(
            "\
Promotion shop-1.5.0-prod: Artifact shop-1.5.0 into Environment prod
Phase:     Waiting
Message:   waiting for the Approval gate: 1 of 2 approvals
Reason:    new checkout
Requested: {admin}

Gates:
GATE            STATE     CHECKED   MESSAGE
ArtifactReady   Passed    90s ago   every image resolved
Upstream        Passed    90s ago   shop-1.5.0 succeeded and is healthy in dev
Approval        Pending   90s ago   1 of 2 approvals; not counted: mallory (not allowed to approve here)

Approvals:
USER      GROUPS                 DECISION   SEEN      VERIFIED   COUNTED   NOTE                          COMMENT
alice     system:authenticated   Approve    4m ago    yes        yes       counted for rule approvers    lgtm
mallory   system:authenticated   Approve    90s ago   yes        no        not allowed to approve here   <none>

Approval rules:
RULE        NEEDED   APPROVED BY   MET
approvers   2        alice         no

Changes: none recorded (they are recorded when the rollout starts).
",
            admin = cluster.admin_user()
        )
    );
}

#[tokio::test]
async fn why_shows_the_digests_and_configuration_a_finished_promotion_changed() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let output = plugin::why(&cluster.client(), cluster.namespace(), "shop-1.4.2-prod", &now())
        .await
        .expect("why");
    assert_eq!(
        output,
        format!(
            "\
Promotion shop-1.4.2-prod: Artifact shop-1.4.2 into Environment prod
Phase:     Succeeded
Message:   shop-1.4.2 runs in prod
Reason:    <none>
Requested: {admin}
Rollback:  yes: the Artifact ran here before, so upstream gates do not apply
Started:   3h5m ago
Completed: 3h ago

Gates:
GATE       STATE    CHECKED   MESSAGE
Approval   Passed   <none>    2 of 2 approvals (alice, bob)

Approvals:
USER    GROUPS                 DECISION   SEEN     VERIFIED   COUNTED   NOTE                         COMMENT
alice   system:authenticated   Approve    4h ago   yes        yes       counted for rule approvers   <none>
bob     system:authenticated   Approve    4h ago   yes        yes       counted for rule approvers   checked the dashboards

Approval rules:
RULE        NEEDED   APPROVED BY   MET
approvers   2        alice, bob    yes

Changes:
  backend: Deployment prod-apps/backend, container app
    from {A}
    to   {C}
  frontend: Deployment prod-apps/frontend, container web
    unchanged {D}
  configuration: 5f1e2d → 9a8b7c
",
            admin = cluster.admin_user()
        )
    );

    let error = plugin::why(&cluster.client(), cluster.namespace(), "nope", &now())
        .await
        .expect_err("no such promotion");
    assert_eq!(
        error.to_string(),
        format!("Promotion nope not found in namespace {}", cluster.namespace())
    );
}

#[tokio::test]
async fn diff_shows_each_target_digest_from_what_runs_to_the_artifact() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let ns = cluster.namespace();
    let diff = plugin::diff(&cluster.client(), ns, "shop-1.5.0", "prod")
        .await
        .expect("diff");
    assert_eq!(
        diff.to_string(),
        format!(
            "\
Promoting shop-1.5.0 into Environment prod (shop)
Version:  1.4.2 → 1.5.0 (minor bump)
Running:  shop-1.4.2
Changes:
  backend: Deployment {ns}/backend, container app
    from {C}
    to   {E}
  frontend: Deployment {ns}/frontend, container web
    from {D}
    to   {F}
Not deployed here (no target): docs
"
        )
    );

    let unresolved = plugin::diff(&cluster.client(), ns, "shop-1.6.0", "dev")
        .await
        .expect("diff");
    assert_eq!(
        unresolved.to_string(),
        format!(
            "\
Promoting shop-1.6.0 into Environment dev (shop)
Version:  1.6.0 (first release of shop here)
Not Ready: shop-1.6.0 (not resolved yet); a Promotion would wait until it is
Changes:
  backend: Deployment {ns}/backend, container app
    from <none>
    to   <not resolved>
  frontend: Deployment {ns}/frontend, container web
    from <none>
    to   <not resolved>
"
        )
    );

    let same = plugin::diff(&cluster.client(), ns, "shop-1.4.2", "prod")
        .await
        .expect("diff");
    assert_eq!(
        same.to_string(),
        format!(
            "\
Promoting shop-1.4.2 into Environment prod (shop)
Version:  1.4.2 (already runs; nothing would change)
Running:  shop-1.4.2
Changes:
  backend: Deployment {ns}/backend, container app
    unchanged {C}
  frontend: Deployment {ns}/frontend, container web
    unchanged {D}
"
        )
    );

    // Going back is a downgrade of its size, never a bump.
    let back = plugin::diff(&cluster.client(), ns, "shop-1.4.1", "prod")
        .await
        .expect("diff");
    assert_eq!(
        back.to_string().lines().nth(1),
        Some("Version:  1.4.2 → 1.4.1 (patch downgrade)")
    );

    let untargeted = plugin::diff(&cluster.client(), ns, "billing-2.0.0", "dev")
        .await
        .expect("diff");
    assert_eq!(
        untargeted.to_string(),
        "\
Promoting billing-2.0.0 into Environment dev (billing)
Version:  2.0.0 (first release of billing here)
Environment dev has no targets for application billing: a Promotion would be Rejected
"
    );
}

/// The name the API server generated from `prefix`: the prefix and five
/// characters of its alphabet.
fn assert_generated_from(name: &str, prefix: &str) {
    let suffix = name
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name} does not start with {prefix}"));
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(
        suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{name}"
    );
}

#[tokio::test]
async fn hotfix_creates_the_break_glass_promotion_and_says_what_still_applies() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let hotfix = plugin::hotfix(
        &client,
        ns,
        "shop-1.5.0",
        "prod",
        vec![hoist::api::GateName::Upstream],
        "INC-42: checkout is down".into(),
        Some("hotfix-checkout".into()),
    )
    .await
    .expect("hotfix");
    assert_eq!(
        hotfix.to_string(),
        format!(
            "\
Promotion hotfix-checkout created: a break-glass override waiving Upstream.
Now:     needs approval from 2 approver(s): kubectl hoist approve hotfix-checkout -n {ns}
Checked: ArtifactReady: the Artifact is resolved.
Then:    once approved and checked it starts at once (queued only behind a rollout of the same application).
Follow:  kubectl hoist why hotfix-checkout -n {ns}
"
        )
    );
    let stored = Api::<Promotion>::namespaced(client.clone(), ns)
        .get("hotfix-checkout")
        .await
        .expect("stored");
    assert_eq!(
        (
            stored.spec.reason.as_deref(),
            stored.spec.requested_by.as_deref(),
            stored.spec.r#override.clone()
        ),
        (
            Some("hotfix: INC-42: checkout is down"),
            Some(cluster.admin_user()),
            Some(hoist::api::Override {
                waive: vec![hoist::api::GateName::Upstream],
                justification: "INC-42: checkout is down".into()
            })
        )
    );
}

#[tokio::test]
async fn promote_creates_a_promotion_and_names_it_after_artifact_and_environment() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let created = plugin::promote(
        &client,
        ns,
        "shop-1.5.0",
        "prod",
        Some("new checkout".into()),
        None,
    )
    .await
    .expect("promote");
    assert_generated_from(&created.name_any(), "shop-1.5.0-prod-");
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let stored = api.get(&created.name_any()).await.expect("stored");
    assert_eq!(
        (stored.spec, stored.metadata.generate_name),
        (
            PromotionSpec {
                artifact: "shop-1.5.0".into(),
                environment: "prod".into(),
                reason: Some("new checkout".into()),
                requested_by: Some(cluster.admin_user().to_string()),
                r#override: None,
                approvals: Vec::new(),
            },
            Some("shop-1.5.0-prod-".into())
        )
    );

    let named = plugin::promote(
        &client,
        ns,
        "shop-1.5.0",
        "dev",
        None,
        Some("shop-1.5.0-dev".into()),
    )
    .await
    .expect("promote with a name");
    let stored = api.get("shop-1.5.0-dev").await.expect("stored");
    assert_eq!(named.spec, stored.spec);
    assert_eq!(
        stored.spec,
        PromotionSpec {
            artifact: "shop-1.5.0".into(),
            environment: "dev".into(),
            reason: None,
            requested_by: Some(cluster.admin_user().to_string()),
            r#override: None,
            approvals: Vec::new(),
        }
    );

    let error = plugin::promote(&client, ns, "shop-9.9.9", "prod", None, None)
        .await
        .expect_err("no such artifact");
    assert_eq!(
        error.to_string(),
        format!("Artifact shop-9.9.9 not found in namespace {ns}")
    );
}

#[tokio::test]
async fn hold_and_unhold_pause_and_resume_auto_promotion_naming_who_held_it_when() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let api: Api<Environment> = Api::namespaced(client.clone(), ns);
    api.patch(
        "dev",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"autoPromote": true}})),
    )
    .await
    .expect("dev auto-promotes");
    let user = cluster.admin_user();

    let held = plugin::hold(&client, ns, "dev", "incident 42", &now())
        .await
        .expect("hold");
    assert_eq!(
        held.to_string(),
        format!(
            "Auto-promotion of dev held by {user}: incident 42\n\
             Manual Promotions still run; resume with: kubectl hoist unhold dev\n"
        )
    );
    assert_eq!(
        api.get("dev").await.expect("dev").spec.auto_promotion,
        Some(AutoPromotion {
            versions: VersionPolicy::Any,
            upstream: Vec::new(),
            hold: Some(AutoPromotionHold {
                reason: "incident 42".into(),
                by: Some(user.to_string()),
                since: Some(now()),
            }),
        })
    );

    let unheld = plugin::unhold(&client, ns, "dev").await.expect("unhold");
    assert_eq!(
        unheld.to_string(),
        format!(
            "Auto-promotion of dev resumed (held by {user} since {}: incident 42)\n",
            ago(0)
        )
    );
    assert_eq!(
        api.get("dev").await.expect("dev").spec.auto_promotion,
        Some(AutoPromotion::default()),
        "only the hold goes"
    );
    assert_eq!(
        plugin::unhold(&client, ns, "dev")
            .await
            .expect("unhold again")
            .to_string(),
        "Auto-promotion of dev was not held: nothing to resume\n"
    );

    let error = plugin::hold(&client, ns, "prod", "incident 42", &now())
        .await
        .expect_err("prod does not auto-promote");
    assert_eq!(
        error.to_string(),
        "Environment prod does not auto-promote (spec.autoPromote is false): there is nothing to hold or \
         resume; manual Promotions are never held"
    );
    let error = plugin::unhold(&client, ns, "qa")
        .await
        .expect_err("no such environment");
    assert_eq!(
        error.to_string(),
        format!("Environment qa not found in namespace {ns}")
    );
}

#[test]
fn a_long_generated_name_prefix_leaves_room_for_the_random_part() {
    let artifact = format!("shop-{}", "1".repeat(60));
    let promotion = plugin::new_promotion("shop", &artifact, "prod", None, None, None);
    assert_eq!(
        (promotion.metadata.name, promotion.metadata.generate_name),
        (None, Some(format!("shop-{}-", "1".repeat(52))))
    );
}

#[tokio::test]
async fn rollback_promotes_the_newest_earlier_success_again() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let rollback = plugin::rollback(&client, ns, "prod", "shop", None, None)
        .await
        .expect("rollback");
    let name = rollback.promotion.name_any();
    assert_generated_from(&name, "shop-1.4.1-prod-");
    assert_eq!(
        rollback.to_string(),
        format!(
            "Rolling back shop in prod from shop-1.4.2 (1.4.2) to shop-1.4.1 (1.4.1): Promotion {name}\n\
             Follow it with: kubectl hoist why {name}\n"
        )
    );
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    assert_eq!(
        api.get(&name).await.expect("stored").spec,
        PromotionSpec {
            artifact: "shop-1.4.1".into(),
            environment: "prod".into(),
            reason: Some("rollback of shop from shop-1.4.2 to shop-1.4.1".into()),
            requested_by: Some(cluster.admin_user().to_string()),
            r#override: None,
            approvals: Vec::new(),
        }
    );

    let chosen = plugin::rollback(
        &client,
        ns,
        "prod",
        "shop",
        Some("shop-1.5.0"),
        Some("1.4.2 leaks memory".into()),
    )
    .await
    .expect("rollback --to");
    assert_eq!(
        (
            chosen.to,
            api.get(&chosen.promotion.name_any()).await.expect("stored").spec
        ),
        (
            ("shop-1.5.0".to_string(), "1.5.0".to_string()),
            PromotionSpec {
                artifact: "shop-1.5.0".into(),
                environment: "prod".into(),
                reason: Some("1.4.2 leaks memory".into()),
                requested_by: Some(cluster.admin_user().to_string()),
                r#override: None,
                approvals: Vec::new(),
            }
        )
    );
}

#[tokio::test]
async fn rollback_refuses_when_there_is_nothing_sensible_to_roll_back_to() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let refusals = [
        plugin::rollback(&client, ns, "prod", "billing", None, None).await,
        plugin::rollback(&client, ns, "prod", "shop", Some("billing-2.0.0"), None).await,
        plugin::rollback(&client, ns, "prod", "shop", Some("shop-1.4.2"), None).await,
    ]
    .map(|result| result.expect_err("refused").to_string());
    assert_eq!(
        refusals,
        [
            "no earlier successful release of billing in Environment prod to roll back to \
             (status.history has none other than what runs); name one with --to",
            "Artifact billing-2.0.0 is a release of billing, not of shop",
            "shop-1.4.2 already runs for shop in Environment prod; nothing to roll back to",
        ]
    );
    let api: Api<Promotion> = Api::namespaced(client, ns);
    assert_eq!(api.list(&Default::default()).await.expect("list").items.len(), 3);
}

fn promotion(approvals: &[(&str, Option<&str>)], phase: Option<&str>) -> Promotion {
    let mut value = json!({
        "apiVersion": "hoist.dev/v1alpha1", "kind": "Promotion",
        "metadata": {"name": "shop-1.5.0-prod"},
        "spec": {
            "artifact": "shop-1.5.0", "environment": "prod",
            "approvals": approvals.iter().map(|(user, comment)| ApprovalRequest {
                user: user.to_string(),
                groups: Vec::new(),
                decision: Default::default(),
                comment: comment.map(str::to_string),
            }).collect::<Vec<_>>(),
        },
    });
    if let Some(phase) = phase {
        value["status"] = json!({"phase": phase});
    }
    serde_json::from_value(value).expect("a Promotion")
}

fn identity(user: &str, groups: &[&str]) -> Identity {
    Identity {
        user: user.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

const APPROVE: ApprovalDecision = ApprovalDecision::Approve;

#[test]
fn the_first_approval_creates_the_list_guarded_by_a_test_that_it_is_absent() {
    let alice = identity("alice", &["staff", "system:authenticated"]);
    let patch = plugin::approval_patch(&promotion(&[], None), &alice, APPROVE, Some("lgtm")).expect("open");
    assert_eq!(
        patch,
        ApprovalPatch::Append(json!([
            {"op": "test", "path": "/spec/approvals", "value": null},
            {"op": "add", "path": "/spec/approvals", "value": [
                {"user": "alice", "groups": ["staff", "system:authenticated"], "comment": "lgtm"}]},
        ]))
    );
}

#[test]
fn later_approvals_and_rejections_are_appended() {
    let open = promotion(&[("alice", None)], Some("Waiting"));
    let bob = identity("bob", &["system:authenticated"]);
    assert_eq!(
        plugin::approval_patch(&open, &bob, APPROVE, None).expect("open"),
        ApprovalPatch::Append(json!([
            {"op": "add", "path": "/spec/approvals/-", "value": {"user": "bob", "groups": ["system:authenticated"]}},
        ]))
    );
    assert_eq!(
        plugin::approval_patch(&open, &bob, ApprovalDecision::Reject, Some("breaks checkout")).expect("open"),
        ApprovalPatch::Append(json!([
            {"op": "add", "path": "/spec/approvals/-", "value": {"user": "bob", "groups": ["system:authenticated"],
                                                               "decision": "Reject", "comment": "breaks checkout"}},
        ]))
    );
}

#[test]
fn deciding_twice_changes_nothing_unless_the_first_was_unverified_and_an_ended_promotion_refuses() {
    let alice = identity("alice", &[]);
    let approved = promotion(&[("alice", None)], None);
    assert_eq!(
        plugin::approval_patch(&approved, &alice, APPROVE, Some("again")).expect("open"),
        ApprovalPatch::AlreadyDecided
    );
    // Written before the admission policy was installed: worth a verified one.
    let mut unverified = approved.clone();
    unverified.status = Some(
        serde_json::from_value(json!({
            "phase": "Waiting",
            "approvals": [{"user": "alice", "at": "2026-11-01T00:00:00Z", "verified": false, "counted": false,
                           "note": "not verified"}]
        }))
        .expect("status"),
    );
    assert!(matches!(
        plugin::approval_patch(&unverified, &alice, APPROVE, None).expect("open"),
        ApprovalPatch::Append(_)
    ));
    let refused = ["Succeeded", "Failed", "RolledBack", "Superseded", "Rejected"].map(|phase| {
        plugin::approval_patch(&promotion(&[], Some(phase)), &alice, APPROVE, None)
            .expect_err("terminal")
            .to_string()
    });
    assert_eq!(
        refused[0],
        "Promotion shop-1.5.0-prod is Succeeded, a terminal phase: approving it changes nothing; \
         create a new Promotion instead"
    );
    assert_eq!(
        refused.map(|message| message.starts_with("Promotion shop-1.5.0-prod is ")),
        [true; 5]
    );
}

/// Applies an approval patch the way `approve` does.
async fn apply(api: &Api<Promotion>, name: &str, patch: ApprovalPatch) -> Result<Promotion, kube::Error> {
    let ApprovalPatch::Append(patch) = patch else {
        panic!("expected a patch, got {patch:?}");
    };
    let patch = Patch::<()>::Json(serde_json::from_value(patch).expect("a JSON patch"));
    api.patch(name, &PatchParams::default(), &patch).await
}

#[tokio::test]
async fn approval_patches_pass_the_api_servers_append_only_rule() {
    let cluster = TestCluster::new().await.expect("test cluster");
    grant_approvers(&cluster, &["alice", "bob"]).await;
    let ns = cluster.namespace();
    let name = "billing-2.1.0-prod";
    let open = create_promotion(&cluster, PENDING_PROMOTION).await;
    let as_user = |user: &str| {
        let client = cluster.user_client(user, &[]).expect("user client");
        Api::<Promotion>::namespaced(client, ns)
    };
    let whoami = |user: &str| {
        let client = cluster.user_client(user, &[]).expect("user client");
        async move { plugin::whoami(&client).await.expect("whoami") }
    };
    let (alice, bob) = (whoami("alice").await, whoami("bob").await);

    let first = plugin::approval_patch(&open, &alice, APPROVE, Some("lgtm")).expect("open");
    let approved = apply(&as_user("alice"), name, first.clone())
        .await
        .expect("first approval");
    let second = plugin::approval_patch(&approved, &bob, APPROVE, None).expect("open");
    let approved = apply(&as_user("bob"), name, second)
        .await
        .expect("second approval");
    assert_eq!(
        approved.spec.approvals,
        [
            ApprovalRequest {
                user: "alice".into(),
                groups: alice.groups.clone(),
                decision: APPROVE,
                comment: Some("lgtm".into())
            },
            ApprovalRequest {
                user: "bob".into(),
                groups: bob.groups.clone(),
                decision: APPROVE,
                comment: None
            },
        ]
    );

    // A first-approval patch built before someone else approved must not
    // overwrite their approval.
    match apply(&as_user("alice"), name, first).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{status:?}"),
        other => panic!("expected the test operation to fail, got {other:?}"),
    }
    assert_eq!(
        as_user("alice").get(name).await.expect("get").spec.approvals,
        approved.spec.approvals
    );
}

#[tokio::test]
async fn approve_names_the_user_the_api_server_authenticates() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let client = cluster.client();
    let ns = cluster.namespace();
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);

    let terminal = plugin::approve(&client, ns, "shop-1.4.2-prod", None)
        .await
        .expect_err("terminal");
    assert_eq!(
        terminal.to_string(),
        "Promotion shop-1.4.2-prod is Succeeded, a terminal phase: approving it changes nothing; \
         create a new Promotion instead"
    );

    let outcome = plugin::approve(&client, ns, "billing-2.1.0-prod", Some("ship it")).await;
    let identity = plugin::whoami(&client).await.expect("whoami");
    assert_eq!(identity.user, cluster.admin_user());
    assert_eq!(
        outcome.expect("approved"),
        ApproveOutcome::Decided {
            promotion: "billing-2.1.0-prod".into(),
            identity: identity.clone(),
            decision: APPROVE,
            approvals: 1
        }
    );
    assert_eq!(
        plugin::approve(&client, ns, "billing-2.1.0-prod", None)
            .await
            .expect("again"),
        ApproveOutcome::AlreadyDecided {
            promotion: "billing-2.1.0-prod".into(),
            user: identity.user.clone(),
            decision: APPROVE
        }
    );
    assert_eq!(
        api.get("billing-2.1.0-prod").await.expect("get").spec.approvals,
        [ApprovalRequest {
            user: identity.user.clone(),
            groups: identity.groups.clone(),
            decision: APPROVE,
            comment: Some("ship it".into())
        }]
    );
}

#[tokio::test]
async fn approve_refuses_to_guess_when_the_api_server_cannot_say_who_you_are() {
    let cluster = TestCluster::new().await.expect("test cluster");
    // Only the stand-in can be made to lack SelfSubjectReview (as API servers before 1.28 do).
    let Some(standin) = cluster.standin() else { return };
    shop(&cluster).await;
    standin.inject_fault(
        kube_standin::Fault::fail(
            kube_standin::RequestMatch::any().resource("selfsubjectreviews"),
            404,
        )
        .always(),
    );
    let client = cluster.client();
    let outcome = plugin::approve(&client, cluster.namespace(), "billing-2.1.0-prod", None).await;
    assert!(
        matches!(outcome, Err(PluginError::IdentityUnsupported)),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.expect_err("unsupported").to_string(),
        "the API server does not serve authentication.k8s.io/v1 SelfSubjectReview (Kubernetes 1.28 or later), \
         so kubectl hoist cannot learn who you are; an approval must name the user the API server \
         authenticates, so approve from a cluster that serves SelfSubjectReview"
    );
    let api: Api<Promotion> = Api::namespaced(client, cluster.namespace());
    assert_eq!(
        api.get("billing-2.1.0-prod").await.expect("get").spec.approvals,
        []
    );
}

#[test]
fn approve_and_reject_report_what_they_did() {
    assert_eq!(
        [
            ApproveOutcome::Decided {
                promotion: "shop-1.5.0-prod".into(),
                identity: identity("alice", &["staff", "system:authenticated"]),
                decision: APPROVE,
                approvals: 1
            },
            ApproveOutcome::Decided {
                promotion: "shop-1.5.0-prod".into(),
                identity: identity("bob", &[]),
                decision: ApprovalDecision::Reject,
                approvals: 2
            },
            ApproveOutcome::AlreadyDecided {
                promotion: "shop-1.5.0-prod".into(),
                user: "alice".into(),
                decision: APPROVE
            },
        ]
        .map(|outcome| outcome.to_string()),
        [
            "Promotion shop-1.5.0-prod approved by alice (groups staff, system:authenticated); 1 entry in spec.approvals\n\
             See whether it counts with: kubectl hoist why shop-1.5.0-prod\n",
            "Promotion shop-1.5.0-prod rejected by bob (no groups); 2 entries in spec.approvals\n\
             See whether it counts with: kubectl hoist why shop-1.5.0-prod\n",
            "alice already approved Promotion shop-1.5.0-prod; nothing changed\n",
        ]
    );
}

// Several threads: the API stand-in serves the child process from this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_refusal_is_printed_once_as_the_api_servers_message() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    create_promotion(&cluster, PENDING_PROMOTION).await;
    // mallory may patch Promotions but holds no `approve` on Environments:
    // the API server's admission policy refuses her approval.
    cluster
        .grant(
            "promotion-editor",
            json!([{"apiGroups": ["hoist.dev"], "resources": ["promotions"], "verbs": ["get", "list", "patch"]}]),
            &["mallory"],
        )
        .await
        .expect("grant");
    let path = cluster
        .user_kubeconfig_file("mallory", &[])
        .expect("mallory's kubeconfig");
    let context = Kubeconfig::read_from(&path)
        .expect("mallory's kubeconfig")
        .current_context
        .expect("a current context");
    let mallory = (path, context);

    assert_eq!(
        kubectl_hoist(&mallory, ns, &["approve", "billing-2.1.0-prod"]).await,
        (
            false,
            String::new(),
            format!(
                "kubectl hoist: cannot approve Promotion billing-2.1.0-prod: promotions.hoist.dev \"billing-2.1.0-prod\" \
                 is forbidden: ValidatingAdmissionPolicy 'hoist-approvals' with binding 'hoist-approvals' denied \
                 request: user mallory may not approve promotions into environment prod: needs RBAC verb approve \
                 on environments/prod in namespace {ns}\n"
            )
        )
    );
    // RBAC's own refusal reads the same way: one line, the API server's words.
    assert_eq!(
        kubectl_hoist(&mallory, ns, &["status"]).await,
        (
            false,
            String::new(),
            format!(
                "kubectl hoist: cannot list Environments in namespace {ns}: environments.hoist.dev is forbidden: \
                 User \"mallory\" cannot list resource \"environments\" in API group \"hoist.dev\" in the \
                 namespace \"{ns}\"\n"
            )
        )
    );
}

#[test]
fn a_refusal_names_the_field_paths_its_message_leaves_out() {
    let status = |message: &str, fields: &[&str]| {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": message,
            "details": {"causes": fields.iter().map(|field| json!({"reason": "FieldValueInvalid", "field": field})).collect::<Vec<_>>()}
        }))
        .expect("a Status");
        PluginError::Api {
            action: "create Promotion p".into(),
            source: kube::Error::Api(Box::new(status)),
        }
    };
    assert_eq!(
        status(
            "Promotion.hoist.dev \"p\" is invalid: spec.artifact: Required value",
            &["spec.artifact"]
        )
        .report(),
        "cannot create Promotion p: Promotion.hoist.dev \"p\" is invalid: spec.artifact: Required value"
    );
    assert_eq!(
        status("the request is invalid", &["spec.environment", "spec.reason"]).report(),
        "cannot create Promotion p: the request is invalid (field spec.environment, spec.reason)"
    );
    assert_eq!(
        status("", &[]).report(),
        "cannot create Promotion p: the API server answered 422 Invalid"
    );
}

/// A kubeconfig reaching the test's API (the real cluster's own, or one
/// written for the stand-in) and the context to name.
fn kubeconfig(cluster: &TestCluster) -> (PathBuf, String) {
    if let Some(path) = std::env::var_os(KUBECONFIG_VAR) {
        let context = Kubeconfig::read_from(&path)
            .expect("the test kubeconfig")
            .current_context
            .expect("a current context");
        return (PathBuf::from(path), context);
    }
    let standin = cluster.standin().expect("the stand-in");
    let path = std::env::temp_dir().join(format!("kubectl-hoist-{}.kubeconfig", cluster.namespace()));
    std::fs::write(
        &path,
        standin
            .kubeconfig_yaml(kube_standin::ADMIN)
            .expect("the admin's kubeconfig"),
    )
    .expect("kubeconfig written");
    (path, "standin".to_string())
}

/// How long one run of the binary may take: a few requests, or kube's
/// 30-second connect timeout against an unreachable cluster.
const BINARY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the `kubectl-hoist` binary: exit success, stdout, stderr. Async,
/// because the stand-in serves from this test's runtime.
async fn kubectl_hoist(
    kubeconfig: &(PathBuf, String),
    namespace: &str,
    args: &[&str],
) -> (bool, String, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-hoist"))
        .env("KUBECONFIG", &kubeconfig.0)
        .args(["--context", &kubeconfig.1, "-n", namespace])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BINARY_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("kubectl-hoist {args:?} did not finish within {BINARY_TIMEOUT:?}"))
        .expect("kubectl-hoist runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// Several threads: the API stand-in serves the child process from this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_talks_to_the_cluster_of_the_kubeconfig() {
    let cluster = TestCluster::new().await.expect("test cluster");
    shop(&cluster).await;
    let ns = cluster.namespace();
    let config = kubeconfig(&cluster);
    let promoted = kubectl_hoist(
        &config,
        ns,
        &[
            "promote",
            "shop-1.5.0",
            "dev",
            "--name",
            "shop-1.5.0-dev",
            "--reason",
            "smoke test",
        ],
    )
    .await;
    assert_eq!(promoted, (true, "shop-1.5.0-dev\n".to_string(), String::new()));
    assert_eq!(
        kubectl_hoist(&config, ns, &["why", "shop-1.5.0-dev"]).await,
        (
            true,
            format!(
                "\
Promotion shop-1.5.0-dev: Artifact shop-1.5.0 into Environment dev
Phase:     Pending
Message:   <none>
Reason:    smoke test
Requested: {admin}

Gates: not evaluated yet.

Approvals: none.

Changes: none recorded (they are recorded when the rollout starts).
",
                admin = cluster.admin_user()
            ),
            String::new()
        )
    );
    assert_eq!(
        kubectl_hoist(&config, ns, &["why", "nope"]).await,
        (
            false,
            String::new(),
            format!("kubectl hoist: Promotion nope not found in namespace {ns}\n")
        )
    );
    if cluster.standin().is_some() {
        std::fs::remove_file(&config.0).expect("kubeconfig removed");
    }
}

/// An agent's Lease as leader election writes it, renewed `renewed` seconds
/// before now.
fn agent_lease_yaml(cluster: &str, holder: &str, renewed: i64) -> String {
    format!(
        r#"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: hoist-agent-{cluster}
  labels: {{hoist.dev/cluster: {cluster}}}
  annotations: {{hoist.dev/agent-version: 0.9.0}}
spec:
  holderIdentity: {holder}
  leaseDurationSeconds: 15
  acquireTime: "{acquired}"
  renewTime: "{renewed}"
  leaseTransitions: 0
"#,
        acquired = ago(3600),
        renewed = Timestamp::from_second(NOW - renewed)
            .expect("valid time")
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )
}

#[tokio::test]
async fn clusters_lists_each_agent_connected_or_silent_with_its_environments() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let (client, namespace) = (cluster.client(), cluster.namespace().to_string());
    for (name, workload) in [
        ("eu-prod", Some("eu")),
        ("eu-staging", Some("eu")),
        ("us-prod", Some("us")),
        ("dev", None),
    ] {
        let spec = workload.map_or_else(|| "{}".to_string(), |c| format!("{{cluster: {c}}}"));
        create::<Environment>(
            &client,
            &namespace,
            &format!("apiVersion: hoist.dev/v1alpha1\nkind: Environment\nmetadata: {{name: {name}}}\nspec: {spec}\n"),
        )
        .await;
    }
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), &namespace);
    for yaml in [
        agent_lease_yaml("eu", "agent-eu-7f9c", 5),
        agent_lease_yaml("us", "agent-us-0", 600),
    ] {
        let lease = serde_yaml::from_str(&yaml).expect("lease");
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("create lease");
    }
    let table = plugin::clusters(&client, &namespace, Some(&namespace), &now())
        .await
        .expect("clusters");
    assert_eq!(
        table,
        format!(
            "CLUSTER   AGENT              VERSION   REPLICA         LAST HEARTBEAT   ENVIRONMENTS\n\
             eu        connected          0.9.0     agent-eu-7f9c   5s ago           {namespace}/eu-prod, {namespace}/eu-staging\n\
             us        silent for 9m45s   0.9.0     <none>          10m ago          {namespace}/us-prod\n"
        )
    );

    // A cluster named by an Environment only: no agent has connected since
    // the Environment was created.
    let waiting: Environment = serde_yaml::from_str(&format!(
        "apiVersion: hoist.dev/v1alpha1\nkind: Environment\n\
         metadata: {{name: ap-prod, namespace: shop, creationTimestamp: \"{}\"}}\nspec: {{cluster: ap}}\n",
        ago(7200)
    ))
    .expect("environment");
    assert_eq!(
        plugin::render_clusters(&[], &[waiting], &now()),
        "CLUSTER   AGENT             VERSION   REPLICA   LAST HEARTBEAT   ENVIRONMENTS\n\
         ap        silent for 120m   <none>    <none>    <none>           shop/ap-prod\n"
    );
}

/// The test registry's resolver (plain HTTP on 127.0.0.1).
fn publish_resolver() -> hoist::registry::Resolver {
    let registry = hoist_testkit::registry::registry_address().expect("the test registry (scripts/registry)");
    hoist::registry::Resolver::new(hoist::registry::ResolverConfig {
        insecure_registries: vec![registry],
        ..Default::default()
    })
}

/// CI variables as a publish run sees them; HOME without a docker config.
fn ci_variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let mut variables: std::collections::BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    variables.insert(
        "HOME".into(),
        std::env::temp_dir().join("hoist-no-home").display().to_string(),
    );
    move |name: &str| variables.get(name).cloned()
}

fn publish_request(version: &str, images: &[(&str, &str)]) -> plugin::PublishRequest {
    plugin::PublishRequest {
        application: "shop".into(),
        version: version.into(),
        images: images.iter().map(|(c, i)| format!("{c}={i}")).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn publish_pins_each_image_to_the_registrys_digest_with_the_source_of_github_actions() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    let pushed = hoist_testkit::registry::push_multi("shop", &[("backend", "1.4.2"), ("frontend", "1.4.2")])
        .await
        .expect("push");
    let (backend, frontend) = (&pushed["backend"], &pushed["frontend"]);
    let github = ci_variables(&[
        ("GITHUB_SHA", REVISION),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "9182736450"),
    ]);
    let request = publish_request(
        "1.4.2",
        &[("backend", &backend.reference), ("frontend", &frontend.reference)],
    );
    let resolver = publish_resolver();
    let published = plugin::publish(&cluster.client(), ns, request.clone(), &resolver, &github, &now())
        .await
        .expect("published");
    let run = "https://github.com/acme/shop/actions/runs/9182736450";
    assert_eq!(
        published.to_string(),
        format!(
            "artifact.hoist.dev/shop-1.4.2 created\n  \
             backend   {}@{}\n  \
             frontend  {}@{}\n  \
             source    https://github.com/acme/shop@{REVISION} (build 9182736450: {run})\n",
            backend.reference, backend.digest, frontend.reference, frontend.digest
        )
    );
    let stored: Artifact = Api::namespaced(cluster.client(), ns)
        .get("shop-1.4.2")
        .await
        .expect("the Artifact");
    let spec = serde_json::to_value(&stored.spec).expect("JSON");
    assert_eq!(
        spec,
        json!({
            "application": "shop", "version": "1.4.2", "versionScheme": "SemVer",
            "images": [
                {"component": "backend", "image": backend.reference, "digest": backend.digest},
                {"component": "frontend", "image": frontend.reference, "digest": frontend.digest}
            ],
            "source": {"repository": "https://github.com/acme/shop", "revision": REVISION,
                "buildId": "9182736450", "buildUrl": run, "builtAt": now().0.to_string()}
        })
    );

    // A re-run of the pipeline publishes nothing twice.
    let again = plugin::publish(&cluster.client(), ns, request, &resolver, &github, &now())
        .await
        .expect("published again");
    assert!(!again.created);
    assert!(
        again
            .to_string()
            .starts_with("artifact.hoist.dev/shop-1.4.2 unchanged (published before)\n"),
        "{again}"
    );

    // Other digests under the same version: refused, nothing changed.
    let other = publish_request(
        "1.4.2",
        &[
            ("backend", &frontend.by_digest()),
            ("frontend", &frontend.reference),
        ],
    );
    let error = plugin::publish(&cluster.client(), ns, other, &resolver, &github, &now())
        .await
        .expect_err("refused");
    assert_eq!(
        error.report(),
        format!(
            "Artifact shop-1.4.2 already exists in namespace {ns} with another spec.images (backend={}, \
             frontend={}, not backend={}, frontend={}); an Artifact never changes: publish under another \
             version or --name",
            backend.digest, frontend.digest, frontend.digest, frontend.digest
        )
    );
}

#[tokio::test]
async fn publish_takes_gitlab_ci_variables_and_digests_given_in_the_references() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    let gitlab = ci_variables(&[
        ("CI_COMMIT_SHA", REVISION),
        ("CI_PROJECT_URL", "https://gitlab.example.com/acme/shop"),
        ("CI_PIPELINE_ID", "4711"),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/acme/shop/-/pipelines/4711",
        ),
        ("CI_COMMIT_TIMESTAMP", "2026-11-03T11:00:00+01:00"),
    ]);
    let image = format!("registry.example.com/shop/backend:2.0.0@{A}");
    let resolver = publish_resolver();
    let published = plugin::publish(
        &cluster.client(),
        ns,
        publish_request("2.0.0", &[("backend", &image)]),
        &resolver,
        &gitlab,
        &now(),
    )
    .await
    .expect("published");
    assert_eq!(
        resolver.registry_requests(),
        0,
        "the digest was given: no registry asked"
    );
    assert_eq!(
        published.to_string(),
        format!(
            "artifact.hoist.dev/shop-2.0.0 created\n  \
             backend  registry.example.com/shop/backend:2.0.0@{A}\n  \
             source   https://gitlab.example.com/acme/shop@{REVISION} (build 4711: \
             https://gitlab.example.com/acme/shop/-/pipelines/4711)\n"
        )
    );
    let stored: Artifact = Api::namespaced(cluster.client(), ns)
        .get("shop-2.0.0")
        .await
        .expect("the Artifact");
    assert_eq!(
        serde_json::to_value(&stored.spec.source).expect("JSON"),
        json!({"repository": "https://gitlab.example.com/acme/shop", "revision": REVISION,
            "buildId": "4711", "buildUrl": "https://gitlab.example.com/acme/shop/-/pipelines/4711",
            "builtAt": now().0.to_string(), "committedAt": "2026-11-03T10:00:00Z"})
    );

    // --committed-at wins over CI_COMMIT_TIMESTAMP; a time that is not RFC 3339 is refused.
    let committed = plugin::PublishRequest {
        committed_at: Some("2026-11-03T09:30:00Z".into()),
        ..publish_request("2.0.2", &[("backend", &image)])
    };
    let published = plugin::publish(&cluster.client(), ns, committed, &resolver, &gitlab, &now())
        .await
        .expect("published");
    assert_eq!(
        published
            .artifact
            .spec
            .source
            .and_then(|source| source.committed_at)
            .map(|at| at.0.to_string()),
        Some("2026-11-03T09:30:00Z".to_string())
    );
    let yesterday = plugin::PublishRequest {
        committed_at: Some("yesterday".into()),
        ..publish_request("2.0.3", &[("backend", &image)])
    };
    let error = plugin::publish(&cluster.client(), ns, yesterday, &resolver, &gitlab, &now())
        .await
        .expect_err("not a time");
    assert_eq!(
        error.report(),
        "--committed-at \"yesterday\" is not an RFC 3339 time such as 2026-11-03T10:00:00Z or \
         2026-11-03T11:00:00+01:00\n  caused by: failed to parse four digit integer as year: invalid digit, \
         expected 0-9 but got y"
    );

    // Flags win over the variables; a repository without a revision is refused.
    let flags = plugin::PublishRequest {
        source_repository: Some("https://git.example.com/shop".into()),
        revision: None,
        ..publish_request("2.0.1", &[("backend", &image)])
    };
    let bare = ci_variables(&[]);
    let error = plugin::publish(&cluster.client(), ns, flags, &resolver, &bare, &now())
        .await
        .expect_err("no revision");
    assert_eq!(
        error.report(),
        "the source needs both a repository and a revision: the revision is missing (pass --revision, or run \
         where GitHub Actions or GitLab CI set it)"
    );
    for (flags, message) in [
        (
            vec!["backend".to_string()],
            "--image \"backend\": expected COMPONENT=IMAGE, e.g. backend=registry.example.com/shop/backend:1.4.2",
        ),
        (
            vec![format!("backend={image}"), format!("backend={image}")],
            "--image: component backend is given twice",
        ),
    ] {
        assert_eq!(
            plugin::parse_images(&flags).expect_err("refused").to_string(),
            message
        );
    }
    assert_eq!(
        plugin::artifact_name("shop", "1.4.2+build.7"),
        "shop-1.4.2-build.7"
    );
    assert_eq!(plugin::artifact_name("Shop", "2026.11.3"), "shop-2026.11.3");
}

// Several threads: the API stand-in serves the child process from this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_identity_with_the_shipped_publisher_role_publishes_and_starts_dev_and_nothing_more() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let ns = cluster.namespace();
    shop(&cluster).await;
    // deploy/ci/publisher-role.yaml, in this test's namespace, bound to `ci`.
    let role: Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/ci/publisher-role.yaml"
        ))
        .expect("the shipped Role"),
    )
    .expect("YAML");
    cluster
        .grant("hoist-publisher", role["rules"].clone(), &["ci"])
        .await
        .expect("grant");
    let path = cluster.user_kubeconfig_file("ci", &[]).expect("ci's kubeconfig");
    let context = Kubeconfig::read_from(&path)
        .expect("ci's kubeconfig")
        .current_context
        .expect("a current context");
    let ci = (path, context);
    let pushed = hoist_testkit::registry::push_multi("shop", &[("backend", "1.7.0")])
        .await
        .expect("push");
    let registry = hoist_testkit::registry::registry_address().expect("registry");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-hoist"))
        .env("KUBECONFIG", &ci.0)
        .env("HOME", std::env::temp_dir().join("hoist-no-home"))
        .env("GITHUB_SHA", REVISION)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "77")
        .args(["--context", &ci.1, "-n", ns, "publish", "shop", "1.7.0"])
        .args(["--image", &format!("backend={}", pushed["backend"].reference)])
        .args(["--insecure-registry", &registry, "--promote", "dev"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BINARY_TIMEOUT, run)
        .await
        .expect("kubectl-hoist finishes")
        .expect("kubectl-hoist runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "artifact.hoist.dev/shop-1.7.0 created");
    let promotion = lines[3]
        .strip_prefix("promotion.hoist.dev/")
        .and_then(|rest| rest.strip_suffix(" created"))
        .expect("the Promotion's line");
    assert_generated_from(promotion, "shop-1.7.0-dev-");
    let created: Promotion = Api::namespaced(cluster.client(), ns)
        .get(promotion)
        .await
        .expect("the Promotion");
    assert_eq!(created.spec.requested_by.as_deref(), Some("ci"));
    assert_eq!(created.spec.environment, "dev");

    // Nothing more: the Artifact cannot be changed or deleted, prod cannot
    // be read (so not promoted into by this command).
    let client = cluster.user_client("ci", &[]).expect("ci's client");
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), ns);
    let refused = artifacts
        .delete("shop-1.7.0", &Default::default())
        .await
        .expect_err("delete refused");
    assert!(
        matches!(refused, kube::Error::Api(ref status) if status.code == 403),
        "{refused}"
    );
    let output = kubectl_hoist(
        &ci,
        ns,
        &[
            "publish",
            "shop",
            "1.7.1",
            "--image",
            &format!("backend={}", pushed["backend"].by_digest()),
            "--promote",
            "prod",
        ],
    )
    .await;
    assert_eq!(
        output,
        (
            false,
            String::new(),
            format!(
                "kubectl hoist: cannot read Environment prod in namespace {ns}: environments.hoist.dev \"prod\" \
                 is forbidden: User \"ci\" cannot get resource \"environments\" in API group \"hoist.dev\" in the \
                 namespace \"{ns}\"\n"
            )
        )
    );
}

/// A Promotion of `artifact` into `environment` in `phase`, finished
/// `finished` seconds ago (terminal phases).
fn gc_promotion_yaml(
    name: &str,
    artifact: &str,
    environment: &str,
    phase: &str,
    finished: Option<i64>,
) -> String {
    let completed = finished.map_or_else(String::new, |seconds| {
        format!(", completedAt: \"{}\"", ago(seconds))
    });
    format!(
        "apiVersion: hoist.dev/v1alpha1\nkind: Promotion\nmetadata: {{name: {name}}}\n\
         spec: {{artifact: {artifact}, environment: {environment}}}\nstatus: {{phase: {phase}{completed}}}\n"
    )
}

#[tokio::test]
async fn gc_dry_run_shows_what_would_go_and_why_each_survivor_stays() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let (client, namespace) = (cluster.client(), cluster.namespace().to_string());
    let target =
        "targets: [{application: shop, component: backend, deployment: {name: backend}, container: app}]";
    create::<Environment>(
        &client,
        &namespace,
        &format!(
            "apiVersion: hoist.dev/v1alpha1\nkind: Environment\nmetadata: {{name: dev}}\n\
             spec: {{{target}, retention: {{artifacts: 1, promotions: 1, promotionsMinAge: 1h}}}}\n\
             status:\n  applications: [{{application: shop, artifact: shop-b, version: 1.0.1, promotion: p-b, health: Healthy}}]\n  \
             history:\n    - {{application: shop, artifact: shop-b, version: 1.0.1, promotion: p-b, outcome: Succeeded}}\n    \
             - {{application: shop, artifact: shop-a, version: 1.0.0, promotion: p-a, outcome: Succeeded}}\n"
        ),
    )
    .await;
    create::<Environment>(
        &client,
        &namespace,
        &format!(
            "apiVersion: hoist.dev/v1alpha1\nkind: Environment\nmetadata: {{name: prod}}\n\
             spec: {{{target}, retention: {{artifacts: 1}}}}\n"
        ),
    )
    .await;
    // Created oldest first; ties in creation order by name.
    for (name, version, digest) in [
        ("shop-0", "0.9.0", A),
        ("shop-a", "1.0.0", B),
        ("shop-b", "1.0.1", C),
        ("shop-c", "1.0.2", D),
        ("shop-d", "1.0.3", E),
    ] {
        create::<Artifact>(
            &client,
            &namespace,
            &artifact_yaml(name, version, &[("backend", digest)], true),
        )
        .await;
    }
    for yaml in [
        gc_promotion_yaml("p-b", "shop-b", "dev", "Succeeded", Some(600)),
        gc_promotion_yaml("p-young", "shop-c", "dev", "Superseded", Some(1200)),
        gc_promotion_yaml("p-a", "shop-a", "dev", "Succeeded", Some(7200)),
        gc_promotion_yaml("p-old", "shop-0", "dev", "Superseded", Some(86_400)),
        gc_promotion_yaml("p-c", "shop-c", "prod", "Waiting", None),
    ] {
        create_promotion(&cluster, &yaml).await;
    }
    let defaults = plugin::retention_defaults(None).expect("defaults");
    let dev = plugin::gc(&client, &namespace, Some("dev"), &defaults, &now())
        .await
        .expect("gc dev");
    let header = "KIND        NAME      OF     WOULD   REASON          NEEDED BY\n";
    let rows = "\
             Artifact    shop-d    shop   stay    Newest          <none>\n\
             Artifact    shop-c    shop   stay    OpenPromotion   p-c\n\
             Artifact    shop-b    shop   stay    Runs            dev\n\
             Artifact    shop-a    shop   stay    InHistory       dev\n\
             Artifact    shop-0    shop   go      BeyondNewest    <none>\n\
             Promotion   p-b       dev    stay    Newest          <none>\n\
             Promotion   p-young   dev    stay    Young           <none>\n\
             Promotion   p-a       dev    stay    InHistory       dev\n\
             Promotion   p-old     dev    go      BeyondNewest    <none>\n";
    assert_eq!(dev, format!("{header}{rows}2 of 9 would go\n"));
    let all = plugin::gc(&client, &namespace, None, &defaults, &now())
        .await
        .expect("gc all");
    // prod's open Promotion too.
    assert_eq!(
        all,
        format!(
            "{header}{rows}Promotion   p-c       prod   stay    Open            <none>\n2 of 10 would go\n"
        )
    );
    let missing = plugin::gc(&client, &namespace, Some("qa"), &defaults, &now())
        .await
        .expect_err("no qa");
    assert_eq!(
        missing.to_string(),
        format!("Environment qa not found in namespace {namespace}")
    );
}

/// An Environment at its history limit: shop released (lead time from the
/// commit), failed, rolled back and restored; billing released (lead time
/// from the build); the oldest entry 40 days ago.
fn live_yaml() -> String {
    format!(
        r#"apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: live}}
spec:
  historyLimit: 5
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend}}, container: app}}
    - {{application: billing, component: api, deployment: {{name: billing}}, container: api}}
status:
  history:
    - {{application: shop, artifact: shop-1.3.0, version: 1.3.0, promotion: shop-1.3.0-live, committedAt: "{h5}", promotedAt: "{h2}", outcome: Succeeded, completedAt: "{h1}"}}
    - {{application: shop, artifact: shop-1.2.1, version: 1.2.1, promotion: shop-1.2.1-live, promotedAt: "{h11}", outcome: Failed, completedAt: "{h10}"}}
    - {{application: shop, artifact: shop-1.2.0, version: 1.2.0, promotion: shop-1.2.0-live, promotedAt: "{d2_before}", outcome: RolledBack, completedAt: "{d2}", restoredAt: "{d2_after}"}}
    - {{application: billing, artifact: billing-2.0.0, version: 2.0.0, promotion: billing-2.0.0-live, builtAt: "{d3_built}", promotedAt: "{d3}", outcome: Succeeded, completedAt: "{d3}"}}
    - {{application: shop, artifact: shop-1.1.0, version: 1.1.0, promotion: shop-1.1.0-live, committedAt: "{d41}", promotedAt: "{d40}", outcome: Succeeded, completedAt: "{d40}"}}
"#,
        h1 = ago(3600),
        h2 = ago(2 * 3600),
        h5 = ago(5 * 3600),
        h10 = ago(10 * 3600),
        h11 = ago(11 * 3600),
        d2_before = ago(2 * 86_400 + 600),
        d2 = ago(2 * 86_400),
        d2_after = ago(2 * 86_400 - 600),
        d3 = ago(3 * 86_400),
        d3_built = ago(3 * 86_400 + 2 * 3600),
        d40 = ago(40 * 86_400),
        d41 = ago(41 * 86_400),
    )
}

#[tokio::test]
async fn dora_computes_the_four_figures_from_the_history_and_says_how_far_back_it_reaches() {
    let cluster = TestCluster::new().await.expect("test cluster");
    let client = cluster.client();
    let ns = cluster.namespace();
    create::<Environment>(&client, ns, &live_yaml()).await;
    create::<Environment>(&client, ns, &dev_yaml()).await;
    let days = |n: i64| plugin::parse_since(&format!("{n}d")).expect("a duration");
    assert_eq!(
        plugin::dora(&client, ns, None, days(30), &now(), plugin::DoraOutput::Table)
            .await
            .expect("dora"),
        format!(
            "\
DORA figures of namespace {ns} since {since} (30d); lead time and time to restore are medians:
ENVIRONMENT   APPLICATION   DEPLOYMENTS   PER DAY   SUCCEEDED   FAILED   ROLLED BACK   CHANGE FAILURE RATE   LEAD TIME   TIME TO RESTORE
live          billing       1             0.03      1           0        0             0%                    120m        <none>
live          shop          3             0.10      1           1        1             67%                   4h          4h35m
",
            since = ago(30 * 86_400)
        )
    );
    // Further back than the history reaches: counted from its oldest entry, and said so.
    assert_eq!(
        plugin::dora(&client, ns, Some("live"), days(60), &now(), plugin::DoraOutput::Table)
            .await
            .expect("dora --since 60d"),
        format!(
            "\
DORA figures of namespace {ns} since {since} (60d); lead time and time to restore are medians:
ENVIRONMENT   APPLICATION   DEPLOYMENTS   PER DAY   SUCCEEDED   FAILED   ROLLED BACK   CHANGE FAILURE RATE   LEAD TIME   TIME TO RESTORE
live          billing       1             0.02      1           0        0             0%                    120m        <none>
live          shop          4             0.07      2           1        1             50%                   14h         4h35m
history of live reaches back to {oldest} (historyLimit 5): older deployments are not counted
",
            since = ago(60 * 86_400),
            oldest = ago(40 * 86_400)
        )
    );
    let document: Value = serde_json::from_str(
        &plugin::dora(
            &client,
            ns,
            Some("live"),
            days(30),
            &now(),
            plugin::DoraOutput::Json,
        )
        .await
        .expect("dora -o json"),
    )
    .expect("JSON");
    assert_eq!(
        document["environments"][0]["applications"][1],
        json!({
            "application": "shop",
            "deployments": {"total": 3, "succeeded": 1, "failed": 1, "rolledBack": 1, "perDay": 0.1},
            "changeFailureRate": 2.0 / 3.0,
            "leadTimeSeconds": {"median": 14_400, "values": [14_400]},
            "timeToRestoreSeconds": {"median": 16_500, "values": [600, 32_400]},
        })
    );
    assert_eq!(
        (
            &document["since"],
            &document["environments"][0]["historyLimit"],
            &document["environments"][0]["historyReachesBackTo"]
        ),
        (&json!(ago(30 * 86_400)), &json!(5), &Value::Null)
    );
    assert_eq!(
        plugin::dora(
            &client,
            ns,
            Some("dev"),
            days(30),
            &now(),
            plugin::DoraOutput::Table
        )
        .await
        .expect("dora dev"),
        format!(
            "No deployments in namespace {ns} since {since} (30d).\n",
            since = ago(30 * 86_400)
        )
    );
    assert_eq!(
        plugin::parse_since("a month")
            .expect_err("not a duration")
            .to_string(),
        "--since \"a month\" is not a duration such as 30d, 2w or 72h"
    );
}
