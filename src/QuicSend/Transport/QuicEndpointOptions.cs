using System.Net;

namespace QuicSend.Transport;

/// <summary>Congestion controllers the engine (quiche) offers.</summary>
public enum CongestionControl
{
    /// <summary>BBRv2 (quiche's Bbr2Gcongestion): the default; fills long, lossy paths.</summary>
    Bbr2 = 0,
    /// <summary>CUBIC (RFC 9438): loss-based; collapses on lossy long paths.</summary>
    Cubic = 1,
    /// <summary>Reno (RFC 9002's NewReno): loss-based.</summary>
    Reno = 2,
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
    public long StreamReceiveWindow { get; set; } = 32L << 20;

    /// <summary>Receive window for the whole connection.</summary>
    public long ConnectionReceiveWindow { get; set; } = 64L << 20;

    public CongestionControl CongestionControl { get; set; } = CongestionControl.Bbr2;

    /// <summary>Release datagrams at the times the congestion controller paces them to (on by default;
    /// BBRv2 relies on it on real paths). Off: send as soon as the window allows.</summary>
    public bool Pacing { get; set; } = true;

    /// <summary>Largest UDP payload sent and accepted (1200..65527). 1452 suits the Internet.</summary>
    public int MaxUdpPayloadSize { get; set; } = 1452;

    /// <summary>Batch datagrams with segmentation offload (Linux: UDP_SEGMENT / UDP_GRO). Off: one datagram per socket call.</summary>
    public bool UseBatchedIo { get; set; } = true;

    /// <summary>Kernel socket buffer size for send and receive.</summary>
    public int SocketBufferSize { get; set; } = 8 << 20;

    /// <summary>Speak HTTP/3 on every connection (requests and responses) instead of raw QUIC streams.</summary>
    public bool Http3 { get; set; }

    /// <summary>HTTP/3: the largest header section accepted (RFC 9114 size: names + values + 32 per field).</summary>
    public int MaxHeaderSectionSize { get; set; } = 64 * 1024;
}

/// <summary>A server: where to listen, which certificate to present, and which client certificates to accept.</summary>
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

    /// <summary>
    /// Validate each new client's address with a stateless Retry (a token bound to the client's
    /// address, valid for seconds) before spending any state on it. On by default: it costs one
    /// round trip per connection and stops spoofed-address floods and amplification.
    /// </summary>
    public bool RequireAddressValidation { get; set; } = true;

    /// <summary>New connections beyond this many are refused.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// Mutual TLS: PEM files with the CA certificates that client certificates must be
    /// signed by. With any root set (here or in <see cref="ClientCertificateRootPems"/>) the
    /// server asks every client for a certificate and verifies it; read the verified identity
    /// with <c>connection.GetPeerCertificate()</c> (<see cref="QuicSend.Security.PeerIdentity"/>).
    /// </summary>
    public IList<string> ClientCertificateRootPaths { get; set; } = new List<string>();

    /// <summary>PEM text of CA certificates that client certificates must be signed by.</summary>
    public IList<string> ClientCertificateRootPems { get; set; } = new List<string>();

    /// <summary>
    /// With client certificate roots set: true (the default) refuses a client that presents no
    /// certificate during the handshake; false lets such a client in unauthenticated
    /// (<c>GetPeerCertificate()</c> returns null), while a certificate that is presented must still
    /// verify. Without client certificate roots the server asks for no client certificate.
    /// </summary>
    public bool RequireClientCertificate { get; set; } = true;

    /// <summary>
    /// Bounds on what peers that have not authenticated (no request accepted yet on their connection) can make
    /// the server hold with incomplete header sections: a deadline, and caps per connection, per address and in total.
    /// </summary>
    public UnauthenticatedLimits UnauthenticatedLimits { get; set; } = new();
}

/// <summary>A client: which roots or pins to trust, its own certificate for mutual TLS, and how long to wait for a server.</summary>
public sealed class QuicClientOptions : QuicEndpointOptions
{
    /// <summary>Local address to send from; default any port on all interfaces (IPv6 and IPv4).</summary>
    public IPEndPoint? LocalEndPoint { get; set; }

    /// <summary>PEM files with CA certificates to trust (the private root that signed the server's certificate).</summary>
    public IList<string> TrustedRootPaths { get; set; } = new List<string>();

    /// <summary>PEM text of CA certificates to trust.</summary>
    public IList<string> TrustedRootPems { get; set; } = new List<string>();

    /// <summary>
    /// Also trust the operating system's CA bundle (Linux only: the distribution's file, such as
    /// /etc/ssl/certs/ca-certificates.crt, or the file named by SSL_CERT_FILE). Off by default:
    /// QuicSend is meant for a private root you control, and every public CA can then vouch for
    /// any name. Other operating systems are not supported yet (setting it there throws).
    /// </summary>
    public bool UseSystemTrustStore { get; set; }

    /// <summary>
    /// Pin the server: PEM files with the server's own (leaf) certificate. The certificate the
    /// server presents must be byte-for-byte one of the pinned ones, or carry one of the keys in
    /// <see cref="PinnedPublicKeySha256"/>, or the handshake is refused. With trusted roots the chain
    /// and name are verified as well; with pins only (no roots) the pin decides alone, the server
    /// name must still be in the certificate's subjectAltName, and its validity dates are not checked.
    /// </summary>
    public IList<string> PinnedServerCertificatePaths { get; set; } = new List<string>();

    /// <summary>PEM text of pinned server (leaf) certificates; see <see cref="PinnedServerCertificatePaths"/>.</summary>
    public IList<string> PinnedServerCertificatePems { get; set; } = new List<string>();

    /// <summary>
    /// Pin the server's public key: base64 SHA-256 of the DER SubjectPublicKeyInfo of its leaf
    /// certificate, as HPKP and curl's <c>--pinnedpubkey</c> write it: <c>sha256//BASE64</c> (the
    /// bare base64 is accepted too, and so are several pins joined with ';'). A key pin survives
    /// renewing the certificate with the same key. Make one with
    /// <see cref="QuicSend.Security.CertificateTool.GetPublicKeyPin(string)"/> or openssl (see its docs).
    /// </summary>
    public IList<string> PinnedPublicKeySha256 { get; set; } = new List<string>();

    /// <summary>Mutual TLS: PEM file with this client's certificate (then any intermediates), presented when the server asks.</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>PEM text of the client certificate, instead of a file.</summary>
    public string? ClientCertificatePem { get; set; }

    /// <summary>Mutual TLS: PEM file with the private key of <see cref="ClientCertificatePath"/>.</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>PEM text of the client certificate's private key, instead of a file.</summary>
    public string? ClientKeyPem { get; set; }

    /// <summary>Give up on a server that has not completed the handshake within this time.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
