//! The operator's configuration: what a platform team sets once for every
//! tenant of an install, as opposed to what each Environment says. It is a
//! YAML file (`hoist controller --config FILE`); the chart renders it from
//! its value `config` into the ConfigMap `<release>-config`, mounts it, and
//! restarts the operator's pods when it changes (a checksum annotation), so
//! the operator reads it once, at start.
//!
//! Each section is a field of [`OperatorConfig`]; a file that names a field
//! Hoist does not know is refused, naming the field, so a misspelt setting
//! never goes unnoticed.

use serde::Deserialize;

use super::notifications::TenantNotification;
use crate::core::registry_retention::RegistryRetention;
use crate::core::retention::RetentionDefaults;
use crate::core::tiers::Tiers;

/// The whole file. Every section is optional and has documented defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorConfig {
    /// The tenant-wide defaults of Environments' `spec.retention`.
    #[serde(default)]
    pub retention: RetentionDefaults,
    /// Which registries' manifests retention deletes with their Artifacts
    /// (none unless configured).
    #[serde(default)]
    pub registry_retention: RegistryRetention,
    /// Tenant-wide notifications: webhooks told of every tenant's Promotions.
    #[serde(default)]
    pub notifications: Vec<TenantNotification>,
    /// Which Environments each tenant may have, by its namespace's tier;
    /// nothing is enforced without it.
    #[serde(default)]
    pub tiers: Option<Tiers>,
}

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The path of the offending field (`.` for the document itself, the
    /// field itself when it is unknown).
    pub field: String,
    pub message: String,
}

/// Parses a configuration file's text. An empty file is the defaults.
pub fn parse(text: &str) -> Result<OperatorConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(OperatorConfig::default());
    }
    let document = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(document).map_err(|error| ConfigError {
        field: error.path().to_string(),
        message: error.into_inner().to_string(),
    })
}

#[cfg(test)]
mod tests;
