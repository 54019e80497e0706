//! jemalloc's options for a process that runs the operator or an agent,
//! which the binaries export as `malloc_conf` (jemalloc reads it before
//! `main`; `_RJEM_MALLOC_CONF` in the environment still overrides it).
//!
//! Without a background thread jemalloc gives freed pages back to the
//! system only as a side effect of later allocations, ten seconds after
//! they were freed: an operator that went quiet after a relist, a burst of
//! promotions or a retention pass stayed resident at that peak. With one,
//! they go back a second after they were freed, whether the process
//! allocates or not (README, Performance).

use std::ffi::CStr;

/// `background_thread`: purge off the reconciles' path; `dirty_decay_ms`:
/// how long freed pages stay for reuse before they are purged;
/// `muzzy_decay_ms:0`: purged pages are returned at once.
pub const MALLOC_CONF: &CStr = c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
