using System.Diagnostics;
using System.Net;
using QuicSend.Http;

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
