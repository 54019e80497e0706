//! The Hoist API: custom resources in group `hoist.dev`, version `v1alpha1`.
//!
//! The doc comments on these types become the descriptions in the generated
//! CRDs (`hoist crds`), so they are written for the people who read
//! `kubectl explain`.

// kube's derive takes one `printcolumn(...)` per column, each with a `type_`,
// which clippy mistakes for a repeated attribute.
#![allow(clippy::duplicated_attributes)]

mod artifact;
mod environment;
mod promotion;

pub use artifact::*;
pub use environment::*;
pub use promotion::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every Hoist resource.
pub const GROUP: &str = "hoist.dev";
/// The API version served and stored.
pub const VERSION: &str = "v1alpha1";

/// An RFC 1123 DNS label: what Kubernetes accepts as a namespace or a
/// Service name, and what Hoist accepts as an application or component name.
pub(crate) const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS subdomain, the name of most Kubernetes objects.
pub(crate) const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A content digest as registries report it.
pub(crate) const DIGEST: &str = r"^sha256:[a-f0-9]{64}$";

/// The CustomResourceDefinitions of every Hoist kind, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Artifact::crd(), Environment::crd(), Promotion::crd()]
}

/// The CRDs as one multi-document YAML stream, as checked in under `crds/`.
pub fn crds_yaml() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let file = format!("{}.yaml", crd.spec.names.plural);
            serde_yaml::to_string(&crd).map(|yaml| (file, yaml))
        })
        .collect()
}

/// A reference to a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
}

/// The summary condition type every Hoist resource carries.
pub const CONDITION_READY: &str = "Ready";
