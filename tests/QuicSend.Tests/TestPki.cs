using System.Net;
using QuicSend.Security;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>A private root, a server certificate it signed, and an unrelated root, made once per test run.</summary>
internal static class TestPki
{
    private static readonly Lazy<(PemCertificate Root, PemCertificate Server, PemCertificate OtherRoot)> Made = new(() =>
    {
        var root = CertificateTool.CreateRootCa("QuicSend Test Root");
        var server = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback]);
        var other = CertificateTool.CreateRootCa("Some Other Root");
        return (root, server, other);
    });

    /// <summary>
    /// For pinning and mutual TLS: a second server certificate for the same names from the same root
    /// (what a man in the middle holding a certificate from a trusted CA would present), a root for
    /// client certificates, a client certificate it signed, and a client certificate from another root.
    /// </summary>
    private static readonly Lazy<(PemCertificate Impostor, PemCertificate ClientRoot, PemCertificate Client, PemCertificate StrangerClient)> MadeMore = new(() =>
    {
        var impostor = CertificateTool.IssueServer(Root, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback]);
        var clientRoot = CertificateTool.CreateRootCa("QuicSend Test Client Root");
        var client = CertificateTool.IssueClient(clientRoot, ClientName);
        var stranger = CertificateTool.IssueClient(OtherRoot, "stranger");
        return (impostor, clientRoot, client, stranger);
    });

    /// <summary>The common name in <see cref="Client"/>.</summary>
    public const string ClientName = "client-1";

    public static PemCertificate Impostor => MadeMore.Value.Impostor;
    public static PemCertificate ClientRoot => MadeMore.Value.ClientRoot;
    public static PemCertificate Client => MadeMore.Value.Client;
    public static PemCertificate StrangerClient => MadeMore.Value.StrangerClient;

    public static PemCertificate Root => Made.Value.Root;
    public static PemCertificate Server => Made.Value.Server;
    public static PemCertificate OtherRoot => Made.Value.OtherRoot;

    public static QuicServerOptions ServerOptions(string address = "127.0.0.1") => new()
    {
        ListenEndPoint = new IPEndPoint(IPAddress.Parse(address), 0),
        CertificateChainPem = Server.CertificatePem,
        PrivateKeyPem = Server.PrivateKeyPem,
        AlpnProtocols = { "quicsend-test" },
    };

    /// <summary>A server that requires client certificates signed by <see cref="ClientRoot"/>.</summary>
    public static QuicServerOptions MutualTlsServerOptions()
    {
        var o = ServerOptions();
        o.ClientCertificateRootPems.Add(ClientRoot.CertificatePem);
        return o;
    }

    /// <summary>Client options trusting <see cref="Root"/> and presenting <paramref name="identity"/>.</summary>
    public static QuicClientOptions ClientOptionsWithCertificate(PemCertificate identity)
    {
        var o = ClientOptions();
        o.ClientCertificatePem = identity.CertificatePem;
        o.ClientKeyPem = identity.PrivateKeyPem;
        return o;
    }

    public static QuicClientOptions ClientOptions(string? trustedRootPem = null) => new()
    {
        TrustedRootPems = { trustedRootPem ?? Root.CertificatePem },
        AlpnProtocols = { "quicsend-test" },
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };
}
