//! Runs the verification queries the engine asks for against Prometheus'
//! HTTP API (`GET /api/v1/query`) and turns each answer into a measurement
//! with the pure [`verification::measure`].
//!
//! A server's address is resolved here and judged by the operator's
//! allow-list ([`AllowList::admit`]); the request then goes to the address
//! judged and nowhere else: the name is pinned to it, redirects are not
//! followed and no proxy is used.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;

use crate::api::Measurement;
use crate::core::destinations::{AllowList, Destination, Refusal};
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

/// Why a query could not be sent or its answer read.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("cannot build an HTTP client for {address}: {source}")]
    Client {
        address: String,
        #[source]
        source: reqwest::Error,
    },
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
        let http = match self.client(address).await {
            Ok(http) => http,
            Err(QueryError::Refused(refusal)) => return verification::refused(now, &refusal),
            Err(error) => return verification::error(now, error.to_string()),
        };
        let token = match &query.bearer_token_secret {
            Some(secret) => match token(client, namespace, &secret.name, &secret.key).await {
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

    /// A client that reaches `address` at the one IP address the allow-list
    /// admitted for it.
    async fn client(&self, address: &str) -> Result<reqwest::Client, QueryError> {
        let destination = Destination::parse(address)?;
        let resolved: Vec<IpAddr> = match (destination.ip(), &destination.host) {
            (Some(ip), _) => vec![ip],
            (None, host) => tokio::net::lookup_host((host.to_string(), destination.port))
                .await
                .map_err(|source| QueryError::Resolve {
                    address: address.to_owned(),
                    source,
                })?
                .map(|socket| socket.ip())
                .collect(),
        };
        let ip = self.allowed.admit(&destination, &resolved)?;
        reqwest::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Pinned(SocketAddr::new(ip, destination.port)))
            .build()
            .map_err(|source| QueryError::Client {
                address: address.to_owned(),
                source,
            })
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

/// A resolver that answers every name with the one address judged, so
/// the client never resolves a name a second time (an address in the URL
/// is connected to as written, and was judged as written).
struct Pinned(SocketAddr);

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let address = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs) })
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
