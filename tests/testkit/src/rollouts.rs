//! Argo Rollouts in tests: [`argo_rollouts`] makes Rollouts available where
//! it can (the stand-in's emulation) or finds them on a real cluster, and
//! [`promote_rollout`] and [`abort_rollout`] send the requests `kubectl argo
//! rollouts promote` and `abort` send, so a test steers a Rollout the same
//! way on either.
//!
//! A test that needs Rollouts starts with
//!
//! ```no_run
//! # async fn demo(cluster: &hoist_testkit::cluster::TestCluster) -> anyhow::Result<()> {
//! let Some(rollouts) = hoist_testkit::rollouts::argo_rollouts(cluster).await? else {
//!     hoist_testkit::rollouts::skip_without_argo_rollouts();
//!     return Ok(());
//! };
//! # let _ = rollouts;
//! # Ok(())
//! # }
//! ```

use anyhow::{Context, Result};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Error};
use serde_json::{Value, json};

use crate::cluster::TestCluster;

/// What a test prints when it cannot run for want of Argo Rollouts: a skip,
/// not a pass.
pub const NOT_INSTALLED: &str = "skipped: Argo Rollouts is not installed in this cluster";

/// `argoproj.io/v1alpha1` `Rollout`.
pub fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// The Rollouts of `namespace`.
pub fn rollouts(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &rollout_resource())
}

/// The Rollouts of the test's namespace, when the cluster has them: on the
/// stand-in after installing the project's Rollout CRD and turning on the
/// emulated controller; on a real cluster only where `rollouts.argoproj.io`
/// is served (`None` otherwise: print [`NOT_INSTALLED`] and return).
pub async fn argo_rollouts(cluster: &TestCluster) -> Result<Option<Api<DynamicObject>>> {
    let client = cluster.client();
    if let Some(standin) = cluster.standin() {
        standin
            .install_argo_rollouts()
            .context("installing Argo Rollouts on the stand-in")?;
        return Ok(Some(rollouts(&client, cluster.namespace())));
    }
    match client.list_api_group_resources("argoproj.io/v1alpha1").await {
        Ok(resources)
            if resources
                .resources
                .iter()
                .any(|resource| resource.name == "rollouts") =>
        {
            Ok(Some(rollouts(&client, cluster.namespace())))
        }
        Ok(_) => Ok(None),
        Err(Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error).context("discovering argoproj.io/v1alpha1"),
    }
}

/// Prints the one line of a test skipped for want of Argo Rollouts.
pub fn skip_without_argo_rollouts() {
    eprintln!("{NOT_INSTALLED}");
}

/// A merge patch of `/status`, or `unified` of the object where Rollouts
/// have no status subresource (Argo Rollouts before v0.10), as the CLI falls
/// back; answers whether it fell back.
async fn patch_status_or_object(
    api: &Api<DynamicObject>,
    name: &str,
    status: &Value,
    unified: &Value,
) -> Result<bool> {
    let params = PatchParams::default();
    match api.patch_status(name, &params, &Patch::Merge(status)).await {
        Ok(_) => Ok(false),
        Err(Error::Api(answer)) if answer.code == 404 => {
            api.patch(name, &params, &Patch::Merge(unified))
                .await
                .with_context(|| format!("patching Rollout {name}"))?;
            Ok(true)
        }
        Err(error) => Err(error).with_context(|| format!("patching the status of Rollout {name}")),
    }
}

/// `kubectl argo rollouts promote NAME` (`PromoteRollout` without flags):
/// unpauses a paused spec, clears the pause conditions or, with none, moves
/// a canary to its next step.
pub async fn promote_rollout(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let api = rollouts(client, namespace);
    let rollout = api
        .get(name)
        .await
        .with_context(|| format!("reading Rollout {namespace}/{name}"))?;
    let spec = &rollout.data["spec"];
    let status = &rollout.data["status"];
    let paused_spec = spec["paused"].as_bool().unwrap_or(false);
    let steps = spec["strategy"]["canary"]["steps"].as_array().map_or(0, Vec::len);
    let status_patch = if status["pauseConditions"]
        .as_array()
        .is_some_and(|conditions| !conditions.is_empty())
    {
        Some((
            json!({"status": {"pauseConditions": null}}),
            json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}),
        ))
    } else if spec["strategy"]["canary"].is_object() && steps > 0 {
        let current = status["currentStepIndex"].as_u64().unwrap_or(0);
        let next = if current < steps as u64 {
            current + 1
        } else {
            current
        };
        Some((
            json!({"status": {"pauseConditions": null, "currentStepIndex": next}}),
            json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": next}}),
        ))
    } else {
        None
    };
    let fell_back = match &status_patch {
        Some((status_patch, unified)) => patch_status_or_object(&api, name, status_patch, unified).await?,
        None => false,
    };
    if paused_spec && !fell_back {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .with_context(|| format!("unpausing Rollout {namespace}/{name}"))?;
    }
    Ok(())
}

/// `kubectl argo rollouts abort NAME`: `{"status":{"abort":true}}`.
pub async fn abort_rollout(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let abort = json!({"status": {"abort": true}});
    patch_status_or_object(&rollouts(client, namespace), name, &abort, &abort).await?;
    Ok(())
}
