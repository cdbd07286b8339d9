//! The endpoint: routes datagrams to connections by connection ID, answers
//! what needs no connection (version negotiation, Retry, refusals), keeps the
//! caller's event queue, and batches outgoing datagrams for segmentation offload.
//!
//! The caller drives it sans-IO: `qs_endpoint_recv` for each received datagram
//! (or batch), `qs_endpoint_poll_transmit` until DONE, `qs_endpoint_timeout` /
//! `qs_endpoint_on_timeout` for timers and `qs_endpoint_poll_event` until DONE.
//!
//! It never reads a clock: the driving calls bring the caller's time (`now_ns`),
//! and every call runs the engine at the endpoint's latest time (see `Clock`).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::addr::{read_addr, QsAddr};
use crate::boring;
use crate::config::QsConfig;
use crate::conn::Conn;
use crate::error::{guard, guard_ptr, guard_status, out, slice, slice_mut, utf8, QsError, QsResult, QS_DONE, QS_ERR_CONNECT, QS_OK};
use crate::events::*;
use crate::live::Counted;
use crate::refuse;
use crate::retry::RetryKey;
use crate::trust::ServerTrust;

/// Length of the connection IDs this endpoint issues (short headers carry no length).
pub(crate) const CID_LEN: usize = 16;
/// Bound on queued endpoint-level responses (Retry, version negotiation, refusals), so a
/// flood cannot grow memory: at most this many small datagrams wait for the next transmit.
const MAX_RESPONSES: usize = 1024;
/// What a refused client is told (its QUIC error is CONNECTION_REFUSED).
const REFUSAL_REASON: &[u8] = b"the server is at its connection limit";
/// How early a paced batch may leave, in nanoseconds: the transmit poll sends a batch whose
/// release time is at most this far ahead, and the endpoint's timeout comes this much before a
/// held batch's time. A sleeping driver wakes tens of microseconds late (median ~50 µs here), and
/// quiche restarts its pacing schedule from the time of a late send, so each late wake-up would be
/// lost link time (about 8 % at 100 MiB/s); waking early keeps quiche's schedule, and a batch at
/// most this early is well inside the release horizon quiche itself allows (RTT/8, at least 1 ms).
pub const QS_PACING_SLACK_NS: u64 = 250_000;
const PACING_SLACK: Duration = Duration::from_nanos(QS_PACING_SLACK_NS);

/// An endpoint and its connections. Opaque; use from one thread at a time.
pub struct QsEndpoint {
    _live: Counted,
    server: bool,
    config: quiche::Config,
    pub(crate) h3_config: Option<quiche::h3::Config>,
    trust: Option<Arc<ServerTrust>>,
    require_client_cert: bool,
    retry: Option<RetryKey>,
    /// Server: the key of its stateless reset tokens (see `reset`).
    reset_key: Option<[u8; 32]>,
    max_connections: usize,
    keep_alive: Option<Duration>,
    pub(crate) conns: HashMap<u64, Conn>,
    cids: HashMap<Vec<u8>, u64>,
    /// Round-robin order for transmits, so one busy connection cannot starve the rest.
    order: Vec<u64>,
    cursor: usize,
    next_id: u64,
    pub(crate) events: VecDeque<QsEvent>,
    /// Datagrams the endpoint itself answers with (Retry, version negotiation, refusals).
    responses: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The buffer lent to the caller to receive into (see `qs_endpoint_recv_buffer`).
    rx: Vec<u8>,
    touched: Vec<u64>,
    stats: QsEndpointStats,
    clock: Clock,
    /// Server: bounds on what unauthenticated peers make it hold.
    pub(crate) intake: crate::intake::Intake,
}

/// The caller's monotonic clock (nanoseconds, any epoch) as the `Instant`s the engine works in:
/// the first time given maps to `origin`, later ones to `origin` plus the difference.
struct Clock {
    origin: Instant,
    origin_ns: Option<u64>,
    /// The latest time given; the time of every call until a driving call brings a later one.
    now: Instant,
}

impl Clock {
    fn new() -> Clock {
        // Any Instant will do as the anchor; it is never compared with the system clock again.
        let origin = Instant::now();
        Clock { origin, origin_ns: None, now: origin }
    }

    /// Moves to the caller's `now_ns`; an earlier time than the latest is taken as the latest,
    /// since the engine's timers and estimates assume time never runs backwards.
    fn advance(&mut self, now_ns: u64) {
        let first = *self.origin_ns.get_or_insert(now_ns);
        if let Some(t) = self.origin.checked_add(Duration::from_nanos(now_ns.saturating_sub(first))) {
            self.now = self.now.max(t);
        }
    }

    /// Whole seconds since the first time given (for Retry token ages).
    fn secs(&self) -> u64 {
        self.now.duration_since(self.origin).as_secs()
    }
}

/// Makes the engine read the endpoint's time on this thread until dropped (also when unwinding).
struct EngineTime(Option<Instant>);

impl EngineTime {
    fn set(now: Instant) -> EngineTime {
        EngineTime(quiche::set_now(Some(now)))
    }
}

impl Drop for EngineTime {
    fn drop(&mut self) {
        quiche::set_now(self.0);
    }
}

fn unspecified_like(a: &SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

fn new_cid() -> [u8; CID_LEN] {
    let mut cid = [0u8; CID_LEN];
    boring::random(&mut cid);
    cid
}

impl QsEndpoint {
    fn new(cfg: &QsConfig, server: bool) -> QsResult<Self> {
        let built = cfg.build(server)?;
        Ok(QsEndpoint {
            _live: Counted::new(),
            server,
            config: built.quiche,
            h3_config: None,
            trust: built.trust,
            require_client_cert: built.require_client_cert,
            retry: (server && cfg.retry).then(RetryKey::new),
            reset_key: built.reset_key,
            max_connections: usize::try_from(cfg.max_connections).unwrap_or(usize::MAX),
            keep_alive: (cfg.keep_alive_ms > 0).then(|| Duration::from_millis(cfg.keep_alive_ms)),
            conns: HashMap::new(),
            cids: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            next_id: 1,
            events: VecDeque::new(),
            responses: VecDeque::new(),
            rx: Vec::new(),
            touched: Vec::new(),
            stats: QsEndpointStats::default(),
            clock: Clock::new(),
            intake: crate::intake::Intake::new(),
        })
    }

    fn add(&mut self, q: quiche::Connection, cids: Vec<Vec<u8>>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.connections += 1;
        let mut c = Conn::new(id, q, self.server, self.keep_alive, self.clock.now);
        for cid in &cids {
            self.cids.insert(cid.clone(), id);
        }
        c.cids = cids;
        c.require_client_cert = self.require_client_cert;
        self.conns.insert(id, c);
        self.order.push(id);
        id
    }

    fn push_response(&mut self, to: SocketAddr, bytes: &[u8]) {
        if self.responses.len() < MAX_RESPONSES {
            self.responses.push_back((to, bytes.to_vec()));
        }
    }

    pub(crate) fn conn(&mut self, id: u64) -> QsResult<&mut Conn> {
        self.conns.get_mut(&id).ok_or_else(|| unknown_conn(id))
    }

    /// Turns a connection's changes into events (after any call that may have changed it).
    pub(crate) fn settle(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let was_drained = c.drained;
        c.settle(self.h3_config.as_ref(), &mut self.events);
        if self.server {
            self.intake.check(c, self.clock.now);
        }
        if c.drained && !was_drained {
            self.order.retain(|o| *o != id);
        }
    }

    /// Marks a connection whose state may have changed, to be settled by `settle_touched`.
    fn touch(&mut self, id: u64) {
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
    }

    /// Settles every touched connection once, and forgets them.
    fn settle_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        for &id in &touched {
            self.settle(id);
        }
        touched.clear();
        self.touched = touched; // keep the allocation
    }

    /// Removes a drained connection and its routing keys.
    pub(crate) fn forget(&mut self, id: u64) {
        if let Some(mut c) = self.conns.remove(&id) {
            self.intake.release(&mut c);
            for cid in &c.cids {
                self.cids.remove(cid);
            }
        }
    }

    fn recv(&mut self, len: usize, segment: usize, from: SocketAddr, local: SocketAddr) {
        let seg = if segment == 0 { len } else { segment };
        let mut rx = std::mem::take(&mut self.rx);
        for chunk in rx[..len].chunks_mut(seg.max(1)) {
            self.recv_one(chunk, from, local);
        }
        self.rx = rx;
        self.settle_touched();
    }

    fn recv_one(&mut self, buf: &mut [u8], from: SocketAddr, local: SocketAddr) {
        let dgram_len = buf.len();
        let Ok(hdr) = quiche::Header::from_slice(buf, CID_LEN) else {
            self.stats.dropped += 1;
            return;
        };
        let id = match self.cids.get(hdr.dcid.as_ref()) {
            Some(&id) => id,
            None if !self.server && hdr.ty == quiche::Type::Short => {
                self.maybe_reset(buf, from, local);
                return;
            }
            None => match self.admit(&hdr, dgram_len, from, local) {
                Some(id) => id,
                None => return,
            },
        };
        let Some(c) = self.conns.get_mut(&id) else { return };
        // Errors here are the peer's: quiche drops a bad packet or closes the connection itself.
        let _ = c.q.recv(buf, quiche::RecvInfo { from, to: local });
        self.touch(id);
    }

    /// Client: a short-header packet for no connection ID of ours may be a server's stateless reset,
    /// whose connection ID is random by design (RFC 9000 §10.3). Each connection to the address it came
    /// from checks it against the reset token that server gave it; the one it matches closes, the
    /// others drop it as undecryptable. Rare (a server restarted or lost its state), so the copies are fine.
    fn maybe_reset(&mut self, buf: &[u8], from: SocketAddr, local: SocketAddr) {
        const MIN_RESET: usize = 21;
        if buf.len() < MIN_RESET {
            self.stats.dropped += 1;
            return;
        }
        let mut to = Vec::new();
        for (id, c) in &self.conns {
            if !c.closed && c.q.path_stats().any(|p| p.peer_addr == from) {
                to.push(*id);
            }
        }
        if to.is_empty() {
            self.stats.dropped += 1;
        }
        for id in to {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            let mut copy = buf.to_vec();
            let _ = c.q.recv(&mut copy, quiche::RecvInfo { from, to: local });
            self.touch(id);
        }
    }

    /// A datagram for no known connection: a new client's Initial, or nothing.
    fn admit(&mut self, hdr: &quiche::Header, dgram_len: usize, from: SocketAddr, local: SocketAddr) -> Option<u64> {
        if !self.server || hdr.ty != quiche::Type::Initial {
            self.stats.dropped += 1;
            if self.server && hdr.ty == quiche::Type::Short {
                self.reset(&hdr.dcid, dgram_len, from);
            }
            return None;
        }
        if !quiche::version_is_supported(hdr.version) {
            let mut out = [0u8; 1350];
            if let Ok(n) = quiche::negotiate_version(&hdr.scid, &hdr.dcid, &mut out) {
                self.push_response(from, &out[..n]);
            }
            return None;
        }
        // RFC 9000 §14.1: a client's first datagram is at least 1200 bytes (amplification limit).
        if dgram_len < quiche::MIN_CLIENT_INITIAL_LEN {
            self.stats.dropped += 1;
            return None;
        }
        if self.conns.len() >= self.max_connections {
            // Refused statelessly, before any TLS work: the client hears why at once.
            self.stats.refused += 1;
            if hdr.version == refuse::VERSION_1 {
                if let Some(p) = refuse::refusal(&hdr.dcid, &hdr.scid, &new_cid(), REFUSAL_REASON) {
                    self.push_response(from, &p);
                }
            }
            return None;
        }
        let (scid, odcid, mut cids) = match &self.retry {
            Some(key) => {
                let token = hdr.token.as_deref().unwrap_or_default();
                if token.is_empty() {
                    let new_scid = new_cid();
                    let token = key.mint(&from, &hdr.dcid, self.clock.secs());
                    let mut out = [0u8; 1350];
                    let new = quiche::ConnectionId::from_ref(&new_scid);
                    if let Ok(n) = quiche::retry(&hdr.scid, &hdr.dcid, &new, &token, hdr.version, &mut out) {
                        self.stats.retries_sent += 1;
                        self.push_response(from, &out[..n]);
                    }
                    return None;
                }
                let Some(odcid) = key.validate(&from, token, self.clock.secs()) else {
                    self.stats.refused += 1; // forged, expired or for another address
                    return None;
                };
                if hdr.dcid.len() != CID_LEN {
                    self.stats.refused += 1;
                    return None;
                }
                (hdr.dcid.to_vec(), Some(odcid), Vec::new())
            }
            None => {
                // Without Retry the client keeps its chosen DCID until it hears from us: route both.
                (new_cid().to_vec(), None, vec![hdr.dcid.to_vec()])
            }
        };
        let scid_ref = quiche::ConnectionId::from_ref(&scid);
        let odcid_ref = odcid.as_deref().map(quiche::ConnectionId::from_ref);
        // The client uses this token to recognise our stateless reset for this connection ID.
        self.config.set_stateless_reset_token(self.reset_token(&scid));
        let q = match quiche::accept(&scid_ref, odcid_ref.as_ref(), local, from, &mut self.config) {
            Ok(q) => q,
            Err(_) => {
                self.stats.refused += 1;
                return None;
            }
        };
        cids.push(scid.clone());
        let id = self.add(q, cids);
        self.events.push_back(QsEvent { kind: QS_EVENT_CONNECTION_INCOMING, conn: id, ..Default::default() });
        Some(id)
    }

    /// The stateless reset token of one of our connection IDs (RFC 9000 §10.3.2: a keyed hash of it).
    fn reset_token(&self, cid: &[u8]) -> Option<u128> {
        let key = self.reset_key.as_ref()?;
        let mac = boring::hmac_sha256(key, cid);
        Some(u128::from_be_bytes(mac[..16].try_into().expect("16 bytes")))
    }

    /// Answers a short-header packet for a connection this server does not know (it restarted, or the
    /// connection is gone) with a stateless reset (RFC 9000 §10.3), so its client closes at once instead
    /// of after the idle timeout. The reset is shorter than what triggered it, so two endpoints can never
    /// keep resetting each other, and it looks like any short-header packet: a fixed bit, random bytes,
    /// then the token.
    fn reset(&mut self, dcid: &[u8], dgram_len: usize, to: SocketAddr) {
        const MIN_RESET: usize = 21; // a first byte, 4 unpredictable bytes, the 16-byte token
        if dcid.len() != CID_LEN || dgram_len <= MIN_RESET {
            return;
        }
        let Some(token) = self.reset_token(dcid) else { return };
        let len = (dgram_len - 1).min(43);
        let mut p = vec![0u8; len];
        boring::random(&mut p[..len - 16]);
        p[0] = 0x40 | (p[0] & 0x3f);
        p[len - 16..].copy_from_slice(&token.to_be_bytes());
        self.stats.resets_sent += 1;
        self.push_response(to, &p);
    }

    /// Fills `buf` with one batch for one segmentation-offload send: consecutive
    /// datagrams of one connection to one destination, every one but the last
    /// full-sized, at most `max_segments` of them, whose pacing release times lie
    /// within quiche's release horizon (`max_release_into_future`: RTT/8, 1 to 5 ms)
    /// of the first. The batch leaves at its first datagram's time, or up to `QS_PACING_SLACK_NS` before.
    fn poll_transmit(&mut self, buf: &mut [u8], max_segments: usize) -> Option<QsTransmit> {
        if let Some((to, data)) = self.responses.pop_front() {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            let a = QsAddr::from_socket_addr(&to);
            return Some(QsTransmit { to: a, from: QsAddr::from_socket_addr(&unspecified_like(&to)), len: n, segment_size: n, delay_ns: 0 });
        }
        let now = self.clock.now;
        let due_by = now + PACING_SLACK;
        let mut len = 0usize;
        let mut segment = 0usize;
        let mut dest: Option<(SocketAddr, SocketAddr, Instant, u64)> = None;
        // One batch per connection in turn: a busy connection cannot starve the rest, and one
        // whose next datagram is paced for later waits without holding up those that are due.
        for _ in 0..self.order.len() {
            if self.cursor >= self.order.len() {
                self.cursor = 0;
            }
            let id = self.order[self.cursor];
            self.cursor += 1;
            self.fill(id, buf, max_segments, due_by, &mut len, &mut segment, &mut dest);
            if len > 0 {
                break;
            }
        }
        self.settle_touched();
        let (to, from, at, _) = dest?;
        Some(QsTransmit {
            to: QsAddr::from_socket_addr(&to),
            from: QsAddr::from_socket_addr(&from),
            len,
            segment_size: segment.min(len),
            delay_ns: u64::try_from(at.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX),
        })
    }

    /// Appends datagrams of connection `id` that are due by `due_by` to the batch in `buf[..*len]`
    /// (empty on entry); a datagram quiche paces for later is held on the connection instead.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        id: u64,
        buf: &mut [u8],
        max_segments: usize,
        due_by: Instant,
        len: &mut usize,
        segment: &mut usize,
        dest: &mut Option<(SocketAddr, SocketAddr, Instant, u64)>,
    ) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        // quiche paces by stamping each datagram with a release time and restarts its
        // schedule from the time of a send() that comes late; a batch per send quantum
        // (two datagrams at high rates) means a timer wake-up every few microseconds,
        // each late by the wake-up latency, and BBR then measures the lost time as lost
        // bandwidth. Batching up to the horizon quiche itself allows to be released
        // early keeps the wake-ups rare and the schedule intact.
        let horizon = c.q.max_release_into_future();
        let max_dgram = c.q.max_send_udp_payload_size().max(1200);
        if let Some(h) = c.held {
            if h.at > due_by {
                return; // still paced: the caller's timeout brings it back at its time
            }
            buf[..h.len].copy_from_slice(&c.held_buf[..h.len]);
            c.held = None;
            *len = h.len;
            *segment = h.len;
            *dest = Some((h.to, h.from, h.at, id));
        }
        loop {
            // A short datagram ends a batch (only the last may be shorter: an ACK, a padded
            // Initial, a tail), and so does the segment limit.
            if *segment > 0 && (*segment < max_dgram || *len % *segment != 0 || *len / *segment >= max_segments) {
                break;
            }
            let room = if *segment == 0 { max_dgram } else { *segment };
            if *len + room > buf.len() {
                break;
            }
            match c.q.send(&mut buf[*len..*len + room]) {
                Ok((n, info)) => {
                    if *len == 0 {
                        if info.at > due_by {
                            c.hold(&buf[..n], &info); // paced for later: the other connections go first
                            break;
                        }
                        *segment = n;
                        *dest = Some((info.to, info.from, info.at, id));
                        *len = n;
                    } else if dest.is_some_and(|d| d.0 == info.to && info.at <= d.2 + horizon) && n <= *segment {
                        *len += n;
                    } else {
                        // Another destination, size, or a later release time: it starts this connection's next batch.
                        let (at, end) = (*len, *len + n);
                        c.hold(&buf[at..end], &info);
                        break;
                    }
                }
                Err(e) => {
                    // Nothing more to send; a failed send, or a close that went out, changes its state.
                    if e != quiche::Error::Done || (c.q.is_closed() && !c.drained) {
                        self.touch(id);
                    }
                    break;
                }
            }
        }
    }

    /// The earliest connection timer, or the time a held (paced) datagram may leave (its release
    /// time less the slack).
    fn timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| match (c.deadline(), c.held.map(|h| h.at.checked_sub(PACING_SLACK).unwrap_or(h.at))) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min()
    }

    fn on_timeout(&mut self) {
        let now = self.clock.now;
        for (id, c) in self.conns.iter_mut() {
            if c.deadline().is_some_and(|t| t <= now) {
                c.on_timeout(now);
                self.touched.push(*id); // each connection once: this is the only pass
            }
        }
        self.settle_touched();
    }
}

/// The error for a connection id the endpoint does not hold.
pub(crate) fn unknown_conn(id: u64) -> QsError {
    QsError::new(crate::error::QS_ERR_CONNECTION_CLOSED, format!("connection {id} is unknown or already closed and drained"))
}

/// Runs `f` on the endpoint at its latest time.
pub(crate) fn with_endpoint<T>(ep: *mut QsEndpoint, f: impl FnOnce(&mut QsEndpoint) -> QsResult<T>) -> QsResult<T> {
    with_endpoint_at(ep, None, f)
}

/// Runs `f` on the endpoint, first moving its clock to `now_ns` when a driving call brings one.
fn with_endpoint_at<T>(ep: *mut QsEndpoint, now_ns: Option<u64>, f: impl FnOnce(&mut QsEndpoint) -> QsResult<T>) -> QsResult<T> {
    if ep.is_null() {
        return Err(QsError::arg("endpoint is null"));
    }
    // SAFETY: non-null handle from qs_endpoint_new; the caller serialises access.
    let e = unsafe { &mut *ep };
    if let Some(ns) = now_ns {
        e.clock.advance(ns);
    }
    let _time = EngineTime::set(e.clock.now);
    f(e)
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

/// Lends a buffer of at least `min_len` bytes to receive the next datagram (or
/// GRO batch) into; pass its length to `qs_endpoint_recv` with a null `data`
/// (or the same pointer) and the engine decrypts it in place, without a copy.
/// Valid until the next call on this endpoint.
#[no_mangle]
pub extern "C" fn qs_endpoint_recv_buffer(ep: *mut QsEndpoint, min_len: usize, out_ptr: *mut *mut u8) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            if e.rx.len() < min_len {
                e.rx.resize(min_len, 0);
            }
            out(out_ptr, e.rx.as_mut_ptr(), "buffer pointer")?;
            Ok(QS_OK)
        })
    })
}

/// Feeds received bytes from `from`. With `segment_size` > 0 the buffer holds
/// several datagrams of that size (a GRO batch; the last may be shorter).
/// `data` is either the buffer from `qs_endpoint_recv_buffer` (no copy) or any
/// other buffer (copied). `local` (nullable) is the address the datagram arrived on.
/// `now_ns` is when it arrived, on the caller's monotonic clock.
#[no_mangle]
pub extern "C" fn qs_endpoint_recv(
    ep: *mut QsEndpoint,
    now_ns: u64,
    data: *const u8,
    len: usize,
    segment_size: usize,
    from: *const QsAddr,
    local: *const QsAddr,
) -> i32 {
    guard_status(|| {
        let from = read_addr(from, "source address")?;
        let local = if local.is_null() { unspecified_like(&from) } else { read_addr(local, "local address")? };
        with_endpoint_at(ep, Some(now_ns), |e| {
            if len == 0 {
                return Ok(QS_OK);
            }
            let lent = !data.is_null() && data == e.rx.as_ptr() && len <= e.rx.len();
            if !lent {
                let bytes = slice(data, len, "datagram")?;
                if e.rx.len() < len {
                    e.rx.resize(len, 0);
                }
                e.rx[..len].copy_from_slice(bytes);
            }
            e.recv(len, segment_size, from, local);
            Ok(QS_OK)
        })
    })
}

/// Writes the next datagram(s) to send into `buf` (at most `max_segments` of
/// them, to one destination, as one GSO batch: all `segment_size` long but the
/// last) and describes them in `out`, with the time they should leave (a delay
/// from `now_ns`). Returns QS_OK, or QS_DONE when there is nothing to send now.
#[no_mangle]
pub extern "C" fn qs_endpoint_poll_transmit(
    ep: *mut QsEndpoint,
    now_ns: u64,
    buf: *mut u8,
    cap: usize,
    max_segments: usize,
    out_tx: *mut QsTransmit,
) -> i32 {
    guard_status(|| {
        let buf = slice_mut(buf, cap, "transmit buffer")?;
        if buf.len() < 1500 {
            return Err(QsError::arg(format!("transmit buffer of {} bytes is too small; give at least 65536", buf.len())));
        }
        if out_tx.is_null() {
            return Err(QsError::arg("transmit descriptor (out parameter) is null"));
        }
        with_endpoint_at(ep, Some(now_ns), |e| match e.poll_transmit(buf, max_segments.max(1)) {
            Some(t) => {
                out(out_tx, t, "transmit descriptor")?;
                Ok(QS_OK)
            }
            None => Ok(QS_DONE),
        })
    })
}

/// Returns nanoseconds from `now_ns` until `qs_endpoint_on_timeout` should be called
/// (0: now), or QS_DONE if no timer is armed.
#[no_mangle]
pub extern "C" fn qs_endpoint_timeout(ep: *mut QsEndpoint, now_ns: u64) -> i64 {
    guard(|| {
        with_endpoint_at(ep, Some(now_ns), |e| {
            Ok(match e.timeout() {
                None => QS_DONE as i64,
                Some(t) => i64::try_from(t.saturating_duration_since(e.clock.now).as_nanos()).unwrap_or(i64::MAX),
            })
        })
    })
}

/// Fires every timer that is due at `now_ns`.
#[no_mangle]
pub extern "C" fn qs_endpoint_on_timeout(ep: *mut QsEndpoint, now_ns: u64) -> i32 {
    guard_status(|| {
        with_endpoint_at(ep, Some(now_ns), |e| {
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
                    e.forget(ev.conn);
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
/// `now_ns` is the caller's monotonic clock (its idle timer starts then).
#[no_mangle]
pub extern "C" fn qs_endpoint_connect(
    ep: *mut QsEndpoint,
    now_ns: u64,
    to: *const QsAddr,
    server_name: *const u8,
    server_name_len: usize,
    out_conn: *mut u64,
) -> i32 {
    guard_status(|| {
        let to = read_addr(to, "server address")?;
        let name = utf8(server_name, server_name_len, "server name")?;
        if name.is_empty() {
            return Err(QsError::arg("server name is empty: give the DNS name or IP address the server's certificate covers"));
        }
        with_endpoint_at(ep, Some(now_ns), |e| {
            let trust = e.trust.clone().ok_or_else(|| {
                QsError::state("this endpoint was created as a server; create a client endpoint to connect")
            })?;
            let scid = new_cid();
            let local = unspecified_like(&to);
            // An IP literal is no SNI host name (RFC 6066 §3); it is still checked against the IP SANs.
            let sni = name.parse::<IpAddr>().is_err().then_some(name);
            let q = quiche::connect(sni, &quiche::ConnectionId::from_ref(&scid), local, to, &mut e.config)
                .map_err(|err| QsError::new(QS_ERR_CONNECT, format!("cannot connect to {to} as '{name}': {err}")))?;
            let id = e.add(q, vec![scid.to_vec()]);
            if let Some(c) = e.conns.get_mut(&id) {
                c.verify = Some((name.to_string(), trust));
            }
            e.settle(id);
            out(out_conn, id, "connection id")?;
            Ok(QS_OK)
        })
    })
}

/// Closes every connection with an application error code and reason (for shutdown).
#[no_mangle]
pub extern "C" fn qs_endpoint_close_all(ep: *mut QsEndpoint, code: u64, reason: *const u8, reason_len: usize) -> i32 {
    guard_status(|| {
        let reason = slice(reason, reason_len, "reason")?.to_vec();
        with_endpoint(ep, |e| {
            let ids: Vec<u64> = e.conns.keys().copied().collect();
            for id in ids {
                if let Some(c) = e.conns.get_mut(&id) {
                    let _ = c.q.close(true, code, &reason);
                }
                e.settle(id);
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
            s.unauthenticated_bytes = e.intake.held();
            s.refused_requests = e.intake.refused;
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
