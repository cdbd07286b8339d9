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

    public static QuicClientOptions ClientOptions(string? trustedRootPem = null) => new()
    {
        TrustedRootPems = { trustedRootPem ?? Root.CertificatePem },
        AlpnProtocols = { "quicsend-test" },
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };
}
