//! Which Environments to reconcile when another object changes. One
//! Environment's reconcile decides everything it holds, so every change
//! that can alter a decision maps to the Environments it concerns.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::cache::Cache;
use super::keys;
use crate::api::{Artifact, Environment, Promotion};
use crate::core::workload::{LABEL_ENVIRONMENT, LABEL_TENANT};

/// Environments under index key `key` in `cache`, as references to reconcile.
fn environments_under(cache: &Cache<Environment>, key: &str) -> Vec<ObjectRef<Environment>> {
    cache
        .indexed(key)
        .iter()
        .map(|e| ObjectRef::from_obj(e.as_ref()))
        .collect()
}

/// A change of an Environment's status can open an upstream gate downstream.
pub fn downstream_of(
    environments: &Cache<Environment>,
    changed: &Environment,
) -> Vec<ObjectRef<Environment>> {
    let namespace = changed.namespace().unwrap_or_default();
    environments_under(
        environments,
        &keys::downstream_of(&namespace, &changed.name_any()),
    )
}

/// A Promotion is decided by the reconcile of the Environment it names.
pub fn environment_of_promotion(promotion: &Promotion) -> Option<ObjectRef<Environment>> {
    let namespace = promotion.namespace()?;
    Some(ObjectRef::new(&promotion.spec.environment).within(&namespace))
}

/// A resolved Artifact can unblock its Promotions (in the Environments they
/// name) and qualify for autoPromote (in Environments running its application).
pub fn environments_for_artifact(
    promotions: &Cache<Promotion>,
    environments: &Cache<Environment>,
    artifact: &Artifact,
) -> Vec<ObjectRef<Environment>> {
    let namespace = artifact.namespace().unwrap_or_default();
    let mut refs: Vec<ObjectRef<Environment>> = promotions
        .indexed(&keys::of_artifact(&namespace, &artifact.name_any()))
        .iter()
        .map(|p| ObjectRef::new(&p.spec.environment).within(&namespace))
        .collect();
    refs.extend(
        environments
            .indexed(&keys::application(&namespace, &artifact.spec.application))
            .iter()
            .filter(|e| e.spec.auto_promote)
            .map(|e| ObjectRef::from_obj(e.as_ref())),
    );
    refs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    refs.dedup();
    refs
}

/// A Deployment Hoist pinned, or a verification Job it created, carries its
/// Environment and tenant as labels.
pub fn environment_of_labelled<K: Resource>(object: &K) -> Option<ObjectRef<Environment>> {
    let labels = object.labels();
    Some(ObjectRef::new(labels.get(LABEL_ENVIRONMENT)?).within(labels.get(LABEL_TENANT)?))
}

/// A ConfigMap Hoist wrote (rendered or snapshot) names its Environment;
/// the tenant label, else its own namespace, names the Environment's namespace.
pub fn environment_of_config_map(config_map: &ConfigMap) -> Option<ObjectRef<Environment>> {
    let labels = config_map.labels();
    let tenant = labels
        .get(LABEL_TENANT)
        .cloned()
        .or_else(|| config_map.namespace())?;
    Some(ObjectRef::new(labels.get(LABEL_ENVIRONMENT)?).within(&tenant))
}

/// A target namespace's labels decide whether a tenant may use it.
pub fn environments_targeting(
    environments: &Cache<Environment>,
    namespace: &Namespace,
) -> Vec<ObjectRef<Environment>> {
    environments_under(environments, &keys::targets_in(&namespace.name_any()))
}

/// A tenant namespace's labels name its Environments' tier.
pub fn environments_in(
    environments: &Cache<Environment>,
    namespace: &Namespace,
) -> Vec<ObjectRef<Environment>> {
    environments_under(environments, &keys::in_namespace(&namespace.name_any()))
}

/// A base ConfigMap changed: the configurations built on it change.
pub fn environments_based_on(
    environments: &Cache<Environment>,
    config_map: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<Environment>> {
    let namespace = config_map.namespace().unwrap_or_default();
    environments_under(environments, &keys::base(&namespace, &config_map.name_any()))
}

/// A referenced Secret changed: the configuration hash changes.
pub fn environments_referencing(
    environments: &Cache<Environment>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Environment>> {
    let namespace = secret.namespace().unwrap_or_default();
    environments_under(environments, &keys::secret(&namespace, &secret.name_any()))
}

/// The admission policy (or its binding) changed: whether approvals are
/// verified changes for every Environment with an approval gate.
pub fn environments_gated_by_approval<K>(
    environments: &Cache<Environment>,
    _: &K,
) -> Vec<ObjectRef<Environment>> {
    environments_under(environments, &keys::approval_gated())
}

/// The Environments policy (or its binding) changed: whether the operator
/// acts on Job steps and Secret references changes for every Environment
/// with one.
pub fn environments_delegating<K>(environments: &Cache<Environment>, _: &K) -> Vec<ObjectRef<Environment>> {
    environments_under(environments, &keys::delegating())
}

/// Wraps a mapper over a cache for `watches_shared_stream`.
pub fn over<C, K, R: 'static>(
    cache: C,
    mapper: fn(&C, &K) -> R,
) -> impl Fn(Arc<K>) -> R + Send + Sync + 'static
where
    C: Send + Sync + 'static,
    K: 'static,
{
    move |object: Arc<K>| mapper(&cache, object.as_ref())
}

#[cfg(test)]
#[path = "tests/triggers.rs"]
mod tests;
