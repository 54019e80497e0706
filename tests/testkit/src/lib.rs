//! Test helpers for Hoist's integration suites.

pub mod registry;
