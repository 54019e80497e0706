//! Hoist: promote digest-pinned artifacts through gated environments.

pub mod api;
pub mod cli;
pub mod controller;
pub mod core;
pub mod plugin;
mod reconcile;
pub mod registry;
pub mod render;
