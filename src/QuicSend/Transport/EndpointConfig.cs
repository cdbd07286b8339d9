using System.Text;
using QuicSend.Native;

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
            Check(NativeMethods.qs_config_set_windows(cfg, (ulong)o.StreamReceiveWindow, (ulong)o.ConnectionReceiveWindow, (ulong)o.SendWindow), "flow-control windows");
            Check(NativeMethods.qs_config_set_congestion(cfg, (uint)o.CongestionControl), "congestion control");
            var max = (ushort)Math.Clamp(o.MaxUdpPayloadSize, 1200, 65527);
            Check(NativeMethods.qs_config_set_mtu(cfg, 1200, max), "MTU");
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
                    break;
                case QuicClientOptions c:
                    if (c.TrustedRootPaths.Count == 0 && c.TrustedRootPems.Count == 0)
                        throw new QuicConfigurationException("No trusted root: set QuicClientOptions.TrustedRootPaths to the PEM file of the CA that signed the server's certificate.");
                    foreach (var path in c.TrustedRootPaths)
                    {
                        var root = Pem(null, path, "trusted root", "TrustedRootPaths");
                        WithBytes(root.Bytes, (p, n) => NativeMethods.qs_config_add_trusted_root_pem(cfg, p, n), $"loading the trusted root from {root.Source}");
                    }
                    foreach (var pem in c.TrustedRootPems)
                        WithBytes(Encoding.UTF8.GetBytes(pem), (p, n) => NativeMethods.qs_config_add_trusted_root_pem(cfg, p, n), "loading a trusted root (PEM text)");
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
