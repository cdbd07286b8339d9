//! One connection: the engine's connection, its HTTP/3 layer when enabled, and
//! the bookkeeping that turns the engine's state into caller events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::*;
use crate::h3api::{pack_headers, H3Stream};
use crate::live::Counted;
use crate::trust::{self, ServerTrust};

pub(crate) struct Conn {
    _live: Counted,
    pub(crate) id: u64,
    pub(crate) q: quiche::Connection,
    pub(crate) h3: Option<quiche::h3::Connection>,
    pub(crate) h3_streams: HashMap<u64, H3Stream>,
    /// Client: the name the server's certificate must cover, and how to verify it.
    pub(crate) verify: Option<(String, Arc<ServerTrust>)>,
    pub(crate) require_client_cert: bool,
    pub(crate) connected: bool,
    /// CONNECTION_CLOSED or HANDSHAKE_FAILED was reported.
    pub(crate) closed: bool,
    pub(crate) drained: bool,
    pub(crate) error: Option<String>,
    /// Why the handshake failed, when the shim itself ended it.
    failure: Option<u32>,
    /// Routing keys of this connection in the endpoint's table.
    pub(crate) cids: Vec<Vec<u8>>,
    /// Streams whose last write was refused for lack of credit.
    pub(crate) blocked: HashSet<u64>,
    /// Streams whose sending side was finished, watched until the engine retires them.
    pub(crate) finishing: HashSet<u64>,
    /// Client: the request stream whose header section found no credit (STREAMS_AVAILABLE when it has).
    pub(crate) request_blocked: Option<u64>,
    pub(crate) next_request: u64,
    /// An open was refused by the peer's stream limit (per direction).
    pub(crate) want_streams: [bool; 2],
    next_peer_stream: [u64; 2],
    next_local_stream: [u64; 2],
    /// Peer streams announced before their own data arrived (see `announced_not_created`).
    announced_early: HashSet<u64>,
    /// Raw streams reported readable and not yet read to DONE.
    pub(crate) readable_pending: HashSet<u64>,
    /// Server: the highest request stream seen, for GOAWAY.
    pub(crate) max_request: Option<u64>,
    /// Server: the id of the GOAWAY sent; requests from it on are rejected.
    pub(crate) goaway_sent: Option<u64>,
    /// Server: a GOAWAY the connection had no send credit for, sent once it has.
    pub(crate) goaway_pending: Option<u64>,
    /// Client: the server's GOAWAY id, once received.
    pub(crate) goaway_received: Option<u64>,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) next_keep_alive: Option<Instant>,
    /// A datagram quiche already made that waits here: paced for later, or it did not fit the
    /// last batch. It goes out first, at its time; meanwhile the other connections send.
    pub(crate) held: Option<Held>,
    /// Its bytes: one buffer per connection, kept for reuse.
    pub(crate) held_buf: Vec<u8>,
    /// Server: what this connection holds before it authenticated (see `intake`).
    pub(crate) intake: crate::intake::ConnIntake,
}

/// Where and when a held datagram goes (see `Conn::held`).
#[derive(Clone, Copy)]
pub(crate) struct Held {
    pub(crate) to: std::net::SocketAddr,
    pub(crate) from: std::net::SocketAddr,
    pub(crate) at: Instant,
    pub(crate) len: usize,
}

impl Conn {
    pub(crate) fn new(id: u64, q: quiche::Connection, server: bool, keep_alive: Option<Duration>, now: Instant) -> Conn {
        let first = if server { 0 } else { 1 }; // the peer's stream ids: client-initiated are even
        Conn {
            _live: Counted::new(),
            id,
            q,
            h3: None,
            h3_streams: HashMap::new(),
            verify: None,
            require_client_cert: false,
            connected: false,
            closed: false,
            drained: false,
            error: None,
            failure: None,
            cids: Vec::new(),
            blocked: HashSet::new(),
            finishing: HashSet::new(),
            request_blocked: None,
            next_request: 0,
            want_streams: [false; 2],
            next_peer_stream: [first, first + 2],
            next_local_stream: [1 - first, 3 - first],
            announced_early: HashSet::new(),
            readable_pending: HashSet::new(),
            max_request: None,
            goaway_sent: None,
            goaway_pending: None,
            goaway_received: None,
            keep_alive,
            next_keep_alive: keep_alive.map(|k| now + k),
            held: None,
            held_buf: Vec::new(),
            intake: Default::default(),
        }
    }

    /// The id the next stream this side opens will have (0: bidirectional, 1: unidirectional).
    pub(crate) fn next_local_stream(&self, unidirectional: bool) -> u64 {
        self.next_local_stream[usize::from(unidirectional)]
    }

    pub(crate) fn commit_local_stream(&mut self, unidirectional: bool) {
        self.next_local_stream[usize::from(unidirectional)] += 4;
    }

    /// A peer stream reported as opened (a higher one of its kind arrived) whose own first frame has not.
    pub(crate) fn announced_not_created(&self, sid: u64) -> bool {
        self.announced_early.contains(&sid)
    }

    /// After a write took `taken` of `len` bytes: a short write waits for credit (WRITABLE),
    /// a whole one with the end watches for the stream's completion (STREAM_FINISHED).
    /// Returns what the caller reports: the count, or BLOCKED when nothing was taken.
    pub(crate) fn wrote(&mut self, stream: u64, taken: usize, len: usize, fin: bool) -> i64 {
        if taken < len {
            self.blocked.insert(stream);
        } else if fin {
            self.finishing.insert(stream);
        }
        if taken == 0 && len > 0 {
            crate::error::QS_BLOCKED as i64
        } else {
            taken as i64
        }
    }

    /// Keeps a datagram quiche made for a later batch (see `held`).
    pub(crate) fn hold(&mut self, datagram: &[u8], info: &quiche::SendInfo) {
        if self.held_buf.len() < datagram.len() {
            self.held_buf.resize(datagram.len().max(1500), 0);
        }
        self.held_buf[..datagram.len()].copy_from_slice(datagram);
        self.held = Some(Held { to: info.to, from: info.from, at: info.at, len: datagram.len() });
    }

    /// The earliest time this connection needs `on_timeout`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [self.q.timeout_instant(), self.next_keep_alive.filter(|_| self.connected && !self.closed), self.intake.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.q.timeout_instant().is_some_and(|t| t <= now) {
            self.q.on_timeout();
        }
        if let (Some(at), Some(every)) = (self.next_keep_alive, self.keep_alive) {
            if at <= now {
                let _ = self.q.send_ack_eliciting();
                self.next_keep_alive = Some(now + every);
            }
        }
    }

    /// Ends the handshake from this side with a TLS alert and a reason class.
    fn fail_handshake(&mut self, code: u32, text: String, alert: u64) {
        let _ = self.q.close(false, trust::CRYPTO_ERROR + alert, text.as_bytes());
        self.failure = Some(code);
        self.error = Some(text);
    }

    /// Turns what changed in the engine into caller events.
    pub(crate) fn settle(&mut self, h3_config: Option<&quiche::h3::Config>, events: &mut VecDeque<QsEvent>) {
        if self.drained {
            return;
        }
        // A peer that closed before we saw the handshake complete (a refusal) failed it, whatever TLS finished.
        if !self.connected && !self.closed && self.failure.is_none() && self.q.is_established() && self.q.peer_error().is_none() {
            self.on_established(h3_config, events);
        }
        if self.connected && !self.closed {
            if self.h3.is_some() {
                self.poll_h3(events);
                self.retry_goaway();
            } else {
                self.poll_streams(events);
            }
            self.poll_credit(events);
        }
        let ended = self.q.is_closed() || self.q.is_draining() || self.q.local_error().is_some() || self.q.peer_error().is_some();
        if ended && !self.closed {
            self.closed = true;
            events.push_back(self.close_event());
        }
        if self.q.is_closed() && !self.drained {
            // The connection is forgotten when the caller takes this event, so that it can
            // still ask (qs_conn_error, stats) about the events queued before it.
            self.drained = true;
            events.push_back(QsEvent { kind: QS_EVENT_CONNECTION_DRAINED, conn: self.id, ..Default::default() });
        }
    }

    fn on_established(&mut self, h3_config: Option<&quiche::h3::Config>, events: &mut VecDeque<QsEvent>) {
        if let Some((name, trust)) = self.verify.take() {
            let chain = self.q.peer_cert_chain().unwrap_or_default();
            if let Err(f) = trust.verify(&chain, &name) {
                self.fail_handshake(f.code, f.text, f.alert);
                return;
            }
        }
        if self.require_client_cert && self.q.peer_cert().is_none() {
            self.fail_handshake(
                trust::QS_TLS_CERTIFICATE_REQUIRED,
                "the client presented no certificate, and this server requires one (mutual TLS)".into(),
                trust::ALERT_CERTIFICATE_REQUIRED,
            );
            return;
        }
        if let Some(cfg) = h3_config {
            match quiche::h3::Connection::with_transport(&mut self.q, cfg) {
                Ok(h3) => self.h3 = Some(h3),
                Err(e) => {
                    let _ = self.q.close(true, 0x102, b"HTTP/3 could not start");
                    self.error = Some(format!("HTTP/3 could not start on this connection: {e}"));
                    return;
                }
            }
        }
        self.connected = true;
        events.push_back(QsEvent { kind: QS_EVENT_CONNECTED, conn: self.id, ..Default::default() });
    }

    fn close_event(&mut self) -> QsEvent {
        let mut e = QsEvent { conn: self.id, ..Default::default() };
        let local = self.q.local_error().cloned();
        let peer = self.q.peer_error().cloned();
        let timed_out = self.q.is_timed_out();
        if !self.connected {
            e.kind = QS_EVENT_HANDSHAKE_FAILED;
            e.detail = if let Some(code) = self.failure {
                code
            } else if timed_out {
                trust::QS_TIMED_OUT
            } else if let Some(p) = &peer {
                trust::classify_close(p.is_app, p.error_code)
            } else if let Some(l) = &local {
                trust::classify_close(l.is_app, l.error_code)
            } else {
                trust::QS_HANDSHAKE_OTHER
            };
            e.code = peer.as_ref().or(local.as_ref()).map_or(0, |c| c.error_code);
        } else {
            e.kind = QS_EVENT_CONNECTION_CLOSED;
            (e.detail, e.code) = if timed_out {
                (QS_CLOSE_TIMED_OUT, 0)
            } else if let Some(p) = &peer {
                (if p.is_app { QS_CLOSE_APPLICATION } else { QS_CLOSE_TRANSPORT }, p.error_code)
            } else if let Some(l) = &local {
                if l.is_app && crate::h3api::is_h3_error(l.error_code) && self.error.is_none() {
                    (QS_CLOSE_H3_PROTOCOL, l.error_code)
                } else if l.is_app {
                    (QS_CLOSE_LOCAL, l.error_code)
                } else {
                    (QS_CLOSE_TRANSPORT, l.error_code)
                }
            } else {
                // quiche closes without an error of either side only on a stateless reset.
                (QS_CLOSE_RESET, 0)
            };
        }
        if self.error.is_none() {
            self.error = Some(describe(timed_out, peer.as_ref(), local.as_ref(), e.kind));
        }
        e
    }

    /// Raw QUIC: new peer streams and readable ones.
    fn poll_streams(&mut self, events: &mut VecDeque<QsEvent>) {
        let id = self.id;
        for sid in self.q.readable() {
            let peer_initiated = (sid & 1 == 1) == !self.q.is_server();
            if peer_initiated {
                let dir = ((sid >> 1) & 1) as usize;
                // The peer may open streams out of order; lower ids of the same kind open with it.
                while self.next_peer_stream[dir] <= sid {
                    let opened = self.next_peer_stream[dir];
                    events.push_back(QsEvent { kind: QS_EVENT_STREAM_OPENED, detail: dir as u32, conn: id, stream: opened, code: 0 });
                    self.next_peer_stream[dir] += 4;
                    if opened != sid {
                        self.announced_early.insert(opened);
                    }
                }
                self.announced_early.remove(&sid);
            }
            if self.readable_pending.insert(sid) {
                events.push_back(QsEvent { kind: QS_EVENT_STREAM_READABLE, conn: id, stream: sid, ..Default::default() });
            }
        }
    }

    /// A GOAWAY that found no credit (connection flow control or the congestion window) goes out when there is some.
    fn retry_goaway(&mut self) {
        let (Some(id), Some(h3)) = (self.goaway_pending, self.h3.as_mut()) else { return };
        if !matches!(h3.send_goaway(&mut self.q, id), Err(quiche::h3::Error::StreamBlocked)) {
            self.goaway_pending = None;
        }
    }

    /// Blocked writers and openers: tell them when credit came back (or the peer stopped the stream).
    fn poll_credit(&mut self, events: &mut VecDeque<QsEvent>) {
        let id = self.id;
        if !self.blocked.is_empty() {
            let q = &mut self.q;
            // An HTTP/3 body write needs room for a DATA frame header (type and a
            // length of up to 8 bytes) besides its payload: waking it with less
            // only makes it block again, over and over.
            let least = if self.h3.is_some() { 10 } else { 1 };
            self.blocked.retain(|&sid| match q.stream_capacity(sid) {
                Ok(n) if n < least => true,
                Ok(_) => {
                    events.push_back(QsEvent { kind: QS_EVENT_STREAM_WRITABLE, conn: id, stream: sid, ..Default::default() });
                    false
                }
                Err(quiche::Error::StreamStopped(code)) => {
                    events.push_back(QsEvent { kind: QS_EVENT_STREAM_STOPPED, conn: id, stream: sid, code, ..Default::default() });
                    false
                }
                Err(_) => {
                    // Gone (reset, finished and acknowledged): let the writer find out by writing.
                    events.push_back(QsEvent { kind: QS_EVENT_STREAM_WRITABLE, conn: id, stream: sid, ..Default::default() });
                    false
                }
            });
        }
        if !self.finishing.is_empty() {
            let q = &mut self.q;
            self.finishing.retain(|&sid| match q.stream_capacity(sid) {
                Err(quiche::Error::InvalidStreamState(_)) => {
                    events.push_back(QsEvent { kind: QS_EVENT_STREAM_FINISHED, conn: id, stream: sid, ..Default::default() });
                    false
                }
                Err(quiche::Error::StreamStopped(_)) => false,
                _ => true,
            });
        }
        if let Some(sid) = self.request_blocked {
            if self.q.stream_capacity(sid).map_or(true, |n| n >= 1024) {
                self.request_blocked = None;
                events.push_back(QsEvent { kind: QS_EVENT_STREAMS_AVAILABLE, detail: 0, conn: id, ..Default::default() });
            }
        }
        for dir in 0..2 {
            let left = if dir == 0 { self.q.peer_streams_left_bidi() } else { self.q.peer_streams_left_uni() };
            if self.want_streams[dir] && left > 0 {
                self.want_streams[dir] = false;
                events.push_back(QsEvent { kind: QS_EVENT_STREAMS_AVAILABLE, detail: dir as u32, conn: id, ..Default::default() });
            }
        }
    }

    /// HTTP/3: requests, responses, bodies, trailers, resets and GOAWAY.
    fn poll_h3(&mut self, events: &mut VecDeque<QsEvent>) {
        let id = self.id;
        let server = self.q.is_server();
        let Some(h3) = self.h3.as_mut() else { return };
        loop {
            match h3.poll(&mut self.q) {
                Ok((sid, quiche::h3::Event::Headers { list, more_frames })) => {
                    if server && !self.h3_streams.contains_key(&sid) {
                        if check_request(&list).is_err() {
                            // RFC 9114 §4.1.2: a malformed request is a stream error of type H3_MESSAGE_ERROR.
                            let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Read, H3_MESSAGE_ERROR);
                            let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Write, H3_MESSAGE_ERROR);
                            continue;
                        }
                        if self.goaway_sent.is_some_and(|g| sid >= g) {
                            // RFC 9114 §5.2: a request at or past the GOAWAY id was not processed; the
                            // client may retry it elsewhere. quiche itself lets it through.
                            let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Read, H3_REQUEST_REJECTED);
                            let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Write, H3_REQUEST_REJECTED);
                            continue;
                        }
                    }
                    if !server && !self.h3_streams.get(&sid).is_some_and(|s| s.headers.is_some()) && check_response(&list).is_err() {
                        // A malformed response (RFC 9114 §4.1.2): refused on its stream, reported as a reset with H3_MESSAGE_ERROR.
                        let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Read, H3_MESSAGE_ERROR);
                        let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Write, H3_MESSAGE_ERROR);
                        self.h3_streams.entry(sid).or_default().reset = Some(H3_MESSAGE_ERROR);
                        events.push_back(QsEvent { kind: QS_EVENT_H3_RESET, conn: id, stream: sid, code: H3_MESSAGE_ERROR, ..Default::default() });
                        continue;
                    }
                    let packed = pack_headers(&list);
                    let len = packed.len() as u64;
                    let s = self.h3_streams.entry(sid).or_default();
                    if s.headers.is_none() {
                        s.headers = Some(packed);
                        s.finished |= !more_frames;
                        if server {
                            self.max_request = Some(self.max_request.map_or(sid, |m| m.max(sid)));
                        }
                        // The size comes with the event, so the caller copies the section out in one call.
                        events.push_back(QsEvent { kind: QS_EVENT_H3_HEADERS, conn: id, stream: sid, code: len, ..Default::default() });
                    } else if server && check_trailers(&list).is_err() {
                        // A malformed trailer section makes the whole request malformed (RFC 9114 §4.1.2).
                        let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Read, H3_MESSAGE_ERROR);
                        let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Write, H3_MESSAGE_ERROR);
                        s.reset = Some(H3_MESSAGE_ERROR);
                        events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn: id, stream: sid, code: H3_MESSAGE_ERROR, ..Default::default() });
                    } else {
                        s.trailers = Some(packed);
                        s.finished |= !more_frames;
                        events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn: id, stream: sid, ..Default::default() });
                    }
                }
                Ok((sid, quiche::h3::Event::Data)) => {
                    events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn: id, stream: sid, ..Default::default() });
                }
                Ok((sid, quiche::h3::Event::Finished)) => {
                    if let Some(s) = self.h3_streams.get_mut(&sid) {
                        // A reset stream also counts as finished in quiche's transport (its read offset jumps to the
                        // final size): should the h3 layer report it as Finished without having read on, the body
                        // must not look complete. An empty read surfaces the reset and has no effect otherwise.
                        if let Err(quiche::Error::StreamReset(code)) = self.q.stream_recv(sid, &mut []) {
                            s.reset = Some(code);
                        } else {
                            s.finished = true;
                        }
                        events.push_back(QsEvent { kind: QS_EVENT_H3_DATA, conn: id, stream: sid, ..Default::default() });
                    } else if server && sid & 3 == 0 {
                        // RFC 9114 §4.1: a request stream that ends before its header section is incomplete.
                        let _ = self.q.stream_shutdown(sid, quiche::Shutdown::Write, H3_REQUEST_INCOMPLETE);
                    }
                }
                Ok((sid, quiche::h3::Event::Reset(code))) => {
                    if let Some(s) = self.h3_streams.get_mut(&sid) {
                        s.reset = Some(code);
                        let kind = if server || s.headers.is_some() { QS_EVENT_H3_DATA } else { QS_EVENT_H3_RESET };
                        events.push_back(QsEvent { kind, conn: id, stream: sid, code, ..Default::default() });
                    } else if server {
                        // A request reset before its header section completed: nobody will read it, and quiche
                        // would keep the partial section's buffer until the connection ends.
                        h3.forget_stream(sid);
                    }
                }
                Ok((goaway_id, quiche::h3::Event::GoAway)) => {
                    if !server {
                        self.goaway_received = Some(goaway_id);
                        events.push_back(QsEvent { kind: QS_EVENT_H3_GOAWAY, conn: id, stream: goaway_id, ..Default::default() });
                    }
                }
                Ok((_, quiche::h3::Event::PriorityUpdate)) => {}
                Err(quiche::h3::Error::Done) => break,
                Err(_) => break, // a protocol error: quiche has closed the connection with its code
            }
        }
    }
}

pub(crate) const H3_REQUEST_REJECTED: u64 = 0x10b;
pub(crate) const H3_REQUEST_INCOMPLETE: u64 = 0x10d;
pub(crate) const H3_MESSAGE_ERROR: u64 = 0x10e;

/// RFC 9114 §4.1.2, §4.2, §4.3.1: what makes a request's header section malformed.
fn check_request(list: &[quiche::h3::Header]) -> Result<(), &'static str> {
    use quiche::h3::NameValue;
    let mut seen_regular = false;
    let (mut method, mut scheme, mut path, mut authority) = (None, 0, None, 0);
    for h in list {
        let name = h.name();
        check_field(name, h.value())?;
        if name[0] == b':' {
            if seen_regular {
                return Err("a pseudo-header after a regular field");
            }
            match name {
                b":method" => {
                    if method.is_some() {
                        return Err("a repeated :method");
                    }
                    method = Some(h.value().to_vec());
                }
                b":scheme" => scheme += 1,
                b":authority" => authority += 1,
                b":path" => {
                    if path.is_some() {
                        return Err("a repeated :path");
                    }
                    path = Some(h.value().len());
                }
                _ => return Err("an unknown or response pseudo-header"),
            }
        } else {
            seen_regular = true;
            match name {
                b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
                    return Err("a connection-specific field")
                }
                b"te" if h.value() != b"trailers" => return Err("a te field other than 'trailers'"),
                b"content-length" if !is_decimal(h.value()) => return Err("a content-length that is not a number of bytes"),
                _ => {}
            }
        }
    }
    let Some(method) = method else { return Err("no :method") };
    if scheme > 1 || authority > 1 {
        return Err("a repeated :scheme or :authority");
    }
    if method != b"CONNECT" {
        if scheme == 0 {
            return Err("no :scheme");
        }
        match path {
            None => return Err("no :path"),
            Some(0) => return Err("an empty :path"),
            _ => {}
        }
    }
    Ok(())
}

/// RFC 9114 §4.2, RFC 9110 §5.1, §5.5: a field name is a lowercase token (a pseudo-header's after its ':'),
/// and a value carries no NUL, CR or LF (which would let it pose as several fields in logs or HTTP/1).
pub(crate) fn check_field(name: &[u8], value: &[u8]) -> Result<(), &'static str> {
    let token = name.strip_prefix(b":").unwrap_or(name);
    if token.is_empty() {
        return Err("an empty field name");
    }
    if token.iter().any(|b| b.is_ascii_uppercase()) {
        return Err("an uppercase field name");
    }
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if !token.iter().all(tchar) {
        return Err("a field name with a space, ':', a control or non-ASCII character");
    }
    if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err("a field value with NUL, CR or LF");
    }
    Ok(())
}

/// A response's header section: fields as in any section, a content-length of digits (RFC 9110 §8.6).
fn check_response(list: &[quiche::h3::Header]) -> Result<(), &'static str> {
    use quiche::h3::NameValue;
    for h in list {
        check_field(h.name(), h.value())?;
        if h.name() == b"content-length" && !is_decimal(h.value()) {
            return Err("a content-length that is not a number of bytes");
        }
    }
    Ok(())
}

/// A trailer section: fields as in any section, and no pseudo-headers (RFC 9114 §4.3).
fn check_trailers(list: &[quiche::h3::Header]) -> Result<(), &'static str> {
    use quiche::h3::NameValue;
    for h in list {
        check_field(h.name(), h.value())?;
        if h.name()[0] == b':' {
            return Err("a pseudo-header in trailers");
        }
    }
    Ok(())
}

/// RFC 9110 §8.6: content-length = 1*DIGIT (and fits in 64 bits).
fn is_decimal(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit)
}

/// ": reason" when the close carried one, else nothing.
pub(crate) fn reason_suffix(reason: &[u8]) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {}", String::from_utf8_lossy(reason))
    }
}

fn describe(timed_out: bool, peer: Option<&quiche::ConnectionError>, local: Option<&quiche::ConnectionError>, kind: u32) -> String {
    if timed_out {
        return if kind == QS_EVENT_HANDSHAKE_FAILED {
            "timed out: no QUIC server answered within the idle timeout".into()
        } else {
            "timed out: the peer stopped answering within the idle timeout".into()
        };
    }
    if let Some(p) = peer {
        let r = reason_suffix(&p.reason);
        if p.is_app {
            return format!("closed by the peer with application code {}{r}", p.error_code);
        }
        if let Some(alert) = trust::alert_of(p.error_code) {
            let what = match trust::classify_close(false, p.error_code) {
                trust::QS_TLS_CERTIFICATE_REJECTED => " (the peer did not accept this side's certificate)",
                trust::QS_TLS_CERTIFICATE_REQUIRED => " (the peer requires a certificate from this side)",
                _ => "",
            };
            return format!("the peer aborted the TLS handshake with alert {} ({alert}){what}{r}", trust::alert_name(alert));
        }
        if p.error_code == 0x2 {
            return format!("the server refused to accept a new connection (CONNECTION_REFUSED){r}");
        }
        return format!("closed by the peer with transport error 0x{:x}{r}", p.error_code);
    }
    if let Some(l) = local {
        let r = reason_suffix(&l.reason);
        if l.is_app && crate::h3api::is_h3_error(l.error_code) {
            return format!("HTTP/3 protocol error from the peer ({}){r}", crate::h3api::error_name(l.error_code));
        }
        if l.is_app {
            return format!("closed locally with application code {}{r}", l.error_code);
        }
        if let Some(alert) = trust::alert_of(l.error_code) {
            return format!("the TLS handshake failed here with alert {} ({alert}){r}", trust::alert_name(alert));
        }
        return format!("closed with transport error 0x{:x}{r}", l.error_code);
    }
    if kind == QS_EVENT_CONNECTION_CLOSED {
        return "reset by the peer: it no longer knows this connection (a stateless reset, as a server sends after a restart)".into();
    }
    "the connection closed".into()
}
