using System.Globalization;
using System.Net;
using System.Threading.Channels;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>Settings of a <see cref="QuicSendClient"/>.</summary>
public sealed class QuicSendClientOptions
{
    /// <summary>Transport settings: trusted roots or pins, timeouts. HTTP/3 and ALPN "h3" are set for you.</summary>
    public QuicClientOptions Transport { get; init; } = new();

    /// <summary>The bearer token sent with every request.</summary>
    public string? Token { get; init; }

    /// <summary>The name the server's certificate must carry; default: the address.</summary>
    public string? ServerName { get; init; }

    /// <summary>
    /// How many QUIC connections to hold to the server (default 1: the plain single-connection client).
    /// With more, each small request goes to the least-loaded connection and large file transfers are
    /// striped across all of them in <see cref="ChunkSize"/> pieces: on a long, lossy path each
    /// connection's congestion controller backs off alone after a loss, so N of them keep the link full.
    /// </summary>
    public int Connections { get; init; } = 1;

    /// <summary>The piece a striped transfer is cut into (default 16 MiB); files up to twice this size go whole on one connection.</summary>
    public int ChunkSize { get; init; } = 16 << 20;

    /// <summary>
    /// Whether an interrupted file transfer keeps what it moved so the same call resumes it (default false:
    /// a failed transfer leaves nothing behind). Applies to files over twice <see cref="ChunkSize"/>, which then
    /// travel in chunks even on one connection. A download keeps <c>.&lt;name&gt;.quicsend-resume.partial</c> and
    /// <c>.json</c> beside its target, resumed only for the same server, name and version (ETag) and verified whole
    /// at the end; an upload uses an id derived from the file (path, length, modification time) and the remote name,
    /// asks the server which chunks it holds and sends the rest — the server keeps them while the upload is idle for
    /// less than its session timeout (10 minutes by default), not across a server restart.
    /// </summary>
    public bool ResumableTransfers { get; init; }
}

/// <summary>
/// An HTTP/3 client for a QuicSend server. Polling API: <see cref="Request"/>
/// returns an id and <see cref="Poll"/> reports connect, timeout and responses,
/// as the original quicsend did. Async API: <see cref="RequestAsync"/>.
/// </summary>
public sealed class QuicSendClient : IAsyncDisposable, IDisposable
{
    private abstract record ClientEvent;
    private sealed record ConnectedEvent : ClientEvent;
    private sealed record ClosedEvent(Exception Reason) : ClientEvent;
    private sealed record ResponseEvent(QuicSendResponse Response) : ClientEvent;
    private sealed record FailedEvent(long RequestId, Exception Error) : ClientEvent;

    private readonly QuicSendClientOptions _options;
    private readonly ConnectionPool _pool;
    private readonly IPEndPoint _server;
    private readonly string _authority;
    private readonly Task<QuicConnection> _connecting;
    private readonly Channel<ClientEvent> _events = Channel.CreateUnbounded<ClientEvent>();
    private long _nextRequestId;
    private int _disposed;

    /// <summary>Starts connecting at once; <see cref="Poll"/> reports when it is done (or use <see cref="ConnectAsync"/>).</summary>
    public QuicSendClient(IPEndPoint server, QuicSendClientOptions options)
    {
        _options = options;
        _server = server;
        var t = OptionsCopy.Of(options.Transport);
        t.Http3 = true;
        if (!t.AlpnProtocols.Contains("h3")) t.AlpnProtocols.Add("h3");
        if (options.Connections < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Connections, "QuicSendClientOptions.Connections must be at least 1.");
        if (options.ChunkSize < 64 * 1024)
            throw new ArgumentOutOfRangeException(nameof(options), options.ChunkSize, "QuicSendClientOptions.ChunkSize must be at least 64 KiB.");
        var name = options.ServerName ?? server.Address.ToString();
        _pool = new ConnectionPool(options.Connections, t, server, name, Http3Connection.Attach);
        _authority = server.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && options.ServerName is null
            ? $"[{name}]:{server.Port}" : $"{name}:{server.Port}";
        _connecting = ConnectCoreAsync();
    }

    private async Task<QuicConnection> ConnectCoreAsync()
    {
        try
        {
            var conn = await _pool.ConnectAllAsync().ConfigureAwait(false);
            _events.Writer.TryWrite(new ConnectedEvent());
            // The client ends when its last connection does (with one connection: when it does).
            _ = _pool.AllClosed.ContinueWith(_ => _events.Writer.TryWrite(new ClosedEvent(
                conn.Closed.IsCompleted ? conn.Closed.Result : new QuicException(QuicError.ConnectionClosed, "All connections closed."))), TaskScheduler.Default);
            return conn;
        }
        catch (Exception e)
        {
            _events.Writer.TryWrite(new ClosedEvent(e));
            throw;
        }
    }

    /// <summary>Connects and completes once the handshake has (failing with the reason otherwise).</summary>
    public static async Task<QuicSendClient> ConnectAsync(IPEndPoint server, QuicSendClientOptions options, CancellationToken cancellationToken = default)
    {
        var client = new QuicSendClient(server, options);
        try
        {
            await client._connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The (first) connection once it is up (for statistics).</summary>
    public Task<QuicConnection> Connection => _connecting;

    /// <summary>The connections that are up and take requests now (one per <see cref="QuicSendClientOptions.Connections"/> while all is well).</summary>
    public IReadOnlyList<QuicConnection> ActiveConnections => _pool.Usable().Select(m => m.Connecting.Result).ToList();

    internal ConnectionPool Pool => _pool;

    internal QuicSendClientOptions Options => _options;

    /// <summary>Names a resource of this server for a resume record: its address, the name it is reached by, the path.</summary>
    internal string SourceOf(string path) => $"{_server} {_authority}{path}";

    /// <summary>Completes when the server announced a graceful shutdown (HTTP/3 GOAWAY): it still answers
    /// what it received and takes no new requests. Fails if the connection could not be made.</summary>
    public Task GoAwayReceived => LazyInitializer.EnsureInitialized(ref _goAwayReceived, WhenGoAwayAsync);

    private Task? _goAwayReceived; // made on first use: nobody may ever observe a failed connect through it

    private async Task WhenGoAwayAsync()
    {
        var conn = await _connecting.ConfigureAwait(false);
        await Http3Connection.Of(conn).GoAwayReceived.ConfigureAwait(false);
    }

    /// <summary>
    /// Async API: sends a request and completes when the response's headers have arrived;
    /// its body then streams from <see cref="QuicSendMessage.Body"/>. Dispose the response when done.
    /// </summary>
    public Task<QuicSendResponse> RequestAsync(string path, string? headerInfo = null, QuicSendBody? body = null,
        CancellationToken cancellationToken = default) =>
        SendAsync("POST", path, headerInfo, body, null, Interlocked.Increment(ref _nextRequestId), cancellationToken);

    /// <summary>Sends a request with any method and extra headers; trailers (if any) end the request body.</summary>
    public Task<QuicSendResponse> SendAsync(string method, string path, string? headerInfo, QuicSendBody? body,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders, CancellationToken cancellationToken = default) =>
        SendAsync(method, path, headerInfo, body, extraHeaders, Interlocked.Increment(ref _nextRequestId), cancellationToken);

    internal async Task<QuicSendResponse> SendAsync(string method, string path, string? headerInfo, QuicSendBody? body,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders, long requestId, CancellationToken cancellationToken,
        Func<Http3RequestStream, ValueTask>? writeBody = null, PooledConnection? on = null)
    {
        if (!path.StartsWith('/')) throw new ArgumentException($"The path '{path}' must start with '/'.", nameof(path));
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException(nameof(QuicSendClient), "This QuicSendClient was disposed: make a new one to send more requests.");
        var first = await _connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        // The least-loaded usable connection; none usable: the pool is replacing closed ones (a server restart), so wait
        // for one as a connect would; GOAWAY on every open one: the server is shutting down, say so at once.
        bool chosen = on is not null;
        on ??= _pool.LeastLoaded();
        if (on is null && _pool.AllGoneAway)
            throw new QuicException(QuicError.ConnectionClosed,
                "The server is shutting down: it sent GOAWAY on every connection of this client, so it takes no new requests " +
                "from it. Connect a new client (to this server once it is back, or to another).") { ErrorCode = (long)Http3Errors.NoError };
        on ??= await _pool.UsableAsync(_options.Transport.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        if (on is null && _pool.Members.All(m => m.Connecting.IsCompleted))
            throw new QuicException(QuicError.ConnectionClosed,
                $"No connection to the server is open: {_pool.WhyNoneUsable().TrimEnd('.')}. The client tried to connect again for " +
                $"{_options.Transport.ConnectTimeout.TotalSeconds:0.#} s; check that the server is running, then send the request again.");
        var conn = on?.Connecting.Result ?? first;
        using var lease = on?.Take();
        body ??= QuicSendBody.Empty;
        var fields = new List<KeyValuePair<string, string>>
        {
            new(":method", method), new(":scheme", "https"), new(":authority", _authority), new(":path", path),
        };
        if (_options.Token is not null) fields.Add(new(QuicSendHeaders.Authorization, "Bearer " + _options.Token));
        fields.Add(new(QuicSendHeaders.ContentType, body.ContentType));
        if (writeBody is null && body.Length is long len) fields.Add(new(QuicSendHeaders.ContentLength, len.ToString(CultureInfo.InvariantCulture)));
        if (headerInfo is not null) fields.Add(new(QuicSendHeaders.HeaderInfo, headerInfo));
        if (extraHeaders is not null) fields.AddRange(extraHeaders);
        bool noBody = writeBody is null && body.Length == 0;
        var inline = noBody || writeBody is not null ? null : body.InlineBytes;
        var stream = await Http3Connection.Of(conn).SendRequestAsync(HeaderCodec.Pack(fields), noBody, cancellationToken, inline).ConfigureAwait(false);
        try
        {
            // Send the body while waiting for the answer: a server may answer early (e.g. 401).
            var sending = noBody ? Task.CompletedTask
                : inline is not null ? stream.InitialWrite.AsTask()
                : writeBody is not null ? writeBody(stream).AsTask()
                : body.WriteToAsync(stream.Stream, cancellationToken).AsTask();
            // A request the server provably did not process may go again, when its body can be sent again.
            bool resendable = !chosen && writeBody is null && (noBody || inline is not null);
            Task<QuicSendResponse> SendAgainAsync(PooledConnection? to)
            {
                stream.Stream.Dispose();
                _ = sending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                return SendAsync(method, path, headerInfo, body, extraHeaders, requestId, cancellationToken, null, to);
            }
            byte[] packed;
            try
            {
                packed = await stream.ReadHeadersAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (QuicException e) when (e.ErrorCode == (long)Http3Errors.RequestRejected && resendable
                                          && _pool.LeastLoaded() is { } other && other != on)
            {
                // RFC 9114 §5.2: a rejected request was not processed (it crossed the server's GOAWAY): send it again elsewhere.
                return await SendAgainAsync(other).ConfigureAwait(false);
            }
            catch (QuicException e) when (e.Error == QuicError.ConnectionReset && resendable && method is "GET" or "HEAD" or "OPTIONS")
            {
                // The server was restarted: it no longer knows this connection. A safe request goes again on another
                // connection (the pool replaces the reset ones); each such try retires one stale connection.
                return await SendAgainAsync(null).ConfigureAwait(false);
            }
            var headers = HeaderCodec.Unpack(packed);
            var response = new QuicSendResponse(requestId, stream, headers, toHead: method == "HEAD");
            if (!sending.IsCompleted)
            {
                response.ContinueSending(sending); // full duplex: see ContinueSending
                return response;
            }
            try
            {
                await sending.ConfigureAwait(false);
            }
            catch (QuicException) when (!response.IsSuccess)
            {
                // The server refused the request and stopped reading its body: the answer is what matters.
            }
            return response;
        }
        catch
        {
            stream.Stream.Dispose();
            throw;
        }
    }

    /// <summary>Polling API: sends a request in the background and returns its id; the response arrives through <see cref="Poll"/>.</summary>
    public long Request(string path, string? headerInfo, QuicSendBody? body)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        _ = Task.Run(async () =>
        {
            try
            {
                var response = await SendAsync("POST", path, headerInfo, body, null, id, CancellationToken.None).ConfigureAwait(false);
                _events.Writer.TryWrite(new ResponseEvent(response));
            }
            catch (Exception e)
            {
                _events.Writer.TryWrite(new FailedEvent(id, e));
            }
        });
        return id;
    }

    /// <summary>
    /// Polling API: waits up to <paramref name="timeoutMs"/>, then reports what happened:
    /// the connection completing (<paramref name="onConnect"/>), the connection ending or
    /// failing (<paramref name="onTimeout"/>), and responses (<paramref name="onResponse"/>,
    /// body streaming). A request that failed without a response is reported through
    /// <paramref name="onError"/> when given. Returns false once the client is unusable.
    /// </summary>
    public bool Poll(Action? onConnect, Action? onTimeout, Action<QuicSendResponse>? onResponse, int timeoutMs,
        Action<long, Exception>? onError = null)
    {
        if (Volatile.Read(ref _disposed) != 0) return false;
        PollWait.ForEvent(_events.Reader, timeoutMs);
        bool valid = true;
        while (_events.Reader.TryRead(out var ev))
        {
            switch (ev)
            {
                case ConnectedEvent: onConnect?.Invoke(); break;
                case ClosedEvent: valid = false; onTimeout?.Invoke(); break;
                case ResponseEvent r: onResponse?.Invoke(r.Response); break;
                case FailedEvent f: onError?.Invoke(f.RequestId, f.Error); break;
            }
        }
        return valid && Volatile.Read(ref _disposed) == 0 && !_connecting.IsFaulted;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _pool.CloseAsync((long)Http3Errors.NoError, "client closed").ConfigureAwait(false);
        _events.Writer.TryComplete();
        try { await _connecting.ConfigureAwait(false); } catch { }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
