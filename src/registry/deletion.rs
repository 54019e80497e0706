//! Deleting manifests by digest (`DELETE /v2/<name>/manifests/<digest>`,
//! OCI distribution spec), for registry retention. oci-client 0.18 has no
//! delete, and its token requests ask for `pull` or `pull,push` only, while
//! a registry with token authentication wants the `delete` action: so the
//! request is plain HTTP, authenticated as oci-client authenticates
//! (the pull secret's basic credentials, or a bearer token fetched from
//! the realm the registry's `WWW-Authenticate` challenge names).

use oci_client::Reference;

use super::attachments::{cosign_tags, referrers_tag};
use super::credentials::{PullSecrets, RegistryCredentials};
use super::resolver::{Resolver, classify};
use super::{ReferenceError, RegistryError};
use crate::core::reference::parse_image;

/// Why a deletion request got no answer from the registry.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("cannot create an HTTP client for registry {registry}")]
    Client {
        registry: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("registry {registry} did not answer {url}; will retry")]
    Unavailable {
        registry: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("the token service {realm} of registry {registry} gave no usable token")]
    Token {
        registry: String,
        realm: String,
        #[source]
        source: reqwest::Error,
    },
}

impl DeletionError {
    /// Whether the same request may succeed later unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

impl Resolver {
    /// Asks `image`'s registry to delete the manifest `digest` of its
    /// repository; the HTTP status of the registry's answer (202 when
    /// deleted, 404 when unknown, 405 when the registry does not allow
    /// deletion, 401/403 when the credentials may not).
    pub async fn delete_manifest(
        &self,
        image: &str,
        digest: &str,
        pull_secrets: &PullSecrets,
    ) -> Result<u16, DeletionError> {
        let reference = parse_image(image)?;
        let registry = reference.resolve_registry().to_owned();
        let credentials = pull_secrets.credentials_for(&reference);
        let config = &self.shared.config;
        let scheme = if config.insecure_registries.contains(&registry) {
            "http"
        } else {
            "https"
        };
        let url = format!(
            "{scheme}://{registry}/v2/{}/manifests/{digest}",
            reference.repository()
        );
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| DeletionError::Client {
                registry: registry.clone(),
                source,
            })?;
        let unavailable = |source| DeletionError::Unavailable {
            registry: registry.clone(),
            url: url.clone(),
            source,
        };
        let _permit = self.permit(&registry).await;
        let first = with_basic(http.delete(&url), credentials)
            .send()
            .await
            .map_err(unavailable)?;
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first.status().as_u16());
        }
        let Some(challenge) = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(BearerChallenge::parse)
        else {
            return Ok(first.status().as_u16());
        };
        let scope = format!("repository:{}:delete", reference.repository());
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = challenge.service.as_deref() {
            query.push(("service", service));
        }
        let token_answer = with_basic(http.get(&challenge.realm).query(&query), credentials)
            .send()
            .await
            .map_err(unavailable)?;
        if !token_answer.status().is_success() {
            return Ok(token_answer.status().as_u16());
        }
        let token: Token = token_answer.json().await.map_err(|source| DeletionError::Token {
            registry: registry.clone(),
            realm: challenge.realm.clone(),
            source,
        })?;
        let answer = http
            .delete(&url)
            .bearer_auth(token.token.or(token.access_token).unwrap_or_default())
            .send()
            .await
            .map_err(unavailable)?;
        Ok(answer.status().as_u16())
    }

    /// The digests of what cosign attached to `digest` by tag in `image`'s
    /// repository (`sha256-<hex>.sig`, `.att`) and of the referrers API's
    /// tag-schema index (`sha256-<hex>`), where present.
    pub async fn attached_by_tag(
        &self,
        image: &str,
        digest: &str,
        pull_secrets: &PullSecrets,
    ) -> Result<Vec<String>, RegistryError> {
        let reference = parse_image(image)?;
        let registry = reference.resolve_registry().to_owned();
        let credentials = pull_secrets.credentials_for(&reference);
        let client = self.client_for(&registry, credentials, image)?;
        let auth = credentials.into();
        let mut tags = vec![referrers_tag(digest)];
        tags.extend(cosign_tags(digest));
        let mut found = Vec::new();
        for tag in tags {
            let tagged = Reference::with_tag(
                reference.registry().to_owned(),
                reference.repository().to_owned(),
                tag,
            );
            let _permit = self.permit(&registry).await;
            match client.fetch_manifest_digest(&tagged, &auth).await {
                Ok(attached) => found.push(attached),
                Err(error) => match classify(image, &registry, error) {
                    RegistryError::NotFound { .. } => {}
                    error => return Err(error),
                },
            }
        }
        Ok(found)
    }
}

fn with_basic(
    request: reqwest::RequestBuilder,
    credentials: &RegistryCredentials,
) -> reqwest::RequestBuilder {
    match credentials {
        RegistryCredentials::Anonymous => request,
        RegistryCredentials::Basic { username, password } => request.basic_auth(username, Some(password)),
    }
}

/// A token service's answer (Docker's token authentication specification:
/// `token`, or `access_token` as OAuth 2 services name it).
#[derive(serde::Deserialize)]
struct Token {
    token: Option<String>,
    access_token: Option<String>,
}

/// A `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge.
#[derive(Debug, PartialEq, Eq)]
struct BearerChallenge {
    realm: String,
    service: Option<String>,
}

impl BearerChallenge {
    fn parse(header: &str) -> Option<BearerChallenge> {
        let (scheme, parameters) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut realm = None;
        let mut service = None;
        let mut rest = parameters.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let (value, after) = quoted.split_once('"')?;
                    (value, after)
                }
                None => after
                    .split_once(',')
                    .map_or((after, ""), |(value, after)| (value, after)),
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value.to_owned()),
                "service" => service = Some(value.to_owned()),
                _ => {}
            }
            rest = after.trim_start_matches([',', ' ']);
        }
        Some(BearerChallenge {
            realm: realm?,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_as_docker_distribution_writes_them() {
        assert_eq!(
            BearerChallenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#
            ),
            Some(BearerChallenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            BearerChallenge::parse(r#"bearer realm="https://ghcr.io/token""#),
            Some(BearerChallenge {
                realm: "https://ghcr.io/token".into(),
                service: None,
            })
        );
        assert_eq!(BearerChallenge::parse(r#"Basic realm="hoist-test""#), None);
        assert_eq!(BearerChallenge::parse(r#"Bearer service="x""#), None);
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_transient() {
        // Nothing listens on port 1 of the loopback interface.
        let resolver = Resolver::new(super::super::ResolverConfig {
            insecure_registries: vec!["127.0.0.1:1".to_owned()],
            ..super::super::ResolverConfig::default()
        });
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let error = resolver
            .delete_manifest("127.0.0.1:1/api:v1", digest, &PullSecrets::default())
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
}
