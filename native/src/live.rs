//! Counts native objects that are alive, so tests can prove nothing leaks.

use std::sync::atomic::{AtomicI64, Ordering};

static LIVE: AtomicI64 = AtomicI64::new(0);

pub fn created() {
    LIVE.fetch_add(1, Ordering::Relaxed);
}

pub fn dropped() {
    LIVE.fetch_sub(1, Ordering::Relaxed);
}

/// Returns how many native objects (configs, endpoints, connections) are alive.
#[no_mangle]
pub extern "C" fn qs_live_objects() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// A token whose lifetime is counted; embed one in every native object.
pub struct Counted(());

impl Counted {
    pub fn new() -> Self {
        created();
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        dropped();
    }
}
