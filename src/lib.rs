//! Hoist: promote digest-pinned artifacts through gated environments.

pub mod api;
pub mod registry;
