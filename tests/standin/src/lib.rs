//! An in-process stand-in for the Kubernetes API server.
//!
//! It speaks the real REST and watch protocol over HTTP on 127.0.0.1, so the
//! unmodified `kube::Client` and `kube_runtime` machinery run against it.
//! It is a test tool: it is never linked into the `hoist` binary.

pub mod fieldmanager;
pub mod schema;
