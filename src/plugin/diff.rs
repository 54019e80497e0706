//! `kubectl hoist diff ARTIFACT ENVIRONMENT`: what promoting an Artifact
//! would change, computed from the same status the operator keeps.

use std::fmt;

use kube::api::Api;
use kube::{Client, ResourceExt};

use super::table::NONE;
use super::{PluginError, get};
use crate::api::{Artifact, CONDITION_READY, Change, Environment, WorkloadKind};
use crate::core::conditions;
use crate::core::environment::target_namespace;
use crate::core::version::{self, Bump, Direction};

/// What promoting one Artifact into one Environment would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub artifact: String,
    pub environment: String,
    pub application: String,
    /// The Artifact and version running now, if any.
    pub running: Option<(String, String)>,
    pub version: String,
    pub bump: Bump,
    /// Upgrade, downgrade, or a step that cannot be told.
    pub direction: Direction,
    /// Why the Artifact cannot be promoted yet, if it is not Ready.
    pub not_ready: Option<String>,
    /// One entry per target container of the application.
    pub containers: Vec<ContainerDiff>,
    /// Components of the Artifact that no target here runs.
    pub untargeted: Vec<String>,
}

/// The digest change of one target container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDiff {
    pub component: String,
    pub kind: WorkloadKind,
    pub namespace: String,
    pub workload: String,
    pub container: String,
    /// What runs now, per Environment status.
    pub from: Option<String>,
    /// What would run; `None` while the Artifact has not resolved the
    /// component, or does not have it.
    pub to: Option<String>,
}

impl From<&Change> for ContainerDiff {
    fn from(change: &Change) -> Self {
        Self {
            component: change.component.clone(),
            kind: change.kind,
            namespace: change.namespace.clone(),
            workload: change.deployment.clone(),
            container: change.container.clone(),
            from: change.from.clone(),
            to: Some(change.to.clone()),
        }
    }
}

impl fmt::Display for ContainerDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {}: {} {}/{}, container {}",
            self.component, self.kind, self.namespace, self.workload, self.container
        )?;
        let from = self.from.as_deref().unwrap_or(NONE);
        match self.to.as_deref() {
            Some(to) if to == from => writeln!(f, "    unchanged {to}"),
            Some(to) => writeln!(f, "    from {from}\n    to   {to}"),
            None => writeln!(f, "    from {from}\n    to   <not resolved>"),
        }
    }
}

/// `diff ARTIFACT ENVIRONMENT`.
pub async fn diff(
    client: &Client,
    namespace: &str,
    artifact: &str,
    environment: &str,
) -> Result<Diff, PluginError> {
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let artifact = get(&artifacts, "Artifact", artifact, namespace).await?;
    let environments: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environment = get(&environments, "Environment", environment, namespace).await?;
    Ok(plan_diff(&artifact, &environment))
}

/// The diff from the Environment's status.applications (what runs) to the
/// Artifact's status.images (what would run), per target container.
pub fn plan_diff(artifact: &Artifact, environment: &Environment) -> Diff {
    let application = artifact.spec.application.clone();
    let status = artifact.status.clone().unwrap_or_default();
    let running = environment
        .status
        .as_ref()
        .and_then(|s| s.applications.iter().find(|app| app.application == application));
    let targets: Vec<_> = environment
        .spec
        .targets
        .iter()
        .filter(|target| target.application == application)
        .collect();
    let containers = targets
        .iter()
        .filter_map(|target| Some((target, target.workload()?)))
        .map(|(target, workload)| ContainerDiff {
            component: target.component.clone(),
            kind: workload.kind,
            namespace: target_namespace(environment, target),
            workload: workload.name,
            container: target.container.clone(),
            from: running
                .and_then(|app| app.images.iter().find(|i| i.component == target.component))
                .map(|image| image.digest.clone()),
            to: status
                .images
                .iter()
                .find(|image| image.component == target.component)
                .map(|image| image.digest.clone()),
        })
        .collect();
    let untargeted = artifact
        .spec
        .images
        .iter()
        .map(|image| image.component.clone())
        .filter(|component| !targets.iter().any(|t| &t.component == component))
        .collect();
    let not_ready = match conditions::find(&status.conditions, CONDITION_READY) {
        Some(ready) if ready.status == "True" => None,
        Some(ready) => Some(format!("{}: {}", ready.reason, ready.message)),
        None => Some("not resolved yet".to_string()),
    };
    Diff {
        artifact: artifact.name_any(),
        environment: environment.name_any(),
        application,
        running: running.map(|app| (app.artifact.clone(), app.version.clone())),
        version: artifact.spec.version.clone(),
        bump: version::bump(
            artifact.spec.version_scheme,
            running.map(|app| app.version.as_str()),
            &artifact.spec.version,
        ),
        direction: version::direction(
            artifact.spec.version_scheme,
            running.map(|app| app.version.as_str()),
            &artifact.spec.version,
        ),
        not_ready,
        containers,
        untargeted,
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Promoting {} into Environment {} ({})",
            self.artifact, self.environment, self.application
        )?;
        match &self.running {
            None => writeln!(
                f,
                "Version:  {} (first release of {} here)",
                self.version, self.application
            )?,
            Some((artifact, _)) if artifact == &self.artifact => writeln!(
                f,
                "Version:  {} (already runs; nothing would change)",
                self.version
            )?,
            Some((_, running)) if self.bump == Bump::None => {
                writeln!(f, "Version:  {running} → {} (same version)", self.version)?
            }
            Some((_, running)) => writeln!(
                f,
                "Version:  {running} → {} ({})",
                self.version,
                version::describe(self.bump, self.direction)
            )?,
        }
        if let Some((artifact, _)) = &self.running {
            writeln!(f, "Running:  {artifact}")?;
        }
        if let Some(why) = &self.not_ready {
            writeln!(
                f,
                "Not Ready: {} ({why}); a Promotion would wait until it is",
                self.artifact
            )?;
        }
        if self.containers.is_empty() {
            return writeln!(
                f,
                "Environment {} has no targets for application {}: a Promotion would be Rejected",
                self.environment, self.application
            );
        }
        writeln!(f, "Changes:")?;
        for container in &self.containers {
            write!(f, "{container}")?;
        }
        if !self.untargeted.is_empty() {
            writeln!(f, "Not deployed here (no target): {}", self.untargeted.join(", "))?;
        }
        Ok(())
    }
}
