using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// A client process killed (SIGKILL) in the middle of an upload: the server frees its connections
/// and requests within its idle timeout, nothing appears at the final name, and the partial is handled
/// as docs/striping.md says — a whole upload's at once, a striped upload's kept for resume until the
/// session idle timeout, then removed.
/// </summary>
[TestFixture]
[NonParallelizable]
public partial class ClientKilledTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(3);
    private DirectoryInfo _work = null!;
    private string _served = null!;

    [SetUp]
    public void MakeFolders()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-killed-");
        _served = Directory.CreateDirectory(Path.Combine(_work.FullName, "served")).FullName;
        File.WriteAllText(Path.Combine(_work.FullName, "root.pem"), TestPki.Root.CertificatePem);
        // Sparse: reading it costs nothing, sending it takes seconds on loopback.
        using var f = File.Create(Path.Combine(_work.FullName, "huge.bin"));
        f.SetLength(4L << 30);
    }

    [TearDown]
    public void DeleteFolders() => _work.Delete(recursive: true);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"^\.huge\.bin\.([0-9A-Za-z-]{8,64})\.partial$")]
    private static partial Regex PartialOfHuge();

    private string? Partial() => ServedFolder.Entries(_served).FirstOrDefault(e => PartialOfHuge().IsMatch(e));

    private static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(50);
        }
        return true;
    }

    [TestCase(1, TestName = "AKilledWholeUploadLeavesNothing")]
    [TestCase(4, TestName = "AKilledStripedUploadIsKeptForResumeThenRemoved")]
    public async Task KilledMidUpload(int connections)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("sends SIGKILL");
        await using var served = new ServedFolder(_served, new FileServingOptions { UploadSessionIdleTimeout = Idle }, idleTimeout: Idle);
        long baseline = QuicEndpoint.LiveNativeObjects;
        var url = $"https://127.0.0.1:{served.Server.LocalEndPoint.Port}/";
        string? partial;
        using (var cli = new DotnetProcess("quicsend send", CliTests.CliDll(), ["send", "huge.bin", url, "--connections", connections.ToString(), .. (connections == 1 ? new[] { "--no-resume" } : [])],
                   _work.FullName, HttpTests.Token))
        {
            Assert.That(await EventuallyAsync(() => Partial() is not null || cli.HasExited, TimeSpan.FromSeconds(30)), Is.True, "the upload never began");
            partial = Partial();
            Assert.That(partial, Is.Not.Null, $"the client finished or failed before it could be killed:\n{cli.Output}{cli.Errors}");
            if (connections > 1)
            {
                // Kill once some chunks are verified, so the kept session has something to resume from.
                await using var asker = await served.ConnectAsync();
                var id = PartialOfHuge().Match(partial!).Groups[1].Value;
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (string.IsNullOrEmpty((await ServedFolder.UploadStatusAsync(asker, "huge.bin", id, CancellationToken.None)).Received) && DateTime.UtcNow < deadline)
                    await Task.Delay(20);
            }
            else await Task.Delay(300); // well inside the upload: 4 GiB take far longer
            Assert.That(cli.HasExited, Is.False, "the upload was still running when killed");
            Assert.That(Kill(cli.Id, 9), Is.EqualTo(0), "kill(SIGKILL)");
            await cli.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }

        if (connections > 1)
        {
            // Striped: the session and its partial stay, so a client can ask what arrived and resume.
            var id = PartialOfHuge().Match(partial!).Groups[1].Value;
            await using var asker = await served.ConnectAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var status = await ServedFolder.UploadStatusAsync(asker, "huge.bin", id, cts.Token);
            Assert.That(status.Status, Is.EqualTo(200), "the killed client's upload can be resumed: " + status.Text);
            Assert.That(status.Length, Is.EqualTo((4L << 30).ToString()));
            Assert.That(status.Received, Does.Match(@"^\d+-\d+(,\d+-\d+)*$"), "the chunks verified before the kill are still counted");
            TestContext.Out.WriteLine($"after the kill the server holds the upload {id}, received: '{status.Received}'");
        }

        // The server notices the silence within its idle timeout and frees the connections and requests.
        Assert.That(await EventuallyAsync(() => QuicEndpoint.LiveNativeObjects <= baseline, Idle + TimeSpan.FromSeconds(10)), Is.True,
            $"the killed client's connections are released ({QuicEndpoint.LiveNativeObjects} native objects, {baseline} before it)");
        Assert.That(await EventuallyAsync(() => served.Server.Files.Limits.InProgress == 0, TimeSpan.FromSeconds(10)), Is.True,
            $"every transfer of the killed client ended ({served.Server.Files.Limits.InProgress} still in progress)");

        // A whole upload's partial goes when its request fails; a striped one's once its session has been idle for the timeout.
        var within = connections > 1 ? Idle + Idle + TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(10);
        Assert.That(await EventuallyAsync(() => Partial() is null, within), Is.True, $"the partial {partial} is removed");
        Assert.That(ServedFolder.Entries(_served), Is.Empty, "nothing at the final name, no partial");
    }
}
