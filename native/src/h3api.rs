//! HTTP/3 calls (quiche's `h3`): requests and responses as header sections and body bytes.
//!
//! Header sections cross the boundary packed: for each field, a u32 (little
//! endian) name length, the name, a u32 value length, the value. Names are
//! lowercase; pseudo-headers (":method", ":status", ...) come first.

use quiche::h3::NameValue;

use crate::conn::Conn;
use crate::endpoint::{with_endpoint, QsEndpoint};
use crate::error::{
    copy_text, guard, guard_status, out, slice, slice_mut, QsError, QsResult, QS_BLOCKED, QS_DONE, QS_ERR_CONNECTION_CLOSED,
    QS_ERR_STREAM_RESET, QS_OK,
};

pub(crate) const H3_REQUEST_CANCELLED: u64 = 0x10c;

/// What arrived on one request stream.
#[derive(Default)]
pub(crate) struct H3Stream {
    pub headers: Option<Vec<u8>>,
    pub trailers: Option<Vec<u8>>,
    pub finished: bool,
    pub reset: Option<u64>,
}

pub(crate) fn pack_headers(list: &[quiche::h3::Header]) -> Vec<u8> {
    let mut v = Vec::with_capacity(list.iter().map(|h| 8 + h.name().len() + h.value().len()).sum());
    for h in list {
        v.extend_from_slice(&(h.name().len() as u32).to_le_bytes());
        v.extend_from_slice(h.name());
        v.extend_from_slice(&(h.value().len() as u32).to_le_bytes());
        v.extend_from_slice(h.value());
    }
    v
}

fn unpack_headers(mut b: &[u8]) -> QsResult<Vec<quiche::h3::Header>> {
    let mut out = Vec::new();
    let bad = || QsError::arg("header section is malformed: expected u32-LE name length, name, u32-LE value length, value, repeated");
    let take = |b: &mut &[u8]| -> QsResult<Vec<u8>> {
        if b.len() < 4 {
            return Err(bad());
        }
        let n = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        if b.len() < 4 + n {
            return Err(bad());
        }
        let v = b[4..4 + n].to_vec();
        *b = &b[4 + n..];
        Ok(v)
    };
    while !b.is_empty() {
        let name = take(&mut b)?;
        let value = take(&mut b)?;
        // What we send is held to what we accept: an application that puts a peer's text into a header
        // (a CR LF in it would pose as more fields) hears of it here, before anything leaves.
        if let Err(why) = crate::conn::check_field(&name, &value) {
            return Err(QsError::arg(format!(
                "the header '{}' cannot be sent: it has {why} (RFC 9110 §5.5); remove or encode those characters",
                String::from_utf8_lossy(&name).escape_debug()
            )));
        }
        out.push(quiche::h3::Header::new(&name, &value));
    }
    Ok(out)
}

/// An HTTP/3 or QPACK error other than H3_NO_ERROR: a close with one reports a protocol violation.
pub(crate) fn is_h3_error(code: u64) -> bool {
    (0x101..0x400).contains(&code)
}

/// The name of an HTTP/3 or QPACK error code (RFC 9114 §8.1, RFC 9204 §6).
pub fn error_name(code: u64) -> &'static str {
    match code {
        0x100 => "H3_NO_ERROR",
        0x101 => "H3_GENERAL_PROTOCOL_ERROR",
        0x102 => "H3_INTERNAL_ERROR",
        0x103 => "H3_STREAM_CREATION_ERROR",
        0x104 => "H3_CLOSED_CRITICAL_STREAM",
        0x105 => "H3_FRAME_UNEXPECTED",
        0x106 => "H3_FRAME_ERROR",
        0x107 => "H3_EXCESSIVE_LOAD",
        0x108 => "H3_ID_ERROR",
        0x109 => "H3_SETTINGS_ERROR",
        0x10a => "H3_MISSING_SETTINGS",
        0x10b => "H3_REQUEST_REJECTED",
        0x10c => "H3_REQUEST_CANCELLED",
        0x10d => "H3_REQUEST_INCOMPLETE",
        0x10e => "H3_MESSAGE_ERROR",
        0x10f => "H3_CONNECT_ERROR",
        0x110 => "H3_VERSION_FALLBACK",
        0x200 => "QPACK_DECOMPRESSION_FAILED",
        0x201 => "QPACK_ENCODER_STREAM_ERROR",
        0x202 => "QPACK_DECODER_STREAM_ERROR",
        _ => "unknown HTTP/3 error",
    }
}

/// A call's outcome that is not a plain value.
enum H3Fail {
    Blocked,
    Reset(u64),
    Err(QsError),
}

fn map_h3(conn: u64, e: quiche::h3::Error) -> H3Fail {
    use quiche::h3::Error as E;
    match e {
        E::StreamBlocked | E::Done => H3Fail::Blocked,
        E::TransportError(quiche::Error::StreamStopped(c)) | E::TransportError(quiche::Error::StreamReset(c)) => H3Fail::Reset(c),
        E::TransportError(quiche::Error::Done) => H3Fail::Blocked,
        E::FrameUnexpected => H3Fail::Err(QsError::state(format!(
            "connection {conn}: not allowed in this state of the exchange (after the server's GOAWAY no new request may start; \
             a response or trailer may be sent once)"
        ))),
        E::ExcessiveLoad => H3Fail::Err(QsError::arg(format!(
            "connection {conn}: the header section is larger than the peer accepts (its SETTINGS_MAX_FIELD_SECTION_SIZE)"
        ))),
        other => H3Fail::Err(QsError::new(QS_ERR_CONNECTION_CLOSED, format!("connection {conn}: HTTP/3 error: {other}"))),
    }
}

/// Runs `f` on an open HTTP/3 connection, turning its outcome into a code and settling the connection.
fn with_h3(
    ep: *mut QsEndpoint,
    conn: u64,
    stream: Option<u64>,
    sending: bool,
    out_code: *mut u64,
    f: impl FnOnce(&mut Conn) -> Result<i64, H3Fail>,
) -> QsResult<i64> {
    with_endpoint(ep, |e| {
        let c = e.conn(conn)?;
        if sending && c.closed {
            let text = c.error.clone().unwrap_or_else(|| "closed".into());
            return Err(QsError::new(QS_ERR_CONNECTION_CLOSED, format!("connection {conn} is closed: {text}")));
        }
        if c.h3.is_none() {
            return Err(if e.h3_config.is_none() {
                QsError::state("HTTP/3 is not enabled on this endpoint (qs_endpoint_enable_h3)")
            } else {
                QsError::state(format!("connection {conn} has not completed its handshake yet"))
            });
        }
        let r = match f(c) {
            Ok(v) => Ok(v),
            Err(H3Fail::Blocked) => {
                if let Some(s) = stream {
                    c.blocked.insert(s);
                }
                Ok(QS_BLOCKED as i64)
            }
            Err(H3Fail::Reset(code)) => {
                if !out_code.is_null() {
                    out(out_code, code, "code")?;
                }
                Ok(QS_ERR_STREAM_RESET as i64)
            }
            Err(H3Fail::Err(err)) => Err(err),
        };
        e.settle(conn);
        r
    })
}

/// Turns HTTP/3 on for connections made or accepted from now on, accepting
/// header sections up to `max_field_section_size` bytes (RFC 9114 §4.2.2 size).
#[no_mangle]
pub extern "C" fn qs_endpoint_enable_h3(ep: *mut QsEndpoint, max_field_section_size: u64) -> i32 {
    guard_status(|| {
        if max_field_section_size < 1024 {
            return Err(QsError::arg("max_field_section_size below 1024 bytes would refuse ordinary requests"));
        }
        with_endpoint(ep, |e| {
            let mut cfg = quiche::h3::Config::new().map_err(|err| QsError::state(format!("HTTP/3 configuration: {err}")))?;
            cfg.set_max_field_section_size(max_field_section_size);
            e.h3_config = Some(cfg);
            Ok(QS_OK)
        })
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
        let headers = unpack_headers(slice(headers, headers_len, "headers")?)?;
        if out_stream.is_null() {
            return Err(QsError::arg("stream id (out parameter) is null"));
        }
        let rc = with_h3(ep, conn, None, true, std::ptr::null_mut(), |c| {
            if c.q.peer_streams_left_bidi() == 0 {
                c.want_streams[0] = true;
                return Err(H3Fail::Blocked);
            }
            if c.goaway_received.is_some() {
                return Err(H3Fail::Err(QsError::new(
                    QS_ERR_CONNECTION_CLOSED,
                    format!("connection {conn}: the server is shutting down (GOAWAY) and takes no new requests; open a new connection"),
                )));
            }
            let h3 = c.h3.as_mut().expect("checked");
            match h3.send_request(&mut c.q, &headers, fin) {
                Ok(sid) => {
                    c.h3_streams.insert(sid, H3Stream::default());
                    c.request_blocked = None;
                    c.next_request = sid + 4;
                    Ok(sid as i64)
                }
                Err(quiche::h3::Error::TransportError(quiche::Error::StreamLimit)) => {
                    c.want_streams[0] = true;
                    Err(H3Fail::Blocked)
                }
                Err(quiche::h3::Error::StreamBlocked) => {
                    // No credit for the header section: retried when the stream it goes on has some.
                    c.request_blocked = Some(c.next_request);
                    Err(H3Fail::Blocked)
                }
                Err(err) => Err(map_h3(conn, err)),
            }
        })?;
        if rc < 0 {
            return Ok(rc as i32);
        }
        out(out_stream, rc as u64, "stream id")?;
        Ok(QS_OK)
    })
}

/// Server: sends the response's header section on a request stream; with `fin`,
/// no body follows. QS_BLOCKED when the stream has no credit for it yet (wait for STREAM_WRITABLE).
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
        let headers = unpack_headers(slice(headers, headers_len, "headers")?)?;
        Ok(with_h3(ep, conn, Some(stream), true, std::ptr::null_mut(), |c| {
            let h3 = c.h3.as_mut().expect("checked");
            h3.send_response(&mut c.q, stream, &headers, fin).map_err(|err| map_h3(conn, err))?;
            if fin {
                c.finishing.insert(stream);
            }
            Ok(0)
        })? as i32)
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
        with_h3(ep, conn, Some(stream), true, out_code, |c| {
            let h3 = c.h3.as_mut().expect("checked");
            match h3.send_body(&mut c.q, stream, data, fin) {
                // BLOCKED goes through with_h3's outcome, which also registers the stream for WRITABLE.
                Ok(n) => match c.wrote(stream, n, data.len(), fin) {
                    rc if rc == QS_BLOCKED as i64 => Err(H3Fail::Blocked),
                    rc => Ok(rc),
                },
                Err(err) => Err(map_h3(conn, err)),
            }
        })
    })
}

/// Sends a trailer section (e.g. an integrity hash computed while streaming) and ends the body.
#[no_mangle]
pub extern "C" fn qs_h3_send_trailers(ep: *mut QsEndpoint, conn: u64, stream: u64, headers: *const u8, headers_len: usize) -> i32 {
    guard_status(|| {
        let headers = unpack_headers(slice(headers, headers_len, "trailers")?)?;
        Ok(with_h3(ep, conn, Some(stream), true, std::ptr::null_mut(), |c| {
            let h3 = c.h3.as_mut().expect("checked");
            h3.send_additional_headers(&mut c.q, stream, &headers, true, true).map_err(|err| map_h3(conn, err))?;
            c.finishing.insert(stream);
            Ok(0)
        })? as i32)
    })
}

/// Copies the header section (or, with `trailers`, the trailer section) of a
/// stream in packed form and returns its full length (retry with a larger
/// buffer if that exceeds `cap`), or QS_DONE if it has not arrived.
#[no_mangle]
pub extern "C" fn qs_h3_recv_headers(ep: *mut QsEndpoint, conn: u64, stream: u64, trailers: bool, buf: *mut u8, cap: usize) -> i64 {
    guard(|| {
        with_endpoint(ep, |e| {
            let c = e.conn(conn)?;
            let section = c.h3_streams.get(&stream).and_then(|s| if trailers { s.trailers.as_ref() } else { s.headers.as_ref() });
            match section {
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
        let rc = with_h3(ep, conn, None, false, out_code, |c| {
            let h3 = c.h3.as_mut().expect("checked");
            let state = c.h3_streams.get(&stream).ok_or_else(|| {
                H3Fail::Err(QsError::state(format!("stream {stream} on connection {conn} is no request stream, or was released")))
            })?;
            if let Some(code) = state.reset {
                return Err(H3Fail::Reset(code));
            }
            match h3.recv_body(&mut c.q, stream, buf) {
                Ok(n) => Ok(n as i64),
                Err(quiche::h3::Error::Done) => {
                    if state.finished {
                        fin = true;
                        Ok(0)
                    } else {
                        Ok(QS_DONE as i64)
                    }
                }
                Err(err) => match map_h3(conn, err) {
                    H3Fail::Blocked => Ok(QS_DONE as i64),
                    other => Err(other),
                },
            }
        })?;
        out(out_fin, u8::from(fin), "fin flag")?;
        Ok(rc)
    })
}

/// Server: starts a graceful shutdown (GOAWAY); requests already received are still answered.
#[no_mangle]
pub extern "C" fn qs_h3_goaway(ep: *mut QsEndpoint, conn: u64) -> i32 {
    guard_status(|| {
        Ok(with_h3(ep, conn, None, true, std::ptr::null_mut(), |c| {
            // The first request id not processed: everything up to the newest one received is still answered.
            let id = c.max_request.map_or(0, |m| m + 4);
            let h3 = c.h3.as_mut().expect("checked");
            match h3.send_goaway(&mut c.q, id) {
                Ok(()) => c.goaway_pending = None,
                // No send credit now (quiche's StreamBlocked): sent from `settle` once there is.
                Err(quiche::h3::Error::StreamBlocked) => c.goaway_pending = Some(id),
                Err(err) => return Err(map_h3(conn, err)),
            }
            c.goaway_sent = Some(c.goaway_sent.map_or(id, |g| g.min(id)));
            Ok(0)
        })? as i32)
    })
}

/// Forgets a request stream the caller is done with; an unread body is refused (STOP_SENDING).
#[no_mangle]
pub extern "C" fn qs_h3_stream_release(ep: *mut QsEndpoint, conn: u64, stream: u64) -> i32 {
    guard_status(|| {
        with_endpoint(ep, |e| {
            let Ok(c) = e.conn(conn) else { return Ok(QS_OK) };
            if let Some(s) = c.h3_streams.remove(&stream) {
                // The end may be read already while its Finished event is still to be polled.
                if !s.finished && s.reset.is_none() && !c.q.stream_finished(stream) {
                    let _ = c.q.stream_shutdown(stream, quiche::Shutdown::Read, H3_REQUEST_CANCELLED);
                }
            }
            c.blocked.remove(&stream);
            e.settle(conn);
            Ok(QS_OK)
        })
    })
}

/// Copies an HTTP/3 error code's name (e.g. "H3_FRAME_UNEXPECTED") into `buf`; returns its length.
#[no_mangle]
pub extern "C" fn qs_h3_error_name(code: u64, buf: *mut u8, cap: usize) -> i64 {
    guard(|| Ok(copy_text(error_name(code), buf, cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sections_round_trip_through_the_packed_form() {
        let list = vec![quiche::h3::Header::new(b":status", b"200"), quiche::h3::Header::new(b"x-empty", b"")];
        let packed = pack_headers(&list);
        let back = unpack_headers(&packed).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].name(), b":status");
        assert_eq!(back[1].value(), b"");
        assert!(unpack_headers(&packed[..packed.len() - 1]).is_err(), "a truncated section is refused");
    }
}
