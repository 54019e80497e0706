//! Requests to destinations a tenant's object names (a verification step's
//! Prometheus, a notification's webhook): the address is resolved here and
//! judged by the operator's allow-list ([`AllowList::admit`]); the request
//! then goes to the address judged and nowhere else: the name is pinned to
//! it, redirects are not followed and no proxy is used. And the Secret
//! values such requests carry, read when they are sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use crate::core::destinations::{AllowList, Destination, Refusal};

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub(super) enum OutboundError {
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

/// A client that reaches `address` at the one IP address `allowed`
/// admitted for it, giving up on a request after `timeout`.
pub(super) async fn pinned_client(
    allowed: &AllowList,
    address: &str,
    timeout: Duration,
) -> Result<reqwest::Client, OutboundError> {
    let destination = Destination::parse(address)?;
    let resolved: Vec<IpAddr> = match (destination.ip(), &destination.host) {
        (Some(ip), _) => vec![ip],
        (None, host) => tokio::net::lookup_host((host.to_string(), destination.port))
            .await
            .map_err(|source| OutboundError::Resolve {
                address: address.to_owned(),
                source,
            })?
            .map(|socket| socket.ip())
            .collect(),
    };
    let ip = allowed.admit(&destination, &resolved)?;
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Pinned(SocketAddr::new(ip, destination.port)))
        .build()
        .map_err(|source| OutboundError::Client {
            address: address.to_owned(),
            source,
        })
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

/// The text in key `key` of Secret `name`, without surrounding whitespace.
pub(super) async fn secret_text(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|error| format!("cannot read Secret {name}: {error}"))?
        .ok_or_else(|| format!("Secret {name} not found in namespace {namespace}"))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| format!("Secret {name} has no key {key}"))?;
    String::from_utf8(value.0.clone())
        .map(|text| text.trim().to_string())
        .map_err(|_| format!("key {key} of Secret {name} is not text"))
}

/// An error and its sources, as one line.
pub(super) fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
