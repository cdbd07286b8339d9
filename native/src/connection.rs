//! Per-connection calls: close, error text, statistics.

use std::time::Instant;

use bytes::Bytes;
use quinn_proto::VarInt;

use crate::endpoint::{with_endpoint, QsEndpoint, QsStats};
use crate::error::{copy_text, guard, guard_status, out, slice, QsError, QS_DONE, QS_OK};

/// Closes a connection with an application error code (below 2^62) and a reason.
#[no_mangle]
pub extern "C" fn qs_conn_close(ep: *mut QsEndpoint, conn: u64, code: u64, reason: *const u8, reason_len: usize) -> i32 {
    guard_status(|| {
        let reason = Bytes::copy_from_slice(slice(reason, reason_len, "reason")?);
        let code = VarInt::from_u64(code).map_err(|_| QsError::arg("error code must be below 2^62"))?;
        with_endpoint(ep, |e| {
            let (ch, c) = e.conn(conn)?;
            c.inner.close(Instant::now(), code, reason);
            e.settle(ch);
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
            let (_, c) = e.conn(conn)?;
            Ok(match &c.error {
                Some(text) => copy_text(text, buf, cap),
                None => QS_DONE as i64,
            })
        })
    })
}

/// Fills `out_stats` with the connection's current statistics.
#[no_mangle]
pub extern "C" fn qs_conn_stats(ep: *mut QsEndpoint, conn: u64, out_stats: *mut QsStats) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let (_, c) = e.conn(conn)?;
            let s = c.inner.stats();
            let stats = QsStats {
                rtt_ns: u64::try_from(s.path.rtt.as_nanos()).unwrap_or(u64::MAX),
                cwnd: s.path.cwnd,
                sent_packets: s.path.sent_packets,
                lost_packets: s.path.lost_packets,
                lost_bytes: s.path.lost_bytes,
                congestion_events: s.path.congestion_events,
                udp_tx_bytes: s.udp_tx.bytes,
                udp_rx_bytes: s.udp_rx.bytes,
                udp_tx_datagrams: s.udp_tx.datagrams,
                udp_rx_datagrams: s.udp_rx.datagrams,
                mtu: u32::from(s.path.current_mtu),
                handshake_done: u32::from(!c.inner.is_handshaking()),
            };
            out(out_stats, stats, "stats")?;
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
        let dest = crate::error::slice_mut(buf, cap, "certificate buffer")?;
        with_endpoint(ep, |e| {
            let (_, c) = e.conn(conn)?;
            let Some(identity) = c.inner.crypto_session().peer_identity() else {
                return Ok(QS_DONE as i64);
            };
            let certs = identity
                .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .map_err(|_| QsError::state("the peer's identity is not an X.509 certificate chain"))?;
            let Some(leaf) = certs.first() else {
                return Ok(QS_DONE as i64);
            };
            let n = leaf.len().min(dest.len());
            dest[..n].copy_from_slice(&leaf[..n]);
            Ok(leaf.len() as i64)
        })
    })
}
