using QuicSend.Native;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>
/// An HTTP/3 request stream: the QUIC stream carrying one request and its response,
/// whose body the engine frames (DATA frames), plus its header and trailer sections.
/// As the stream's <see cref="StreamFraming"/> it routes body reads and writes to the
/// engine's HTTP/3 calls, so <see cref="QuicStream"/>'s own operations serve both.
/// </summary>
internal sealed class Http3RequestStream : StreamFraming
{
    private readonly QuicConnection _conn;
    private readonly HeadersOperation _headers;

    // Driver-thread state.
    private long? _resetCode;          // the peer reset the stream before its header section
    private int _headerLength = 1024;  // until the HEADERS event tells
    private volatile byte[]? _received; // the header section, copied out by the driver as its event arrived

    public Http3RequestStream(QuicConnection conn, ulong id, bool writable)
    {
        _conn = conn;
        Stream = new QuicStream(conn, id, readable: true, writable, this);
        _headers = new HeadersOperation(this);
    }

    /// <summary>The HTTP/3 side of a stream this layer made.</summary>
    public static Http3RequestStream Of(QuicStream stream) => (Http3RequestStream)stream.Framing;

    /// <summary>The QUIC stream: the body is read and written through it.</summary>
    public QuicStream Stream { get; }

    public long Id => Stream.Id;

    /// <summary>The header section received (packed), waiting for it on a client. Once it has arrived
    /// (always, for a request a server accepts) it is returned at once, without a trip to the driver.</summary>
    public ValueTask<byte[]> ReadHeadersAsync(CancellationToken cancellationToken) =>
        _received is { } got ? ValueTask.FromResult(got) : _headers.Start(cancellationToken);

    /// <summary>A body write the request's own start began with (<see cref="Http3Connection.SendRequestAsync"/>), to be awaited once.</summary>
    internal ValueTask InitialWrite { get; set; }

    /// <summary>The trailer section (packed) as it stands: none yet is empty.</summary>
    public ValueTask<byte[]> ReadTrailersAsync() => new(_conn.Driver.CallAsync(() =>
    {
        if (_resetCode is long code) throw NoResponseError(code);
        return ReadHeaderSection(trailers: true) ?? [];
    }));

    /// <summary>Sends the response header section (server side), waiting for stream credit when the engine has none.</summary>
    public ValueTask SendResponseHeadersAsync(byte[] packed, bool endStream, CancellationToken cancellationToken = default) =>
        Stream.WriteSectionAsync(packed, trailing: false, endStream, cancellationToken);

    /// <summary>Sends the response header section, then <paramref name="body"/> and the end, as one operation (one trip to the driver).</summary>
    public ValueTask SendResponseAsync(byte[] packed, ReadOnlyMemory<byte> body, CancellationToken cancellationToken = default) =>
        Stream.WriteSectionAsync(packed, trailing: false, endStream: true, cancellationToken, body);

    /// <summary>Sends a trailer section and ends the body, waiting for stream credit when the engine has none.</summary>
    public ValueTask SendTrailersAsync(byte[] packed, CancellationToken cancellationToken = default) =>
        Stream.WriteSectionAsync(packed, trailing: true, endStream: true, cancellationToken);

    // Engine events, on the driver thread.

    /// <summary>The header section arrived; its packed length comes with the event, so it is copied out in one call.</summary>
    public void OnHeaders(int length)
    {
        _headerLength = length;
        try { _received = ReadHeaderSection(trailers: false); }
        catch (QuicException) { } // the operation reports it when asked
        _headers.Resume();
    }

    public void OnReset(long code)
    {
        _resetCode = code;
        Stream.EndReading(Stream.ReadError ?? new QuicException(QuicError.StreamAborted, $"Stream {Id} ended early: {Http3Errors.Name(code)}.") { ErrorCode = code });
        _headers.Resume();
        Stream.OnReadable();
    }

    // The framing, on the driver thread.

    public override ulong CancelCode => Http3Errors.RequestCancelled;

    public override bool EndsWithWrite => true; // the engine may still hold DATA framing to flush before the FIN

    public override long Read(QuicStream s, Span<byte> buffer, out bool fin, out ulong code) =>
        _conn.Driver.Native.Read(_conn.Id, (ulong)Id, h3: true, buffer, out fin, out code);

    public override long Write(QuicStream s, ReadOnlySpan<byte> data, bool fin, out ulong code) =>
        _conn.Driver.Native.Write(_conn.Id, (ulong)Id, h3: true, data, fin, out code);

    public override bool TryWriteSection(QuicStream s, byte[] section, bool trailing, bool fin, out Exception? error)
    {
        int rc = _conn.Driver.Native.SendSection(_conn.Id, (ulong)Id, section, trailers: trailing, fin);
        error = rc >= 0 || rc == QsConst.QS_BLOCKED ? null
            : NativeErrors.ToException(rc, trailing ? $"Sending trailers on stream {Id}" : $"Sending the response on stream {Id}");
        return rc >= 0;
    }

    /// <summary>A message cut short is reset, so it cannot look complete; the engine then forgets the stream's HTTP/3 state.</summary>
    public override void Release(QuicStream s, bool writing, bool reading)
    {
        var native = _conn.Driver.Native;
        if (writing) native.Reset(_conn.Id, (ulong)Id, Http3Errors.RequestCancelled);
        native.ReleaseRequest(_conn.Id, (ulong)Id);
        if (!_conn.IsServer) Http3Connection.Of(_conn).OnRequestReleased();
    }

    public override void Wake() => _headers.Resume();

    public override void Abandon(Exception error) => _headers.Abandon(error);

    /// <summary>The header section (or trailers) the engine holds for this stream, or null when none has arrived.</summary>
    private byte[]? ReadHeaderSection(bool trailers)
    {
        var packed = _conn.Driver.Native.HeaderSection(_conn.Id, (ulong)Id, trailers, trailers ? 1024 : _headerLength, out long rc);
        if (rc == QsConst.QS_DONE) return null;
        if (rc < 0) throw Stream.Failure((int)rc, "Reading a header section of");
        return packed;
    }

    private QuicException NoResponseError(long code) =>
        new(QuicError.StreamAborted, $"The server ended request stream {Id} without a response ({Http3Errors.Name(code)})." + (code switch
        {
            // RFC 9114 §8.1: the request was not processed, so sending it again is safe.
            (long)Http3Errors.RequestRejected => " It did not process the request: it is shutting down (GOAWAY) or the request was over one of " +
                                                  "its limits (an incomplete header section from a client without a token); sending it again is safe.",
            (long)Http3Errors.MessageError => " Either the request or the server's response was malformed (a field name or value HTTP forbids, " +
                                               "or a content-length that is not a number of bytes), and was refused.",
            _ => "",
        })) { ErrorCode = code };

    /// <summary>Waits for the header section; one at a time, allocation-free like the stream's reads and writes.</summary>
    private sealed class HeadersOperation(Http3RequestStream h) : StreamOperation<byte[]>(h._conn.Driver)
    {
        protected override string BusyMessage => $"The header section of stream {h.Id} is already awaited.";

        public ValueTask<byte[]> Start(CancellationToken cancellationToken)
        {
            Claim();
            return new(this, Begin(cancellationToken));
        }

        protected override void Step()
        {
            if (h._resetCode is long code) { Fail(h.NoResponseError(code)); return; }
            var got = h._received ?? h.ReadHeaderSection(trailers: false);
            if (got is not null) { Complete(got); return; }
            if (h.Stream.ReadError is { } readError) { Fail(readError); return; }
            if (h._conn.IsClosed) Fail(h._conn.Error());
            // else: H3_HEADERS resumes
        }

        protected override void OnCancelled(OperationCanceledException error)
        {
            // Nobody will read this response: abandon the whole exchange.
            h.Stream.AbortOnDriver(h.Stream.CancelCode);
            Fail(error);
        }
    }
}
