using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class ErrorTests
{
    [Test]
    public async Task HandshakeFailsClearlyWhenTheClientTrustsAnotherRoot()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions(TestPki.OtherRoot.CertificatePem));
        var e = Assert.ThrowsAsync<QuicException>(async () => await client.ConnectAsync(server.LocalEndPoint, "localhost"));
        Assert.That(e!.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.Message, Does.Contain("not signed by any root this client trusts"));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.UnknownIssuer));
        await Task.CompletedTask;
    }

    [Test]
    public void HandshakeFailsClearlyWhenTheNameIsNotInTheCertificate()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var e = Assert.ThrowsAsync<QuicException>(async () => await client.ConnectAsync(server.LocalEndPoint, "example.org"));
        Assert.That(e!.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.NameMismatch));
        Assert.That(e.Message, Does.Contain("does not cover the server name"));
    }

    [Test]
    public void ConnectingWhereNoServerListensTimesOutWithAClearError()
    {
        // Reserve a UDP port nobody answers on.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var options = TestPki.ClientOptions();
        options.ConnectTimeout = TimeSpan.FromSeconds(1);
        using var client = QuicEndpoint.CreateClient(options);
        var sw = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<QuicException>(async () => await client.ConnectAsync((IPEndPoint)silent.LocalEndPoint!, "localhost"));
        Assert.That(e!.Error, Is.EqualTo(QuicError.ConnectTimeout));
        Assert.That(e.Message, Does.Contain("No QUIC server answered"));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public void AMissingCertificateFileIsNamed()
    {
        var o = TestPki.ServerOptions();
        o.CertificateChainPem = null;
        o.CertificateChainPath = "/nonexistent/server.pem";
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.Listen(o));
        Assert.That(e!.Message, Does.Contain("/nonexistent/server.pem").And.Contain("does not exist"));
    }

    [Test]
    public void ABadPemIsRefusedWithAReason()
    {
        var o = TestPki.ServerOptions();
        o.CertificateChainPem = "this is not a certificate";
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.Listen(o));
        Assert.That(e!.Message, Does.Contain("BEGIN CERTIFICATE"));

        var k = TestPki.ServerOptions();
        k.PrivateKeyPem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        var e2 = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.Listen(k));
        Assert.That(e2!.Message, Does.Contain("private key"));
    }

    [Test]
    public void AKeyThatDoesNotMatchTheCertificateIsRefused()
    {
        var o = TestPki.ServerOptions();
        o.PrivateKeyPem = TestPki.OtherRoot.PrivateKeyPem;
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.Listen(o));
        Assert.That(e!.Message, Does.Contain("cannot be used together"));
    }

    [Test]
    public void AClientWithoutTrustedRootsIsRefusedUpFront()
    {
        var o = TestPki.ClientOptions();
        o.TrustedRootPems.Clear();
        var e = Assert.Throws<QuicConfigurationException>(() => QuicEndpoint.CreateClient(o));
        Assert.That(e!.Message, Does.Contain("TrustedRootPaths"));
    }

    [Test]
    public void APortInUseIsReportedAsSuch()
    {
        using var first = QuicEndpoint.Listen(TestPki.ServerOptions());
        var o = TestPki.ServerOptions();
        o.ListenEndPoint = first.LocalEndPoint;
        var e = Assert.Throws<QuicException>(() => QuicEndpoint.Listen(o));
        Assert.That(e!.Message, Does.Contain($"UDP port {first.LocalEndPoint.Port}").And.Contain("already in use"));
    }

    [Test]
    public async Task GarbageDatagramsDoNotDisturbTheServer()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var serving = Echo.ServeAsync(server, cts.Token);
        using (var raw = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            var rng = new Random(7);
            var buf = new byte[1500];
            for (int i = 0; i < 5000; i++)
            {
                var len = rng.Next(0, buf.Length);
                rng.NextBytes(buf);
                if (i % 3 == 0) buf[0] = (byte)(0xC0 | buf[0]); // long header shape
                raw.SendTo(buf.AsSpan(0, len), SocketFlags.None, server.LocalEndPoint);
            }
        }
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        var data = Echo.RandomBytes(1 << 20, 3);
        var (hash, _) = await Echo.RoundTripAsync(s, data);
        Assert.That(hash, Is.EqualTo(System.Security.Cryptography.SHA256.HashData(data)));
    }
}

[TestFixture]
public class NativeLibraryTests
{
    [Test]
    public void AMissingNativeLibrarySaysWhereItLookedAndHowToBuildIt()
    {
        var e = Assert.Throws<DllNotFoundException>(() => QuicSend.Native.QuicSendNative.Load(
            ["/nonexistent/dir/libquicsend_native.so"], "libquicsend_native_missing.so", typeof(NativeLibraryTests).Assembly, null));
        Assert.That(e!.Message, Does.Contain("/nonexistent/dir/libquicsend_native.so"));
        Assert.That(e.Message, Does.Contain("./build.sh").And.Contain("QUICSEND_NATIVE_PATH").And.Contain("runtimes/"));
    }

    [Test]
    public void TheSearchLooksAtTheConfiguredPathFirstThenBesideTheAssemblyAndUnderRuntimes()
    {
        var before = QuicSend.Native.QuicSendNative.LibraryPath;
        try
        {
            QuicSend.Native.QuicSendNative.LibraryPath = "/opt/custom/libquicsend_native.so";
            var c = QuicSend.Native.QuicSendNative.Candidates().ToList();
            Assert.That(c[0], Is.EqualTo("/opt/custom/libquicsend_native.so"));
            Assert.That(c, Has.Some.EndsWith($"runtimes/{QuicSend.Native.QuicSendNative.RuntimeId}/native/libquicsend_native.so"));
        }
        finally
        {
            QuicSend.Native.QuicSendNative.LibraryPath = before;
        }
    }
}
