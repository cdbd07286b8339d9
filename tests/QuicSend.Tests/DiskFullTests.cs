using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// The server's disk running out, on a small tmpfs made for each test: uploads that cannot fit are
/// refused up front with 507, a disk that fills while bytes arrive gives 507 too, reservations are
/// bounded, nothing is left at the final name or as a partial, and the server keeps serving.
/// </summary>
[TestFixture]
[NonParallelizable]
public class DiskFullTests
{
    private const int DiskMiB = 8;
    private DirectoryInfo _work = null!;
    private string _disk = null!;   // the tmpfs mount point, served
    private string _local = null!;  // the client's files, on the ordinary disk
    private bool _mounted;

    [SetUp]
    public void MountSmallDisk()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-diskfull-");
        _disk = Directory.CreateDirectory(Path.Combine(_work.FullName, "disk")).FullName;
        _local = Directory.CreateDirectory(Path.Combine(_work.FullName, "local")).FullName;
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={DiskMiB}m", "tmpfs", _disk);
        if (code != 0) Assert.Inconclusive($"These tests need a small tmpfs and could not mount one (mount exited {code}: {output.Trim()}); run them as root or with CAP_SYS_ADMIN.");
        _mounted = true;
    }

    [TearDown]
    public void UnmountSmallDisk()
    {
        if (_mounted)
        {
            var (code, output) = Run("umount", _disk);
            if (code != 0) Run("umount", "-l", _disk);
            _mounted = false;
            Assert.That(code, Is.EqualTo(0), $"umount {_disk}: {output}");
        }
        _work.Delete(recursive: true);
    }

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, text);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    private long UsedOnDisk => new DriveInfo(_disk).TotalSize - new DriveInfo(_disk).AvailableFreeSpace;

    private string LocalFile(string name, int bytes, out string sha)
    {
        var data = RandomNumberGenerator.GetBytes(bytes);
        sha = Convert.ToHexStringLower(SHA256.HashData(data));
        var path = Path.Combine(_local, name);
        File.WriteAllBytes(path, data);
        return path;
    }

    /// <summary>Nothing of a refused upload: no final name, no partial (only <paramref name="allowed"/> may be there).</summary>
    private void AssertNothingLeft(string because, params string[] allowed) =>
        Assert.That(ServedFolder.Entries(_disk).Where(e => e != "lost+found"), Is.EquivalentTo(allowed), because);

    private static void AssertClearDiskFull(FileTransferException e, string what)
    {
        Assert.That(e.StatusCode, Is.EqualTo(507), $"{what}: {e.Message}");
        Assert.That(e.ServerMessage, Does.Contain("disk is full").And.Contain("Free space on the server"), what);
        Assert.That(e.ServerMessage, Does.Not.Contain("/tmp/"), $"{what}: the answer names the file, not where the server keeps it");
    }

    [Test]
    public async Task AnUploadLargerThanTheFreeSpaceIsRefusedUpFrontWith507WholeAndStriped()
    {
        await using var served = new ServedFolder(_disk);
        await using var single = await served.ConnectAsync();
        await using var pool = await served.ConnectAsync(connections: 2, chunkSize: 1 << 20);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var big = LocalFile("big.bin", 12 << 20, out _);

        var whole = Assert.ThrowsAsync<FileTransferException>(() => single.UploadFileAsync(big, "big.bin", cancellationToken: cts.Token))!;
        AssertClearDiskFull(whole, "whole upload");
        Assert.That(whole.ServerMessage, Does.Contain("12582912 bytes"), "it says how large the upload is and how much is free");
        AssertNothingLeft("a whole upload refused for space leaves nothing");

        var striped = Assert.ThrowsAsync<FileTransferException>(() => pool.UploadFileAsync(big, "big.bin", cancellationToken: cts.Token))!;
        AssertClearDiskFull(striped, "striped upload");
        AssertNothingLeft("a striped upload refused for space leaves nothing");

        // A client that announces 900 MiB and sends nothing is refused at once, reserving nothing.
        using (var r = await single.SendAsync("PUT", FileTransfer.PathFor("huge.bin"), null, null,
                   [new(QuicSendHeaders.ContentLength, (900L << 20).ToString())], 0, cts.Token, _ => ValueTask.CompletedTask))
        {
            Assert.That(r.Status, Is.EqualTo(507), Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token)));
        }
        AssertNothingLeft("nothing reserved for an announcement that cannot fit");

        // The server still serves: a file that fits arrives intact.
        var small = LocalFile("small.bin", 3 << 20, out var smallSha);
        var ok = await single.UploadFileAsync(small, "small.bin", cancellationToken: cts.Token);
        Assert.That(ok.Sha256, Is.EqualTo(smallSha));
        Assert.That(ServedFolder.HashOf(Path.Combine(_disk, "small.bin")), Is.EqualTo(smallSha));
    }

    [Test]
    public async Task PreallocationIsBoundedSoAnnouncementsThatSendNothingCannotTakeTheDisk()
    {
        const long budget = 1 << 20;
        await using var served = new ServedFolder(_disk, new FileServingOptions { MaxPreallocationSize = budget });
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        long before = UsedOnDisk;

        // Two uploads each announce 3 MiB of an 8 MiB disk, send 1 KiB, then nothing.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        Task Hog(string name) => ServedFolder.HoldAnnouncedUploadAsync(client, name, 3L << 20, stop.Token);
        var hogs = new[] { Hog("hog1.bin"), Hog("hog2.bin") };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (ServedFolder.Entries(_disk).Count(e => e.StartsWith(".hog")) < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await Task.Delay(200); // the reservation follows the file's creation
        long held = UsedOnDisk - before;
        TestContext.Out.WriteLine($"two announcements of 3 MiB that sent 1 KiB each hold {held} bytes of the disk (budget {budget})");
        Assert.That(held, Is.LessThanOrEqualTo(budget + (256 << 10)), "the reservations together stay within MaxPreallocationSize");

        // The next real upload still fits and arrives intact.
        var real = LocalFile("real.bin", 5 << 20, out var realSha);
        var ok = await client.UploadFileAsync(real, "real.bin", cancellationToken: cts.Token);
        Assert.That(ok.Sha256, Is.EqualTo(realSha));
        Assert.That(ServedFolder.HashOf(Path.Combine(_disk, "real.bin")), Is.EqualTo(realSha));

        stop.Cancel();
        await Task.WhenAll(hogs).WaitAsync(TimeSpan.FromSeconds(10));
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (ServedFolder.Entries(_disk).Length > 1 && DateTime.UtcNow < deadline) await Task.Delay(50);
        AssertNothingLeft("the abandoned uploads' partials are deleted", "real.bin");
        Assert.That(served.Server.Files.Reserved, Is.Zero, "their reservations were given back");
    }

    [Test]
    public async Task ADiskThatFillsWhileBytesArriveGives507AndTheServerKeepsServing()
    {
        await using var served = new ServedFolder(_disk);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // A whole upload with no content-length: nothing to check up front, the disk fills mid-body.
        var stream = RandomNumberGenerator.GetBytes(12 << 20);
        using (var r = await client.SendAsync("PUT", FileTransfer.PathFor("stream.bin"), null, null, null, 0, cts.Token, async s =>
               {
                   await s.Stream.WriteAsync(stream, cts.Token);
                   await s.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(stream)))]), cts.Token);
               }))
        {
            var text = Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token));
            Assert.That(r.Status, Is.EqualTo(507), text);
            Assert.That(text, Does.Contain("disk is full").And.Contain("no space left").And.Contain("Free space on the server"));
        }
        AssertNothingLeft("the whole upload's partial is deleted");

        // A striped upload that fits when it starts; then something else fills the disk; the next chunk gets 507.
        var data = RandomNumberGenerator.GetBytes(6 << 20);
        const string id = "diskfull-0123456789abcdef";
        Assert.That((await ServedFolder.SendChunkAsync(client, "striped.bin", id, data, 0, 1 << 20, cts.Token)).Status, Is.EqualTo(202));
        var filler = Path.Combine(_disk, "filler");
        await using (var f = File.Create(filler))
        {
            var zeros = new byte[64 << 10];
            try { while (true) f.Write(zeros); } catch (IOException) { }
        }
        var full = await ServedFolder.SendChunkAsync(client, "striped.bin", id, data, 1 << 20, 1 << 20, cts.Token);
        Assert.That(full.Status, Is.EqualTo(507), full.Text);
        Assert.That(full.Text, Does.Contain("disk is full").And.Contain("Free space on the server"));
        using (var gone = await client.SendAsync("DELETE", FileTransfer.PathFor("striped.bin"), null, null, [new(QuicSendHeaders.UploadId, id)], cts.Token))
            Assert.That(gone.Status, Is.EqualTo(200));
        AssertNothingLeft("the abandoned striped upload's partial is deleted", "filler");

        // Space again: the same server serves uploads and downloads.
        File.Delete(filler);
        var small = LocalFile("after.bin", 3 << 20, out var sha);
        Assert.That((await client.UploadFileAsync(small, "after.bin", cancellationToken: cts.Token)).Sha256, Is.EqualTo(sha));
        var back = Path.Combine(_local, "back.bin");
        await client.DownloadFileAsync("after.bin", back, cancellationToken: cts.Token);
        Assert.That(ServedFolder.HashOf(back), Is.EqualTo(sha));
        AssertNothingLeft("only the stored file", "after.bin");
    }
}
