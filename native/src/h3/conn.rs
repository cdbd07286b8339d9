//! HTTP/3 over one QUIC connection (RFC 9114): the control and QPACK streams,
//! SETTINGS and GOAWAY, and request streams parsed into header sections and
//! body bytes. It sits between the engine's stream events and the caller's:
//! it consumes raw stream events and emits HTTP/3 ones.

use std::collections::{HashMap, VecDeque};

use quinn_proto::{Connection, Dir, FinishError, ReadError, ReadableError, StreamId, VarInt, WriteError};

use super::frame::*;
use super::qpack;
use crate::endpoint::{QsEvent, QS_EVENT_H3_DATA, QS_EVENT_H3_GOAWAY, QS_EVENT_H3_HEADERS, QS_EVENT_H3_RESET};

/// Largest control-stream frame payload we buffer (SETTINGS, GOAWAY, ...); larger is H3_EXCESSIVE_LOAD.
const MAX_CONTROL_FRAME: u64 = 16 * 1024;

/// How reading a stream ended.
enum End {
    /// Stopped because the limit was reached; more may be readable.
    More,
    Blocked,
    Fin,
    Reset(u64),
    Closed,
}

/// Reads up to `max` bytes from a stream, handing each chunk to `sink`.
fn pull(c: &mut Connection, sid: u64, max: usize, mut sink: impl FnMut(&[u8])) -> (usize, End) {
    let mut rs = c.recv_stream(StreamId(sid));
    let mut chunks = match rs.read(true) {
        Ok(ch) => ch,
        Err(ReadableError::ClosedStream) | Err(ReadableError::IllegalOrderedRead) => return (0, End::Closed),
    };
    let mut n = 0;
    let end = loop {
        if n >= max {
            break End::More;
        }
        match chunks.next(max - n) {
            Ok(Some(chunk)) => {
                n += chunk.bytes.len();
                sink(&chunk.bytes);
            }
            Ok(None) => break End::Fin,
            Err(ReadError::Blocked) => break End::Blocked,
            Err(ReadError::Reset(code)) => break End::Reset(code.into_inner()),
        }
    };
    let _ = chunks.finalize();
    (n, end)
}

fn fail(code: u64, reason: impl Into<String>) -> H3CallError {
    H3CallError::Protocol(H3Error::new(code, reason))
}

fn varint(v: u64) -> VarInt {
    VarInt::from_u64(v).unwrap_or(VarInt::MAX)
}

#[derive(PartialEq, Clone, Copy)]
enum UniKind {
    Unknown,
    Control,
    Encoder,
    Decoder,
}

struct UniStream {
    kind: UniKind,
    /// Stream-type varint, then (control) the payload of the frame being read, or QPACK instructions.
    buf: Vec<u8>,
    hdr: HeaderReader,
    frame: Option<(u64, u64)>,
    settings_seen: bool,
}

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Headers,
    Body,
}

/// A request stream: the request on a server, the response on a client.
struct ReqStream {
    phase: Phase,
    hdr: HeaderReader,
    /// Type and payload bytes still to come of the frame being read.
    frame: Option<(u64, u64)>,
    block: Vec<u8>,
    headers: Option<Vec<u8>>,
    trailers: Option<Vec<u8>>,
    /// Bytes of the DATA frame being sent that the caller has yet to hand over.
    send_remaining: u64,
    data_signalled: bool,
    /// The body was read to its end (or reset).
    read_done: bool,
}

impl ReqStream {
    fn new() -> Self {
        ReqStream {
            phase: Phase::Headers,
            hdr: HeaderReader::default(),
            frame: None,
            block: Vec::new(),
            headers: None,
            trailers: None,
            send_remaining: 0,
            data_signalled: false,
            read_done: false,
        }
    }
}

/// Framing bytes a stream would not take yet, and whether to finish after them.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    fin: bool,
}

/// Errors surfaced to the caller of a send or receive.
pub enum H3CallError {
    /// Nothing can be written now; wait for STREAM_WRITABLE.
    Blocked,
    /// The peer reset or stopped the stream with this code.
    Reset(u64),
    /// The stream is unknown or already finished.
    Closed(String),
    /// The connection broke the protocol; it has been closed.
    Protocol(H3Error),
}

pub struct H3Conn {
    server: bool,
    max_field_section_size: u64,
    opened: bool,
    control_out: Option<u64>,
    outbox: HashMap<u64, Outbox>,
    uni: HashMap<u64, UniStream>,
    req: HashMap<u64, ReqStream>,
    peer_max_field_section_size: u64,
    /// Server: the lowest request id a GOAWAY we sent refuses. Client: the id the server's GOAWAY named.
    goaway_sent: Option<u64>,
    goaway_received: Option<u64>,
    /// Server: one past the highest request stream id seen (the id a GOAWAY names).
    next_request_id: u64,
}

fn pack(fields: &[qpack::Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&(f.name.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.name);
        out.extend_from_slice(&(f.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.value);
    }
    out
}

/// Parses the caller's packed header list: (u32 LE length, bytes) for a name, then for its value, repeated.
pub fn unpack(mut buf: &[u8]) -> Result<Vec<(&[u8], &[u8])>, String> {
    fn take<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let all: &'a [u8] = buf;
        let len_bytes = all.get(..4).ok_or("header list is truncated (length)")?;
        let n = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let s = all.get(4..4 + n).ok_or("header list is truncated (bytes)")?;
        *buf = &all[4 + n..];
        Ok(s)
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let name = take(&mut buf)?;
        let value = take(&mut buf)?;
        if name.is_empty() {
            return Err("a header name is empty".into());
        }
        if name.iter().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("header name '{}' has uppercase letters; HTTP/3 field names are lowercase", String::from_utf8_lossy(name)));
        }
        out.push((name, value));
    }
    Ok(out)
}

const CONNECTION_SPECIFIC: [&[u8]; 5] = [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"];

/// Checks a request's or response's header section against RFC 9114 §4.1.2 / §4.3.
fn validate(fields: &[qpack::Field], request: bool, trailers: bool) -> Result<Option<u16>, String> {
    let mut regular_seen = false;
    let (mut method, mut scheme, mut path, mut status) = (None, false, false, None);
    for f in fields {
        if f.name.iter().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("field name '{}' is not lowercase", String::from_utf8_lossy(&f.name)));
        }
        if f.name.first() == Some(&b':') {
            if regular_seen || trailers {
                return Err("a pseudo-header follows a regular header (or is in trailers)".into());
            }
            match (request, f.name.as_slice()) {
                (true, b":method") if method.is_none() => method = Some(f.value.clone()),
                (true, b":scheme") if !scheme => scheme = true,
                (true, b":path") if !path => {
                    if f.value.is_empty() {
                        return Err(":path is empty".into());
                    }
                    path = true
                }
                (true, b":authority") => {}
                (false, b":status") if status.is_none() => {
                    let s = std::str::from_utf8(&f.value).ok().filter(|s| s.len() == 3).and_then(|s| s.parse::<u16>().ok());
                    status = Some(s.ok_or(":status is not a three-digit number")?);
                }
                _ => return Err(format!("pseudo-header '{}' is unknown or repeated", String::from_utf8_lossy(&f.name))),
            }
        } else {
            regular_seen = true;
            if CONNECTION_SPECIFIC.contains(&f.name.as_slice()) || (f.name == b"te" && f.value != b"trailers") {
                return Err(format!("connection-specific header '{}' is not allowed in HTTP/3", String::from_utf8_lossy(&f.name)));
            }
        }
    }
    if trailers {
        return Ok(None);
    }
    if request {
        let m = method.ok_or("the request has no :method")?;
        if m != b"CONNECT" && !(scheme && path) {
            return Err("the request lacks :scheme or :path".into());
        }
        Ok(None)
    } else {
        Ok(Some(status.ok_or("the response has no :status")?))
    }
}

impl H3Conn {
    pub fn new(server: bool, max_field_section_size: u64) -> Self {
        H3Conn {
            server,
            max_field_section_size,
            opened: false,
            control_out: None,
            outbox: HashMap::new(),
            uni: HashMap::new(),
            req: HashMap::new(),
            peer_max_field_section_size: u64::MAX,
            goaway_sent: None,
            goaway_received: None,
            next_request_id: 0,
        }
    }

    /// Opens our control stream (with SETTINGS) and QPACK streams once the connection is up.
    pub fn open(&mut self, c: &mut Connection) -> Result<(), H3Error> {
        if self.opened {
            return Ok(());
        }
        self.opened = true;
        let mut control = Vec::new();
        write_varint(STREAM_CONTROL, &mut control);
        let mut settings = Vec::new();
        write_varint(SETTING_MAX_FIELD_SECTION_SIZE, &mut settings);
        write_varint(self.max_field_section_size, &mut settings);
        // Dynamic table capacity and blocked streams stay at their default, 0.
        write_frame_header(FRAME_SETTINGS, settings.len() as u64, &mut control);
        control.extend_from_slice(&settings);
        for (ty, bytes) in [(STREAM_CONTROL, control), (STREAM_QPACK_ENCODER, vec![0x02]), (STREAM_QPACK_DECODER, vec![0x03])] {
            let sid = c
                .streams()
                .open(Dir::Uni)
                .ok_or_else(|| H3Error::new(H3_STREAM_CREATION_ERROR, "the peer allows no unidirectional streams; HTTP/3 needs three"))?
                .0;
            if ty == STREAM_CONTROL {
                self.control_out = Some(sid);
            }
            self.queue(c, sid, &bytes, false).map_err(|_| H3Error::new(H3_INTERNAL_ERROR, "cannot write a critical stream"))?;
        }
        Ok(())
    }

    /// Writes bytes whole: what the stream does not take now waits in its outbox.
    fn queue(&mut self, c: &mut Connection, sid: u64, bytes: &[u8], fin: bool) -> Result<(), H3CallError> {
        let ob = self.outbox.entry(sid).or_default();
        if ob.bytes.is_empty() {
            let taken = match c.send_stream(StreamId(sid)).write(bytes) {
                Ok(n) => n,
                Err(WriteError::Blocked) => 0,
                Err(WriteError::Stopped(code)) => return Err(H3CallError::Reset(code.into_inner())),
                Err(WriteError::ClosedStream) => return Err(H3CallError::Closed(format!("stream {sid} is closed"))),
            };
            ob.bytes.extend_from_slice(&bytes[taken..]);
        } else {
            ob.bytes.extend_from_slice(bytes);
        }
        ob.fin |= fin;
        self.flush(c, sid);
        Ok(())
    }

    /// Pushes a stream's outbox; true when it is empty (finishing the stream if asked).
    fn flush(&mut self, c: &mut Connection, sid: u64) -> bool {
        let Some(ob) = self.outbox.get_mut(&sid) else { return true };
        if !ob.bytes.is_empty() {
            match c.send_stream(StreamId(sid)).write(&ob.bytes) {
                Ok(n) => {
                    ob.bytes.drain(..n);
                }
                Err(WriteError::Blocked) => return false,
                Err(_) => {
                    self.outbox.remove(&sid);
                    return true;
                }
            }
        }
        if !ob.bytes.is_empty() {
            return false;
        }
        if ob.fin {
            let _ = c.send_stream(StreamId(sid)).finish();
        }
        self.outbox.remove(&sid);
        true
    }

    fn is_request_stream(&self, sid: u64) -> bool {
        // Bidirectional and client-initiated: bits 0b00.
        sid & 0x3 == 0
    }

    /// Handles one raw stream event; emits HTTP/3 events. Returns a connection error to close with.
    pub fn on_event(&mut self, c: &mut Connection, ev: &QsEvent, events: &mut VecDeque<QsEvent>) -> Result<(), H3Error> {
        use crate::endpoint::*;
        match ev.kind {
            QS_EVENT_CONNECTED => {
                events.push_back(*ev);
                self.open(c)
            }
            QS_EVENT_STREAM_OPENED => {
                let sid = ev.stream;
                if ev.detail == 1 {
                    self.uni.insert(
                        sid,
                        UniStream { kind: UniKind::Unknown, buf: Vec::new(), hdr: HeaderReader::default(), frame: None, settings_seen: false },
                    );
                    self.on_uni_readable(c, sid, events)
                } else if !self.server {
                    Err(H3Error::new(H3_STREAM_CREATION_ERROR, "the server opened a bidirectional stream"))
                } else {
                    if self.goaway_sent.is_some_and(|limit| sid >= limit) {
                        // Refused by our GOAWAY: the client may retry elsewhere.
                        let _ = c.recv_stream(StreamId(sid)).stop(varint(H3_REQUEST_REJECTED));
                        let _ = c.send_stream(StreamId(sid)).reset(varint(H3_REQUEST_REJECTED));
                        return Ok(());
                    }
                    self.next_request_id = self.next_request_id.max(sid + 4);
                    self.req.insert(sid, ReqStream::new());
                    self.on_request_readable(c, sid, ev.conn, events)
                }
            }
            QS_EVENT_STREAM_READABLE => {
                if self.uni.contains_key(&ev.stream) {
                    self.on_uni_readable(c, ev.stream, events)
                } else if self.req.contains_key(&ev.stream) {
                    self.on_request_readable(c, ev.stream, ev.conn, events)
                } else {
                    Ok(())
                }
            }
            QS_EVENT_STREAM_WRITABLE => {
                if self.flush(c, ev.stream) && self.req.contains_key(&ev.stream) {
                    events.push_back(*ev);
                }
                Ok(())
            }
            QS_EVENT_STREAM_STOPPED => {
                if Some(ev.stream) == self.control_out || (!self.is_request_stream(ev.stream) && self.outbox.contains_key(&ev.stream)) {
                    return Err(H3Error::new(H3_CLOSED_CRITICAL_STREAM, "the peer stopped one of our critical streams"));
                }
                self.outbox.remove(&ev.stream);
                if self.req.contains_key(&ev.stream) {
                    events.push_back(*ev);
                }
                Ok(())
            }
            QS_EVENT_STREAM_FINISHED => {
                if self.req.contains_key(&ev.stream) {
                    events.push_back(*ev);
                }
                Ok(())
            }
            _ => {
                events.push_back(*ev);
                Ok(())
            }
        }
    }

    fn on_uni_readable(&mut self, c: &mut Connection, sid: u64, events: &mut VecDeque<QsEvent>) -> Result<(), H3Error> {
        loop {
            let Some(u) = self.uni.get_mut(&sid) else { return Ok(()) };
            match u.kind {
                UniKind::Unknown => {
                    let want = if u.buf.is_empty() { 1 } else { varint_len(u.buf[0]) - u.buf.len() };
                    let (_, end) = pull(c, sid, want, |b| u.buf.extend_from_slice(b));
                    if let Some((ty, _)) = read_varint(&u.buf) {
                        u.buf.clear();
                        u.kind = match ty {
                            STREAM_CONTROL => UniKind::Control,
                            STREAM_QPACK_ENCODER => UniKind::Encoder,
                            STREAM_QPACK_DECODER => UniKind::Decoder,
                            STREAM_PUSH if self.server => {
                                return Err(H3Error::new(H3_STREAM_CREATION_ERROR, "the client opened a push stream"))
                            }
                            STREAM_PUSH => return Err(H3Error::new(H3_ID_ERROR, "the server pushed without a MAX_PUSH_ID")),
                            _ => {
                                // Unknown stream types (and grease) are ignored (§6.2).
                                let _ = c.recv_stream(StreamId(sid)).stop(varint(H3_STREAM_CREATION_ERROR));
                                self.uni.remove(&sid);
                                return Ok(());
                            }
                        };
                        let kind = u.kind;
                        if self.uni.iter().any(|(other, s)| *other != sid && s.kind == kind) {
                            return Err(H3Error::new(H3_STREAM_CREATION_ERROR, "the peer opened a second control or QPACK stream"));
                        }
                        continue;
                    }
                    match end {
                        End::Fin | End::Reset(_) | End::Closed => {
                            self.uni.remove(&sid);
                            return Ok(());
                        }
                        _ => return Ok(()),
                    }
                }
                UniKind::Control => return self.read_control(c, sid, events),
                UniKind::Encoder | UniKind::Decoder => return self.read_qpack_stream(c, sid),
            }
        }
    }

    fn read_qpack_stream(&mut self, c: &mut Connection, sid: u64) -> Result<(), H3Error> {
        let Some(u) = self.uni.get_mut(&sid) else { return Ok(()) };
        let encoder = u.kind == UniKind::Encoder;
        let (_, end) = pull(c, sid, 4096, |b| u.buf.extend_from_slice(b));
        // We advertise a dynamic table of capacity 0, so the only instructions a peer may send are
        // "set capacity 0" on its encoder stream and "stream cancellation" on its decoder stream.
        loop {
            let Some(&first) = u.buf.first() else { break };
            let (ok, prefix) = if encoder { (first & 0xe0 == 0x20, 5) } else { (first & 0xc0 == 0x40, 6) };
            if !ok {
                let (code, what) = if encoder {
                    (QPACK_ENCODER_STREAM_ERROR, "the peer's QPACK encoder used the dynamic table, whose capacity we set to 0")
                } else {
                    (QPACK_DECODER_STREAM_ERROR, "the peer's QPACK decoder acknowledged a dynamic table we never used")
                };
                return Err(H3Error::new(code, what));
            }
            match qpack::parse_int(&u.buf, prefix) {
                qpack::IntParse::Complete(v, used) => {
                    if encoder && v != 0 {
                        return Err(H3Error::new(QPACK_ENCODER_STREAM_ERROR, "dynamic table capacity above the 0 we allow"));
                    }
                    u.buf.drain(..used);
                }
                qpack::IntParse::Invalid(why) => {
                    let code = if encoder { QPACK_ENCODER_STREAM_ERROR } else { QPACK_DECODER_STREAM_ERROR };
                    return Err(H3Error::new(code, format!("an instruction's integer {why}")));
                }
                qpack::IntParse::Incomplete => break,
            }
        }
        match end {
            End::Fin | End::Reset(_) => Err(H3Error::new(H3_CLOSED_CRITICAL_STREAM, "the peer closed a QPACK stream")),
            End::More => self.read_qpack_stream(c, sid),
            _ => Ok(()),
        }
    }

    fn read_control(&mut self, c: &mut Connection, sid: u64, events: &mut VecDeque<QsEvent>) -> Result<(), H3Error> {
        loop {
            let u = self.uni.get_mut(&sid).expect("caller checked");
            let end = match u.frame {
                None => {
                    let mut got = None;
                    let want = u.hdr.wanted();
                    let (_, end) = pull(c, sid, want, |b| got = got.or(u.hdr.feed(b)));
                    if let Some((ty, len)) = got {
                        if !u.settings_seen && ty != FRAME_SETTINGS {
                            return Err(H3Error::new(H3_MISSING_SETTINGS, "the peer's control stream did not start with SETTINGS"));
                        }
                        match ty {
                            FRAME_DATA | FRAME_HEADERS | FRAME_PUSH_PROMISE => {
                                return Err(H3Error::new(H3_FRAME_UNEXPECTED, format!("frame type {ty:#x} on the control stream")))
                            }
                            t if is_reserved_h2_frame(t) => {
                                return Err(H3Error::new(H3_FRAME_UNEXPECTED, format!("reserved HTTP/2 frame type {t:#x}")))
                            }
                            FRAME_SETTINGS if u.settings_seen => {
                                return Err(H3Error::new(H3_FRAME_UNEXPECTED, "a second SETTINGS frame"))
                            }
                            FRAME_SETTINGS | FRAME_GOAWAY | FRAME_MAX_PUSH_ID | FRAME_CANCEL_PUSH if len > MAX_CONTROL_FRAME => {
                                return Err(H3Error::new(H3_EXCESSIVE_LOAD, format!("a control frame of {len} bytes")))
                            }
                            _ => {}
                        }
                        u.frame = Some((ty, len));
                        u.buf.clear();
                    }
                    end
                }
                Some((ty, remaining)) => {
                    let known = matches!(ty, FRAME_SETTINGS | FRAME_GOAWAY | FRAME_MAX_PUSH_ID | FRAME_CANCEL_PUSH);
                    let mut end = End::More;
                    if remaining > 0 {
                        let (n, e) = pull(c, sid, remaining.min(65536) as usize, |b| {
                            if known {
                                u.buf.extend_from_slice(b)
                            }
                        });
                        u.frame = Some((ty, remaining - n as u64));
                        end = e;
                    }
                    if let Some((ty, 0)) = u.frame {
                        u.frame = None;
                        let payload = std::mem::take(&mut u.buf);
                        if ty == FRAME_SETTINGS {
                            u.settings_seen = true;
                        }
                        self.on_control_frame(ty, &payload, events)?;
                    }
                    end
                }
            };
            match end {
                End::More => continue,
                End::Blocked => return Ok(()),
                End::Fin | End::Reset(_) | End::Closed => {
                    return Err(H3Error::new(H3_CLOSED_CRITICAL_STREAM, "the peer closed its control stream"))
                }
            }
        }
    }

    fn on_control_frame(&mut self, ty: u64, payload: &[u8], events: &mut VecDeque<QsEvent>) -> Result<(), H3Error> {
        match ty {
            FRAME_SETTINGS => {
                let mut rest = payload;
                let mut seen = Vec::new();
                while !rest.is_empty() {
                    let bad = || H3Error::new(H3_FRAME_ERROR, "a malformed SETTINGS frame");
                    let (id, a) = read_varint(rest).ok_or_else(bad)?;
                    let (value, b) = read_varint(&rest[a..]).ok_or_else(bad)?;
                    rest = &rest[a + b..];
                    if is_reserved_h2_setting(id) {
                        return Err(H3Error::new(H3_SETTINGS_ERROR, format!("reserved HTTP/2 setting {id:#x}")));
                    }
                    if seen.contains(&id) {
                        return Err(H3Error::new(H3_SETTINGS_ERROR, format!("setting {id:#x} appears twice")));
                    }
                    seen.push(id);
                    if id == SETTING_MAX_FIELD_SECTION_SIZE {
                        self.peer_max_field_section_size = value;
                    }
                    // QPACK table capacity / blocked streams: we never use the peer's dynamic table either.
                }
                Ok(())
            }
            FRAME_GOAWAY => {
                let (id, n) = read_varint(payload).ok_or_else(|| H3Error::new(H3_FRAME_ERROR, "a malformed GOAWAY frame"))?;
                if n != payload.len() {
                    return Err(H3Error::new(H3_FRAME_ERROR, "a malformed GOAWAY frame"));
                }
                if self.server {
                    return Ok(()); // a client's GOAWAY names push ids, and we never push
                }
                if id % 4 != 0 || self.goaway_received.is_some_and(|prev| id > prev) {
                    return Err(H3Error::new(H3_ID_ERROR, "a GOAWAY with an invalid or increasing stream id"));
                }
                self.goaway_received = Some(id);
                events.push_back(QsEvent { kind: QS_EVENT_H3_GOAWAY, stream: id, ..Default::default() });
                Ok(())
            }
            FRAME_MAX_PUSH_ID if !self.server => Err(H3Error::new(H3_FRAME_UNEXPECTED, "MAX_PUSH_ID sent by a server")),
            _ => Ok(()),
        }
    }

    fn on_request_readable(&mut self, c: &mut Connection, sid: u64, conn: u64, events: &mut VecDeque<QsEvent>) -> Result<(), H3Error> {
        let Some(r) = self.req.get_mut(&sid) else { return Ok(()) };
        if r.phase == Phase::Body {
            if !r.data_signalled {
                r.data_signalled = true;
                events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn, stream: sid, ..Default::default() });
            }
            return Ok(());
        }
        loop {
            let r = self.req.get_mut(&sid).expect("present");
            let end = match r.frame {
                None => {
                    let mut got = None;
                    let (_, end) = pull(c, sid, r.hdr.wanted(), |b| got = got.or(r.hdr.feed(b)));
                    if let Some((ty, len)) = got {
                        match ty {
                            FRAME_HEADERS if len > self.max_field_section_size => {
                                self.stream_error(c, sid, conn, H3_EXCESSIVE_LOAD, events);
                                return Ok(());
                            }
                            FRAME_HEADERS => {}
                            FRAME_DATA => return Err(H3Error::new(H3_FRAME_UNEXPECTED, "DATA before HEADERS on a request stream")),
                            FRAME_PUSH_PROMISE if !self.server => {
                                return Err(H3Error::new(H3_ID_ERROR, "PUSH_PROMISE without a MAX_PUSH_ID"))
                            }
                            FRAME_SETTINGS | FRAME_GOAWAY | FRAME_MAX_PUSH_ID | FRAME_CANCEL_PUSH | FRAME_PUSH_PROMISE => {
                                return Err(H3Error::new(H3_FRAME_UNEXPECTED, format!("frame type {ty:#x} on a request stream")))
                            }
                            t if is_reserved_h2_frame(t) => {
                                return Err(H3Error::new(H3_FRAME_UNEXPECTED, format!("reserved HTTP/2 frame type {t:#x}")))
                            }
                            _ => {}
                        }
                        r.frame = Some((ty, len));
                        r.block.clear();
                    }
                    end
                }
                Some((ty, remaining)) => {
                    let mut end = End::More;
                    if remaining > 0 {
                        let keep = ty == FRAME_HEADERS;
                        let (n, e) = pull(c, sid, remaining.min(65536) as usize, |b| {
                            if keep {
                                r.block.extend_from_slice(b)
                            }
                        });
                        r.frame = Some((ty, remaining - n as u64));
                        end = e;
                    }
                    if let Some((FRAME_HEADERS, 0)) = r.frame {
                        r.frame = None;
                        let block = std::mem::take(&mut r.block);
                        if self.on_header_block(c, sid, conn, &block, events)? {
                            // Final headers are in: the body (if any) is read by the caller.
                            let r = self.req.get_mut(&sid).expect("present");
                            r.data_signalled = true;
                            events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn, stream: sid, ..Default::default() });
                            return Ok(());
                        }
                        if !self.req.contains_key(&sid) {
                            return Ok(());
                        }
                    } else if let Some((_, 0)) = r.frame {
                        r.frame = None; // an unknown frame fully skipped
                    }
                    end
                }
            };
            match end {
                End::More => continue,
                End::Blocked => return Ok(()),
                End::Fin | End::Closed => {
                    let fin = matches!(end, End::Fin);
                    let cut = self.req.remove(&sid).is_some_and(|r| r.hdr.in_progress() || r.frame.is_some_and(|(_, rem)| rem > 0));
                    if fin && cut {
                        // §7.1: a frame cut short by the clean end of its stream.
                        return Err(H3Error::new(H3_FRAME_ERROR, "a frame cut short by the end of its stream"));
                    }
                    if !self.server {
                        events.push_back(QsEvent { kind: QS_EVENT_H3_RESET, conn, stream: sid, code: H3_REQUEST_INCOMPLETE, ..Default::default() });
                    } else if fin {
                        // §4.1.2: the request ended before its header section; refuse it rather than leave the client waiting.
                        let _ = c.send_stream(StreamId(sid)).reset(varint(H3_REQUEST_INCOMPLETE));
                    }
                    return Ok(());
                }
                End::Reset(code) => {
                    self.req.remove(&sid);
                    if !self.server {
                        events.push_back(QsEvent { kind: QS_EVENT_H3_RESET, conn, stream: sid, code, ..Default::default() });
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Decodes a header section that precedes the body. True when it is the final one.
    fn on_header_block(
        &mut self,
        c: &mut Connection,
        sid: u64,
        conn: u64,
        block: &[u8],
        events: &mut VecDeque<QsEvent>,
    ) -> Result<bool, H3Error> {
        let fields = match qpack::decode_field_section(block, self.max_field_section_size) {
            Ok(f) => f,
            Err(qpack::QpackError::TooLarge { .. }) => {
                self.stream_error(c, sid, conn, H3_EXCESSIVE_LOAD, events);
                return Ok(false);
            }
            Err(e) => return Err(H3Error::new(QPACK_DECOMPRESSION_FAILED, e.to_string())),
        };
        match validate(&fields, self.server, false) {
            Ok(Some(status)) if (100..200).contains(&status) => Ok(false), // interim response: wait for the final one
            Ok(_) => {
                let r = self.req.get_mut(&sid).expect("present");
                r.headers = Some(pack(&fields));
                r.phase = Phase::Body;
                events.push_back(QsEvent { kind: QS_EVENT_H3_HEADERS, conn, stream: sid, ..Default::default() });
                Ok(true)
            }
            Err(_) => {
                // A malformed message is a stream error (§4.1.2): refuse it, keep the connection.
                self.stream_error(c, sid, conn, H3_MESSAGE_ERROR, events);
                Ok(false)
            }
        }
    }

    fn stream_error(&mut self, c: &mut Connection, sid: u64, conn: u64, code: u64, events: &mut VecDeque<QsEvent>) {
        let _ = c.recv_stream(StreamId(sid)).stop(varint(code));
        let _ = c.send_stream(StreamId(sid)).reset(varint(code));
        self.req.remove(&sid);
        self.outbox.remove(&sid);
        if !self.server {
            events.push_back(QsEvent { kind: QS_EVENT_H3_RESET, conn, stream: sid, code, ..Default::default() });
        }
    }

    fn encode_headers(&self, headers: &[u8]) -> Result<Vec<u8>, H3CallError> {
        let fields = unpack(headers).map_err(H3CallError::Closed)?;
        let mut block = Vec::new();
        qpack::encode_field_section(&fields, &mut block);
        let size: u64 = fields.iter().map(|(n, v)| (n.len() + v.len() + 32) as u64).sum();
        if size > self.peer_max_field_section_size {
            return Err(H3CallError::Closed(format!(
                "the header section ({size} bytes) exceeds the peer's limit of {} bytes",
                self.peer_max_field_section_size
            )));
        }
        let mut frame = Vec::with_capacity(block.len() + 16);
        write_frame_header(FRAME_HEADERS, block.len() as u64, &mut frame);
        frame.extend_from_slice(&block);
        Ok(frame)
    }

    /// Client: opens a request stream and sends its header section.
    pub fn send_request(&mut self, c: &mut Connection, headers: &[u8], fin: bool) -> Result<u64, H3CallError> {
        if self.server {
            return Err(H3CallError::Closed("a server cannot send requests".into()));
        }
        if self.goaway_received.is_some() {
            return Err(H3CallError::Closed("the server sent GOAWAY: open a new connection for new requests".into()));
        }
        let frame = self.encode_headers(headers)?;
        let sid = c.streams().open(Dir::Bi).ok_or(H3CallError::Blocked)?.0;
        self.req.insert(sid, ReqStream::new());
        self.queue(c, sid, &frame, fin)?;
        Ok(sid)
    }

    /// Server: sends the response header section on a request stream.
    pub fn send_response(&mut self, c: &mut Connection, sid: u64, headers: &[u8], fin: bool) -> Result<(), H3CallError> {
        if !self.server || !self.req.contains_key(&sid) {
            return Err(H3CallError::Closed(format!("stream {sid} is not an open request stream on this server")));
        }
        let frame = self.encode_headers(headers)?;
        self.queue(c, sid, &frame, fin)
    }

    /// Sends body bytes as DATA frames; returns how many were taken.
    pub fn send_body(&mut self, c: &mut Connection, sid: u64, data: &[u8], fin: bool) -> Result<usize, H3CallError> {
        if !self.flush(c, sid) {
            return Err(H3CallError::Blocked);
        }
        let Some(r) = self.req.get_mut(&sid) else {
            return Err(H3CallError::Closed(format!("stream {sid} is not an open request stream")));
        };
        if data.is_empty() {
            if fin && r.send_remaining == 0 {
                return match c.send_stream(StreamId(sid)).finish() {
                    Ok(()) => Ok(0),
                    Err(FinishError::Stopped(code)) => Err(H3CallError::Reset(code.into_inner())),
                    Err(FinishError::ClosedStream) => Err(H3CallError::Closed(format!("stream {sid} is already finished"))),
                };
            }
            return Ok(0);
        }
        let mut taken = 0;
        while taken < data.len() {
            let r = self.req.get_mut(&sid).expect("present");
            if r.send_remaining == 0 {
                // A new DATA frame covering everything the caller handed over; if the stream takes
                // only part of it, later calls continue the same frame.
                let mut hdr = Vec::with_capacity(16);
                let len = (data.len() - taken) as u64;
                write_frame_header(FRAME_DATA, len, &mut hdr);
                r.send_remaining = len;
                self.queue(c, sid, &hdr, false)?;
                if !self.outbox.get(&sid).is_none_or(|o| o.bytes.is_empty()) {
                    return if taken > 0 { Ok(taken) } else { Err(H3CallError::Blocked) };
                }
            }
            let r = self.req.get_mut(&sid).expect("present");
            let n = (data.len() - taken).min(r.send_remaining as usize);
            let wrote = match c.send_stream(StreamId(sid)).write(&data[taken..taken + n]) {
                Ok(w) => w,
                Err(WriteError::Blocked) => 0,
                Err(WriteError::Stopped(code)) => return Err(H3CallError::Reset(code.into_inner())),
                Err(WriteError::ClosedStream) => return Err(H3CallError::Closed(format!("stream {sid} is closed"))),
            };
            r.send_remaining -= wrote as u64;
            taken += wrote;
            if wrote < n {
                break;
            }
        }
        if taken == 0 {
            return Err(H3CallError::Blocked);
        }
        let r = self.req.get_mut(&sid).expect("present");
        if fin && taken == data.len() && r.send_remaining == 0 {
            let _ = c.send_stream(StreamId(sid)).finish();
        }
        Ok(taken)
    }

    /// Sends a trailer section and ends the stream.
    pub fn send_trailers(&mut self, c: &mut Connection, sid: u64, headers: &[u8]) -> Result<(), H3CallError> {
        let Some(r) = self.req.get(&sid) else {
            return Err(H3CallError::Closed(format!("stream {sid} is not an open request stream")));
        };
        if r.send_remaining != 0 {
            return Err(H3CallError::Closed("trailers cannot be sent in the middle of a DATA frame".into()));
        }
        let frame = self.encode_headers(headers)?;
        self.queue(c, sid, &frame, true)
    }

    /// Copies the stream's header (or trailer) section in packed form; returns its length or None if not there yet.
    pub fn headers(&self, sid: u64, trailers: bool) -> Option<&[u8]> {
        let r = self.req.get(&sid)?;
        if trailers { r.trailers.as_deref() } else { r.headers.as_deref() }
    }

    /// Reads body bytes (DATA payloads) into `buf`. Returns (bytes, fin).
    pub fn recv_body(&mut self, c: &mut Connection, sid: u64, buf: &mut [u8]) -> Result<(usize, bool), H3CallError> {
        let max_fs = self.max_field_section_size;
        let Some(r) = self.req.get_mut(&sid) else {
            return Err(H3CallError::Closed(format!("stream {sid} has no readable body (unknown, or already read to the end)")));
        };
        if r.phase != Phase::Body {
            return Err(H3CallError::Closed("the header section has not arrived yet".into()));
        }
        r.data_signalled = false;
        let mut n = 0;
        loop {
            let end = match r.frame {
                Some((FRAME_DATA, remaining)) if remaining > 0 => {
                    if n == buf.len() {
                        break;
                    }
                    let want = (buf.len() - n).min(remaining.min(usize::MAX as u64) as usize);
                    let (got, end) = pull(c, sid, want, |b| {
                        buf[n..n + b.len()].copy_from_slice(b);
                        n += b.len();
                    });
                    r.frame = Some((FRAME_DATA, remaining - got as u64));
                    end
                }
                Some((ty, remaining)) if remaining > 0 => {
                    let keep = ty == FRAME_HEADERS;
                    let (got, end) = pull(c, sid, remaining.min(65536) as usize, |b| {
                        if keep {
                            r.block.extend_from_slice(b)
                        }
                    });
                    r.frame = Some((ty, remaining - got as u64));
                    end
                }
                Some((ty, _)) => {
                    r.frame = None;
                    if ty == FRAME_HEADERS {
                        let block = std::mem::take(&mut r.block);
                        match qpack::decode_field_section(&block, max_fs) {
                            Ok(fields) => r.trailers = Some(pack(&fields)),
                            Err(e) => return Err(fail(QPACK_DECOMPRESSION_FAILED, e.to_string())),
                        }
                    }
                    End::More
                }
                None => {
                    let mut got = None;
                    let (_, end) = pull(c, sid, r.hdr.wanted(), |b| got = got.or(r.hdr.feed(b)));
                    if let Some((ty, len)) = got {
                        if r.trailers.is_some() && ty != FRAME_DATA && ty != FRAME_HEADERS {
                            // unknown frames may still follow trailers; skip them
                        } else if r.trailers.is_some() {
                            return Err(fail(H3_FRAME_UNEXPECTED, "a frame after the trailer section"));
                        }
                        match ty {
                            FRAME_DATA => {}
                            FRAME_HEADERS if len > max_fs => return Err(fail(H3_EXCESSIVE_LOAD, "an oversized trailer section")),
                            FRAME_HEADERS => r.block.clear(),
                            FRAME_SETTINGS | FRAME_GOAWAY | FRAME_MAX_PUSH_ID | FRAME_CANCEL_PUSH | FRAME_PUSH_PROMISE => {
                                return Err(fail(H3_FRAME_UNEXPECTED, format!("frame type {ty:#x} on a request stream")))
                            }
                            t if is_reserved_h2_frame(t) => {
                                return Err(fail(H3_FRAME_UNEXPECTED, format!("reserved HTTP/2 frame type {t:#x}")))
                            }
                            _ => {}
                        }
                        r.frame = Some((ty, len));
                    }
                    end
                }
            };
            match end {
                End::More => continue,
                End::Blocked => return Ok((n, false)),
                End::Fin => {
                    let truncated = r.hdr.in_progress() || r.frame.is_some_and(|(_, rem)| rem > 0);
                    r.read_done = true;
                    if truncated {
                        return Err(fail(H3_FRAME_ERROR, "a frame cut short by the end of its stream"));
                    }
                    return Ok((n, true));
                }
                End::Reset(code) => {
                    r.read_done = true;
                    return Err(H3CallError::Reset(code));
                }
                End::Closed => {
                    r.read_done = true;
                    return Ok((n, true));
                }
            }
        }
        Ok((n, false))
    }



    /// Server: announces a graceful shutdown; requests after the last one seen are refused.
    pub fn goaway(&mut self, c: &mut Connection) -> Result<(), H3CallError> {
        let Some(control) = self.control_out else {
            return Err(H3CallError::Closed("HTTP/3 has not started on this connection yet".into()));
        };
        let id = if self.server { self.next_request_id } else { 0 };
        if self.goaway_sent.is_some_and(|prev| id > prev) {
            return Ok(());
        }
        self.goaway_sent = Some(id);
        let mut payload = Vec::new();
        write_varint(id, &mut payload);
        let mut frame = Vec::new();
        write_frame_header(FRAME_GOAWAY, payload.len() as u64, &mut frame);
        frame.extend_from_slice(&payload);
        self.queue(c, control, &frame, false)
    }

    /// Forgets a request stream the caller is done with (its headers, trailers and
    /// send state); what is still queued to send keeps going. Unread body is refused.
    pub fn release(&mut self, c: &mut Connection, sid: u64) {
        if let Some(r) = self.req.remove(&sid) {
            if !r.read_done {
                let _ = c.recv_stream(StreamId(sid)).stop(varint(H3_NO_ERROR));
            }
        }
    }
}
