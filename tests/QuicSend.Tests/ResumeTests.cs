using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Resumable transfers (<see cref="QuicSendClientOptions.ResumableTransfers"/>): an interrupted download keeps its
/// verified pieces beside the target and the next attempt for the same version fetches only the rest; a changed
/// source or a damaged partial file is never mixed in; a server killed mid-download (a real process, SIGKILL) is
/// reported within the idle timeout and the download resumes against the restarted server.
/// </summary>
[TestFixture]
[NonParallelizable]
public class ResumeTests
{
    private const long Size = 48L << 20;
    private const int Chunk = 1 << 20;

    private DirectoryInfo _work = null!;
    private string _serverDir = null!;
    private string _clientDir = null!;
    private string _sourceHash = null!;

    [SetUp]
    public void MakeFiles()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-resume-");
        _serverDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "data")).FullName;
        _clientDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "client")).FullName;
        _sourceHash = StripingTests.WriteRandom(Path.Combine(_serverDir, "weights.bin"), Size);
    }

    [TearDown]
    public void DeleteFiles() => _work.Delete(recursive: true);

    private string Target => Path.Combine(_clientDir, "weights.bin");

    private string[] ClientEntries() => Directory.GetFileSystemEntries(_clientDir).Select(Path.GetFileName).Order().ToArray()!;

    private static Task<QuicSendClient> ConnectAsync(IPEndPoint server, QuicClientOptions transport, int connections = 2) =>
        QuicSendClient.ConnectAsync(server, new QuicSendClientOptions
        {
            Transport = transport, Token = HttpTests.Token, ServerName = "localhost", Connections = connections, ChunkSize = Chunk,
            ResumableTransfers = true,
        });

    private static QuicClientOptions TestTransport()
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        return o;
    }

    /// <summary>Downloads until <paramref name="stopAt"/> bytes arrived, then cancels; returns what the progress saw.</summary>
    private async Task<long> DownloadAndCancelAsync(QuicSendClient client, long stopAt)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        long seen = 0;
        var progress = new StripingTests.SyncProgress(v =>
        {
            Interlocked.Exchange(ref seen, v);
            if (v >= stopAt) cts.Cancel();
        });
        Assert.CatchAsync<OperationCanceledException>(() => client.DownloadFileAsync("weights.bin", Target, progress, cts.Token),
            "the download was cancelled midway");
        return Interlocked.Read(ref seen);
    }

    [Test]
    public async Task ACancelledDownloadResumesWhereItStoppedAndArrivesIntact()
    {
        await using var serving = new StripingTests.Serving(_serverDir);
        await using (var first = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport()))
            await DownloadAndCancelAsync(first, 16L << 20);
        Assert.That(File.Exists(Target), Is.False, "nothing at the target after an interrupted download");
        Assert.That(ClientEntries(), Is.EqualTo(new[] { ".weights.bin.quicsend-resume.json", ".weights.bin.quicsend-resume.partial" }),
            "the partial file and its record are kept beside the target");
        serving.Drain();

        await using var second = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport());
        var result = await second.DownloadFileAsync("weights.bin", Target);
        TestContext.Out.WriteLine(result.Message);
        Assert.That(result.Sha256, Is.EqualTo(_sourceHash));
        Assert.That(StripingTests.HashOf(Target), Is.EqualTo(_sourceHash), "the resumed file is the source, byte for byte");
        Assert.That(result.ResumedBytes, Is.GreaterThanOrEqualTo(8L << 20), "at least half of what arrived before the cancel was kept");
        Assert.That(result.Message, Does.Contain("resuming"));
        var served = serving.Drain().Where(r => r.Result.Status == 206).Sum(r => r.Result.Length);
        Assert.That(served, Is.EqualTo(Size - result.ResumedBytes), "the server sent only the pieces that were missing");
        Assert.That(ClientEntries(), Is.EqualTo(new[] { "weights.bin" }), "no partial file or record left after success");
    }

    [Test]
    public async Task ASourceChangedBetweenAttemptsIsFetchedAfreshNotMixed()
    {
        await using var serving = new StripingTests.Serving(_serverDir);
        await using (var first = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport()))
            await DownloadAndCancelAsync(first, 16L << 20);
        Assert.That(ClientEntries(), Does.Contain(".weights.bin.quicsend-resume.partial"));

        // A new version on the server: other bytes, other modification time, so another ETag.
        var newHash = StripingTests.WriteRandom(Path.Combine(_serverDir, "weights.bin"), Size);
        File.SetLastWriteTimeUtc(Path.Combine(_serverDir, "weights.bin"), DateTime.UtcNow.AddMinutes(1));
        await using var second = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport());
        var result = await second.DownloadFileAsync("weights.bin", Target);
        Assert.That(result.ResumedBytes, Is.Zero, "nothing of the old version was reused");
        Assert.That(StripingTests.HashOf(Target), Is.EqualTo(newHash));
        Assert.That(ClientEntries(), Is.EqualTo(new[] { "weights.bin" }));
    }

    [Test]
    public async Task ADamagedPartialFileFailsTheWholeFileCheckAndIsRemoved()
    {
        await using var serving = new StripingTests.Serving(_serverDir);
        await using (var first = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport()))
            await DownloadAndCancelAsync(first, 16L << 20);
        // One byte of the first (kept) piece flipped on disk, as a failing disk or another program might.
        var partial = Path.Combine(_clientDir, ".weights.bin.quicsend-resume.partial");
        using (var f = new FileStream(partial, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 1000;
            int b = f.ReadByte();
            f.Position = 1000;
            f.WriteByte((byte)(b ^ 0xff));
        }

        await using var second = await ConnectAsync(serving.Server.LocalEndPoint, TestTransport());
        var e = Assert.CatchAsync<InvalidDataException>(() => second.DownloadFileAsync("weights.bin", Target));
        Assert.That(e!.Message, Does.Contain("SHA-256").And.Contain("earlier attempt"), "the error says the check failed and that kept bytes were involved");
        Assert.That(ClientEntries(), Is.Empty, "nothing at the target, and the damaged partial file and its record are gone");

        var third = await second.DownloadFileAsync("weights.bin", Target);
        Assert.That(third.ResumedBytes, Is.Zero);
        Assert.That(StripingTests.HashOf(Target), Is.EqualTo(_sourceHash), "the next attempt starts afresh and arrives intact");
    }

    [Test]
    public async Task AServerKilledMidDownloadIsReportedWithinTheIdleTimeoutAndTheDownloadResumesAfterItsRestart()
    {
        // The server is the quicsend tool in its own process, killed with SIGKILL: it closes nothing, says nothing.
        var init = new DotnetProcess("quicsend certs", CliTests.CliDll(), ["certs", "init"], _work.FullName);
        Assert.That(await init.WaitForExitAsync(TimeSpan.FromSeconds(45)), Is.EqualTo(0), init.Output + init.Errors);
        init.Dispose();
        int port = CliTests.FreeUdpPort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var transport = new QuicClientOptions { TrustedRootPaths = { Path.Combine(_work.FullName, "root.pem") }, IdleTimeout = TimeSpan.FromSeconds(3) };
        DotnetProcess Serve() => new("quicsend serve", CliTests.CliDll(), ["serve", "./data", "--port", port.ToString()], _work.FullName, HttpTests.Token);

        var server = Serve();
        try
        {
            await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
            await using var client = await ConnectAsync(endPoint, transport);
            var killed = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            var progress = new StripingTests.SyncProgress(v =>
            {
                if (v >= 12L << 20 && !killed.Task.IsCompleted)
                {
                    server.Dispose(); // SIGKILL, then reaped
                    killed.TrySetResult(Stopwatch.GetTimestamp());
                }
            });
            var e = Assert.CatchAsync<FileTransferException>(() => client.DownloadFileAsync("weights.bin", Target, progress));
            var after = Stopwatch.GetElapsedTime(await killed.Task);
            TestContext.Out.WriteLine($"reported {after.TotalSeconds:0.0} s after the kill: {e!.Message}");
            Assert.That(after, Is.LessThan(TimeSpan.FromSeconds(3 + 5)), "the failure is reported within the idle timeout (3 s here) and a margin");
            Assert.That(e.Message, Does.Contain("kept in").And.Contain("resumes"), "the error says the progress was kept and how to resume");
            Assert.That(File.Exists(Target), Is.False, "nothing at the target");
        }
        finally
        {
            server.Dispose();
        }

        server = Serve();
        try
        {
            await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
            await using var again = await ConnectAsync(endPoint, transport);
            var result = await again.DownloadFileAsync("weights.bin", Target);
            TestContext.Out.WriteLine(result.Message);
            Assert.That(result.ResumedBytes, Is.GreaterThan(0), "the restarted server's download resumed from the kept pieces");
            Assert.That(StripingTests.HashOf(Target), Is.EqualTo(_sourceHash), "and arrived intact");
            Assert.That(ClientEntries(), Is.EqualTo(new[] { "weights.bin" }));
        }
        finally
        {
            server.Dispose();
        }
    }

    [Test]
    public async Task TheToolKilledMidGetResumesWhenTheSameCommandRunsAgain()
    {
        // The tool cuts 48 MiB into three 16 MiB pieces. In the first run the first piece comes at once and the others
        // only after 20 s, so the tool is killed holding exactly one piece, after its progress was checkpointed.
        bool slow = true;
        using var release = new CancellationTokenSource();
        await using var serving = new StripingTests.Serving(_serverDir, async req =>
        {
            var range = HeaderCodec.Get(req.Headers, QuicSendHeaders.Range);
            if (Volatile.Read(ref slow) && range is not null && !range.StartsWith("bytes=0-", StringComparison.Ordinal))
            {
                try { await Task.Delay(20_000, release.Token); } catch (OperationCanceledException) { }
            }
        });
        var root = Path.Combine(_work.FullName, "root.pem");
        await File.WriteAllTextAsync(root, TestPki.Root.CertificatePem);
        var url = $"https://localhost:{serving.Server.LocalEndPoint.Port}/files/weights.bin";
        string[] get = ["get", url, Target, "--root", root, "--connections", "2"];
        var record = Path.Combine(_clientDir, ".weights.bin.quicsend-resume.json");

        using (var first = new DotnetProcess("quicsend get", CliTests.CliDll(), get, _work.FullName, HttpTests.Token))
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!File.Exists(record) && DateTime.UtcNow < deadline) await Task.Delay(20);
            Assert.That(File.Exists(record), Is.True, "the download recorded its progress within 30 s");
        } // SIGKILL
        Assert.That(File.Exists(Target), Is.False, "nothing at the target after the kill");
        Volatile.Write(ref slow, false);
        release.Cancel();
        serving.Drain();

        using var second = new DotnetProcess("quicsend get", CliTests.CliDll(), get, _work.FullName, HttpTests.Token);
        Assert.That(await second.WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.EqualTo(0), second.Output + second.Errors);
        Assert.That(second.Output, Does.Contain("resumed:").And.Contain(_sourceHash), second.Output);
        Assert.That(StripingTests.HashOf(Target), Is.EqualTo(_sourceHash));
        var served = serving.Drain().Where(r => r.Result.Status == 206).Sum(r => r.Result.Length);
        Assert.That(served, Is.EqualTo(Size - (16L << 20)), "the second run fetched only the two pieces the first had not kept");
        Assert.That(ClientEntries(), Is.EqualTo(new[] { "weights.bin" }));
    }
}
