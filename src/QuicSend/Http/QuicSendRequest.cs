using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>A request as the server sees it; answer it with <see cref="RespondAsync"/>.</summary>
public sealed class QuicSendRequest : QuicSendMessage
{
    private int _responded;

    internal QuicSendRequest(long connectionId, QuicConnection connection, Http3RequestStream stream, List<KeyValuePair<string, string>> headers, long maxBodyBytes = long.MaxValue)
        : base(stream, headers, maxBodyBytes)
    {
        ConnectionId = connectionId;
        Connection = connection;
        Method = HeaderCodec.Get(headers, ":method") ?? "";
        Path = HeaderCodec.Get(headers, ":path") ?? "";
        Authority = HeaderCodec.Get(headers, ":authority");
        MaxBodyBytes = maxBodyBytes;
        CheckContentLength();
    }

    /// <summary>The server-assigned id of the connection the request came on.</summary>
    public long ConnectionId { get; }

    /// <summary>The request's id on its connection (its stream id).</summary>
    public long RequestId => _stream.Id;

    public QuicConnection Connection { get; }

    public string Method { get; }

    public string Path { get; }

    public string? Authority { get; }

    /// <summary>Sends the response: status, quicsend-header-info and body (streamed), then extra trailers if given.</summary>
    public async ValueTask RespondAsync(int status, string? headerInfo = null, QuicSendBody? body = null,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders = null, CancellationToken cancellationToken = default)
    {
        MarkResponded();
        body ??= QuicSendBody.Empty;
        var fields = new List<KeyValuePair<string, string>> { new(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
        fields.Add(new(QuicSendHeaders.ContentType, body.ContentType));
        if (body.Length is long len) fields.Add(new(QuicSendHeaders.ContentLength, len.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (headerInfo is not null) fields.Add(new(QuicSendHeaders.HeaderInfo, headerInfo));
        if (extraHeaders is not null) fields.AddRange(extraHeaders);
        bool empty = body.Length == 0;
        if (!empty && body.InlineBytes is { } bytes)
        {
            await SendHeadAsync(() => _stream.SendResponseAsync(HeaderCodec.Pack(fields), bytes, cancellationToken)).ConfigureAwait(false);
            return;
        }
        await SendHeadAsync(() => _stream.SendResponseHeadersAsync(HeaderCodec.Pack(fields), endStream: empty, cancellationToken)).ConfigureAwait(false);
        if (!empty) await body.WriteToAsync(_stream.Stream, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Streams a response body from <paramref name="write"/> and ends it with the given trailers.</summary>
    public async ValueTask RespondStreamingAsync(int status, string? headerInfo, Func<Stream, ValueTask<IEnumerable<KeyValuePair<string, string>>>> write,
        CancellationToken cancellationToken = default, long? contentLength = null, IEnumerable<KeyValuePair<string, string>>? extraHeaders = null)
    {
        MarkResponded();
        var fields = new List<KeyValuePair<string, string>> { new(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)), new(QuicSendHeaders.ContentType, QuicSendHeaders.OctetStream) };
        if (contentLength is long len) fields.Add(new(QuicSendHeaders.ContentLength, len.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (headerInfo is not null) fields.Add(new(QuicSendHeaders.HeaderInfo, headerInfo));
        if (extraHeaders is not null) fields.AddRange(extraHeaders);
        await SendHeadAsync(() => _stream.SendResponseHeadersAsync(HeaderCodec.Pack(fields), endStream: false, cancellationToken)).ConfigureAwait(false);
        var trailers = (await write(_stream.Stream).ConfigureAwait(false)).ToList();
        // An empty trailer section cannot be sent (quiche fails with InternalError): without trailers the body just ends.
        if (trailers.Count == 0) await _stream.Stream.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
        else await _stream.SendTrailersAsync(HeaderCodec.Pack(trailers), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Answers with a header section only and ends the stream: for HEAD, where <c>content-length</c> is the
    /// length a GET would carry, not that of an (absent) body.
    /// </summary>
    public async ValueTask RespondHeadersOnlyAsync(int status, string? headerInfo, IEnumerable<KeyValuePair<string, string>> headers,
        CancellationToken cancellationToken = default)
    {
        MarkResponded();
        var fields = new List<KeyValuePair<string, string>> { new(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
        if (headerInfo is not null) fields.Add(new(QuicSendHeaders.HeaderInfo, headerInfo));
        fields.AddRange(headers);
        await SendHeadAsync(() => _stream.SendResponseHeadersAsync(HeaderCodec.Pack(fields), endStream: true, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>The token of the request's <c>authorization: Bearer</c> header (empty when there is none): what groups one client's connections.</summary>
    internal string BearerToken
    {
        get
        {
            var auth = HeaderCodec.Get(Headers, QuicSendHeaders.Authorization);
            return auth is not null && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth["Bearer ".Length..].Trim() : "";
        }
    }

    /// <summary>The file-serving state (upload sessions, per-client counts) of the server the request came to.</summary>
    internal FileServingState FileServing { get; init; } = FileServingState.Detached;

    /// <summary>The server's MaxRequestBodySize.</summary>
    internal long MaxBodyBytes { get; }

    internal bool Responded => Volatile.Read(ref _responded) != 0;

    /// <summary>Set by the server: called once the request is answered or disposed, so it stops tracking it.</summary>
    internal Action<QuicSendRequest>? Settled { get; set; }

    /// <summary>
    /// Sends the response's header section. One the engine refuses (a field HTTP forbids, e.g. a CR LF in a value) has sent
    /// nothing, so the request is not answered yet: the handler may still answer it, e.g. with 500.
    /// </summary>
    private async ValueTask SendHeadAsync(Func<ValueTask> send)
    {
        try
        {
            await send().ConfigureAwait(false);
        }
        catch (ArgumentException)
        {
            Volatile.Write(ref _responded, 0);
            throw;
        }
    }

    private void MarkResponded()
    {
        if (Interlocked.Exchange(ref _responded, 1) != 0) throw new InvalidOperationException($"Request {RequestId} was already answered.");
        Settled?.Invoke(this);
    }

    public override void Dispose()
    {
        base.Dispose();
        Settled?.Invoke(this);
    }

    internal QuicStream Stream => _stream.Stream;
}
