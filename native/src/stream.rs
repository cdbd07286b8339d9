//! Raw QUIC stream calls: open, write, read, finish, reset, stop.

use crate::endpoint::{with_endpoint, QsEndpoint};
use crate::error::{guard, guard_status, out, slice, slice_mut, QsError, QsResult, QS_BLOCKED, QS_DONE, QS_ERR_STREAM_RESET, QS_OK};

fn closed(conn: u64, stream: u64) -> QsError {
    QsError::state(format!("stream {stream} on connection {conn} is closed, finished or was never opened"))
}

fn check_code(v: u64) -> QsResult<u64> {
    if v >= 1 << 62 {
        return Err(QsError::arg("error code must be below 2^62"));
    }
    Ok(v)
}

fn write_code(out_code: *mut u64, code: u64) -> QsResult<()> {
    if !out_code.is_null() {
        out(out_code, code, "code")?;
    }
    Ok(())
}

/// Opens a stream (bidirectional unless `unidirectional`) and writes its id.
/// Returns QS_BLOCKED when the peer's stream limit is reached (wait for STREAMS_AVAILABLE).
#[no_mangle]
pub extern "C" fn qs_stream_open(ep: *mut QsEndpoint, conn: u64, unidirectional: bool, out_stream: *mut u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            if !c.connected || c.closed {
                return Err(QsError::new(crate::error::QS_ERR_CONNECTION_CLOSED, format!("connection {conn} is not open")));
            }
            let dir = usize::from(unidirectional);
            let left = if unidirectional { c.q.peer_streams_left_uni() } else { c.q.peer_streams_left_bidi() };
            if left == 0 {
                c.want_streams[dir] = true;
                return Ok(QS_BLOCKED);
            }
            let sid = c.next_local_stream(unidirectional);
            // A zero-length write creates the stream's state without sending anything.
            match c.q.stream_send(sid, b"", false) {
                Ok(_) => {}
                Err(quiche::Error::StreamLimit) => {
                    c.want_streams[dir] = true;
                    return Ok(QS_BLOCKED);
                }
                Err(err) => return Err(QsError::state(format!("opening a stream failed: {err}"))),
            }
            c.commit_local_stream(unidirectional);
            out(out_stream, sid, "stream id")?;
            Ok(QS_OK)
        })
    })
}

/// Writes up to `len` bytes; with `fin`, finishes the stream once all of them are taken.
/// Returns how many bytes were taken (possibly fewer than `len`), QS_BLOCKED when
/// none can be taken now (wait for STREAM_WRITABLE), or QS_ERR_STREAM_RESET when
/// the peer stopped the stream (its code in `out_code`, which may be null).
#[no_mangle]
pub extern "C" fn qs_stream_write(
    ep: *mut QsEndpoint,
    conn: u64,
    stream: u64,
    data: *const u8,
    len: usize,
    fin: bool,
    out_code: *mut u64,
) -> i64 {
    guard(|| {
        let data = slice(data, len, "data")?;
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let r = match c.q.stream_send(stream, data, fin) {
                Ok(n) => c.wrote(stream, n, data.len(), fin),
                Err(quiche::Error::Done) => {
                    c.blocked.insert(stream);
                    QS_BLOCKED as i64
                }
                Err(quiche::Error::StreamStopped(code)) => {
                    write_code(out_code, code)?;
                    QS_ERR_STREAM_RESET as i64
                }
                Err(_) => return Err(closed(conn, stream)),
            };
            e.settle(conn);
            Ok(r)
        })
    })
}

/// Reads up to `cap` bytes in order. Returns the count (0 only together with
/// `*out_fin` = 1 at the end of the stream), QS_DONE when nothing is readable yet
/// (wait for STREAM_READABLE), or QS_ERR_STREAM_RESET when the peer reset the
/// stream (its code in `out_code`, which may be null). After the end or a reset
/// the stream is gone and further reads fail.
#[no_mangle]
pub extern "C" fn qs_stream_read(
    ep: *mut QsEndpoint,
    conn: u64,
    stream: u64,
    buf: *mut u8,
    cap: usize,
    out_fin: *mut u8,
    out_code: *mut u64,
) -> i64 {
    guard(|| {
        let buf = slice_mut(buf, cap, "buffer")?;
        if out_fin.is_null() {
            return Err(QsError::arg("fin flag (out parameter) is null"));
        }
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let r = match c.q.stream_recv(stream, buf) {
                Ok((n, fin)) => {
                    out(out_fin, u8::from(fin), "fin flag")?;
                    if fin {
                        c.readable_pending.remove(&stream);
                    }
                    n as i64
                }
                Err(quiche::Error::Done) => {
                    out(out_fin, 0, "fin flag")?;
                    c.readable_pending.remove(&stream);
                    QS_DONE as i64
                }
                Err(quiche::Error::StreamReset(code)) => {
                    c.readable_pending.remove(&stream);
                    write_code(out_code, code)?;
                    QS_ERR_STREAM_RESET as i64
                }
                Err(quiche::Error::InvalidStreamState(_)) if c.announced_not_created(stream) => {
                    // Announced because a higher stream of its kind arrived first; its own data has not.
                    out(out_fin, 0, "fin flag")?;
                    QS_DONE as i64
                }
                Err(_) => {
                    c.readable_pending.remove(&stream);
                    return Err(closed(conn, stream));
                }
            };
            // Reading may open flow-control credit; settling also reports what else changed.
            e.settle(conn);
            Ok(r)
        })
    })
}

/// Finishes the sending side: the peer reads to the end after what was written.
#[no_mangle]
pub extern "C" fn qs_stream_finish(ep: *mut QsEndpoint, conn: u64, stream: u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let r = match c.q.stream_send(stream, b"", true) {
                Ok(_) => {
                    c.finishing.insert(stream);
                    QS_OK
                }
                Err(quiche::Error::StreamStopped(_)) => QS_ERR_STREAM_RESET,
                Err(_) => return Err(closed(conn, stream)),
            };
            e.settle(conn);
            Ok(r)
        })
    })
}

/// Abandons the sending side with an error code (RESET_STREAM).
#[no_mangle]
pub extern "C" fn qs_stream_reset(ep: *mut QsEndpoint, conn: u64, stream: u64, error_code: u64) -> i32 {
    guard_status(|| {
        let v = check_code(error_code)?;
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            match c.q.stream_shutdown(stream, quiche::Shutdown::Write, v) {
                Ok(()) | Err(quiche::Error::Done) => {}
                Err(_) => return Err(closed(conn, stream)),
            }
            c.blocked.remove(&stream);
            c.finishing.remove(&stream);
            e.settle(conn);
            Ok(QS_OK)
        })
    })
}

/// Asks the peer to stop sending on a stream (STOP_SENDING) and discards what arrives.
#[no_mangle]
pub extern "C" fn qs_stream_stop(ep: *mut QsEndpoint, conn: u64, stream: u64, error_code: u64) -> i32 {
    guard_status(|| {
        let v = check_code(error_code)?;
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            match c.q.stream_shutdown(stream, quiche::Shutdown::Read, v) {
                Ok(()) | Err(quiche::Error::Done) => {}
                Err(_) => return Err(closed(conn, stream)),
            }
            c.readable_pending.remove(&stream);
            e.settle(conn);
            Ok(QS_OK)
        })
    })
}
