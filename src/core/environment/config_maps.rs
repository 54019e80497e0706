//! Configuration as it reaches the pods: the ConfigMap each application's
//! release renders into its target namespaces, and which configurations are
//! kept (as snapshots) because what runs, what rolls out or the history
//! refers to them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::Environment;
use crate::core::config::RenderedConfig;
use crate::core::deployment::{
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
