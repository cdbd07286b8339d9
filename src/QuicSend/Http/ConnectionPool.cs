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
    private readonly PooledConnection[] _members;

    public ConnectionPool(int count, QuicClientOptions transport, IPEndPoint server, string serverName,
        Func<QuicConnection, IApplicationProtocol> application)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "A client needs at least one connection.");
        _members = new PooledConnection[count];
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

    /// <summary>The usable connection carrying the fewest requests (the lowest index on a tie), or null when none is usable.</summary>
    public PooledConnection? LeastLoaded()
    {
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
    public List<PooledConnection> Usable() => _members.Where(m => m.IsUsable).ToList();

    /// <summary>Completes once every connection has either closed or failed to connect.</summary>
    public Task AllClosed => Task.WhenAll(_members.Select(async m =>
    {
        try { await (await m.Connecting.ConfigureAwait(false)).Closed.ConfigureAwait(false); }
        catch { }
    }));

    public async ValueTask CloseAsync(long errorCode, string reason)
    {
        foreach (var m in _members)
            if (m.Connecting.IsCompletedSuccessfully)
                await m.Connecting.Result.CloseAsync(errorCode, reason).ConfigureAwait(false);
        foreach (var m in _members)
            if (m.OwnsEndpoint) m.Endpoint.Dispose();
        foreach (var m in _members)
            try { await m.Connecting.ConfigureAwait(false); } catch { }
    }
}
