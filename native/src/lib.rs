//! quicsend_native: a flat, sans-IO C ABI over Cloudflare quiche (QUIC, HTTP/3,
//! BBRv2) for the QuicSend .NET library.
//!
//! Rules every export follows: opaque handles, blittable structs, integer
//! status codes (negative = error) with a per-thread message from
//! `qs_last_error`, `catch_unwind` around every body, and a `_free` for every
//! object handed out. The caller serialises calls on one endpoint.

pub mod addr;
mod boring;
pub mod config;
mod conn;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod h3api;
pub mod intake;
pub mod live;
mod memfile;
mod refuse;
mod retry;
pub mod stream;
pub mod trust;

/// Copies the library's version and engine description into `buf`; returns the full length.
#[no_mangle]
pub extern "C" fn qs_version(buf: *mut u8, cap: usize) -> i64 {
    let text = concat!("quicsend_native ", env!("CARGO_PKG_VERSION"), " (quiche 0.26.1, BoringSSL)");
    std::panic::catch_unwind(|| error::copy_text(text, buf, cap)).unwrap_or(0)
}
