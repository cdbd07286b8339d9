using System.Collections.Concurrent;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// The thread-safety claims of docs/architecture.md §6, each exercised from many threads at once: a client's requests, a
/// server's polling, a stream's one read beside one write (and a second read refused), disposal of everything at once.
/// </summary>
[TestFixture]
[NonParallelizable]
public class ThreadSafetyTests
{
    [Test]
    public async Task OneClientTakesRequestsFromManyThreadsAtOnce()
    {
        await using var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        var answered = new ConcurrentBag<int>();
        // Eight threads, sixteen requests each, all through the one client object.
        await Parallel.ForEachAsync(Enumerable.Range(0, 128), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cts.Token },
            async (i, ct) =>
            {
                var body = Echo.RandomBytes(1000 + i * 97, seed: i);
                using var r = await client.RequestAsync($"/t/{i}", $"{i}", body, ct);
                Assert.That(r.Status, Is.EqualTo(200));
                Assert.That(SHA256.HashData(await r.ReadBodyAsync(cancellationToken: ct)), Is.EqualTo(SHA256.HashData(body)), $"request {i}");
                answered.Add(i);
            });
        Assert.That(answered.Order(), Is.EqualTo(Enumerable.Range(0, 128)), "every request answered once, with its own body");
        cts.Cancel();
        await serving;
    }

    [Test]
    public async Task PollingFromTwoThreadsDeliversEachRequestOnce()
    {
        await using var server = HttpTests.StartServer();
        await using var client = await HttpTests.ConnectAsync(server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new ConcurrentBag<string>();
        var pollers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!cts.IsCancellationRequested)
                server.Poll(null, null, r =>
                {
                    seen.Add(r.Path);
                    server.Respond(r.ConnectionId, r.RequestId, 200, null, QuicSendBody.FromText("ok"));
                }, 50);
        })).ToArray();
        var requests = Enumerable.Range(0, 50).Select(async i =>
        {
            using var r = await client.RequestAsync($"/p/{i}", null, null, cts.Token);
            Assert.That(r.Status, Is.EqualTo(200));
        });
        await Task.WhenAll(requests);
        cts.Cancel();
        await Task.WhenAll(pollers);
        Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(0, 50).Select(i => $"/p/{i}").Order()), "each request reached exactly one poller");
    }

    [Test]
    public async Task AStreamTakesOneReadBesideOneWriteAndRefusesASecondReadClearly()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var echo = await EchoStream.OpenAsync(cts.Token);
        var s = echo.Stream;

        var buffer = new byte[4];
        var pending = s.ReadAsync(buffer, cts.Token);             // waits: nothing sent yet
        var e = Assert.ThrowsAsync<InvalidOperationException>(async () => await s.ReadAsync(new byte[4], cts.Token));
        Assert.That(e!.Message, Does.Contain($"Another read of stream {s.Id} is already in progress"));
        await Task.Run(() => s.WriteAsync(new byte[] { 1, 2, 3, 4 }, cts.Token).AsTask()); // a write from another thread meanwhile
        int n = await pending;
        Assert.That(buffer[..n], Is.EqualTo(new byte[] { 1, 2, 3, 4 }[..n]), "the pending read got the echo");
    }

    [Test]
    public async Task AStreamRefusesASecondWriteWithoutTouchingThePendingOne()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var echo = await EchoStream.OpenAsync(cts.Token);
        var s = echo.Stream;
        var echoed = Task.Run(async () =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[1 << 20];
            int n;
            while ((n = await s.ReadAsync(buf, cts.Token)) > 0) sha.AppendData(buf, 0, n);
            return sha.GetHashAndReset();
        });

        // More than the stream's window: the write stays pending while the echo drains it.
        var data = Echo.RandomBytes(96 << 20, seed: 7);
        var first = s.WriteAsync(data, cts.Token);
        Assert.That(first.IsCompleted, Is.False, "the first write is still in progress");
        var e = Assert.ThrowsAsync<InvalidOperationException>(async () => await s.WriteAsync(new byte[1000], cts.Token));
        Assert.That(e!.Message, Does.Contain($"Another write to stream {s.Id} is already in progress"));
        await first;
        s.CompleteWrites();
        Assert.That(await echoed, Is.EqualTo(SHA256.HashData(data)), "the pending write sent its own bytes, all of them");
    }

    [Test]
    public async Task DisposingEverythingFromManyThreadsAtOnceIsSafeAndIdempotent()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        for (int round = 0; round < 5; round++)
        {
            var server = HttpTests.StartServer();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var serving = HttpTests.ServeEchoAsync(server, cts.Token);
            var client = await HttpTests.ConnectAsync(server);
            using var r = await client.RequestAsync("/x", null, "hello", cts.Token);
            var body = r.Body;

            // Sixteen threads released together, each disposing the response, its body, the client and the server.
            using var start = new Barrier(16);
            var threads = Enumerable.Range(0, 16).Select(i => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                switch (i % 4)
                {
                    case 0: r.Dispose(); break;
                    case 1: body.Dispose(); break;
                    case 2: client.Dispose(); break;
                    default: server.Dispose(); break;
                }
                r.Dispose();
                client.DisposeAsync().AsTask().GetAwaiter().GetResult();
                server.Dispose();
            }, TaskCreationOptions.LongRunning)).ToArray();
            await Task.WhenAll(threads).WaitAsync(TimeSpan.FromSeconds(20));
            cts.Cancel();
            await serving;
        }
        Assert.That(await LiveObjectsSettleAsync(before), Is.EqualTo(before), "every native object released");
    }

    /// <summary>A stream to an echo server on loopback; disposing it stops the server and both endpoints.</summary>
    private sealed class EchoStream : IAsyncDisposable
    {
        private readonly QuicEndpoint _server, _client;
        private readonly CancellationTokenSource _stop;
        private readonly Task _serving;

        private EchoStream(QuicEndpoint server, QuicEndpoint client, Task serving, CancellationTokenSource stop)
            => (_server, _client, _serving, _stop) = (server, client, serving, stop);

        public QuicStream Stream { get; private set; } = null!;

        public static async Task<EchoStream> OpenAsync(CancellationToken ct)
        {
            var server = QuicEndpoint.Listen(TestPki.ServerOptions());
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var e = new EchoStream(server, QuicEndpoint.CreateClient(TestPki.ClientOptions()), Echo.ServeAsync(server, stop.Token), stop);
            var conn = await e._client.ConnectAsync(server.LocalEndPoint, "localhost", ct);
            e.Stream = await conn.OpenStreamAsync(cancellationToken: ct);
            return e;
        }

        public async ValueTask DisposeAsync()
        {
            Stream?.Dispose();
            _stop.Cancel();
            await _serving;
            _client.Dispose();
            _server.Dispose();
            _stop.Dispose();
        }
    }

    private static async Task<long> LiveObjectsSettleAsync(long expected)
    {
        for (int i = 0; i < 100 && QuicEndpoint.LiveNativeObjects != expected; i++) await Task.Delay(50);
        return QuicEndpoint.LiveNativeObjects;
    }
}
