using System.Net;
using System.Text;
using System.Threading.Channels;
using QuicSend.Native;
using QuicSend.Transport.Sockets;

namespace QuicSend.Transport;

/// <summary>
/// A UDP socket with its QUIC engine: a server that accepts connections or a
/// client that makes them. Dispose closes every connection and frees everything.
/// </summary>
public sealed class QuicEndpoint : IDisposable, IAsyncDisposable
{
    private readonly EndpointDriver _driver;
    private readonly Channel<QuicConnection>? _accepted;
    private readonly QuicClientOptions? _client;
    private readonly Func<QuicConnection, IApplicationProtocol>? _application;

    private QuicEndpoint(QuicEndpointOptions options, IPEndPoint local, bool server, Func<QuicConnection, IApplicationProtocol>? application)
    {
        _application = application;
        if (options is QuicServerOptions serverOptions)
            (serverOptions.UnauthenticatedLimits ?? throw new QuicConfigurationException(
                "QuicServerOptions.UnauthenticatedLimits is null; leave it unset for the defaults.")).Validate();
        using var cfg = EndpointConfig.Build(options);
        var handle = NativeMethods.qs_endpoint_new(cfg, server);
        if (handle.IsInvalid)
        {
            handle.Dispose();
            throw new QuicConfigurationException($"Creating the {(server ? "server" : "client")} endpoint failed: {NativeErrors.LastError()}");
        }
        if (options.Http3)
        {
            var rc = NativeMethods.qs_endpoint_enable_h3(handle.DangerousGetHandle(), (ulong)options.MaxHeaderSectionSize);
            if (rc >= 0 && options is QuicServerOptions { UnauthenticatedLimits: var limits })
                rc = SetIntakeLimits(handle.DangerousGetHandle(), limits);
            if (rc < 0)
            {
                var error = NativeErrors.ToException(rc, "Enabling HTTP/3");
                handle.Dispose();
                throw error;
            }
        }
        DatagramSocket socket;
        try
        {
            socket = DatagramSocket.Open(local, options.UseBatchedIo, options.SocketBufferSize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        if (server) _accepted = Channel.CreateUnbounded<QuicConnection>(new UnboundedChannelOptions { SingleWriter = true });
        else _client = (QuicClientOptions)options;
        _driver = new EndpointDriver(handle, socket, server ? "quicsend-server" : "quicsend-client", server ? Accepted : null);
    }

    private static unsafe int SetIntakeLimits(nint ep, UnauthenticatedLimits l)
    {
        var native = new QsIntakeLimits
        {
            HeaderTimeoutMs = (ulong)Math.Max(1, (long)l.HeaderTimeout.TotalMilliseconds),
            MaxStreamsPerConnection = (ulong)l.MaxIncompleteRequestsPerConnection,
            MaxBytesPerConnection = (ulong)l.MaxBytesPerConnection,
            MaxBytesPerAddress = (ulong)l.MaxBytesPerAddress,
            MaxBytesTotal = (ulong)l.MaxBytesTotal,
        };
        return NativeMethods.qs_endpoint_set_intake_limits(ep, &native);
    }

    /// <summary>Starts a server listening on <see cref="QuicServerOptions.ListenEndPoint"/>.</summary>
    public static QuicEndpoint Listen(QuicServerOptions options) => Listen(options, null);

    /// <summary>A server whose connections run an application protocol (<paramref name="application"/> makes it per connection).</summary>
    internal static QuicEndpoint Listen(QuicServerOptions options, Func<QuicConnection, IApplicationProtocol>? application) =>
        new(options, options.ListenEndPoint, server: true, application);

    /// <summary>Creates a client endpoint (one UDP socket; any number of connections).</summary>
    public static QuicEndpoint CreateClient(QuicClientOptions options) => CreateClient(options, null);

    /// <summary>A client whose connections run an application protocol (<paramref name="application"/> makes it per connection).</summary>
    internal static QuicEndpoint CreateClient(QuicClientOptions options, Func<QuicConnection, IApplicationProtocol>? application) =>
        new(options, options.LocalEndPoint ?? new IPEndPoint(IPAddress.IPv6Any, 0), server: false, application);

    /// <summary>Driver: a server connection completed its handshake. The application protocol is attached here,
    /// before the connection sees its CONNECTED event, so none of its events can come before it.</summary>
    private void Accepted(QuicConnection c)
    {
        if (_application is not null) c.Application = _application(c);
        _accepted!.Writer.TryWrite(c);
    }

    /// <summary>The bound local address (with the real port when 0 was asked for).</summary>
    public IPEndPoint LocalEndPoint => _driver.Socket.LocalEndPoint;

    /// <summary>True when datagrams go out in segmentation-offload batches.</summary>
    public bool UsesBatchedIo => _driver.Socket.MaxSegments > 1;

    /// <summary>
    /// Connects to a server and completes when the handshake has. The server's
    /// certificate must chain to a trusted root and be valid for <paramref name="serverName"/>
    /// (default: the address itself).
    /// </summary>
    public async ValueTask<QuicConnection> ConnectAsync(IPEndPoint remote, string? serverName = null, CancellationToken cancellationToken = default)
    {
        if (_client is null) throw new InvalidOperationException("This endpoint is a server; create a client endpoint with QuicEndpoint.CreateClient to connect.");
        serverName ??= remote.Address.ToString();
        var conn = StartConnect(remote, serverName);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_client.ConnectTimeout);
        try
        {
            await conn.Connected.WaitAsync(timeout.Token).ConfigureAwait(false);
            return conn;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await conn.CloseAsync(0, "connect timeout").ConfigureAwait(false);
            throw new QuicException(QuicError.ConnectTimeout,
                $"No QUIC server answered at {remote} within {_client.ConnectTimeout.TotalSeconds:0.#} s. " +
                "Check that the server runs, listens on that UDP port, and that no firewall drops UDP.");
        }
        catch (OperationCanceledException)
        {
            await conn.CloseAsync(0, "connect cancelled").ConfigureAwait(false);
            throw;
        }
    }

    private QuicConnection StartConnect(IPEndPoint remote, string serverName)
    {
        _driver.ThrowIfStopped();
        var to = Addresses.From(remote);
        var name = Encoding.UTF8.GetBytes(serverName);
        return _driver.Call(() =>
        {
            var conn = new QuicConnection(_driver, _driver.Native.Connect(to, name, remote.ToString()), isServer: false, remote, serverName);
            if (_application is not null) conn.Application = _application(conn);
            _driver.Add(conn);
            return conn;
        });
    }

    /// <summary>Server: waits for the next client whose handshake has completed.</summary>
    public async ValueTask<QuicConnection> AcceptAsync(CancellationToken cancellationToken = default)
    {
        if (_accepted is null) throw new InvalidOperationException("This endpoint is a client; only a server endpoint accepts connections.");
        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(QuicEndpoint), "The endpoint was disposed.");
        }
    }

    /// <summary>What happened to connection attempts so far.</summary>
    public QuicEndpointStats GetStats()
    {
        _driver.ThrowIfStopped();
        return _driver.Call(ReadStats);
    }

    private QuicEndpointStats ReadStats()
    {
        var s = _driver.Native.EndpointStats();
        return new QuicEndpointStats((long)s.Connections, (long)s.RetriesSent, (long)s.Refused, (long)s.Open,
            (long)s.UnauthenticatedBytes, (long)s.RefusedRequests, (long)s.ResetsSent);
    }

    /// <summary>How many connections the engine holds, closing ones included.</summary>
    public int ConnectionCount
    {
        get
        {
            _driver.ThrowIfStopped();
            return _driver.Call(() => _driver.Native.ConnectionCount());
        }
    }

    /// <summary>Closes all connections (telling peers), stops the driver and frees native state. Safe to call twice.</summary>
    public void Dispose()
    {
        _driver.Dispose();
        _accepted?.Writer.TryComplete();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Native objects alive in this process (configs, endpoints, connections); for leak checks.</summary>
    public static long LiveNativeObjects => NativeMethods.qs_live_objects();

    /// <summary>The native library's version text.</summary>
    public static unsafe string NativeVersion => NativeText.Utf8((p, n) => NativeMethods.qs_version(p, n));
}
