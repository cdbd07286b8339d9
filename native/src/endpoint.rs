//! The endpoint: one engine endpoint plus the connections it owns, the queue
//! of events for the caller, and the datagrams waiting to be sent.
//!
//! The caller drives it sans-IO: `qs_endpoint_recv` for each received datagram
//! (or batch), `qs_endpoint_poll_transmit` until DONE, `qs_endpoint_timeout` /
//! `qs_endpoint_on_timeout` for timers and `qs_endpoint_poll_event` until DONE.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event,
    StreamEvent, StreamId, Transmit, VarInt,
};

use crate::addr::{read_addr, QsAddr};
use crate::config::QsConfig;
use crate::error::{
    guard, guard_ptr, guard_status, out, slice, slice_mut, utf8, QsError, QsResult, QS_DONE, QS_ERR_CONNECT, QS_OK,
};
use crate::h3::conn::H3Conn;
use crate::h3::frame::H3Error;
use crate::live::Counted;

/// Server: a new connection was accepted (`conn` is its id); CONNECTED follows.
pub const QS_EVENT_CONNECTION_INCOMING: u32 = 1;
/// The handshake completed.
pub const QS_EVENT_CONNECTED: u32 = 2;
/// The connection ended before its handshake completed; the reason is in `qs_conn_error`.
pub const QS_EVENT_HANDSHAKE_FAILED: u32 = 3;
/// The connection closed; `detail` is a QS_CLOSE_* kind, `code` the error code; reason in `qs_conn_error`.
pub const QS_EVENT_CONNECTION_CLOSED: u32 = 4;
/// The connection's resources are released; its id is no longer valid.
pub const QS_EVENT_CONNECTION_DRAINED: u32 = 5;
/// The peer opened a stream (`detail`: 0 bidirectional, 1 unidirectional).
pub const QS_EVENT_STREAM_OPENED: u32 = 6;
/// A stream has data, an end or a reset to read.
pub const QS_EVENT_STREAM_READABLE: u32 = 7;
/// A stream that was blocked can be written again.
pub const QS_EVENT_STREAM_WRITABLE: u32 = 8;
/// Everything written on a finished stream was acknowledged.
pub const QS_EVENT_STREAM_FINISHED: u32 = 9;
/// The peer asked us to stop sending on a stream; `code` is its error code.
pub const QS_EVENT_STREAM_STOPPED: u32 = 10;
/// More streams may be opened (`detail`: direction as for STREAM_OPENED).
pub const QS_EVENT_STREAMS_AVAILABLE: u32 = 11;
/// HTTP/3: a request's (server) or response's (client) header section arrived; fetch it with `qs_h3_recv_headers`.
pub const QS_EVENT_H3_HEADERS: u32 = 12;
/// HTTP/3: `qs_h3_recv_body` can make progress (data, the end, or a reset).
pub const QS_EVENT_H3_DATA: u32 = 13;
/// HTTP/3 client: the request stream ended before a response (`code`: the peer's or our error code).
pub const QS_EVENT_H3_RESET: u32 = 14;
/// HTTP/3 client: the server is shutting down; requests from stream id `stream` on are refused.
pub const QS_EVENT_H3_GOAWAY: u32 = 15;

pub const QS_CLOSE_TIMED_OUT: u32 = 1;
pub const QS_CLOSE_LOCAL: u32 = 2;
pub const QS_CLOSE_APPLICATION: u32 = 3;
pub const QS_CLOSE_TRANSPORT: u32 = 4;
pub const QS_CLOSE_RESET: u32 = 5;
pub const QS_CLOSE_VERSION_MISMATCH: u32 = 6;
pub const QS_CLOSE_OTHER: u32 = 7;
/// We closed the connection because the peer broke the HTTP/3 protocol; `code` is the H3 error.
pub const QS_CLOSE_H3_PROTOCOL: u32 = 8;

/// An event for the caller; which fields mean something depends on `kind`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsEvent {
    pub kind: u32,
    pub detail: u32,
    pub conn: u64,
    pub stream: u64,
    pub code: u64,
}

/// A datagram (or a GSO batch of equal-sized datagrams) written by `qs_endpoint_poll_transmit`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsTransmit {
    pub to: QsAddr,
    /// Bytes written to the buffer.
    pub len: usize,
    /// Size of each datagram when the batch holds several (the last may be shorter); equals `len` otherwise.
    pub segment_size: usize,
}

/// Endpoint statistics: what happened to connection attempts.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsEndpointStats {
    /// Connections accepted (server) or started (client).
    pub connections: u64,
    /// Stateless Retry packets sent to validate a client's address.
    pub retries_sent: u64,
    /// Connection attempts refused (connection limit) or ignored.
    pub refused: u64,
    /// Connections open now, closing ones included.
    pub open: u64,
}

/// Connection statistics.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsStats {
    pub rtt_ns: u64,
    pub cwnd: u64,
    pub sent_packets: u64,
    pub lost_packets: u64,
    pub lost_bytes: u64,
    pub congestion_events: u64,
    pub udp_tx_bytes: u64,
    pub udp_rx_bytes: u64,
    pub udp_tx_datagrams: u64,
    pub udp_rx_datagrams: u64,
    pub mtu: u32,
    pub handshake_done: u32,
}

pub(crate) struct Conn {
    _live: Counted,
    pub(crate) id: u64,
    pub(crate) inner: Connection,
    connected: bool,
    drained: bool,
    pub(crate) error: Option<String>,
    pub(crate) h3: Option<H3Conn>,
}

impl Conn {
    /// Closes the connection for an HTTP/3 protocol violation and tells the caller why.
    pub(crate) fn fail_h3(&mut self, err: H3Error, events: &mut VecDeque<QsEvent>) {
        if self.error.is_some() {
            return;
        }
        let name = crate::h3::frame::error_name(err.code);
        self.inner.close(Instant::now(), VarInt::from_u64(err.code).unwrap_or(VarInt::MAX), bytes::Bytes::from(err.reason.clone()));
        self.error = Some(format!("HTTP/3 protocol error ({name}): {}", err.reason));
        events.push_back(QsEvent {
            kind: if self.connected { QS_EVENT_CONNECTION_CLOSED } else { QS_EVENT_HANDSHAKE_FAILED },
            detail: QS_CLOSE_H3_PROTOCOL,
            conn: self.id,
            stream: 0,
            code: err.code,
        });
    }
}

/// An endpoint and its connections. Opaque; use from one thread at a time.
pub struct QsEndpoint {
    _live: Counted,
    endpoint: Endpoint,
    client: Option<ClientConfig>,
    conns: HashMap<ConnectionHandle, Conn>,
    ids: HashMap<u64, ConnectionHandle>,
    /// Round-robin order for transmits, so one busy connection cannot starve the rest.
    order: Vec<ConnectionHandle>,
    cursor: usize,
    next_id: u64,
    events: VecDeque<QsEvent>,
    /// Datagrams the endpoint itself answers with (Retry, version negotiation, stateless reset, refusal).
    responses: VecDeque<(SocketAddr, Vec<u8>)>,
    scratch: Vec<u8>,
    /// A transmit (its bytes in `stash_buf`) that did not fit the previous batch.
    stash: Option<(SocketAddr, usize, usize)>,
    stash_buf: Vec<u8>,
    /// Receive buffer the caller reads datagrams straight into (see `qs_endpoint_recv_buffer`).
    rx: BytesMut,
    touched: Vec<ConnectionHandle>,
    retry: bool,
    max_connections: usize,
    server: bool,
    stats: QsEndpointStats,
    /// Set when HTTP/3 is on: the largest header section we accept.
    pub(crate) h3_max_field_section: Option<u64>,
}

/// Bound on queued endpoint-level responses, so a flood cannot grow memory.
const MAX_RESPONSES: usize = 1024;

fn dir_code(dir: Dir) -> u32 {
    match dir {
        Dir::Bi => 0,
        Dir::Uni => 1,
    }
}

fn close_kind(e: &ConnectionError) -> (u32, u64) {
    match e {
        ConnectionError::TimedOut => (QS_CLOSE_TIMED_OUT, 0),
        ConnectionError::LocallyClosed => (QS_CLOSE_LOCAL, 0),
        ConnectionError::ApplicationClosed(c) => (QS_CLOSE_APPLICATION, c.error_code.into_inner()),
        ConnectionError::ConnectionClosed(c) => (QS_CLOSE_TRANSPORT, u64::from(c.error_code)),
        ConnectionError::TransportError(t) => (QS_CLOSE_TRANSPORT, u64::from(t.code)),
        ConnectionError::Reset => (QS_CLOSE_RESET, 0),
        ConnectionError::VersionMismatch => (QS_CLOSE_VERSION_MISMATCH, 0),
        _ => (QS_CLOSE_OTHER, 0),
    }
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            format!("closed by the peer with application code {}: {reason}", c.error_code)
        }
        ConnectionError::TimedOut => "timed out: the peer stopped answering within the idle timeout".to_string(),
        other => other.to_string(),
    }
}

impl QsEndpoint {
    fn new(cfg: &QsConfig, server: bool) -> QsResult<Self> {
        let built = cfg.build(server)?;
        let mut ec = EndpointConfig::default();
        ec.max_udp_payload_size(built.max_udp_payload)
            .map_err(|e| QsError::arg(format!("max UDP payload: {e}")))?;
        Ok(QsEndpoint {
            _live: Counted::new(),
            endpoint: Endpoint::new(Arc::new(ec), built.server, true, None),
            client: built.client,
            conns: HashMap::new(),
            ids: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            next_id: 1,
            events: VecDeque::new(),
            responses: VecDeque::new(),
            scratch: Vec::with_capacity(64 * 1024),
            stash: None,
            stash_buf: Vec::with_capacity(64 * 1024),
            rx: BytesMut::new(),
            touched: Vec::new(),
            retry: cfg.retry,
            max_connections: usize::try_from(cfg.max_connections).unwrap_or(usize::MAX),
            server,
            stats: QsEndpointStats::default(),
            h3_max_field_section: None,
        })
    }

    fn add(&mut self, ch: ConnectionHandle, inner: Connection) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.connections += 1;
        let h3 = self.h3_max_field_section.map(|max| H3Conn::new(self.server, max));
        self.conns.insert(ch, Conn { _live: Counted::new(), id, inner, connected: false, drained: false, error: None, h3 });
        self.ids.insert(id, ch);
        self.order.push(ch);
        id
    }

    fn push_response(&mut self, t: Transmit) {
        if self.responses.len() < MAX_RESPONSES {
            self.responses.push_back((t.destination, self.scratch[..t.size].to_vec()));
        }
    }

    pub(crate) fn conn(&mut self, id: u64) -> QsResult<(ConnectionHandle, &mut Conn)> {
        let ch = *self
            .ids
            .get(&id)
            .ok_or_else(|| QsError::state(format!("connection {id} is unknown or already closed and drained")))?;
        Ok((ch, self.conns.get_mut(&ch).expect("ids and conns agree")))
    }

    /// Closes a connection for an HTTP/3 protocol violation found during a caller's operation.
    pub(crate) fn fail_h3(&mut self, ch: ConnectionHandle, err: H3Error) {
        if let Some(c) = self.conns.get_mut(&ch) {
            c.fail_h3(err, &mut self.events);
        }
    }

    /// Lets the engine and the connection exchange their internal events, then
    /// turns the connection's events into caller events; removes it once drained.
    pub(crate) fn settle(&mut self, ch: ConnectionHandle) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        if conn.drained {
            return;
        }
        let mut drained = false;
        while let Some(ev) = conn.inner.poll_endpoint_events() {
            drained |= ev.is_drained();
            if let Some(back) = self.endpoint.handle_event(ch, ev) {
                conn.inner.handle_event(back);
            }
        }
        let id = conn.id;
        while let Some(ev) = conn.inner.poll() {
            let mut e = QsEvent { conn: id, ..Default::default() };
            match ev {
                Event::HandshakeDataReady | Event::DatagramReceived | Event::DatagramsUnblocked => continue,
                Event::Connected => {
                    conn.connected = true;
                    e.kind = QS_EVENT_CONNECTED;
                }
                Event::ConnectionLost { reason } => {
                    let (kind, code) = close_kind(&reason);
                    e.kind = if conn.connected { QS_EVENT_CONNECTION_CLOSED } else { QS_EVENT_HANDSHAKE_FAILED };
                    e.detail = kind;
                    e.code = code;
                    conn.error = Some(describe(&reason));
                }
                Event::Stream(StreamEvent::Opened { dir }) => {
                    while let Some(sid) = conn.inner.streams().accept(dir) {
                        let opened = QsEvent { kind: QS_EVENT_STREAM_OPENED, detail: dir_code(dir), conn: id, stream: sid.0, code: 0 };
                        Self::deliver(conn, opened, &mut self.events);
                    }
                    continue;
                }
                Event::Stream(StreamEvent::Readable { id: sid }) => {
                    // One READABLE per stream is enough until the caller reads; the engine
                    // raises one per packet, which would cost the caller a call per packet.
                    let last = self.events.back();
                    if last.is_some_and(|l| l.kind == QS_EVENT_STREAM_READABLE && l.conn == id && l.stream == sid.0) {
                        continue;
                    }
                    e.kind = QS_EVENT_STREAM_READABLE;
                    e.stream = sid.0;
                }
                Event::Stream(StreamEvent::Writable { id: sid }) => {
                    e.kind = QS_EVENT_STREAM_WRITABLE;
                    e.stream = sid.0;
                }
                Event::Stream(StreamEvent::Finished { id: sid }) => {
                    e.kind = QS_EVENT_STREAM_FINISHED;
                    e.stream = sid.0;
                }
                Event::Stream(StreamEvent::Stopped { id: sid, error_code }) => {
                    e.kind = QS_EVENT_STREAM_STOPPED;
                    e.stream = sid.0;
                    e.code = error_code.into_inner();
                }
                Event::Stream(StreamEvent::Available { dir }) => {
                    e.kind = QS_EVENT_STREAMS_AVAILABLE;
                    e.detail = dir_code(dir);
                }
            }
            Self::deliver(conn, e, &mut self.events);
        }
        if (drained || conn.inner.is_drained()) && !conn.drained {
            // The connection is forgotten when the caller takes this event, so that it can
            // still ask (qs_conn_error, stats) about the events queued before it.
            conn.drained = true;
            let id = conn.id;
            self.order.retain(|c| *c != ch);
            self.events.push_back(QsEvent { kind: QS_EVENT_CONNECTION_DRAINED, conn: id, ..Default::default() });
        }
    }

    /// Hands an event to the caller, through the connection's HTTP/3 layer when it has one.
    fn deliver(conn: &mut Conn, e: QsEvent, events: &mut VecDeque<QsEvent>) {
        let Some(h3) = conn.h3.as_mut() else {
            events.push_back(e);
            return;
        };
        if conn.error.is_some() && e.kind != QS_EVENT_CONNECTION_CLOSED && e.kind != QS_EVENT_HANDSHAKE_FAILED {
            // Closed for a protocol error: stream events no longer matter.
            if e.kind == QS_EVENT_CONNECTION_DRAINED {
                events.push_back(e);
            }
            return;
        }
        if let Err(err) = h3.on_event(&mut conn.inner, &e, events) {
            conn.fail_h3(err, events);
        }
    }

    fn recv(&mut self, mut all: BytesMut, segment_size: usize, from: SocketAddr, local: Option<IpAddr>) {
        let now = Instant::now();
        let stride = if segment_size == 0 { all.len() } else { segment_size };
        self.touched.clear();
        while !all.is_empty() {
            let dgram = all.split_to(stride.min(all.len()));
            self.scratch.clear();
            match self.endpoint.handle(now, from, local, None, dgram, &mut self.scratch) {
                Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                    if let Some(c) = self.conns.get_mut(&ch) {
                        c.inner.handle_event(ev);
                        if !self.touched.contains(&ch) {
                            self.touched.push(ch);
                        }
                    }
                }
                Some(DatagramEvent::NewConnection(incoming)) => {
                    if self.conns.len() >= self.max_connections {
                        self.stats.refused += 1;
                        let t = self.endpoint.refuse(incoming, &mut self.scratch);
                        self.push_response(t);
                    } else if self.retry && !incoming.remote_address_validated() {
                        match self.endpoint.retry(incoming, &mut self.scratch) {
                            Ok(t) => {
                                self.stats.retries_sent += 1;
                                self.push_response(t)
                            }
                            Err(e) => {
                                self.stats.refused += 1;
                                self.endpoint.ignore(e.into_incoming())
                            }
                        }
                    } else {
                        match self.endpoint.accept(incoming, now, &mut self.scratch, None) {
                            Ok((ch, conn)) => {
                                let id = self.add(ch, conn);
                                self.events.push_back(QsEvent {
                                    kind: QS_EVENT_CONNECTION_INCOMING,
                                    conn: id,
                                    ..Default::default()
                                });
                                self.touched.push(ch);
                            }
                            Err(e) => {
                                if let Some(t) = e.response {
                                    self.push_response(t);
                                }
                            }
                        }
                    }
                }
                Some(DatagramEvent::Response(t)) => self.push_response(t),
                None => {}
            }
        }
        for i in 0..self.touched.len() {
            let ch = self.touched[i];
            self.settle(ch);
        }
    }

    /// Puts the next transmit from any connection (or an endpoint response) in
    /// `scratch` and describes it as (destination, segment size, length).
    fn next_transmit(&mut self, now: Instant, max_segments: usize, room: usize) -> Option<(SocketAddr, usize, usize)> {
        if let Some(stashed) = self.stash.take() {
            std::mem::swap(&mut self.scratch, &mut self.stash_buf);
            return Some(stashed);
        }
        if let Some((to, data)) = self.responses.pop_front() {
            self.scratch.clear();
            self.scratch.extend_from_slice(&data);
            return Some((to, data.len(), data.len()));
        }
        for _ in 0..self.order.len() {
            if self.cursor >= self.order.len() {
                self.cursor = 0;
            }
            let ch = self.order[self.cursor];
            self.cursor += 1;
            let conn = self.conns.get_mut(&ch).expect("order and conns agree");
            let mtu = usize::from(conn.inner.current_mtu()).max(1);
            let segments = max_segments.min(room / mtu).max(1);
            self.scratch.clear();
            if let Some(tx) = conn.inner.poll_transmit(now, segments, &mut self.scratch) {
                // Keep draining the same connection while it has data: fewer switches, bigger batches.
                self.cursor -= 1;
                self.settle(ch);
                return Some((tx.destination, tx.segment_size.unwrap_or(tx.size), tx.size));
            }
        }
        None
    }

    /// Fills `buf` with one batch for one segmentation-offload send: consecutive
    /// transmits to the same destination with the same segment size, every
    /// datagram but the last full-sized, at most `max_segments` of them. The
    /// engine hands out at most 10 datagrams per poll; joining polls lets one
    /// system call carry up to 64.
    fn poll_transmit(&mut self, buf: &mut [u8], max_segments: usize, t: &mut QsTransmit) -> bool {
        let now = Instant::now();
        let mut len = 0usize;
        let mut segment = 0usize;
        let mut dest = None;
        loop {
            let used_segments = if segment == 0 { 0 } else { len / segment };
            let budget = max_segments.saturating_sub(used_segments).max(1);
            let Some((to, seg, n)) = self.next_transmit(now, budget, buf.len() - len) else { break };
            if len == 0 {
                if n > buf.len() {
                    continue; // cannot happen with the documented buffer size; drop rather than overrun
                }
                buf[..n].copy_from_slice(&self.scratch[..n]);
                len = n;
                segment = seg;
                dest = Some(to);
            } else if dest == Some(to) && seg == segment && len + n <= buf.len() && (len + n).div_ceil(segment) <= max_segments {
                buf[len..len + n].copy_from_slice(&self.scratch[..n]);
                len += n;
            } else {
                // Keep it for the next batch, out of `scratch`, which receiving reuses meanwhile.
                std::mem::swap(&mut self.scratch, &mut self.stash_buf);
                self.stash = Some((to, seg, n));
                break;
            }
            // A short datagram ends a batch: only the last one may be smaller than the segment size.
            if segment == 0 || len % segment != 0 || len / segment >= max_segments {
                break;
            }
        }
        let Some(to) = dest else { return false };
        *t = QsTransmit { to: QsAddr::from_socket_addr(&to), len, segment_size: segment.min(len) };
        true
    }

    fn timeout(&mut self) -> Option<Instant> {
        self.conns.values_mut().filter_map(|c| c.inner.poll_timeout()).min()
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        self.touched.clear();
        for (ch, c) in self.conns.iter_mut() {
            if c.inner.poll_timeout().is_some_and(|t| t <= now) {
                c.inner.handle_timeout(now);
                self.touched.push(*ch);
            }
        }
        for i in 0..self.touched.len() {
            let ch = self.touched[i];
            self.settle(ch);
        }
    }
}

pub(crate) fn with_endpoint<T>(ep: *mut QsEndpoint, f: impl FnOnce(&mut QsEndpoint) -> QsResult<T>) -> QsResult<T> {
    if ep.is_null() {
        return Err(QsError::arg("endpoint is null"));
    }
    // SAFETY: non-null handle from qs_endpoint_new; the caller serialises access.
    f(unsafe { &mut *ep })
}

/// Creates an endpoint from a configuration: a server (accepts connections) or
/// a client (makes them). Returns null on failure (see `qs_last_error`).
#[no_mangle]
pub extern "C" fn qs_endpoint_new(cfg: *const QsConfig, server: bool) -> *mut QsEndpoint {
    guard_ptr(|| {
        if cfg.is_null() {
            return Err(QsError::arg("config is null"));
        }
        // SAFETY: non-null handle from qs_config_new.
        let ep = QsEndpoint::new(unsafe { &*cfg }, server)?;
        Ok(Box::into_raw(Box::new(ep)))
    })
}

/// Frees an endpoint and every connection it still holds (without notifying peers:
/// call `qs_endpoint_close_all` and flush transmits first). Null is ignored.
#[no_mangle]
pub extern "C" fn qs_endpoint_free(ep: *mut QsEndpoint) {
    if !ep.is_null() {
        // SAFETY: the pointer came from qs_endpoint_new and is freed once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unsafe { Box::from_raw(ep) })));
    }
}

/// Feeds received bytes from `from`. With `segment_size` > 0 the buffer holds
/// several datagrams of that size (a GRO batch; the last may be shorter).
/// `local` (nullable) is the address the datagram arrived on.
#[no_mangle]
pub extern "C" fn qs_endpoint_recv(
    ep: *mut QsEndpoint,
    data: *const u8,
    len: usize,
    segment_size: usize,
    from: *const QsAddr,
    local: *const QsAddr,
) -> i32 {
    guard_status(|| {
        let data = slice(data, len, "datagram")?;
        let from = read_addr(from, "source address")?;
        let local = if local.is_null() { None } else { Some(read_addr(local, "local address")?.ip()) };
        with_endpoint(ep, |e| {
            if data.is_empty() {
                return Ok(QS_OK);
            }
            // Data read into the buffer from qs_endpoint_recv_buffer is taken without a copy;
            // each datagram is then split off the batch without copying either.
            let batch = if e.rx.capacity() - e.rx.len() >= data.len() && e.rx.spare_capacity_mut().as_ptr() as *const u8 == data.as_ptr() {
                // SAFETY: the caller wrote `len` initialised bytes at the start of the spare capacity.
                unsafe { e.rx.set_len(data.len()) };
                e.rx.split()
            } else {
                BytesMut::from(data)
            };
            e.recv(batch, segment_size, from, local);
            Ok(QS_OK)
        })
    })
}

/// Lends a buffer of at least `min_len` bytes to receive the next datagram (or
/// GRO batch) into; passing it to `qs_endpoint_recv` then avoids a copy. Valid
/// until the next call on this endpoint.
#[no_mangle]
pub extern "C" fn qs_endpoint_recv_buffer(ep: *mut QsEndpoint, min_len: usize, out_ptr: *mut *mut u8) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            // Reserve in large slabs: small datagrams (ACKs) then share one allocation
            // instead of costing a fresh buffer each.
            if e.rx.capacity() - e.rx.len() < min_len {
                e.rx.reserve(min_len.max(1 << 20));
            }
            out(out_ptr, e.rx.spare_capacity_mut().as_mut_ptr() as *mut u8, "buffer pointer")?;
            Ok(QS_OK)
        })
    })
}

/// Writes the next datagram(s) to send into `buf` (at most `max_segments` of
/// them, to one destination, as one GSO batch: all `segment_size` long but the
/// last) and describes them in `out`. Returns QS_OK, or QS_DONE when there is
/// nothing to send now. `cap` of 65000 suits a GSO send of up to 44 datagrams.
#[no_mangle]
pub extern "C" fn qs_endpoint_poll_transmit(
    ep: *mut QsEndpoint,
    buf: *mut u8,
    cap: usize,
    max_segments: usize,
    out_tx: *mut QsTransmit,
) -> i32 {
    guard_status(|| {
        let buf = slice_mut(buf, cap, "transmit buffer")?;
        if buf.len() < 1200 {
            return Err(QsError::arg(format!("transmit buffer of {} bytes is too small; give at least 65536", buf.len())));
        }
        if out_tx.is_null() {
            return Err(QsError::arg("transmit descriptor (out parameter) is null"));
        }
        with_endpoint(ep, |e| {
            let mut t = QsTransmit::default();
            if e.poll_transmit(buf, max_segments.max(1), &mut t) {
                out(out_tx, t, "transmit descriptor")?;
                Ok(QS_OK)
            } else {
                Ok(QS_DONE)
            }
        })
    })
}

/// Returns nanoseconds until `qs_endpoint_on_timeout` should be called (0: now), or QS_DONE if no timer is armed.
#[no_mangle]
pub extern "C" fn qs_endpoint_timeout(ep: *mut QsEndpoint) -> i64 {
    guard(|| {
        with_endpoint(ep, |e| {
            Ok(match e.timeout() {
                None => QS_DONE as i64,
                Some(t) => i64::try_from(t.saturating_duration_since(Instant::now()).as_nanos()).unwrap_or(i64::MAX),
            })
        })
    })
}

/// Fires every timer that is due.
#[no_mangle]
pub extern "C" fn qs_endpoint_on_timeout(ep: *mut QsEndpoint) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            e.on_timeout();
            Ok(QS_OK)
        })
    })
}

/// Takes the next event. Returns QS_OK, or QS_DONE when there is none.
#[no_mangle]
pub extern "C" fn qs_endpoint_poll_event(ep: *mut QsEndpoint, out_event: *mut QsEvent) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| match e.events.pop_front() {
            Some(ev) => {
                if ev.kind == QS_EVENT_CONNECTION_DRAINED {
                    if let Some(ch) = e.ids.remove(&ev.conn) {
                        e.conns.remove(&ch);
                    }
                }
                out(out_event, ev, "event")?;
                Ok(QS_OK)
            }
            None => Ok(QS_DONE),
        })
    })
}

/// Starts a connection to `to`, verifying the server's certificate for `server_name`.
/// Writes the new connection's id; CONNECTED or HANDSHAKE_FAILED follows.
#[no_mangle]
pub extern "C" fn qs_endpoint_connect(
    ep: *mut QsEndpoint,
    to: *const QsAddr,
    server_name: *const u8,
    server_name_len: usize,
    out_conn: *mut u64,
) -> i32 {
    guard_status(|| {
        let to = read_addr(to, "server address")?;
        let name = utf8(server_name, server_name_len, "server name")?;
        with_endpoint(ep, |e| {
            let cc = e.client.clone().ok_or_else(|| {
                QsError::state("this endpoint was created as a server; create a client endpoint to connect")
            })?;
            let (ch, conn) = e
                .endpoint
                .connect(Instant::now(), cc, to, name)
                .map_err(|err| QsError::new(QS_ERR_CONNECT, format!("cannot connect to {to} as '{name}': {err}")))?;
            let id = e.add(ch, conn);
            e.settle(ch);
            out(out_conn, id, "connection id")?;
            Ok(QS_OK)
        })
    })
}

/// Closes every connection with an application error code and reason (for shutdown).
#[no_mangle]
pub extern "C" fn qs_endpoint_close_all(ep: *mut QsEndpoint, code: u64, reason: *const u8, reason_len: usize) -> i32 {
    guard_status(|| {
        let reason = bytes::Bytes::copy_from_slice(slice(reason, reason_len, "reason")?);
        let code = quinn_proto::VarInt::from_u64(code).map_err(|_| QsError::arg("error code must be below 2^62"))?;
        with_endpoint(ep, |e| {
            let now = Instant::now();
            let handles: Vec<_> = e.conns.keys().copied().collect();
            for ch in handles {
                if let Some(c) = e.conns.get_mut(&ch) {
                    c.inner.close(now, code, reason.clone());
                }
                e.settle(ch);
            }
            Ok(QS_OK)
        })
    })
}

/// Fills `out_stats` with the endpoint's statistics.
#[no_mangle]
pub extern "C" fn qs_endpoint_stats(ep: *mut QsEndpoint, out_stats: *mut QsEndpointStats) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let mut s = e.stats;
            s.open = e.conns.len() as u64;
            out(out_stats, s, "stats")?;
            Ok(QS_OK)
        })
    })
}

/// Returns how many connections the endpoint holds (including closing ones).
#[no_mangle]
pub extern "C" fn qs_endpoint_connection_count(ep: *mut QsEndpoint) -> i64 {
    guard(|| with_endpoint(ep, |e| Ok(e.conns.len() as i64)))
}

pub(crate) fn stream_id(id: u64) -> StreamId {
    StreamId(id)
}
