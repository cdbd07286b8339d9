using System.Security.Cryptography;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// The upload-status query a resuming client sends (docs/striping.md, "Resuming an upload"): HEAD with
/// the upload id answers the verified ranges of a live session, 404 otherwise; a plain HEAD is unchanged.
/// </summary>
[TestFixture]
[NonParallelizable]
public class UploadStatusTests
{
    private DirectoryInfo _dir = null!;

    [SetUp]
    public void MakeFolder() => _dir = Directory.CreateTempSubdirectory("quicsend-status-");

    [TearDown]
    public void DeleteFolder() => _dir.Delete(recursive: true);

    [Test]
    public async Task HeadWithAnUploadIdAnswersTheVerifiedRangesMergedAndAscending()
    {
        await using var served = new ServedFolder(_dir.FullName, tokens: [HttpTests.Token, "other-token-0123456789"]);
        await using var client = await served.ConnectAsync();
        await using var stranger = await served.ConnectAsync("other-token-0123456789");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var data = RandomNumberGenerator.GetBytes(3000);
        const string id = "resume-0123456789abcdef";

        var none = await ServedFolder.UploadStatusAsync(client, "model.bin", id, cts.Token);
        Assert.That(none.Status, Is.EqualTo(404), "no session yet");
        Assert.That(none.Text, Does.Contain(id).And.Contain("upload the whole file again"));

        // A chunk that fails its hash makes the session but is not counted as received.
        Assert.That((await ServedFolder.SendChunkAsync(client, "model.bin", id, data, 1000, 1000, cts.Token, sha: new string('0', 64))).Status, Is.EqualTo(422));
        var empty = await ServedFolder.UploadStatusAsync(client, "model.bin", id, cts.Token);
        Assert.That(empty.Status, Is.EqualTo(200), empty.Text);
        Assert.That(empty.Length, Is.EqualTo("3000"));
        Assert.That(empty.Received, Is.EqualTo(""), "nothing verified yet: an empty value");

        Assert.That((await ServedFolder.SendChunkAsync(client, "model.bin", id, data, 2000, 1000, cts.Token)).Status, Is.EqualTo(202));
        Assert.That((await ServedFolder.SendChunkAsync(client, "model.bin", id, data, 0, 500, cts.Token)).Status, Is.EqualTo(202));
        Assert.That((await ServedFolder.SendChunkAsync(client, "model.bin", id, data, 500, 300, cts.Token)).Status, Is.EqualTo(202));
        var some = await ServedFolder.UploadStatusAsync(client, "model.bin", id, cts.Token);
        Assert.That(some.Status, Is.EqualTo(200));
        Assert.That(some.Length, Is.EqualTo("3000"));
        Assert.That(some.Received, Is.EqualTo("0-799,2000-2999"), "merged, ascending, inclusive");

        // Only the token and the name the session was made with see it.
        var other = await ServedFolder.UploadStatusAsync(stranger, "model.bin", id, cts.Token);
        Assert.That(other.Status, Is.EqualTo(404), "another token's session is not visible");
        Assert.That(other.Received, Is.Null);
        Assert.That((await ServedFolder.UploadStatusAsync(client, "other.bin", id, cts.Token)).Status, Is.EqualTo(404), "another name");

        // The client sends only what is missing, then commits as before.
        Assert.That((await ServedFolder.SendChunkAsync(client, "model.bin", id, data, 800, 1200, cts.Token)).Status, Is.EqualTo(202));
        Assert.That((await ServedFolder.UploadStatusAsync(client, "model.bin", id, cts.Token)).Received, Is.EqualTo("0-2999"));
        var commit = await ServedFolder.CommitAsync(client, "model.bin", id, data, cts.Token);
        Assert.That(commit.Status, Is.EqualTo(201), commit.Text);
        Assert.That(ServedFolder.HashOf(Path.Combine(_dir.FullName, "model.bin")), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
        Assert.That((await ServedFolder.UploadStatusAsync(client, "model.bin", id, cts.Token)).Status, Is.EqualTo(404), "committed: no session any more");

        // A HEAD without the header describes the stored file, as before.
        using var plain = await client.SendAsync("HEAD", FileTransfer.PathFor("model.bin"), null, null, null, cts.Token);
        Assert.That(plain.Status, Is.EqualTo(200));
        Assert.That(HeaderCodec.Get(plain.Headers, QuicSendHeaders.ContentLength), Is.EqualTo("3000"));
        Assert.That(HeaderCodec.Get(plain.Headers, QuicSendHeaders.UploadReceived), Is.Null);
        Assert.That(ServedFolder.Entries(_dir.FullName), Is.EqualTo(new[] { "model.bin" }));
    }

    [Test]
    public async Task AResumableUploadCutOffMidwaySendsOnlyTheRestTheNextTime()
    {
        await using var served = new ServedFolder(_dir.FullName);
        await using var client = await served.ConnectAsync(connections: 2, chunkSize: 1 << 20, resumable: true);
        var local = Directory.CreateDirectory(Path.Combine(_dir.FullName, "local")).FullName;
        var source = Path.Combine(local, "weights.bin");
        var data = RandomNumberGenerator.GetBytes(12 << 20);
        File.WriteAllBytes(source, data);
        var servedName = Path.Combine(_dir.FullName, "weights.bin");

        // The first attempt stops once half the file was sent; the server keeps the verified chunks.
        using (var cut = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            var progress = new StopAt(6 << 20, cut);
            Assert.CatchAsync<OperationCanceledException>(() => client.UploadFileAsync(source, "weights.bin", progress, cut.Token));
        }
        Assert.That(File.Exists(servedName), Is.False, "nothing at the final name after the cut");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var second = await client.UploadFileAsync(source, "weights.bin", cancellationToken: cts.Token);
        TestContext.Out.WriteLine(second.Message);
        Assert.That(second.ResumedBytes, Is.GreaterThan(0), "the second attempt found the chunks the first one left (upload-status query)");
        Assert.That(second.Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
        Assert.That(ServedFolder.HashOf(servedName), Is.EqualTo(second.Sha256));
        Assert.That(ServedFolder.Entries(_dir.FullName), Is.EqualTo(new[] { "local", "weights.bin" }), "no partial left");
    }

    /// <summary>Cancels once <paramref name="at"/> bytes were reported.</summary>
    private sealed class StopAt(long at, CancellationTokenSource cts) : IProgress<long>
    {
        public void Report(long value)
        {
            if (value >= at) cts.Cancel();
        }
    }

    [Test]
    public async Task AnUploadStatusWithAMalformedIdIsRefusedNamingTheRule()
    {
        await using var served = new ServedFolder(_dir.FullName);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var bad = await ServedFolder.UploadStatusAsync(client, "model.bin", "no spaces!", cts.Token);
        Assert.That(bad.Status, Is.EqualTo(400));
        Assert.That(bad.Text, Does.Contain(QuicSendHeaders.UploadId).And.Contain("8 to 64"));
    }
}
