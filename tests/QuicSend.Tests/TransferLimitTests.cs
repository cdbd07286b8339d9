using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;
using QuicSend;

namespace QuicSend.Tests;

/// <summary>
/// Per-client bounds after authentication: one connection (or one token) cannot hold more than the
/// configured number of file transfers open at once; the excess is answered 429 with retry-after,
/// and normal striped transfers never come near the cap.
/// </summary>
[TestFixture]
[NonParallelizable]
public class TransferLimitTests
{
    private DirectoryInfo _dir = null!;
    private string _served = null!;
    private string _local = null!;
    private string _sha = null!;

    [SetUp]
    public void MakeFiles()
    {
        _dir = Directory.CreateTempSubdirectory("quicsend-limits-");
        _served = Directory.CreateDirectory(Path.Combine(_dir.FullName, "served")).FullName;
        _local = Directory.CreateDirectory(Path.Combine(_dir.FullName, "local")).FullName;
        var data = RandomNumberGenerator.GetBytes(8 << 20);
        _sha = Convert.ToHexStringLower(SHA256.HashData(data));
        File.WriteAllBytes(Path.Combine(_served, "big.bin"), data);
        File.WriteAllBytes(Path.Combine(_local, "up.bin"), data);
    }

    [TearDown]
    public void DeleteFiles() => _dir.Delete(recursive: true);

    /// <summary>File descriptors this process holds open on <paramref name="path"/> (Linux: /proc/self/fd).</summary>
    private static int OpenDescriptorsOn(string path)
    {
        int n = 0;
        foreach (var fd in new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos())
        {
            try { if (fd.LinkTarget == path) n++; }
            catch (IOException) { } // closed while we looked
        }
        return n;
    }

    /// <summary>Sends <paramref name="count"/> GETs of big.bin on one client and reads none of the bodies.</summary>
    private static async Task<List<QuicSendResponse>> OpenUnreadDownloadsAsync(QuicSendClient client, int count, CancellationToken ct) =>
        (await Task.WhenAll(Enumerable.Range(0, count).Select(_ => client.SendAsync("GET", FileTransfer.PathFor("big.bin"), null, null, null, ct)))).ToList();

    [Test]
    public async Task HundredUnreadDownloadsOnOneConnectionHoldAtMostTheCapAndTheRestAreRefusedClearly()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("counts descriptors through /proc/self/fd");
        await using var served = new ServedFolder(_served);
        int cap = new FileServingOptions().MaxTransfersPerConnection;
        // Small stream windows, a large connection window: each unread download stalls on its own stream
        // (holding its file open) while the connection still carries the other answers.
        await using var client = await served.ConnectAsync(transport: t =>
        {
            t.StreamReceiveWindow = 1 << 20;
            t.ConnectionReceiveWindow = 256 << 20;
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var file = Path.Combine(_served, "big.bin");

        GC.Collect();
        long heapBefore = GC.GetTotalMemory(true);
        long rssBefore = Environment.WorkingSet;
        var responses = await OpenUnreadDownloadsAsync(client, 100, cts.Token);
        try
        {
            await Task.Delay(500); // let the accepted ones fill their windows
            int open = OpenDescriptorsOn(file);
            long heap = GC.GetTotalMemory(false) - heapBefore, rss = Environment.WorkingSet - rssBefore;
            var accepted = responses.Where(r => r.Status == 200).ToList();
            var refused = responses.Where(r => r.Status == 429).ToList();
            TestContext.Out.WriteLine($"100 unread downloads on one connection: {accepted.Count} accepted, {refused.Count} refused (429), " +
                                      $"{open} descriptors open on the file, GC heap +{heap >> 20} MiB, RSS +{rss >> 20} MiB (client and server in this process)");
            Assert.That(accepted.Count + refused.Count, Is.EqualTo(100), "every request is either served or refused with 429");
            Assert.That(accepted.Count, Is.EqualTo(cap), "exactly the cap is served at once");
            Assert.That(open, Is.LessThanOrEqualTo(cap), "the server holds at most the cap's descriptors on the file");
            var first = refused[0];
            Assert.That(HeaderCodec.Get(first.Headers, QuicSendHeaders.RetryAfter), Is.EqualTo("1"));
            var text = Encoding.UTF8.GetString(await first.ReadBodyAsync(cancellationToken: cts.Token));
            Assert.That(text, Does.Contain($"{cap} file transfers in progress").And.Contain("MaxTransfersPerConnection"));
        }
        finally
        {
            foreach (var r in responses) r.Dispose();
        }

        // Once the readers went away the slots come back, and striped transfers on the same server are unaffected.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (served.Server.Files.Limits.InProgress > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.That(served.Server.Files.Limits.InProgress, Is.Zero, "every slot was given back");
        await using var pool = await served.ConnectAsync(connections: 2, chunkSize: 1 << 20);
        var up = await pool.UploadFileAsync(Path.Combine(_local, "up.bin"), "up.bin", cancellationToken: cts.Token);
        Assert.That(up.Sha256, Is.EqualTo(_sha));
        var back = Path.Combine(_local, "back.bin");
        await pool.DownloadFileAsync("big.bin", back, cancellationToken: cts.Token);
        Assert.That(ServedFolder.HashOf(back), Is.EqualTo(_sha));
    }

    [TestCase("MaxTransfersPerConnection")]
    [TestCase("MaxPreallocationSize")]
    [TestCase("UploadSessionIdleTimeout")]
    public void ABadFileServingSettingIsRefusedNamingIt(string setting)
    {
        var files = setting switch
        {
            "MaxTransfersPerConnection" => new FileServingOptions { MaxTransfersPerConnection = -1 },
            "MaxPreallocationSize" => new FileServingOptions { MaxPreallocationSize = -5 },
            _ => new FileServingOptions { UploadSessionIdleTimeout = TimeSpan.Zero },
        };
        var o = TestPki.ServerOptions();
        var e = Assert.Throws<QuicConfigurationException>(() => new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token], FileTransfers = files }))!;
        Assert.That(e.Message, Does.Contain("FileTransfers." + setting));
    }

    [Test]
    public async Task ATokenIsCappedAcrossItsConnectionsWhenConfigured()
    {
        await using var served = new ServedFolder(_served, new FileServingOptions { MaxTransfersPerToken = 3 });
        await using var a = await served.ConnectAsync();
        await using var b = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var held = new List<QuicSendResponse>();
        try
        {
            held.AddRange(await OpenUnreadDownloadsAsync(a, 2, cts.Token));
            held.AddRange(await OpenUnreadDownloadsAsync(b, 1, cts.Token));
            Assert.That(held.Select(r => r.Status), Is.All.EqualTo(200));
            using var over = await b.SendAsync("GET", FileTransfer.PathFor("big.bin"), null, null, null, cts.Token);
            Assert.That(over.Status, Is.EqualTo(429));
            Assert.That(Encoding.UTF8.GetString(await over.ReadBodyAsync(cancellationToken: cts.Token)), Does.Contain("MaxTransfersPerToken"));
        }
        finally
        {
            foreach (var r in held) r.Dispose();
        }
    }

    [Test]
    public async Task DirectCallsOfServeDownloadAndReceiveUploadAreHeldToTheSameCapAndBudget()
    {
        const long budget = 1 << 20;
        await using var served = new ServedFolder(_served, new FileServingOptions { MaxTransfersPerConnection = 2, MaxPreallocationSize = budget }, directCalls: true);
        // Small stream windows: an unread download stalls on its stream and keeps its slot.
        await using var client = await served.ConnectAsync(transport: t =>
        {
            t.StreamReceiveWindow = 1 << 20;
            t.ConnectionReceiveWindow = 256 << 20;
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var held = await OpenUnreadDownloadsAsync(client, 2, cts.Token);
        try
        {
            Assert.That(held.Select(r => r.Status), Is.All.EqualTo(200));
            using var third = await client.SendAsync("GET", FileTransfer.PathFor("big.bin"), null, null, null, cts.Token);
            Assert.That(third.Status, Is.EqualTo(429), "a third download through ServeDownloadAsync beside two (the cap is 2)");
            var text = Encoding.UTF8.GetString(await third.ReadBodyAsync(cancellationToken: cts.Token));
            Assert.That(text, Does.Contain("2 file transfers in progress").And.Contain("MaxTransfersPerConnection"));
            Assert.That(HeaderCodec.Get(third.Headers, QuicSendHeaders.RetryAfter), Is.EqualTo("1"));

            using var put = await client.SendAsync("PUT", FileTransfer.PathFor("refused.bin"), null, QuicSendBody.FromBytes(new byte[1000]), null, cts.Token);
            text = Encoding.UTF8.GetString(await put.ReadBodyAsync(cancellationToken: cts.Token));
            Assert.That(put.Status, Is.EqualTo(429), "an upload through ReceiveUploadAsync beside them: " + text);
            Assert.That(text, Does.Contain("PUT of 'refused.bin'"));
        }
        finally
        {
            foreach (var r in held) r.Dispose();
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (served.Server.Files.Limits.InProgress > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.That(served.Server.Files.Limits.InProgress, Is.Zero, "every slot was given back");

        // The reservation budget holds for direct calls too: two announcements of 3 MiB that send 1 KiB hold the 1 MiB budget together.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        Task Hog(string name) => ServedFolder.HoldAnnouncedUploadAsync(client, name, 3L << 20, stop.Token);
        var hogs = new[] { Hog("hog1.bin"), Hog("hog2.bin") };
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (served.Server.Files.Limits.InProgress < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await Task.Delay(200);
        Assert.That(served.Server.Files.Reserved, Is.EqualTo(budget), "the two reserve the budget between them, no more");
        stop.Cancel();
        await Task.WhenAll(hogs).WaitAsync(TimeSpan.FromSeconds(10));
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((served.Server.Files.Limits.InProgress > 0 || served.Server.Files.Reserved > 0) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.That(served.Server.Files.Reserved, Is.Zero, "the abandoned uploads gave their reservations back");

        // With the slots back, a whole upload through ReceiveUploadAsync arrives intact.
        var up = await client.UploadFileAsync(Path.Combine(_local, "up.bin"), "up.bin", cancellationToken: cts.Token);
        Assert.That(up.Sha256, Is.EqualTo(_sha));
        Assert.That(ServedFolder.HashOf(Path.Combine(_served, "up.bin")), Is.EqualTo(_sha));
    }
}
