//! Test helpers for Hoist's integration suites.

pub mod cluster;
pub mod clusters;
pub mod dashboard;
pub mod delay;
pub mod example;
pub mod health;
pub mod heartbeat;
pub mod keyless;
pub mod layout;
pub mod prometheus;
pub mod reconciles;
pub mod referrers;
pub mod registry;
pub mod rollouts;
pub mod signing;
