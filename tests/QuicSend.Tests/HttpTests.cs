using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class HttpTests
{
    internal const string Token = "test-token-0123456789";

    internal static QuicSendServer StartServer(params string[] tokens)
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        return new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = tokens.Length > 0 ? tokens : [Token] });
    }

    internal static Task<QuicSendClient> ConnectAsync(QuicSendServer server, string? token = Token)
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        return QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions { Transport = o, Token = token, ServerName = "localhost" });
    }

    /// <summary>Answers every request by echoing its body, with header info "echo:&lt;path&gt;:&lt;info&gt;".</summary>
    internal static Task ServeEchoAsync(QuicSendServer server, CancellationToken ct) => Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
            {
                _ = Task.Run(async () =>
                {
                    using (req)
                    {
                        var body = await req.ReadBodyAsync(cancellationToken: ct);
                        var reply = req.ContentType switch
                        {
                            QuicSendHeaders.Text => QuicSendBody.FromText(System.Text.Encoding.UTF8.GetString(body)),
                            QuicSendHeaders.MessagePack => new RawBody(body, QuicSendHeaders.MessagePack),
                            _ => QuicSendBody.FromBytes(body),
                        };
                        await req.RespondAsync(200, $"echo:{req.Path}:{req.HeaderInfo}", reply, cancellationToken: ct);
                    }
                }, ct);
            }
        }
        catch (OperationCanceledException) { }
    }, ct);

    private sealed class RawBody(byte[] bytes, string type) : QuicSendBody
    {
        public override string ContentType => type;
        public override long? Length => bytes.Length;
        internal override ValueTask WriteToAsync(QuicStream stream, CancellationToken ct) => stream.WriteAsync(bytes, completeWrites: true, ct);
    }

    [Test]
    public async Task ManyConcurrentRequestsEachGetTheirOwnResponse()
    {
        await using var server = StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var serving = ServeEchoAsync(server, cts.Token);
        await using var client = await ConnectAsync(server);

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            var payload = Echo.RandomBytes(i * 37 % 5000, seed: i);
            using var resp = await client.RequestAsync($"/rpc/{i}", $"{{\"n\":{i}}}", payload, cts.Token);
            var body = await resp.ReadBodyAsync(cancellationToken: cts.Token);
            return (i, resp.Status, resp.HeaderInfo, ok: body.AsSpan().SequenceEqual(payload));
        }));
        foreach (var r in results)
        {
            Assert.That(r.Status, Is.EqualTo(200));
            Assert.That(r.HeaderInfo, Is.EqualTo($"echo:/rpc/{r.i}:{{\"n\":{r.i}}}"), "response matched to its request");
            Assert.That(r.ok, Is.True, $"body of request {r.i}");
        }
        cts.Cancel();
    }

    public sealed class Sample
    {
        public string Name { get; set; } = "";
        public int[] Values { get; set; } = [];
        public Dictionary<string, double> Weights { get; set; } = new();
    }

    [Test]
    public async Task MessagePackTextAndBytesRoundTrip()
    {
        await using var server = StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = ServeEchoAsync(server, cts.Token);
        await using var client = await ConnectAsync(server);

        var sample = new Sample { Name = "layer.0", Values = [1, 2, 3], Weights = new() { ["a"] = 0.5, ["b"] = -1.25 } };
        using (var r = await client.RequestAsync("/msgpack", null, QuicSendBody.FromMessagePack(sample), cts.Token))
        {
            Assert.That(r.ContentType, Is.EqualTo("application/msgpack"));
            var back = await r.ReadMessagePackAsync<Sample>(cts.Token);
            Assert.That(back.Name, Is.EqualTo(sample.Name));
            Assert.That(back.Values, Is.EqualTo(sample.Values));
            Assert.That(back.Weights, Is.EqualTo(sample.Weights));
        }
        using (var r = await client.RequestAsync("/text", "ünïcödé info", "héllo wörld ✓", cts.Token))
        {
            Assert.That(r.ContentType, Is.EqualTo("text/plain"));
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo("héllo wörld ✓"));
            Assert.That(r.HeaderInfo, Is.EqualTo("echo:/text:ünïcödé info"));
        }
        var bytes = Echo.RandomBytes(300_000, 9);
        using (var r = await client.RequestAsync("/bytes", null, bytes, cts.Token))
        {
            Assert.That(r.ContentType, Is.EqualTo("application/octet-stream"));
            Assert.That(r.ContentLength, Is.EqualTo(bytes.Length));
            Assert.That(await r.ReadBodyAsync(cancellationToken: cts.Token), Is.EqualTo(bytes));
        }
        cts.Cancel();
    }

    /// <summary>Deterministic bytes generated on the fly, so a large body is never held in memory.</summary>
    internal sealed class GeneratedStream(long length, int seed) : Stream
    {
        private long _pos;
        private readonly Random _rng = new(seed);
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _pos);
            _rng.NextBytes(buffer[..n]);
            _pos += n;
            return n;
        }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => ValueTask.FromResult(Read(buffer.Span));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public static byte[] Hash(long length, int seed)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var g = new GeneratedStream(length, seed);
            var buf = new byte[1 << 20];
            int n;
            while ((n = g.Read(buf)) > 0) sha.AppendData(buf, 0, n);
            return sha.GetHashAndReset();
        }
    }

    [Test]
    public async Task A512MiBResponseStreamsIntactWithoutBeingHeldInMemory()
    {
        const long size = 512L << 20;
        await using var server = StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                using (req)
                    await req.RespondAsync(200, null, QuicSendBody.FromStream(new GeneratedStream(size, 42), size), cancellationToken: cts.Token);
        }, cts.Token);
        await using var client = await ConnectAsync(server);

        GC.Collect();
        long baseline = GC.GetTotalMemory(true);
        long peak = 0;
        var sw = Stopwatch.StartNew();
        using var resp = await client.RequestAsync("/large", null, null, cts.Token);
        Assert.That(resp.ContentLength, Is.EqualTo(size));
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        long total = 0;
        int n;
        while ((n = await resp.Body.ReadAsync(buf, cts.Token)) > 0)
        {
            sha.AppendData(buf, 0, n);
            total += n;
            if ((total & ((64 << 20) - 1)) < n) peak = Math.Max(peak, GC.GetTotalMemory(false) - baseline);
        }
        sw.Stop();
        Assert.That(total, Is.EqualTo(size));
        Assert.That(sha.GetHashAndReset(), Is.EqualTo(GeneratedStream.Hash(size, 42)), "SHA-256 of the 512 MiB body");
        Assert.That(peak, Is.LessThan(64L << 20), $"managed memory grew by {peak >> 20} MiB while receiving a 512 MiB body");
        TestContext.Out.WriteLine($"512 MiB response in {sw.Elapsed.TotalSeconds:0.00} s ({size / 1048576.0 / sw.Elapsed.TotalSeconds:0} MiB/s), managed growth peak {peak >> 20} MiB");
        cts.Cancel();
    }

    [Test]
    public async Task AWrongTokenGets401AndAClosedConnectionWhileTheRightOneKeepsWorking()
    {
        await using var server = StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = ServeEchoAsync(server, cts.Token);
        await using var good = await ConnectAsync(server);
        await using var bad = await ConnectAsync(server, token: "wrong-token");

        using (var refused = await bad.RequestAsync("/rpc", null, "hi", cts.Token))
        {
            Assert.That(refused.Status, Is.EqualTo(401));
            Assert.That(await refused.ReadTextAsync(cts.Token), Does.Contain("Bearer"));
        }
        var badConn = await bad.Connection;
        var closed = await badConn.Closed.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(closed.Message, Does.Contain("unauthorized"));
        Assert.That(server.UnauthorizedRequests, Is.EqualTo(1));

        using var ok = await good.RequestAsync("/rpc", "x", "still served", cts.Token);
        Assert.That(ok.Status, Is.EqualTo(200));
        Assert.That(await ok.ReadTextAsync(cts.Token), Is.EqualTo("still served"));
        cts.Cancel();
    }

    [Test]
    public async Task GoAwayFromTheServerReachesTheClientAndTheRequestInHandIsStillAnswered()
    {
        await using var server = StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var client = await ConnectAsync(server);
        var asking = client.RequestAsync("/last", null, "in hand", cts.Token);
        await using var e = server.AcceptRequestsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.That(await e.MoveNextAsync(), Is.True);
        using var req = e.Current;
        Assert.That(client.GoAwayReceived.IsCompleted, Is.False, "no GOAWAY before the server sends one");

        server.GoAway(req.ConnectionId);
        await client.GoAwayReceived.WaitAsync(TimeSpan.FromSeconds(5));
        await req.RespondAsync(200, null, await req.ReadTextAsync(cts.Token), cancellationToken: cts.Token);
        using var resp = await asking;
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(await resp.ReadTextAsync(cts.Token), Is.EqualTo("in hand"));
    }

    [Test]
    public async Task TokensCanBeRotatedWhileServing()
    {
        await using var server = StartServer("old-token");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = ServeEchoAsync(server, cts.Token);
        server.Tokens.Add("new-token");
        await using var c1 = await ConnectAsync(server, "new-token");
        using (var r = await c1.RequestAsync("/a", null, "1", cts.Token)) Assert.That(r.Status, Is.EqualTo(200));
        server.Tokens.Remove("old-token");
        await using var c2 = await ConnectAsync(server, "old-token");
        using (var r = await c2.RequestAsync("/a", null, "1", cts.Token)) Assert.That(r.Status, Is.EqualTo(401));
        cts.Cancel();
    }

    [Test]
    public void TokenComparisonVisitsEveryTokenAndDoesNotDependOnThePrefix()
    {
        var set = new TokenSet(["alpha-secret-token", "beta-secret-token"]);
        Assert.That(set.Authorizes("Bearer beta-secret-token"), Is.True);
        Assert.That(set.Authorizes("bearer alpha-secret-token"), Is.True);
        Assert.That(set.Authorizes("Bearer alpha-secret-tokeX"), Is.False);
        Assert.That(set.Authorizes("Bearer alpha"), Is.False, "a prefix of a token is not a token");
        Assert.That(set.Authorizes(null), Is.False);
        Assert.That(set.Authorizes("Basic alpha-secret-token"), Is.False);

        // The structure that keeps timing flat: whatever is offered (the first token, the last, a near miss,
        // a prefix, nothing, another scheme), every accepted token is compared once, and only as a
        // 32-byte SHA-256 digest, so neither a match's position nor a shared prefix nor a length changes the work.
        // (Timing medians cannot show this: hashing dominates and the noise of a shared machine swamps it.)
        string[] tokens = ["t-one", "t-two-longer", "t-three", "t-four-much-longer-than-the-rest"];
        var compared = new List<(int, int)>();
        var counted = new TokenSet(tokens)
        {
            DigestsEqual = (a, b) =>
            {
                compared.Add((a.Length, b.Length));
                return a.AsSpan().SequenceEqual(b);
            },
        };
        (string? Authorization, bool Accepted)[] offers =
        [
            ("Bearer t-one", true), ("Bearer t-four-much-longer-than-the-rest", true), ("Bearer t-four-much-longer-than-the-resX", false),
            ("Bearer t-", false), ("Bearer ", false), (null, false), ("Basic t-one", false),
        ];
        foreach (var (authorization, accepted) in offers)
        {
            compared.Clear();
            Assert.That(counted.Authorizes(authorization), Is.EqualTo(accepted), authorization ?? "(none)");
            Assert.That(compared, Has.Count.EqualTo(tokens.Length), $"every token compared for {authorization ?? "(none)"}");
            Assert.That(compared, Is.All.EqualTo((32, 32)), "only digests are compared");
        }
    }

    [Test]
    public async Task ARequestToAServerThatIsNotRunningFailsWithinTheConnectTimeout()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        o.ConnectTimeout = TimeSpan.FromSeconds(1);
        var sw = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<QuicException>(async () =>
            await QuicSendClient.ConnectAsync((IPEndPoint)silent.LocalEndPoint!, new QuicSendClientOptions { Transport = o, Token = Token, ServerName = "localhost" }));
        Assert.That(e!.Error, Is.EqualTo(QuicError.ConnectTimeout));
        Assert.That(e.Message, Does.Contain("No QUIC server answered"));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        await Task.CompletedTask;
    }

    [Test]
    public async Task ThePollingApiServesRequestsLikeTheOriginal()
    {
        await using var server = StartServer();
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        await using var client = new QuicSendClient(server.LocalEndPoint, new QuicSendClientOptions { Transport = o, Token = Token, ServerName = "localhost" });

        var serverLog = new List<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serverLoop = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested && server.Poll(
                       c => serverLog.Add($"connect {c}"),
                       c => serverLog.Add($"timeout {c}"),
                       r =>
                       {
                           var body = r.ReadBody();
                           server.Respond(r.ConnectionId, r.RequestId, 200, $"got {body.Length}", QuicSendBody.FromBytes(body));
                       }, 50)) { }
        });

        bool connected = false;
        var responses = new Dictionary<long, (int status, string? info, int len)>();
        var ids = new List<long>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (responses.Count < 4 && DateTime.UtcNow < deadline)
        {
            client.Poll(() =>
            {
                connected = true;
                for (int i = 0; i < 4; i++) ids.Add(client.Request("/poll", $"#{i}", new byte[1000 * (i + 1)]));
            }, () => Assert.Fail("the connection ended"), r => responses[r.RequestId] = (r.Status, r.HeaderInfo, r.ReadBody().Length), 50);
        }
        stop.Cancel();
        Assert.That(connected, Is.True);
        Assert.That(responses.Keys, Is.EquivalentTo(ids));
        for (int i = 0; i < 4; i++)
            Assert.That(responses[ids[i]], Is.EqualTo((200, $"got {1000 * (i + 1)}", 1000 * (i + 1))));
        Assert.That(serverLog, Does.Contain("connect 1"));
    }
}
