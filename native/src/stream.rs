//! Per-stream calls: open, write, read, finish, reset, stop.

use quinn_proto::{Dir, FinishError, ReadError, ReadableError, VarInt, WriteError};

use crate::endpoint::{stream_id, with_endpoint, QsEndpoint};
use crate::error::{
    guard, guard_status, out, slice, slice_mut, QsError, QsResult, QS_BLOCKED, QS_DONE, QS_ERR_STREAM_RESET, QS_OK,
};

fn code(v: u64) -> QsResult<VarInt> {
    VarInt::from_u64(v).map_err(|_| QsError::arg("error code must be below 2^62"))
}

fn closed(conn: u64, stream: u64) -> QsError {
    QsError::state(format!("stream {stream} on connection {conn} is closed, finished or was never opened"))
}

/// Opens a stream (bidirectional unless `unidirectional`) and writes its id.
/// Returns QS_BLOCKED when the peer's stream limit is reached (wait for STREAMS_AVAILABLE).
#[no_mangle]
pub extern "C" fn qs_stream_open(ep: *mut QsEndpoint, conn: u64, unidirectional: bool, out_stream: *mut u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let (ch, c) = e.conn(conn)?;
            let dir = if unidirectional { Dir::Uni } else { Dir::Bi };
            let Some(sid) = c.inner.streams().open(dir) else { return Ok(QS_BLOCKED) };
            e.settle(ch);
            out(out_stream, sid.0, "stream id")?;
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
            let (ch, c) = e.conn(conn)?;
            let mut s = c.inner.send_stream(stream_id(stream));
            let n = if data.is_empty() {
                0
            } else {
                match s.write(data) {
                    Ok(n) => n,
                    Err(WriteError::Blocked) => return Ok(QS_BLOCKED as i64),
                    Err(WriteError::Stopped(v)) => {
                        if !out_code.is_null() {
                            out(out_code, v.into_inner(), "code")?;
                        }
                        return Ok(QS_ERR_STREAM_RESET as i64);
                    }
                    Err(WriteError::ClosedStream) => return Err(closed(conn, stream)),
                }
            };
            if fin && n == data.len() {
                match s.finish() {
                    Ok(()) => {}
                    Err(FinishError::Stopped(v)) => {
                        if !out_code.is_null() {
                            out(out_code, v.into_inner(), "code")?;
                        }
                        return Ok(QS_ERR_STREAM_RESET as i64);
                    }
                    Err(FinishError::ClosedStream) => return Err(closed(conn, stream)),
                }
            }
            e.settle(ch);
            Ok(n as i64)
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
            let (ch, c) = e.conn(conn)?;
            let mut rs = c.inner.recv_stream(stream_id(stream));
            let mut chunks = match rs.read(true) {
                Ok(ch) => ch,
                Err(ReadableError::ClosedStream) => return Err(closed(conn, stream)),
                Err(ReadableError::IllegalOrderedRead) => return Err(QsError::state("unordered read")),
            };
            let mut n = 0usize;
            let mut fin = false;
            let mut reset = None;
            while n < buf.len() {
                match chunks.next(buf.len() - n) {
                    Ok(Some(chunk)) => {
                        buf[n..n + chunk.bytes.len()].copy_from_slice(&chunk.bytes);
                        n += chunk.bytes.len();
                    }
                    Ok(None) => {
                        fin = true;
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                    Err(ReadError::Reset(v)) => {
                        reset = Some(v);
                        break;
                    }
                }
            }
            // Finalizing may queue a flow-control update; the caller flushes transmits after reads.
            let _ = chunks.finalize();
            e.settle(ch);
            if let Some(v) = reset {
                if !out_code.is_null() {
                    out(out_code, v.into_inner(), "code")?;
                }
                return Ok(QS_ERR_STREAM_RESET as i64);
            }
            out(out_fin, u8::from(fin), "fin flag")?;
            if n == 0 && !fin {
                return Ok(QS_DONE as i64);
            }
            Ok(n as i64)
        })
    })
}

/// Finishes the sending side: the peer reads to the end after what was written.
#[no_mangle]
pub extern "C" fn qs_stream_finish(ep: *mut QsEndpoint, conn: u64, stream: u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let (ch, c) = e.conn(conn)?;
            match c.inner.send_stream(stream_id(stream)).finish() {
                Ok(()) => {}
                Err(FinishError::Stopped(_)) => return Ok(QS_ERR_STREAM_RESET),
                Err(FinishError::ClosedStream) => return Err(closed(conn, stream)),
            }
            e.settle(ch);
            Ok(QS_OK)
        })
    })
}

/// Abandons the sending side with an error code (RESET_STREAM).
#[no_mangle]
pub extern "C" fn qs_stream_reset(ep: *mut QsEndpoint, conn: u64, stream: u64, error_code: u64) -> i32 {
    guard_status(|| {
        let v = code(error_code)?;
        with_endpoint(ep, |e| {
            let (ch, c) = e.conn(conn)?;
            c.inner.send_stream(stream_id(stream)).reset(v).map_err(|_| closed(conn, stream))?;
            e.settle(ch);
            Ok(QS_OK)
        })
    })
}

/// Asks the peer to stop sending on a stream (STOP_SENDING) and discards what arrives.
#[no_mangle]
pub extern "C" fn qs_stream_stop(ep: *mut QsEndpoint, conn: u64, stream: u64, error_code: u64) -> i32 {
    guard_status(|| {
        let v = code(error_code)?;
        with_endpoint(ep, |e| {
            let (ch, c) = e.conn(conn)?;
            c.inner.recv_stream(stream_id(stream)).stop(v).map_err(|_| closed(conn, stream))?;
            e.settle(ch);
            Ok(QS_OK)
        })
    })
}
