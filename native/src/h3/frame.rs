//! HTTP/3 wire pieces (RFC 9114): variable-length integers, frame and stream
//! types, error codes, and an incremental frame-header reader.

pub const FRAME_DATA: u64 = 0x00;
pub const FRAME_HEADERS: u64 = 0x01;
pub const FRAME_CANCEL_PUSH: u64 = 0x03;
pub const FRAME_SETTINGS: u64 = 0x04;
pub const FRAME_PUSH_PROMISE: u64 = 0x05;
pub const FRAME_GOAWAY: u64 = 0x07;
pub const FRAME_MAX_PUSH_ID: u64 = 0x0d;

/// HTTP/2 frame types that HTTP/3 reserves; receiving one is H3_FRAME_UNEXPECTED (§7.2.8).
pub fn is_reserved_h2_frame(ty: u64) -> bool {
    matches!(ty, 0x02 | 0x06 | 0x08 | 0x09)
}

pub const STREAM_CONTROL: u64 = 0x00;
pub const STREAM_PUSH: u64 = 0x01;
pub const STREAM_QPACK_ENCODER: u64 = 0x02;
pub const STREAM_QPACK_DECODER: u64 = 0x03;

pub const SETTING_QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
pub const SETTING_MAX_FIELD_SECTION_SIZE: u64 = 0x06;
pub const SETTING_QPACK_BLOCKED_STREAMS: u64 = 0x07;

/// HTTP/2 settings identifiers HTTP/3 reserves; receiving one is H3_SETTINGS_ERROR (§7.2.4.1).
pub fn is_reserved_h2_setting(id: u64) -> bool {
    matches!(id, 0x00 | 0x02 | 0x03 | 0x04 | 0x05)
}

pub const H3_NO_ERROR: u64 = 0x100;
pub const H3_GENERAL_PROTOCOL_ERROR: u64 = 0x101;
pub const H3_INTERNAL_ERROR: u64 = 0x102;
pub const H3_STREAM_CREATION_ERROR: u64 = 0x103;
pub const H3_CLOSED_CRITICAL_STREAM: u64 = 0x104;
pub const H3_FRAME_UNEXPECTED: u64 = 0x105;
pub const H3_FRAME_ERROR: u64 = 0x106;
pub const H3_EXCESSIVE_LOAD: u64 = 0x107;
pub const H3_ID_ERROR: u64 = 0x108;
pub const H3_SETTINGS_ERROR: u64 = 0x109;
pub const H3_MISSING_SETTINGS: u64 = 0x10a;
pub const H3_REQUEST_REJECTED: u64 = 0x10b;
pub const H3_REQUEST_CANCELLED: u64 = 0x10c;
pub const H3_REQUEST_INCOMPLETE: u64 = 0x10d;
pub const H3_MESSAGE_ERROR: u64 = 0x10e;
pub const QPACK_DECOMPRESSION_FAILED: u64 = 0x200;
pub const QPACK_ENCODER_STREAM_ERROR: u64 = 0x201;
pub const QPACK_DECODER_STREAM_ERROR: u64 = 0x202;

pub fn error_name(code: u64) -> &'static str {
    match code {
        H3_NO_ERROR => "H3_NO_ERROR",
        H3_GENERAL_PROTOCOL_ERROR => "H3_GENERAL_PROTOCOL_ERROR",
        H3_INTERNAL_ERROR => "H3_INTERNAL_ERROR",
        H3_STREAM_CREATION_ERROR => "H3_STREAM_CREATION_ERROR",
        H3_CLOSED_CRITICAL_STREAM => "H3_CLOSED_CRITICAL_STREAM",
        H3_FRAME_UNEXPECTED => "H3_FRAME_UNEXPECTED",
        H3_FRAME_ERROR => "H3_FRAME_ERROR",
        H3_EXCESSIVE_LOAD => "H3_EXCESSIVE_LOAD",
        H3_ID_ERROR => "H3_ID_ERROR",
        H3_SETTINGS_ERROR => "H3_SETTINGS_ERROR",
        H3_MISSING_SETTINGS => "H3_MISSING_SETTINGS",
        H3_REQUEST_REJECTED => "H3_REQUEST_REJECTED",
        H3_REQUEST_CANCELLED => "H3_REQUEST_CANCELLED",
        H3_REQUEST_INCOMPLETE => "H3_REQUEST_INCOMPLETE",
        H3_MESSAGE_ERROR => "H3_MESSAGE_ERROR",
        QPACK_DECOMPRESSION_FAILED => "QPACK_DECOMPRESSION_FAILED",
        QPACK_ENCODER_STREAM_ERROR => "QPACK_ENCODER_STREAM_ERROR",
        QPACK_DECODER_STREAM_ERROR => "QPACK_DECODER_STREAM_ERROR",
        _ => "unknown HTTP/3 error",
    }
}

/// A connection-level HTTP/3 error: the code to close with and what was wrong.
#[derive(Debug)]
pub struct H3Error {
    pub code: u64,
    pub reason: String,
}

impl H3Error {
    pub fn new(code: u64, reason: impl Into<String>) -> Self {
        H3Error { code, reason: reason.into() }
    }
}

/// Bytes a QUIC variable-length integer takes, from its first byte.
pub fn varint_len(first: u8) -> usize {
    1 << (first >> 6)
}

/// Decodes a varint from the front of `buf`: (value, bytes used), or None if `buf` is too short.
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let n = varint_len(first);
    let bytes = buf.get(..n)?;
    let mut v = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, n))
}

pub fn write_varint(v: u64, out: &mut Vec<u8>) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

pub fn write_frame_header(ty: u64, len: u64, out: &mut Vec<u8>) {
    write_varint(ty, out);
    write_varint(len, out);
}

/// Reads a frame header (type, length) a byte range at a time, for streams whose data arrives in pieces.
#[derive(Default)]
pub struct HeaderReader {
    buf: [u8; 16],
    len: usize,
}

impl HeaderReader {
    /// How many more bytes are needed before `feed` can complete (at least 1).
    pub fn wanted(&self) -> usize {
        if self.len == 0 {
            return 1;
        }
        let ty = varint_len(self.buf[0]);
        if self.len < ty {
            return ty - self.len;
        }
        if self.len == ty {
            return 1;
        }
        ty + varint_len(self.buf[ty]) - self.len
    }

    /// Appends bytes (never more than `wanted()`); returns the header once complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<(u64, u64)> {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        let (ty, a) = read_varint(&self.buf[..self.len])?;
        let (len, b) = read_varint(&self.buf[a..self.len])?;
        if a + b != self.len {
            return None;
        }
        self.len = 0;
        Some((ty, len))
    }

    /// True while part of a header has been read: the stream may not end here.
    pub fn in_progress(&self) -> bool {
        self.len > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_size() {
        for v in [0u64, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, (1 << 62) - 1] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(read_varint(&out), Some((v, out.len())));
            assert_eq!(varint_len(out[0]), out.len());
        }
        assert_eq!(read_varint(&[0x40]), None);
    }

    #[test]
    fn header_reader_completes_byte_by_byte() {
        let mut out = Vec::new();
        write_frame_header(0x21, 70000, &mut out);
        let mut r = HeaderReader::default();
        let mut got = None;
        for b in &out {
            assert_eq!(r.wanted() >= 1, true);
            got = r.feed(std::slice::from_ref(b));
        }
        assert_eq!(got, Some((0x21, 70000)));
        assert!(!r.in_progress());
    }
}
