using System.Security.Cryptography.X509Certificates;
using QuicSend.Transport;

namespace QuicSend.Security;

/// <summary>Who is on the other end of a connection, as its verified certificate says.</summary>
public static class PeerIdentity
{
    /// <summary>
    /// The peer's certificate (the leaf it presented in the handshake): on a server, the client's
    /// certificate under mutual TLS (<see cref="QuicServerOptions.ClientCertificateRootPaths"/>), already
    /// verified against those roots, or null when the client presented none; on a client, the server's
    /// certificate. The certificate carries no private key. Throws once the connection is drained.
    /// </summary>
    public static X509Certificate2? GetPeerCertificate(this QuicConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var der = connection.ReadPeerCertificate();
        return der is null ? null : X509CertificateLoader.LoadCertificate(der);
    }
}
