//! Behaviour of the stand-in API server, proven with an unmodified `kube::Client`.
//!
//! One test binary (modules below) keeps link time down on small machines.

mod common;

mod admission;
mod authentication;
mod authorization;
mod crd;
mod crud;
mod deletion;
mod deployments;
mod discovery;
mod faults;
mod identity;
mod lifecycle;
mod lists;
mod patch;
mod rollouts;
mod runtime;
mod status;
mod watch;
mod workloads;
