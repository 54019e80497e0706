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
use crate::core::deployment::{
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
mod tests {
    use super::*;
    use crate::api::SecretReference;

    #[derive(Default)]
    struct Sources {
        config_maps: BTreeMap<String, ConfigMap>,
        secrets: BTreeMap<String, Secret>,
    }

    impl ConfigSources for Sources {
        fn config_map(&self, name: &str) -> Option<&ConfigMap> {
            self.config_maps.get(name)
        }
        fn secret(&self, name: &str) -> Option<SecretDigest> {
            self.secrets.get(name).map(secret_digest)
        }
    }

    fn config(data: &[(&str, &str)], base: Option<&str>, secrets: &[&str]) -> ApplicationConfig {
        ApplicationConfig {
            application: "shop".into(),
            config_map_name: None,
            base_config_map: base.map(Into::into),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            secret_refs: secrets
                .iter()
                .map(|name| SecretReference {
                    name: name.to_string(),
                })
                .collect(),
        }
    }

    fn sources() -> Sources {
        let mut sources = Sources::default();
        let base = ConfigMap {
            data: Some(
                [("LOG_LEVEL", "info"), ("TTL", "60")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            ),
            ..Default::default()
        };
        sources.config_maps.insert("base".into(), base);
        let secret = Secret {
            data: Some([("token".to_string(), ByteString(b"s3cret".to_vec()))].into()),
            ..Default::default()
        };
        sources.secrets.insert("token".into(), secret);
        sources
    }

    #[test]
    fn overlay_keys_win_over_the_base() {
        let rendered = render(
            &config(&[("LOG_LEVEL", "debug")], Some("base"), &[]),
            "shop",
            &sources(),
        )
        .unwrap();
        let expected: BTreeMap<String, String> = [("LOG_LEVEL", "debug"), ("TTL", "60")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(rendered.data, expected);
        assert!(
            rendered.hash.starts_with("sha256:") && rendered.hash.len() == 7 + 64,
            "{}",
            rendered.hash
        );
    }

    #[test]
    fn hash_changes_with_the_overlay_and_with_a_secret_but_not_otherwise() {
        let mut sources = sources();
        let base = render(&config(&[("A", "1")], Some("base"), &["token"]), "shop", &sources).unwrap();
        let again = render(&config(&[("A", "1")], Some("base"), &["token"]), "shop", &sources).unwrap();
        assert_eq!(base.hash, again.hash);
        let overlay = render(&config(&[("A", "2")], Some("base"), &["token"]), "shop", &sources).unwrap();
        assert_ne!(base.hash, overlay.hash);
        sources.secrets.get_mut("token").unwrap().data =
            Some([("token".to_string(), ByteString(b"rotated".to_vec()))].into());
        let rotated = render(&config(&[("A", "1")], Some("base"), &["token"]), "shop", &sources).unwrap();
        assert_ne!(base.hash, rotated.hash);
        assert_eq!(
            base.data, rotated.data,
            "secret content never enters the rendered data"
        );
    }

    #[test]
    fn missing_sources_are_named() {
        assert_eq!(
            render(&config(&[], Some("nope"), &[]), "shop", &sources()),
            Err(ConfigError::BaseMissing {
                application: "shop".into(),
                namespace: "shop".into(),
                name: "nope".into()
            })
        );
        let error = render(&config(&[], None, &["gone"]), "shop", &sources()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Secret shop/gone (spec.config[application=shop].secretRefs) not found"
        );
    }

    fn rendered() -> RenderedConfig {
        let mut rendered = render(
            &config(&[("A", "1")], Some("base"), &["token"]),
            "shop",
            &sources(),
        )
        .unwrap();
        rendered
            .binary_data
            .insert("logo.png".into(), ByteString(vec![0x89, 0x50]));
        rendered
    }

    #[test]
    fn a_snapshot_decodes_to_the_configuration_it_keeps() {
        let rendered = rendered();
        let owner = OwnerReference {
            api_version: "hoist.dev/v1alpha1".into(),
            kind: "Environment".into(),
            name: "dev".into(),
            uid: "0f0e".into(),
            controller: Some(false),
            block_owner_deletion: Some(false),
        };
        let snapshot = snapshot_config_map("dev", "shop", &rendered, Some(owner.clone()));
        assert_eq!(from_snapshot(&snapshot), Some(rendered.clone()));

        let hex = rendered.hash.trim_start_matches("sha256:");
        assert_eq!(snapshot.metadata.name, Some(format!("hoist-dev-{}", &hex[..16])));
        assert_eq!(snapshot.immutable, Some(true));
        assert_eq!(snapshot.metadata.owner_references, Some(vec![owner]));
        let labels: Vec<(&str, &str)> = snapshot
            .labels()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("hoist.dev/application", "shop"),
                ("hoist.dev/environment", "dev"),
                ("hoist.dev/role", "config-snapshot"),
                ("hoist.dev/tenant", "shop"),
            ]
        );
        assert_eq!(
            snapshot.annotations().get("hoist.dev/config-hash"),
            Some(&rendered.hash)
        );
        let secrets = snapshot.annotations().get("hoist.dev/secrets").unwrap();
        let fingerprint = &rendered.secrets["token"].fingerprint;
        assert_eq!(
            secrets,
            &format!(r#"{{"token":{{"keys":["token"],"fingerprint":"{fingerprint}"}}}}"#)
        );
        assert_eq!(fingerprint.len(), 16);
        assert!(!secrets.contains("s3cret"), "a Secret's value never leaves it");
    }

    #[test]
    fn a_snapshot_without_secret_records_still_decodes() {
        let mut snapshot = snapshot_config_map("dev", "shop", &rendered(), None);
        snapshot
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove("hoist.dev/secrets");
        let decoded = from_snapshot(&snapshot).unwrap();
        assert_eq!(decoded.secrets, BTreeMap::new());
        assert_eq!(decoded.data, rendered().data);
    }

    fn with(data: &[(&str, &str)], secrets: &[(&str, &[&str], &str)]) -> RenderedConfig {
        RenderedConfig {
            application: "shop".into(),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            binary_data: BTreeMap::new(),
            hash: "sha256:00".into(),
            secrets: secrets
                .iter()
                .map(|(name, keys, fingerprint)| {
                    (
                        name.to_string(),
                        SecretRecord {
                            keys: keys.iter().map(|k| k.to_string()).collect(),
                            fingerprint: fingerprint.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn changes_name_each_key_added_removed_or_changed_and_secrets_only_as_changed() {
        let from = with(
            &[("LOG_LEVEL", "info"), ("OLD", "1"), ("TTL", "60")],
            &[
                ("db", &["password", "user"], "aaaa"),
                ("gone", &["k"], "bbbb"),
                ("same", &["x"], "cccc"),
            ],
        );
        let mut to = with(
            &[("LOG_LEVEL", "debug"), ("NEW", "on"), ("TTL", "60")],
            &[
                ("db", &["password", "token"], "dddd"),
                ("fresh", &["k"], "eeee"),
                ("same", &["x"], "cccc"),
            ],
        );
        to.binary_data.insert("logo.png".into(), ByteString(vec![1]));
        assert_eq!(
            changes(&from, &to),
            vec![
                ConfigKeyChange::Changed {
                    key: "LOG_LEVEL".into(),
                    from: "info".into(),
                    to: "debug".into()
                },
                ConfigKeyChange::Added {
                    key: "NEW".into(),
                    value: "on".into()
                },
                ConfigKeyChange::Removed {
                    key: "OLD".into(),
                    value: "1".into()
                },
                ConfigKeyChange::Binary {
                    key: "logo.png".into(),
                    change: Presence::Added
                },
                ConfigKeyChange::Secret {
                    name: "db".into(),
                    change: Presence::Changed,
                    keys: vec!["password".into(), "token".into()],
                    added: vec!["token".into()],
                    removed: vec!["user".into()],
                },
                ConfigKeyChange::Secret {
                    name: "fresh".into(),
                    change: Presence::Added,
                    keys: vec!["k".into()],
                    added: Vec::new(),
                    removed: Vec::new(),
                },
                ConfigKeyChange::Secret {
                    name: "gone".into(),
                    change: Presence::Removed,
                    keys: vec!["k".into()],
                    added: Vec::new(),
                    removed: Vec::new(),
                },
            ]
        );
        assert_eq!(
            changes(&from, &from),
            Vec::new(),
            "nothing changed, nothing listed"
        );
    }

    #[test]
    fn a_secret_whose_content_was_not_recorded_is_said_so_when_the_hash_moved() {
        let from = with(&[("A", "1")], &[]);
        let mut to = with(&[("A", "1")], &[]);
        to.hash = "sha256:11".into();
        assert_eq!(changes(&from, &to), vec![ConfigKeyChange::Unrecorded]);
        let mut same = with(&[("A", "1")], &[]);
        same.hash = from.hash.clone();
        assert_eq!(changes(&from, &same), Vec::new());
    }

    #[test]
    fn empty_binary_data_is_left_out_and_reads_back_empty() {
        let mut rendered = rendered();
        rendered.binary_data.clear();
        let snapshot = snapshot_config_map("dev", "shop", &rendered, None);
        assert_eq!(snapshot.binary_data, None);
        assert_eq!(snapshot.metadata.owner_references, None);
        assert_eq!(from_snapshot(&snapshot), Some(rendered));
    }

    #[test]
    fn a_config_map_without_hash_or_application_is_no_snapshot() {
        let snapshot = snapshot_config_map("dev", "shop", &rendered(), None);
        let mut no_hash = snapshot.clone();
        no_hash.annotations_mut().clear();
        assert_eq!(from_snapshot(&no_hash), None);
        let mut no_application = snapshot;
        no_application.labels_mut().remove("hoist.dev/application");
        assert_eq!(from_snapshot(&no_application), None);
    }

    #[test]
    fn snapshot_names_take_sixteen_hex_digits_of_any_hash() {
        assert_eq!(
            snapshot_name("prod", &format!("sha256:{}", "0123456789abcdef".repeat(4))),
            "hoist-prod-0123456789abcdef"
        );
        assert_eq!(snapshot_name("prod", "sha256:abc"), "hoist-prod-abc");
        // A hash annotation written by someone else must not panic the reconcile.
        assert_eq!(
            snapshot_name("prod", "ééééééééééééééééé"),
            format!("hoist-prod-{}", "é".repeat(16))
        );
    }
}
