using System.Net;

namespace QuicSend.Transport;

/// <summary>Congestion controllers the engine offers.</summary>
public enum CongestionControl
{
    Bbr = 0,
    Cubic = 1,
    NewReno = 2,
}

/// <summary>Settings shared by server and client endpoints.</summary>
public abstract class QuicEndpointOptions
{
    /// <summary>ALPN protocol names offered (client) or accepted (server).</summary>
    public IList<string> AlpnProtocols { get; set; } = new List<string>();

    /// <summary>A connection with no traffic for this long is closed. Zero disables it.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Send keep-alives this often (zero: never), to hold a quiet connection open.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Streams the peer may have open at once.</summary>
    public int MaxBidirectionalStreams { get; set; } = 100;

    public int MaxUnidirectionalStreams { get; set; } = 100;

    /// <summary>Receive window per stream: bytes the peer may send ahead of what we have read.</summary>
    public long StreamReceiveWindow { get; set; } = 16L << 20;

    /// <summary>Receive window for the whole connection.</summary>
    public long ConnectionReceiveWindow { get; set; } = 32L << 20;

    /// <summary>Bytes buffered for sending, not yet acknowledged, per connection.</summary>
    public long SendWindow { get; set; } = 32L << 20;

    public CongestionControl CongestionControl { get; set; } = CongestionControl.Bbr;

    /// <summary>Largest UDP payload path-MTU discovery may try (1200..65527). 1452 suits the Internet.</summary>
    public int MaxUdpPayloadSize { get; set; } = 1452;

    /// <summary>Batch datagrams with segmentation offload (Linux: UDP_SEGMENT / UDP_GRO). Off: one datagram per socket call.</summary>
    public bool UseBatchedIo { get; set; } = true;

    /// <summary>Kernel socket buffer size for send and receive.</summary>
    public int SocketBufferSize { get; set; } = 8 << 20;
}

/// <summary>A server: where to listen and which certificate to present.</summary>
public sealed class QuicServerOptions : QuicEndpointOptions
{
    /// <summary>Where to listen, e.g. 0.0.0.0:4433, [::]:4433 (both families) or 127.0.0.1:0 (any free port).</summary>
    public IPEndPoint ListenEndPoint { get; set; } = new(IPAddress.IPv6Any, 4433);

    /// <summary>PEM file with the server certificate, then any intermediates.</summary>
    public string? CertificateChainPath { get; set; }

    /// <summary>PEM text of the chain, instead of a file.</summary>
    public string? CertificateChainPem { get; set; }

    /// <summary>PEM file with the private key of the server certificate.</summary>
    public string? PrivateKeyPath { get; set; }

    public string? PrivateKeyPem { get; set; }

    /// <summary>Validate each new client's address with a stateless Retry before spending state on it.</summary>
    public bool RequireAddressValidation { get; set; }

    /// <summary>New connections beyond this many are refused.</summary>
    public int MaxConnections { get; set; } = 10_000;
}

/// <summary>A client: which roots to trust and how long to wait for a server.</summary>
public sealed class QuicClientOptions : QuicEndpointOptions
{
    /// <summary>Local address to send from; default any port on all interfaces (IPv6 and IPv4).</summary>
    public IPEndPoint? LocalEndPoint { get; set; }

    /// <summary>PEM files with CA certificates to trust (the private root that signed the server's certificate).</summary>
    public IList<string> TrustedRootPaths { get; set; } = new List<string>();

    /// <summary>PEM text of CA certificates to trust.</summary>
    public IList<string> TrustedRootPems { get; set; } = new List<string>();

    /// <summary>Give up on a server that has not completed the handshake within this time.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
