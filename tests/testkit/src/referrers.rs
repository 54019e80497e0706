//! A registry with the OCI 1.1 referrers API, for tests: a reverse proxy on
//! `127.0.0.1` in front of the test registry (Debian's docker-registry 2.8,
//! which has no referrers API). It forwards every request unchanged and adds
//! what a registry with the API does: it records the descriptor of each
//! manifest pushed with a `subject`, acknowledges it with `OCI-Subject`, and
//! answers `GET /v2/<name>/referrers/<digest>` with an image index of them
//! (`tests/standin/README.md`, "Registry referrers API (testkit)", says
//! what it matches and what it leaves out).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::registry::PushedImage;

/// Response header acknowledging a manifest's `subject`.
pub const OCI_SUBJECT: &str = "OCI-Subject";
/// Response header naming the referrers filters applied.
pub const OCI_FILTERS_APPLIED: &str = "OCI-Filters-Applied";
const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum ReferrersRegistryError {
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),

    #[error("cannot build the HTTP client to {upstream}")]
    Client {
        upstream: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The proxy; stops when dropped.
pub struct ReferrersRegistry {
    state: Arc<State>,
    server: JoinHandle<()>,
}

struct State {
    address: String,
    upstream: String,
    client: reqwest::Client,
    /// Descriptors of the manifests pushed with a subject, by repository and
    /// subject digest, in push order.
    referrers: Mutex<BTreeMap<(String, String), Vec<Value>>>,
    referrers_requests: AtomicUsize,
    subjects_recorded: AtomicUsize,
}

impl ReferrersRegistry {
    /// Starts the proxy in front of `upstream` (`host:port`, plain HTTP).
    pub async fn start(upstream: &str) -> Result<Self, ReferrersRegistryError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ReferrersRegistryError::Bind)?;
        let address = listener
            .local_addr()
            .map_err(ReferrersRegistryError::Bind)?
            .to_string();
        // Redirects and Location headers go back to the client as they are
        // (rewritten to the proxy), never followed here.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|source| ReferrersRegistryError::Client {
                upstream: upstream.to_owned(),
                source,
            })?;
        let state = Arc::new(State {
            address,
            upstream: upstream.to_owned(),
            client,
            referrers: Mutex::default(),
            referrers_requests: AtomicUsize::new(0),
            subjects_recorded: AtomicUsize::new(0),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(Self { state, server })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.state.address
    }

    /// `image` (pushed to the upstream registry) as addressed through the
    /// proxy: same repository, tag and digest.
    pub fn image(&self, image: &PushedImage) -> PushedImage {
        let path = image
            .reference
            .split_once('/')
            .map_or(image.reference.as_str(), |(_registry, path)| path);
        PushedImage {
            reference: format!("{}/{path}", self.state.address),
            digest: image.digest.clone(),
        }
    }

    /// `GET /v2/<name>/referrers/<digest>` requests answered so far.
    pub fn referrers_requests(&self) -> usize {
        self.state.referrers_requests.load(Ordering::SeqCst)
    }

    /// Manifests with a `subject` that the upstream accepted and the proxy
    /// recorded so far.
    pub fn subjects_recorded(&self) -> usize {
        self.state.subjects_recorded.load(Ordering::SeqCst)
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        // The connections are in the server task's JoinSet and stop with it.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _peer)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            // A client that hangs up mid-request is the client's business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {error}"),
            ));
        }
    };
    let path = parts.uri.path();
    if parts.method == Method::GET
        && let Some((repository, digest)) = referrers_path(path)
    {
        return Ok(state.referrers(repository, digest, parts.uri.query()));
    }
    let pushed_manifest = (parts.method == Method::PUT)
        .then(|| manifest_repository(path))
        .flatten()
        .map(str::to_owned);

    let mut response = match state.forward(&parts, body.clone()).await {
        Ok(response) => response,
        Err(error) => {
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                format!("forwarding to {}: {error}", state.upstream),
            ));
        }
    };
    if let Some(repository) = pushed_manifest
        && response.status() == StatusCode::CREATED
    {
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let digest = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| digest_of(&body), str::to_owned);
        if let Some((subject, descriptor)) = referrer_descriptor(&body, content_type, digest)
            && let Ok(value) = HeaderValue::from_str(&subject)
        {
            state.record(repository, subject, descriptor);
            response.headers_mut().insert(OCI_SUBJECT, value);
        }
    }
    Ok(response)
}

impl State {
    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, reqwest::Error> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = self.client.request(
            parts.method.clone(),
            format!("http://{}{path_and_query}", self.upstream),
        );
        for (name, value) in &parts.headers {
            // reqwest sets Host and Content-Length for the upstream itself.
            if !is_hop_by_hop(name) && name != HOST && name != CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        if !body.is_empty() || parts.headers.contains_key(CONTENT_LENGTH) {
            request = request.body(body);
        }
        let upstream = request.send().await?;
        let status = upstream.status();
        let headers = upstream.headers().clone();
        let mut response = Response::new(Full::new(upstream.bytes().await?));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if is_hop_by_hop(name) {
                continue;
            }
            let value = if name == LOCATION {
                self.rewrite_location(value)
            } else {
                value.clone()
            };
            response.headers_mut().append(name, value);
        }
        Ok(response)
    }

    /// docker-registry answers blob uploads with absolute Locations built
    /// from the Host it was asked for, here the upstream's: the client must
    /// come back through the proxy.
    fn rewrite_location(&self, value: &HeaderValue) -> HeaderValue {
        let upstream_base = format!("http://{}", self.upstream);
        value
            .to_str()
            .ok()
            .and_then(|location| location.strip_prefix(&upstream_base))
            .and_then(|rest| HeaderValue::from_str(&format!("http://{}{rest}", self.address)).ok())
            .unwrap_or_else(|| value.clone())
    }

    fn record(&self, repository: String, subject: String, descriptor: Value) {
        let mut referrers = self.referrers.lock().unwrap_or_else(PoisonError::into_inner);
        let list = referrers.entry((repository, subject)).or_default();
        // The same manifest pushed again is one referrer.
        list.retain(|existing| existing["digest"] != descriptor["digest"]);
        list.push(descriptor);
        self.subjects_recorded.fetch_add(1, Ordering::SeqCst);
    }

    fn referrers(&self, repository: &str, digest: &str, query: Option<&str>) -> Response<Full<Bytes>> {
        self.referrers_requests.fetch_add(1, Ordering::SeqCst);
        if !is_valid_digest(digest) {
            let error = json!({"errors": [{
                "code": "DIGEST_INVALID",
                "message": "provided digest did not match uploaded content",
                "detail": {"digest": digest},
            }]});
            return with_body(StatusCode::BAD_REQUEST, "application/json", error.to_string());
        }
        let artifact_types = artifact_type_filter(query);
        let manifests: Vec<Value> = self
            .referrers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(repository.to_owned(), digest.to_owned()))
            .into_iter()
            .flatten()
            .filter(|descriptor| {
                artifact_types.is_empty()
                    || descriptor["artifactType"]
                        .as_str()
                        .is_some_and(|t| artifact_types.iter().any(|wanted| wanted == t))
            })
            .cloned()
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": manifests});
        let mut response = with_body(StatusCode::OK, IMAGE_INDEX, index.to_string());
        if !artifact_types.is_empty() {
            response
                .headers_mut()
                .insert(OCI_FILTERS_APPLIED, HeaderValue::from_static("artifactType"));
        }
        response
    }
}

/// `(name, digest)` of `/v2/<name>/referrers/<digest>`.
fn referrers_path(path: &str) -> Option<(&str, &str)> {
    let (name, digest) = path.strip_prefix("/v2/")?.rsplit_once("/referrers/")?;
    (!name.is_empty() && !digest.is_empty() && !digest.contains('/')).then_some((name, digest))
}

/// `name` of `/v2/<name>/manifests/<reference>`.
fn manifest_repository(path: &str) -> Option<&str> {
    let (name, reference) = path.strip_prefix("/v2/")?.rsplit_once("/manifests/")?;
    (!name.is_empty() && !reference.is_empty() && !reference.contains('/')).then_some(name)
}

/// The subject digest of a pushed manifest, and the descriptor the referrers
/// list holds for it: the manifest's media type, digest and size, its
/// `artifactType` (for an image manifest without one, its config's media
/// type) and its annotations.
fn referrer_descriptor(body: &[u8], content_type: Option<&str>, digest: String) -> Option<(String, Value)> {
    let manifest: Value = serde_json::from_slice(body).ok()?;
    let subject = manifest["subject"]["digest"].as_str()?.to_owned();
    let media_type = manifest["mediaType"].as_str().or(content_type)?;
    let is_index = media_type == IMAGE_INDEX || media_type == DOCKER_MANIFEST_LIST;
    let artifact_type = manifest["artifactType"]
        .as_str()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            (!is_index)
                .then(|| manifest["config"]["mediaType"].as_str())
                .flatten()
        });
    let mut descriptor = json!({"mediaType": media_type, "digest": digest, "size": body.len()});
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = manifest["annotations"].as_object().filter(|a| !a.is_empty()) {
        descriptor["annotations"] = Value::Object(annotations.clone());
    }
    Some((subject, descriptor))
}

/// The `artifactType` values of the query, if any.
fn artifact_type_filter(query: Option<&str>) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    reqwest::Url::parse(&format!("http://proxy/?{query}"))
        .map(|url| {
            url.query_pairs()
                .filter(|(key, value)| key == "artifactType" && !value.is_empty())
                .map(|(_, value)| value.into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `<algorithm>:<encoded>` as the OCI image spec defines digests, with
/// sha256's exact form.
fn is_valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    let sha256_ok = algorithm != "sha256"
        || (encoded.len() == 64
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    algorithm_ok && encoded_ok && sha256_ok
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .contains(&name.as_str())
}

fn digest_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::from("sha256:"), |mut hex, byte| {
            hex.push_str(&format!("{byte:02x}"));
            hex
        })
}

fn with_body(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    with_body(status, "text/plain; charset=utf-8", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "sha256:5e140a61e16155b30356685a6801e5250339bfb11370e70573d28d4ff2dc89cf";

    #[test]
    fn paths_name_the_repository_with_its_slashes() {
        assert_eq!(
            referrers_path(&format!("/v2/hoist-test/api-1/backend/referrers/{SUBJECT}")),
            Some(("hoist-test/api-1/backend", SUBJECT))
        );
        assert_eq!(referrers_path("/v2/a/referrers/b/manifests/c"), None);
        assert_eq!(manifest_repository("/v2/a/b/manifests/v1"), Some("a/b"));
        assert_eq!(manifest_repository("/v2/a/b/blobs/uploads/x"), None);
    }

    #[test]
    fn descriptor_takes_the_artifact_type_else_the_config_media_type() {
        let manifest = |artifact_type: Option<&str>| {
            let mut manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.example.config", "digest": SUBJECT, "size": 2},
                "layers": [],
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SUBJECT, "size": 9},
                "annotations": {"org.example": "yes"},
            });
            if let Some(artifact_type) = artifact_type {
                manifest["artifactType"] = json!(artifact_type);
            }
            serde_json::to_vec(&manifest).expect("manifest")
        };
        let with_type = manifest(Some("application/vnd.example.sig"));
        let without_type = manifest(None);

        let (subject, descriptor) =
            referrer_descriptor(&with_type, None, "sha256:d".to_owned()).expect("referrer");
        let (_, fallback) =
            referrer_descriptor(&without_type, None, "sha256:e".to_owned()).expect("referrer");

        assert_eq!(subject, SUBJECT);
        assert_eq!(
            descriptor,
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:d",
                "size": with_type.len(),
                "artifactType": "application/vnd.example.sig",
                "annotations": {"org.example": "yes"},
            })
        );
        assert_eq!(fallback["artifactType"], "application/vnd.example.config");
    }

    #[test]
    fn manifests_without_subject_are_not_referrers() {
        let manifest = json!({"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": []});
        let body = serde_json::to_vec(&manifest).expect("manifest");
        assert_eq!(referrer_descriptor(&body, None, digest_of(&body)), None);
    }

    #[test]
    fn digests_are_checked_for_syntax() {
        assert!(is_valid_digest(SUBJECT));
        assert!(is_valid_digest("sha512:abc"));
        assert!(!is_valid_digest("sha256:abc"));
        assert!(!is_valid_digest("latest"));
        assert!(!is_valid_digest("sha256:"));
    }

    #[test]
    fn artifact_type_filter_is_read_from_the_query() {
        assert_eq!(
            artifact_type_filter(Some("artifactType=application%2Fvnd.example%2Bjson&n=1")),
            ["application/vnd.example+json"]
        );
        assert!(artifact_type_filter(Some("n=1")).is_empty());
        assert!(artifact_type_filter(None).is_empty());
    }
}
