using System.Diagnostics;
using System.Net;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// A client outlives a server restart: its closed connections are replaced by new ones to the same address on the
/// next request, which waits for them as a connect would (bounded by the connect timeout).
/// </summary>
[TestFixture]
[NonParallelizable]
public class PoolReconnectTests
{
    private static QuicSendServer StartOn(int port)
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        o.ListenEndPoint = new IPEndPoint(IPAddress.Loopback, port);
        return new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token] });
    }

    [TestCase(1)]
    [TestCase(3)]
    public async Task AClientReconnectsAfterTheServerRestartsOnTheSamePort(int connections)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var first = StartOn(0);
        int port = first.LocalEndPoint.Port;
        var echo = HttpTests.ServeEchoAsync(first, cts.Token);
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        await using var client = await QuicSendClient.ConnectAsync(first.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = o, Token = HttpTests.Token, ServerName = "localhost", Connections = connections,
        });
        using (var r = await client.RequestAsync("/before", null, "one", cts.Token))
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo("one"));

        await first.DisposeAsync(); // closes every connection, telling the client
        var closed = await Task.WhenAll(client.Pool.Members.Select(m => m.Connecting.Result.Closed)).WaitAsync(TimeSpan.FromSeconds(15));
        Assert.That(client.ActiveConnections, Is.Empty.Or.Count.LessThan(connections), "the old connections are gone");

        await using var second = StartOn(port);
        var echo2 = HttpTests.ServeEchoAsync(second, cts.Token);
        var sw = Stopwatch.StartNew();
        using (var r = await client.RequestAsync("/after", null, "two", cts.Token))
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo("two"), "the same client object reached the restarted server");
        TestContext.Out.WriteLine($"first request after the restart answered in {sw.ElapsedMilliseconds} ms; the old connections closed with: {closed[0].Message}");
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        // Soon every slot of the pool is back.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (client.ActiveConnections.Count < connections && DateTime.UtcNow < until) await Task.Delay(100);
        Assert.That(client.ActiveConnections, Has.Count.EqualTo(connections), "every connection of the pool was replaced");
        cts.Cancel();
    }

    /// <summary>
    /// A `quicsend serve` process killed (SIGKILL: it tells nobody) and started again on the same port. Its clients'
    /// connections are unknown to the new process, which answers their next packets with a stateless reset (the token
    /// comes from the server's key, the same after the restart): a GET goes through on a new connection at once, a POST
    /// fails at once naming the restart, instead of both waiting out the 30 s idle timeout.
    /// </summary>
    [Test]
    public async Task ClientsOfAKilledAndRestartedServerLearnItAtOnceNotAfterTheIdleTimeout()
    {
        var work = Directory.CreateTempSubdirectory("quicsend-restart-");
        try
        {
            var data = Directory.CreateDirectory(Path.Combine(work.FullName, "data")).FullName;
            var payload = Echo.RandomBytes(100_000, 5);
            File.WriteAllBytes(Path.Combine(data, "small.bin"), payload);
            using (var init = new DotnetProcess("quicsend certs", CliTests.CliDll(), ["certs", "init"], work.FullName))
                Assert.That(await init.WaitForExitAsync(TimeSpan.FromSeconds(30)), Is.Zero, init.Errors);
            int port = CliTests.FreeUdpPort();
            DotnetProcess Serve() => new("quicsend serve", CliTests.CliDll(), ["serve", "./data", "--port", port.ToString()], work.FullName, HttpTests.Token);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            var server = Serve();
            try
            {
                await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
                await using var client = await QuicSendClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), new QuicSendClientOptions
                {
                    Transport = new QuicClientOptions { TrustedRootPaths = { Path.Combine(work.FullName, "root.pem") } }, // idle timeout 30 s
                    Token = HttpTests.Token, ServerName = "localhost", Connections = 2,
                });
                async Task<byte[]> GetAsync()
                {
                    using var r = await client.SendAsync("GET", "/files/small.bin", null, null, null, cts.Token);
                    Assert.That(r.Status, Is.EqualTo(200));
                    return await r.ReadBodyAsync(cancellationToken: cts.Token);
                }
                Assert.That(await GetAsync(), Is.EqualTo(payload));

                server.Dispose(); // SIGKILL
                server = Serve();
                await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
                var sw = Stopwatch.StartNew();
                Assert.That(await GetAsync(), Is.EqualTo(payload), "the GET after the restart");
                TestContext.Out.WriteLine($"the first GET after the restart was answered in {sw.ElapsedMilliseconds} ms");
                Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "not the 30 s idle timeout");

                server.Dispose();
                server = Serve();
                await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
                sw.Restart();
                var e = Assert.CatchAsync<QuicException>(async () =>
                {
                    using var r = await client.RequestAsync("/rpc", null, "not sent twice", cts.Token);
                    await r.ReadBodyAsync(cancellationToken: cts.Token);
                });
                TestContext.Out.WriteLine($"a POST after the second restart failed in {sw.ElapsedMilliseconds} ms: {e!.Message}");
                Assert.That(e.Error, Is.EqualTo(QuicError.ConnectionReset), e.Message);
                Assert.That(e.Message, Does.Contain("stateless reset").And.Contain("Connect again"));
                Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
                Assert.That(await GetAsync(), Is.EqualTo(payload), "and the client is served again");
            }
            finally
            {
                server.Dispose(); // whichever process runs now: a failed assertion must not leave it behind
            }
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    [Test]
    public async Task WithTheServerGoneARequestFailsClearlyWithinTheConnectTimeout()
    {
        var server = StartOn(0);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var echo = HttpTests.ServeEchoAsync(server, cts.Token);
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        o.ConnectTimeout = TimeSpan.FromSeconds(2);
        await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = o, Token = HttpTests.Token, ServerName = "localhost", Connections = 2,
        });
        await server.DisposeAsync();
        await Task.WhenAll(client.Pool.Members.Select(m => m.Connecting.Result.Closed)).WaitAsync(TimeSpan.FromSeconds(15));
        var sw = Stopwatch.StartNew();
        var e = Assert.CatchAsync<QuicException>(async () => await client.RequestAsync("/x", null, "hi", cts.Token));
        TestContext.Out.WriteLine($"{sw.ElapsedMilliseconds} ms: {e!.Message}");
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2 + 3)), "the request waited at most about the connect timeout");
        cts.Cancel();
    }
}
