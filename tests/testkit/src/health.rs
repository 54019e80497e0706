//! Reading the operator's health server (`/healthz`, `/readyz`, `/metrics`)
//! from a test.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET of `path`: the status code and body; `None` when the server does
/// not answer within a few seconds.
pub async fn get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()??;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

/// The value of one sample of `/metrics`, e.g. `hoist_caches_unlisted` or
/// `hoist_reconciliations_total{controller="artifact"}`; 0 when absent.
pub async fn metric(address: SocketAddr, sample: &str) -> f64 {
    let Some((200, body)) = get(address, "/metrics").await else {
        return 0.0;
    };
    body.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}
