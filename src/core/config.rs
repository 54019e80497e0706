//! Per-application configuration of an environment: the rendered ConfigMap
//! data (base + overlay) and the hash that rolls the pods when it changes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use sha2::{Digest, Sha256};

use crate::api::ApplicationConfig;

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
}

/// SHA-256 over a Secret's content: what the configuration hash takes from
/// it, so the operator never needs to keep the content itself.
pub type SecretDigest = [u8; 32];

/// The digest of `secret`'s `data` (and `stringData`, which files given to
/// `hoist render` may carry; a real API server never returns it).
pub fn secret_digest(secret: &Secret) -> SecretDigest {
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
    hasher.finalize().into()
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
    for name in secret_names {
        let digest = sources.secret(name).ok_or_else(|| ConfigError::SecretMissing {
            application: config.application.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
        feed(b"secret");
        feed(name.as_bytes());
        feed(&digest);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let hash = format!("sha256:{hex}");
    Ok(RenderedConfig {
        application: config.application.clone(),
        data,
        binary_data,
        hash,
    })
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
}
