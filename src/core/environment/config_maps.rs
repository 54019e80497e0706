//! Configuration as it reaches the pods: the ConfigMap each application's
//! release renders into its target namespaces, and which configurations are
//! kept (as snapshots) because what runs, what rolls out or the history
//! refers to them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::Environment;
use crate::core::config::RenderedConfig;
use crate::core::workload::{
    ANNOTATION_CONFIG_HASH, LABEL_APPLICATION, LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT,
};

use super::{Decision, target_namespace};

/// A ConfigMap Hoist renders into a target namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfigMap {
    pub namespace: String,
    pub name: String,
    pub application: String,
    pub config: RenderedConfig,
}

impl RenderedConfigMap {
    /// The ConfigMap as Hoist writes it for `environment` of `tenant`.
    pub fn object(&self, environment: &str, tenant: &str) -> ConfigMap {
        let mut config_map = ConfigMap {
            data: Some(self.config.data.clone()),
            binary_data: (!self.config.binary_data.is_empty()).then(|| self.config.binary_data.clone()),
            ..Default::default()
        };
        config_map.metadata.name = Some(self.name.clone());
        config_map.metadata.namespace = Some(self.namespace.clone());
        config_map.metadata.labels = Some(
            [
                (LABEL_ENVIRONMENT, environment),
                (LABEL_TENANT, tenant),
                (LABEL_ROLE, "config"),
                (LABEL_APPLICATION, self.application.as_str()),
            ]
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .into(),
        );
        config_map.metadata.annotations =
            Some([(ANNOTATION_CONFIG_HASH.to_string(), self.config.hash.clone())].into());
        config_map
    }

    /// Whether `live` already holds this configuration (the API server omits
    /// empty maps, so they compare as empty).
    pub fn is_satisfied_by(&self, live: &ConfigMap, environment: &str) -> bool {
        live.data.clone().unwrap_or_default() == self.config.data
            && live.binary_data.clone().unwrap_or_default() == self.config.binary_data
            && live
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_ENVIRONMENT))
                .map(String::as_str)
                == Some(environment)
    }
}

/// The name of the rendered ConfigMap of `application`.
pub fn config_map_name(environment: &Environment, application: &str) -> String {
    environment
        .spec
        .config
        .iter()
        .find(|config| config.application == application)
        .and_then(|config| config.config_map_name.clone())
        .unwrap_or_else(|| format!("{application}-config"))
}

impl Decision<'_, '_> {
    fn rendered(&self, hash: &str) -> Option<RenderedConfig> {
        self.snapshot
            .configs
            .values()
            .filter_map(|rendered| rendered.as_ref().ok())
            .chain(self.snapshot.config_history.values())
            .find(|rendered| rendered.hash == hash)
            .cloned()
    }

    pub(super) fn config_maps(&self) -> (Vec<RenderedConfigMap>, Vec<RenderedConfig>) {
        let environment = self.snapshot.environment;
        let mut config_maps = Vec::new();
        let mut keep: BTreeMap<String, RenderedConfig> = BTreeMap::new();
        for (application, release) in self.wanted_releases() {
            let Some(rendered) = release
                .config_hash
                .as_deref()
                .and_then(|hash| self.rendered(hash))
            else {
                continue;
            };
            let namespaces: BTreeSet<String> = environment
                .spec
                .targets
                .iter()
                .filter(|target| target.application == application)
                .map(|target| target_namespace(environment, target))
                .collect();
            for namespace in namespaces {
                config_maps.push(RenderedConfigMap {
                    namespace,
                    name: config_map_name(environment, &application),
                    application: application.clone(),
                    config: rendered.clone(),
                });
            }
            keep.insert(rendered.hash.clone(), rendered);
        }
        for hash in self
            .history
            .iter()
            .filter_map(|entry| entry.config_hash.as_deref())
        {
            if let Some(rendered) = self.rendered(hash) {
                keep.insert(hash.to_string(), rendered);
            }
        }
        (config_maps, keep.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Namespace;

    use super::*;
    use crate::api::{EnvironmentStatus, HistoryEntry, Phase};
    use crate::core::environment::fixture::{
        A, Objects, after_pin, at, deployment, environment, pin, rendered, running, yaml,
    };
    use crate::core::environment::plan;

    const H0: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    const H1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const H9: &str = "sha256:9999999999999999999999999999999999999999999999999999999999999999";

    fn entry(promotion: &str, config_hash: &str) -> HistoryEntry {
        HistoryEntry {
            application: "shop".into(),
            artifact: "shop-1".into(),
            version: "1.0.0".into(),
            change: crate::api::ChangeKind::Release,
            source_repository: None,
            source_revision: None,
            build_id: None,
            build_url: None,
            committed_at: None,
            built_at: None,
            images: Vec::new(),
            config_hash: Some(config_hash.into()),
            promotion: promotion.into(),
            promoted_at: Some(at(1)),
            approvers: Vec::new(),
            approvals: Vec::new(),
            outcome: Phase::Succeeded,
            completed_at: Some(at(1)),
            restored_at: None,
        }
    }

    #[test]
    fn a_configuration_is_kept_while_what_runs_or_the_history_refers_to_it() {
        let mut objects = Objects::new(environment("dev", ""));
        objects.environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-1", "1.0.0", A, Some(H1))],
            history: vec![entry("now", H1), entry("before", H0)],
            ..Default::default()
        });
        objects.workloads = vec![after_pin(deployment(), &pin("shop-1", A, Some(H1)), true)];
        objects.configs = [("shop".to_string(), Ok(rendered("one", H1)))].into();
        objects.config_history = [
            (H0.to_string(), rendered("zero", H0)),
            (H9.to_string(), rendered("nine", H9)),
        ]
        .into();
        let plan = plan(&objects.snapshot());
        assert_eq!(
            plan.config_history,
            vec![rendered("zero", H0), rendered("one", H1)]
        );
        assert_eq!(
            plan.config_maps,
            vec![RenderedConfigMap {
                namespace: "shop".into(),
                name: "shop-config".into(),
                application: "shop".into(),
                config: rendered("one", H1),
            }]
        );
    }

    #[test]
    fn each_target_namespace_gets_one_config_map_named_as_the_spec_says() {
        let mut objects = Objects::new(yaml(
            r#"
apiVersion: hoist.dev/v1alpha1
kind: Environment
metadata: {name: dev, namespace: shop, generation: 1}
spec:
  targets:
    - {application: shop, component: backend, deployment: {name: backend}, container: app}
    - {application: shop, component: backend, deployment: {name: backend, namespace: shop-edge}, container: app}
    - {application: shop, component: backend, deployment: {name: worker}, container: app}
  config:
    - {application: shop, configMapName: settings}
"#,
        ));
        objects.namespaces = vec![yaml::<Namespace>(
            "{apiVersion: v1, kind: Namespace, metadata: {name: shop-edge, labels: {hoist.dev/tenant: shop}}}",
        )];
        objects.environment.status = Some(EnvironmentStatus {
            applications: vec![running("shop-1", "1.0.0", A, Some(H1))],
            ..Default::default()
        });
        objects.configs = [("shop".to_string(), Ok(rendered("one", H1)))].into();
        let plan = plan(&objects.snapshot());
        let placed: Vec<(&str, &str, &str)> = plan
            .config_maps
            .iter()
            .map(|c| (c.namespace.as_str(), c.name.as_str(), c.config.hash.as_str()))
            .collect();
        assert_eq!(
            placed,
            vec![("shop", "settings", H1), ("shop-edge", "settings", H1)]
        );
    }

    #[test]
    fn a_rendered_config_map_carries_hoists_labels_and_its_hash() {
        let rendered = RenderedConfigMap {
            namespace: "shop-edge".into(),
            name: "settings".into(),
            application: "shop".into(),
            config: rendered("one", H1),
        };
        let object = rendered.object("dev", "shop");
        assert_eq!(
            serde_json::to_value(&object).unwrap(),
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "settings",
                    "namespace": "shop-edge",
                    "labels": {
                        "hoist.dev/application": "shop",
                        "hoist.dev/environment": "dev",
                        "hoist.dev/role": "config",
                        "hoist.dev/tenant": "shop",
                    },
                    "annotations": {"hoist.dev/config-hash": H1},
                },
                "data": {"MODE": "one"},
            })
        );
        assert!(rendered.is_satisfied_by(&object, "dev"));
        assert!(
            !rendered.is_satisfied_by(&object, "prod"),
            "another Environment's ConfigMap"
        );
    }
}
