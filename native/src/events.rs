//! The blittable structs and event codes the caller polls.

use crate::addr::QsAddr;

/// Server: a new connection was accepted (`conn` is its id); CONNECTED follows.
pub const QS_EVENT_CONNECTION_INCOMING: u32 = 1;
/// The handshake completed and (client) the server's certificate passed every check.
pub const QS_EVENT_CONNECTED: u32 = 2;
/// The connection ended before its handshake completed; `detail` is a QS_TLS_* /
/// QS_PIN_MISMATCH / QS_REFUSED / QS_TIMED_OUT reason, the text in `qs_conn_error`.
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
/// A stream whose sending side this side finished is complete: everything written
/// was acknowledged and the receiving side is done (read to its end, or stopped).
pub const QS_EVENT_STREAM_FINISHED: u32 = 9;
/// The peer asked us to stop sending on a stream; `code` is its error code.
pub const QS_EVENT_STREAM_STOPPED: u32 = 10;
/// More streams may be opened (`detail`: direction as for STREAM_OPENED).
pub const QS_EVENT_STREAMS_AVAILABLE: u32 = 11;
/// HTTP/3: a request's (server) or response's (client) header section arrived; `code` is its
/// packed length, so one `qs_h3_recv_headers` call with a buffer that size fetches it whole.
pub const QS_EVENT_H3_HEADERS: u32 = 12;
/// HTTP/3: `qs_h3_recv_body` can make progress (data, the end, or a reset).
pub const QS_EVENT_H3_DATA: u32 = 13;
/// HTTP/3 client: the request stream ended before a response (`code`: the peer's or our error code).
pub const QS_EVENT_H3_RESET: u32 = 14;
/// HTTP/3 client: the server is shutting down; requests from stream id `stream` on are refused.
pub const QS_EVENT_H3_GOAWAY: u32 = 15;

/// The peer stopped answering within the idle timeout.
pub const QS_CLOSE_TIMED_OUT: u32 = 1;
/// This side closed the connection.
pub const QS_CLOSE_LOCAL: u32 = 2;
/// The peer closed it with an application code.
pub const QS_CLOSE_APPLICATION: u32 = 3;
/// A transport error (either side); `code` is the QUIC transport error code.
pub const QS_CLOSE_TRANSPORT: u32 = 4;
/// The peer no longer knows the connection: it answered with a stateless reset (it restarted, or lost
/// the connection's state).
pub const QS_CLOSE_RESET: u32 = 5;
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
    /// The local address to send from (as given to `qs_endpoint_recv`; unspecified otherwise).
    pub from: QsAddr,
    /// Bytes written to the buffer.
    pub len: usize,
    /// Size of each datagram when the batch holds several (the last may be shorter); equals `len` otherwise.
    pub segment_size: usize,
    /// Pacing: nanoseconds from the `now_ns` given to `qs_endpoint_poll_transmit` until the batch should leave (0: now).
    pub delay_ns: u64,
}

/// Endpoint statistics: what happened to connection attempts.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsEndpointStats {
    /// Connections accepted (server) or started (client).
    pub connections: u64,
    /// Stateless Retry packets sent to validate a client's address.
    pub retries_sent: u64,
    /// Connection attempts refused (connection limit, bad Retry token) or ignored.
    pub refused: u64,
    /// Connections open now, closing ones included.
    pub open: u64,
    /// Datagrams dropped because they could not be parsed or matched no connection.
    pub dropped: u64,
    /// Bytes held now for requests of connections that have not authenticated (see `QsIntakeLimits`).
    pub unauthenticated_bytes: u64,
    /// Requests refused for an intake limit or the header deadline (H3_REQUEST_REJECTED).
    pub refused_requests: u64,
    /// Stateless resets sent: answers to packets for connections this server does not know.
    pub resets_sent: u64,
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
    /// The congestion controller's estimate of the path's bandwidth, bytes per second (0: none yet).
    pub delivery_rate: u64,
}
