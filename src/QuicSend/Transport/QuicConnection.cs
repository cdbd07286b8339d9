using System.Net;
using System.Text;
using System.Threading.Channels;
using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// A QUIC connection. Open or accept streams on it; close it with an
/// application code. All state changes arrive from the endpoint's driver thread,
/// which also runs every engine call an operation on it needs.
/// </summary>
public sealed class QuicConnection : IAsyncDisposable
{
    private readonly EndpointDriver _driver;
    private readonly Dictionary<ulong, QuicStream> _streams = new();
    // Disposed streams whose written end waits for the peer's acknowledgement (driver thread only).
    private readonly Dictionary<ulong, QuicStream> _acking = new();
    private readonly Queue<ulong> _ackingOrder = new();
    private const int MaxAwaitingAcknowledgement = 256;
    private readonly Channel<QuicStream> _incoming = Channel.CreateUnbounded<QuicStream>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly List<DriverCall<QuicStream>> _creditWaiters = new(); // openers waiting on the peer's stream limit
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<QuicException> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Written by the driver; user threads read them only to fail fast, the driver decides.
    private volatile QuicException? _error;
    private volatile bool _drained;

    internal QuicConnection(EndpointDriver driver, ulong id, bool isServer, IPEndPoint? remote, string? serverName)
    {
        _driver = driver;
        Id = id;
        IsServer = isServer;
        RemoteEndPoint = remote;
        ServerName = serverName;
    }

    internal ulong Id { get; }

    internal EndpointDriver Driver => _driver;

    public bool IsServer { get; }

    /// <summary>The peer's address: the server connected to, or on a server the address the client's datagrams came from as it connected.</summary>
    public IPEndPoint? RemoteEndPoint { get; }

    /// <summary>The name the server's certificate was verified against (client side).</summary>
    public string? ServerName { get; }

    /// <summary>Completes with the reason once the connection has closed for any reason.</summary>
    public Task<QuicException> Closed => _closed.Task;

    internal Task Connected => _connected.Task;

    /// <summary>The application protocol on this connection, if any; set on the driver before its first event.</summary>
    internal IApplicationProtocol? Application { get; set; }

    /// <summary>Opens a stream, waiting while the peer's stream limit is reached.</summary>
    public async ValueTask<QuicStream> OpenStreamAsync(bool unidirectional = false, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        return await WithStreamCredit(unidirectional ? "Opening a unidirectional stream" : "Opening a stream", (out QuicStream? s) =>
        {
            int rc = _driver.Native.StreamOpen(Id, unidirectional, out var sid);
            s = rc == QsConst.QS_OK ? new QuicStream(this, sid, readable: !unidirectional, writable: true) : null;
            return rc;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Driver: asks the engine for a new stream: QS_OK with the stream, QS_BLOCKED at the peer's limit, or an error.</summary>
    internal delegate int StreamStart(out QuicStream? stream);

    /// <summary>Runs <paramref name="start"/> on the driver until the peer's stream limit lets it through
    /// (QS_BLOCKED parks it until STREAMS_AVAILABLE). Waiting leaves nothing in the engine, so a cancel just stops waiting.</summary>
    internal Task<QuicStream> WithStreamCredit(string what, StreamStart start, CancellationToken cancellationToken)
    {
        var call = new DriverCall<QuicStream>(c =>
        {
            if (IsClosed) { c.Fail(Error()); return; }
            int rc = start(out var s);
            if (rc == QsConst.QS_OK) Adopt(c, s!);
            else if (rc == QsConst.QS_BLOCKED) _creditWaiters.Add(c);
            else c.Fail(NativeErrors.ToException(rc, what));
        });
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.UnsafeRegister(static (c, t) => ((DriverCall<QuicStream>)c!).Cancel(t), call);
            call.Task.ContinueWith(static (_, r) => ((CancellationTokenRegistration)r!).Dispose(), registration, TaskScheduler.Default);
        }
        _driver.Post(call);
        return call.Task;
    }

    /// <summary>Driver: registers a stream just opened; a caller who gave up meanwhile gets it abandoned instead.</summary>
    private void Adopt(DriverCall<QuicStream> call, QuicStream s)
    {
        Track(s);
        if (!call.Complete(s)) s.AbortOnDriver(0);
    }

    /// <summary>Waits for the peer to open a stream.</summary>
    public async ValueTask<QuicStream> AcceptStreamAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw Error();
        }
    }

    /// <summary>Closes the connection with an application error code and reason, telling the peer.</summary>
    public async ValueTask CloseAsync(long errorCode = 0, string reason = "")
    {
        if (IsClosed || _driver.IsStopping) return;
        var bytes = Encoding.UTF8.GetBytes(reason);
        try
        {
            await _driver.CallAsync(() =>
            {
                if (!IsClosed) _driver.Native.Close(Id, errorCode, bytes);
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or QuicException { Error: QuicError.EndpointDisposed })
        {
            // The endpoint closed every connection as it stopped.
        }
    }

    public ValueTask DisposeAsync() => CloseAsync(0, "disposed");

    public QuicConnectionStats GetStats()
    {
        if (_drained) throw Error();
        return _driver.Call(ReadStats);
    }

    private QuicConnectionStats ReadStats()
    {
        if (_drained) throw Error();
        var s = _driver.Native.Stats(Id);
        return new QuicConnectionStats(TimeSpan.FromTicks((long)(s.RttNs / 100)), (long)s.Cwnd, (long)s.SentPackets,
            (long)s.LostPackets, (long)s.LostBytes, (long)s.CongestionEvents, (long)s.UdpTxBytes, (long)s.UdpRxBytes,
            (long)s.UdpTxDatagrams, (long)s.UdpRxDatagrams, (int)s.Mtu);
    }

    private int _authenticated;

    /// <summary>
    /// Server: the peer presented a valid credential (a request's token was accepted), so the limits on
    /// unauthenticated peers (<see cref="UnauthenticatedLimits"/>) no longer apply to this connection.
    /// Once per connection; nobody waits for it.
    /// </summary>
    internal void MarkAuthenticated()
    {
        if (Interlocked.Exchange(ref _authenticated, 1) != 0 || IsClosed) return;
        _driver.Post(new DriverAction(() =>
        {
            if (!IsClosed) _ = _driver.Native.Authenticated(Id);
        }));
    }

    /// <summary>The peer's certificate (DER), or null when it presented none. Runs on the driver.</summary>
    internal byte[]? ReadPeerCertificate() => _driver.Call(PeerCertificateOnDriver);

    private byte[]? PeerCertificateOnDriver()
    {
        var der = _driver.Native.PeerCertificate(Id, out long rc);
        if (rc == QsConst.QS_DONE) return null;
        if (rc == QsConst.QS_ERR_INVALID_STATE && IsClosed) throw Error();
        if (rc < 0) throw NativeErrors.ToException((int)rc, "Reading the peer's certificate");
        return der;
    }

    internal QuicException Error() =>
        _error ?? new QuicException(QuicError.ConnectionClosed, "The connection is closed.");

    internal void ThrowIfClosed()
    {
        _driver.ThrowIfStopped();
        if (_error is not null) throw _error;
        if (_drained) throw Error();
    }

    internal bool IsClosed => _error is not null || _drained;

    internal void Forget(ulong stream) => _streams.Remove(stream);

    /// <summary>Driver: a disposed stream still learns when its written end is acknowledged (or can no longer be).</summary>
    internal void AwaitAcknowledgement(QuicStream s)
    {
        _acking[(ulong)s.Id] = s;
        _ackingOrder.Enqueue((ulong)s.Id);
        // Bounded: the engine reports a stream's end only once both its sides are done, and a peer that never reads
        // to the end of what it sent leaves it open, so without a bound every such stream stays here for the life of
        // the connection (the soak: +13 MiB over 10,000 requests). An acknowledgement 256 disposals old is long due:
        // the oldest are taken as ended.
        while (_acking.Count > MaxAwaitingAcknowledgement && _ackingOrder.TryDequeue(out var oldest))
            if (_acking.Remove(oldest, out var stale)) stale.StopAwaitingAcknowledgement();
        if (_ackingOrder.Count > 4 * MaxAwaitingAcknowledgement) // ids already heard about: drop them from the order
        {
            var live = _ackingOrder.Where(_acking.ContainsKey).ToArray();
            _ackingOrder.Clear();
            foreach (var id in live) _ackingOrder.Enqueue(id);
        }
    }

    /// <summary>Driver: routes the stream's engine events to it from now on.</summary>
    internal void Track(QuicStream s) => _streams[(ulong)s.Id] = s;

    /// <summary>Driver: the live stream with this id, if any.</summary>
    internal bool TryGetStream(ulong id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out QuicStream? s) => _streams.TryGetValue(id, out s);

    /// <summary>Handles one engine event for this connection. Runs on the driver thread.</summary>
    internal void OnEvent(in QsEvent ev)
    {
        switch (ev.Kind)
        {
            case QsConst.QS_EVENT_CONNECTED:
                _connected.TrySetResult();
                break;
            case QsConst.QS_EVENT_HANDSHAKE_FAILED:
                Fail(HandshakeError(ev.Detail, ReadError()));
                break;
            case QsConst.QS_EVENT_CONNECTION_CLOSED:
                Fail(ClosedError(ev, ReadError()));
                break;
            case QsConst.QS_EVENT_CONNECTION_DRAINED:
                _drained = true;
                Fail(new QuicException(QuicError.ConnectionClosed, "The connection is closed."));
                break;
            case QsConst.QS_EVENT_STREAM_OPENED:
            {
                var s = new QuicStream(this, ev.Stream, readable: true, writable: ev.Detail == 0);
                _streams[ev.Stream] = s;
                _incoming.Writer.TryWrite(s);
                break;
            }
            case QsConst.QS_EVENT_STREAM_READABLE:
                if (_streams.TryGetValue(ev.Stream, out var r)) r.OnReadable();
                break;
            case QsConst.QS_EVENT_STREAM_WRITABLE:
                if (_streams.TryGetValue(ev.Stream, out var w)) w.OnWritable();
                break;
            case QsConst.QS_EVENT_STREAM_STOPPED:
                if (_streams.TryGetValue(ev.Stream, out var st)) st.OnStopped((long)ev.Code);
                else if (_acking.Remove(ev.Stream, out var sa)) sa.OnStopped((long)ev.Code);
                break;
            case QsConst.QS_EVENT_STREAM_FINISHED:
                if (_streams.TryGetValue(ev.Stream, out var f)) f.OnFinished();
                else if (_acking.Remove(ev.Stream, out var fa)) fa.OnFinished();
                break;
            case QsConst.QS_EVENT_STREAMS_AVAILABLE:
                RetryCreditWaiters();
                break;
            default:
                Application?.OnEvent(ev);
                break;
        }
    }

    private void RetryCreditWaiters()
    {
        if (_creditWaiters.Count == 0) return;
        var waiting = _creditWaiters.ToArray();
        _creditWaiters.Clear();
        foreach (var c in waiting) c.Run(); // in order; those still blocked park again
    }

    /// <summary>The endpoint stopped or its driver failed: fail everything still waiting.</summary>
    internal void OnFault(QuicException error)
    {
        _drained = true;
        Fail(error);
    }

    private void Fail(QuicException error)
    {
        if (_error is null) _error = error;
        _connected.TrySetException(_error);
        _closed.TrySetResult(_error);
        _incoming.Writer.TryComplete();
        Application?.OnConnectionFailed(_error);
        RetryCreditWaiters(); // each fails with the connection's error
        foreach (var s in _streams.Values.ToArray()) s.OnConnectionFailed(_error);
        foreach (var s in _acking.Values) s.OnConnectionFailed(_error);
        _acking.Clear();
        _ackingOrder.Clear();
    }

    private string ReadError() => _driver.Native.CloseReason(Id);

    private QuicException HandshakeError(uint why, string reason)
    {
        var who = RemoteEndPoint is null ? "the client" : $"{RemoteEndPoint} ('{ServerName}')";
        // The shim classifies every failure into a stable code; the hint is ours, the reason the engine's detail.
        var hint = why switch
        {
            QsConst.QS_TLS_UNKNOWN_ISSUER => " The server's certificate is not signed by any root this client trusts: add the CA that signed it to TrustedRootPaths.",
            QsConst.QS_TLS_NAME_MISMATCH => " The server's certificate does not cover the server name asked for: connect with a name (or IP) listed in the certificate.",
            QsConst.QS_PIN_MISMATCH => " The server's certificate matches none of the pins: check PinnedServerCertificatePaths / PinnedPublicKeySha256 against the server's current certificate.",
            QsConst.QS_TLS_EXPIRED => " A certificate has expired or is not valid yet: renew it, or check this machine's clock.",
            QsConst.QS_TLS_CERTIFICATE_REJECTED => " The peer did not accept this side's certificate: it is not signed by a root the peer trusts (mutual TLS: ClientCertificateRootPaths on the server).",
            QsConst.QS_TLS_CERTIFICATE_REQUIRED => " The server requires a client certificate: set ClientCertificatePath and ClientKeyPath.",
            QsConst.QS_TLS_NO_APPLICATION_PROTOCOL => " Client and server offer no common application protocol (ALPN): check AlpnProtocols on both sides.",
            QsConst.QS_REFUSED => " The server refused the connection: it is at its connection limit (MaxConnections). Try again later or raise the limit.",
            QsConst.QS_TIMED_OUT => " Nothing answered: check that the server runs and that UDP reaches its port.",
            _ => "",
        };
        return new QuicException(QuicError.HandshakeFailed, $"The TLS handshake with {who} failed: {reason}.{hint}") { HandshakeFailure = (HandshakeFailure)why };
    }

    private static QuicException ClosedError(in QsEvent ev, string reason) => ev.Detail switch
    {
        QsConst.QS_CLOSE_TIMED_OUT => new QuicException(QuicError.ConnectionTimedOut, $"The connection {reason}."),
        // The peer's close with an HTTP/3 error code: still the peer's application close, named for the reader.
        QsConst.QS_CLOSE_APPLICATION when ev.Code is > 0x100 and < 0x400 =>
            new QuicException(QuicError.ConnectionClosed, $"The connection was {reason} ({NativeErrors.CodeName((long)ev.Code)}).") { ErrorCode = (long)ev.Code },
        QsConst.QS_CLOSE_APPLICATION => new QuicException(QuicError.ConnectionClosed, $"The connection was {reason}.") { ErrorCode = (long)ev.Code },
        QsConst.QS_CLOSE_LOCAL => new QuicException(QuicError.ConnectionClosed, "The connection was closed locally."),
        QsConst.QS_CLOSE_RESET => new QuicException(QuicError.ConnectionReset,
            $"The connection was {reason}. Connect again (a QuicSendClient does so on its next request)."),
        QsConst.QS_CLOSE_H3_PROTOCOL => new QuicException(QuicError.ProtocolError, $"The connection was closed: {reason} ({NativeErrors.CodeName((long)ev.Code)}).") { ErrorCode = (long)ev.Code },
        _ => new QuicException(QuicError.ConnectionClosed, $"The connection was lost: {reason}.") { ErrorCode = (long)ev.Code },
    };
}
