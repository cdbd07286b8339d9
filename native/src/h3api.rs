//! HTTP/3 calls: requests and responses as header sections and body bytes.
//!
//! Header sections cross the boundary packed: for each field, a u32 (little
//! endian) name length, the name, a u32 value length, the value. Names are
//! lowercase; pseudo-headers (":method", ":status", ...) come first.

use crate::endpoint::{with_endpoint, Conn, QsEndpoint};
use crate::error::{
    copy_text, guard, guard_status, out, slice, slice_mut, QsError, QsResult, QS_BLOCKED, QS_DONE, QS_ERR_CONNECTION_CLOSED,
    QS_ERR_STREAM_RESET, QS_OK,
};
use crate::h3::conn::{H3CallError, H3Conn};

/// Turns HTTP/3 to on for connections made or accepted from now on, accepting
/// header sections up to `max_field_section_size` bytes (RFC 9114 §4.2.2 size).
#[no_mangle]
pub extern "C" fn qs_endpoint_enable_h3(ep: *mut QsEndpoint, max_field_section_size: u64) -> i32 {
    guard_status(|| {
        if max_field_section_size < 1024 {
            return Err(QsError::arg("max_field_section_size below 1024 bytes would refuse ordinary requests"));
        }
        with_endpoint(ep, |e| {
            e.h3_max_field_section = Some(max_field_section_size);
            Ok(QS_OK)
        })
    })
}

/// Runs `f` on a connection's HTTP/3 state; maps call errors to codes, closing the connection on protocol errors.
fn with_h3(
    ep: *mut QsEndpoint,
    conn: u64,
    sending: bool,
    out_code: *mut u64,
    f: impl FnOnce(&mut H3Conn, &mut quinn_proto::Connection) -> Result<i64, H3CallError>,
) -> QsResult<i64> {
    with_endpoint(ep, |e| {
        let (ch, c) = e.conn(conn)?;
        let Conn { h3, inner, error, .. } = c;
        // What already arrived stays readable after a close (until the connection drains).
        if let (true, Some(text)) = (sending, error.as_ref()) {
            return Err(QsError::new(QS_ERR_CONNECTION_CLOSED, format!("connection {conn} is closed: {text}")));
        }
        let h3 = h3.as_mut().ok_or_else(|| QsError::state("HTTP/3 is not enabled on this endpoint (qs_endpoint_enable_h3)"))?;
        let result = f(h3, inner);
        let r = match result {
            Ok(v) => Ok(v),
            Err(H3CallError::Blocked) => Ok(QS_BLOCKED as i64),
            Err(H3CallError::Reset(code)) => {
                if !out_code.is_null() {
                    out(out_code, code, "code")?;
                }
                Ok(QS_ERR_STREAM_RESET as i64)
            }
            Err(H3CallError::Closed(text)) => Err(QsError::state(text)),
            Err(H3CallError::Protocol(err)) => {
                let text = err.reason.clone();
                e.fail_h3(ch, err);
                Err(QsError::new(QS_ERR_CONNECTION_CLOSED, format!("HTTP/3 protocol error from the peer: {text}")))
            }
        };
        e.settle(ch);
        r
    })
}

/// Client: opens a request stream and sends the request's header section; with
/// `fin`, the request has no body. Writes the stream id. QS_BLOCKED when the
/// server's stream limit is reached (wait for STREAMS_AVAILABLE).
#[no_mangle]
pub extern "C" fn qs_h3_send_request(
    ep: *mut QsEndpoint,
    conn: u64,
    headers: *const u8,
    headers_len: usize,
    fin: bool,
    out_stream: *mut u64,
) -> i32 {
    guard_status(|| {
        let headers = slice(headers, headers_len, "headers")?;
        if out_stream.is_null() {
            return Err(QsError::arg("stream id (out parameter) is null"));
        }
        let rc = with_h3(ep, conn, true, std::ptr::null_mut(), |h3, c| {
            let sid = h3.send_request(c, headers, fin)?;
            Ok(sid as i64)
        })?;
        if rc < 0 {
            return Ok(rc as i32);
        }
        out(out_stream, rc as u64, "stream id")?;
        Ok(QS_OK)
    })
}

/// Server: sends the response's header section on a request stream; with `fin`, no body follows.
#[no_mangle]
pub extern "C" fn qs_h3_send_response(
    ep: *mut QsEndpoint,
    conn: u64,
    stream: u64,
    headers: *const u8,
    headers_len: usize,
    fin: bool,
) -> i32 {
    guard_status(|| {
        let headers = slice(headers, headers_len, "headers")?;
        Ok(with_h3(ep, conn, true, std::ptr::null_mut(), |h3, c| h3.send_response(c, stream, headers, fin).map(|_| 0))? as i32)
    })
}

/// Sends body bytes. Returns how many were taken (pass the rest later),
/// QS_BLOCKED when none can be now (wait for STREAM_WRITABLE), or
/// QS_ERR_STREAM_RESET when the peer stopped the stream (code in `out_code`).
/// With `fin`, the body ends once all of `data` is taken.
#[no_mangle]
pub extern "C" fn qs_h3_send_body(
    ep: *mut QsEndpoint,
    conn: u64,
    stream: u64,
    data: *const u8,
    len: usize,
    fin: bool,
    out_code: *mut u64,
) -> i64 {
    guard(|| {
        let data = slice(data, len, "body")?;
        with_h3(ep, conn, true, out_code, |h3, c| h3.send_body(c, stream, data, fin).map(|n| n as i64))
    })
}

/// Sends a trailer section (e.g. an integrity hash computed while streaming) and ends the body.
#[no_mangle]
pub extern "C" fn qs_h3_send_trailers(ep: *mut QsEndpoint, conn: u64, stream: u64, headers: *const u8, headers_len: usize) -> i32 {
    guard_status(|| {
        let headers = slice(headers, headers_len, "trailers")?;
        Ok(with_h3(ep, conn, true, std::ptr::null_mut(), |h3, c| h3.send_trailers(c, stream, headers).map(|_| 0))? as i32)
    })
}

/// Copies the header section (or, with `trailers`, the trailer section) of a
/// stream in packed form and returns its full length (retry with a larger
/// buffer if that exceeds `cap`), or QS_DONE if it has not arrived.
#[no_mangle]
pub extern "C" fn qs_h3_recv_headers(ep: *mut QsEndpoint, conn: u64, stream: u64, trailers: bool, buf: *mut u8, cap: usize) -> i64 {
    guard(|| {
        with_endpoint(ep, |e| {
            let (_, c) = e.conn(conn)?;
            let h3 = c.h3.as_ref().ok_or_else(|| QsError::state("HTTP/3 is not enabled on this endpoint"))?;
            match h3.headers(stream, trailers) {
                None => Ok(QS_DONE as i64),
                Some(bytes) => {
                    let n = bytes.len();
                    if n <= cap {
                        slice_mut(buf, cap, "buffer")?[..n].copy_from_slice(bytes);
                    }
                    Ok(n as i64)
                }
            }
        })
    })
}

/// Reads body bytes. Returns the count (0 with `*out_fin` = 1 at the end), QS_DONE
/// when nothing is readable yet (wait for H3_DATA), or QS_ERR_STREAM_RESET (code in `out_code`).
#[no_mangle]
pub extern "C" fn qs_h3_recv_body(
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
        let mut fin = false;
        let rc = with_h3(ep, conn, false, out_code, |h3, c| {
            let (n, f) = h3.recv_body(c, stream, buf)?;
            fin = f;
            Ok(if n == 0 && !f { QS_DONE as i64 } else { n as i64 })
        })?;
        out(out_fin, u8::from(fin), "fin flag")?;
        Ok(rc)
    })
}

/// Server: starts a graceful shutdown (GOAWAY); requests already received are still answered.
#[no_mangle]
pub extern "C" fn qs_h3_goaway(ep: *mut QsEndpoint, conn: u64) -> i32 {
    guard_status(|| Ok(with_h3(ep, conn, true, std::ptr::null_mut(), |h3, c| h3.goaway(c).map(|_| 0))? as i32))
}

/// Forgets a request stream the caller is done with; an unread body is refused (STOP_SENDING).
#[no_mangle]
pub extern "C" fn qs_h3_stream_release(ep: *mut QsEndpoint, conn: u64, stream: u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let Ok((ch, c)) = e.conn(conn) else { return Ok(QS_OK) };
            if let Some(h3) = c.h3.as_mut() {
                h3.release(&mut c.inner, stream);
            }
            e.settle(ch);
            Ok(QS_OK)
        })
    })
}

/// Copies an HTTP/3 error code's name (e.g. "H3_FRAME_UNEXPECTED") into `buf`; returns its length.
#[no_mangle]
pub extern "C" fn qs_h3_error_name(code: u64, buf: *mut u8, cap: usize) -> i64 {
    guard(|| Ok(copy_text(crate::h3::frame::error_name(code), buf, cap)))
}
