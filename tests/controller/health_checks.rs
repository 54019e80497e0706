//! The Argo CD health checks (deploy/argocd/argocd-cm-health.yaml, Lua run
//! by a real Lua 5.1 interpreter — Argo CD's gopher-lua implements Lua 5.1)
//! and kstatus' rules (what Flux's health checks compute) over objects the
//! operator wrote in a scenario: both tell the same story.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use hoist::api::{Artifact, Environment, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Scenario, TIMEOUT};

/// The health of `object` by the script of its kind in the shipped
/// ConfigMap patch: (status, message).
fn argocd_health(object: &Value) -> (String, String) {
    let kind = object["kind"].as_str().expect("kind");
    let patch = std::fs::read_to_string(repo().join("deploy/argocd/argocd-cm-health.yaml")).expect("patch");
    let patch: Value = serde_yaml::from_str(&patch).expect("patch is YAML");
    let key = format!("resource.customizations.health.hoist.dev_{kind}");
    let script = patch["data"][&key].as_str().unwrap_or_else(|| panic!("no {key}"));
    // As Argo CD runs it: `obj` is the object, the script's value is `hs`.
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(object)
    );
    let output = Command::new(lua_interpreter())
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(program.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run lua5.1 (scripts/setup installs it)");
    assert!(
        output.status.success(),
        "the {kind} health check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let (status, message) = text.split_once('\n').expect("status and message");
    (status.to_string(), message.to_string())
}

fn lua_interpreter() -> String {
    std::env::var("HOIST_TEST_LUA").unwrap_or_else(|_| "lua5.1".to_string())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `value` as a Lua table constructor, as Argo CD hands objects to its
/// scripts: arrays from 1, JSON null as an absent key.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    0x20..=0x7e => out.push(byte as char),
                    _ => out.push_str(&format!("\\{byte}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// kstatus' status of a custom resource (sigs.k8s.io/cli-utils
/// pkg/kstatus/status: `checkGenericProperties`, then Current for a kind
/// without legacy rules): Terminating while deleted; InProgress while the
/// observed generation lags or `Reconciling` is True; Failed while
/// `Stalled` is True; else Current.
fn kstatus(object: &Value) -> &'static str {
    if !object["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating";
    }
    let generation = &object["metadata"]["generation"];
    let observed = &object["status"]["observedGeneration"];
    if !observed.is_null() && observed != generation {
        return "InProgress";
    }
    let condition = |type_: &str| {
        object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    };
    if condition("Reconciling") {
        return "InProgress";
    }
    if condition("Stalled") {
        return "Failed";
    }
    "Current"
}

fn json_of<K: serde::Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("JSON")
}

/// What both tools say of `object`: Argo CD's status, its message, kstatus.
fn verdict(object: &Value) -> (String, String, &'static str) {
    let (status, message) = argocd_health(object);
    (status, message, kstatus(object))
}

#[tokio::test]
async fn argo_cd_and_kstatus_read_hoists_objects_as_their_phase_and_health_say() {
    let mut scenario = Scenario::new().await;
    scenario.start().await;
    let tenant = scenario.namespace().to_string();
    let mut seen: BTreeMap<&str, (String, String, &'static str)> = BTreeMap::new();

    // A resolved Artifact and a release that ran.
    scenario
        .release("shop-1-0-0", "1.0.0", Some(super::REVISION))
        .await;
    let artifact = super::artifact_ready(&scenario, "shop-1-0-0").await;
    seen.insert("artifact resolved", verdict(&json_of(&artifact)));
    scenario.promote_and_wait("to-dev", "shop-1-0-0", "dev").await;
    seen.insert(
        "promotion succeeded",
        verdict(&json_of(&scenario.wait_phase("to-dev", Phase::Succeeded).await)),
    );
    let dev = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| !s.applications.is_empty())
        })
        .await
        .expect("dev");
    seen.insert("environment healthy", verdict(&json_of(&dev)));

    // A rollout that takes its time: one replica that never becomes
    // available, with a long progress deadline.
    let slow = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600}});
    Api::<Deployment>::namespaced(scenario.client(), &scenario.stages["staging"])
        .patch("backend", &PatchParams::default(), &Patch::Merge(&slow))
        .await
        .expect("slow staging backend");
    scenario.promote("to-staging", "shop-1-0-0", "staging").await;
    let verifying = scenario.wait_phase("to-staging", Phase::Verifying).await;
    seen.insert("promotion verifying", verdict(&json_of(&verifying)));
    // What runs in dev scales up the same way: its rollout is under way.
    Api::<Deployment>::namespaced(scenario.client(), &scenario.stages["dev"])
        .patch("backend", &PatchParams::default(), &Patch::Merge(&slow))
        .await
        .expect("slow dev backend");
    let rolling_out = scenario
        .cluster
        .wait_for::<Environment>("dev", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.applications
                    .iter()
                    .any(|a| a.health == hoist::api::Health::Progressing)
            })
        })
        .await
        .expect("dev rolling out");
    seen.insert("environment rolling out", verdict(&json_of(&rolling_out)));

    // Held by gates: prod's upstream has not succeeded and nobody approved.
    scenario.promote("to-prod", "shop-1-0-0", "prod").await;
    let waiting = scenario.wait_phase("to-prod", Phase::Waiting).await;
    seen.insert("promotion waiting", verdict(&json_of(&waiting)));

    // Refused: no such Environment.
    scenario.promote("nowhere", "shop-1-0-0", "qa").await;
    let rejected = scenario.wait_phase("nowhere", Phase::Rejected).await;
    seen.insert("promotion rejected", verdict(&json_of(&rejected)));

    // An Environment whose target does not exist.
    scenario
        .apply::<Environment>(
            "broken",
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": "broken"},
                "spec": {"targets": [{"application": "shop", "component": "backend",
                    "deployment": {"name": "missing", "namespace": scenario.stages["dev"]}, "container": "app"}]}
            }),
        )
        .await;
    let broken = scenario
        .cluster
        .wait_for::<Environment>("broken", TIMEOUT, |e| {
            e.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "False")
            })
        })
        .await
        .expect("broken");
    seen.insert("environment invalid", verdict(&json_of(&broken)));

    // An image the registry does not have: only a new Artifact helps.
    let registry = hoist_testkit::registry::registry_address().expect("registry");
    scenario
        .apply::<Artifact>(
            "shop-9-9-9",
            json!({
                "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
                "metadata": {"name": "shop-9-9-9"},
                "spec": {"application": "shop", "version": "9.9.9",
                    "images": [{"component": "backend", "image": format!("{registry}/shop/backend:9.9.9")}]}
            }),
        )
        .await;
    let missing = scenario
        .cluster
        .wait_for::<Artifact>("shop-9-9-9", TIMEOUT, |a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "ImageNotFound")
            })
        })
        .await
        .expect("unresolvable artifact");
    seen.insert("artifact unresolvable", verdict(&json_of(&missing)));
    scenario.stop().await;

    let shown: BTreeMap<&str, (&str, &str)> = seen
        .iter()
        .map(|(what, (status, _, kstatus))| (*what, (status.as_str(), *kstatus)))
        .collect();
    assert_eq!(
        shown,
        BTreeMap::from([
            ("artifact resolved", ("Healthy", "Current")),
            ("artifact unresolvable", ("Degraded", "Failed")),
            ("environment healthy", ("Healthy", "Current")),
            ("environment invalid", ("Degraded", "Failed")),
            ("environment rolling out", ("Progressing", "InProgress")),
            ("promotion rejected", ("Degraded", "Failed")),
            ("promotion succeeded", ("Healthy", "Current")),
            ("promotion verifying", ("Progressing", "InProgress")),
            ("promotion waiting", ("Suspended", "InProgress")),
        ])
    );
    let message = |what: &str| seen[what].1.clone();
    assert_eq!(message("environment healthy"), "shop@1.0.0");
    assert_eq!(message("environment rolling out"), "rolling out: shop@1.0.0");
    assert_eq!(
        message("promotion rejected"),
        format!("Rejected: Environment qa not found in namespace {tenant}; create it, then a new Promotion")
    );
    assert!(
        message("promotion waiting").starts_with("Waiting: "),
        "{}",
        message("promotion waiting")
    );
    assert!(
        message("environment invalid").contains("missing"),
        "{}",
        message("environment invalid")
    );
    assert!(
        message("artifact unresolvable").ends_with("the spec cannot change: create a new Artifact"),
        "{}",
        message("artifact unresolvable")
    );
    assert_eq!(message("artifact resolved"), "all 2 images resolved to digests");
}

/// The scripts as Argo CD runs them over objects in the shape a newer or
/// older operator could leave: no status yet, a generation not observed.
#[test]
fn objects_the_operator_has_not_looked_at_are_progressing() {
    for kind in ["Artifact", "Environment", "Promotion"] {
        let fresh = json!({"apiVersion": "hoist.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": 2}});
        assert_eq!(argocd_health(&fresh).0, "Progressing", "{kind} without status");
        let stale = json!({"apiVersion": "hoist.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": 2},
            "status": {"observedGeneration": 1, "phase": "Succeeded",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "",
                    "lastTransitionTime": "2026-12-07T00:00:00Z"}]}});
        assert_eq!(
            argocd_health(&stale).0,
            "Progressing",
            "{kind} of an older generation"
        );
        assert_eq!(kstatus(&stale), "InProgress");
    }
    // The hub's condition for an Environment of a workload cluster whose
    // agent is silent (tests/controller/workload_clusters.rs writes it).
    let silent = json!({"apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "prod", "generation": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "AgentConnected", "status": "False", "reason": "AgentSilent",
             "message": "no agent of cluster eu has renewed its Lease since 2026-12-07T10:00:00Z",
             "lastTransitionTime": "2026-12-07T10:00:15Z"},
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "",
             "lastTransitionTime": "2026-12-07T09:00:00Z"}]}});
    assert_eq!(
        argocd_health(&silent),
        (
            "Degraded".to_string(),
            "no agent of cluster eu has renewed its Lease since 2026-12-07T10:00:00Z".to_string()
        )
    );
}
