//! HTTP/3 (RFC 9114) and QPACK (RFC 9204) on top of the engine's streams.

pub mod conn;
pub mod frame;
pub mod huffman;
pub mod qpack;
pub mod static_table;
