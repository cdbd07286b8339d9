using System.Security.Cryptography;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// Partial files and upload sessions on the server: stale partials are swept when a folder is first
/// served and periodically; live sessions' partials are kept; each server owns its sessions and drops
/// them (with their partials) when it is disposed.
/// </summary>
[TestFixture]
[NonParallelizable]
public class PartialFileTests
{
    private DirectoryInfo _dir = null!;

    [SetUp]
    public void MakeFolder() => _dir = Directory.CreateTempSubdirectory("quicsend-partials-");

    [TearDown]
    public void DeleteFolder() => _dir.Delete(recursive: true);

    private string In(string name) => Path.Combine(_dir.FullName, name);

    private string Plant(string name, TimeSpan age)
    {
        var path = In(name);
        File.WriteAllBytes(path, new byte[4096]);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
        return path;
    }

    [Test]
    public async Task StalePartialsAreSweptWhenServingStartsAndOthersAreLeftAlone()
    {
        // What a killed server leaves: whole-upload and striped-upload partials, untouched for an hour.
        Plant(".weights.bin.0123456789abcdef.partial", TimeSpan.FromHours(1));
        Plant(".data.tar.0123456789abcdef0123456789abcdef.partial", TimeSpan.FromHours(1));
        // Not ours, or not stale: a fresh partial (another server process may be writing it), other dot files, a non-matching name.
        Plant(".fresh.bin.fedcba9876543210.partial", TimeSpan.Zero);
        Plant(".hidden", TimeSpan.FromHours(1));
        Plant("notes.partial", TimeSpan.FromHours(1));
        Plant("model.bin", TimeSpan.FromHours(1));
        // A resumable download's pieces (a client downloading into the served folder) are kept for its next attempt.
        Plant(".got.bin.quicsend-resume.partial", TimeSpan.FromHours(1));
        Plant(".got.bin.quicsend-resume.json", TimeSpan.FromHours(1));
        var outside = Directory.CreateTempSubdirectory("quicsend-outside-");
        try
        {
            var victim = Path.Combine(outside.FullName, "victim");
            File.WriteAllText(victim, "keep me");
            File.CreateSymbolicLink(In(".link.bin.0123456789abcdef.partial"), victim);
            File.SetLastWriteTimeUtc(victim, DateTime.UtcNow - TimeSpan.FromHours(1));

            await using var served = new ServedFolder(_dir.FullName);
            Assert.That(ServedFolder.Entries(_dir.FullName), Is.EqualTo(new[]
            {
                ".fresh.bin.fedcba9876543210.partial", ".got.bin.quicsend-resume.json", ".got.bin.quicsend-resume.partial", ".hidden",
                ".link.bin.0123456789abcdef.partial", "model.bin", "notes.partial",
            }), "the two stale partials are gone as soon as the folder is served; nothing else was touched");
            Assert.That(File.ReadAllText(victim), Is.EqualTo("keep me"), "a link is never followed or deleted");
            Assert.That(served.Server.Files.SweptPartials, Is.EqualTo(2));
        }
        finally
        {
            outside.Delete(recursive: true);
        }
    }

    [Test]
    public async Task ALiveSessionsPartialSurvivesTheSweepAndAnIdleOneIsDroppedWithoutAnyRequest()
    {
        var idle = TimeSpan.FromSeconds(2);
        await using var served = new ServedFolder(_dir.FullName, new FileServingOptions { UploadSessionIdleTimeout = idle });
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var data = RandomNumberGenerator.GetBytes(4000);
        const string id = "live-0123456789abcdef";
        Assert.That((await ServedFolder.SendChunkAsync(client, "live.bin", id, data, 0, 1000, cts.Token)).Status, Is.EqualTo(202));
        var partial = In($".live.bin.{id}.partial");
        Assert.That(File.Exists(partial), Is.True);

        // Its file looks old, but the session is live: the sweep leaves it.
        File.SetLastWriteTimeUtc(partial, DateTime.UtcNow - TimeSpan.FromHours(1));
        served.Server.Files.Sweep();
        Assert.That(File.Exists(partial), Is.True, "a live session's partial is never swept");

        // No further chunk and no request at all: the periodic sweep drops the session and its partial.
        var deadline = DateTime.UtcNow + idle + TimeSpan.FromSeconds(10);
        while (File.Exists(partial) && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.That(File.Exists(partial), Is.False, $"the idle session's partial is removed within the idle timeout ({idle.TotalSeconds} s) and a sweep interval");
        Assert.That((await ServedFolder.UploadStatusAsync(client, "live.bin", id, cts.Token)).Status, Is.EqualTo(404), "the session is gone too");
        Assert.That(ServedFolder.Entries(_dir.FullName), Is.Empty);
    }

    [Test]
    public async Task AWholeUploadThatPausesLongerThanTheIdleTimeoutKeepsItsPartial()
    {
        var idle = TimeSpan.FromSeconds(1);
        await using var served = new ServedFolder(_dir.FullName, new FileServingOptions { UploadSessionIdleTimeout = idle });
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var data = RandomNumberGenerator.GetBytes(2048);
        using var r = await client.SendAsync("PUT", FileTransfer.PathFor("slow.bin"), null, null,
            [new(QuicSendHeaders.ContentLength, "2048")], 0, cts.Token, async s =>
            {
                await s.Stream.WriteAsync(data.AsMemory(0, 1024), cts.Token);
                // Idle past the timeout while several periodic sweeps run: the partial is in use, not stale.
                await Task.Delay(idle * 3, cts.Token);
                await s.Stream.WriteAsync(data.AsMemory(1024), cts.Token);
                await s.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(data)))]), cts.Token);
            });
        Assert.That(r.Status, Is.EqualTo(201), System.Text.Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token)));
        Assert.That(ServedFolder.HashOf(In("slow.bin")), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
        Assert.That(ServedFolder.Entries(_dir.FullName), Is.EqualTo(new[] { "slow.bin" }));
    }

    [Test]
    public async Task EachServerOwnsItsUploadSessionsAndDisposingItDropsThem()
    {
        var data = RandomNumberGenerator.GetBytes(2000);
        const string id = "owned-0123456789abcdef";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var partial = In($".shared.bin.{id}.partial");
        await using var second = new ServedFolder(_dir.FullName);
        await using (var first = new ServedFolder(_dir.FullName))
        {
            await using var client = await first.ConnectAsync();
            Assert.That((await ServedFolder.SendChunkAsync(client, "shared.bin", id, data, 0, 1000, cts.Token)).Status, Is.EqualTo(202));
            Assert.That((await ServedFolder.SendChunkAsync(client, "shared.bin", id, data, 1000, 1000, cts.Token)).Status, Is.EqualTo(202));
            Assert.That(File.Exists(partial), Is.True);

            // The same token, folder and id on another server in the same process: not its session.
            await using var other = await second.ConnectAsync();
            Assert.That((await ServedFolder.UploadStatusAsync(other, "shared.bin", id, cts.Token)).Status, Is.EqualTo(404));
            var commit = await ServedFolder.CommitAsync(other, "shared.bin", id, data, cts.Token);
            Assert.That(commit.Status, Is.EqualTo(404), "another server cannot commit this server's upload: " + commit.Text);
            Assert.That(File.Exists(partial), Is.True, "and its sweep leaves the fresh partial of the first server alone");
        }
        Assert.That(File.Exists(partial), Is.False, "disposing the server dropped its session and the partial");
        Assert.That(ServedFolder.Entries(_dir.FullName), Is.Empty, "nothing at the final name");
    }
}
