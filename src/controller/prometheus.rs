//! Runs the verification queries the engine asks for against Prometheus'
//! HTTP API (`GET /api/v1/query`) and turns each answer into a measurement
//! with the pure [`verification::measure`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;

use crate::api::Measurement;
use crate::core::gates::verification::{self, DueQuery};

/// How long one query may take before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for Prometheus and the operator-wide default server.
#[derive(Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    default_address: Option<String>,
}

impl Prometheus {
    pub fn new(default_address: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .build()
            .unwrap_or_default();
        Prometheus {
            http,
            default_address,
        }
    }

    /// Measures every query at `now`: Promotion → (step, measurement).
    pub async fn measure_all(
        &self,
        client: &Client,
        namespace: &str,
        queries: &[DueQuery],
        now: Timestamp,
    ) -> BTreeMap<String, (String, Measurement)> {
        let measured = join_all(queries.iter().map(|query| async move {
            let measurement = self.measure(client, namespace, query, now).await;
            tracing::debug!(promotion = query.promotion, step = query.step, outcome = ?measurement.outcome, "measured");
            (query.promotion.clone(), (query.step.clone(), measurement))
        }))
        .await;
        // One step of a Promotion runs at a time, so there is one query per Promotion.
        measured.into_iter().collect()
    }

    async fn measure(
        &self,
        client: &Client,
        namespace: &str,
        query: &DueQuery,
        now: Timestamp,
    ) -> Measurement {
        let Some(address) = query.address.as_ref().or(self.default_address.as_ref()) else {
            return verification::error(
                now,
                "no Prometheus address: set spec.gates.verification[].prometheus.address or the operator's \
                 --prometheus-address (chart value verification.prometheusAddress)"
                    .into(),
            );
        };
        let mut request = self
            .http
            .get(format!("{}/api/v1/query", address.trim_end_matches('/')))
            .query(&[("query", query.query.as_str())]);
        if let Some(secret) = &query.bearer_token_secret {
            match token(client, namespace, &secret.name, &secret.key).await {
                Ok(token) => request = request.bearer_auth(token),
                Err(message) => return verification::error(now, message),
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return verification::error(now, format!("cannot reach {address}: {}", source_chain(&error)));
            }
        };
        let status = response.status();
        match response.json::<serde_json::Value>().await {
            Ok(body) => verification::measure(&body, &query.condition, now),
            Err(_) => verification::error(
                now,
                format!("{address} answered HTTP {status} without a query result"),
            ),
        }
    }
}

/// The bearer token in key `key` of Secret `name`.
async fn token(client: &Client, namespace: &str, name: &str, key: &str) -> Result<String, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|error| format!("cannot read Secret {name}: {error}"))?
        .ok_or_else(|| format!("Secret {name} of the bearer token not found in namespace {namespace}"))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| format!("Secret {name} has no key {key}"))?;
    String::from_utf8(value.0.clone())
        .map(|token| token.trim().to_string())
        .map_err(|_| format!("key {key} of Secret {name} is not text"))
}

/// An error and its sources, as one line.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
