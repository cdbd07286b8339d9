using System.Diagnostics;
using System.Security.Cryptography;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// Another implementation talks to our server: ngtcp2's HTTP/3 example client
/// (Debian's ngtcp2-client, built on ngtcp2 + nghttp3, installed by the build).
/// </summary>
[TestFixture]
[NonParallelizable]
public class InteropTests
{
    private const string Client = "/usr/bin/gtlsclient";

    private static QuicSendServer StartAnonymousServer()
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        return new QuicSendServer(new QuicSendServerOptions { Transport = o, AllowAnonymous = true });
    }

    private static Task Serve(QuicSendServer server, byte[] large, CancellationToken ct) => Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
            {
                _ = Task.Run(async () =>
                {
                    using (req)
                    {
                        if (req.Path == "/hello") await req.RespondAsync(200, null, "hello from quicsend\n", cancellationToken: ct);
                        else if (req.Path == "/large") await req.RespondAsync(200, null, large, cancellationToken: ct);
                        else if (req.Path == "/echo") await req.RespondAsync(200, null, await req.ReadBodyAsync(cancellationToken: ct), cancellationToken: ct);
                        else await req.RespondAsync(404, null, $"no such path: {req.Method} {req.Path}", cancellationToken: ct);
                    }
                }, ct);
            }
        }
        catch (OperationCanceledException) { }
    }, ct);

    private static (int Exit, string Output) RunClient(string args)
    {
        Assert.That(File.Exists(Client), Is.True, $"{Client} is missing: run ./build.sh, which installs Debian's ngtcp2-client for this test.");
        var psi = new ProcessStartInfo(Client, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill();
            Assert.Fail("ngtcp2's client did not finish within 60 s");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Test]
    public async Task NgTcp2sHttp3ClientGetsAndPostsToOurServer()
    {
        var large = Echo.RandomBytes(8 << 20, 77);
        await using var server = StartAnonymousServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var serving = Serve(server, large, cts.Token);
        var port = server.LocalEndPoint.Port;
        var dir = Directory.CreateTempSubdirectory("quicsend-interop-");
        try
        {
            var upload = Path.Combine(dir.FullName, "upload.bin");
            var uploadBytes = Echo.RandomBytes(300_000, 78);
            await File.WriteAllBytesAsync(upload, uploadBytes);
            var common = $"-q --no-quic-dump --no-http-dump --exit-on-all-streams-close --download={dir.FullName}/ 127.0.0.1 {port}";

            var (exit, output) = RunClient($"{common} https://localhost:{port}/hello https://localhost:{port}/large");
            Assert.That(exit, Is.EqualTo(0), output);
            Assert.That(await File.ReadAllTextAsync(Path.Combine(dir.FullName, "hello")), Is.EqualTo("hello from quicsend\n"));
            Assert.That(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(dir.FullName, "large"))), Is.EqualTo(SHA256.HashData(large)));

            (exit, output) = RunClient($"-d {upload} {common} https://localhost:{port}/echo");
            Assert.That(exit, Is.EqualTo(0), output);
            Assert.That(await File.ReadAllBytesAsync(Path.Combine(dir.FullName, "echo")), Is.EqualTo(uploadBytes));
        }
        finally
        {
            cts.Cancel();
            dir.Delete(recursive: true);
        }
    }

    private const string Server = "/usr/sbin/gtlsserver";

    /// <summary>Our client against ngtcp2's HTTP/3 example server (Debian ngtcp2-server), with and without loss.</summary>
    [TestCase(0.0)]
    [TestCase(0.03)]
    public async Task OurClientDownloadsFromNgTcp2sHttp3Server(double serverTxLoss)
    {
        Assert.That(File.Exists(Server), Is.True, $"{Server} is missing: run ./build.sh, which installs Debian's ngtcp2-server for this test.");
        var dir = Directory.CreateTempSubdirectory("quicsend-interop-srv-");
        Process? server = null;
        try
        {
            var blob = Echo.RandomBytes(16 << 20, 79);
            Directory.CreateDirectory(Path.Combine(dir.FullName, "htdocs"));
            await File.WriteAllBytesAsync(Path.Combine(dir.FullName, "htdocs", "blob.bin"), blob);
            TestPki.Server.Save(Path.Combine(dir.FullName, "server.pem"), Path.Combine(dir.FullName, "server.key"));
            int port;
            using (var probe = new System.Net.Sockets.UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)))
                port = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
            var loss = serverTxLoss.ToString(System.Globalization.CultureInfo.InvariantCulture);
            server = Process.Start(new ProcessStartInfo(Server,
                $"-q -t {loss} -d {dir.FullName}/htdocs 127.0.0.1 {port} {dir.FullName}/server.key {dir.FullName}/server.pem")
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            _ = server.StandardOutput.ReadToEndAsync();
            _ = server.StandardError.ReadToEndAsync();

            var o = TestPki.ClientOptions();
            o.AlpnProtocols.Clear();
            o.ConnectTimeout = TimeSpan.FromSeconds(3);
            QuicSendClient? client = null;
            for (int attempt = 0; client is null; attempt++)
            {
                try
                {
                    client = await QuicSendClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port),
                        new QuicSendClientOptions { Transport = o, ServerName = "localhost" });
                }
                catch (QuicException) when (attempt < 5 && !server.HasExited) { }
            }
            await using (client)
            {
                var sw = Stopwatch.StartNew();
                using var resp = await client.SendAsync("GET", "/blob.bin", null, null, null);
                Assert.That(resp.Status, Is.EqualTo(200));
                var got = await resp.ReadBodyAsync();
                Assert.That(SHA256.HashData(got), Is.EqualTo(SHA256.HashData(blob)), "16 MiB from ngtcp2's server, SHA-256");
                var stats = (await client.Connection).GetStats();
                TestContext.Out.WriteLine($"loss {loss}: 16 MiB in {sw.Elapsed.TotalSeconds:0.00} s, {stats.LostPackets} packets lost (ours), rtt {stats.RoundTripTime.TotalMilliseconds:0.0} ms");
            }
        }
        finally
        {
            if (server is { HasExited: false }) server.Kill();
            server?.Dispose();
            dir.Delete(recursive: true);
        }
    }
}
