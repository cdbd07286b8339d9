using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>Settings of a <see cref="QuicSendServer"/>.</summary>
public sealed class QuicSendServerOptions
{
    /// <summary>Transport settings: address, certificate and key, limits. HTTP/3 and ALPN "h3" are set for you.</summary>
    public QuicServerOptions Transport { get; init; } = new();

    /// <summary>Bearer tokens accepted in the authorization header. Requests without one get 401 and their connection is closed.</summary>
    public IList<string> Tokens { get; init; } = new List<string>();

    /// <summary>Serve requests without a token. Off by default: a server on the Internet should require one.</summary>
    public bool AllowAnonymous { get; init; }

    /// <summary>Largest request body accepted: a larger declared content-length gets 413; a body that
    /// grows past it while streaming is cut off with H3_EXCESSIVE_LOAD.</summary>
    public long MaxRequestBodySize { get; init; } = 1L << 40;

    /// <summary>
    /// Accept requests from the original quicsend client (C++ over quiche, driven from Python) as it
    /// sends them (docs/compatibility.md). Off by default. On:
    /// <list type="bullet">
    /// <item>a <c>:path</c> without the leading slash (<c>simple.txt</c>) is accepted and normalised:
    /// handlers see <see cref="QuicSendRequest.Path"/> (and the <c>:path</c> entry of
    /// <see cref="QuicSendMessage.Headers"/>) as <c>/simple.txt</c>, the same as from a QuicSend client;</item>
    /// <item>the token may come as <c>authorization: Bearer Bearer &lt;token&gt;</c> (the original adds the
    /// prefix twice on requests with a body) as well as <c>Bearer &lt;token&gt;</c>; it is still checked
    /// (the original server never checked it).</item>
    /// </list>
    /// Off, such a path is refused with 400 and such a token with 401 (whose message names this option).
    /// Response content types need no mode: the bodies QuicSend makes are always exactly
    /// <c>application/octet-stream</c>, <c>text/plain</c> or <c>application/msgpack</c>, as the original's
    /// Python wrapper requires.
    /// </summary>
    public bool OriginalClientCompatibility { get; init; }

    /// <summary>Serving files: per-client transfer caps, disk reservation, upload sessions (<see cref="FileServingOptions"/>).</summary>
    public FileServingOptions FileTransfers { get; init; } = new();

    /// <summary>How long <see cref="QuicSendServer.DisposeAsync"/> lets responses under way finish before it closes
    /// the connections (<see cref="QuicSendServer.ShutdownAsync"/>). 10 s by default; zero closes at once.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// An HTTP/3 server speaking quicsend's conventions: requests carry a bearer
/// token, quicsend-header-info and a typed body. Use either the polling API
/// (<see cref="Poll"/>, <see cref="Respond"/>, <see cref="Close"/>), as the
/// original quicsend did, or the async one (<see cref="AcceptRequestsAsync"/>,
/// <see cref="QuicSendRequest.RespondAsync"/>).
/// </summary>
public sealed partial class QuicSendServer : IAsyncDisposable, IDisposable
{
    private abstract record ServerEvent;
    private sealed record ConnectEvent(long ConnectionId) : ServerEvent;
    private sealed record ClosedEvent(long ConnectionId, QuicException Reason) : ServerEvent;
    private sealed record RequestEvent(QuicSendRequest Request) : ServerEvent;

    private readonly QuicEndpoint _endpoint;
    private readonly TokenSet _tokens;
    private readonly bool _anonymous;
    private readonly long _maxBody;
    private readonly bool _compatible;
    private readonly Channel<ServerEvent> _events = Channel.CreateUnbounded<ServerEvent>();
    private readonly ConcurrentDictionary<long, Http3Connection> _connections = new();
    private readonly ConcurrentDictionary<(long, long), QuicSendRequest> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly FileServingState _files;
    private long _nextConnectionId;
    private int _disposed;

    public QuicSendServer(QuicSendServerOptions options)
    {
        if (options.Tokens.Count == 0 && !options.AllowAnonymous)
            throw new QuicConfigurationException("No bearer token configured: set QuicSendServerOptions.Tokens (or AllowAnonymous = true to serve anyone).");
        _tokens = new TokenSet(options.Tokens);
        _anonymous = options.AllowAnonymous;
        _maxBody = options.MaxRequestBodySize;
        _compatible = options.OriginalClientCompatibility;
        options.FileTransfers.Validate(); // a bad setting fails before the port is taken
        _shutdownTimeout = options.ShutdownTimeout;
        var t = OptionsCopy.Of(options.Transport);
        t.Http3 = true;
        if (!t.AlpnProtocols.Contains("h3")) t.AlpnProtocols.Add("h3");
        _endpoint = QuicEndpoint.Listen(t, Http3Connection.Attach);
        _files = new FileServingState(options.FileTransfers); // after Listen: its sweep timer must not outlive a server that failed to start
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address the server listens on.</summary>
    public IPEndPoint LocalEndPoint => _endpoint.LocalEndPoint;

    /// <summary>The endpoint's counts: connections, Retry packets, refusals, and what peers that have not
    /// authenticated hold now and how many of their requests were refused (<see cref="UnauthenticatedLimits"/>).</summary>
    public QuicEndpointStats GetStats() => _endpoint.GetStats();

    /// <summary>The accepted tokens; add and remove to rotate them while serving.</summary>
    public TokenSet Tokens => _tokens;

    /// <summary>This server's file serving: its upload sessions, per-client counts and partial-file sweeps.</summary>
    internal FileServingState Files => _files;

    /// <summary>Requests refused for a missing or wrong token so far.</summary>
    public long UnauthorizedRequests => Interlocked.Read(ref _unauthorized);

    private long _unauthorized;

    /// <summary>Requests refused with 400 for a <c>:path</c> that does not start with '/' so far (see <see cref="QuicSendServerOptions.OriginalClientCompatibility"/>).</summary>
    public long BadPathRequests => Interlocked.Read(ref _badPaths);

    private long _badPaths;

    /// <summary>True when this server accepts the original quicsend client's requests (<see cref="QuicSendServerOptions.OriginalClientCompatibility"/>).</summary>
    public bool OriginalClientCompatibility => _compatible;

    /// <summary>
    /// The client address of a connection reported by <see cref="Poll"/>, as the original's on_connect gave it;
    /// null once it has closed, for an unknown id, and for now always (the transport does not report the
    /// peer address of accepted connections yet: docs/compatibility.md, Known gaps).
    /// </summary>
    public IPEndPoint? GetRemoteEndPoint(long connectionId) =>
        _connections.TryGetValue(connectionId, out var conn) ? conn.Connection.RemoteEndPoint : null;

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var conn = Http3Connection.Of(await _endpoint.AcceptAsync(_stop.Token).ConfigureAwait(false));
                if (IsDraining)
                {
                    // A connection made during the drain is closed before any of its requests is seen.
                    await conn.Connection.CloseAsync((long)Http3Errors.NoError, ShuttingDown).ConfigureAwait(false);
                    continue;
                }
                var id = Interlocked.Increment(ref _nextConnectionId);
                _connections[id] = conn;
                _events.Writer.TryWrite(new ConnectEvent(id));
                _ = ServeConnectionAsync(id, conn);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
    }

    private async Task ServeConnectionAsync(long id, Http3Connection conn)
    {
        try
        {
            while (true)
            {
                var stream = await conn.AcceptRequestAsync(_stop.Token).ConfigureAwait(false);
                var headers = HeaderCodec.Unpack(await stream.ReadHeadersAsync(_stop.Token).ConfigureAwait(false));
                var path = HeaderCodec.Get(headers, ":path");
                bool badPath = !IsOriginForm(path);
                if (badPath && _compatible)
                {
                    // The original client's "simple.txt": handlers see "/simple.txt", as from any other client.
                    int at = headers.FindIndex(h => h.Key == ":path");
                    headers[at] = new(":path", "/" + path);
                    badPath = false;
                }
                var request = new QuicSendRequest(id, conn.Connection, stream, headers, _maxBody) { FileServing = _files };
                TrackResponse(stream.Stream);
                var authorization = HeaderCodec.Get(headers, QuicSendHeaders.Authorization);
                if (!_anonymous && !_tokens.Authorizes(authorization, acceptDoubledPrefix: _compatible))
                {
                    Interlocked.Increment(ref _unauthorized);
                    _ = RefuseAsync(request, conn.Connection, TokenSet.HasDoubledPrefix(authorization));
                    continue;
                }
                conn.Connection.MarkAuthenticated();
                if (badPath)
                {
                    // After the token check: an unauthenticated client learns nothing but 401.
                    Interlocked.Increment(ref _badPaths);
                    _ = RejectBadPathAsync(request, path!);
                    continue;
                }
                if (request.ContentLength > _maxBody)
                {
                    _ = RejectTooLargeAsync(request);
                    continue;
                }
                // Pending until answered (either API) or disposed; a long-lived connection must not accumulate answered requests.
                request.Settled = r => _pending.TryRemove(new KeyValuePair<(long, long), QuicSendRequest>((r.ConnectionId, r.RequestId), r));
                _pending[(id, request.RequestId)] = request;
                _events.Writer.TryWrite(new RequestEvent(request));
            }
        }
        catch (QuicException e)
        {
            _connections.TryRemove(id, out _);
            // Requests of a closed connection can no longer be answered: forget them.
            foreach (var key in _pending.Keys.Where(k => k.Item1 == id).ToList())
                if (_pending.TryRemove(key, out var orphan)) orphan.Dispose();
            _events.Writer.TryWrite(new ClosedEvent(id, e));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
    }

    /// <summary>
    /// RFC 9114 §4.3.1: <c>:path</c> is origin-form (starting with '/') or, for OPTIONS, <c>*</c>. A request
    /// without one (CONNECT) is left to the handler, as before; an empty one never gets here (the shim refuses it).
    /// </summary>
    private static bool IsOriginForm(string? path) => string.IsNullOrEmpty(path) || path[0] == '/' || path == "*";

    /// <summary>As the original did: answer 401, let the answer arrive, then close the connection.</summary>
    private static async Task RefuseAsync(QuicSendRequest request, QuicConnection conn, bool doubledPrefix)
    {
        var message = "401 Unauthorized: a valid 'authorization: Bearer <token>' header is required.";
        if (doubledPrefix)
            message += " This one reads 'Bearer Bearer <token>', as the original quicsend client sends it; a server for that client " +
                       "sets QuicSendServerOptions.OriginalClientCompatibility.";
        try
        {
            await request.RespondAsync(401, null, QuicSendBody.FromText(message)).ConfigureAwait(false);
            await request.Stream.WritesAcknowledged.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or TimeoutException or ObjectDisposedException) { }
        finally
        {
            request.Dispose();
            await conn.CloseAsync((long)Http3Errors.NoError, "unauthorized").ConfigureAwait(false);
        }
    }

    private static async Task RejectBadPathAsync(QuicSendRequest request, string path)
    {
        using (request)
        {
            var shown = path.Length <= 100 ? path : path[..100] + "…";
            try
            {
                await request.RespondAsync(400, null, QuicSendBody.FromText(
                    $"400 Bad Request: ':path' must start with '/' (RFC 9114 §4.3.1), not '{shown}'. The original quicsend client sends " +
                    "paths without it; a server for that client sets QuicSendServerOptions.OriginalClientCompatibility.")).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
        }
    }

    private async Task RejectTooLargeAsync(QuicSendRequest request)
    {
        using (request)
        {
            try
            {
                await request.RespondAsync(413, null, QuicSendBody.FromText(
                    $"413 Payload Too Large: the body is {request.ContentLength} bytes; this server accepts at most {_maxBody}.")).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
        }
    }

    /// <summary>
    /// Polling API: waits up to <paramref name="timeoutMs"/> for something to happen, then
    /// reports everything that did: new connections, connections that ended (timed out or
    /// closed), and requests (their bodies stream; read them in the callback or later).
    /// Returns false once the server has been disposed.
    /// </summary>
    public bool Poll(Action<long>? onConnect, Action<long>? onTimeout, Action<QuicSendRequest>? onRequest, int timeoutMs)
    {
        if (Volatile.Read(ref _disposed) != 0) return false;
        PollWait.ForEvent(_events.Reader, timeoutMs);
        while (_events.Reader.TryRead(out var ev))
        {
            switch (ev)
            {
                case ConnectEvent c: onConnect?.Invoke(c.ConnectionId); break;
                case ClosedEvent c: onTimeout?.Invoke(c.ConnectionId); break;
                case RequestEvent r: onRequest?.Invoke(r.Request); break;
            }
        }
        return Volatile.Read(ref _disposed) == 0;
    }

    /// <summary>Async API: the requests as they arrive (connection events are skipped).</summary>
    public async IAsyncEnumerable<QuicSendRequest> AcceptRequestsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _events.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_events.Reader.TryRead(out var ev))
            {
                if (ev is RequestEvent r) yield return r.Request;
            }
        }
    }

    /// <summary>Polling API: answers a request by ids; sending continues in the background.</summary>
    public void Respond(long connectionId, long requestId, int status, string? headerInfo, QuicSendBody? body) =>
        _ = RespondAsync(connectionId, requestId, status, headerInfo, body);

    /// <summary>Answers a request by ids and completes when the response has been handed to the transport.</summary>
    public async Task RespondAsync(long connectionId, long requestId, int status, string? headerInfo, QuicSendBody? body, CancellationToken cancellationToken = default)
    {
        if (!_pending.TryRemove((connectionId, requestId), out var request))
            throw new InvalidOperationException($"No open request {requestId} on connection {connectionId} (already answered, or its connection closed).");
        using (request)
        {
            await request.RespondAsync(status, headerInfo, body, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes a connection (as the original's server.close(connection_id)).</summary>
    public void Close(long connectionId)
    {
        if (_connections.TryRemove(connectionId, out var conn))
            conn.Connection.CloseAsync((long)Http3Errors.NoError, "closed by the server").AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Starts a graceful shutdown of a connection (HTTP/3 GOAWAY): requests already received
    /// are still answered, the client sends no new ones. Does nothing once the connection closed.
    /// </summary>
    public void GoAway(long connectionId)
    {
        if (_connections.TryGetValue(connectionId, out var conn)) conn.GoAway();
    }

    /// <summary>The ids of the connections open now (for tests).</summary>
    internal IReadOnlyCollection<long> ConnectionIds => _connections.Keys.ToList();

    /// <summary>Requests received and not yet answered (or disposed unanswered).</summary>
    public int PendingRequests => _pending.Count;

    /// <summary>
    /// Graceful shutdown with <see cref="QuicSendServerOptions.ShutdownTimeout"/> as the deadline:
    /// see <see cref="ShutdownAsync"/>.
    /// </summary>
    public ValueTask DisposeAsync() => new(ShutdownAsync(_shutdownTimeout));

    /// <summary>
    /// Immediate shutdown: GOAWAY, then every connection closes at once; responses still being sent are cut off
    /// (the client sees the connection close). Use <see cref="DisposeAsync"/> or <see cref="ShutdownAsync"/> to let them finish.
    /// </summary>
    public void Dispose()
    {
        lock (_shutdownLock) _shutdown ??= Task.CompletedTask;
        StopNow();
    }
}
