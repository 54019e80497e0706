//! `kubectl hoist promote` and `kubectl hoist rollback`: create Promotions.
//! The operator decides the rest (gates, queueing, rollout), so these only
//! check that what they name exists.

use std::fmt;

use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use super::{FIELD_MANAGER, PluginError, get, whoami};
use crate::api::{Artifact, Environment, HistoryEntry, Promotion, PromotionSpec};
use crate::core::environment;

/// The longest generateName prefix the API server keeps (63 minus the five
/// random characters); cutting it here first lets us end it cleanly.
const GENERATE_NAME_MAX: usize = 58;

/// A Promotion of `artifact` into `environment`, named `name`, or
/// `<artifact>-<environment>-<5 random characters>` chosen by the API
/// server (generateName), so two people promoting the same pair never
/// collide.
pub fn new_promotion(
    namespace: &str,
    artifact: &str,
    environment: &str,
    reason: Option<String>,
    name: Option<String>,
    requested_by: Option<String>,
) -> Promotion {
    let generate_name = name.is_none().then(|| {
        let prefix: String = format!("{artifact}-{environment}")
            .chars()
            .take(GENERATE_NAME_MAX - 1)
            .collect();
        // The random part must follow a '-' after an alphanumeric.
        format!("{}-", prefix.trim_end_matches(['-', '.']))
    });
    let mut promotion = Promotion::new(
        "",
        PromotionSpec {
            artifact: artifact.to_string(),
            environment: environment.to_string(),
            reason,
            requested_by,
            r#override: None,
            approvals: Vec::new(),
        },
    );
    promotion.metadata = ObjectMeta {
        name,
        generate_name,
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    };
    promotion
}

/// `promote ARTIFACT ENVIRONMENT [--reason R] [--name N]`: the created
/// Promotion (its name is the server's choice unless `name` is given).
pub async fn promote(
    client: &Client,
    namespace: &str,
    artifact: &str,
    environment: &str,
    reason: Option<String>,
    name: Option<String>,
) -> Result<Promotion, PluginError> {
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    get(&artifacts, "Artifact", artifact, namespace).await?;
    let environments: Api<Environment> = Api::namespaced(client.clone(), namespace);
    get(&environments, "Environment", environment, namespace).await?;
    let requested_by = requester(client).await?;
    create(
        client,
        namespace,
        &new_promotion(namespace, artifact, environment, reason, name, requested_by),
    )
    .await
}

/// Who asks, for spec.requestedBy: the authenticated user, as the admission
/// policy requires. A cluster that cannot say (no SelfSubjectReview, older
/// than 1.28) cannot run the policy either: the Promotion names nobody.
pub(super) async fn requester(client: &Client) -> Result<Option<String>, PluginError> {
    match whoami(client).await {
        Ok(identity) => Ok(Some(identity.user)),
        Err(PluginError::IdentityUnsupported) => Ok(None),
        Err(error) => Err(error),
    }
}

pub(super) async fn create(
    client: &Client,
    namespace: &str,
    promotion: &Promotion,
) -> Result<Promotion, PluginError> {
    let api: Api<Promotion> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    api.create(&params, promotion)
        .await
        .map_err(|source| PluginError::Api {
            action: format!(
                "create a Promotion of {} into {}",
                promotion.spec.artifact, promotion.spec.environment
            ),
            source,
        })
}

/// The release to roll `application` back to: the newest Succeeded entry
/// of the Environment's history whose Artifact is not the one running now.
pub fn rollback_target<'e>(
    environment: &'e Environment,
    application: &str,
) -> Result<&'e HistoryEntry, PluginError> {
    environment
        .status
        .as_ref()
        .and_then(|status| environment::rollback_target(status, application))
        .ok_or_else(|| PluginError::NoPreviousRelease {
            application: application.to_string(),
            environment: environment.name_any(),
        })
}

/// A rollback that was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    pub application: String,
    pub environment: String,
    /// Artifact and version running before, if any.
    pub from: Option<(String, String)>,
    /// Artifact and version rolled back to.
    pub to: (String, String),
    pub promotion: Promotion,
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (artifact, version) = &self.to;
        write!(f, "Rolling back {} in {}", self.application, self.environment)?;
        if let Some((from, from_version)) = &self.from {
            write!(f, " from {from} ({from_version})")?;
        }
        writeln!(
            f,
            " to {artifact} ({version}): Promotion {}",
            self.promotion.name_any()
        )?;
        writeln!(
            f,
            "Follow it with: kubectl hoist why {}",
            self.promotion.name_any()
        )
    }
}

/// `rollback ENVIRONMENT --application A [--to ARTIFACT] [--reason R]`:
/// a Promotion of the previous successful release (or of `to`). The
/// operator sees that the Artifact ran here before and skips the upstream
/// gates, restoring its images and the configuration it shipped with.
pub async fn rollback(
    client: &Client,
    namespace: &str,
    environment: &str,
    application: &str,
    to: Option<&str>,
    reason: Option<String>,
) -> Result<Rollback, PluginError> {
    let environments: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let environment = get(&environments, "Environment", environment, namespace).await?;
    let environment_name = environment.name_any();
    let target = match to {
        Some(artifact) => artifact.to_string(),
        None => rollback_target(&environment, application)?.artifact.clone(),
    };
    // The engine rejects a Promotion whose Artifact is gone; say so now.
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), namespace);
    let artifact = get(&artifacts, "Artifact", &target, namespace).await?;
    if artifact.spec.application != application {
        return Err(PluginError::WrongApplication {
            artifact: target,
            actual: artifact.spec.application,
            application: application.to_string(),
        });
    }
    let from = environment
        .status
        .as_ref()
        .and_then(|s| s.applications.iter().find(|app| app.application == application))
        .map(|app| (app.artifact.clone(), app.version.clone()));
    if from.as_ref().is_some_and(|(running, _)| running == &target) {
        return Err(PluginError::AlreadyRunning {
            artifact: target,
            application: application.to_string(),
            environment: environment_name,
        });
    }
    let reason = reason.unwrap_or_else(|| match &from {
        Some((running, _)) => format!("rollback of {application} from {running} to {target}"),
        None => format!("rollback of {application} to {target}"),
    });
    let requested_by = requester(client).await?;
    let promotion = create(
        client,
        namespace,
        &new_promotion(
            namespace,
            &target,
            &environment_name,
            Some(reason),
            None,
            requested_by,
        ),
    )
    .await?;
    Ok(Rollback {
        application: application.to_string(),
        environment: environment_name,
        from,
        to: (target, artifact.spec.version),
        promotion,
    })
}
