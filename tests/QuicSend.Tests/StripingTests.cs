using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// The connection pool and striped file transfers (docs/striping.md): requests spread over the
/// pool, uploads and downloads cut into chunks over several connections, reassembled in place and
/// verified piece by piece and whole; a dying connection, chunks arriving out of order and a source
/// that changes midway.
/// </summary>
[TestFixture]
[NonParallelizable]
public class StripingTests
{
    private const long Size = 48L << 20;
    private const int Chunk = 1 << 20;

    private DirectoryInfo _work = null!;
    private string _serverDir = null!;
    private string _clientDir = null!;
    private string _source = null!;
    private string _sourceHash = null!;

    [SetUp]
    public void MakeFiles()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-stripe-");
        _serverDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "server")).FullName;
        _clientDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "client")).FullName;
        _source = Path.Combine(_clientDir, "weights.bin");
        _sourceHash = WriteRandom(_source, Size);
    }

    [TearDown]
    public void DeleteFiles() => _work.Delete(recursive: true);

    internal static string WriteRandom(string path, long size)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var f = File.Create(path);
        var piece = new byte[1 << 20];
        for (long done = 0; done < size; done += piece.Length)
        {
            RandomNumberGenerator.Fill(piece);
            sha.AppendData(piece);
            f.Write(piece);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    internal static string HashOf(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static string[] Entries(string dir) => Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order().ToArray()!;

    private static Task<QuicSendClient> ConnectPoolAsync(QuicSendServer server, int connections, int chunk = Chunk)
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        return QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = o, Token = HttpTests.Token, ServerName = "localhost", Connections = connections, ChunkSize = chunk,
        });
    }

    /// <summary>A file server whose requests pass through <paramref name="before"/> first (to delay or count them).</summary>
    internal sealed class Serving : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Serving(string dir, Func<QuicSendRequest, Task>? before = null)
        {
            Server = HttpTests.StartServer();
            _loop = Task.Run(async () =>
            {
                var running = new List<Task>();
                try
                {
                    await foreach (var req in Server.AcceptRequestsAsync(_stop.Token))
                        running.Add(Task.Run(async () =>
                        {
                            using (req)
                            {
                                if (before is not null) await before(req);
                                var r = await FileTransfer.HandleRequestAsync(req, dir, _stop.Token);
                                Results.Writer.TryWrite((req.ConnectionId, r));
                            }
                        }));
                }
                catch (OperationCanceledException) { }
                try { await Task.WhenAll(running); } catch { }
            });
        }

        public QuicSendServer Server { get; }
        public Channel<(long Connection, FileTransferResult Result)> Results { get; } = Channel.CreateUnbounded<(long, FileTransferResult)>();

        /// <summary>Every result so far, waiting (a little) for one that matches <paramref name="last"/>: the server records a result just after answering.</summary>
        public async Task<List<(long Connection, FileTransferResult Result)>> CollectUntilAsync(Func<FileTransferResult, bool> last)
        {
            var all = new List<(long, FileTransferResult)>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var r = await Results.Reader.ReadAsync(cts.Token);
                all.Add(r);
                if (last(r.Result)) return all;
            }
        }

        public List<(long Connection, FileTransferResult Result)> Drain()
        {
            var all = new List<(long, FileTransferResult)>();
            while (Results.Reader.TryRead(out var r)) all.Add(r);
            return all;
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            await Server.DisposeAsync();
            await _loop.WaitAsync(TimeSpan.FromSeconds(20));
            _stop.Dispose();
        }
    }

    private static long FirstByte(FileTransferResult r)
    {
        // "Stored bytes FIRST-LAST of ..." / "Sent 'x': bytes FIRST-LAST of N"
        var m = System.Text.RegularExpressions.Regex.Match(r.Message, @"bytes (\d+)-");
        return m.Success ? long.Parse(m.Groups[1].Value) : -1;
    }

    [Test]
    public async Task SmallRequestsSpreadOverThePoolAndOneConnectionStaysThePlainClient()
    {
        await using var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var echo = HttpTests.ServeEchoAsync(server, cts.Token);

        await using (var single = await HttpTests.ConnectAsync(server))
        {
            Assert.That(single.ActiveConnections, Has.Count.EqualTo(1), "Connections = 1 (the default) is one connection");
            using var r = await single.RequestAsync("/one", "x", QuicSendBody.FromText("hi"), cts.Token);
            Assert.That(await r.ReadTextAsync(cts.Token), Is.EqualTo("hi"));
        }

        await using var pooled = await ConnectPoolAsync(server, 4);
        Assert.That(pooled.ActiveConnections, Has.Count.EqualTo(4));
        var before = pooled.ActiveConnections.Select(c => c.GetStats().UdpBytesSent).ToArray();
        // 64 requests at once, each with a 64 KiB body: the least-loaded connection takes each.
        var body = RandomNumberGenerator.GetBytes(64 * 1024);
        var replies = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var r = await pooled.RequestAsync($"/r{i}", null, QuicSendBody.FromBytes(body), cts.Token);
            return await r.ReadBodyAsync(cancellationToken: cts.Token);
        }));
        Assert.That(replies.All(b => b.AsSpan().SequenceEqual(body)), Is.True, "every echo intact");
        var sent = pooled.ActiveConnections.Select((c, i) => c.GetStats().UdpBytesSent - before[i]).ToArray();
        TestContext.Out.WriteLine($"bytes sent per connection: {string.Join(", ", sent)}");
        Assert.That(sent.Count(s => s > 256 * 1024), Is.GreaterThanOrEqualTo(3), "the requests went over several connections, not one");
        cts.Cancel();
        try { await echo; } catch (OperationCanceledException) { }
    }

    [Test]
    public async Task AStripedUploadWithChunksArrivingOutOfOrderLandsAsOneVerifiedFile()
    {
        // The first chunk is held back at the server, so later ones are stored before it.
        await using var serving = new Serving(_serverDir, async req =>
        {
            if ((HeaderCodec.Get(req.Headers, QuicSendHeaders.ContentRange) ?? "").StartsWith("bytes 0-", StringComparison.Ordinal))
                await Task.Delay(600);
        });
        await using var client = await ConnectPoolAsync(serving.Server, 4);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        long progressMax = 0;
        var result = await client.UploadFileAsync(_source, "weights.bin",
            new SyncProgress(v => Interlocked.Exchange(ref progressMax, Math.Max(Interlocked.Read(ref progressMax), v))), cts.Token);
        TestContext.Out.WriteLine(result);
        Assert.That(result.Succeeded, Is.True);
        Assert.That(result.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(Interlocked.Read(ref progressMax), Is.EqualTo(Size), "progress reaches the file size");
        Assert.That(HashOf(Path.Combine(_serverDir, "weights.bin")), Is.EqualTo(_sourceHash), "the stored file is the source");
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { "weights.bin" }), "nothing else on the server: no partial file left");

        var results = await serving.CollectUntilAsync(r => r.Status == 201);
        Assert.That(results.Where(r => !r.Result.Succeeded).Select(r => r.Result.Message), Is.Empty,
            "no chunk failed at the server (the first chunks arrive together and must share one session)");
        var chunks = results.Where(r => r.Result.Status == 202).ToList();
        Assert.That(chunks, Has.Count.EqualTo((int)(Size / Chunk)), "one answered chunk request per MiB");
        var order = chunks.Select(r => FirstByte(r.Result)).ToList();
        Assert.That(order.IndexOf(0), Is.GreaterThan(0), "the first chunk was stored after others: out-of-order arrival");
        Assert.That(chunks.Select(r => r.Connection).Distinct().Count(), Is.GreaterThanOrEqualTo(3), "chunks came over several connections");
        Assert.That(results.Single(r => r.Result.Status == 201).Result.Sha256, Is.EqualTo(_sourceHash), "the commit verified the whole file");
    }

    [Test]
    public async Task TheFirstChunksOfAnUploadArrivingTogetherShareOneSession()
    {
        // Hold the first eight chunk requests until all have arrived, then let them race to start the upload.
        const int together = 8;
        int arrived = 0;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var serving = new Serving(_serverDir, async req =>
        {
            if (HeaderCodec.Get(req.Headers, QuicSendHeaders.ContentRange) is null) return;
            if (Interlocked.Increment(ref arrived) <= together)
            {
                if (Volatile.Read(ref arrived) >= together) go.TrySetResult();
                await go.Task.WaitAsync(TimeSpan.FromSeconds(10));
            }
        });
        await using var client = await ConnectPoolAsync(serving.Server, 4);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var result = await client.UploadFileAsync(_source, "weights.bin", null, cts.Token);
        Assert.That(result.Sha256, Is.EqualTo(_sourceHash));
        var results = await serving.CollectUntilAsync(r => r.Status == 201);
        Assert.That(results.Where(r => !r.Result.Succeeded).Select(r => r.Result.Message), Is.Empty, "no chunk failed at the server");
        Assert.That(results.Count(r => r.Result.Status == 202), Is.EqualTo((int)(Size / Chunk)), "every chunk stored once, none sent twice");
    }

    [Test]
    public async Task AStripedUploadKeepsItsPartialFileNameWithinTheFileSystemLimit()
    {
        // A valid name of 250 bytes: its partial file (".<name>.<upload id>.partial") must be shortened to fit 255.
        var name = new string('w', 246) + ".bin";
        await using var serving = new Serving(_serverDir);
        await using var client = await ConnectPoolAsync(serving.Server, 2);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var result = await client.UploadFileAsync(_source, name, null, cts.Token);
        Assert.That(result.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(HashOf(Path.Combine(_serverDir, name)), Is.EqualTo(_sourceHash));
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { name }));
    }

    [Test]
    public async Task AStripedDownloadArrivesIntactOverSeveralConnections()
    {
        File.Copy(_source, Path.Combine(_serverDir, "weights.bin"));
        await using var serving = new Serving(_serverDir, async req =>
        {
            if ((HeaderCodec.Get(req.Headers, QuicSendHeaders.Range) ?? "").StartsWith("bytes=0-", StringComparison.Ordinal))
                await Task.Delay(600); // the first piece arrives last
        });
        await using var client = await ConnectPoolAsync(serving.Server, 4);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var target = Path.Combine(_clientDir, "copy.bin");

        var result = await client.DownloadFileAsync("weights.bin", target, null, cts.Token);
        TestContext.Out.WriteLine(result);
        Assert.That(result.Succeeded, Is.True);
        Assert.That(result.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(HashOf(target), Is.EqualTo(_sourceHash), "the downloaded file is the source");
        Assert.That(Entries(_clientDir), Is.EqualTo(new[] { "copy.bin", "weights.bin" }), "no partial file left beside it");
        int seen206 = 0;
        var pieces = (await serving.CollectUntilAsync(r => r.Status == 206 && ++seen206 == Size / Chunk)).Where(r => r.Result.Status == 206).ToList();
        Assert.That(pieces, Has.Count.EqualTo((int)(Size / Chunk)), "one ranged GET per MiB");
        Assert.That(pieces.Select(r => FirstByte(r.Result)).ToList().IndexOf(0), Is.GreaterThan(0), "the first piece finished after others");
        Assert.That(pieces.Select(r => r.Connection).Distinct().Count(), Is.GreaterThanOrEqualTo(3), "pieces came over several connections");
    }

    [Test]
    public async Task AConnectionClosedMidTransferHasItsChunksFinishedOnTheOthers([Values] bool upload)
    {
        if (!upload) File.Copy(_source, Path.Combine(_serverDir, "weights.bin"));
        await using var serving = new Serving(_serverDir);
        await using var client = await ConnectPoolAsync(serving.Server, 3);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var victim = client.ActiveConnections[1];
        int closed = 0;
        var progress = new SyncProgress(v =>
        {
            if (v >= Size / 4 && Interlocked.Exchange(ref closed, 1) == 0)
                _ = Task.Run(() => victim.CloseAsync(0, "test closes one connection mid-transfer").AsTask());
        });
        var target = Path.Combine(_clientDir, "copy.bin");
        var result = upload
            ? await client.UploadFileAsync(_source, "weights.bin", progress, cts.Token)
            : await client.DownloadFileAsync("weights.bin", target, progress, cts.Token);
        TestContext.Out.WriteLine(result);
        Assert.That(closed, Is.EqualTo(1), "a connection was closed during the transfer");
        Assert.That(victim.IsClosed, Is.True);
        Assert.That(client.ActiveConnections, Does.Not.Contain(victim), "the closed connection is out of the pool");
        var whole = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (client.ActiveConnections.Count < 3 && DateTime.UtcNow < whole) await Task.Delay(50);
        Assert.That(client.ActiveConnections, Has.Count.EqualTo(3), "and was replaced by a new one (the pool reconnects)");
        Assert.That(result.Succeeded, Is.True);
        Assert.That(HashOf(upload ? Path.Combine(_serverDir, "weights.bin") : target), Is.EqualTo(_sourceHash));
        var aborted = serving.Drain().Count(r => !r.Result.Succeeded);
        TestContext.Out.WriteLine($"chunk requests cut by the close: {aborted}");
    }

    [Test]
    public async Task AServerFileChangedDuringAStripedDownloadIsReportedAndNothingIsWritten()
    {
        var served = Path.Combine(_serverDir, "weights.bin");
        File.Copy(_source, served);
        await using var serving = new Serving(_serverDir);
        await using var client = await ConnectPoolAsync(serving.Server, 3);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        int changed = 0;
        var progress = new SyncProgress(v =>
        {
            if (v >= Size / 4 && Interlocked.Exchange(ref changed, 1) == 0)
                RewriteByte(served, Size - 10, 0x5A); // near the end, not yet sent: as a job overwriting its checkpoint would
        });
        var target = Path.Combine(_clientDir, "copy.bin");
        var e = Assert.CatchAsync(() => client.DownloadFileAsync("weights.bin", target, progress, cts.Token));
        TestContext.Out.WriteLine(e);
        Assert.That(e, Is.InstanceOf<FileTransferException>().Or.InstanceOf<InvalidDataException>());
        Assert.That(e!.Message, Does.Contain("changed").Or.Contain("SHA-256"), "the error says the source changed or did not verify");
        Assert.That(File.Exists(target), Is.False, "nothing at the target name");
        Assert.That(Entries(_clientDir), Is.EqualTo(new[] { "weights.bin" }), "no partial file left");
    }

    [Test]
    public async Task ALocalFileChangedDuringAStripedUploadIsReportedAndNothingIsStored()
    {
        await using var serving = new Serving(_serverDir);
        await using var client = await ConnectPoolAsync(serving.Server, 3);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        int changed = 0;
        var progress = new SyncProgress(v =>
        {
            if (v >= Size / 4 && Interlocked.Exchange(ref changed, 1) == 0)
                RewriteByte(_source, 10, 0xA5); // already sent: only the whole-file check can see it
        });
        var e = Assert.CatchAsync(() => client.UploadFileAsync(_source, "weights.bin", progress, cts.Token));
        TestContext.Out.WriteLine(e);
        Assert.That(e, Is.InstanceOf<IOException>());
        Assert.That(e!.Message, Does.Contain("changed"), "the error says the file changed while it was read");
        // The client abandoned the upload: the server drops the partial file at once.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Entries(_serverDir).Length > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.That(Entries(_serverDir), Is.Empty, "nothing stored, no partial file left on the server");
    }

    [Test]
    public async Task RangedGetsHeadAndDigestFollowHttpSemantics()
    {
        var served = Path.Combine(_serverDir, "weights.bin");
        File.Copy(_source, served);
        var bytes = File.ReadAllBytes(served);
        await using var serving = new Serving(_serverDir);
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var path = FileTransfer.PathFor("weights.bin");

        async Task<(QuicSendResponse R, byte[] Body)> Get(string method, params (string, string)[] headers)
        {
            var r = await client.SendAsync(method, path, null, null, headers.Select(h => new KeyValuePair<string, string>(h.Item1, h.Item2)), cts.Token);
            return (r, method == "HEAD" ? [] : await r.ReadBodyAsync(cancellationToken: cts.Token));
        }
        string H(QuicSendResponse r, string name) => HeaderCodec.Get(r.Headers, name) ?? "(none)";

        var (head, _) = await Get("HEAD", ("want-repr-digest", "sha-256=5"));
        using (head)
        {
            Assert.That(head.Status, Is.EqualTo(200));
            Assert.That(H(head, "content-length"), Is.EqualTo(Size.ToString()), "HEAD gives the file's length");
            Assert.That(H(head, "accept-ranges"), Is.EqualTo("bytes"));
            Assert.That(FileTransfer.Sha256FromReprDigest(H(head, "repr-digest")), Is.EqualTo(_sourceHash), "repr-digest is the whole file's SHA-256");
        }
        var etag = H(head, "etag");
        Assert.That(etag, Does.StartWith("\"").And.EndWith("\""), "a strong ETag");

        var (mid, midBody) = await Get("GET", ("range", "bytes=1000-1999"), ("if-match", etag));
        using (mid)
        {
            Assert.That(mid.Status, Is.EqualTo(206));
            Assert.That(H(mid, "content-range"), Is.EqualTo($"bytes 1000-1999/{Size}"));
            Assert.That(midBody, Is.EqualTo(bytes[1000..2000]), "the bytes of the range");
            var trailer = (await mid.ReadTrailersAsync(cts.Token)).Single(t => t.Key == QuicSendHeaders.Sha256).Value;
            Assert.That(trailer, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(1000, 1000)))), "the piece's own SHA-256 as trailer");
        }
        var (tail, tailBody) = await Get("GET", ("range", "bytes=-16"));
        using (tail)
        {
            Assert.That(tail.Status, Is.EqualTo(206));
            Assert.That(tailBody, Is.EqualTo(bytes[^16..]), "a suffix range gives the last bytes");
        }
        var (past, _) = await Get("GET", ("range", $"bytes={Size}-"));
        using (past)
        {
            Assert.That(past.Status, Is.EqualTo(416));
            Assert.That(H(past, "content-range"), Is.EqualTo($"bytes */{Size}"));
        }
        var (stale, _) = await Get("GET", ("range", "bytes=0-9"), ("if-match", "\"1-1\""));
        using (stale) Assert.That(stale.Status, Is.EqualTo(412), "if-match with another version is refused");
        var (multi, multiBody) = await Get("GET", ("range", "bytes=0-1,5-6"));
        using (multi)
        {
            Assert.That(multi.Status, Is.EqualTo(200), "several ranges are not supported: the whole file is served, as RFC 9110 allows");
            Assert.That(multiBody.Length, Is.EqualTo(Size));
        }
    }

    [Test]
    public async Task ChunkUploadsAreCheckedOneByOneAndACommitWithGapsOrAWrongHashIsRefused()
    {
        await using var serving = new Serving(_serverDir);
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var path = FileTransfer.PathFor("pieces.bin");
        var data = RandomNumberGenerator.GetBytes(3000);
        var id = "test-upload-0001";

        async Task<(int Status, string Text)> Chunk(int first, int count, string? sha = null)
        {
            var piece = data.AsMemory(first, count);
            using var r = await client.SendAsync("PUT", path, null, null,
            [
                new("content-length", count.ToString()), new("content-range", $"bytes {first}-{first + count - 1}/3000"),
                new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadLength, "3000"),
            ], 0, cts.Token, async s =>
            {
                await s.Stream.WriteAsync(piece, cts.Token);
                await s.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, sha ?? Convert.ToHexStringLower(SHA256.HashData(piece.Span)))]), cts.Token);
            });
            return (r.Status, Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token)));
        }
        async Task<(int Status, string Text)> Commit(string sha)
        {
            using var r = await client.SendAsync("PUT", path, null, null,
                [new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadCommit, "3000"), new(QuicSendHeaders.Sha256, sha)], cts.Token);
            return (r.Status, Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token)));
        }
        var whole = Convert.ToHexStringLower(SHA256.HashData(data));

        Assert.That((await Chunk(2000, 1000)).Status, Is.EqualTo(202), "the last chunk first");
        var bad = await Chunk(0, 1000, sha: new string('0', 64));
        Assert.That(bad.Status, Is.EqualTo(422), "a chunk whose trailer does not match is refused");
        Assert.That(bad.Text, Does.Contain("SHA-256"));
        var gap = await Commit(whole);
        Assert.That(gap.Status, Is.EqualTo(409), "a commit with bytes missing is refused");
        Assert.That(gap.Text, Does.Contain("missing bytes 0-1999"));
        Assert.That(File.Exists(Path.Combine(_serverDir, "pieces.bin")), Is.False);
        Assert.That((await Chunk(0, 1000)).Status, Is.EqualTo(202));
        Assert.That((await Chunk(1000, 1000)).Status, Is.EqualTo(202));
        var wrong = await Commit(new string('1', 64));
        Assert.That(wrong.Status, Is.EqualTo(422), "a commit whose whole-file hash does not match is refused");
        Assert.That(Entries(_serverDir), Is.Empty, "and nothing is kept, not even the partial file");

        id = "test-upload-0002";
        foreach (var first in new[] { 1000, 0, 2000 }) Assert.That((await Chunk(first, 1000)).Status, Is.EqualTo(202));
        var ok = await Commit(whole);
        Assert.That(ok.Status, Is.EqualTo(201), ok.Text);
        Assert.That(File.ReadAllBytes(Path.Combine(_serverDir, "pieces.bin")), Is.EqualTo(data));
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { "pieces.bin" }));
    }

    /// <summary>Changes one byte of a file in place and moves its modification time, as a writer would.</summary>
    private static void RewriteByte(string path, long position, byte value)
    {
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            f.Position = position;
            f.WriteByte(value);
        }
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
    }

    /// <summary>Progress reported synchronously on the reporting thread.</summary>
    internal sealed class SyncProgress(Action<long> onReport) : IProgress<long>
    {
        public void Report(long value) => onReport(value);
    }
}
