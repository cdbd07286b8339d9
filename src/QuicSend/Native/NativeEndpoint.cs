using QuicSend.Transport;

namespace QuicSend.Native;

/// <summary>
/// Typed calls on one native endpoint's connections and streams, for the driver
/// thread only (the one caller into the endpoint). Pointers, pinning and the
/// buffer-growing copy-out live here, so the transport works with spans, byte
/// arrays and status codes. Calls whose failure is an error throw through
/// <see cref="NativeErrors"/>; calls with normal non-OK outcomes (QS_DONE,
/// QS_BLOCKED, QS_ERR_STREAM_RESET) return the status for the caller to act on.
/// </summary>
internal readonly unsafe struct NativeEndpoint(nint ep)
{
    public nint Handle => ep;

    // Connections.

    public ulong Connect(in QsAddr to, ReadOnlySpan<byte> serverName, string remote)
    {
        ulong id;
        fixed (QsAddr* a = &to)
        fixed (byte* n = serverName)
            NativeErrors.Check(NativeMethods.qs_endpoint_connect(ep, EndpointDriver.MonotonicNs(), a, n, (nuint)serverName.Length, &id), $"Connecting to {remote}");
        return id;
    }

    public void Close(ulong conn, long errorCode, ReadOnlySpan<byte> reason)
    {
        fixed (byte* r = reason)
            NativeErrors.Check(NativeMethods.qs_conn_close(ep, conn, (ulong)errorCode, r, (nuint)reason.Length), "Closing the connection");
    }

    public QsStats Stats(ulong conn)
    {
        QsStats s;
        NativeErrors.Check(NativeMethods.qs_conn_stats(ep, conn, &s), "Reading connection statistics");
        return s;
    }

    public QsEndpointStats EndpointStats()
    {
        QsEndpointStats s;
        NativeErrors.Check(NativeMethods.qs_endpoint_stats(ep, &s), "Reading endpoint statistics");
        return s;
    }

    /// <summary>The connection's peer presented a valid credential: the limits on unauthenticated peers no longer
    /// apply to it. The status only: a connection already gone needs nothing.</summary>
    public int Authenticated(ulong conn) => NativeMethods.qs_conn_authenticated(ep, conn);

    public int ConnectionCount() => (int)NativeMethods.qs_endpoint_connection_count(ep);

    /// <summary>Why the connection closed, in the engine's words ("no reason given" when it has none).</summary>
    public string CloseReason(ulong conn)
    {
        var h = ep;
        var text = NativeText.CopyOut((p, n) => NativeMethods.qs_conn_error(h, conn, p, n), 2048);
        return text is null || text.Length == 0 ? "no reason given" : System.Text.Encoding.UTF8.GetString(text);
    }

    /// <summary>The peer's certificate (DER), or null when it presented none; the status when the call failed.</summary>
    public byte[]? PeerCertificate(ulong conn, out long status)
    {
        var h = ep;
        long rc = 0;
        var der = NativeText.CopyOut((p, n) => rc = NativeMethods.qs_conn_peer_certificate(h, conn, p, n), 4096);
        status = rc < 0 ? rc : 0;
        return der;
    }

    // Streams.

    public int StreamOpen(ulong conn, bool unidirectional, out ulong stream)
    {
        ulong id;
        int rc = NativeMethods.qs_stream_open(ep, conn, unidirectional, &id);
        stream = id;
        return rc;
    }

    /// <summary>Raw QUIC stream or HTTP/3 body: bytes read (0 only at the end), QS_DONE, or QS_ERR_STREAM_RESET with the peer's code.</summary>
    public long Read(ulong conn, ulong stream, bool h3, Span<byte> buffer, out bool fin, out ulong code)
    {
        byte f = 0;
        ulong c = 0;
        long n;
        fixed (byte* p = buffer)
            n = h3
                ? NativeMethods.qs_h3_recv_body(ep, conn, stream, p, (nuint)buffer.Length, &f, &c)
                : NativeMethods.qs_stream_read(ep, conn, stream, p, (nuint)buffer.Length, &f, &c);
        fin = f != 0;
        code = c;
        return n;
    }

    /// <summary>Raw QUIC stream or HTTP/3 body: bytes taken, QS_BLOCKED, or QS_ERR_STREAM_RESET with the peer's code.</summary>
    public long Write(ulong conn, ulong stream, bool h3, ReadOnlySpan<byte> data, bool fin, out ulong code)
    {
        ulong c = 0;
        long n;
        fixed (byte* p = data)
            n = h3
                ? NativeMethods.qs_h3_send_body(ep, conn, stream, p, (nuint)data.Length, fin, &c)
                : NativeMethods.qs_stream_write(ep, conn, stream, p, (nuint)data.Length, fin, &c);
        code = c;
        return n;
    }

    public int Finish(ulong conn, ulong stream) => NativeMethods.qs_stream_finish(ep, conn, stream);

    public int Reset(ulong conn, ulong stream, ulong code) => NativeMethods.qs_stream_reset(ep, conn, stream, code);

    public int StopReading(ulong conn, ulong stream, ulong code) => NativeMethods.qs_stream_stop(ep, conn, stream, code);

    // HTTP/3.

    public int SendRequest(ulong conn, byte[] packedHeaders, bool fin, out ulong stream)
    {
        ulong id;
        int rc;
        fixed (byte* p = packedHeaders) rc = NativeMethods.qs_h3_send_request(ep, conn, p, (nuint)packedHeaders.Length, fin, &id);
        stream = id;
        return rc;
    }

    /// <summary>A response header section or a trailer section: QS_OK, QS_BLOCKED, or an error status.</summary>
    public int SendSection(ulong conn, ulong stream, byte[] packed, bool trailers, bool fin)
    {
        fixed (byte* p = packed)
            return trailers
                ? NativeMethods.qs_h3_send_trailers(ep, conn, stream, p, (nuint)packed.Length)
                : NativeMethods.qs_h3_send_response(ep, conn, stream, p, (nuint)packed.Length, fin);
    }

    /// <summary>The header (or trailer) section the engine holds for a stream, packed; null when none arrived; the status when the call failed.</summary>
    public byte[]? HeaderSection(ulong conn, ulong stream, bool trailers, int expectedLength, out long status)
    {
        var h = ep;
        long rc = 0;
        var packed = NativeText.CopyOut((p, n) => rc = NativeMethods.qs_h3_recv_headers(h, conn, stream, trailers, p, n), Math.Max(expectedLength, 1));
        status = rc < 0 ? rc : 0;
        return packed;
    }

    public int ReleaseRequest(ulong conn, ulong stream) => NativeMethods.qs_h3_stream_release(ep, conn, stream);

    public void GoAway(ulong conn) => NativeErrors.Check(NativeMethods.qs_h3_goaway(ep, conn), "Sending GOAWAY");
}
