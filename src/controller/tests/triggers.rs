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
        serde_json::from_value(json!({"metadata": {"name": "x", "namespace": "shop"}})).expect("deployment");
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
    let own: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("namespace");
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

#[test]
fn the_namespaces_where_environments_read_secrets_are_indexed() {
    let readers = |namespace: &str| {
        names(
            environments()
                .indexed(&keys::reads_secrets_in(namespace))
                .iter()
                .map(|environment| ObjectRef::from_obj(environment.as_ref()))
                .collect(),
        )
    };
    // shop/dev reads Secret token; other/dev reads none.
    assert_eq!(readers("shop"), vec!["shop/dev"]);
    assert_eq!(readers("other"), Vec::<String>::new());
}
