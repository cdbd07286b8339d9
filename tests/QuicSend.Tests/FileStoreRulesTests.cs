using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// The file store's rules (issue 11): links never lead a download out of the served folder, names are one
/// spelling (NFC), names unsafe on other systems are refused, and an existing file is replaced only when asked.
/// </summary>
[TestFixture]
[NonParallelizable]
public class FileStoreRulesTests
{
    private DirectoryInfo _work = null!;
    private string _serverDir = null!, _clientDir = null!, _outsideDir = null!;

    [SetUp]
    public void MakeFolders()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-rules-");
        _serverDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "server")).FullName;
        _clientDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "client")).FullName;
        _outsideDir = Directory.CreateDirectory(Path.Combine(_work.FullName, "outside")).FullName;
    }

    [TearDown]
    public void DeleteFolders() => _work.Delete(recursive: true);

    private static async Task<(int Status, string Text)> SendAsync(QuicSendClient client, string method, string name,
        IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var r = await client.SendAsync(method, FileTransfer.PathFor(name), null, null, headers, 0, cts.Token);
        return (r.Status, Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: cts.Token)));
    }

    [Test]
    public async Task ALinkOutOfTheServedFolderIsRefusedWith403AndNeverSent()
    {
        const string secret = "the secret outside the served folder";
        var outside = Path.Combine(_outsideDir, "secret.txt");
        File.WriteAllText(outside, secret);
        File.CreateSymbolicLink(Path.Combine(_serverDir, "leak.txt"), outside);
        // Relative, and through a folder link: only the final real path counts.
        Directory.CreateSymbolicLink(Path.Combine(_serverDir, "away"), _outsideDir);
        File.CreateSymbolicLink(Path.Combine(_serverDir, "sneaky.txt"), "away/secret.txt");
        File.CreateSymbolicLink(Path.Combine(_serverDir, "updown.txt"), "../outside/secret.txt");
        // Links that stay inside are served.
        var real = Path.Combine(_serverDir, "real.bin");
        File.WriteAllBytes(real, RandomNumberGenerator.GetBytes(300_000));
        File.CreateSymbolicLink(Path.Combine(_serverDir, "alias.bin"), "real.bin");

        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        foreach (var name in new[] { "leak.txt", "sneaky.txt", "updown.txt" })
        {
            foreach (var (method, headers) in new (string, KeyValuePair<string, string>[]?)[]
                     { ("GET", null), ("HEAD", null), ("GET", [new(QuicSendHeaders.Range, "bytes=0-9")]) })
            {
                var (status, text) = await SendAsync(client, method, name, headers);
                TestContext.Out.WriteLine($"{method} {name} -> {status} {text}");
                Assert.That(status, Is.EqualTo(403), $"{method} {name}");
                if (method == "GET")
                {
                    Assert.That(text, Does.Contain($"'{name}' is a link that leads outside the served folder"));
                    Assert.That(text, Does.Not.Contain(secret));
                }
            }
            var target = Path.Combine(_clientDir, name);
            var e = Assert.ThrowsAsync<FileTransferException>(async () => await client.DownloadFileAsync(name, target));
            Assert.That(e!.StatusCode, Is.EqualTo(403));
            Assert.That(e.Message, Does.Contain("is a link that leads outside the served folder").And.Not.Contain(secret));
            Assert.That(File.Exists(target), Is.False);
        }

        // A striped (ranged) download of the inside link: the same bytes as the file it names.
        await using var striped = await served.ConnectAsync(connections: 2, chunkSize: 64 * 1024);
        var copy = Path.Combine(_clientDir, "alias.bin");
        await striped.DownloadFileAsync("alias.bin", copy);
        Assert.That(ServedFolder.HashOf(copy), Is.EqualTo(ServedFolder.HashOf(real)));
        Assert.That(File.ReadAllText(outside), Is.EqualTo(secret));
    }

    [Test]
    public async Task AnUploadOverALinkReplacesTheLinkNotTheFileItNames()
    {
        const string secret = "never to be overwritten";
        var outside = Path.Combine(_outsideDir, "secret.txt");
        File.WriteAllText(outside, secret);
        var link = Path.Combine(_serverDir, "leak.txt");
        File.CreateSymbolicLink(link, outside);
        var (small, big) = WriteSmallAndBig();

        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        // Without asking, the link is a taken name like any other.
        var refused = Assert.ThrowsAsync<FileTransferException>(async () => await client.UploadFileAsync(small, "leak.txt"));
        Assert.That(refused!.StatusCode, Is.EqualTo(409));
        Assert.That(File.ReadAllText(outside), Is.EqualTo(secret));
        await client.UploadFileAsync(small, "leak.txt", overwrite: true);
        Assert.That(new FileInfo(link).LinkTarget, Is.Null, "the entry itself was replaced");
        Assert.That(ServedFolder.HashOf(link), Is.EqualTo(ServedFolder.HashOf(small)));
        Assert.That(File.ReadAllText(outside), Is.EqualTo(secret));

        // A striped upload's commit too.
        File.Delete(link);
        File.CreateSymbolicLink(link, outside);
        await using var striped = await served.ConnectAsync(connections: 2, chunkSize: 64 * 1024);
        await striped.UploadFileAsync(big, "leak.txt", overwrite: true);
        Assert.That(new FileInfo(link).LinkTarget, Is.Null);
        Assert.That(ServedFolder.HashOf(link), Is.EqualTo(ServedFolder.HashOf(big)));
        Assert.That(File.ReadAllText(outside), Is.EqualTo(secret));
    }

    [Test]
    public async Task TheNfcAndNfdSpellingsOfANameAreOneFile()
    {
        const string nfc = "caf\u00e9.bin", nfd = "cafe\u0301.bin";
        Assert.That(nfd, Is.Not.EqualTo(nfc));
        var source = Path.Combine(_clientDir, "source.bin");
        File.WriteAllBytes(source, RandomNumberGenerator.GetBytes(200_000));

        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        var up = await client.UploadFileAsync(source, nfd);
        Assert.That(up.Name, Is.EqualTo(nfc));
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { nfc }), "one file, under the NFC name");

        var back = Path.Combine(_clientDir, "back.bin");
        var down = await client.DownloadFileAsync(nfc, back);
        Assert.That(ServedFolder.HashOf(back), Is.EqualTo(ServedFolder.HashOf(source)));
        Assert.That(down.Sha256, Is.EqualTo(up.Sha256));

        // A raw request with the NFD spelling percent-encoded reaches the same file, as does a striped upload.
        using (var raw = await client.SendAsync("HEAD", "/files/" + Uri.EscapeDataString(nfd), null, null, null))
            Assert.That(raw.ContentLength, Is.EqualTo(200_000));
        File.Delete(Path.Combine(_serverDir, nfc));
        await using var striped = await served.ConnectAsync(connections: 2, chunkSize: 64 * 1024);
        await striped.UploadFileAsync(source, nfd);
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { nfc }));
        Assert.That(ServedFolder.HashOf(Path.Combine(_serverDir, nfc)), Is.EqualTo(ServedFolder.HashOf(source)));
        Assert.That(FileTransfer.PathFor(nfd), Is.EqualTo(FileTransfer.PathFor(nfc)));
        Assert.That(FileTransfer.NameFromPath("/files/" + Uri.EscapeDataString(nfd)), Is.EqualTo(nfc));
    }

    // Each unsafe kind of name, and what its refusal must say.
    private static readonly (string Name, string Why)[] s_unsafe =
    [
        ("invoice\u202Egpj.exe", "invisible formatting character U+202E"), // right-to-left override: shows as "invoiceexe.jpg"
        ("a\u2066b.txt", "invisible formatting character U+2066"),
        ("a\u200Fb.txt", "invisible formatting character U+200F"),
        ("zero\u200Bwidth.txt", "invisible formatting character U+200B"),
        ("bom\uFEFF.txt", "invisible formatting character U+FEFF"),
        ("trailing.txt ", "ends with a space"),
        ("trailing.", "ends with '.'"),
        ("CON", "Windows device name (CON"),
        ("con.txt", "Windows device name (CON"),
        ("Nul.tar.gz", "Windows device name (NUL"),
        ("aux", "Windows device name (AUX"),
        ("PRN .txt", "Windows device name (PRN"),
        ("com1.log", "Windows device name (COM1"),
        ("LPT9", "Windows device name (LPT9"),
        ("COM\u00B9.txt", "Windows device name (COM\u00B9"),
    ];

    [Test]
    public void ValidateNameRefusesUnsafeNamesSayingWhyAndKeepsNamesThatOnlyLookClose()
    {
        foreach (var (name, why) in s_unsafe)
        {
            var message = FileTransfer.ValidateName(name);
            Assert.That(message, Does.Contain(why).And.Contain("it was refused"), name);
            // Ordinal: NUnit's culture-aware Contains ignores format characters.
            Assert.That(message!.Any(char.IsControl) || message.Any(c => char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format), Is.False,
                "an unsafe character is shown as U+XXXX, not obeyed");
        }
        foreach (var fine in new[] { "console.txt", "CON1.txt", "com10.log", "LPT.txt", "nul-report.pdf", "a.b", "caf\u00e9.bin", "\u05e9\u05dc\u05d5\u05dd.txt",
                     "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt" /* Persian, with a zero-width non-joiner */,
                     "\U0001F468\u200D\U0001F469\u200D\U0001F467.png" /* an emoji family, joined by zero-width joiners */ })
            Assert.That(FileTransfer.ValidateName(fine), Is.Null, fine);
    }

    [Test]
    public async Task TheServerRefusesUnsafeNamesWith400AndStoresNothing()
    {
        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        var payload = Encoding.ASCII.GetBytes("payload");
        foreach (var (name, why) in s_unsafe)
        {
            File.WriteAllBytes(Path.Combine(_serverDir, "x"), payload); // something a GET could be tricked into
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var path = "/files/" + Uri.EscapeDataString(name);
            using (var put = await client.SendAsync("PUT", path, null, null, null, 0, cts.Token, async stream =>
                   {
                       await stream.Stream.WriteAsync(payload, cts.Token);
                       await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(payload)))]));
                   }))
            {
                var text = await put.ReadTextAsync(cts.Token);
                TestContext.Out.WriteLine($"PUT {path} -> {put.Status} {text}");
                Assert.That(put.Status, Is.EqualTo(400), name);
                Assert.That(text, Does.StartWith("400 Bad Request:").And.Contain(why).And.Contain("it was refused"));
            }
            using (var get = await client.SendAsync("GET", path, null, null, null, 0, cts.Token))
            {
                Assert.That(get.Status, Is.EqualTo(400), name);
                Assert.That(await get.ReadTextAsync(cts.Token), Does.Contain(why));
            }
            Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { "x" }), name);
        }
    }

    [Test]
    public async Task TheClientRefusesUnsafeNamesBeforeSendingAnything()
    {
        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        var small = Path.Combine(_clientDir, "small.bin");
        File.WriteAllText(small, "small");
        foreach (var (name, why) in s_unsafe)
        {
            var up = Assert.ThrowsAsync<ArgumentException>(async () => await client.UploadFileAsync(small, name));
            Assert.That(up!.ParamName, Is.EqualTo("remoteName"));
            Assert.That(up.Message, Does.Contain(why).And.Contain("it was refused"));
            var down = Assert.ThrowsAsync<ArgumentException>(async () => await client.DownloadFileAsync(name, Path.Combine(_clientDir, "out")));
            Assert.That(down!.Message, Does.Contain(why));
            Assert.Throws<ArgumentException>(() => FileTransfer.PathFor(name));
        }
        Assert.That(ServedFolder.Entries(_serverDir), Is.Empty);
        Assert.That(await served.Results.Reader.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromMilliseconds(300)).ContinueWith(t => t.IsCompletedSuccessfully),
            Is.False, "no request reached the server");
    }

    private static void AssertExistsRefusal(FileTransferException? e, string name)
    {
        Assert.That(e, Is.Not.Null);
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.StatusCode, Is.EqualTo(409));
        Assert.That(e.ServerMessage, Does.Contain($"'{name}' already exists on the server; it was not replaced")
            .And.Contain("quicsend-overwrite: ?1").And.Contain("--overwrite"));
    }

    [Test]
    public async Task AnUploadToATakenNameIsRefusedWith409UnlessItAsksToOverwrite()
    {
        var existing = Path.Combine(_serverDir, "data.bin");
        File.WriteAllText(existing, "old");
        var oldHash = ServedFolder.HashOf(existing);
        var (small, big) = WriteSmallAndBig();

        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        await using var striped = await served.ConnectAsync(connections: 2, chunkSize: 64 * 1024);
        AssertExistsRefusal(Assert.ThrowsAsync<FileTransferException>(async () => await client.UploadFileAsync(small, "data.bin")), "data.bin");
        AssertExistsRefusal(Assert.ThrowsAsync<FileTransferException>(async () => await striped.UploadFileAsync(big, "data.bin")), "data.bin");
        AssertExistsRefusal(Assert.ThrowsAsync<FileTransferException>(async () => await client.UploadFileAsync(small, "data.bin", overwrite: false)), "data.bin");
        Assert.That(ServedFolder.HashOf(existing), Is.EqualTo(oldHash), "the existing file is untouched");
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { "data.bin" }), "no partial file is left");

        // Asked for, the file is replaced: whole, then striped.
        await client.UploadFileAsync(small, "data.bin", overwrite: true);
        Assert.That(ServedFolder.HashOf(existing), Is.EqualTo(ServedFolder.HashOf(small)));
        await striped.UploadFileAsync(big, "data.bin", overwrite: true);
        Assert.That(ServedFolder.HashOf(existing), Is.EqualTo(ServedFolder.HashOf(big)));
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { "data.bin" }));

        // A malformed header is refused, not read as either answer.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var payload = Encoding.ASCII.GetBytes("x");
        using var bad = await client.SendAsync("PUT", FileTransfer.PathFor("new.bin"), null, null, [new(QuicSendHeaders.Overwrite, "yes")], 0, cts.Token, async stream =>
        {
            await stream.Stream.WriteAsync(payload, cts.Token);
            await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(payload)))]));
        });
        Assert.That(bad.Status, Is.EqualTo(400));
        Assert.That(await bad.ReadTextAsync(cts.Token), Does.Contain("'quicsend-overwrite' header must be ?1"));
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { "data.bin" }));
    }

    [Test]
    public async Task AStripedUploadWhoseNameIsTakenBeforeItsCommitIsRefusedAndCanCommitAgainAskingToOverwrite()
    {
        var whole = RandomNumberGenerator.GetBytes(200_000);
        await using var served = new ServedFolder(_serverDir);
        await using var client = await served.ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        const string id = "upload-0123456789";
        Assert.That((await ServedFolder.SendChunkAsync(client, "late.bin", id, whole, 0, 100_000, cts.Token)).Status, Is.EqualTo(202));

        // Another writer takes the name while the upload is under way; its remaining chunk still belongs to the session.
        var target = Path.Combine(_serverDir, "late.bin");
        File.WriteAllText(target, "someone else's");
        Assert.That((await ServedFolder.SendChunkAsync(client, "late.bin", id, whole, 100_000, 100_000, cts.Token)).Status, Is.EqualTo(202));
        var (status, text) = await ServedFolder.CommitAsync(client, "late.bin", id, whole, cts.Token);
        Assert.That(status, Is.EqualTo(409), text);
        Assert.That(text, Does.Contain("'late.bin' already exists on the server; it was not replaced"));
        Assert.That(File.ReadAllText(target), Is.EqualTo("someone else's"));

        // The session was kept: the same upload commits once it asks to overwrite.
        using var commit = await client.SendAsync("PUT", FileTransfer.PathFor("late.bin"), null, null,
        [
            new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadCommit, whole.Length.ToString()),
            new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(whole))), new(QuicSendHeaders.Overwrite, "?1"),
        ], cts.Token);
        Assert.That(commit.Status, Is.EqualTo(201), await commit.ReadTextAsync(cts.Token));
        Assert.That(ServedFolder.HashOf(target), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(whole))));
        Assert.That(ServedFolder.Entries(_serverDir), Is.EqualTo(new[] { "late.bin" }));
    }

    /// <summary>Two local files to upload: one sent whole (100 kB), one striped in 64 KiB chunks (300 kB).</summary>
    private (string Small, string Big) WriteSmallAndBig()
    {
        var small = Path.Combine(_clientDir, "small.bin");
        File.WriteAllBytes(small, RandomNumberGenerator.GetBytes(100_000));
        var big = Path.Combine(_clientDir, "big.bin");
        File.WriteAllBytes(big, RandomNumberGenerator.GetBytes(300_000));
        return (small, big);
    }
}
