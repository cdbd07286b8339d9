//! quicsend_native: a flat C ABI over a sans-IO QUIC engine (quinn-proto with
//! rustls on ring) for the QuicSend .NET library.
//!
//! Rules every export follows: opaque handles, blittable structs, integer
//! status codes (negative = error) with a per-thread message from
//! `qs_last_error`, `catch_unwind` around every body, and a `_free` for every
//! object handed out. The caller serialises calls on one endpoint.

pub mod addr;
pub mod config;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod h3;
pub mod h3api;
pub mod live;
pub mod stream;
pub mod verify;

/// Copies the library's version and engine description into `buf`; returns the full length.
#[no_mangle]
pub extern "C" fn qs_version(buf: *mut u8, cap: usize) -> i64 {
    let text = concat!("quicsend_native ", env!("CARGO_PKG_VERSION"));
    std::panic::catch_unwind(|| error::copy_text(text, buf, cap)).unwrap_or(0)
}
