using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class FileTransferTests
{
    private const long BigSize = 256L << 20;

    private DirectoryInfo _shared = null!;   // the big source file, made once
    private string _source = null!;
    private string _sourceHash = null!;
    private DirectoryInfo _work = null!;     // per test: server/ and client/
    private string _serverDir = null!;
    private string _clientDir = null!;

    [OneTimeSetUp]
    public void MakeSourceFile()
    {
        _shared = Directory.CreateTempSubdirectory("quicsend-ft-src-");
        _source = Path.Combine(_shared.FullName, "weights.bin");
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var f = File.Create(_source);
        var chunk = new byte[1 << 20];
        for (long done = 0; done < BigSize; done += chunk.Length)
        {
            RandomNumberGenerator.Fill(chunk);
            sha.AppendData(chunk);
            f.Write(chunk);
        }
        _sourceHash = Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    [OneTimeTearDown]
    public void DeleteSourceFile() => _shared.Delete(recursive: true);

    [SetUp]
    public void MakeFolders()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-ft-");
        _serverDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "server")).FullName;
        _clientDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "client")).FullName;
    }

    [TearDown]
    public void DeleteFolders() => _work.Delete(recursive: true);

    /// <summary>Progress that records synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class Recorder(Action<long>? onReport = null) : IProgress<long>
    {
        private long _max, _count, _largestStep, _last;
        public long Max => Interlocked.Read(ref _max);
        public long Count => Interlocked.Read(ref _count);
        public long LargestStep => Interlocked.Read(ref _largestStep);

        public void Report(long value)
        {
            Interlocked.Increment(ref _count);
            var step = value - Interlocked.Exchange(ref _last, value);
            if (step > Interlocked.Read(ref _largestStep)) Interlocked.Exchange(ref _largestStep, step);
            if (value > Interlocked.Read(ref _max)) Interlocked.Exchange(ref _max, value);
            onReport?.Invoke(value);
        }
    }

    /// <summary>A server serving a folder with <see cref="FileTransfer.ServeDirectoryAsync"/>; each finished request's result arrives on <see cref="Results"/>.</summary>
    private sealed class Serving : IAsyncDisposable
    {
        public Serving(string directory)
        {
            Server = HttpTests.StartServer();
            Loop = FileTransfer.ServeDirectoryAsync(Server, directory, Stop.Token, r =>
            {
                TestContext.Progress.WriteLine($"  server: {r}");
                Results.Writer.TryWrite(r);
            });
        }

        public QuicSendServer Server { get; }
        public Task Loop { get; }
        public CancellationTokenSource Stop { get; } = new();
        public Channel<FileTransferResult> Results { get; } = Channel.CreateUnbounded<FileTransferResult>();

        public async Task<FileTransferResult> NextResultAsync() =>
            await Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));

        public async ValueTask DisposeAsync()
        {
            Stop.Cancel();
            await Loop.WaitAsync(TimeSpan.FromSeconds(20));
            await Server.DisposeAsync();
            Stop.Dispose();
        }
    }

    private Serving ServeFolder() => new(_serverDir);

    private static string HashOf(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int link(string oldpath, string newpath);

    private static void HardLink(string existing, string newPath)
    {
        if (link(existing, newPath) != 0)
            throw new IOException($"link({existing}, {newPath}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    private static string[] Entries(string dir) => Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).ToArray()!;

    [Test]
    public async Task A256MiBFileUploadsAndDownloadsIntactWithProgressAndWithoutBeingHeldInMemory()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(50));

        GC.Collect();
        long baseline = GC.GetTotalMemory(true), peak = 0;
        void Sample(long bytes)
        {
            if (bytes % (32 << 20) == 0) peak = Math.Max(peak, GC.GetTotalMemory(false) - baseline);
        }

        var up = new Recorder(Sample);
        var uploaded = await client.UploadFileAsync(_source, "weights.bin", up, cts.Token);
        var stored = await serving.NextResultAsync();
        TestContext.Out.WriteLine($"upload:   {uploaded}");

        Assert.That(uploaded.Succeeded, Is.True);
        Assert.That(uploaded.Length, Is.EqualTo(BigSize));
        Assert.That(uploaded.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(up.Max, Is.EqualTo(BigSize), "upload progress reaches the file size");
        Assert.That(up.LargestStep, Is.LessThanOrEqualTo(1 << 20), "upload progress at least every MiB");
        Assert.That(stored.Succeeded, Is.True, stored.Message);
        Assert.That(stored.Status, Is.EqualTo(201));
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { "weights.bin" }), "only the final file on the server, no .partial left");
        Assert.That(HashOf(Path.Combine(_serverDir, "weights.bin")), Is.EqualTo(_sourceHash), "SHA-256 of the stored file");

        var target = Path.Combine(_clientDir, "weights-back.bin");
        var down = new Recorder(Sample);
        var downloaded = await client.DownloadFileAsync("weights.bin", target, down, cts.Token);
        TestContext.Out.WriteLine($"download: {downloaded}");
        var served = await serving.NextResultAsync();

        Assert.That(downloaded.Succeeded, Is.True);
        Assert.That(downloaded.Length, Is.EqualTo(BigSize));
        Assert.That(downloaded.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(down.Max, Is.EqualTo(BigSize), "download progress reaches the file size");
        Assert.That(down.LargestStep, Is.LessThanOrEqualTo(1 << 20), "download progress at least every MiB");
        Assert.That(served.Succeeded, Is.True, served.Message);
        Assert.That(Entries(_clientDir), Is.EqualTo(new[] { "weights-back.bin" }), "only the final file on the client, no .partial left");
        Assert.That(HashOf(target), Is.EqualTo(_sourceHash), "SHA-256 of the downloaded file");
        Assert.That(peak, Is.LessThan(64L << 20), $"managed memory grew by {peak >> 20} MiB while moving 2 x 256 MiB");
        TestContext.Out.WriteLine($"managed memory growth peak {peak >> 20} MiB");
    }

    [Test]
    public async Task AnEmptyFileRoundTrips()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        var empty = Path.Combine(_clientDir, "empty.txt");
        File.WriteAllBytes(empty, []);
        var up = await client.UploadFileAsync(empty, "empty.txt");
        Assert.That(up.Length, Is.Zero);
        Assert.That(up.Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(Array.Empty<byte>()))));
        Assert.That(new FileInfo(Path.Combine(_serverDir, "empty.txt")).Length, Is.Zero);
        var back = Path.Combine(_clientDir, "empty-back.txt");
        var down = await client.DownloadFileAsync("empty.txt", back);
        Assert.That(down.Succeeded, Is.True);
        Assert.That(new FileInfo(back).Length, Is.Zero);
    }

    [Test]
    public async Task CancellingAnUploadMidwayLeavesNothingOnTheServer()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        var progress = new Recorder(b => { if (b >= 48 << 20) cts.Cancel(); });

        Assert.CatchAsync<OperationCanceledException>(async () => await client.UploadFileAsync(_source, "weights.bin", progress, cts.Token));
        Assert.That(progress.Max, Is.GreaterThanOrEqualTo(48L << 20).And.LessThan(BigSize), "cancelled midway");

        var result = await serving.NextResultAsync();
        TestContext.Out.WriteLine($"server: {result}");
        Assert.That(result.Succeeded, Is.False);
        Assert.That(Entries(_serverDir), Is.Empty, "neither the final name nor a .partial file on the server");

        // The connection is still good for the next transfer.
        var small = Path.Combine(_clientDir, "small.bin");
        File.WriteAllBytes(small, RandomNumberGenerator.GetBytes(3 << 20 | 17));
        var ok = await client.UploadFileAsync(small, "small.bin");
        Assert.That(ok.Sha256, Is.EqualTo(HashOf(small)));
        Assert.That(HashOf(Path.Combine(_serverDir, "small.bin")), Is.EqualTo(HashOf(small)));
    }

    [Test]
    public async Task CancellingADownloadMidwayLeavesNothingAtTheTarget()
    {
        // A hard link, not a symbolic one: the server serves no link that leads out of its folder.
        HardLink(_source, Path.Combine(_serverDir, "weights.bin"));
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        var progress = new Recorder(b => { if (b >= 48 << 20) cts.Cancel(); });
        var target = Path.Combine(_clientDir, "weights.bin");

        Assert.CatchAsync<OperationCanceledException>(async () => await client.DownloadFileAsync("weights.bin", target, progress, cts.Token));
        Assert.That(progress.Max, Is.GreaterThanOrEqualTo(48L << 20).And.LessThan(BigSize), "cancelled midway");
        Assert.That(Entries(_clientDir), Is.Empty, "neither the final name nor a .partial file on the client");

        var served = await serving.NextResultAsync();
        TestContext.Out.WriteLine($"server: {served}");
        Assert.That(served.Succeeded, Is.False);
    }

    [Test]
    public async Task AnUploadWithAWrongHashIsRefusedWith422AndNotKept()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var data = RandomNumberGenerator.GetBytes(5 << 20);
        var wrong = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes("something else")));

        // What a corrupting path would send: the right length, a trailer that does not match.
        using (var refused = await client.SendAsync("PUT", "/files/corrupt.bin", null, null,
                   [new(QuicSendHeaders.ContentLength, data.Length.ToString())], 0, cts.Token, async stream =>
                   {
                       await stream.Stream.WriteAsync(data, cts.Token);
                       await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, wrong)]));
                   }))
        {
            Assert.That(refused.Status, Is.EqualTo(422));
            var text = await refused.ReadTextAsync(cts.Token);
            TestContext.Out.WriteLine(text);
            Assert.That(text, Does.Contain("SHA-256").And.Contain(wrong).And.Contain("Nothing was kept"));
        }
        var result = await serving.NextResultAsync();
        Assert.That(result.Status, Is.EqualTo(422));
        Assert.That(Entries(_serverDir), Is.Empty, "nothing kept, no .partial left");

        // Without the trailer the upload cannot be verified: 400, nothing kept.
        using (var unverified = await client.SendAsync("PUT", "/files/unverified.bin", null, null, null, 0, cts.Token, async stream =>
                   await stream.Stream.WriteAsync(data, completeWrites: true, cts.Token)))
        {
            Assert.That(unverified.Status, Is.EqualTo(400));
            Assert.That(await unverified.ReadTextAsync(cts.Token), Does.Contain("quicsend-sha256"));
        }
        Assert.That((await serving.NextResultAsync()).Status, Is.EqualTo(400));
        Assert.That(Entries(_serverDir), Is.Empty);
    }

    [Test]
    public async Task ADownloadWithAWrongHashThrowsInvalidDataAndLeavesTheOldFile()
    {
        await using var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                using (req)
                    await req.RespondStreamingAsync(200, null, async body =>
                    {
                        await body.WriteAsync(RandomNumberGenerator.GetBytes(3 << 20), cts.Token);
                        return [new(QuicSendHeaders.Sha256, new string('0', 64))];
                    }, cts.Token);
        }, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        var target = Path.Combine(_clientDir, "model.bin");
        File.WriteAllText(target, "the previous version");

        var e = Assert.ThrowsAsync<InvalidDataException>(async () => await client.DownloadFileAsync("model.bin", target, null, cts.Token));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.Message, Does.Contain("SHA-256").And.Contain("model.bin"));
        Assert.That(Entries(_clientDir), Is.EqualTo(new[] { "model.bin" }), "no .partial left");
        Assert.That(File.ReadAllText(target), Is.EqualTo("the previous version"), "the existing file is untouched");
        cts.Cancel();
    }

    [TestCase("PUT", "/files/..")]
    [TestCase("PUT", "/files/%2E%2E")]
    [TestCase("PUT", "/files/../outside.bin")]
    [TestCase("PUT", "/files/..%2Foutside.bin")]
    [TestCase("PUT", "/files/%2Ftmp%2Foutside.bin")]
    [TestCase("PUT", "/files/sub%5C..%5C..%5Coutside.bin")]
    [TestCase("PUT", "/files/")]
    [TestCase("POST", "/files/.hidden")]
    [TestCase("GET", "/files/..%2Fserver%2F..%2Fsecret.txt")]
    [TestCase("GET", "/files/%2Fetc%2Fpasswd")]
    [TestCase("GET", "/files/..")]
    public async Task PathTraversalNamesAreRefusedWith400(string method, string path)
    {
        File.WriteAllText(Path.Combine(_work.FullName, "secret.txt"), "outside the served folder");
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var payload = Encoding.ASCII.GetBytes("attack");
        Func<Http3RequestStream, ValueTask>? write = method == "GET" ? null : async stream =>
        {
            await stream.Stream.WriteAsync(payload, cts.Token);
            await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(payload)))]));
        };
        using var response = await client.SendAsync(method, path, null, null, null, 0, cts.Token, write);
        var text = await response.ReadTextAsync(cts.Token);
        TestContext.Out.WriteLine($"{method} {path} -> {response.Status} {text}");
        Assert.That(response.Status, Is.EqualTo(400));
        Assert.That(text, Does.StartWith("400 Bad Request:").And.Contain("name"));
        Assert.That(Entries(_serverDir), Is.Empty);
        Assert.That(Entries(_work.FullName).Order(), Is.EqualTo(new[] { "client", "secret.txt", "server" }), "nothing written outside");
        Assert.That(text, Does.Not.Contain("outside the served folder"));
    }

    [Test]
    public async Task TheClientRefusesBadNamesAndMissingFilesBeforeSendingAnything()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        var small = Path.Combine(_clientDir, "a.bin");
        File.WriteAllText(small, "a");

        foreach (var bad in new[] { "../a.bin", "/etc/passwd", "..", "", "dir/a.bin", "a\\b" })
        {
            var e = Assert.ThrowsAsync<ArgumentException>(async () => await client.UploadFileAsync(small, bad));
            Assert.That(e!.ParamName, Is.EqualTo("remoteName"));
            Assert.ThrowsAsync<ArgumentException>(async () => await client.DownloadFileAsync(bad, Path.Combine(_clientDir, "x")));
        }

        var missing = Path.Combine(_clientDir, "no-such-file.bin");
        var notFound = Assert.ThrowsAsync<FileNotFoundException>(async () => await client.UploadFileAsync(missing, "x.bin"));
        Assert.That(notFound!.Message, Does.Contain(missing));

        var noFolder = Path.Combine(_clientDir, "no-such-folder", "x.bin");
        var dirMissing = Assert.ThrowsAsync<DirectoryNotFoundException>(async () => await client.DownloadFileAsync("x.bin", noFolder));
        Assert.That(dirMissing!.Message, Does.Contain(Path.GetDirectoryName(noFolder)));
        Assert.That(Entries(_serverDir), Is.Empty);
    }

    [Test]
    public async Task DownloadingAMissingFileGives404WithTheServersMessage()
    {
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        var target = Path.Combine(_clientDir, "nope.bin");

        var e = Assert.ThrowsAsync<FileTransferException>(async () => await client.DownloadFileAsync("nope.bin", target));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.StatusCode, Is.EqualTo(404));
        Assert.That(e.ServerMessage, Does.Contain("no file named 'nope.bin'"));
        Assert.That(e.Message, Does.Contain("404").And.Contain("no file named 'nope.bin'"));
        Assert.That(Entries(_clientDir), Is.Empty);

        // Other paths and methods get clear answers too.
        using var other = await client.RequestAsync("/rpc/echo", null, "hi");
        Assert.That(other.Status, Is.EqualTo(404));
        Assert.That(await other.ReadTextAsync(), Does.Contain("/files/<name>"));
        using var delete = await client.SendAsync("DELETE", "/files/x.bin", null, null, null);
        Assert.That(delete.Status, Is.EqualTo(405));
    }

    [Test]
    public async Task AnUploadAskingToOverwriteReplacesAnExistingFileAtomically()
    {
        var existing = Path.Combine(_serverDir, "data.bin");
        File.WriteAllText(existing, "old");
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        var fresh = Path.Combine(_clientDir, "data.bin");
        File.WriteAllBytes(fresh, RandomNumberGenerator.GetBytes(2 << 20));
        await client.UploadFileAsync(fresh, "data.bin", overwrite: true);
        Assert.That(HashOf(existing), Is.EqualTo(HashOf(fresh)));
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { "data.bin" }));
    }

    [Test]
    public async Task AnUploadRefusedBeforeItsBodyIsReadReportsTheServersAnswer()
    {
        // The server answers 409 at once (the name is a folder there) while 256 MiB are still on their way.
        Directory.CreateDirectory(Path.Combine(_serverDir, "models"));
        await using var serving = ServeFolder();
        await using var client = await HttpTests.ConnectAsync(serving.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var e = Assert.ThrowsAsync<FileTransferException>(async () => await client.UploadFileAsync(_source, "models", null, cts.Token));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.StatusCode, Is.EqualTo(409));
        Assert.That(e.Message, Does.Contain("409 Conflict").And.Contain("'models' is a folder"));
        Assert.That(Entries(_serverDir), Is.EqualTo(new[] { "models" }));
        Assert.That(Directory.GetFileSystemEntries(Path.Combine(_serverDir, "models")), Is.Empty);

        // And the connection still serves the next request.
        var small = Path.Combine(_clientDir, "after.bin");
        File.WriteAllBytes(small, RandomNumberGenerator.GetBytes(1000));
        Assert.That((await client.UploadFileAsync(small, "after.bin", null, cts.Token)).Succeeded, Is.True);
    }

    [Test]
    public async Task UploadsLargerThanTheServersLimitAreRefusedAndNotKept()
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token], MaxRequestBodySize = 1 << 20 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var results = Channel.CreateUnbounded<FileTransferResult>();
        var loop = FileTransfer.ServeDirectoryAsync(server, _serverDir, cts.Token, r => results.Writer.TryWrite(r));
        await using var client = await HttpTests.ConnectAsync(server);
        var big = Path.Combine(_clientDir, "big.bin");
        File.WriteAllBytes(big, RandomNumberGenerator.GetBytes(3 << 20));

        // Declared too large: the server refuses from the content-length, before the body.
        var e = Assert.ThrowsAsync<FileTransferException>(async () => await client.UploadFileAsync(big, "big.bin", null, cts.Token));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.StatusCode, Is.EqualTo(413));
        Assert.That(e.Message, Does.Contain("413"));

        // Not declared, growing past the limit while streaming: cut off with H3_EXCESSIVE_LOAD (MaxRequestBodySize's
        // contract), nothing kept, and the serve loop goes on. An answer instead of the cut-off fails the test.
        var data = RandomNumberGenerator.GetBytes(3 << 20);
        QuicSendResponse? answered = null;
        var cutOff = Assert.ThrowsAsync<QuicException>(async () =>
            answered = await client.SendAsync("PUT", "/files/sneaky.bin", null, null, null, 0, cts.Token, async stream =>
            {
                await stream.Stream.WriteAsync(data, cts.Token);
                await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(data)))]));
            }), "an upload growing past the limit is cut off, not answered");
        answered?.Dispose();
        Assert.That(cutOff!.ErrorCode, Is.EqualTo((long)Http3Errors.ExcessiveLoad), cutOff.Message);
        var cut = await results.Reader.ReadAsync(cts.Token);
        TestContext.Out.WriteLine($"server: {cut}");
        Assert.That(cut.Succeeded, Is.False);
        Assert.That(Entries(_serverDir), Is.Empty, "nothing kept, no .partial left");

        var small = Path.Combine(_clientDir, "small.bin");
        File.WriteAllBytes(small, RandomNumberGenerator.GetBytes(1000));
        Assert.That((await client.UploadFileAsync(small, "small.bin", null, cts.Token)).Succeeded, Is.True);
        cts.Cancel();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Test]
    public void NameValidation()
    {
        foreach (var ok in new[] { "weights.bin", "model-00001-of-00004.safetensors", "ünïcödé ✓.txt", "a b", new string('x', 255) })
            Assert.That(FileTransfer.ValidateName(ok), Is.Null, ok);
        foreach (var bad in new[] { "", " ", ".", "..", "../x", "x/..", "/abs", "C:\\x", "c:x", "a\\b", "a\0b", "line\nbreak", ".partial", new string('x', 256) })
            Assert.That(FileTransfer.ValidateName(bad), Is.Not.Null, bad);
        Assert.That(FileTransfer.NameFromPath("/files/a%20b.bin?x=1"), Is.EqualTo("a b.bin"));
        Assert.That(FileTransfer.NameFromPath("/other/a"), Is.Null);
        Assert.That(FileTransfer.PathFor("a b/c".Replace("/", "_")), Is.EqualTo("/files/a%20b_c"));
    }
}
