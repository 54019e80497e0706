//! Live heap bytes of the process, counted by its global allocator: next to
//! RSS it tells data apart from allocator overhead and fragmentation. The
//! operator process writes its count to a file the bench reads.

use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The allocator `hoist controller` uses (see `src/main.rs`).
use tikv_jemallocator::Jemalloc as Inner;

/// Hoist's allocator, counting the bytes it hands out and gets back.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to jemalloc unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let pointer = unsafe { Inner.alloc(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let pointer = unsafe { Inner.alloc_zeroed(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { Inner.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let moved = unsafe { Inner.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

/// Bytes allocated and not yet freed.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Where the operator process started for `log` writes its count.
pub fn path_for(log: &Path) -> PathBuf {
    log.with_extension("heap")
}

/// Writes the count to `path` every 100 ms, from a thread of its own.
pub fn publish(path: PathBuf) {
    std::thread::spawn(move || {
        let staging = path.with_extension("heap.new");
        loop {
            if std::fs::write(&staging, live().to_string()).is_ok() {
                let _ = std::fs::rename(&staging, &path);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// The operator's last published count.
pub fn read(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
