//! Tag-to-digest resolution with a shared cache and per-registry limits.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::{Client, Reference};
use tokio::sync::{OnceCell, Semaphore};

use super::RegistryError;
use super::credentials::{PullSecrets, RegistryCredentials};
use crate::core::reference::{parse_image, pinned_reference};

const DEFAULT_MAX_CONCURRENT_PER_REGISTRY: NonZeroUsize = NonZeroUsize::new(4).unwrap();

/// How a [`Resolver`] talks to registries.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// Registries spoken to over plain HTTP, as `host[:port]` exactly as
    /// written in image references (e.g. `127.0.0.1:5000`). Every other
    /// registry is HTTPS only.
    pub insecure_registries: Vec<String>,
    /// Manifest lookups in flight at once against one registry host, so a
    /// burst of new Artifacts does not trip the registry's rate limits.
    pub max_concurrent_per_registry: NonZeroUsize,
    /// Limit for one lookup, covering connect, authentication and response.
    pub request_timeout: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            max_concurrent_per_registry: DEFAULT_MAX_CONCURRENT_PER_REGISTRY,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Resolves image references to manifest digests and remembers every answer.
///
/// Clones share one cache, so the whole operator asks the registry at most
/// once per distinct (normalised) reference: a tag resolved once keeps its
/// digest for the life of the resolver even if the tag moves, and a pinned
/// digest verified once is not checked again. Failures are not cached.
/// Entries are never evicted: there is one per image reference the operator
/// has seen, and each is a few hundred bytes.
///
/// The cache is keyed by reference alone, not by who asked: a tenant without
/// access to a private image can learn its digest (not its content) once
/// another tenant has resolved it.
#[derive(Clone)]
pub struct Resolver {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) config: ResolverConfig,
    digests: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
    // One oci-client per registry and credentials: a client keeps the first
    // credentials and the tokens it obtained per registry, which must never be
    // used on behalf of a tenant with other (or no) credentials.
    clients: Mutex<HashMap<(String, RegistryCredentials), Client>>,
    pub(super) limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub(super) registry_requests: AtomicU64,
}

impl Resolver {
    pub fn new(config: ResolverConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                digests: Mutex::default(),
                clients: Mutex::default(),
                limits: Mutex::default(),
                registry_requests: AtomicU64::new(0),
            }),
        }
    }

    /// The manifest digest of `image` (a tag or a digest reference). A digest
    /// reference is verified to exist. With `expected_digest`, the registry's
    /// digest must equal it. For a multi-platform image this is the index
    /// digest, which is what a pod should pin.
    pub async fn resolve(
        &self,
        image: &str,
        expected_digest: Option<&str>,
        pull_secrets: &PullSecrets,
    ) -> Result<String, RegistryError> {
        let reference = parse_image(image)?;
        if let Some(expected) = expected_digest {
            pinned_reference(image, expected)?;
        }
        let key = reference.whole();
        let cell = Arc::clone(lock(&self.shared.digests).entry(key.clone()).or_default());
        // Concurrent callers for one reference wait for the first lookup
        // instead of each asking the registry; if it fails, the next waiter
        // asks in turn.
        let actual = match cell
            .get_or_try_init(|| self.fetch_digest(&reference, image, pull_secrets))
            .await
        {
            Ok(actual) => actual,
            Err(error) => {
                self.forget_unresolved(&key, &cell);
                return Err(error);
            }
        };
        match expected_digest {
            Some(expected) if expected != actual => Err(RegistryError::DigestMismatch {
                reference: image.to_owned(),
                expected: expected.to_owned(),
                actual: actual.clone(),
            }),
            _ => Ok(actual.clone()),
        }
    }

    /// Manifest lookups sent to registries so far (cache misses, including
    /// failed ones). One lookup may take several HTTP requests on the wire:
    /// HEAD, a GET when HEAD carries no digest, and authentication.
    pub fn registry_requests(&self) -> u64 {
        self.shared.registry_requests.load(Ordering::Relaxed)
    }

    /// Drops the empty cache entry a failed lookup left, so references that
    /// never resolve (typos, deleted tags) do not accumulate.
    fn forget_unresolved(&self, key: &str, cell: &Arc<OnceCell<String>>) {
        let mut digests = lock(&self.shared.digests);
        if let Some(current) = digests.get(key)
            && Arc::ptr_eq(current, cell)
            && !cell.initialized()
        {
            digests.remove(key);
        }
    }

    async fn fetch_digest(
        &self,
        reference: &Reference,
        image: &str,
        pull_secrets: &PullSecrets,
    ) -> Result<String, RegistryError> {
        let registry = reference.resolve_registry();
        let credentials = pull_secrets.credentials_for(reference);
        let client = self.client_for(registry, credentials, image)?;
        let _permit = self.permit(registry).await;
        let timeout = self.shared.config.request_timeout;
        let auth = credentials.into();
        let lookup = client.fetch_manifest_digest(reference, &auth);
        match tokio::time::timeout(timeout, lookup).await {
            Ok(Ok(digest)) => Ok(digest),
            Ok(Err(error)) => Err(classify(image, registry, error)),
            Err(_elapsed) => Err(RegistryError::TimedOut {
                reference: image.to_owned(),
                after: timeout,
            }),
        }
    }

    /// A turn among the lookups in flight against `registry`, counted as
    /// one registry lookup.
    pub(super) async fn permit(&self, registry: &str) -> tokio::sync::OwnedSemaphorePermit {
        let limit = Arc::clone(
            lock(&self.shared.limits)
                .entry(registry.to_owned())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(
                        self.shared.config.max_concurrent_per_registry.get(),
                    ))
                }),
        );
        let permit = limit
            .acquire_owned()
            .await
            .expect("per-registry semaphores are never closed");
        self.shared.registry_requests.fetch_add(1, Ordering::Relaxed);
        permit
    }

    pub(super) fn client_for(
        &self,
        registry: &str,
        credentials: &RegistryCredentials,
        image: &str,
    ) -> Result<Client, RegistryError> {
        let mut clients = lock(&self.shared.clients);
        let key = (registry.to_owned(), credentials.clone());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build_client(&self.shared.config).map_err(|source| RegistryError::ClientSetup {
            reference: image.to_owned(),
            source,
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn build_client(config: &ResolverConfig) -> Result<Client, OciDistributionError> {
    // `Client::new` would fall back to a default client on a TLS setup error;
    // `try_from` reports it instead.
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
        connect_timeout: Some(config.request_timeout),
        read_timeout: Some(config.request_timeout),
        user_agent: concat!("hoist/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

/// What the caller can do about a failed lookup.
enum Failure {
    NotFound,
    Unauthorized,
    Unavailable,
    Rejected,
    Unexpected,
}

/// Sorts an oci-client error into what the caller can do about it.
pub(super) fn classify(image: &str, registry: &str, error: OciDistributionError) -> RegistryError {
    let reference = image.to_owned();
    let failure = match &error {
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            return RegistryError::DigestMismatch {
                reference,
                expected: expected.clone(),
                actual: actual.clone(),
            };
        }
        OciDistributionError::ImageManifestNotFoundError(_) => Failure::NotFound,
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            Failure::Unauthorized
        }
        OciDistributionError::RegistryError { envelope, .. } => classify_envelope(envelope),
        OciDistributionError::ServerError { code, .. } => match code {
            404 => Failure::NotFound,
            401 | 403 => Failure::Unauthorized,
            408 | 429 | 500..=599 => Failure::Unavailable,
            400..=499 => Failure::Rejected,
            _ => Failure::Unexpected,
        },
        OciDistributionError::RequestError(request) if !request.is_builder() => Failure::Unavailable,
        _ => Failure::Unexpected,
    };
    let source = error;
    match failure {
        Failure::NotFound => RegistryError::NotFound { reference, source },
        Failure::Unauthorized => RegistryError::Unauthorized {
            reference,
            registry: registry.to_owned(),
            source,
        },
        Failure::Unavailable => RegistryError::Unavailable { reference, source },
        Failure::Rejected => RegistryError::Rejected { reference, source },
        Failure::Unexpected => RegistryError::UnexpectedResponse { reference, source },
    }
}

fn classify_envelope(envelope: &OciEnvelope) -> Failure {
    let has = |wanted: &[OciErrorCode]| envelope.errors.iter().any(|e| wanted.contains(&e.code));
    if has(&[
        OciErrorCode::ManifestUnknown,
        OciErrorCode::NameUnknown,
        OciErrorCode::NotFound,
    ]) {
        Failure::NotFound
    } else if has(&[OciErrorCode::Unauthorized, OciErrorCode::Denied]) {
        Failure::Unauthorized
    } else if has(&[OciErrorCode::Toomanyrequests]) {
        Failure::Unavailable
    } else {
        Failure::Rejected
    }
}

/// The maps behind these locks stay consistent even if a holder panicked
/// (every update is a single insert), so a poisoned lock is still usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_an_https_client_does_not_panic_on_crypto_provider_choice() {
        // kube and oci-client both link rustls; if two crypto providers were
        // compiled in, rustls would panic right here.
        let config = ResolverConfig {
            insecure_registries: vec!["127.0.0.1:5000".to_owned()],
            ..ResolverConfig::default()
        };
        assert!(build_client(&config).is_ok());
    }

    #[tokio::test]
    async fn failed_lookups_leave_no_cache_entry() {
        // Nothing listens on port 1 of the loopback interface.
        let resolver = Resolver::new(ResolverConfig {
            insecure_registries: vec!["127.0.0.1:1".to_owned()],
            ..ResolverConfig::default()
        });
        let error = resolver
            .resolve("127.0.0.1:1/api:v1", None, &PullSecrets::default())
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        assert!(lock(&resolver.shared.digests).is_empty());
        assert_eq!(resolver.registry_requests(), 1);
    }

    fn envelope(code: &str) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#))
                .unwrap(),
            url: "https://r.example.com/v2/api/manifests/v1".to_owned(),
        }
    }

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "https://r.example.com/v2/api/manifests/v1".to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn registry_answers_are_classified_by_what_the_caller_can_do() {
        let cases = [
            (envelope("MANIFEST_UNKNOWN"), "NotFound", false),
            (envelope("NAME_UNKNOWN"), "NotFound", false),
            (envelope("DENIED"), "Unauthorized", false),
            (envelope("UNAUTHORIZED"), "Unauthorized", false),
            (envelope("TOOMANYREQUESTS"), "Unavailable", true),
            (envelope("NAME_INVALID"), "Rejected", false),
            (server(404), "NotFound", false),
            (server(403), "Unauthorized", false),
            (server(429), "Unavailable", true),
            (server(503), "Unavailable", true),
            (server(400), "Rejected", false),
            (
                OciDistributionError::SpecViolationError("204".to_owned()),
                "UnexpectedResponse",
                true,
            ),
        ];
        for (error, kind, transient) in cases {
            let description = error.to_string();
            let classified = classify("r.example.com/api:v1", "r.example.com", error);
            let debug = format!("{classified:?}");
            assert!(
                debug.starts_with(kind),
                "{description} became {debug}, expected {kind}"
            );
            assert_eq!(classified.is_transient(), transient, "{description}");
        }
    }
}
