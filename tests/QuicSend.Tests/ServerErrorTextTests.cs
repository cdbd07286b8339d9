using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// The 403 and 500 texts a file server sends (and the results it logs) name the file and the cause, never
/// the folder the server keeps files in: .NET's I/O messages carry full paths, which are not a client's
/// business. Every failure here is made so that it fails for root too (no chmod): a link that loops, a
/// folder where the server needs a file, a file that cannot be read.
/// </summary>
[TestFixture]
[NonParallelizable]
public class ServerErrorTextTests
{
    private DirectoryInfo _dir = null!;
    private string _served = null!;

    [SetUp]
    public void MakeFolder()
    {
        _dir = Directory.CreateTempSubdirectory("quicsend-errtext-");
        _served = Directory.CreateDirectory(Path.Combine(_dir.FullName, "served")).FullName;
    }

    [TearDown]
    public void DeleteFolder() => _dir.Delete(recursive: true);

    /// <summary>The text must not say where the server keeps files: neither the served folder nor the folder above it.</summary>
    private void AssertNoServerPath(string text, string what)
    {
        Assert.That(text, Does.Not.Contain(_served), $"{what} names the served folder: {text}");
        Assert.That(text, Does.Not.Contain(_dir.FullName), $"{what} names a server folder: {text}");
    }

    /// <summary>The result the serving loop reported for <paramref name="name"/> (the first one that is not a success).</summary>
    private static async Task<FileTransferResult> FailureOfAsync(ServedFolder served, string name)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var r = await served.Results.Reader.ReadAsync(cts.Token);
            if (r.Name == name && !r.Succeeded) return r;
        }
    }

    /// <summary>The answer has <paramref name="status"/> and names the file and the cause; neither it nor the logged result
    /// says where the server keeps its files.</summary>
    private async Task AssertNamesTheFileNotTheFolderAsync(ServedFolder served, int status, string text, int expected, string name,
        params string[] cause)
    {
        TestContext.Out.WriteLine(text);
        Assert.That(status, Is.EqualTo(expected), text);
        Assert.That(text, Does.Contain($"'{name}'"), "names the file");
        foreach (var c in cause) Assert.That(text, Does.Contain(c), "names the cause");
        AssertNoServerPath(text, $"the {expected} body");
        AssertNoServerPath((await FailureOfAsync(served, name)).Message, "the logged result");
    }

    [Test]
    public async Task ADownloadOfALinkThatLoopsIs403NamingTheFileNotTheFolder()
    {
        File.CreateSymbolicLink(Path.Combine(_served, "loop.bin"), "loop.bin"); // open() fails with ELOOP, for root too
        await using var served = new ServedFolder(_served);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var r = await client.SendAsync("GET", FileTransfer.PathFor("loop.bin"), null, null, null, cts.Token);
        await AssertNamesTheFileNotTheFolderAsync(served, r.Status, await r.ReadTextAsync(cts.Token), 403, "loop.bin", "symbolic link");
    }

    [Test]
    public async Task AChunkWhosePartialFileIsAFolderIs500NamingTheFileNotTheFolder()
    {
        const string id = "0123456789abcdef0123456789abcdef";
        var whole = RandomNumberGenerator.GetBytes(64 << 10);
        // The server keeps this upload's bytes in .<name>.<id>.partial: a folder there makes opening it fail, for root too.
        var partial = FileTransfer.TemporaryPathFor(Path.Combine(_served, "chunked.bin"), id);
        Directory.CreateDirectory(partial);
        await using var served = new ServedFolder(_served);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var (status, text) = await ServedFolder.SendChunkAsync(client, "chunked.bin", id, whole, 0, whole.Length, cts.Token);
        await AssertNamesTheFileNotTheFolderAsync(served, status, text, 500, "chunked.bin", "is a folder");
    }

    [Test]
    public async Task AnUploadWhoseTargetBecameAFolderIs500NamingTheFileNotTheFolder()
    {
        var data = RandomNumberGenerator.GetBytes(256 << 10);
        var target = Path.Combine(_served, "late.bin");
        await using var served = new ServedFolder(_served);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var r = await client.SendAsync("PUT", FileTransfer.PathFor("late.bin"), null, null,
            [new(QuicSendHeaders.ContentLength, data.Length.ToString())], 0, cts.Token, async s =>
            {
                await s.Stream.WriteAsync(data.AsMemory(0, 1000), cts.Token);
                // Once the server writes its partial file, put a folder where the file is to go: the final rename fails (EISDIR).
                while (!Directory.EnumerateFiles(_served, ".late.bin.*.partial").Any()) await Task.Delay(20, cts.Token);
                Directory.CreateDirectory(Path.Combine(target, "inside"));
                await s.Stream.WriteAsync(data.AsMemory(1000), cts.Token);
                await s.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(data)))]), cts.Token);
            });
        await AssertNamesTheFileNotTheFolderAsync(served, r.Status, await r.ReadTextAsync(cts.Token), 500, "late.bin", "is a folder", "Nothing was kept");
        Assert.That(ServedFolder.Entries(_served), Is.EqualTo(new[] { "late.bin" }), "only the folder made by the test; the partial file is gone");
    }

    [Test]
    public async Task AFileThatCannotBeReadWhileHashedIs500NamingTheFileNotTheFolder()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("uses /proc/self/mem, which opens but fails to read at offset 0 (EIO)");
        // Opening succeeds, reading fails, for root too: the HEAD that asks for the digest hashes the file and hits the error.
        // /proc/self is served itself: a link to it from the test's folder would lead outside, and is not served.
        await using var served = new ServedFolder("/proc/self");
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var r = await client.SendAsync("HEAD", FileTransfer.PathFor("mem"), null, null,
            [new(QuicSendHeaders.WantReprDigest, "sha-256=10")], cts.Token);
        await AssertNamesTheFileNotTheFolderAsync(served, r.Status, await r.ReadTextAsync(cts.Token), 500, "mem", "input/output error");
    }

    [Test]
    public void AnUnknownFailureKeepsItsWordsButLosesTheServersFolder()
    {
        // Kinds without words of our own fall back to the exception's message, cut down: quoted paths to their names, the folder taken out.
        var dir = Path.Combine(_served, "store");
        var quoted = FileTransferErrors.Cause(new IOException($"Stale file handle : '{Path.Combine(dir, "a.bin")}'"), dir);
        Assert.That(quoted, Is.EqualTo("Stale file handle : 'a.bin'"));
        var bare = FileTransferErrors.Cause(new InvalidOperationException($"Cannot lock {Path.Combine(dir, "sub", "b.bin")} or {dir} now."), dir);
        Assert.That(bare, Is.EqualTo($"Cannot lock {Path.Combine("sub", "b.bin")} or the served folder now"));
        var apostrophe = FileTransferErrors.Cause(new IOException($"Odd failure on '{Path.Combine(dir, "it's.bin")}'"), dir);
        AssertNoServerPath(apostrophe, "a message whose file name has an apostrophe");
        Assert.That(apostrophe, Does.Contain("s.bin"));
    }
}
