using System.Diagnostics;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class LimitsTests
{
    [Test]
    public async Task ServersValidateAddressesWithRetryByDefaultAndClientsGetThrough()
    {
        var options = TestPki.ServerOptions();
        Assert.That(options.RequireAddressValidation, Is.True, "Retry must be on by default");
        using var server = QuicEndpoint.Listen(options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        for (int i = 0; i < 3; i++)
        {
            var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
            var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
            var data = Echo.RandomBytes(50_000, i);
            var (hash, _) = await Echo.RoundTripAsync(s, data);
            Assert.That(hash, Is.EqualTo(System.Security.Cryptography.SHA256.HashData(data)));
        }
        var stats = server.GetStats();
        Assert.That(stats.RetriesSent, Is.EqualTo(3), "one Retry per new connection");
        Assert.That(stats.Connections, Is.EqualTo(3), "each connection accepted after its Retry");
        cts.Cancel();
    }

    [Test]
    public async Task ConnectionsBeyondTheLimitAreRefusedWithAClearError()
    {
        var options = TestPki.ServerOptions();
        options.MaxConnections = 1;
        using var server = QuicEndpoint.Listen(options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var first = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        await first.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        using var second = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<QuicException>(async () => await second.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token));
        clock.Stop();
        Assert.That(e!.Error, Is.EqualTo(QuicError.HandshakeFailed));
        Assert.That(e.HandshakeFailure, Is.EqualTo(HandshakeFailure.Refused));
        Assert.That(e.Message, Does.Contain("connection limit").And.Contain("MaxConnections"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)), "refused at once, not after a timeout");
        Assert.That(server.GetStats().Refused, Is.GreaterThanOrEqualTo(1));
        cts.Cancel();
    }

    [Test]
    public async Task ABodyOverTheLimitIsRefusedWith413()
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token], MaxRequestBodySize = 1000 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        using (var r = await client.RequestAsync("/big", null, new byte[5000], cts.Token))
        {
            Assert.That(r.Status, Is.EqualTo(413));
            Assert.That(await r.ReadTextAsync(cts.Token), Does.Contain("at most 1000"));
        }
        using (var ok = await client.RequestAsync("/small", null, new byte[500], cts.Token))
            Assert.That(ok.Status, Is.EqualTo(200), "the connection keeps serving requests within the limit");
        cts.Cancel();
    }

    [Test]
    public async Task AHeaderSectionOverTheServersLimitIsRefusedClearly()
    {
        // Through the product's client: quiche's client does not check the server's SETTINGS before sending, so
        // the section reaches the server, which refuses that request's stream alone.
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        o.MaxHeaderSectionSize = 4096;
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token] });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        using (var warm = await client.RequestAsync("/warm", null, "x", cts.Token)) Assert.That(warm.Status, Is.EqualTo(200));

        var huge = new string('x', 8000);
        var e = Assert.ThrowsAsync<QuicException>(async () => await client.RequestAsync("/huge", huge, "x", cts.Token));
        Assert.That(e!.ErrorCode, Is.EqualTo((long)Http3Errors.ExcessiveLoad), e.Message);
        Assert.That(e.Message, Does.Contain("H3_EXCESSIVE_LOAD"));
        using var after = await client.RequestAsync("/after", "small", "y", cts.Token);
        Assert.That(after.Status, Is.EqualTo(200), "the same connection serves the next request");
        cts.Cancel();
    }

    [Test]
    public async Task AHeaderSectionOverTheServersLimitSentRawIsRefusedOnItsStreamOnly()
    {
        // The server's own enforcement, whatever the client checks: a raw client sends 8000 bytes of field
        // section to a server accepting 4096 and gets its stream reset with H3_EXCESSIVE_LOAD; the connection,
        // a request already open beside it and the next request all carry on.
        await using var server = RawH3.StartServer(4096);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        await using var c = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        var beside = await c.SendAsync(RawH3.RequestHeaders("POST", "/beside", c.Authority, contentLength: 3), fin: false, cts.Token);
        var huge = RawH3.RequestHeaders("POST", "/huge", c.Authority, headerInfo: new string('x', 8000), contentLength: 1);
        using (var refused = await c.SendAsync(RawH3.Concat(huge, RawH3.Data([1])), fin: true, cts.Token))
        {
            var e = Assert.ThrowsAsync<QuicException>(async () => await RawH3.ReadToEndAsync(refused, cts.Token));
            Assert.That(e!.Error, Is.EqualTo(QuicError.StreamAborted), e.Message);
            Assert.That(e.ErrorCode, Is.EqualTo((long)Http3Errors.ExcessiveLoad), e.Message);
        }
        await beside.WriteAsync(RawH3.Data([7, 8, 9]), completeWrites: true, cts.Token);
        var besideResponse = await RawH3.ReadResponseAsync(beside, cts.Token);
        Assert.That(besideResponse.Status, Is.EqualTo(200));
        Assert.That(besideResponse.Body, Is.EqualTo(new byte[] { 7, 8, 9 }), "the request open beside it is answered");
        var next = await c.ExchangeAsync("POST", "/next", [1, 2], null, cts.Token);
        Assert.That(next.Status, Is.EqualTo(200), "the next request on the same connection");
        Assert.That(c.Connection.Closed.IsCompleted, Is.False);
        beside.Dispose();
        cts.Cancel();
    }

    [Test]
    public async Task AnIdleConnectionTimesOutAndThePollingClientIsTold()
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        o.IdleTimeout = TimeSpan.FromMilliseconds(500);
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token] });
        var co = TestPki.ClientOptions();
        co.AlpnProtocols.Clear();
        co.IdleTimeout = TimeSpan.FromMilliseconds(500);
        await using var client = new QuicSendClient(server.LocalEndPoint, new QuicSendClientOptions { Transport = co, Token = HttpTests.Token, ServerName = "localhost" });

        bool connected = false, timedOut = false;
        var sw = Stopwatch.StartNew();
        while (!timedOut && sw.Elapsed < TimeSpan.FromSeconds(10))
            client.Poll(() => connected = true, () => timedOut = true, _ => { }, 50);
        Assert.That(connected, Is.True);
        Assert.That(timedOut, Is.True, "onTimeout fires when the idle timeout closes the connection");
        var reason = await (await client.Connection).Closed;
        Assert.That(reason.Error, Is.EqualTo(QuicError.ConnectionTimedOut));
        Assert.That(reason.Message, Does.Contain("idle timeout"));

        long serverTimeouts = 0;
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (serverTimeouts == 0 && DateTime.UtcNow < deadline) server.Poll(null, _ => serverTimeouts++, null, 50);
        Assert.That(serverTimeouts, Is.EqualTo(1), "the server's onTimeout fires too");
    }
}
