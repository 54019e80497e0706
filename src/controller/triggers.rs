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
use crate::core::deployment::{LABEL_ENVIRONMENT, LABEL_TENANT};

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
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    fn cache<K>(name: &'static str, keys: super::super::cache::Keys<K>, objects: Vec<K>) -> Cache<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let (store, mut writer) = reflector::store();
        let cache = Cache::new(name, store, keys);
        for object in objects {
            let event = Event::Apply(object);
            cache.observe(&event);
            writer.apply_watcher_event(&event);
        }
        cache
    }

    fn environment(namespace: &str, name: &str, spec: serde_json::Value) -> Environment {
        serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec
        }))
        .expect("environment")
    }

    fn names(refs: Vec<ObjectRef<Environment>>) -> Vec<String> {
        let mut names: Vec<String> = refs
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        names.sort();
        names
    }

    fn target(application: &str, namespace: Option<&str>) -> serde_json::Value {
        json!({"application": application, "component": "backend",
               "deployment": {"name": "backend", "namespace": namespace}, "container": "app"})
    }

    fn environments() -> Cache<Environment> {
        cache(
            "environments",
            keys::environment,
            vec![
                environment(
                    "shop",
                    "dev",
                    json!({"targets": [target("shop", None)], "autoPromote": true,
                    "config": [{"application": "shop", "baseConfigMap": "shop-base", "secretRefs": [{"name": "token"}]}]}),
                ),
                environment(
                    "shop",
                    "staging",
                    json!({"upstream": ["dev"], "targets": [target("shop", Some("shop-staging"))]}),
                ),
                environment(
                    "shop",
                    "prod",
                    json!({"upstream": ["staging"], "targets": [target("shop", Some("shop-prod"))]}),
                ),
                environment(
                    "other",
                    "dev",
                    json!({"targets": [target("shop", None)], "autoPromote": true}),
                ),
            ],
        )
    }

    #[test]
    fn the_admission_policy_reaches_the_environments_with_an_approval_gate() {
        let environments = cache(
            "environments",
            keys::environment,
            vec![
                environment("shop", "dev", json!({"targets": [target("shop", None)]})),
                environment(
                    "shop",
                    "prod",
                    json!({"targets": [target("shop", None)], "gates": {"approval": {}}}),
                ),
                environment(
                    "other",
                    "prod",
                    json!({"gates": {"approval": {"users": ["carol"]}}}),
                ),
            ],
        );
        assert_eq!(
            names(environments_gated_by_approval(&environments, &())),
            vec!["other/prod", "shop/prod"]
        );
    }

    #[test]
    fn a_status_change_reaches_the_environments_downstream_only() {
        let environments = environments();
        let dev = environment("shop", "dev", json!({}));
        assert_eq!(names(downstream_of(&environments, &dev)), vec!["shop/staging"]);
        let prod = environment("shop", "prod", json!({}));
        assert_eq!(names(downstream_of(&environments, &prod)), Vec::<String>::new());
    }

    #[test]
    fn an_artifact_reaches_its_promotions_environments_and_auto_promoting_environments_of_its_tenant() {
        let environments = environments();
        let promotion: Promotion = serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Promotion",
            "metadata": {"name": "to-prod", "namespace": "shop"},
            "spec": {"artifact": "shop-1", "environment": "prod"}
        }))
        .expect("promotion");
        let promotions = cache("promotions", keys::promotion, vec![promotion.clone()]);
        let artifact: Artifact = serde_json::from_value(json!({
            "apiVersion": "hoist.dev/v1alpha1", "kind": "Artifact",
            "metadata": {"name": "shop-1", "namespace": "shop"},
            "spec": {"application": "shop", "version": "1.0.0", "images": [{"component": "backend", "image": "r/b:1"}]}
        }))
        .expect("artifact");
        assert_eq!(
            names(environments_for_artifact(&promotions, &environments, &artifact)),
            vec!["shop/dev", "shop/prod"]
        );
        assert_eq!(
            names(environment_of_promotion(&promotion).into_iter().collect()),
            vec!["shop/prod"]
        );
    }

    #[test]
    fn labelled_deployments_and_config_maps_name_their_environment() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "backend", "namespace": "shop-prod",
                         "labels": {LABEL_ENVIRONMENT: "prod", LABEL_TENANT: "shop"}}
        }))
        .expect("deployment");
        assert_eq!(
            names(environment_of_labelled(&deployment).into_iter().collect()),
            vec!["shop/prod"]
        );
        let unlabelled: Deployment =
            serde_json::from_value(json!({"metadata": {"name": "x", "namespace": "shop"}}))
                .expect("deployment");
        assert!(environment_of_labelled(&unlabelled).is_none());
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "to-prod-smoke-0a1b2c3d4e", "namespace": "shop",
                         "labels": {LABEL_ENVIRONMENT: "prod", LABEL_TENANT: "shop"}}
        }))
        .expect("job");
        assert_eq!(
            names(environment_of_labelled(&job).into_iter().collect()),
            vec!["shop/prod"]
        );

        let snapshot: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "hoist-dev-0123", "namespace": "shop", "labels": {LABEL_ENVIRONMENT: "dev"}}
        }))
        .expect("config map");
        assert_eq!(
            names(environment_of_config_map(&snapshot).into_iter().collect()),
            vec!["shop/dev"]
        );
        let rendered: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "shop-config", "namespace": "shop-prod",
                         "labels": {LABEL_ENVIRONMENT: "prod", LABEL_TENANT: "shop"}}
        }))
        .expect("config map");
        assert_eq!(
            names(environment_of_config_map(&rendered).into_iter().collect()),
            vec!["shop/prod"]
        );
    }

    #[test]
    fn namespaces_base_config_maps_and_secrets_reach_the_environments_that_use_them() {
        let environments = environments();
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "shop-prod"}})).expect("namespace");
        assert_eq!(
            names(environments_targeting(&environments, &namespace)),
            vec!["shop/prod"]
        );
        let own: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("namespace");
        assert_eq!(
            names(environments_targeting(&environments, &own)),
            vec!["shop/dev"]
        );

        let meta = |name: &str, namespace: &str| {
            serde_json::from_value::<PartialObjectMeta<ConfigMap>>(json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}
            }))
            .expect("meta")
        };
        assert_eq!(
            names(environments_based_on(&environments, &meta("shop-base", "shop"))),
            vec!["shop/dev"]
        );
        assert_eq!(
            names(environments_based_on(&environments, &meta("shop-base", "other"))),
            Vec::<String>::new(),
            "another tenant's ConfigMap of the same name"
        );
        let secret: PartialObjectMeta<Secret> = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "shop"}
        }))
        .expect("meta");
        assert_eq!(
            names(environments_referencing(&environments, &secret)),
            vec!["shop/dev"]
        );
    }
}
