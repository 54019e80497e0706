//! Test helpers for Hoist's integration suites.
