//! `/healthz` (fails once a controller or watch has died), `/readyz`
//! (ready once every cache has listed, until shutdown; names the caches
//! still listing) and `/metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::leader::Leadership;
use super::readiness::Readiness;

/// What the probes and the scraper see.
pub struct Health {
    readiness: Readiness,
    /// Why the operator is failing (a controller or watch died), once it is.
    failure: Mutex<Option<String>>,
    registry: Registry,
    /// Ready only while leading (an agent: one per cluster works), with
    /// the Lease named in the reason a standby gives.
    lead_required: Option<(Leadership, String)>,
    /// Said after `ready`: the target kinds this cluster does not serve.
    unserved: String,
}

impl Health {
    pub fn new(readiness: Readiness, registry: Registry) -> Self {
        Health {
            readiness,
            failure: Mutex::new(None),
            registry,
            lead_required: None,
            unserved: String::new(),
        }
    }

    /// Says in `/readyz` that Environments targeting `kinds` are invalid
    /// here (the cluster does not serve them).
    pub fn with_unserved(mut self, kinds: &std::collections::BTreeSet<crate::api::WorkloadKind>) -> Self {
        self.unserved = kinds
            .iter()
            .map(|kind| {
                format!(
                    "{kind} ({}) is not served here: targets of this kind are invalid\n",
                    kind.api_version()
                )
            })
            .collect();
        self
    }

    /// Says ready only while `leadership` leads: a standby names the
    /// holder of `lease` (namespace/name) that keeps it waiting.
    pub fn requiring_lead(mut self, leadership: Leadership, lease: String) -> Self {
        self.lead_required = Some((leadership, lease));
        self
    }

    /// Records that the operator cannot go on; `/healthz` and `/readyz` fail from now on.
    pub fn fail(&self, why: String) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failure.get_or_insert(why);
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `/healthz`: the status code and body.
    pub fn liveness(&self) -> (StatusCode, String) {
        match self.failure() {
            Some(why) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")),
            None => (StatusCode::OK, "ok\n".into()),
        }
    }

    /// `/readyz`: the status code and body.
    pub fn readiness(&self) -> (StatusCode, String) {
        if let Some(why) = self.failure() {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"));
        }
        if self.readiness.is_stopping() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shutting down\n".into(),
            );
        }
        if let Some((leadership, lease)) = &self.lead_required
            && !leadership.is_leading()
        {
            let holder = leadership.other_holder().map_or_else(
                || "has no other holder yet".to_owned(),
                |holder| format!("is held by {holder}"),
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: standby: Lease {lease} {holder}; only its holder works, this replica ({}) \
                     takes over when it is not renewed\n",
                    leadership.identity()
                ),
            );
        }
        if self.readiness.is_ready() {
            return (StatusCode::OK, format!("ready\n{}", self.unserved));
        }
        let unlisted: Vec<String> = self
            .readiness
            .unlisted()
            .into_iter()
            .map(|(name, error)| match error {
                Some(error) => format!("{name} ({error})"),
                None => name.to_string(),
            })
            .collect();
        let body = if unlisted.is_empty() {
            "not ready: caches listed, starting\n".to_string()
        } else {
            format!("not ready: caches still listing: {}\n", unlisted.join(", "))
        };
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

fn respond(status: StatusCode, body: String, content_type: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn route(health: &Health, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/healthz" => {
            let (status, body) = health.liveness();
            respond(status, body, "text/plain")
        }
        "/readyz" => {
            let (status, body) = health.readiness();
            respond(status, body, "text/plain")
        }
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &health.registry) {
                Ok(()) => respond(
                    StatusCode::OK,
                    body,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(error) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{error}\n"),
                    "text/plain",
                ),
            }
        }
        _ => respond(StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
    }
}

/// Binds `address` and serves until the returned task is aborted (it is
/// one of the supervisor's tasks). Returns the bound address (useful with
/// port 0) and the serving task.
pub async fn serve(
    address: SocketAddr,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a health connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let health = Arc::clone(&health);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let response = route(&health, request.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, "health connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}
