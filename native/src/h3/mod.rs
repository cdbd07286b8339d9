//! HTTP/3 (RFC 9114) and QPACK (RFC 9204) on top of the engine's streams.

pub mod conn;
pub mod frame;
pub mod huffman;
pub mod qpack;
pub mod static_table;

/// Test helper: bytes from a hex string (whitespace ignored), as the RFCs print their examples.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}
