using System.Net;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Defects of the HTTP layer (issue 8): a body checked against its content-length and never
/// preallocated from it, options left as the caller gave them, and a server restart surfacing
/// as a QuicException to an old client.
/// </summary>
[TestFixture]
[NonParallelizable]
public class HttpDefectTests
{
    private static CancellationTokenSource Deadline(int seconds = 30) => new(TimeSpan.FromSeconds(seconds));

    /// <summary>Answers every request with <paramref name="sent"/> bytes under a declared content-length of <paramref name="declared"/>.</summary>
    private static Task ServeDeclaringAsync(QuicSendServer server, long declared, int sent, CancellationToken ct) => Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
            {
                using (req)
                {
                    await req.ReadBodyAsync(cancellationToken: ct);
                    await req.RespondStreamingAsync(200, null, async s =>
                    {
                        await s.WriteAsync(Echo.RandomBytes(sent, 5), ct);
                        return [new("x-sent", sent.ToString())];
                    }, ct, contentLength: declared);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or QuicException) { }
    }, ct);

    [TestCase(100, 10)]
    [TestCase(5, 10)]
    public async Task ABodyThatDisagreesWithItsContentLengthIsAnErrorNamingBothNumbers(long declared, int sent)
    {
        using var cts = Deadline();
        await using var server = HttpTests.StartServer();
        var serving = ServeDeclaringAsync(server, declared, sent, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        using var resp = await client.RequestAsync("/declared", null, "x", cts.Token);
        Assert.That(resp.ContentLength, Is.EqualTo(declared));
        var e = Assert.ThrowsAsync<InvalidDataException>(async () => await resp.ReadBodyAsync(cancellationToken: cts.Token));
        Assert.That(e!.Message, Does.Contain(declared.ToString()).And.Contain(sent.ToString()), e.Message);
        cts.Cancel();
    }

    [Test]
    public async Task ADeclaredContentLengthIsNotAllocatedBeforeTheBytesArrive()
    {
        // A peer declaring 1 GiB (the default maximum) and sending 10 bytes must not cost 1 GiB of memory.
        using var cts = Deadline();
        await using var server = HttpTests.StartServer();
        var serving = ServeDeclaringAsync(server, 1L << 30, 10, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        using var resp = await client.RequestAsync("/declared", null, "x", cts.Token);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        try
        {
            await resp.ReadBodyAsync(cancellationToken: cts.Token);
        }
        catch (InvalidDataException)
        {
            // 10 bytes against 1 GiB declared: the mismatch is the other test's subject.
        }
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.That(allocated, Is.LessThan(64L << 20), $"{allocated >> 20} MiB allocated to read a 10-byte body");
        cts.Cancel();
    }

    [Test]
    public async Task ABodyMatchingItsContentLengthIsReadWhole()
    {
        using var cts = Deadline();
        await using var server = HttpTests.StartServer();
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        var payload = Echo.RandomBytes(3_000_000, 8);
        using var resp = await client.RequestAsync("/whole", null, payload, cts.Token);
        Assert.That(resp.ContentLength, Is.EqualTo(payload.Length));
        Assert.That(await resp.ReadBodyAsync(cancellationToken: cts.Token), Is.EqualTo(payload));
        cts.Cancel();
    }

    [Test]
    public async Task AStreamedResponseWithoutTrailersEndsCleanly()
    {
        // RespondStreamingAsync whose writer returns no trailers: the body simply ends (HTTP/3 has no empty trailer section).
        using var cts = Deadline();
        await using var server = HttpTests.StartServer();
        var body = Echo.RandomBytes(100_000, 9);
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                using (req)
                    await req.RespondStreamingAsync(200, null, async s =>
                    {
                        await s.WriteAsync(body, cts.Token);
                        return [];
                    }, cts.Token, contentLength: body.Length);
        });
        await using var client = await HttpTests.ConnectAsync(server);
        using var resp = await client.RequestAsync("/no-trailers", null, "x", cts.Token);
        Assert.That(await resp.ReadBodyAsync(cancellationToken: cts.Token), Is.EqualTo(body));
        Assert.That(await resp.ReadTrailersAsync(cts.Token), Is.Empty);
        Assert.That(serving.IsFaulted, Is.False, () => $"the server's handler failed: {serving.Exception}");
        cts.Cancel();
    }

    [Test]
    public async Task ServerOptionsReusedForTwoServersAreLeftAsGiven()
    {
        using var cts = Deadline();
        var transport = TestPki.ServerOptions();
        transport.AlpnProtocols.Clear();
        var alpn = transport.AlpnProtocols;
        var options = new QuicSendServerOptions { Transport = transport, Tokens = [HttpTests.Token] };
        await using var first = new QuicSendServer(options);
        await using var second = new QuicSendServer(options);
        Assert.That(transport.Http3, Is.False, "Http3 is the server's own setting, not written into the caller's options");
        Assert.That(transport.AlpnProtocols, Is.SameAs(alpn));
        Assert.That(transport.AlpnProtocols, Is.Empty, "\"h3\" is not added to the caller's list");
        Assert.That(options.Transport, Is.SameAs(transport));
        foreach (var server in new[] { first, second })
        {
            var serving = HttpTests.ServeEchoAsync(server, cts.Token);
            await using var client = await HttpTests.ConnectAsync(server);
            using var r = await client.RequestAsync("/reuse", null, "ok", cts.Token);
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo("ok"), "each server built from the shared options serves");
        }
        cts.Cancel();
    }

    [Test]
    public async Task ClientOptionsReusedForTwoClientsAreLeftAsGiven()
    {
        using var cts = Deadline();
        await using var server = HttpTests.StartServer();
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        var transport = TestPki.ClientOptions();
        transport.AlpnProtocols.Clear();
        var options = new QuicSendClientOptions { Transport = transport, Token = HttpTests.Token, ServerName = "localhost" };
        for (int i = 0; i < 2; i++)
        {
            await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, options, cts.Token);
            using var r = await client.RequestAsync("/reuse", null, $"client {i}", cts.Token);
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo($"client {i}"));
            Assert.That(transport.Http3, Is.False, "Http3 is not written into the caller's options");
            Assert.That(transport.AlpnProtocols, Is.Empty, "\"h3\" is not added to the caller's list");
        }
        cts.Cancel();
    }

    [Test]
    public async Task AServerRestartOnTheSamePortFailsAnOldClientsReadsWithAQuicExceptionAndItsNextRequestReconnects()
    {
        using var cts = Deadline(60);
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        var first = new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token] });
        var port = first.LocalEndPoint;
        var bodyStarted = new TaskCompletionSource();
        // The first server starts a long body and never finishes it.
        var serving = Task.Run(async () =>
        {
            try
            {
                await foreach (var req in first.AcceptRequestsAsync(cts.Token))
                {
                    if (req.Path == "/unanswered") continue; // left waiting for its response headers
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await req.RespondStreamingAsync(200, null, async s =>
                            {
                                await s.WriteAsync(new byte[1000], cts.Token);
                                bodyStarted.TrySetResult();
                                await Task.Delay(Timeout.Infinite, cts.Token);
                                return [];
                            }, cts.Token, contentLength: 1_000_000);
                        }
                        catch (Exception) { }
                    });
                }
            }
            catch (Exception) { }
        });
        await using var client = await HttpTests.ConnectAsync(first);
        using var resp = await client.RequestAsync("/in-flight", null, "x", cts.Token);
        var reading = resp.ReadBodyAsync(cancellationToken: cts.Token).AsTask();
        await bodyStarted.Task.WaitAsync(cts.Token);
        var unanswered = client.RequestAsync("/unanswered", null, "w", cts.Token);

        // Restart: the old server goes away at once (Dispose: no drain) and a new one listens on the same port.
        first.Dispose();
        var o2 = TestPki.ServerOptions();
        o2.AlpnProtocols.Clear();
        o2.ListenEndPoint = new IPEndPoint(port.Address, port.Port);
        await using var second = new QuicSendServer(new QuicSendServerOptions { Transport = o2, Tokens = [HttpTests.Token] });
        var servingSecond = HttpTests.ServeEchoAsync(second, cts.Token);

        var readError = Assert.CatchAsync<Exception>(async () => await reading);
        // Long enough for the client to drain the closed connection: later calls find it gone from the engine.
        await Task.Delay(3000, cts.Token);
        Assert.That(readError, Is.InstanceOf<QuicException>(), $"the read in flight: {readError}");
        Assert.That(((QuicException)readError!).Error, Is.EqualTo(QuicError.ConnectionClosed), readError.Message);
        Assert.That(readError!.Message, Does.Contain("connection").IgnoreCase, readError.Message);
        // The old client's next read fails the same way.
        var again = Assert.CatchAsync<Exception>(async () => await resp.Body.ReadAsync(new byte[100], cts.Token));
        Assert.That(again, Is.InstanceOf<QuicException>(), $"a read after the close: {again}");
        // A new request of the old client reaches the new server: the pool replaced the closed connection.
        using (var next = await client.RequestAsync("/after-restart", null, "y", cts.Token))
            Assert.That(await next.ReadTextAsync(cts.Token), Is.EqualTo("y"), "the old client's next request, served by the new server");
        var trailers = Assert.CatchAsync<Exception>(async () => await resp.ReadTrailersAsync(cts.Token));
        Assert.That(trailers, Is.InstanceOf<QuicException>(), $"trailers after the close: {trailers}");
        Assert.That(((QuicException)trailers!).Error, Is.EqualTo(QuicError.ConnectionClosed), trailers.Message);
        var waiting = Assert.CatchAsync<Exception>(async () => await unanswered);
        Assert.That(waiting, Is.InstanceOf<QuicException>(), $"a request waiting for its response: {waiting}");
        Assert.That(((QuicException)waiting!).Error, Is.AnyOf(QuicError.ConnectionClosed, QuicError.StreamAborted), waiting.Message);

        // A new client is served by the new server.
        await using var fresh = await HttpTests.ConnectAsync(second);
        using var ok = await fresh.RequestAsync("/fresh", null, "z", cts.Token);
        Assert.That(await ok.ReadTextAsync(cts.Token), Is.EqualTo("z"));
        cts.Cancel();
    }
}
