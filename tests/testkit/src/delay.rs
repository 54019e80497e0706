//! A slow network for chosen requests of a test client: they are held back
//! before they are sent, so the API server (stand-in or real) sees them late
//! and the code under test is caught in the middle of what it does.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

/// Which requests are held back, by method and URI (path and query: a
/// watch is told from a list by `watch=true`), and for how long.
pub type Slowness = fn(&http::Method, &http::Uri) -> Option<Duration>;

/// The layer of [`Delayed`].
#[derive(Clone, Copy)]
pub struct DelayLayer(pub Slowness);

impl<S> Layer<S> for DelayLayer {
    type Service = Delayed<S>;
    fn layer(&self, inner: S) -> Delayed<S> {
        Delayed {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            slowness: self.0,
        }
    }
}

/// Holds back the requests its [`Slowness`] picks, then passes them on.
pub struct Delayed<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    slowness: Slowness,
}

impl<S, B> Service<http::Request<B>> for Delayed<S>
where
    S: Service<http::Request<B>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        // Readiness is awaited per request, after its delay.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let delay = (self.slowness)(request.method(), request.uri());
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let sent = {
                let mut service = inner.lock().await;
                service.ready().await?.call(request)
            };
            sent.await
        })
    }
}
