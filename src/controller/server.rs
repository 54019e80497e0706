//! `/healthz`, `/readyz` (ready once the caches have synced) and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// What the probes and the scraper see.
pub struct Health {
    pub ready: AtomicBool,
    pub registry: Registry,
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
        "/healthz" => respond(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" if health.ready.load(Ordering::Relaxed) => {
            respond(StatusCode::OK, "ready\n".into(), "text/plain")
        }
        "/readyz" => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "caches not synced yet\n".into(),
            "text/plain",
        ),
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

/// Binds `address` and serves until `shutdown` resolves. Returns the bound
/// address (useful with port 0) and the serving task.
pub async fn serve(
    address: SocketAddr,
    health: Arc<Health>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let health = Arc::clone(&health);
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let response = route(&health, request.uri().path());
                            async move { Ok::<_, std::convert::Infallible>(response) }
                        });
                        if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(%error, "health connection ended");
                        }
                    });
                }
            }
        }
    });
    Ok((bound, task))
}
