//! `hoist_api_requests_total{verb, resource}`: every request the operator's
//! client sends to the API server, counted by a layer of the client itself,
//! so the load Hoist puts on the API server is visible on any cluster (and
//! the benchmark reads it the same way on the stand-in and on a real one).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::util::MapRequestLayer;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, …
    pub verb: &'static str,
    /// `deployments`, `promotions/status`, …
    pub resource: String,
}

/// The counters, shared by the client layer and the metrics registry.
#[derive(Clone, Debug, Default)]
pub struct ApiRequests(Family<RequestLabel, Counter>);

impl ApiRequests {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            super::metrics::API_REQUESTS,
            "Requests sent to the Kubernetes API, by verb and resource",
            self.0.clone(),
        );
    }

    /// A client of `config` that counts its requests here.
    pub fn client(&self, config: kube::Config) -> Result<kube::Client, kube::Error> {
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&self.layer())
            .build())
    }

    /// A client layer that counts every request it passes on.
    pub fn layer<B>(
        &self,
    ) -> MapRequestLayer<impl Fn(http::Request<B>) -> http::Request<B> + Clone + Send + Sync + 'static> {
        let family = self.0.clone();
        MapRequestLayer::new(move |request: http::Request<B>| {
            let (verb, resource) = classify(
                request.method(),
                request.uri().path(),
                request.uri().query().unwrap_or_default(),
            );
            family.get_or_create(&RequestLabel { verb, resource }).inc();
            request
        })
    }
}

/// The Kubernetes verb and the resource (with its subresource) of a request,
/// as the API server's audit log names them.
pub fn classify(method: &http::Method, path: &str, query: &str) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // After `/api/v1` or `/apis/<group>/<version>`.
    let rest: &[&str] = match segments.first() {
        Some(&"api") if segments.len() >= 2 => &segments[2..],
        Some(&"apis") if segments.len() >= 3 => &segments[3..],
        // Not a resource (`/version`, discovery).
        _ => return (verb_of(method, true, false), "other".into()),
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named, subresource) = match rest {
        // A group version's discovery document (`/apis/<group>/<version>`,
        // `/api/v1`): the operator reads admissionregistration.k8s.io/v1's
        // at start to learn whether ValidatingAdmissionPolicy is served.
        [] => return (verb_of(method, true, false), "discovery".into()),
        [resource] => (*resource, false, None),
        [resource, _name] => (*resource, true, None),
        [resource, _name, subresource, ..] => (*resource, true, Some(*subresource)),
    };
    let watch = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let resource = match subresource {
        Some(subresource) => format!("{resource}/{subresource}"),
        None => resource.to_string(),
    };
    (verb_of(method, named, watch), resource)
}

fn verb_of(method: &http::Method, named: bool, watch: bool) -> &'static str {
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    #[test]
    fn requests_are_named_by_verb_and_resource() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/shop/configmaps/base",
                "",
                ("get", "configmaps"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                "limit=500",
                ("list", "namespaces"),
            ),
            (Method::GET, "/api/v1/namespaces/shop", "", ("get", "namespaces")),
            (
                Method::GET,
                "/apis/apps/v1/deployments",
                "labelSelector=hoist.dev%2Fenvironment&watch=true&resourceVersion=5",
                ("watch", "deployments"),
            ),
            (
                Method::GET,
                "/apis/hoist.dev/v1alpha1/namespaces/shop/promotions",
                "limit=500",
                ("list", "promotions"),
            ),
            (
                Method::PATCH,
                "/apis/hoist.dev/v1alpha1/namespaces/shop/promotions/to-prod/status",
                "fieldManager=hoist&force=true",
                ("patch", "promotions/status"),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/shop-dev/deployments/backend",
                "",
                ("patch", "deployments"),
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/shop/events",
                "",
                ("create", "events"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/configmaps/hoist-dev-0123",
                "",
                ("delete", "configmaps"),
            ),
            (
                Method::GET,
                "/apis/admissionregistration.k8s.io/v1",
                "",
                ("get", "discovery"),
            ),
            (Method::GET, "/api/v1", "", ("get", "discovery")),
            (Method::GET, "/version", "", ("get", "other")),
        ];
        for (method, path, query, (verb, resource)) in cases {
            assert_eq!(
                classify(&method, path, query),
                (verb, resource.to_string()),
                "{method} {path}?{query}"
            );
        }
    }
}
