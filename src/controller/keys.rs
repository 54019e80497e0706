//! Index keys of the caches: which reconciles need which objects.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

use super::cache::key;
use crate::api::{Artifact, Environment, Promotion};
use crate::core::config::ROLE_CONFIG_SNAPSHOT;
use crate::core::environment::target_namespace;
use crate::core::workload::{LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT};

/// Environments of a namespace.
pub fn in_namespace(namespace: &str) -> String {
    key("namespace", namespace, "")
}
/// Environments that name `environment` upstream.
pub fn downstream_of(namespace: &str, environment: &str) -> String {
    key("downstream-of", namespace, environment)
}
/// Environments targeting, and Artifacts of, an application.
pub fn application(namespace: &str, application: &str) -> String {
    key("application", namespace, application)
}
/// Environments with a target Deployment in `namespace`.
pub fn targets_in(namespace: &str) -> String {
    key("targets-in", "", namespace)
}
/// Environments reading ConfigMap `name`: their configuration's base, or
/// a keyless policy's trusted root.
pub fn base(namespace: &str, name: &str) -> String {
    key("base", namespace, name)
}
/// Environments whose configuration or supply-chain keys reference Secret `name`.
pub fn secret(namespace: &str, name: &str) -> String {
    key("secret", namespace, name)
}
/// Environments that read a Secret in their namespace `namespace`.
pub fn reads_secrets_in(namespace: &str) -> String {
    key("reads-secrets-in", namespace, "")
}
/// Promotions into an Environment.
pub fn into_environment(namespace: &str, environment: &str) -> String {
    key("environment", namespace, environment)
}
/// Promotions of an Artifact.
pub fn of_artifact(namespace: &str, artifact: &str) -> String {
    key("artifact", namespace, artifact)
}
/// Configuration snapshots of an Environment.
pub fn snapshots(namespace: &str, environment: &str) -> String {
    key("snapshots", namespace, environment)
}

/// Environments of a workload cluster (`spec.cluster`).
pub fn in_cluster(cluster: &str) -> String {
    key("cluster", "", cluster)
}

/// Environments with an approval gate (they depend on the admission policy).
pub fn approval_gated() -> String {
    key("approval-gated", "", "")
}

/// Environments with a verification Job step or a Secret reference (they
/// depend on the admission policy on Environments).
pub fn delegating() -> String {
    key("delegating", "", "")
}

pub fn environment(environment: &Environment) -> Vec<String> {
    let namespace = environment.namespace().unwrap_or_default();
    let spec = &environment.spec;
    let mut keys = vec![in_namespace(&namespace)];
    keys.extend(spec.cluster.as_deref().map(in_cluster));
    if spec.gates.approval.is_some() {
        keys.push(approval_gated());
    }
    if !crate::core::tenancy::delegated(environment).is_empty() {
        keys.push(delegating());
    }
    keys.extend(
        spec.upstream
            .iter()
            .chain(spec.auto_promotion.iter().flat_map(|policy| &policy.upstream))
            .map(|name| downstream_of(&namespace, name)),
    );
    for target in &spec.targets {
        keys.push(application(&namespace, &target.application));
        keys.push(targets_in(&target_namespace(environment, target)));
    }
    for config in &spec.config {
        keys.extend(config.base_config_map.iter().map(|name| base(&namespace, name)));
        keys.extend(config.secret_refs.iter().map(|s| secret(&namespace, &s.name)));
    }
    // Secrets holding the keys or trusted roots of supply-chain policies,
    // and ConfigMaps holding trusted roots.
    keys.extend(
        crate::core::supply_chain::key_secret_names(environment)
            .iter()
            .map(|name| secret(&namespace, name)),
    );
    keys.extend(
        crate::core::supply_chain::root_config_map_names(environment)
            .iter()
            .map(|name| base(&namespace, name)),
    );
    let secrets_here = secret(&namespace, "");
    if keys.iter().any(|key| key.starts_with(&secrets_here)) {
        keys.push(reads_secrets_in(&namespace));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

pub fn promotion(promotion: &Promotion) -> Vec<String> {
    let namespace = promotion.namespace().unwrap_or_default();
    vec![
        into_environment(&namespace, &promotion.spec.environment),
        of_artifact(&namespace, &promotion.spec.artifact),
    ]
}

pub fn artifact(artifact: &Artifact) -> Vec<String> {
    let namespace = artifact.namespace().unwrap_or_default();
    vec![application(&namespace, &artifact.spec.application)]
}

pub fn config_map(config_map: &ConfigMap) -> Vec<String> {
    let labels = config_map.labels();
    if labels.get(LABEL_ROLE).map(String::as_str) != Some(ROLE_CONFIG_SNAPSHOT) {
        return Vec::new();
    }
    let tenant = labels
        .get(LABEL_TENANT)
        .cloned()
        .or_else(|| config_map.namespace());
    match (tenant, labels.get(LABEL_ENVIRONMENT)) {
        (Some(tenant), Some(environment)) => vec![snapshots(&tenant, environment)],
        _ => Vec::new(),
    }
}

/// The index key of the verification Jobs of one Environment.
pub fn verification_jobs(namespace: &str, environment: &str) -> String {
    format!("jobs/{namespace}/{environment}")
}

/// A verification Job is indexed under its tenant and Environment.
pub fn job(job: &Job) -> Vec<String> {
    let labels = job.labels();
    match (labels.get(LABEL_TENANT), labels.get(LABEL_ENVIRONMENT)) {
        (Some(tenant), Some(environment)) => vec![verification_jobs(tenant, environment)],
        _ => Vec::new(),
    }
}
