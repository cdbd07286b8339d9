//! Per-connection calls: close, error text, statistics, the peer's address and certificate.

use crate::addr::QsAddr;
use crate::endpoint::{with_endpoint, QsEndpoint};
use crate::error::{copy_text, guard, guard_status, out, slice, slice_mut, QsError, QS_DONE, QS_OK};
use crate::events::QsStats;

/// Closes a connection with an application error code (below 2^62) and a reason.
#[no_mangle]
pub extern "C" fn qs_conn_close(ep: *mut QsEndpoint, conn: u64, code: u64, reason: *const u8, reason_len: usize) -> i32 {
    guard_status(|| {
        let reason = slice(reason, reason_len, "reason")?;
        if code >= 1 << 62 {
            return Err(QsError::arg("error code must be below 2^62"));
        }
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            if c.error.is_none() {
                c.error = Some(format!("closed locally with application code {code}{}", crate::conn::reason_suffix(reason)));
            }
            let _ = c.q.close(true, code, reason);
            e.settle(conn);
            Ok(QS_OK)
        })
    })
}

/// Copies why the connection failed or closed into `buf` and returns the text's
/// full length, or QS_DONE while it is still open.
#[no_mangle]
pub extern "C" fn qs_conn_error(ep: *mut QsEndpoint, conn: u64, buf: *mut u8, cap: usize) -> i64 {
    guard(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            Ok(match (&c.error, c.closed) {
                (Some(text), true) => copy_text(text, buf, cap),
                _ => QS_DONE as i64,
            })
        })
    })
}

/// Fills `out_stats` with the connection's current statistics.
#[no_mangle]
pub extern "C" fn qs_conn_stats(ep: *mut QsEndpoint, conn: u64, out_stats: *mut QsStats) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let s = c.q.stats();
            let p = c.q.path_stats().next();
            let stats = QsStats {
                rtt_ns: p.as_ref().map_or(0, |p| u64::try_from(p.rtt.as_nanos()).unwrap_or(u64::MAX)),
                cwnd: p.as_ref().map_or(0, |p| p.cwnd as u64),
                sent_packets: s.sent as u64,
                lost_packets: s.lost as u64,
                lost_bytes: s.lost_bytes,
                // quiche counts no congestion events; lost packets are the closest measure it exposes.
                congestion_events: s.lost as u64,
                udp_tx_bytes: s.sent_bytes,
                udp_rx_bytes: s.recv_bytes,
                udp_tx_datagrams: s.sent as u64,
                udp_rx_datagrams: s.recv as u64,
                mtu: p.as_ref().map_or(0, |p| p.pmtu as u32),
                handshake_done: u32::from(c.q.is_established()),
                delivery_rate: p.as_ref().map_or(0, |p| p.delivery_rate),
            };
            out(out_stats, stats, "stats")?;
            Ok(QS_OK)
        })
    })
}

/// Writes the peer's address (where its datagrams come from now) into `out_addr`; a server
/// learns its clients' addresses this way. QS_DONE when the connection has no path yet.
#[no_mangle]
pub extern "C" fn qs_conn_peer_addr(ep: *mut QsEndpoint, conn: u64, out_addr: *mut QsAddr) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let Some(p) = c.q.path_stats().next() else { return Ok(QS_DONE) };
            out(out_addr, QsAddr::from_socket_addr(&p.peer_addr), "address")?;
            Ok(QS_OK)
        })
    })
}

/// Copies the DER of the peer's leaf certificate into `buf` and returns its full
/// length (call again with a larger buffer when it exceeds `cap`), or QS_DONE when
/// the peer presented none: on a server, a client without a certificate (or no
/// mutual TLS); on either side, a handshake that has not got that far yet.
#[no_mangle]
pub extern "C" fn qs_conn_peer_certificate(ep: *mut QsEndpoint, conn: u64, buf: *mut u8, cap: usize) -> i64 {
    guard(|| {
        let dest = slice_mut(buf, cap, "certificate buffer")?;
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let Some(leaf) = c.q.peer_cert() else { return Ok(QS_DONE as i64) };
            let n = leaf.len().min(dest.len());
            dest[..n].copy_from_slice(&leaf[..n]);
            Ok(leaf.len() as i64)
        })
    })
}
