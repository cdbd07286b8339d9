//! Bounds on what a peer that has not authenticated can make a server hold.
//!
//! A request authenticates with its header section (the token is a header), so
//! until a connection's first request is accepted (`qs_conn_authenticated`),
//! every request stream whose header section is incomplete costs memory on the
//! peer's word alone: the bytes the transport buffers for it (gaps included) and
//! the HTTP/3 layer's buffer for the frame in progress. For such connections the
//! endpoint counts that memory per connection, per peer address and in total, and
//! refuses (H3_REQUEST_REJECTED, state freed) streams over a limit or older than
//! the header deadline. Authenticated connections are bounded by their flow-control
//! windows and the application's per-client limits instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::conn::{Conn, H3_REQUEST_REJECTED};
use crate::endpoint::{with_endpoint, QsEndpoint};
use crate::error::{guard_status, QsError, QS_OK};

/// Limits on requests from connections that have not authenticated (see the module text).
/// Zero in a field means the default.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QsIntakeLimits {
    /// How long a request's header section may take to arrive whole (default 10 s).
    pub header_timeout_ms: u64,
    /// Incomplete header sections one such connection may have open at once (default 32).
    pub max_streams_per_connection: u64,
    /// Bytes held for one such connection's incomplete requests (default 1 MiB).
    pub max_bytes_per_connection: u64,
    /// Bytes held for all such connections from one IP address (default 8 MiB).
    pub max_bytes_per_address: u64,
    /// Bytes held for all such connections together (default 64 MiB).
    pub max_bytes_total: u64,
}

impl Default for QsIntakeLimits {
    fn default() -> Self {
        QsIntakeLimits {
            header_timeout_ms: 10_000,
            max_streams_per_connection: 32,
            max_bytes_per_connection: 1 << 20,
            max_bytes_per_address: 8 << 20,
            max_bytes_total: 64 << 20,
        }
    }
}

impl QsIntakeLimits {
    /// Zero fields replaced by their defaults.
    fn resolved(self) -> Self {
        let d = QsIntakeLimits::default();
        let or = |v: u64, def: u64| if v == 0 { def } else { v };
        QsIntakeLimits {
            header_timeout_ms: or(self.header_timeout_ms, d.header_timeout_ms),
            max_streams_per_connection: or(self.max_streams_per_connection, d.max_streams_per_connection),
            max_bytes_per_connection: or(self.max_bytes_per_connection, d.max_bytes_per_connection),
            max_bytes_per_address: or(self.max_bytes_per_address, d.max_bytes_per_address),
            max_bytes_total: or(self.max_bytes_total, d.max_bytes_total),
        }
    }
}

/// The endpoint's side: limits and what is held per address and in total.
pub(crate) struct Intake {
    limits: QsIntakeLimits,
    by_address: HashMap<IpAddr, u64>,
    total: u64,
    /// Streams refused so far (limits or deadline).
    pub(crate) refused: u64,
}

/// A connection's side.
#[derive(Default)]
pub(crate) struct ConnIntake {
    pub(crate) authenticated: bool,
    /// Bytes this connection counts in its address's and the total sums.
    held: u64,
    address: Option<IpAddr>,
    /// When each incomplete request stream was first seen.
    since: HashMap<u64, Instant>,
    /// The earliest header deadline among them.
    pub(crate) deadline: Option<Instant>,
}

/// One incomplete request stream found by a check.
struct Pending {
    id: u64,
    bytes: u64,
    since: Instant,
}

impl Intake {
    pub(crate) fn new() -> Intake {
        Intake { limits: QsIntakeLimits::default(), by_address: HashMap::new(), total: 0, refused: 0 }
    }

    /// Bytes held now for connections that have not authenticated.
    pub(crate) fn held(&self) -> u64 {
        self.total
    }

    /// Takes a connection's bytes out of the sums: it authenticated, closed or is gone.
    pub(crate) fn release(&mut self, c: &mut Conn) {
        let i = &mut c.intake;
        if let Some(a) = i.address {
            self.account(a, i.held, 0);
        }
        i.held = 0;
        i.since.clear();
        i.deadline = None;
    }

    fn account(&mut self, address: IpAddr, old: u64, new: u64) {
        self.total = self.total - old + new;
        let sum = self.by_address.entry(address).or_insert(0);
        *sum = *sum - old + new;
        if *sum == 0 {
            self.by_address.remove(&address);
        }
    }

    /// Counts what an unauthenticated server connection holds for its incomplete requests and
    /// refuses the streams over a limit or past the header deadline. Cheap when the peer has
    /// opened few streams; authenticated connections are never checked.
    pub(crate) fn check(&mut self, c: &mut Conn, now: Instant) {
        if c.intake.authenticated || !c.connected || c.closed {
            if c.intake.held > 0 || c.intake.deadline.is_some() {
                self.release(c);
            }
            return;
        }
        let Some(h3) = c.h3.as_ref() else { return };
        if c.intake.address.is_none() {
            c.intake.address = c.q.path_stats().next().map(|p| p.peer_addr.ip());
        }
        let Some(address) = c.intake.address else { return };
        let mut pending: Vec<Pending> = Vec::new();
        let since = &mut c.intake.since;
        for (id, held) in c.q.peer_bidi_streams_held() {
            if c.h3_streams.get(&id).is_some_and(|s| s.headers.is_some()) {
                continue;
            }
            let bytes = (held + h3.stream_held_bytes(id)) as u64;
            pending.push(Pending { id, bytes, since: *since.entry(id).or_insert(now) });
        }
        if pending.is_empty() && since.is_empty() && c.intake.held == 0 {
            return; // the usual case: every request so far arrived whole
        }
        since.retain(|id, _| pending.iter().any(|p| p.id == *id));

        let limits = self.limits;
        let timeout = Duration::from_millis(limits.header_timeout_ms);
        let mut refuse = Vec::new();
        // Past the deadline.
        pending.retain(|p| {
            let late = p.since + timeout <= now;
            if late {
                refuse.push(p.id);
            }
            !late
        });
        // Too many at once: the newest go.
        pending.sort_unstable_by_key(|p| p.id);
        while pending.len() as u64 > limits.max_streams_per_connection {
            refuse.push(pending.pop().expect("non-empty").id);
        }
        // Too many bytes: the largest go, until this connection, its address and the total fit.
        pending.sort_unstable_by_key(|p| p.bytes);
        let mut held: u64 = pending.iter().map(|p| p.bytes).sum();
        let others_here = self.by_address.get(&address).copied().unwrap_or(0) - c.intake.held;
        let others = self.total - c.intake.held;
        while held > 0
            && (held > limits.max_bytes_per_connection
                || others_here + held > limits.max_bytes_per_address
                || others + held > limits.max_bytes_total)
        {
            let p = pending.pop().expect("bytes are held by some stream");
            held -= p.bytes;
            refuse.push(p.id);
        }

        for id in refuse {
            // Both directions: the peer learns the request was not processed and may retry it.
            let _ = c.q.stream_shutdown(id, quiche::Shutdown::Read, H3_REQUEST_REJECTED);
            let _ = c.q.stream_shutdown(id, quiche::Shutdown::Write, H3_REQUEST_REJECTED);
            if let Some(h3) = c.h3.as_mut() {
                h3.forget_stream(id);
            }
            c.intake.since.remove(&id);
            self.refused += 1;
        }
        let old = c.intake.held;
        self.account(address, old, held);
        c.intake.held = held;
        c.intake.deadline = pending.iter().map(|p| p.since).min().map(|s| s + timeout);
    }
}

/// Server: sets the limits on requests from connections that have not authenticated (see
/// `QsIntakeLimits`; zero fields take their defaults). Applies from the next check of each
/// connection.
#[no_mangle]
pub extern "C" fn qs_endpoint_set_intake_limits(ep: *mut QsEndpoint, limits: *const QsIntakeLimits) -> i32 {
    guard_status(|| {
        if limits.is_null() {
            return Err(QsError::arg("limits is null"));
        }
        // SAFETY: checked for null; the caller passes a readable QsIntakeLimits.
        let l = unsafe { *limits }.resolved();
        with_endpoint(ep, |e| {
            e.intake.limits = l;
            Ok(QS_OK)
        })
    })
}

/// Server: marks a connection as authenticated (its peer presented a valid credential), which
/// lifts the limits on requests from unauthenticated connections for it.
#[no_mangle]
pub extern "C" fn qs_conn_authenticated(ep: *mut QsEndpoint, conn: u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            // Not `e.conn()`: the connection and the endpoint's intake sums are borrowed together.
            let c = e.conns.get_mut(&conn).ok_or_else(|| crate::endpoint::unknown_conn(conn))?;
            c.intake.authenticated = true;
            e.intake.release(c);
            Ok(QS_OK)
        })
    })
}
