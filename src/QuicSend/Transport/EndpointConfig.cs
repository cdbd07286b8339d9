using System.Text;
using QuicSend.Native;
using QuicSend.Security;

namespace QuicSend.Transport;

/// <summary>Builds a native configuration from options, reading PEM files with errors that name the file.</summary>
internal static unsafe class EndpointConfig
{
    public static QsConfigHandle Build(QuicEndpointOptions o)
    {
        var cfg = NativeMethods.qs_config_new();
        if (cfg.IsInvalid) throw NativeErrors.ToException(QsConst.QS_ERR_PANIC, "creating a configuration");
        try
        {
            Check(NativeMethods.qs_config_set_timeouts(cfg, Ms(o.IdleTimeout), Ms(o.KeepAliveInterval)), "idle timeout");
            Check(NativeMethods.qs_config_set_max_streams(cfg, (ulong)o.MaxBidirectionalStreams, (ulong)o.MaxUnidirectionalStreams), "stream limits");
            Check(NativeMethods.qs_config_set_windows(cfg, (ulong)o.StreamReceiveWindow, (ulong)o.ConnectionReceiveWindow), "flow-control windows");
            Check(NativeMethods.qs_config_set_congestion(cfg, (uint)o.CongestionControl), "congestion control");
            var max = (ushort)Math.Clamp(o.MaxUdpPayloadSize, 1200, 65527);
            Check(NativeMethods.qs_config_set_max_udp_payload(cfg, max), "maximum UDP payload");
            Check(NativeMethods.qs_config_set_pacing(cfg, o.Pacing), "pacing");
            if (o.AlpnProtocols.Count > 0)
            {
                var wire = new List<byte>();
                foreach (var p in o.AlpnProtocols)
                {
                    var b = Encoding.ASCII.GetBytes(p);
                    if (b.Length is 0 or > 255) throw new ArgumentException($"ALPN protocol '{p}' must be 1 to 255 bytes long.");
                    wire.Add((byte)b.Length);
                    wire.AddRange(b);
                }
                WithBytes(wire.ToArray(), (p, n) => NativeMethods.qs_config_set_alpn(cfg, p, n), "ALPN");
            }
            switch (o)
            {
                case QuicServerOptions s:
                    var chain = Pem(s.CertificateChainPem, s.CertificateChainPath, "certificate chain", "CertificateChainPath");
                    var key = Pem(s.PrivateKeyPem, s.PrivateKeyPath, "private key", "PrivateKeyPath");
                    WithBytes(chain.Bytes, (p, n) => NativeMethods.qs_config_load_cert_chain_pem(cfg, p, n), $"loading the certificate chain from {chain.Source}");
                    WithBytes(key.Bytes, (p, n) => NativeMethods.qs_config_load_priv_key_pem(cfg, p, n), $"loading the private key from {key.Source}");
                    Check(NativeMethods.qs_config_set_retry(cfg, s.RequireAddressValidation), "address validation");
                    Check(NativeMethods.qs_config_set_max_connections(cfg, (ulong)s.MaxConnections), "connection limit");
                    foreach (var path in s.ClientCertificateRootPaths)
                    {
                        var root = Pem(null, path, "client certificate root", "ClientCertificateRootPaths");
                        WithBytes(root.Bytes, (p, n) => NativeMethods.qs_config_add_client_root_pem(cfg, p, n), $"loading the client certificate root from {root.Source}");
                    }
                    foreach (var pem in s.ClientCertificateRootPems)
                        WithBytes(Encoding.UTF8.GetBytes(pem), (p, n) => NativeMethods.qs_config_add_client_root_pem(cfg, p, n), "loading a client certificate root (PEM text)");
                    Check(NativeMethods.qs_config_set_require_client_cert(cfg, s.RequireClientCertificate), "client certificate requirement");
                    break;
                case QuicClientOptions c:
                    BuildClientTrust(cfg, c);
                    BuildClientIdentity(cfg, c);
                    break;
            }
            return cfg;
        }
        catch
        {
            cfg.Dispose();
            throw;
        }
    }

    private static void BuildClientTrust(QsConfigHandle cfg, QuicClientOptions c)
    {
        bool pinned = c.PinnedServerCertificatePaths.Count > 0 || c.PinnedServerCertificatePems.Count > 0 || c.PinnedPublicKeySha256.Count > 0;
        if (c.TrustedRootPaths.Count == 0 && c.TrustedRootPems.Count == 0 && !c.UseSystemTrustStore && !pinned)
            throw new QuicConfigurationException(
                "No trusted root or pin: set QuicClientOptions.TrustedRootPaths to the PEM file of the CA that signed the server's certificate, " +
                "or pin the server with PinnedServerCertificatePaths (its certificate) or PinnedPublicKeySha256 (its key, sha256//BASE64).");
        foreach (var path in c.TrustedRootPaths)
        {
            var root = Pem(null, path, "trusted root", "TrustedRootPaths");
            WithBytes(root.Bytes, (p, n) => NativeMethods.qs_config_add_trusted_root_pem(cfg, p, n), $"loading the trusted root from {root.Source}");
        }
        foreach (var pem in c.TrustedRootPems)
            WithBytes(Encoding.UTF8.GetBytes(pem), (p, n) => NativeMethods.qs_config_add_trusted_root_pem(cfg, p, n), "loading a trusted root (PEM text)");
        if (c.UseSystemTrustStore)
        {
            var bundle = SystemTrustStore.FindBundle();
            fixed (byte* p = bundle.Bytes)
            {
                var rc = NativeMethods.qs_config_add_trusted_root_bundle_pem(cfg, p, (nuint)bundle.Bytes.Length);
                if (rc < 0) throw NativeErrors.ToException((int)rc, $"loading the system trust store from '{bundle.Path}'");
            }
        }
        foreach (var path in c.PinnedServerCertificatePaths)
        {
            var cert = Pem(null, path, "pinned server certificate", "PinnedServerCertificatePaths");
            WithBytes(cert.Bytes, (p, n) => NativeMethods.qs_config_add_pinned_cert_pem(cfg, p, n), $"loading the pinned server certificate from {cert.Source}");
        }
        foreach (var pem in c.PinnedServerCertificatePems)
            WithBytes(Encoding.UTF8.GetBytes(pem), (p, n) => NativeMethods.qs_config_add_pinned_cert_pem(cfg, p, n), "loading a pinned server certificate (PEM text)");
        foreach (var entry in c.PinnedPublicKeySha256)
            foreach (var hash in PublicKeyPin.Parse(entry))
                WithBytes(hash, (p, n) => NativeMethods.qs_config_add_pinned_spki_sha256(cfg, p, n), "adding a public key pin");
    }

    private static void BuildClientIdentity(QsConfigHandle cfg, QuicClientOptions c)
    {
        bool hasCert = c.ClientCertificatePem is not null || c.ClientCertificatePath is not null;
        bool hasKey = c.ClientKeyPem is not null || c.ClientKeyPath is not null;
        if (!hasCert && !hasKey) return;
        if (!hasKey)
            throw new QuicConfigurationException("A client certificate is set but no key: set ClientKeyPath (or ClientKeyPem) to the private key of the client certificate.");
        if (!hasCert)
            throw new QuicConfigurationException("A client key is set but no certificate: set ClientCertificatePath (or ClientCertificatePem) to the client certificate it belongs to.");
        var chain = Pem(c.ClientCertificatePem, c.ClientCertificatePath, "client certificate", "ClientCertificatePath");
        var key = Pem(c.ClientKeyPem, c.ClientKeyPath, "client key", "ClientKeyPath");
        WithBytes(chain.Bytes, (p, n) => NativeMethods.qs_config_load_cert_chain_pem(cfg, p, n), $"loading the client certificate from {chain.Source}");
        WithBytes(key.Bytes, (p, n) => NativeMethods.qs_config_load_priv_key_pem(cfg, p, n), $"loading the client key from {key.Source}");
    }

    private static ulong Ms(TimeSpan t) => (ulong)Math.Max(0, (long)t.TotalMilliseconds);

    private static void Check(int rc, string what) => NativeErrors.Check(rc, $"Invalid setting ({what})");

    private delegate int PemCall(byte* p, nuint n);

    private static void WithBytes(byte[] bytes, PemCall call, string what)
    {
        fixed (byte* p = bytes)
        {
            var rc = call(p, (nuint)bytes.Length);
            if (rc < 0) throw NativeErrors.ToException(rc, what);
        }
    }

    private static (byte[] Bytes, string Source) Pem(string? text, string? path, string what, string option)
    {
        if (text is not null) return (Encoding.UTF8.GetBytes(text), "PEM text");
        if (path is null)
            throw new QuicConfigurationException($"No {what}: set {option} to a PEM file (or the matching *Pem property to its text).");
        if (!File.Exists(path))
            throw new QuicConfigurationException($"The {what} file '{Path.GetFullPath(path)}' does not exist; check {option}.");
        return (File.ReadAllBytes(path), $"'{Path.GetFullPath(path)}'");
    }
}
