using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class TransferTests
{
    [TestCase("127.0.0.1", true)]
    [TestCase("::1", true)]
    [TestCase("127.0.0.1", false)]
    public async Task Echo64MiBOnOneStreamArrivesIntact(string address, bool batchedIo)
    {
        var options = TestPki.ServerOptions(address);
        options.UseBatchedIo = batchedIo;
        using var server = QuicEndpoint.Listen(options);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var serving = Echo.ServeAsync(server, cts.Token);

        var clientOptions = TestPki.ClientOptions();
        clientOptions.UseBatchedIo = batchedIo;
        clientOptions.LocalEndPoint = new IPEndPoint(IPAddress.Parse(address), 0);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var stream = await conn.OpenStreamAsync(cancellationToken: cts.Token);

        var data = Echo.RandomBytes(64 << 20, seed: 1);
        var sw = Stopwatch.StartNew();
        var (hash, bytes) = await Echo.RoundTripAsync(stream, data);
        sw.Stop();

        Assert.That(bytes, Is.EqualTo(data.Length));
        Assert.That(hash, Is.EqualTo(SHA256.HashData(data)), "SHA-256 of the echo differs from what was sent");
        var stats = conn.GetStats();
        TestContext.Out.WriteLine($"{address} batched={batchedIo}: 64 MiB echoed in {sw.Elapsed.TotalSeconds:0.00} s " +
            $"({2 * 64 / sw.Elapsed.TotalSeconds:0} MiB/s both ways), rtt {stats.RoundTripTime.TotalMicroseconds:0} us, mtu {stats.Mtu}, lost {stats.LostPackets}");
        cts.Cancel();
    }

    [Test]
    public async Task SixteenConcurrentStreamsEachArriveIntact()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);

        var work = Enumerable.Range(0, 16).Select(async i =>
        {
            var data = Echo.RandomBytes((2 << 20) + i * 4099, seed: 100 + i);
            var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
            var (hash, bytes) = await Echo.RoundTripAsync(s, data, chunk: 64 * 1024);
            return (expected: SHA256.HashData(data), hash, bytes, length: data.Length);
        }).ToArray();
        var results = await Task.WhenAll(work);

        for (int i = 0; i < results.Length; i++)
        {
            Assert.That(results[i].bytes, Is.EqualTo(results[i].length), $"stream {i} length");
            Assert.That(results[i].hash, Is.EqualTo(results[i].expected), $"stream {i} SHA-256");
        }
        cts.Cancel();
    }

    [Test]
    public async Task StreamsBeyondThePeersLimitWaitInsteadOfFailing()
    {
        var serverOptions = TestPki.ServerOptions();
        serverOptions.MaxBidirectionalStreams = 2;
        using var server = QuicEndpoint.Listen(serverOptions);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);

        var work = Enumerable.Range(0, 8).Select(async i =>
        {
            var data = Echo.RandomBytes(100_000 + i, seed: i);
            await using var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
            var (hash, _) = await Echo.RoundTripAsync(s, data);
            return hash.SequenceEqual(SHA256.HashData(data));
        });
        Assert.That(await Task.WhenAll(work), Is.All.True);
        cts.Cancel();
    }

    [Test]
    public async Task AbortingAStreamReachesThePeerWithItsCode()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var connecting = client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var serverConn = await server.AcceptAsync(cts.Token);
        var conn = await connecting;

        var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        await s.WriteAsync(new byte[1000], cts.Token);
        var peer = await serverConn.AcceptStreamAsync(cts.Token);
        var buf = new byte[1000];
        int got = 0;
        while (got < 1000) got += await peer.ReadAsync(buf.AsMemory(got), cts.Token);
        s.Abort(42);

        var e = Assert.ThrowsAsync<QuicException>(async () => { while (await peer.ReadAsync(buf, cts.Token) > 0) { } });
        Assert.That(e!.Error, Is.EqualTo(QuicError.StreamAborted));
        Assert.That(e.ErrorCode, Is.EqualTo(42));
    }

    [Test]
    public async Task ClosingAConnectionTellsThePeerTheCodeAndReason()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var connecting = client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var serverConn = await server.AcceptAsync(cts.Token);
        var conn = await connecting;

        await conn.CloseAsync(7, "bye now");
        var reason = await serverConn.Closed.WaitAsync(cts.Token);
        Assert.That(reason.ErrorCode, Is.EqualTo(7));
        Assert.That(reason.Message, Does.Contain("bye now"));
        Assert.ThrowsAsync<QuicException>(async () => await serverConn.AcceptStreamAsync(cts.Token));
    }
}
