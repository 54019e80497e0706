//! Releases and their rollout: which digest-pinned image each target
//! container gets, whether the workloads carry their pins and have rolled
//! out, and the health that follows.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{Artifact, ComponentDigest, Environment, Health};
use crate::core::duration;
use crate::core::reference::pinned_reference;
use crate::core::workload::{Rollout, WorkloadId, WorkloadPin, has_progress_deadline};

use super::{Decision, Snapshot, target_workload};

/// How long a workload without a progress deadline of its own may take to
/// roll out when spec.rollout.timeout is not set: a Deployment's default
/// progressDeadlineSeconds.
pub(super) const DEFAULT_ROLLOUT_TIMEOUT: SignedDuration = SignedDuration::from_secs(600);

/// The release an application runs, or is being moved to.
#[derive(Debug, Clone)]
pub(super) struct Release {
    pub(super) artifact: String,
    pub(super) images: Vec<ComponentDigest>,
    pub(super) config_hash: Option<String>,
}

/// Pinned image references of an Artifact's resolved components.
pub(super) fn release_of(artifact: &Artifact, config_hash: Option<String>) -> Release {
    let images = artifact
        .status
        .as_ref()
        .map(|status| {
            status
                .images
                .iter()
                .map(|image| ComponentDigest {
                    component: image.component.clone(),
                    digest: image.digest.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Release {
        artifact: artifact.name_any(),
        images,
        config_hash,
    }
}

/// (component, digest-pinned reference) of every component of a release.
pub(super) fn pinned_images(
    artifacts: &BTreeMap<String, &Artifact>,
    release: &Release,
) -> Vec<(String, String)> {
    release
        .images
        .iter()
        .filter_map(|image| {
            Some((
                image.component.clone(),
                pinned_image(artifacts, release, &image.component)?,
            ))
        })
        .collect()
}

/// The digest-pinned reference of `component` in a release.
fn pinned_image(
    artifacts: &BTreeMap<String, &Artifact>,
    release: &Release,
    component: &str,
) -> Option<String> {
    let digest = &release
        .images
        .iter()
        .find(|image| image.component == component)?
        .digest;
    let artifact = artifacts.get(&release.artifact)?;
    let image = &artifact
        .spec
        .images
        .iter()
        .find(|image| image.component == component)?
        .image;
    pinned_reference(image, digest).ok()
}

/// Applies a pin plan for one application's release to its targets.
pub(super) fn pins_for(
    snapshot: &Snapshot<'_>,
    application: &str,
    release: &Release,
    tenant: &str,
) -> Vec<WorkloadPin> {
    let environment = snapshot.environment;
    let mut pins: BTreeMap<WorkloadId, WorkloadPin> = BTreeMap::new();
    for target in environment
        .spec
        .targets
        .iter()
        .filter(|t| t.application == application)
    {
        let Some(image) = pinned_image(&snapshot.artifacts, release, &target.component) else {
            continue;
        };
        let Some(id) = target_workload(environment, target) else {
            continue;
        };
        let pin = pins.entry(id.clone()).or_insert_with(|| WorkloadPin {
            kind: id.kind,
            namespace: id.namespace,
            name: id.name,
            images: BTreeMap::new(),
            artifact: release.artifact.clone(),
            config_hash: release.config_hash.clone(),
            environment: environment.name_any(),
            tenant: tenant.to_string(),
        });
        pin.images.insert(target.container.clone(), image);
    }
    pins.into_values().collect()
}

/// spec.rollout.timeout, or its default (an unreadable one is told by the
/// validation and read as the default).
pub(super) fn rollout_timeout(environment: &Environment) -> SignedDuration {
    environment
        .spec
        .rollout
        .timeout
        .as_deref()
        .and_then(|text| duration::parse(text).ok())
        .unwrap_or(DEFAULT_ROLLOUT_TIMEOUT)
}

/// Rollout state of every pinned workload: Complete only when each carries
/// its pin and has rolled out. With `since` (when the workloads were
/// updated), a workload of a kind without a progress deadline of its own
/// that still rolls after spec.rollout.timeout has failed.
pub(super) fn rollout_of(snapshot: &Snapshot<'_>, pins: &[WorkloadPin], since: Option<&Time>) -> Rollout {
    let mut progressing = Vec::new();
    for pin in pins {
        let id = pin.id();
        let Some(workload) = snapshot.workloads.get(&id) else {
            return Rollout::Failed(format!("{} {}/{} disappeared", pin.kind, pin.namespace, pin.name));
        };
        if !pin.is_satisfied_by(workload) {
            progressing.push(format!("{id}: update pending"));
            continue;
        }
        match workload.rollout() {
            Rollout::Complete => {}
            Rollout::Progressing(why) => {
                let timeout = rollout_timeout(snapshot.environment);
                let overdue = since
                    .filter(|_| !has_progress_deadline(pin.kind))
                    .is_some_and(|since| snapshot.now.0.duration_since(since.0) >= timeout);
                if overdue {
                    return Rollout::Failed(format!(
                        "{id}: not rolled out within spec.rollout.timeout ({}): {why}",
                        duration::format(timeout)
                    ));
                }
                progressing.push(format!("{id}: {why}"));
            }
            Rollout::Failed(why) => return Rollout::Failed(format!("{id}: {why}")),
        }
    }
    if progressing.is_empty() {
        Rollout::Complete
    } else {
        Rollout::Progressing(progressing.join("; "))
    }
}

pub(super) fn health_of(rollout: &Rollout) -> Health {
    match rollout {
        Rollout::Complete => Health::Healthy,
        Rollout::Progressing(_) => Health::Progressing,
        Rollout::Failed(_) => Health::Degraded,
    }
}

impl Decision<'_, '_> {
    pub(super) fn current_release(&self, application: &str) -> Option<Release> {
        let app = self.applications.get(application)?;
        Some(Release {
            artifact: app.artifact.clone(),
            images: app.images.clone(),
            config_hash: app.config_hash.clone(),
        })
    }

    /// The release each application should run now.
    pub(super) fn wanted_releases(&self) -> BTreeMap<String, Release> {
        let mut releases: BTreeMap<String, Release> = self
            .applications
            .keys()
            .filter_map(|app| Some((app.clone(), self.current_release(app)?)))
            .collect();
        for (application, (_, release)) in &self.in_flight {
            releases.insert(application.clone(), release.clone());
        }
        releases
    }

    pub(super) fn pins(&self) -> Vec<WorkloadPin> {
        self.wanted_releases()
            .iter()
            .flat_map(|(application, release)| pins_for(self.snapshot, application, release, &self.tenant))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WorkloadKind;
    use crate::core::environment::fixture::{
        A, Objects, after_pin, artifact, at, deployment, pin, pinned, stalled, yaml,
    };
    use crate::core::workload::Workload;

    fn two_deployments() -> Objects {
        let mut objects = Objects::new(yaml(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop, generation: 1}
spec:
  targets:
    - {application: shop, component: backend, deployment: {name: backend}, container: app}
    - {application: shop, component: backend, deployment: {name: backend}, container: debug}
    - {application: shop, component: backend, deployment: {name: worker}, container: app}
    - {application: shop, component: docs, deployment: {name: worker}, container: docs}
    - {application: other, component: backend, deployment: {name: other}, container: app}
"#,
        ));
        let mut worker = deployment();
        worker.metadata_mut().name = Some("worker".into());
        objects.workloads.push(worker);
        objects
    }

    #[test]
    fn one_pin_per_deployment_with_every_container_of_the_application_it_runs() {
        let objects = two_deployments();
        let snapshot = objects.snapshot();
        let release = release_of(&artifact("shop-1", "1.0.0", A, 0), Some("sha256:c0".into()));
        let mut backend = pin("shop-1", A, Some("sha256:c0"));
        backend.images.insert("debug".into(), pinned(A));
        let mut worker = pin("shop-1", A, Some("sha256:c0"));
        worker.name = "worker".into();
        // `docs` has no image in the release: its container is left alone.
        assert_eq!(
            pins_for(&snapshot, "shop", &release, "shop"),
            vec![backend, worker]
        );
        assert_eq!(pins_for(&snapshot, "nothing", &release, "shop"), Vec::new());
    }

    #[test]
    fn a_rollout_is_complete_only_when_every_deployment_carries_its_pin_and_rolled_out() {
        let mut objects = two_deployments();
        let release = release_of(&artifact("shop-1", "1.0.0", A, 0), None);
        let pins = pins_for(&objects.snapshot(), "shop", &release, "shop");

        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, None),
            Rollout::Progressing("shop/backend: update pending; shop/worker: update pending".into())
        );
        objects.workloads = pins
            .iter()
            .map(|pin| after_pin(deployment(), pin, true))
            .collect();
        objects.workloads[1].metadata_mut().name = Some("worker".into());
        assert_eq!(rollout_of(&objects.snapshot(), &pins, None), Rollout::Complete);
        assert_eq!(health_of(&Rollout::Complete), Health::Healthy);

        objects.workloads[0] = after_pin(deployment(), &pins[0], false);
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, None),
            Rollout::Progressing(
                "shop/backend: waiting for the Deployment controller to observe generation 2".into()
            )
        );

        objects.workloads[1] = stalled(objects.workloads[1].clone());
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, None),
            Rollout::Failed("shop/worker: rollout exceeded its progress deadline: no message".into()),
            "one failed Deployment fails the rollout"
        );

        objects.workloads.truncate(1);
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, None),
            Rollout::Failed("Deployment shop/worker disappeared".into())
        );
    }

    #[test]
    fn kinds_without_a_progress_deadline_fail_after_spec_rollout_timeout_since_the_update() {
        let mut objects = Objects::new(yaml(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop, generation: 1}
spec:
  rollout: {timeout: 5m}
  targets:
    - {application: shop, component: backend, workload: {kind: StatefulSet, name: backend}, container: app}
"#,
        ));
        let release = release_of(&artifact("shop-1", "1.0.0", A, 0), None);
        let pins = pins_for(&objects.snapshot(), "shop", &release, "shop");
        assert_eq!(pins[0].kind, WorkloadKind::StatefulSet);
        let mut stateful_set = Workload::StatefulSet(yaml(
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: backend, namespace: shop, generation: 2}
spec:
  replicas: 2
  serviceName: backend
  selector: {matchLabels: {app: backend}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers: [{name: app, image: "registry.example.com/shop/backend:latest"}]
status: {observedGeneration: 2, replicas: 2, readyReplicas: 1, currentReplicas: 1, updatedReplicas: 1, currentRevision: backend-7c9f8d6b5d, updateRevision: backend-5b7d9c4f8c}
"#,
        ));
        pins[0].overlay(&mut stateful_set);
        objects.workloads = vec![stateful_set];
        let started = at(100);
        objects.now = at(399);
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, Some(&started)),
            Rollout::Progressing("StatefulSet shop/backend: 1 of 2 replicas ready".into())
        );
        objects.now = at(400);
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, Some(&started)),
            Rollout::Failed(
                "StatefulSet shop/backend: not rolled out within spec.rollout.timeout (5m): 1 of 2 replicas ready"
                    .into()
            )
        );
        assert_eq!(
            rollout_of(&objects.snapshot(), &pins, None),
            Rollout::Progressing("StatefulSet shop/backend: 1 of 2 replicas ready".into()),
            "the health of what runs has no deadline"
        );
    }
}
