namespace QuicSend.Security;

/// <summary>Finds the operating system's CA bundle for <c>QuicClientOptions.UseSystemTrustStore</c>.</summary>
internal static class SystemTrustStore
{
    // Where Linux distributions keep the PEM bundle of their trusted CAs.
    private static readonly string[] LinuxBundles =
    [
        "/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Arch, Gentoo
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // Fedora, RHEL
        "/etc/pki/tls/certs/ca-bundle.crt",                  // older Fedora / RHEL
        "/etc/ssl/ca-bundle.pem",                            // openSUSE
        "/etc/ssl/cert.pem",                                 // Alpine
    ];

    /// <summary>The bundle's bytes and path; SSL_CERT_FILE, when set, names it.</summary>
    internal static (byte[] Bytes, string Path) FindBundle()
    {
        if (!OperatingSystem.IsLinux())
            throw new QuicConfigurationException(
                "UseSystemTrustStore is not supported on this operating system yet (only Linux, where it reads the distribution's CA bundle). " +
                "Export the CA certificates you trust to a PEM file and set QuicClientOptions.TrustedRootPaths instead.");
        var fromEnv = Environment.GetEnvironmentVariable("SSL_CERT_FILE");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            if (!File.Exists(fromEnv))
                throw new QuicConfigurationException($"UseSystemTrustStore: SSL_CERT_FILE names '{fromEnv}', which does not exist.");
            return (File.ReadAllBytes(fromEnv), fromEnv);
        }
        foreach (var path in LinuxBundles)
            if (File.Exists(path)) return (File.ReadAllBytes(path), path);
        throw new QuicConfigurationException(
            "UseSystemTrustStore: no system CA bundle found (looked for " + string.Join(", ", LinuxBundles) +
            "). Install the distribution's ca-certificates package, or set SSL_CERT_FILE to a PEM bundle.");
    }
}
