using System.Net;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>
/// One connection of a <see cref="ConnectionPool"/>: its endpoint, the handshake in progress or done,
/// and how many requests it carries now (the pool sends the next small request to the least loaded).
/// </summary>
internal sealed class PooledConnection
{
    private int _inFlight;

    internal PooledConnection(QuicEndpoint endpoint, bool ownsEndpoint, Task<QuicConnection> connecting)
    {
        Endpoint = endpoint;
        OwnsEndpoint = ownsEndpoint;
        Connecting = connecting;
    }

    public QuicEndpoint Endpoint { get; }

    public bool OwnsEndpoint { get; }

    public Task<QuicConnection> Connecting { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Connected, not closed, and the server has not announced a shutdown (GOAWAY).</summary>
    public bool IsUsable =>
        Connecting.IsCompletedSuccessfully && !Connecting.Result.IsClosed
        && !Http3Connection.Of(Connecting.Result).GoAwayReceived.IsCompleted;

    /// <summary>Counts a request on this connection until the returned handle is disposed.</summary>
    public Lease Take()
    {
        Interlocked.Increment(ref _inFlight);
        return new Lease(this);
    }

    public readonly struct Lease(PooledConnection owner) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref owner._inFlight);
    }
}

/// <summary>
/// The N connections of a <see cref="QuicSendClient"/> to one server. Each has its own endpoint (its own
/// UDP socket and driver thread, so N connections can use N cores) unless the caller fixed a local
/// port, which only one socket can hold; then they share one. Connections are made at once and in
/// parallel; the pool is up when the first is, and one that fails or closes later is left out.
/// </summary>
internal sealed class ConnectionPool
{
    private static readonly TimeSpan FirstRedialDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan LongestRedialDelay = TimeSpan.FromSeconds(8);

    private readonly PooledConnection[] _members;
    private readonly IPEndPoint _server;
    private readonly string _serverName;
    private readonly long[] _redialNotBefore;   // Stopwatch timestamps, per slot
    private readonly TimeSpan[] _redialDelay;
    private readonly Lock _redialLock = new();
    private bool _closing;

    public ConnectionPool(int count, QuicClientOptions transport, IPEndPoint server, string serverName,
        Func<QuicConnection, IApplicationProtocol> application)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "A client needs at least one connection.");
        _members = new PooledConnection[count];
        _server = server;
        _serverName = serverName;
        _redialNotBefore = new long[count];
        _redialDelay = Enumerable.Repeat(FirstRedialDelay, count).ToArray();
        bool share = transport.LocalEndPoint is { Port: not 0 };
        QuicEndpoint? shared = null;
        try
        {
            for (int i = 0; i < count; i++)
            {
                var endpoint = share ? shared ??= QuicEndpoint.CreateClient(transport, application) : QuicEndpoint.CreateClient(transport, application);
                _members[i] = new PooledConnection(endpoint, ownsEndpoint: !share || i == 0,
                    endpoint.ConnectAsync(server, serverName).AsTask());
            }
        }
        catch
        {
            foreach (var m in _members) if (m?.OwnsEndpoint == true) m.Endpoint.Dispose();
            if (share && _members[0] is null) shared?.Dispose();
            throw;
        }
    }

    public IReadOnlyList<PooledConnection> Members => _members;

    /// <summary>
    /// Completes once every connection has finished its handshake or failed, with the first one that is
    /// up; fails only when none could be made, with the first connection's error (a pin mismatch or a
    /// refused token reads the same as without a pool).
    /// </summary>
    public async Task<QuicConnection> ConnectAllAsync()
    {
        try { await Task.WhenAll(_members.Select(m => m.Connecting)).ConfigureAwait(false); }
        catch { }
        foreach (var m in _members)
            if (m.Connecting.IsCompletedSuccessfully) return m.Connecting.Result;
        return await _members[0].Connecting.ConfigureAwait(false); // throws the first connection's error
    }

    /// <summary>
    /// Replaces connections that closed (or never connected) by new ones to the same server on the same
    /// endpoint, so a client outlives a server restart. Lazy (called when a request looks for a connection) and
    /// spaced out per slot (250 ms, doubling to 8 s while the server stays away); a replacement whose handshake fails
    /// counts as closed and is replaced in turn. Requests already on an old connection finish there or fail.
    /// </summary>
    private void Redial()
    {
        if (Volatile.Read(ref _closing)) return;
        if (!_members.Any(IsGone)) return; // the usual case, every connection up, costs no lock (this runs for every request)
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        lock (_redialLock)
        {
            for (int i = 0; i < _members.Length; i++)
            {
                var m = _members[i];
                if (!IsGone(m) || now < _redialNotBefore[i] || _closing) continue;
                bool wasUp = m.Connecting.IsCompletedSuccessfully; // it connected once: the server was there
                _redialDelay[i] = wasUp ? FirstRedialDelay : TimeSpan.FromTicks(Math.Min(_redialDelay[i].Ticks * 2, LongestRedialDelay.Ticks));
                _redialNotBefore[i] = now + (long)(_redialDelay[i].TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                try
                {
                    _members[i] = new PooledConnection(m.Endpoint, m.OwnsEndpoint, m.Endpoint.ConnectAsync(_server, _serverName).AsTask());
                }
                catch (ObjectDisposedException) { return; } // the client is being disposed
            }
        }
    }

    /// <summary>
    /// Closed or never connected. A connection told to go away (GOAWAY) is not gone yet: it still finishes its
    /// requests and is closed by the client after its last response; then it is replaced.
    /// </summary>
    private static bool IsGone(PooledConnection m) =>
        m.Connecting.IsFaulted || (m.Connecting.IsCompletedSuccessfully && m.Connecting.Result.IsClosed);

    /// <summary>
    /// A usable connection, waiting (up to <paramref name="timeout"/>) for replacements being made when none is usable now;
    /// null when none came up.
    /// </summary>
    public async Task<PooledConnection?> UsableAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (LeastLoaded() is { } ready) return ready;
            var pending = _members.Where(m => !m.Connecting.IsCompleted).Select(m => (Task)m.Connecting).ToList();
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || Volatile.Read(ref _closing)) return null;
            // Wait for a handshake to end, or for the next redial to be due.
            pending.Add(Task.Delay(pending.Count > 0 ? left : TimeSpan.FromMilliseconds(Math.Min(left.TotalMilliseconds, FirstRedialDelay.TotalMilliseconds)), cancellationToken));
            await Task.WhenAny(pending).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Why no connection is usable, in words: a failed reconnect's error, or how the connections closed.</summary>
    public string WhyNoneUsable()
    {
        foreach (var m in _members)
            if (m.Connecting.IsFaulted) return m.Connecting.Exception!.InnerException?.Message ?? "connecting failed";
        foreach (var m in _members)
            if (m.Connecting.IsCompletedSuccessfully && m.Connecting.Result.Closed.IsCompleted) return m.Connecting.Result.Closed.Result.Message;
        return "the connections are still being made";
    }

    /// <summary>The usable connection carrying the fewest requests (the lowest index on a tie), or null when none is usable.</summary>
    public PooledConnection? LeastLoaded()
    {
        Redial();
        PooledConnection? best = null;
        foreach (var m in _members)
            if (m.IsUsable && (best is null || m.InFlight < best.InFlight)) best = m;
        return best;
    }

    /// <summary>Every connection that was made has received the server's GOAWAY (and none is usable).</summary>
    public bool AllGoneAway =>
        _members.Any(m => m.Connecting.IsCompletedSuccessfully)
        && _members.All(m => !m.Connecting.IsCompletedSuccessfully || Http3Connection.Of(m.Connecting.Result).GoAwayReceived.IsCompleted);

    /// <summary>The connections usable now.</summary>
    public List<PooledConnection> Usable()
    {
        Redial();
        return _members.Where(m => m.IsUsable).ToList();
    }

    /// <summary>Completes once every connection has either closed or failed to connect.</summary>
    public Task AllClosed => Task.WhenAll(_members.Select(async m =>
    {
        try { await (await m.Connecting.ConfigureAwait(false)).Closed.ConfigureAwait(false); }
        catch { }
    }));

    public async ValueTask CloseAsync(long errorCode, string reason)
    {
        lock (_redialLock) _closing = true;
        foreach (var m in _members)
            if (m.Connecting.IsCompletedSuccessfully)
                await m.Connecting.Result.CloseAsync(errorCode, reason).ConfigureAwait(false);
        foreach (var m in _members)
            if (m.OwnsEndpoint) m.Endpoint.Dispose();
        foreach (var m in _members)
            try { await m.Connecting.ConfigureAwait(false); } catch { }
    }
}
