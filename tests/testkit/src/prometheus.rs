//! The real Prometheus of the tests (`scripts/prometheus`, started by
//! `scripts/test`): values pushed to its Pushgateway, under a group of the
//! test's own, are what its queries return about a second later.

use std::time::Duration;

use anyhow::{Context, Result, bail};

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
