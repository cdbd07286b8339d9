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
}
