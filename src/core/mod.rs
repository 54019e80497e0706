//! Pure decisions: no I/O here. Everything the operator decides is a
//! function of a snapshot of objects, so it is tested without a cluster and
//! shared by the controllers and `hoist render`.

pub mod admission;
pub mod agents;
pub mod artifact;
pub mod clusters;
pub mod conditions;
pub mod config;
pub mod destinations;
pub mod dora;
pub mod duration;
pub mod environment;
pub mod gates;
pub mod gitops;
pub mod kstatus;
pub mod lease;
pub mod notifications;
pub mod operator_config;
pub mod reasons;
pub mod reference;
pub mod registry_retention;
pub mod retention;
pub mod supply_chain;
pub mod tenancy;
pub mod tiers;
pub mod version;
pub mod workload;
