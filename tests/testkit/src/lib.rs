//! Test helpers for Hoist.

pub mod registry;
