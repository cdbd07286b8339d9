using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace QuicSend.Security;

/// <summary>A certificate and its private key, both as PEM text.</summary>
public sealed record PemCertificate(string CertificatePem, string PrivateKeyPem)
{
    /// <summary>Writes cert and key to two files (the key readable by the owner only where the OS allows).</summary>
    public void Save(string certificatePath, string keyPath)
    {
        File.WriteAllText(certificatePath, CertificatePem);
        File.WriteAllText(keyPath, PrivateKeyPem);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    internal X509Certificate2 Load() => X509Certificate2.CreateFromPem(CertificatePem, PrivateKeyPem);
}

/// <summary>
/// Makes the files of the private-CA workflow without openssl: a root CA, server
/// certificates it signs (copied root goes to each client), and client certificates.
/// Keys are ECDSA P-256. The files are what the openssl workflow makes and accepts:
/// PEM certificates and PKCS#8 PEM keys; the root has basicConstraints CA:TRUE and
/// keyCertSign; a server certificate has its names in subjectAltName and the serverAuth
/// extended key usage, a client certificate clientAuth (so <c>openssl verify -CAfile root.pem
/// -purpose sslserver server.pem</c> and <c>-purpose sslclient client.pem</c> pass).
/// </summary>
public static class CertificateTool
{
    /// <summary>Creates a self-signed root CA valid for <paramref name="validFor"/> (default 10 years).</summary>
    public static PemCertificate CreateRootCa(string commonName, TimeSpan? validFor = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var cert = req.CreateSelfSigned(now, now + (validFor ?? TimeSpan.FromDays(3650)));
        return new PemCertificate(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Issues a server certificate for the given DNS names and IP addresses, signed by <paramref name="issuer"/>.</summary>
    public static PemCertificate IssueServer(PemCertificate issuer, IEnumerable<string> dnsNames, IEnumerable<IPAddress>? addresses = null, TimeSpan? validFor = null)
    {
        var names = dnsNames.ToList();
        var ips = (addresses ?? []).ToList();
        if (names.Count == 0 && ips.Count == 0) throw new ArgumentException("A server certificate needs at least one DNS name or IP address.");
        var san = new SubjectAlternativeNameBuilder();
        foreach (var n in names) san.AddDnsName(n);
        foreach (var ip in ips) san.AddIpAddress(ip);
        return Issue(issuer, names.Count > 0 ? names[0] : ips[0].ToString(), san.Build(), "1.3.6.1.5.5.7.3.1", validFor);
    }

    /// <summary>Issues a client certificate (for mutual TLS) naming the client, signed by <paramref name="issuer"/>.</summary>
    public static PemCertificate IssueClient(PemCertificate issuer, string clientName, TimeSpan? validFor = null) =>
        Issue(issuer, clientName, null, "1.3.6.1.5.5.7.3.2", validFor);

    /// <summary>
    /// The public key pin of a certificate for <c>QuicClientOptions.PinnedPublicKeySha256</c>:
    /// <c>sha256//</c> and the base64 SHA-256 of its DER SubjectPublicKeyInfo, the form of HPKP and
    /// curl's <c>--pinnedpubkey</c>. The same value as
    /// <c>openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64</c>.
    /// For a PEM with a chain, the first certificate (the leaf) counts.
    /// </summary>
    public static string GetPublicKeyPin(string certificatePem)
    {
        using var cert = X509Certificate2.CreateFromPem(certificatePem);
        return GetPublicKeyPin(cert);
    }

    /// <summary>The public key pin (<c>sha256//BASE64</c>) of a certificate, e.g. one from <c>GetPeerCertificate()</c>.</summary>
    public static string GetPublicKeyPin(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var spki = certificate.PublicKey.ExportSubjectPublicKeyInfo();
        return PublicKeyPin.Prefix + Convert.ToBase64String(SHA256.HashData(spki));
    }

    /// <summary>
    /// The SHA-256 fingerprint of the certificate's DER, as <c>openssl x509 -noout -fingerprint -sha256</c>
    /// prints it: upper-case hex bytes joined by ':'. For a PEM with a chain, the first certificate counts.
    /// </summary>
    public static string GetCertificateFingerprint(string certificatePem)
    {
        using var cert = X509Certificate2.CreateFromPem(certificatePem);
        return string.Join(':', SHA256.HashData(cert.RawData).Select(b => b.ToString("X2")));
    }

    private static PemCertificate Issue(PemCertificate issuer, string commonName, X509Extension? san, string usageOid, TimeSpan? validFor)
    {
        using var ca = issuer.Load();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], false));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (san is not null) req.CertificateExtensions.Add(san);
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = now + (validFor ?? TimeSpan.FromDays(825));
        if (notAfter > ca.NotAfter) notAfter = ca.NotAfter;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var cert = req.Create(ca, now, notAfter, serial);
        return new PemCertificate(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
