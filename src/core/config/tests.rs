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
    fn secrets_read(&self) -> bool {
        true
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
