//! The real Prometheus of the tests (`scripts/prometheus`, started by
//! `scripts/test`): values pushed to its Pushgateway, under a group of the
//! test's own, are what its queries return about a second later.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The Prometheus server (HOIST_TEST_PROMETHEUS).
pub fn address() -> Result<String> {
    std::env::var("HOIST_TEST_PROMETHEUS").context("HOIST_TEST_PROMETHEUS is not set (run scripts/test)")
}

fn pushgateway() -> Result<String> {
    std::env::var("HOIST_TEST_PUSHGATEWAY").context("HOIST_TEST_PUSHGATEWAY is not set (run scripts/test)")
}

/// Sets `metric{labels}` (untyped, as every test pushes it) to `value` in
/// the Pushgateway group `group`, replacing what the group held.
pub async fn push(group: &str, metric: &str, labels: &str, value: f64) -> Result<()> {
    let body = format!("{metric}{{{labels}}} {value}\n");
    let response = reqwest::Client::new()
        .put(format!("{}/metrics/job/{group}", pushgateway()?))
        .body(body)
        .send()
        .await
        .context("pushing to the Pushgateway")?;
    if !response.status().is_success() {
        bail!("the Pushgateway answered HTTP {}", response.status());
    }
    Ok(())
}

/// Removes the group `group` from the Pushgateway, so its series go stale.
pub async fn delete(group: &str) -> Result<()> {
    reqwest::Client::new()
        .delete(format!("{}/metrics/job/{group}", pushgateway()?))
        .send()
        .await
        .context("deleting from the Pushgateway")?;
    Ok(())
}

/// A target the test Prometheus scrapes every second while this lives:
/// a file of its file service discovery (HOIST_TEST_PROMETHEUS_TARGETS),
/// removed on drop.
pub struct ScrapeTarget {
    file: std::path::PathBuf,
}

/// Has the test Prometheus scrape `/metrics` of `address`, under the job
/// label `job` (the metrics' own labels kept, as `honor_labels` does).
pub fn scrape(address: std::net::SocketAddr, job: &str) -> Result<ScrapeTarget> {
    let directory = std::env::var("HOIST_TEST_PROMETHEUS_TARGETS")
        .context("HOIST_TEST_PROMETHEUS_TARGETS is not set (run scripts/test)")?;
    let file = std::path::Path::new(&directory).join(format!("{job}.json"));
    let targets = serde_json::json!([{"targets": [address.to_string()], "labels": {"job": job}}]);
    // Written whole under another name, then renamed: Prometheus never
    // reads half a file.
    let partial = file.with_extension("partial");
    std::fs::write(&partial, targets.to_string()).context("writing a scrape target")?;
    std::fs::rename(&partial, &file).context("writing a scrape target")?;
    Ok(ScrapeTarget { file })
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The query's result as Prometheus returns it: the single sample's value,
/// or `None` for an empty result.
pub async fn query(query: &str) -> Result<Option<String>> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", address()?))
        .query(&[("query", query)])
        .send()
        .await
        .context("querying Prometheus")?
        .json()
        .await
        .context("reading Prometheus' answer")?;
    Ok(body["data"]["result"][0]["value"][1].as_str().map(str::to_string))
}

/// Waits until `query` returns `expected` (`None`: an empty result), for
/// at most 20 seconds: a scrape or two.
pub async fn wait_for(query_text: &str, expected: Option<&str>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = query(query_text).await?;
        if seen.as_deref() == expected {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("Prometheus returned {seen:?} for {query_text}, not {expected:?}, within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An authenticating proxy in front of the test Prometheus, as clusters put
/// one (kube-rbac-proxy, oauth2-proxy) in front of theirs: a request with
/// `Authorization: Bearer <token>` is forwarded, any other is answered 401
/// with Prometheus' error shape. Runs until the test process ends; answers
/// its address (`http://127.0.0.1:<port>`).
pub async fn bearer_proxy(token: &str) -> Result<String> {
    let upstream = address()?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the proxy")?;
    let local = listener.local_addr()?;
    let expected = format!("Bearer {token}");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let upstream = upstream.clone();
                    let expected = expected.clone();
                    async move { Ok::<_, std::convert::Infallible>(forward(request, &upstream, &expected).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{local}"))
}

async fn forward(
    request: Request<hyper::body::Incoming>,
    upstream: &str,
    expected: &str,
) -> Response<Full<Bytes>> {
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(expected);
    if !authorized {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"status":"error","errorType":"unauthorized","error":"a valid bearer token is required"}"#,
            )))
            .expect("static response");
    }
    let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match reqwest::get(format!("{upstream}{path}")).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = answer.bytes().await.unwrap_or_default();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(body))
                .expect("response")
        }
        Err(_) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::new()))
            .expect("response"),
    }
}

/// A server on 127.0.0.1 that answers every request with HTTP `status`, a
/// JSON content type and `body`, as a server a verification step is
/// pointed at may: Prometheus with an error, or another service. Runs until
/// the test process ends; answers its address (`http://127.0.0.1:<port>`).
pub async fn answering(status: StatusCode, body: String) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the server")?;
    let local = listener.local_addr()?;
    let body = Bytes::from(body);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                    let response = Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()));
                    async move { response }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{local}"))
}

/// The allow-list entry (`HOST:PORT`) of a server's address such as
/// `http://127.0.0.1:9090`.
pub fn destination(address: &str) -> Result<String> {
    let url = reqwest::Url::parse(address).with_context(|| format!("{address} is not a URL"))?;
    let host = url.host_str().with_context(|| format!("{address} has no host"))?;
    let port = url
        .port_or_known_default()
        .with_context(|| format!("{address} has no port"))?;
    Ok(format!("{host}:{port}"))
}
