//! Per-application configuration of an environment: the rendered ConfigMap
//! data (base + overlay), the hash that rolls the pods when it changes, and
//! the immutable snapshot ConfigMap that keeps a shipped configuration for
//! rollbacks.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ApplicationConfig;
use crate::core::workload::{
    ANNOTATION_CONFIG_HASH, LABEL_APPLICATION, LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_TENANT,
};

/// `hoist.dev/role` of a snapshot ConfigMap.
pub const ROLE_CONFIG_SNAPSHOT: &str = "config-snapshot";

/// Why an application's configuration cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "base ConfigMap {namespace}/{name} (spec.config[application={application}].baseConfigMap) not found"
    )]
    BaseMissing {
        application: String,
        namespace: String,
        name: String,
    },
    #[error("Secret {namespace}/{name} (spec.config[application={application}].secretRefs) not found")]
    SecretMissing {
        application: String,
        namespace: String,
        name: String,
    },
    #[error(
        "Secret {namespace}/{name} (spec.config[application={application}].secretRefs) not read: \
         the admission policy on Environments is not enforced (condition TenantBoundaries)"
    )]
    SecretNotRead {
        application: String,
        namespace: String,
        name: String,
    },
}

/// The configuration an application gets in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    pub application: String,
    /// Base data with the overlay's keys set over it.
    pub data: BTreeMap<String, String>,
    /// Base binary data, carried over unchanged.
    pub binary_data: BTreeMap<String, ByteString>,
    /// `sha256:<hex>` over the data, binary data and every referenced
    /// Secret's content, so rotating a Secret changes it too.
    pub hash: String,
    /// Each referenced Secret by name: its keys and content fingerprint.
    pub secrets: BTreeMap<String, SecretRecord>,
}

/// What the configuration takes from a Secret: SHA-256 over its content
/// and its key names, so the operator never needs to keep the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDigest {
    pub sha256: [u8; 32],
    pub keys: Vec<String>,
}

/// What a configuration snapshot keeps of a referenced Secret: its key
/// names and a fingerprint of its content (the first 16 hex digits of the
/// digest), enough to tell that it changed between two releases, never
/// what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub keys: Vec<String>,
    pub fingerprint: String,
}

/// `hoist.dev/secrets` of a snapshot ConfigMap: the [`SecretRecord`] of
/// each referenced Secret by name, as JSON.
pub const ANNOTATION_SECRETS: &str = "hoist.dev/secrets";

/// The digest of `secret`'s `data` (and `stringData`, which files given to
/// `hoist render` may carry; a real API server never returns it).
pub fn secret_digest(secret: &Secret) -> SecretDigest {
    let mut keys: Vec<String> = secret
        .data
        .iter()
        .flat_map(BTreeMap::keys)
        .chain(secret.string_data.iter().flat_map(BTreeMap::keys))
        .cloned()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut hasher = Sha256::new();
    let mut feed = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for (key, value) in secret.data.iter().flatten() {
        feed(b"data");
        feed(key.as_bytes());
        feed(&value.0);
    }
    for (key, value) in secret.string_data.iter().flatten() {
        feed(b"stringData");
        feed(key.as_bytes());
        feed(value.as_bytes());
    }
    SecretDigest {
        sha256: hasher.finalize().into(),
        keys,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Looks up objects of the environment's namespace by name.
pub trait ConfigSources {
    fn config_map(&self, name: &str) -> Option<&ConfigMap>;
    /// The [`secret_digest`] of a Secret.
    fn secret(&self, name: &str) -> Option<SecretDigest>;
    /// Whether Secrets were read at all: not for an Environment held by
    /// [`crate::core::tenancy::held`].
    fn secrets_read(&self) -> bool;
}

/// Renders `config` from its sources in `namespace`.
pub fn render(
    config: &ApplicationConfig,
    namespace: &str,
    sources: &dyn ConfigSources,
) -> Result<RenderedConfig, ConfigError> {
    let mut data = BTreeMap::new();
    let mut binary_data = BTreeMap::new();
    if let Some(base_name) = &config.base_config_map {
        let base = sources
            .config_map(base_name)
            .ok_or_else(|| ConfigError::BaseMissing {
                application: config.application.clone(),
                namespace: namespace.to_string(),
                name: base_name.clone(),
            })?;
        data.extend(base.data.clone().unwrap_or_default());
        binary_data.extend(base.binary_data.clone().unwrap_or_default());
    }
    data.extend(
        config
            .data
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );

    let mut hasher = Sha256::new();
    // Every part is length-prefixed so no two different inputs hash alike.
    let mut feed = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for (key, value) in &data {
        feed(b"data");
        feed(key.as_bytes());
        feed(value.as_bytes());
    }
    for (key, value) in &binary_data {
        feed(b"binaryData");
        feed(key.as_bytes());
        feed(&value.0);
    }
    let mut secret_names: Vec<&str> = config
        .secret_refs
        .iter()
        .map(|secret| secret.name.as_str())
        .collect();
    secret_names.sort_unstable();
    secret_names.dedup();
    let mut secrets = BTreeMap::new();
    for name in secret_names {
        if !sources.secrets_read() {
            return Err(ConfigError::SecretNotRead {
                application: config.application.clone(),
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        let digest = sources.secret(name).ok_or_else(|| ConfigError::SecretMissing {
            application: config.application.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
        feed(b"secret");
        feed(name.as_bytes());
        feed(&digest.sha256);
        secrets.insert(
            name.to_string(),
            SecretRecord {
                keys: digest.keys,
                fingerprint: hex(&digest.sha256[..8]),
            },
        );
    }
    let hash = format!("sha256:{}", hex(&hasher.finalize()));
    Ok(RenderedConfig {
        application: config.application.clone(),
        data,
        binary_data,
        hash,
        secrets,
    })
}

/// Name of the snapshot ConfigMap that keeps configuration `hash` of
/// `environment`: `hoist-<environment>-<first 16 hex digits>`.
pub fn snapshot_name(environment: &str, hash: &str) -> String {
    let hex = hash.trim_start_matches("sha256:");
    // By characters: the hash of a decoded snapshot comes from the cluster.
    let short = hex.char_indices().nth(16).map_or(hex, |(end, _)| &hex[..end]);
    format!("hoist-{environment}-{short}")
}

/// The immutable ConfigMap that keeps `rendered` for rollbacks of
/// `environment` (of namespace `tenant`), owned by `owner`.
pub fn snapshot_config_map(
    environment: &str,
    tenant: &str,
    rendered: &RenderedConfig,
    owner: Option<OwnerReference>,
) -> ConfigMap {
    let mut config_map = ConfigMap {
        data: Some(rendered.data.clone()),
        binary_data: (!rendered.binary_data.is_empty()).then(|| rendered.binary_data.clone()),
        immutable: Some(true),
        ..Default::default()
    };
    config_map.metadata.name = Some(snapshot_name(environment, &rendered.hash));
    config_map.metadata.labels = Some(
        [
            (LABEL_ENVIRONMENT, environment),
            (LABEL_TENANT, tenant),
            (LABEL_ROLE, ROLE_CONFIG_SNAPSHOT),
            (LABEL_APPLICATION, rendered.application.as_str()),
        ]
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .into(),
    );
    let mut annotations: BTreeMap<String, String> =
        [(ANNOTATION_CONFIG_HASH.to_string(), rendered.hash.clone())].into();
    if !rendered.secrets.is_empty() {
        // Serializing string-keyed maps of strings cannot fail.
        let secrets = serde_json::to_string(&rendered.secrets).unwrap_or_default();
        annotations.insert(ANNOTATION_SECRETS.to_string(), secrets);
    }
    config_map.metadata.annotations = Some(annotations);
    config_map.metadata.owner_references = owner.map(|owner| vec![owner]);
    config_map
}

/// The configuration a snapshot ConfigMap keeps, or `None` when it lacks
/// the hash annotation or the application label. Its Secrets' records are
/// empty when the snapshot keeps none (snapshots written before they were
/// kept): what rolls the pods back is the data, not the records.
pub fn from_snapshot(config_map: &ConfigMap) -> Option<RenderedConfig> {
    let annotations = config_map.annotations();
    Some(RenderedConfig {
        application: config_map.labels().get(LABEL_APPLICATION)?.clone(),
        data: config_map.data.clone().unwrap_or_default(),
        binary_data: config_map.binary_data.clone().unwrap_or_default(),
        hash: annotations.get(ANNOTATION_CONFIG_HASH)?.clone(),
        secrets: annotations
            .get(ANNOTATION_SECRETS)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
    })
}

/// Whether something is new, gone or different between two configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Added,
    Removed,
    Changed,
}

/// One difference between two configurations of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigKeyChange {
    Added {
        key: String,
        value: String,
    },
    Removed {
        key: String,
        value: String,
    },
    Changed {
        key: String,
        from: String,
        to: String,
    },
    /// A binary key: its bytes are not shown.
    Binary {
        key: String,
        change: Presence,
    },
    /// A referenced Secret: its keys by name, never a value; `added` and
    /// `removed` name the keys that came or went in a changed Secret.
    Secret {
        name: String,
        change: Presence,
        keys: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// The hashes differ and neither the data nor the Secrets' records
    /// (absent from snapshots older than them) say why.
    Unrecorded,
}

/// What changed from configuration `from` to `to`: data keys, then binary
/// keys, then Secrets, each in key order.
pub fn changes(from: &RenderedConfig, to: &RenderedConfig) -> Vec<ConfigKeyChange> {
    let mut changes = Vec::new();
    let keys: std::collections::BTreeSet<&String> = from.data.keys().chain(to.data.keys()).collect();
    for key in keys {
        match (from.data.get(key), to.data.get(key)) {
            (Some(before), Some(after)) if before != after => changes.push(ConfigKeyChange::Changed {
                key: key.clone(),
                from: before.clone(),
                to: after.clone(),
            }),
            (None, Some(value)) => changes.push(ConfigKeyChange::Added {
                key: key.clone(),
                value: value.clone(),
            }),
            (Some(value), None) => changes.push(ConfigKeyChange::Removed {
                key: key.clone(),
                value: value.clone(),
            }),
            _ => {}
        }
    }
    let keys: std::collections::BTreeSet<&String> =
        from.binary_data.keys().chain(to.binary_data.keys()).collect();
    for key in keys {
        let change = match (from.binary_data.get(key), to.binary_data.get(key)) {
            (Some(before), Some(after)) if before != after => Presence::Changed,
            (None, Some(_)) => Presence::Added,
            (Some(_), None) => Presence::Removed,
            _ => continue,
        };
        changes.push(ConfigKeyChange::Binary {
            key: key.clone(),
            change,
        });
    }
    let names: std::collections::BTreeSet<&String> = from.secrets.keys().chain(to.secrets.keys()).collect();
    for name in names {
        let (change, keys, added, removed) = match (from.secrets.get(name), to.secrets.get(name)) {
            (Some(before), Some(after)) if before != after => (
                Presence::Changed,
                after.keys.clone(),
                after
                    .keys
                    .iter()
                    .filter(|k| !before.keys.contains(k))
                    .cloned()
                    .collect(),
                before
                    .keys
                    .iter()
                    .filter(|k| !after.keys.contains(k))
                    .cloned()
                    .collect(),
            ),
            (None, Some(after)) => (Presence::Added, after.keys.clone(), Vec::new(), Vec::new()),
            (Some(before), None) => (Presence::Removed, before.keys.clone(), Vec::new(), Vec::new()),
            _ => continue,
        };
        changes.push(ConfigKeyChange::Secret {
            name: name.clone(),
            change,
            keys,
            added,
            removed,
        });
    }
    if changes.is_empty() && from.hash != to.hash {
        changes.push(ConfigKeyChange::Unrecorded);
    }
    changes
}

#[cfg(test)]
mod tests;
