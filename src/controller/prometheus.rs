//! Runs the verification queries the engine asks for against Prometheus'
//! HTTP API (`GET /api/v1/query`) and turns each answer into a measurement
//! with the pure [`verification::measure`].
//!
//! A server's address is judged by the operator's allow-list and the
//! request pinned to the address judged (see [`super::outbound`]).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::jiff::Timestamp;
use kube::Client;

use super::outbound::{OutboundError, pinned_client, secret_text, source_chain};
use crate::api::Measurement;
use crate::core::destinations::AllowList;
use crate::core::gates::verification::{self, DueQuery};

/// How long one query may take before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer read: a query result is small, and a server the
/// operator is pointed at must not make it hold a large body.
const ANSWER_LIMIT: usize = 4 << 20;

/// The operator-wide default server and the destinations it may reach.
#[derive(Clone)]
pub struct Prometheus {
    default_address: Option<String>,
    allowed: AllowList,
}

impl Prometheus {
    pub fn new(default_address: Option<String>, allowed: AllowList) -> Self {
        Prometheus {
            default_address,
            allowed,
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
        let http = match pinned_client(&self.allowed, address, QUERY_TIMEOUT).await {
            Ok(http) => http,
            Err(OutboundError::Refused(refusal)) => return verification::refused(now, &refusal),
            Err(error) => return verification::error(now, error.to_string()),
        };
        let token = match &query.bearer_token_secret {
            Some(secret) => match secret_text(client, namespace, &secret.name, &secret.key).await {
                Ok(token) => Some(token),
                Err(message) => return verification::error(now, message),
            },
            None => None,
        };
        let result = match answer(&http, address, &query.query, token.as_deref()).await {
            Ok(body) => body,
            Err(message) => return verification::error(now, message),
        };
        // The baseline goes to the same server, through the same pinned client.
        let baseline = match &query.baseline {
            Some(baseline) => Some(answer(&http, address, baseline, token.as_deref()).await),
            None => None,
        };
        verification::measure(
            &result,
            baseline
                .as_ref()
                .map(|answered| answered.as_ref().map_err(Clone::clone)),
            &query.condition,
            now,
        )
    }
}

/// Prometheus' answer to `query`, read as JSON, or why there is none.
async fn answer(
    http: &reqwest::Client,
    address: &str,
    query: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut request = http
        .get(format!("{}/api/v1/query", address.trim_end_matches('/')))
        .query(&[("query", query)]);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .map_err(|error| format!("cannot reach {address}: {}", source_chain(&error)))?;
    let status = response.status();
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if answer.len() + chunk.len() <= ANSWER_LIMIT => answer.extend_from_slice(&chunk),
            Ok(Some(_)) => {
                return Err(format!(
                    "{address} answered HTTP {status} with more than {ANSWER_LIMIT} bytes"
                ));
            }
            Ok(None) => break,
            Err(error) => {
                return Err(format!(
                    "cannot read {address}'s answer: {}",
                    source_chain(&error)
                ));
            }
        }
    }
    serde_json::from_slice::<serde_json::Value>(&answer)
        .map_err(|_| format!("{address} answered HTTP {status} without a query result"))
}
