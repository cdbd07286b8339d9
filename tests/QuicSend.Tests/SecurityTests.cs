using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using QuicSend.Security;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Server pinning, the system trust store, mutual TLS, and CertificateTool's files
/// checked with openssl. (A server certificate from an untrusted root is covered in ErrorTests.)
/// </summary>
[TestFixture]
[NonParallelizable]
public class SecurityTests
{
    private const string PinProblem = "does not match the pinned certificate/key";

    private string _dir = null!;

    [SetUp]
    public void MakeDirectory() => _dir = Directory.CreateTempSubdirectory("quicsend-security-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    // ---- pinning ----------------------------------------------------------------------------

    [Test]
    public async Task APinnedServerCertificateFileThatMatchesConnects()
    {
        var pinned = Path.Combine(_dir, "server.pem");
        File.WriteAllText(pinned, TestPki.Server.CertificatePem);
        var options = TestPki.ClientOptions();
        options.PinnedServerCertificatePaths.Add(pinned);
        await AssertEchoWorksAsync(TestPki.ServerOptions(), options);
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task APinnedPublicKeyThatMatchesConnects(bool withPrefix)
    {
        var pin = CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem);
        Assert.That(pin, Does.StartWith("sha256//"));
        var options = TestPki.ClientOptions();
        options.PinnedPublicKeySha256.Add(withPrefix ? pin : pin["sha256//".Length..]);
        await AssertEchoWorksAsync(TestPki.ServerOptions(), options);
    }

    [Test]
    public async Task AnyOfSeveralPinsMayMatch()
    {
        var options = TestPki.ClientOptions();
        options.PinnedPublicKeySha256.Add(
            CertificateTool.GetPublicKeyPin(TestPki.Impostor.CertificatePem) + ";" + CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));
        await AssertEchoWorksAsync(TestPki.ServerOptions(), options);
    }

    /// <summary>
    /// A man in the middle holding a certificate for the right name from the trusted root itself:
    /// the chain verifies, the pin does not match, and nothing gets through.
    /// </summary>
    [TestCase("certificate")]
    [TestCase("key")]
    public async Task AServerWhoseCertificateDoesNotMatchThePinIsRefusedAndTheMessageSaysSo(string pinKind)
    {
        var serverOptions = TestPki.ServerOptions();
        serverOptions.CertificateChainPem = TestPki.Impostor.CertificatePem;
        serverOptions.PrivateKeyPem = TestPki.Impostor.PrivateKeyPem;
        var options = TestPki.ClientOptions();
        if (pinKind == "certificate") options.PinnedServerCertificatePems.Add(TestPki.Server.CertificatePem);
        else options.PinnedPublicKeySha256.Add(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));

        var e = await RefusedAsync(serverOptions, options);
        Assert.That(e.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.PinMismatch));
        Assert.That(e.Message, Does.Contain(PinProblem));
        Assert.That(e.Message, Does.Contain("it presented a certificate with public key " + CertificateTool.GetPublicKeyPin(TestPki.Impostor.CertificatePem)),
            "the message names the key the server presented, so an operator can tell a changed certificate from an attack");
    }

    [Test]
    public async Task WithRootsAndAPinTheChainMustStillVerify()
    {
        // The pin matches, but the client trusts only another root: the chain check still refuses it.
        var options = TestPki.ClientOptions(TestPki.OtherRoot.CertificatePem);
        options.PinnedPublicKeySha256.Add(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));
        var e = await RefusedAsync(TestPki.ServerOptions(), options);
        Assert.That(e.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.UnknownIssuer));
        Assert.That(e.Message, Does.Contain("not signed by any root this client trusts"));
    }

    [TestCase("certificate")]
    [TestCase("key")]
    public async Task APinAloneWithoutRootsConnectsWhenItMatches(string pinKind)
    {
        var options = TestPki.ClientOptions();
        options.TrustedRootPems.Clear();
        if (pinKind == "certificate") options.PinnedServerCertificatePems.Add(TestPki.Server.CertificatePem);
        else options.PinnedPublicKeySha256.Add(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));
        await AssertEchoWorksAsync(TestPki.ServerOptions(), options);
    }

    [Test]
    public async Task APinAloneRefusesAnotherServer()
    {
        var serverOptions = TestPki.ServerOptions();
        serverOptions.CertificateChainPem = TestPki.Impostor.CertificatePem;
        serverOptions.PrivateKeyPem = TestPki.Impostor.PrivateKeyPem;
        var options = TestPki.ClientOptions();
        options.TrustedRootPems.Clear();
        options.PinnedPublicKeySha256.Add(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));
        var e = await RefusedAsync(serverOptions, options);
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.PinMismatch));
        Assert.That(e.Message, Does.Contain(PinProblem));
    }

    [Test]
    public async Task APinAloneStillChecksTheServerName()
    {
        var options = TestPki.ClientOptions();
        options.TrustedRootPems.Clear();
        options.PinnedPublicKeySha256.Add(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem));
        var e = await RefusedAsync(TestPki.ServerOptions(), options, serverName: "example.org");
        Assert.That(e.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.NameMismatch));
        Assert.That(e.Message, Does.Contain("does not cover the server name"));
    }

    [TestCase("sha256//not base64!", "is not valid base64")]
    [TestCase("sha256//AAAA", "a SHA-256 pin is 32 bytes")]
    public void AMalformedPinIsRefusedUpFront(string pin, string reason)
    {
        var options = TestPki.ClientOptions();
        options.PinnedPublicKeySha256.Add(pin);
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(options));
        Assert.That(e!.Message, Does.Contain($"'{pin}'").And.Contain(reason));
    }

    [Test]
    public void AClientWithNeitherRootsNorPinsIsToldAboutBoth()
    {
        var options = TestPki.ClientOptions();
        options.TrustedRootPems.Clear();
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(options));
        Assert.That(e!.Message, Does.Contain("TrustedRootPaths").And.Contain("PinnedServerCertificatePaths").And.Contain("PinnedPublicKeySha256"));
    }

    // ---- system trust store -----------------------------------------------------------------

    [Test]
    public async Task TheSystemTrustStoreIsUsedAsRoots()
    {
        if (!OperatingSystem.IsLinux())
        {
            var o = TestPki.ClientOptions();
            o.UseSystemTrustStore = true;
            Assert.That(Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(o))!.Message, Does.Contain("not supported"));
            return;
        }
        // A "system" bundle (SSL_CERT_FILE names it, as with openssl) holding some CA and our test root.
        var bundle = Path.Combine(_dir, "bundle.pem");
        File.WriteAllText(bundle, TestPki.OtherRoot.CertificatePem + "\n" + TestPki.Root.CertificatePem + "\n");
        var options = TestPki.ClientOptions();
        options.TrustedRootPems.Clear();
        options.UseSystemTrustStore = true;
        var saved = Environment.GetEnvironmentVariable("SSL_CERT_FILE");
        try
        {
            Environment.SetEnvironmentVariable("SSL_CERT_FILE", bundle);
            await AssertEchoWorksAsync(TestPki.ServerOptions(), options);

            // The distribution's bundle loads, and our private root is not in it: the server is refused.
            Environment.SetEnvironmentVariable("SSL_CERT_FILE", null);
            if (File.Exists("/etc/ssl/certs/ca-certificates.crt"))
            {
                var e = await RefusedAsync(TestPki.ServerOptions(), options);
                Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.UnknownIssuer));
                Assert.That(e.Message, Does.Contain("not signed by any root this client trusts"));
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("SSL_CERT_FILE", saved);
        }
    }

    // ---- mutual TLS -------------------------------------------------------------------------

    [Test]
    public async Task AClientCertificateFromTheConfiguredRootIsAcceptedAndTheServerSeesWhoItIs()
    {
        using var server = QuicEndpoint.Listen(TestPki.MutualTlsServerOptions());
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptionsWithCertificate(TestPki.Client));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var accepting = server.AcceptAsync(cts.Token).AsTask();
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var accepted = await accepting;

        using var seen = accepted.GetPeerCertificate();
        Assert.That(seen, Is.Not.Null, "the server must see the client's certificate");
        Assert.That(seen!.GetNameInfo(X509NameType.SimpleName, forIssuer: false), Is.EqualTo(TestPki.ClientName));
        Assert.That(seen.RawData, Is.EqualTo(X509Certificate2.CreateFromPem(TestPki.Client.CertificatePem).RawData));
        Assert.That(seen.HasPrivateKey, Is.False);

        using var serverCert = conn.GetPeerCertificate();
        Assert.That(serverCert!.RawData, Is.EqualTo(X509Certificate2.CreateFromPem(TestPki.Server.CertificatePem).RawData),
            "the client sees the server's certificate");

        // And the authenticated connection carries data.
        var echo = Task.Run(async () =>
        {
            var s = await accepted.AcceptStreamAsync(cts.Token);
            var buf = new byte[4096];
            int n;
            while ((n = await s.ReadAsync(buf, cts.Token)) > 0) await s.WriteAsync(buf.AsMemory(0, n), cts.Token);
            s.CompleteWrites();
        });
        var stream = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        var data = Echo.RandomBytes(100_000, seed: 5);
        var (hash, _) = await Echo.RoundTripAsync(stream, data);
        Assert.That(hash, Is.EqualTo(SHA256.HashData(data)));
        await echo;
    }

    [Test]
    public async Task AClientCertificateFromAnotherRootIsRefused()
    {
        var e = await RefusedAsync(TestPki.MutualTlsServerOptions(), TestPki.ClientOptionsWithCertificate(TestPki.StrangerClient));
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain("unknown_ca"), "the refusal names the untrusted issuer");
        Assert.That(e.Message, Does.Contain("did not accept this side's certificate"));
    }

    [Test]
    public async Task AClientWithoutACertificateIsRefusedWhenOneIsRequired()
    {
        var e = await RefusedAsync(TestPki.MutualTlsServerOptions(), TestPki.ClientOptions());
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain("certificate_required").And.Contain("presented no certificate"), "the refusal says the client presented no certificate");
    }

    [Test]
    public async Task WhenClientCertificatesAreOptionalAClientWithoutOneGetsInAnonymously()
    {
        var serverOptions = TestPki.MutualTlsServerOptions();
        serverOptions.RequireClientCertificate = false;
        using var server = QuicEndpoint.Listen(serverOptions);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using (var anonymous = QuicEndpoint.CreateClient(TestPki.ClientOptions()))
        {
            var accepting = server.AcceptAsync(cts.Token).AsTask();
            await anonymous.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
            Assert.That((await accepting).GetPeerCertificate(), Is.Null);
        }
        using (var known = QuicEndpoint.CreateClient(TestPki.ClientOptionsWithCertificate(TestPki.Client)))
        {
            var accepting = server.AcceptAsync(cts.Token).AsTask();
            await known.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
            using var cert = (await accepting).GetPeerCertificate();
            Assert.That(cert?.GetNameInfo(X509NameType.SimpleName, false), Is.EqualTo(TestPki.ClientName));
        }
        // A certificate that is presented must still verify.
        var e = await RefusedAsync(serverOptions, TestPki.ClientOptionsWithCertificate(TestPki.StrangerClient));
        Assert.That(e.Message, Does.Contain("unknown_ca").And.Contain("did not accept this side's certificate"));
    }

    [Test]
    public async Task AServerWithoutClientRootsAsksForNoClientCertificate()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptionsWithCertificate(TestPki.Client));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var accepting = server.AcceptAsync(cts.Token).AsTask();
        await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        Assert.That((await accepting).GetPeerCertificate(), Is.Null, "a client certificate is only asked for with client roots");
    }

    [Test]
    public void AClientCertificateWithoutItsKeyIsRefusedUpFront()
    {
        var options = TestPki.ClientOptions();
        options.ClientCertificatePem = TestPki.Client.CertificatePem;
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(options));
        Assert.That(e!.Message, Does.Contain("ClientKeyPath"));

        var mismatched = TestPki.ClientOptionsWithCertificate(TestPki.Client);
        mismatched.ClientKeyPem = TestPki.StrangerClient.PrivateKeyPem;
        var e2 = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(mismatched));
        Assert.That(e2!.Message, Does.Contain("client certificate and private key cannot be used together"));
    }

    [Test]
    public async Task ClientCertificateFilesWork()
    {
        var root = Path.Combine(_dir, "client-root.pem");
        File.WriteAllText(root, TestPki.ClientRoot.CertificatePem);
        TestPki.Client.Save(Path.Combine(_dir, "client.pem"), Path.Combine(_dir, "client.key"));
        var serverOptions = TestPki.ServerOptions();
        serverOptions.ClientCertificateRootPaths.Add(root);
        var options = TestPki.ClientOptions();
        options.ClientCertificatePath = Path.Combine(_dir, "client.pem");
        options.ClientKeyPath = Path.Combine(_dir, "client.key");
        await AssertEchoWorksAsync(serverOptions, options);
    }

    // ---- CertificateTool and openssl ----------------------------------------------------------

    [Test]
    public void CertificateToolFilesVerifyWithOpenssl()
    {
        TestPki.Root.Save(Path.Combine(_dir, "root.pem"), Path.Combine(_dir, "root.key"));
        TestPki.Server.Save(Path.Combine(_dir, "server.pem"), Path.Combine(_dir, "server.key"));
        var client = CertificateTool.IssueClient(TestPki.Root, "client-7");
        client.Save(Path.Combine(_dir, "client.pem"), Path.Combine(_dir, "client.key"));
        File.WriteAllText(Path.Combine(_dir, "other.pem"), TestPki.OtherRoot.CertificatePem);

        Assert.That(Openssl("verify -CAfile root.pem -purpose sslserver server.pem"), Is.EqualTo((0, "server.pem: OK")));
        Assert.That(Openssl("verify -CAfile root.pem -purpose sslclient client.pem"), Is.EqualTo((0, "client.pem: OK")));
        Assert.That(Openssl("verify -CAfile other.pem server.pem").ExitCode, Is.Not.EqualTo(0), "openssl must refuse a certificate from another root");

        foreach (var key in new[] { "root.key", "server.key", "client.key" })
        {
            Assert.That(Openssl($"pkey -in {key} -noout").ExitCode, Is.EqualTo(0), $"openssl parses {key}");
            Assert.That(File.ReadAllText(Path.Combine(_dir, key)), Does.StartWith("-----BEGIN PRIVATE KEY-----"), $"{key} is PKCS#8 PEM");
        }
        Assert.That(Openssl("pkey -in server.key -pubout").Output, Is.EqualTo(Openssl("x509 -in server.pem -pubkey -noout").Output),
            "server.key is the key of server.pem");

        var rootExt = Openssl("x509 -in root.pem -noout -ext basicConstraints,keyUsage").Output;
        Assert.That(rootExt, Does.Contain("CA:TRUE").And.Contain("Certificate Sign"));
        var serverExt = Openssl("x509 -in server.pem -noout -ext subjectAltName,extendedKeyUsage").Output;
        Assert.That(serverExt, Does.Contain("DNS:localhost").And.Contain("IP Address:127.0.0.1").And.Contain("TLS Web Server Authentication"));
        Assert.That(Openssl("x509 -in client.pem -noout -ext extendedKeyUsage").Output, Does.Contain("TLS Web Client Authentication"));
    }

    [Test]
    public void GetPublicKeyPinEqualsWhatOpensslComputes()
    {
        File.WriteAllText(Path.Combine(_dir, "server.pem"), TestPki.Server.CertificatePem);
        var (code, output) = Openssl(null,
            "set -o pipefail; openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(CertificateTool.GetPublicKeyPin(TestPki.Server.CertificatePem), Is.EqualTo("sha256//" + output));
        Assert.That(CertificateTool.GetPublicKeyPin(TestPki.Impostor.CertificatePem), Is.Not.EqualTo("sha256//" + output));
    }

    [Test]
    public void GetCertificateFingerprintEqualsWhatOpensslPrints()
    {
        File.WriteAllText(Path.Combine(_dir, "server.pem"), TestPki.Server.CertificatePem);
        var (code, output) = Openssl("x509 -in server.pem -noout -fingerprint -sha256");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(CertificateTool.GetCertificateFingerprint(TestPki.Server.CertificatePem), Is.EqualTo(output[(output.IndexOf('=') + 1)..]));
    }

    // ---- helpers ----------------------------------------------------------------------------

    /// <summary>Connects, echoes a little data, and checks it came back intact.</summary>
    private static async Task AssertEchoWorksAsync(QuicServerOptions serverOptions, QuicClientOptions clientOptions)
    {
        using var server = QuicEndpoint.Listen(serverOptions);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        var data = Echo.RandomBytes(256 * 1024, seed: 11);
        var (hash, bytes) = await Echo.RoundTripAsync(s, data);
        Assert.That(bytes, Is.EqualTo(data.Length));
        Assert.That(hash, Is.EqualTo(SHA256.HashData(data)));
        cts.Cancel();
    }

    /// <summary>
    /// Connects and expects the handshake to be refused; returns the client's error. Also checks the
    /// server never handed the connection to the application. A refusal by the server (of the client's
    /// certificate) can reach the client just after its own side of the TLS 1.3 handshake finished, so
    /// it shows either as ConnectAsync failing or as the connection closing right after.
    /// </summary>
    private static async Task<QuicException> RefusedAsync(QuicServerOptions serverOptions, QuicClientOptions clientOptions, string serverName = "localhost")
    {
        using var server = QuicEndpoint.Listen(serverOptions);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        using var cts = new CancellationTokenSource();
        var accepting = server.AcceptAsync(cts.Token).AsTask();
        QuicException refusal;
        try
        {
            var conn = await client.ConnectAsync(server.LocalEndPoint, serverName).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
            refusal = await conn.Closed.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (QuicException e)
        {
            refusal = e;
        }
        var first = await Task.WhenAny(accepting, Task.Delay(TimeSpan.FromMilliseconds(500)));
        Assert.That(first, Is.Not.SameAs(accepting), "the server must not accept a connection whose handshake was refused");
        cts.Cancel();
        try { await accepting; } catch (OperationCanceledException) { }
        TestContext.Out.WriteLine(refusal.Message);
        return refusal;
    }

    private (int ExitCode, string Output) Openssl(string arguments) => Openssl(arguments, null);

    /// <summary>Runs openssl with <paramref name="arguments"/>, or a bash pipeline, in the test directory.</summary>
    private (int ExitCode, string Output) Openssl(string? arguments, string? pipeline)
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, "openssl")));
        if (!onPath)
            Assert.Fail("openssl is not installed, so CertificateTool's files cannot be checked against it. " +
                        "Run the build (./build.sh --target=Test), whose Prerequisites step installs Debian's openssl, or apt-get install openssl.");
        var psi = pipeline is null ? new ProcessStartInfo("openssl", arguments!) : new ProcessStartInfo("bash", ["-c", pipeline]);
        psi.WorkingDirectory = _dir;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000)) Assert.Fail($"openssl {arguments ?? pipeline} did not finish within 30 s");
        var output = stdout.Result.Trim();
        if (p.ExitCode != 0) TestContext.Out.WriteLine($"openssl {arguments ?? pipeline}: exit {p.ExitCode}: {stderr.Result.Trim()}");
        return (p.ExitCode, output);
    }
}
