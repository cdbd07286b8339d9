using System.Security.Cryptography.X509Certificates;
using QuicSend.Native;
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
    public static unsafe X509Certificate2? GetPeerCertificate(this QuicConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var driver = connection.Driver;
        var buf = new byte[4096];
        long n;
        lock (driver.Lock)
        {
            driver.ThrowIfStopped();
            while (true)
            {
                fixed (byte* p = buf) n = NativeMethods.qs_conn_peer_certificate(driver.Ep, connection.Id, p, (nuint)buf.Length);
                if (n == QsConst.QS_DONE) return null;
                if (n == QsConst.QS_ERR_INVALID_STATE && connection.IsClosed) throw connection.Error();
                if (n < 0) throw NativeErrors.ToException((int)n, "Reading the peer's certificate");
                if (n <= buf.Length) break;
                buf = new byte[n];
            }
        }
        return X509CertificateLoader.LoadCertificate(buf.AsSpan(0, (int)n));
    }
}
