//! Scenarios of the decision engine, played through the in-memory world:
//! given objects, when the Environments are decided and rollouts happen, then
//! exactly these statuses and Deployment contents. Where a scenario turns on
//! one decision, the Plan of that reconcile is asserted too: its pins,
//! Promotion statuses and notices.

use std::path::Path;

use hoist::api::WorkloadKind;
use hoist::api::{
    ApprovalDecision, ApprovalRequest, ApprovalRuleStatus, ConfigChange, Environment, GateName, GateState,
    Health, Phase, Promotion, PromotionSpec,
};
use hoist::core::environment::{AUTO_PROMOTED_LABEL, Notice, Plan};
use hoist::core::gates::approval::ApprovalTrust;
use hoist::core::reasons::EventReason;
use hoist::core::workload::{Workload, WorkloadPin};
use hoist::render::Manifests;
use hoist::render::world::{RolloutOutcome, World};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const D: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

fn artifact_yaml(name: &str, version: &str, backend: &str, frontend: &str, revision: Option<&str>) -> String {
    let source = revision
        .map(|r| format!("  source: {{repository: https://git.example.com/shop, revision: {r}}}\n"))
        .unwrap_or_default();
    format!(
        r#"---
apiVersion: hoist.dev/v1alpha1
kind: Artifact
metadata: {{name: {name}, namespace: shop, creationTimestamp: "2026-11-01T00:00:00Z"}}
spec:
  application: shop
  version: {version}
  images:
    - {{component: backend, image: "registry.example.com/shop/backend:{version}"}}
    - {{component: frontend, image: "registry.example.com/shop/frontend:{version}"}}
{source}status:
  conditions:
    - {{type: Ready, status: "True", reason: Resolved, message: every image resolved, lastTransitionTime: "2026-11-01T00:00:00Z"}}
  images:
    - {{component: backend, image: "registry.example.com/shop/backend:{version}", digest: "{backend}", resolvedAt: "2026-11-01T00:00:00Z"}}
    - {{component: frontend, image: "registry.example.com/shop/frontend:{version}", digest: "{frontend}", resolvedAt: "2026-11-01T00:00:00Z"}}
"#
    )
}

const FULL_REVISION: &str = "3f2c9a1b7e4d5c6f8a9b0c1d2e3f4a5b6c7d8e9f";

fn environments_yaml() -> String {
    let mut out = String::new();
    for (env, upstream, gates) in [
        ("dev", "[]", "{}"),
        (
            "prod",
            "[dev]",
            "{approval: {minApprovals: 1, users: [alice, bob]}, provenance: {requireSourceRevision: true, allowedRegistries: [registry.example.com/shop]}}",
        ),
    ] {
        out.push_str(&format!(
            r#"---
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {{name: {env}, namespace: shop, generation: 1}}
spec:
  upstream: {upstream}
  targets:
    - {{application: shop, component: backend, deployment: {{name: backend, namespace: shop-{env}}}, container: app}}
    - {{application: shop, component: frontend, deployment: {{name: frontend, namespace: shop-{env}}}, container: web}}
  config:
    - application: shop
      baseConfigMap: shop-base
      data: {{ENVIRONMENT: {env}}}
  gates: {gates}
  rollback: {{automatic: true}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: shop-{env}, labels: {{hoist.dev/tenant: shop}}}}
"#
        ));
        for (component, container) in [("backend", "app"), ("frontend", "web")] {
            out.push_str(&format!(
                r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {component}, namespace: shop-{env}, generation: 1}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {component}}}}}
  template:
    metadata: {{labels: {{app: {component}}}}}
    spec:
      containers:
        - {{name: {container}, image: "registry.example.com/shop/{component}:latest"}}
        - {{name: sidecar, image: "envoy:1.30"}}
status: {{observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2}}
"#
            ));
        }
    }
    out.push_str(
        r#"---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-base, namespace: shop}
data: {LOG_LEVEL: info}
"#,
    );
    out
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_795_000_000 + seconds).expect("valid time"))
}

fn world(artifacts: &[String]) -> World {
    let text = format!("{}{}", artifacts.concat(), environments_yaml());
    let manifests = Manifests::parse(&text, Path::new("fixture.yaml"), "shop").expect("fixture parses");
    let mut world = World::new(at(0));
    world.objects = manifests;
    // As on a cluster with the approval admission policy installed.
    world.approvals = ApprovalTrust::Verified;
    world
}

fn standard_world() -> World {
    world(&[
        artifact_yaml("shop-1.0.0", "1.0.0", A, B, Some(FULL_REVISION)),
        artifact_yaml("shop-1.1.0", "1.1.0", C, D, Some(FULL_REVISION)),
    ])
}

fn promote(world: &mut World, name: &str, artifact: &str, environment: &str) {
    let mut promotion = Promotion::new(
        name,
        PromotionSpec {
            artifact: artifact.into(),
            environment: environment.into(),
            reason: None,
            requested_by: Some("carol".into()),
            r#override: None,
            approvals: Vec::new(),
        },
    );
    promotion.metadata.namespace = Some("shop".into());
    promotion.metadata.generation = Some(1);
    promotion.metadata.creation_timestamp = Some(world.now.clone());
    world.objects.promotions.push(promotion);
}

fn approve(world: &mut World, name: &str, user: &str) {
    decide(world, name, user, &[], ApprovalDecision::Approve, None);
}

/// `user` of `groups` adds `decision` to spec.approvals of Promotion `name`.
fn decide(
    world: &mut World,
    name: &str,
    user: &str,
    groups: &[&str],
    decision: ApprovalDecision,
    comment: Option<&str>,
) {
    let promotion = world
        .objects
        .promotions
        .iter_mut()
        .find(|p| p.name_any() == name)
        .expect("promotion exists");
    promotion.spec.approvals.push(ApprovalRequest {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        decision,
        comment: comment.map(Into::into),
    });
    promotion.metadata.generation = Some(promotion.metadata.generation.unwrap_or(1) + 1);
}

fn promotion<'a>(world: &'a World, name: &str) -> &'a Promotion {
    world
        .objects
        .promotions
        .iter()
        .find(|p| p.name_any() == name)
        .expect("promotion exists")
}

fn phase(world: &World, name: &str) -> (Phase, String) {
    let status = promotion(world, name)
        .status
        .clone()
        .expect("promotion has status");
    (status.phase, status.message.unwrap_or_default())
}

fn environment<'a>(world: &'a World, name: &str) -> &'a Environment {
    world
        .objects
        .environments
        .iter()
        .find(|e| e.name_any() == name)
        .expect("environment exists")
}

fn deployment<'a>(world: &'a World, namespace: &str, name: &str) -> &'a Deployment {
    world
        .objects
        .deployments
        .iter()
        .find(|d| d.namespace().as_deref() == Some(namespace) && d.name_any() == name)
        .expect("deployment exists")
}

fn images(world: &World, namespace: &str, name: &str) -> Vec<(String, String)> {
    deployment(world, namespace, name)
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

fn annotation(world: &World, namespace: &str, name: &str, key: &str) -> Option<String> {
    deployment(world, namespace, name)
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

fn completes(_: &Workload) -> RolloutOutcome {
    RolloutOutcome::Completes
}

/// One reconcile of `environment`: decides it and carries the plan out.
fn reconcile(world: &mut World, environment: &str) -> Plan {
    let plan = world.plan("shop", environment).expect("environment exists");
    world.apply("shop", environment, plan.clone());
    plan
}

/// The pins of both Deployments of `environment` to `artifact`'s digests.
fn pins(
    environment: &str,
    artifact: &str,
    backend: &str,
    frontend: &str,
    config_hash: &str,
) -> Vec<WorkloadPin> {
    [("backend", "app", backend), ("frontend", "web", frontend)]
        .map(|(name, container, digest)| WorkloadPin {
            kind: WorkloadKind::Deployment,
            namespace: format!("shop-{environment}"),
            name: name.into(),
            images: [(
                container.to_string(),
                format!("registry.example.com/shop/{name}@{digest}"),
            )]
            .into(),
            artifact: artifact.into(),
            config_hash: Some(config_hash.into()),
            environment: environment.into(),
            tenant: "shop".into(),
        })
        .into()
}

fn notice(promotion: &str, reason: EventReason, note: &str) -> Notice {
    Notice {
        promotion: Some(promotion.into()),
        reason,
        note: note.into(),
    }
}

/// The configuration hash a plan ships for `shop`.
fn shipped_hash(plan: &Plan) -> String {
    plan.config_maps[0].config.hash.clone()
}

#[tokio::test]
async fn a_release_goes_dev_then_prod_with_the_same_digests() {
    let mut world = standard_world();
    promote(&mut world, "to-dev", "shop-1.0.0", "dev");
    let start = reconcile(&mut world, "dev");
    let dev_hash = shipped_hash(&start);
    assert_eq!(start.pins, pins("dev", "shop-1.0.0", A, B, &dev_hash));
    assert_eq!(
        start.notices,
        vec![notice(
            "to-dev",
            EventReason::Promoting,
            "rolling out shop-1.0.0 to dev"
        )]
    );
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-dev"),
        (Phase::Succeeded, "shop-1.0.0 runs in dev".into())
    );
    assert_eq!(
        images(&world, "shop-dev", "backend"),
        vec![
            (
                "app".to_string(),
                format!("registry.example.com/shop/backend@{A}")
            ),
            ("sidecar".to_string(), "envoy:1.30".to_string()),
        ]
    );
    assert_eq!(
        images(&world, "shop-dev", "frontend")[0],
        (
            "web".to_string(),
            format!("registry.example.com/shop/frontend@{B}")
        )
    );
    assert_eq!(
        annotation(&world, "shop-dev", "backend", "hoist.dev/artifact").as_deref(),
        Some("shop-1.0.0")
    );

    // prod waits for an approval.
    promote(&mut world, "to-prod", "shop-1.0.0", "prod");
    world.settle(10, completes).await;
    let (waiting, message) = phase(&world, "to-prod");
    assert_eq!(waiting, Phase::Waiting);
    assert_eq!(
        message,
        "waiting for the Approval gate: 0 of 1 approvals from users alice, bob; approve with: kubectl hoist approve to-prod -n shop"
    );
    let gates: Vec<(GateName, GateState)> = promotion(&world, "to-prod")
        .status
        .as_ref()
        .unwrap()
        .gates
        .iter()
        .map(|g| (g.gate, g.state))
        .collect();
    assert_eq!(
        gates,
        vec![
            (GateName::ArtifactReady, GateState::Passed),
            (GateName::Upstream, GateState::Passed),
            (GateName::Approval, GateState::Pending),
            (GateName::Provenance, GateState::Passed),
            (GateName::Vulnerabilities, GateState::Passed),
            (GateName::Soak, GateState::Passed),
            (GateName::Windows, GateState::Passed),
            (GateName::Compatibility, GateState::Passed),
            (GateName::Verification, GateState::Passed),
        ]
    );

    // An approver not on the list does not count; alice does.
    approve(&mut world, "to-prod", "mallory");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Waiting);
    assert_eq!(
        world.notices.last(),
        Some(&(
            "shop/prod".to_string(),
            notice(
                "to-prod",
                EventReason::ApprovalIgnored,
                "approval by mallory ignored: not allowed to approve here: only users alice, bob"
            )
        )),
        "told once, when first seen"
    );
    world.now = at(60);
    approve(&mut world, "to-prod", "alice");
    let start = reconcile(&mut world, "prod");
    assert_eq!(
        start.pins,
        pins("prod", "shop-1.0.0", A, B, &shipped_hash(&start)),
        "the digests dev runs"
    );
    assert_eq!(
        start.notices,
        vec![
            notice("to-prod", EventReason::Approved, "approved by alice (verified)"),
            notice(
                "to-prod",
                EventReason::Promoting,
                "rolling out shop-1.0.0 to prod"
            ),
        ]
    );
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-prod"),
        (Phase::Succeeded, "shop-1.0.0 runs in prod".into())
    );
    let status = promotion(&world, "to-prod").status.clone().unwrap();
    let approvals: Vec<(String, Time, bool, bool)> = status
        .approvals
        .iter()
        .map(|a| (a.user.clone(), a.at.clone(), a.verified, a.counted))
        .collect();
    assert_eq!(
        approvals,
        vec![
            ("mallory".into(), at(0), true, false),
            ("alice".into(), at(60), true, true)
        ]
    );
    assert_eq!(
        status.approval_rules,
        vec![ApprovalRuleStatus {
            name: "approvers".into(),
            needed: 1,
            approvers: vec!["alice".into()],
            met: true
        }]
    );
    let changes: Vec<(String, String, Option<String>, String)> = status
        .changes
        .iter()
        .map(|c| {
            (
                c.deployment.clone(),
                c.container.clone(),
                c.from.clone(),
                c.to.clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("backend".into(), "app".into(), None, A.into()),
            ("frontend".into(), "web".into(), None, B.into())
        ]
    );

    // prod runs exactly the dev digests.
    assert_eq!(
        images(&world, "shop-prod", "backend"),
        images(&world, "shop-dev", "backend")
    );
    assert_eq!(
        images(&world, "shop-prod", "frontend"),
        images(&world, "shop-dev", "frontend")
    );
    let prod = environment(&world, "prod").status.clone().unwrap();
    assert_eq!(prod.summary.as_deref(), Some("shop@1.0.0"));
    let app = &prod.applications[0];
    assert_eq!(
        (
            app.artifact.as_str(),
            app.promotion.as_str(),
            app.health,
            app.approvers.clone(),
            app.source_revision.as_deref()
        ),
        (
            "shop-1.0.0",
            "to-prod",
            Health::Healthy,
            vec!["alice".to_string()],
            Some(FULL_REVISION)
        )
    );
    assert_eq!(prod.history.len(), 1);
    assert_eq!(
        (prod.history[0].promotion.as_str(), prod.history[0].outcome),
        ("to-prod", Phase::Succeeded)
    );
}

#[tokio::test]
async fn an_idle_world_decides_nothing_new() {
    let mut world = standard_world();
    promote(&mut world, "to-dev", "shop-1.0.0", "dev");
    world.settle(10, completes).await;
    let before = world.clone();
    world.now = at(3600);
    let plan = world.plan("shop", "dev").unwrap();
    assert_eq!(Some(&plan.status), environment(&world, "dev").status.as_ref());
    assert_eq!(
        plan.promotions.get("to-dev"),
        None,
        "a Succeeded Promotion is not decided again"
    );
    assert_eq!(plan.notices, Vec::new());
    assert_eq!(plan.new_promotions, Vec::new());
    let rounds = world.settle(10, completes).await;
    assert_eq!(rounds, 0, "nothing changed in the first round");
    assert_eq!(world.objects.environments, before.objects.environments);
    assert_eq!(world.objects.promotions, before.objects.promotions);
    assert_eq!(world.objects.deployments, before.objects.deployments);
}

#[tokio::test]
async fn upstream_gate_holds_prod_until_dev_runs_the_artifact() {
    let mut world = standard_world();
    promote(&mut world, "to-prod", "shop-1.0.0", "prod");
    approve(&mut world, "to-prod", "bob");
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-prod"),
        (
            Phase::Waiting,
            "waiting for the Upstream gate: shop-1.0.0 has not succeeded in dev; promote it there first"
                .into()
        )
    );
    assert_eq!(
        images(&world, "shop-prod", "backend")[0].1,
        "registry.example.com/shop/backend:latest"
    );
}

#[tokio::test]
async fn promotions_of_one_application_queue_and_an_older_waiting_one_is_superseded() {
    let mut world = standard_world();
    promote(&mut world, "first", "shop-1.0.0", "dev");
    world.now = at(1);
    promote(&mut world, "second", "shop-1.1.0", "dev");
    // One decision round without rollouts: the first is rolling out, the second queues.
    let plan = reconcile(&mut world, "dev");
    assert_eq!(plan.pins, pins("dev", "shop-1.0.0", A, B, &shipped_hash(&plan)));
    assert_eq!(
        plan.notices,
        vec![notice(
            "first",
            EventReason::Promoting,
            "rolling out shop-1.0.0 to dev"
        )]
    );
    assert_eq!(phase(&world, "first").0, Phase::Verifying);
    assert_eq!(
        phase(&world, "second"),
        (
            Phase::Waiting,
            "queued behind Promotion first, which is rolling out shop".into()
        )
    );
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "first").0, Phase::Succeeded);
    assert_eq!(phase(&world, "second").0, Phase::Succeeded);
    assert_eq!(
        images(&world, "shop-dev", "backend")[0].1,
        format!("registry.example.com/shop/backend@{C}")
    );

    // A Promotion of 1.0.0 created before 1.1.0 succeeded, still waiting, is superseded.
    let mut world = standard_world();
    promote(&mut world, "old", "shop-1.0.0", "prod");
    world.now = at(5);
    promote(&mut world, "new-dev", "shop-1.1.0", "dev");
    world.settle(10, completes).await;
    promote(&mut world, "new-prod", "shop-1.1.0", "prod");
    approve(&mut world, "new-prod", "alice");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "new-prod").0, Phase::Succeeded);
    assert_eq!(
        phase(&world, "old"),
        (
            Phase::Superseded,
            "shop-1.1.0 succeeded in prod after this Promotion was created".into()
        )
    );
}

#[tokio::test]
async fn missing_provenance_blocks_naming_the_problem() {
    let mut world = world(&[artifact_yaml("shop-1.0.0", "1.0.0", A, B, None)]);
    promote(&mut world, "to-dev", "shop-1.0.0", "dev");
    world.settle(10, completes).await;
    promote(&mut world, "to-prod", "shop-1.0.0", "prod");
    approve(&mut world, "to-prod", "alice");
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-prod"),
        (
            Phase::Waiting,
            "waiting for the Provenance gate: spec.source.revision is not set; build a new Artifact that meets spec.gates.provenance".into()
        )
    );
    let blocked: Vec<_> = world
        .notices
        .iter()
        .filter(|(_, n)| n.reason == EventReason::Blocked)
        .map(|(_, n)| n.note.clone())
        .collect();
    assert_eq!(blocked, vec!["Provenance gate: spec.source.revision is not set; build a new Artifact that meets spec.gates.provenance".to_string()]);
}

#[tokio::test]
async fn unknown_artifact_and_cross_tenant_targets_are_rejected() {
    let mut world = standard_world();
    promote(&mut world, "ghost", "shop-9.9.9", "dev");
    let plan = reconcile(&mut world, "dev");
    let rejected = "Artifact shop-9.9.9 not found in namespace shop; create it, then a new Promotion";
    assert_eq!(
        plan.notices,
        vec![notice("ghost", EventReason::Rejected, rejected)]
    );
    assert_eq!(plan.pins, Vec::new());
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "ghost"),
        (
            Phase::Rejected,
            "Artifact shop-9.9.9 not found in namespace shop; create it, then a new Promotion".into()
        )
    );

    let mut world = standard_world();
    world
        .objects
        .namespaces
        .iter_mut()
        .find(|n| n.name_any() == "shop-dev")
        .unwrap()
        .metadata
        .labels = Some([("hoist.dev/tenant".to_string(), "someone-else".to_string())].into());
    promote(&mut world, "to-dev", "shop-1.0.0", "dev");
    let plan = reconcile(&mut world, "dev");
    assert_eq!(plan.promotions["to-dev"].phase, Phase::Rejected);
    assert_eq!(plan.pins, Vec::new(), "no pin, not even of the opted-in target");
    assert_eq!(plan.config_maps, Vec::new());
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-dev"),
        (
            Phase::Rejected,
            "refused: spec.targets[0].deployment.namespace: namespace shop-dev is not opted in for tenant shop; a cluster admin must label it hoist.dev/tenant=shop".into()
        )
    );
    assert_eq!(
        images(&world, "shop-dev", "backend")[0].1,
        "registry.example.com/shop/backend:latest",
        "nothing touched"
    );
    let ready = environment(&world, "dev")
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "TargetsValid")
        .cloned()
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidTarget")
    );
}

#[tokio::test]
async fn failed_rollout_rolls_back_images_and_config() {
    let mut world = standard_world();
    promote(&mut world, "v1", "shop-1.0.0", "dev");
    world.settle(10, completes).await;
    let hash_v1 =
        annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash").expect("config hash set");
    let images_v1 = images(&world, "shop-dev", "backend");

    // A config change and a new release that fails to roll out.
    world
        .objects
        .environments
        .iter_mut()
        .find(|e| e.name_any() == "dev")
        .unwrap()
        .spec
        .config[0]
        .data
        .insert("FEATURE".into(), "on".into());
    world.settle(10, completes).await;
    let hash_v1_new_config = annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash").unwrap();
    assert_ne!(hash_v1, hash_v1_new_config);
    assert_eq!(
        images(&world, "shop-dev", "backend"),
        images_v1,
        "config-only change keeps the images"
    );

    promote(&mut world, "v2", "shop-1.1.0", "dev");
    let fails = |workload: &Workload| match workload {
        Workload::Deployment(d) if d.name_any() == "backend" && images_of(d).contains(C) => {
            RolloutOutcome::ExceedsDeadline
        }
        _ => RolloutOutcome::Completes,
    };
    let start = reconcile(&mut world, "dev");
    assert_eq!(start.pins, pins("dev", "shop-1.1.0", C, D, &hash_v1_new_config));
    world.roll_out(fails);
    let rollback = reconcile(&mut world, "dev");
    assert_eq!(rollback.promotions["v2"].phase, Phase::RolledBack);
    assert_eq!(
        rollback.pins,
        pins("dev", "shop-1.0.0", A, B, &hash_v1_new_config),
        "the previous release, with the configuration of now"
    );
    assert_eq!(
        rollback.notices,
        vec![notice(
            "v2",
            EventReason::RolledBack,
            rollback.promotions["v2"].message.as_deref().unwrap()
        )]
    );
    world.roll_out(fails);
    world.settle(10, fails).await;
    let (phase_v2, message) = phase(&world, "v2");
    assert_eq!(phase_v2, Phase::RolledBack);
    assert!(
        message.starts_with("rollout failed (shop-dev/backend: rollout exceeded its progress deadline"),
        "{message}"
    );
    assert!(message.ends_with("rolled back to shop-1.0.0 1.0.0"), "{message}");
    assert_eq!(images(&world, "shop-dev", "backend"), images_v1);
    assert_eq!(
        annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash"),
        Some(hash_v1_new_config)
    );
    let dev = environment(&world, "dev").status.clone().unwrap();
    let outcomes: Vec<(String, Phase)> = dev
        .history
        .iter()
        .map(|h| (h.promotion.clone(), h.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("v2".to_string(), Phase::RolledBack),
            ("v1".to_string(), Phase::Succeeded)
        ]
    );
    assert_eq!(
        (dev.applications[0].artifact.as_str(), dev.applications[0].health),
        ("shop-1.0.0", Health::Healthy)
    );
}

fn images_of(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .filter_map(|c| c.image.clone())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn a_manual_rollback_restores_the_earlier_release_and_its_config() {
    let mut world = standard_world();
    promote(&mut world, "v1", "shop-1.0.0", "dev");
    world.settle(10, completes).await;
    let hash_v1 = annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash").unwrap();
    let images_v1 = images(&world, "shop-dev", "backend");
    world
        .objects
        .environments
        .iter_mut()
        .find(|e| e.name_any() == "dev")
        .unwrap()
        .spec
        .config[0]
        .data
        .insert("FEATURE".into(), "on".into());
    promote(&mut world, "v2", "shop-1.1.0", "dev");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "v2").0, Phase::Succeeded);
    assert_ne!(
        annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash").unwrap(),
        hash_v1
    );

    world.now = at(600);
    promote(&mut world, "back", "shop-1.0.0", "dev");
    let hash_v2 = annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash");
    let start = reconcile(&mut world, "dev");
    let back = &start.promotions["back"];
    assert_eq!(
        (back.phase, back.rollback, back.config.clone()),
        (
            Phase::Verifying,
            true,
            Some(ConfigChange {
                from: hash_v2,
                to: hash_v1.clone()
            })
        )
    );
    assert_eq!(start.pins, pins("dev", "shop-1.0.0", A, B, &hash_v1));
    assert_eq!(
        shipped_hash(&start),
        hash_v1,
        "the ConfigMap gets the earlier configuration back"
    );
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "back"),
        (Phase::Succeeded, "shop-1.0.0 runs in dev".into())
    );
    let status = promotion(&world, "back").status.clone().unwrap();
    assert!(status.rollback);
    assert_eq!(images(&world, "shop-dev", "backend"), images_v1);
    assert_eq!(
        annotation(&world, "shop-dev", "backend", "hoist.dev/config-hash"),
        Some(hash_v1.clone())
    );
    let rendered = world
        .objects
        .config_maps
        .iter()
        .find(|cm| cm.namespace().as_deref() == Some("shop-dev") && cm.name_any() == "shop-config")
        .unwrap();
    assert_eq!(
        rendered.data.as_ref().unwrap().get("FEATURE"),
        None,
        "the earlier configuration is back"
    );

    // The rollback stays until the configuration changes again.
    let rounds = world.settle(10, completes).await;
    assert_eq!(rounds, 0);
}

#[tokio::test]
async fn auto_promote_picks_the_newest_ready_artifact_once() {
    let mut world = standard_world();
    world
        .objects
        .environments
        .iter_mut()
        .find(|e| e.name_any() == "dev")
        .unwrap()
        .spec
        .auto_promote = true;
    let plan = reconcile(&mut world, "dev");
    let created: Vec<(String, String, Option<String>, bool)> = plan
        .new_promotions
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.spec.artifact.clone(),
                p.spec.reason.clone(),
                p.labels().get(AUTO_PROMOTED_LABEL).is_some_and(|v| v == "true"),
            )
        })
        .collect();
    assert_eq!(
        created,
        vec![(
            "shop-1.1.0-dev".to_string(),
            "shop-1.1.0".to_string(),
            Some("autoPromote".to_string()),
            true
        )]
    );
    world.settle(10, completes).await;
    let auto: Vec<(String, String)> = world
        .objects
        .promotions
        .iter()
        .map(|p| (p.name_any(), p.spec.artifact.clone()))
        .collect();
    assert_eq!(
        auto,
        vec![("shop-1.1.0-dev".to_string(), "shop-1.1.0".to_string())]
    );
    assert_eq!(phase(&world, "shop-1.1.0-dev").0, Phase::Succeeded);
    world.settle(10, completes).await;
    assert_eq!(world.objects.promotions.len(), 1);
}

#[tokio::test]
async fn an_upstream_cycle_is_reported_on_the_environment() {
    let mut world = standard_world();
    world
        .objects
        .environments
        .iter_mut()
        .find(|e| e.name_any() == "dev")
        .unwrap()
        .spec
        .upstream = vec!["prod".into()];
    world.settle(3, completes).await;
    let condition = environment(&world, "dev")
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "UpstreamValid")
        .cloned()
        .unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.message.as_str()),
        ("False", "spec.upstream: cycle dev → prod → dev")
    );
}

/// The world with shop-1.0.0 running in dev and Promotion to-prod of it
/// waiting, prod's approval gate set to `gate` (YAML).
async fn waiting_for_prod(gate: &str) -> World {
    let mut world = standard_world();
    world
        .objects
        .environments
        .iter_mut()
        .find(|e| e.name_any() == "prod")
        .unwrap()
        .spec
        .gates
        .approval = Some(serde_yaml::from_str(gate).expect("gate parses"));
    promote(&mut world, "to-dev", "shop-1.0.0", "dev");
    world.settle(10, completes).await;
    promote(&mut world, "to-prod", "shop-1.0.0", "prod");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Waiting);
    world
}

#[tokio::test]
async fn prod_needs_staff_and_client_approvals_from_two_distinct_people() {
    let mut world =
        waiting_for_prod("{rules: [{name: staff, groups: [staff]}, {name: client, groups: [client]}]}").await;
    // alice is in both groups: alone she meets one rule only.
    decide(
        &mut world,
        "to-prod",
        "alice",
        &["staff", "client"],
        ApprovalDecision::Approve,
        None,
    );
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-prod"),
        (
            Phase::Waiting,
            "waiting for the Approval gate: 1 of 2 rules met: staff (alice); client needs 1 approval from group client; \
             approve with: kubectl hoist approve to-prod -n shop"
                .into()
        )
    );
    // carol asked for it: her approval does not count.
    decide(
        &mut world,
        "to-prod",
        "carol",
        &["client"],
        ApprovalDecision::Approve,
        None,
    );
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Waiting);
    // bob from staff lets alice count for client.
    world.now = at(30);
    decide(
        &mut world,
        "to-prod",
        "bob",
        &["staff"],
        ApprovalDecision::Approve,
        None,
    );
    let start = reconcile(&mut world, "prod");
    assert_eq!(
        start.notices,
        vec![
            notice(
                "to-prod",
                EventReason::Approved,
                "approved by bob for rule staff (verified)"
            ),
            notice(
                "to-prod",
                EventReason::Promoting,
                "rolling out shop-1.0.0 to prod"
            ),
        ]
    );
    let status = &start.promotions["to-prod"];
    assert_eq!(status.gates[2].message, "approved: staff (bob), client (alice)");
    assert_eq!(
        status
            .approvals
            .iter()
            .map(|a| (a.user.as_str(), a.counted, a.note.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>(),
        vec![
            ("alice", true, "counted for rule client"),
            ("carol", false, "self-approval: carol requested this Promotion"),
            ("bob", true, "counted for rule staff"),
        ]
    );
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Succeeded);
    let prod = environment(&world, "prod").status.clone().unwrap();
    assert_eq!(
        prod.applications[0].approvers,
        vec!["alice".to_string(), "bob".into()]
    );
    assert_eq!(prod.history[0].approvers, vec!["alice".to_string(), "bob".into()]);
}

#[tokio::test]
async fn a_rejection_by_an_allowed_approver_ends_the_promotion() {
    let mut world = waiting_for_prod("{users: [alice, bob], minApprovals: 2}").await;
    decide(
        &mut world,
        "to-prod",
        "mallory",
        &[],
        ApprovalDecision::Reject,
        Some("no"),
    );
    approve(&mut world, "to-prod", "alice");
    world.settle(10, completes).await;
    assert_eq!(
        phase(&world, "to-prod").0,
        Phase::Waiting,
        "mallory may not reject"
    );
    decide(
        &mut world,
        "to-prod",
        "bob",
        &[],
        ApprovalDecision::Reject,
        Some("breaks checkout"),
    );
    let plan = reconcile(&mut world, "prod");
    assert_eq!(
        (
            plan.promotions["to-prod"].phase,
            plan.promotions["to-prod"].message.as_deref()
        ),
        (Phase::Rejected, Some("rejected by bob: breaks checkout"))
    );
    assert_eq!(plan.promotions["to-prod"].completed_at, Some(at(0)));
    assert_eq!(
        plan.notices,
        vec![notice(
            "to-prod",
            EventReason::Rejected,
            "rejected by bob: breaks checkout"
        )]
    );
    assert_eq!(plan.pins, Vec::new());
    world.settle(10, completes).await;
    assert_eq!(
        images(&world, "shop-prod", "backend")[0].1,
        "registry.example.com/shop/backend:latest",
        "nothing was rolled out"
    );
    // A Rejected Promotion stays so, whatever is added later.
    approve(&mut world, "to-prod", "bob");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Rejected);
}

#[tokio::test]
async fn without_the_admission_policy_a_strict_gate_waits_and_the_environment_says_why() {
    let mut world = waiting_for_prod("{users: [alice]}").await;
    world.approvals = ApprovalTrust::Unverified {
        policy: "hoist-approvals".into(),
        reason: "ValidatingAdmissionPolicy hoist-approvals not found".into(),
    };
    approve(&mut world, "to-prod", "alice");
    world.settle(10, completes).await;
    let admin = "approvals cannot be verified (ValidatingAdmissionPolicy hoist-approvals not found): a cluster \
                 admin must install the ValidatingAdmissionPolicy hoist-approvals and its \
                 ValidatingAdmissionPolicyBinding hoist-approvals (Kubernetes 1.30+), from the Hoist chart or \
                 deploy/admission/; on older clusters, set spec.gates.approval.allowUnverified: true to count \
                 approvals nobody verified";
    assert_eq!(
        phase(&world, "to-prod"),
        (
            Phase::Waiting,
            format!(
                "waiting for the Approval gate: {admin}; 0 of 1 approvals from user alice; not counted: alice \
                 (identity not verified); approve with: kubectl hoist approve to-prod -n shop"
            )
        )
    );
    let condition = |world: &World, name: &str| {
        environment(world, name)
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "ApprovalsVerified")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    assert_eq!(
        condition(&world, "prod"),
        Some(("False".into(), "PolicyMissing".into(), admin.into()))
    );
    assert_eq!(condition(&world, "dev"), None, "dev has no approval gate");

    // Installing the policy later does not make alice's earlier approval verified.
    world.approvals = ApprovalTrust::Verified;
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Waiting);
    world.now = at(40);
    approve(&mut world, "to-prod", "alice");
    world.settle(10, completes).await;
    assert_eq!(phase(&world, "to-prod").0, Phase::Succeeded);
    let status = promotion(&world, "to-prod").status.clone().unwrap();
    assert_eq!(
        status
            .approvals
            .iter()
            .map(|a| (
                a.at.clone(),
                a.verified,
                a.counted,
                a.note.clone().unwrap_or_default()
            ))
            .collect::<Vec<_>>(),
        vec![
            (at(0), false, false, "identity not verified".to_string()),
            (at(40), true, true, "counted for rule approvers".to_string()),
        ]
    );
    assert_eq!(
        condition(&world, "prod").map(|(status, reason, _)| (status, reason)),
        Some(("True".into(), "PolicyInstalled".into()))
    );
}
