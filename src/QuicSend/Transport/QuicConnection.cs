using System.Net;
using System.Text;
using System.Threading.Channels;
using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// A QUIC connection. Open or accept streams on it; close it with an
/// application code. All state changes arrive from the endpoint's driver.
/// </summary>
public sealed class QuicConnection : IAsyncDisposable
{
    private readonly EndpointDriver _driver;
    private readonly Dictionary<ulong, QuicStream> _streams = new();
    private readonly Channel<QuicStream> _incoming = Channel.CreateUnbounded<QuicStream>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Channel<QuicStream> _requests = Channel.CreateUnbounded<QuicStream>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource _goAway = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _streamsAvailable; // shared by every opener waiting on the peer's stream limit
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<QuicException> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private QuicException? _error;
    private bool _drained;

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

    /// <summary>The peer's address (known on the client side; null on the server side for now).</summary>
    public IPEndPoint? RemoteEndPoint { get; }

    /// <summary>The name the server's certificate was verified against (client side).</summary>
    public string? ServerName { get; }

    /// <summary>Completes with the reason once the connection has closed for any reason.</summary>
    public Task<QuicException> Closed => _closed.Task;

    internal Task Connected => _connected.Task;

    /// <summary>Opens a stream, waiting while the peer's stream limit is reached.</summary>
    public async ValueTask<QuicStream> OpenStreamAsync(bool unidirectional = false, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_driver.Lock)
            {
                ThrowIfClosed();
                int rc = NativeOpen(unidirectional, out var sid);
                if (rc == QsConst.QS_OK)
                {
                    var s = new QuicStream(this, sid, readable: !unidirectional, writable: true);
                    _streams[sid] = s;
                    _driver.AfterUserOperation();
                    return s;
                }
                if (rc != QsConst.QS_BLOCKED) throw NativeErrors.ToException(rc, "Opening a stream");
                wait = StreamCreditLocked();
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private unsafe int NativeOpen(bool unidirectional, out ulong sid)
    {
        ulong id;
        int rc = NativeMethods.qs_stream_open(_driver.Ep, Id, unidirectional, &id);
        sid = id;
        return rc;
    }

    /// <summary>HTTP/3: completes when the server announced a graceful shutdown (GOAWAY).</summary>
    public Task GoAwayReceived => _goAway.Task;

    /// <summary>HTTP/3 client: sends a request's header section; the returned stream carries the request body and the response.</summary>
    internal async ValueTask<QuicStream> SendRequestAsync(byte[] packedHeaders, bool endStream, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_driver.Lock)
            {
                ThrowIfClosed();
                int rc = NativeSendRequest(packedHeaders, endStream, out var sid);
                if (rc == QsConst.QS_OK)
                {
                    var s = new QuicStream(this, sid, readable: true, writable: !endStream, http3: true);
                    _streams[sid] = s;
                    _driver.AfterUserOperation();
                    return s;
                }
                if (rc != QsConst.QS_BLOCKED) throw NativeErrors.ToException(rc, "Sending a request");
                wait = StreamCreditLocked();
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private unsafe int NativeSendRequest(byte[] packed, bool fin, out ulong sid)
    {
        ulong id;
        int rc;
        fixed (byte* p = packed) rc = NativeMethods.qs_h3_send_request(_driver.Ep, Id, p, (nuint)packed.Length, fin, &id);
        sid = id;
        return rc;
    }

    /// <summary>HTTP/3 server: waits for the next request whose header section has arrived.</summary>
    internal async ValueTask<QuicStream> AcceptRequestAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _requests.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw Error();
        }
    }

    /// <summary>HTTP/3 server: starts a graceful shutdown; requests already received are still answered.</summary>
    public void GoAway()
    {
        lock (_driver.Lock)
        {
            if (IsClosed || _driver.IsStopping) return;
            NativeErrors.Check(NativeMethods.qs_h3_goaway(_driver.Ep, Id), "Sending GOAWAY");
            _driver.AfterUserOperation();
        }
    }

    /// <summary>Caller holds the lock: completes when the peer allows more streams (STREAMS_AVAILABLE).</summary>
    private Task StreamCreditLocked() =>
        (_streamsAvailable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

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
    public unsafe ValueTask CloseAsync(long errorCode = 0, string reason = "")
    {
        lock (_driver.Lock)
        {
            if (_error is not null || _drained || _driver.IsStopping) return ValueTask.CompletedTask;
            var bytes = Encoding.UTF8.GetBytes(reason);
            fixed (byte* r = bytes)
                NativeErrors.Check(NativeMethods.qs_conn_close(_driver.Ep, Id, (ulong)errorCode, r, (nuint)bytes.Length), "Closing the connection");
            _driver.AfterUserOperation();
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => CloseAsync(0, "disposed");

    public unsafe QuicConnectionStats GetStats()
    {
        lock (_driver.Lock)
        {
            if (_drained) throw Error();
            QsStats s;
            NativeErrors.Check(NativeMethods.qs_conn_stats(_driver.Ep, Id, &s), "Reading connection statistics");
            return new QuicConnectionStats(TimeSpan.FromTicks((long)(s.RttNs / 100)), (long)s.Cwnd, (long)s.SentPackets,
                (long)s.LostPackets, (long)s.LostBytes, (long)s.CongestionEvents, (long)s.UdpTxBytes, (long)s.UdpRxBytes,
                (long)s.UdpTxDatagrams, (long)s.UdpRxDatagrams, (int)s.Mtu);
        }
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

    /// <summary>Handles one engine event for this connection. Runs on the driver under its lock.</summary>
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
                break;
            case QsConst.QS_EVENT_STREAM_FINISHED:
                if (_streams.TryGetValue(ev.Stream, out var f)) f.OnFinished();
                break;
            case QsConst.QS_EVENT_H3_HEADERS:
                if (IsServer)
                {
                    var req = new QuicStream(this, ev.Stream, readable: true, writable: true, http3: true);
                    _streams[ev.Stream] = req;
                    _requests.Writer.TryWrite(req);
                }
                else if (_streams.TryGetValue(ev.Stream, out var resp)) resp.OnHeaders();
                break;
            case QsConst.QS_EVENT_H3_DATA:
                if (_streams.TryGetValue(ev.Stream, out var d)) d.OnReadable();
                break;
            case QsConst.QS_EVENT_H3_RESET:
                if (_streams.TryGetValue(ev.Stream, out var rs)) rs.OnH3Reset((long)ev.Code);
                break;
            case QsConst.QS_EVENT_H3_GOAWAY:
                _goAway.TrySetResult();
                break;
            case QsConst.QS_EVENT_STREAMS_AVAILABLE:
                _streamsAvailable?.TrySetResult();
                _streamsAvailable = null;
                break;
        }
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
        _requests.Writer.TryComplete();
        _streamsAvailable?.TrySetException(_error);
        foreach (var s in _streams.Values.ToArray()) s.OnConnectionFailed(_error);
    }

    private unsafe string ReadError()
    {
        Span<byte> buf = stackalloc byte[2048];
        long n;
        fixed (byte* p = buf) n = NativeMethods.qs_conn_error(_driver.Ep, Id, p, (nuint)buf.Length);
        return n <= 0 ? "no reason given" : Encoding.UTF8.GetString(buf[..(int)Math.Min(n, buf.Length)]);
    }

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
            new QuicException(QuicError.ConnectionClosed, $"The connection was {reason} ({Http3Errors.Name((long)ev.Code)}).") { ErrorCode = (long)ev.Code },
        QsConst.QS_CLOSE_APPLICATION => new QuicException(QuicError.ConnectionClosed, $"The connection was {reason}.") { ErrorCode = (long)ev.Code },
        QsConst.QS_CLOSE_LOCAL => new QuicException(QuicError.ConnectionClosed, "The connection was closed locally."),
        QsConst.QS_CLOSE_H3_PROTOCOL => new QuicException(QuicError.ProtocolError, $"The connection was closed: {reason} ({Http3Errors.Name((long)ev.Code)}).") { ErrorCode = (long)ev.Code },
        _ => new QuicException(QuicError.ConnectionClosed, $"The connection was lost: {reason}.") { ErrorCode = (long)ev.Code },
    };
}
