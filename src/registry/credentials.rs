//! Registry credentials from `kubernetes.io/dockerconfigjson` pull secrets.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use super::RegistryError;

/// How to authenticate to one registry. `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum RegistryCredentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl From<&RegistryCredentials> for RegistryAuth {
    fn from(credentials: &RegistryCredentials) -> Self {
        match credentials {
            RegistryCredentials::Anonymous => RegistryAuth::Anonymous,
            RegistryCredentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

/// The credentials one tenant may use, from its pull secrets. Empty means
/// anonymous access everywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullSecrets {
    entries: Vec<PullSecretEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PullSecretEntry {
    registry: String,
    /// Repository prefix the entry is limited to; empty for the whole registry.
    repository_prefix: String,
    credentials: RegistryCredentials,
}

#[derive(Deserialize)]
struct DockerConfigJson {
    auths: BTreeMap<String, DockerConfigEntry>,
}

#[derive(Deserialize)]
struct DockerConfigEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl PullSecrets {
    /// Parses the decoded `.dockerconfigjson` key of a
    /// `kubernetes.io/dockerconfigjson` Secret.
    ///
    /// Each `auths` entry gives either `auth` (base64 of `user:password`, which
    /// wins, as in the kubelet) or `username` and `password`. Keys may be
    /// written as a host (`registry.example.com:5000`), a URL
    /// (`https://registry.example.com/v2/`, Docker Hub's legacy
    /// `https://index.docker.io/v1/`) or a host with a repository prefix
    /// (`registry.example.com/team`).
    pub fn from_dockerconfigjson(json: &[u8]) -> Result<Self, RegistryError> {
        let config: DockerConfigJson =
            serde_json::from_slice(json).map_err(|source| RegistryError::InvalidPullSecret { source })?;
        let entries = config
            .auths
            .into_iter()
            .map(|(key, entry)| {
                let credentials = entry.credentials(&key)?;
                let (registry, repository_prefix) = normalise_key(&key);
                Ok(PullSecretEntry {
                    registry,
                    repository_prefix,
                    credentials,
                })
            })
            .collect::<Result<_, RegistryError>>()?;
        Ok(Self { entries })
    }

    /// Adds the entries of a later pull secret; on equally specific matches the
    /// earlier secret wins, as with a Pod's `imagePullSecrets` order.
    pub fn extend(&mut self, later: PullSecrets) {
        self.entries.extend(later.entries);
    }

    /// The credentials for `reference`: the entry for its registry with the
    /// longest repository prefix that contains the repository, or anonymous.
    pub fn credentials_for(&self, reference: &Reference) -> &RegistryCredentials {
        let registry = reference.registry().to_ascii_lowercase();
        let repository = reference.repository();
        let mut best: Option<&PullSecretEntry> = None;
        for entry in &self.entries {
            let covers = entry.registry == registry
                && (entry.repository_prefix.is_empty()
                    || repository == entry.repository_prefix
                    || repository
                        .strip_prefix(entry.repository_prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/')));
            let more_specific =
                best.is_none_or(|best| entry.repository_prefix.len() > best.repository_prefix.len());
            if covers && more_specific {
                best = Some(entry);
            }
        }
        best.map_or(&RegistryCredentials::Anonymous, |entry| &entry.credentials)
    }
}

impl DockerConfigEntry {
    fn credentials(self, key: &str) -> Result<RegistryCredentials, RegistryError> {
        let unusable = |reason| RegistryError::InvalidPullSecretEntry {
            registry: key.to_owned(),
            reason,
        };
        if let Some(auth) = self.auth.filter(|auth| !auth.is_empty()) {
            let decoded = BASE64
                .decode(auth.trim())
                .map_err(|_| unusable("`auth` is not base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| unusable("`auth` is not UTF-8"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| unusable("`auth` is not `username:password`"))?;
            return Ok(RegistryCredentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        match (self.username, self.password) {
            (Some(username), Some(password)) => Ok(RegistryCredentials::Basic { username, password }),
            _ => Err(unusable("it has neither `auth` nor `username` and `password`")),
        }
    }
}

/// Splits an `auths` key into the registry as [`Reference::registry`] spells
/// it and an optional repository prefix.
fn normalise_key(key: &str) -> (String, String) {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let trimmed = without_scheme.trim_end_matches('/');
    let (host, path) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let host = host.to_ascii_lowercase();
    let registry = match host.as_str() {
        // Docker Hub's API hosts; references to Docker Hub say `docker.io`.
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    };
    // `/v1` and `/v2` are API paths left over from registry URLs, not repositories.
    let repository_prefix = match path {
        "v1" | "v2" => "",
        _ => path,
    };
    (registry, repository_prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(username: &str, password: &str) -> RegistryCredentials {
        RegistryCredentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    fn credentials<'a>(secrets: &'a PullSecrets, image: &str) -> &'a RegistryCredentials {
        secrets.credentials_for(&Reference::try_from(image).unwrap())
    }

    #[test]
    fn auth_field_is_base64_user_colon_password_and_wins() {
        let auth = BASE64.encode("ci:s3cr:et");
        let json = format!(
            r#"{{"auths":{{"registry.example.com":{{"auth":"{auth}","username":"other","password":"other"}}}}}}"#
        );
        let secrets = PullSecrets::from_dockerconfigjson(json.as_bytes()).unwrap();
        assert_eq!(
            credentials(&secrets, "registry.example.com/shop/api:v1"),
            &basic("ci", "s3cr:et")
        );
    }

    #[test]
    fn username_and_password_fields_are_used_without_auth() {
        let json =
            br#"{"auths":{"https://registry.example.com:5000/v2/":{"username":"ci","password":"pw"}}}"#;
        let secrets = PullSecrets::from_dockerconfigjson(json).unwrap();
        assert_eq!(
            credentials(
                &secrets,
                "registry.example.com:5000/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ),
            &basic("ci", "pw")
        );
    }

    #[test]
    fn docker_hub_legacy_key_matches_short_names() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}"#;
        let secrets = PullSecrets::from_dockerconfigjson(json).unwrap();
        assert_eq!(credentials(&secrets, "nginx:1.27"), &basic("hub", "pw"));
        assert_eq!(credentials(&secrets, "docker.io/acme/api"), &basic("hub", "pw"));
    }

    #[test]
    fn other_registries_and_ports_stay_anonymous() {
        let json = br#"{"auths":{"registry.example.com":{"username":"ci","password":"pw"}}}"#;
        let secrets = PullSecrets::from_dockerconfigjson(json).unwrap();
        assert_eq!(
            credentials(&secrets, "registry.example.com:5000/api:v1"),
            &RegistryCredentials::Anonymous
        );
        assert_eq!(
            credentials(&secrets, "ghcr.io/acme/api:v1"),
            &RegistryCredentials::Anonymous
        );
        assert_eq!(
            credentials(&PullSecrets::default(), "registry.example.com/api:v1"),
            &RegistryCredentials::Anonymous
        );
    }

    #[test]
    fn longest_repository_prefix_wins_on_segment_boundaries() {
        let json = br#"{"auths":{
            "registry.example.com":{"username":"all","password":"pw"},
            "registry.example.com/team-a":{"username":"team-a","password":"pw"}
        }}"#;
        let secrets = PullSecrets::from_dockerconfigjson(json).unwrap();
        assert_eq!(
            credentials(&secrets, "registry.example.com/team-a/api:v1"),
            &basic("team-a", "pw")
        );
        assert_eq!(
            credentials(&secrets, "registry.example.com/team-ab/api:v1"),
            &basic("all", "pw")
        );
    }

    #[test]
    fn earlier_secret_wins_over_an_equally_specific_later_one() {
        let mut secrets = PullSecrets::from_dockerconfigjson(
            br#"{"auths":{"registry.example.com":{"username":"first","password":"pw"}}}"#,
        )
        .unwrap();
        secrets.extend(
            PullSecrets::from_dockerconfigjson(
                br#"{"auths":{"registry.example.com":{"username":"second","password":"pw"}}}"#,
            )
            .unwrap(),
        );
        assert_eq!(
            credentials(&secrets, "registry.example.com/api"),
            &basic("first", "pw")
        );
    }

    #[test]
    fn unusable_entries_are_refused_with_their_registry() {
        let cases: [(&[u8], &str); 3] = [
            (
                br#"{"auths":{"r.example.com":{"auth":"%%%"}}}"#,
                "pull secret entry for registry \"r.example.com\" is unusable: `auth` is not base64",
            ),
            (
                br#"{"auths":{"r.example.com":{"auth":"Y2ktb25seQ=="}}}"#,
                "pull secret entry for registry \"r.example.com\" is unusable: `auth` is not `username:password`",
            ),
            (
                br#"{"auths":{"r.example.com":{"username":"ci"}}}"#,
                "pull secret entry for registry \"r.example.com\" is unusable: it has neither `auth` nor `username` and `password`",
            ),
        ];
        for (json, message) in cases {
            let error = PullSecrets::from_dockerconfigjson(json).unwrap_err();
            assert_eq!(error.to_string(), message);
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn malformed_json_is_refused() {
        let error = PullSecrets::from_dockerconfigjson(br#"{"auths":"#).unwrap_err();
        assert!(
            matches!(error, RegistryError::InvalidPullSecret { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        assert_eq!(
            format!("{:?}", basic("ci", "hunter2")),
            r#"Basic { username: "ci", password: "<redacted>" }"#
        );
    }
}
