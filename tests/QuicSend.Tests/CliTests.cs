using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Runs the quicsend command-line tool (src/QuicSend.Cli's build output, built first through the
/// test project's reference) as real processes on loopback: certificates, a server, send and get.
/// </summary>
[TestFixture]
[NonParallelizable]
public class CliTests
{
    private const string Token = "cli-test-token";
    private DirectoryInfo _work = null!;
    private DotnetProcess? _server;
    private int _port;

    private string WorkPath(string name) => Path.Combine(_work.FullName, name);

    private string Url => $"https://localhost:{_port}/";

    [OneTimeSetUp]
    public async Task StartServer()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-cli-");
        var init = await RunAsync(_work.FullName, null, "certs", "init");
        Assert.That(init.Code, Is.EqualTo(0), init.Text);
        foreach (var f in new[] { "root.pem", "root.key", "server.pem", "server.key" })
            Assert.That(File.Exists(WorkPath(f)), Is.True, $"certs init made no {f}:\n{init.Text}");

        _port = FreeUdpPort();
        _server = Cli(_work.FullName, Token, "serve", "./data", "--port", _port.ToString());
        await _server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
    }

    [OneTimeTearDown]
    public void StopServer()
    {
        _server?.Dispose();
        _work.Delete(recursive: true);
    }

    [Test]
    public async Task HelpListsTheCommandsAndTheExitCodes()
    {
        var help = await RunAsync(_work.FullName, null, "--help");
        Assert.That(help.Code, Is.EqualTo(0), help.Text);
        foreach (var command in new[] { "certs", "serve", "send", "get", "rpc", "bench" })
            Assert.That(help.Out, Does.Contain(command), $"--help does not list '{command}':\n{help.Text}");
        Assert.That(help.Out, Does.Contain("Exit codes").And.Contain("130"));
    }

    [Test]
    public async Task CertsInitRefusesToOverwriteWithoutForce()
    {
        var again = await RunAsync(_work.FullName, null, "certs", "init");
        Assert.That(again.Code, Is.EqualTo(1), again.Text);
        Assert.That(again.Err, Does.Contain("--force"));
    }

    [Test]
    public async Task SendsAFortyMiBFileAndGetsItBackIdentical()
    {
        var source = WorkPath("random.bin");
        var bytes = RandomNumberGenerator.GetBytes(40 << 20);
        await File.WriteAllBytesAsync(source, bytes);
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));

        // No --root: the client finds ./root.pem; the token from QUICSEND_TOKEN; 4 connections, so striped.
        var send = await RunAsync(_work.FullName, Token, "send", "random.bin", Url);
        Assert.That(send.Code, Is.EqualTo(0), send.Text);
        Assert.That(send.Out, Does.Contain(hash), "send prints the verified SHA-256");
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(WorkPath("data/random.bin")))), Is.EqualTo(hash));

        var copies = Directory.CreateDirectory(WorkPath("copies")).FullName;
        var get = await RunAsync(_work.FullName, Token, "get", Url + "files/random.bin", copies);
        Assert.That(get.Code, Is.EqualTo(0), get.Text);
        Assert.That(get.Out, Does.Contain(hash), "get prints the verified SHA-256");
        var back = await File.ReadAllBytesAsync(Path.Combine(copies, "random.bin"));
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(back)), Is.EqualTo(hash), "the file came back with other bytes");

        await _server!.WaitForOutputAsync("received 'random.bin'", TimeSpan.FromSeconds(5));
    }

    [Test]
    public async Task UnsafeNamesExitWithOneAndSayWhy()
    {
        var folder = Directory.CreateDirectory(WorkPath("unsafe-names")).FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "con.txt"), "a device name on Windows");
        await File.WriteAllTextAsync(Path.Combine(folder, "fine.txt"), "fine");
        foreach (var (args, why) in new (string[], string)[]
                 {
                     (["send", "con.txt", Url], "Windows device name (CON"),
                     (["send", "fine.txt", Url + "files/fine.txt%20"], "ends with a space"),
                     (["send", "fine.txt", Url + "files/a%E2%80%AEtxt.exe"], "invisible formatting character U+202E"),
                     (["get", Url + "files/LPT1", folder], "Windows device name (LPT1"),
                 })
        {
            var run = await RunAsync(folder, Token, args);
            Assert.That(run.Code, Is.EqualTo(1), run.Text);
            Assert.That(run.Err, Does.Contain(why).And.Contain("it was refused"), run.Text);
        }
        Assert.That(Directory.GetFiles(WorkPath("data")).Select(Path.GetFileName), Has.None.StartsWith("con").And.None.StartsWith("fine"));
    }

    [Test]
    public async Task SendingANameTheServerHasIsRefusedUnlessOverwrite()
    {
        var folder = Directory.CreateDirectory(WorkPath("overwrite")).FullName;
        var local = Path.Combine(folder, "twice.txt");
        await File.WriteAllTextAsync(local, "first");
        var first = await RunAsync(folder, Token, "send", "--root", WorkPath("root.pem"), "twice.txt", Url);
        Assert.That(first.Code, Is.EqualTo(0), first.Text);

        await File.WriteAllTextAsync(local, "second");
        var again = await RunAsync(folder, Token, "send", "--root", WorkPath("root.pem"), "twice.txt", Url);
        Assert.That(again.Code, Is.EqualTo(3), again.Text);
        Assert.That(again.Err, Does.Contain("409").And.Contain("'twice.txt' already exists").And.Contain("--overwrite"), again.Text);
        Assert.That(await File.ReadAllTextAsync(WorkPath("data/twice.txt")), Is.EqualTo("first"));

        var replace = await RunAsync(folder, Token, "send", "--root", WorkPath("root.pem"), "--overwrite", "twice.txt", Url);
        Assert.That(replace.Code, Is.EqualTo(0), replace.Text);
        Assert.That(await File.ReadAllTextAsync(WorkPath("data/twice.txt")), Is.EqualTo("second"));
    }

    [Test]
    public async Task AWrongTokenExitsWithThreeAndSaysSo()
    {
        await File.WriteAllTextAsync(WorkPath("small.txt"), "hello");
        var send = await RunAsync(_work.FullName, "not-the-token", "send", "small.txt", Url);
        Assert.That(send.Code, Is.EqualTo(3), send.Text);
        Assert.That(send.Err, Does.Contain("401").And.Contain("token"), send.Text);
        Assert.That(send.Err, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public async Task AMissingFileOnTheServerExitsWithThreeAndNamesIt()
    {
        var dest = Directory.CreateDirectory(WorkPath("nothing")).FullName;
        var get = await RunAsync(_work.FullName, Token, "get", Url + "files/no-such-file.bin", dest);
        Assert.That(get.Code, Is.EqualTo(3), get.Text);
        Assert.That(get.Err, Does.Contain("404").And.Contain("no-such-file.bin"));
        Assert.That(Directory.GetFiles(dest), Is.Empty, "nothing is left behind");
    }

    [Test]
    public async Task AMissingRootSaysHowToGetOne()
    {
        var elsewhere = Directory.CreateDirectory(WorkPath("client-without-root")).FullName;
        await File.WriteAllTextAsync(Path.Combine(elsewhere, "a.txt"), "a");
        var send = await RunAsync(elsewhere, Token, "send", "a.txt", Url);
        Assert.That(send.Code, Is.AnyOf(1, 2), send.Text);
        Assert.That(send.Err, Does.Contain("root.pem").And.Contain("quicsend certs init").And.Contain("--root"), send.Text);
        Assert.That(send.Err, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public async Task AnotherRootIsAnUnknownIssuerAndExitsWithTwo()
    {
        var other = Directory.CreateDirectory(WorkPath("other-root")).FullName;
        var init = await RunAsync(other, null, "certs", "init");
        Assert.That(init.Code, Is.EqualTo(0), init.Text);
        await File.WriteAllTextAsync(Path.Combine(other, "b.txt"), "b");
        var send = await RunAsync(other, Token, "send", "b.txt", Url);
        Assert.That(send.Code, Is.EqualTo(2), send.Text);
        Assert.That(send.Err, Does.Contain("unknown issuer").And.Contain("--root"), send.Text);
    }

    [Test]
    public async Task ServeRefusesToStartWithoutAToken()
    {
        var serve = await RunAsync(_work.FullName, null, "serve", "./data", "--port", FreeUdpPort().ToString());
        Assert.That(serve.Code, Is.EqualTo(1), serve.Text);
        Assert.That(serve.Err, Does.Contain("QUICSEND_TOKEN").And.Contain("--allow-anonymous"));
    }

    [Test]
    public async Task ServeStopsCleanlyOnSigterm()
    {
        using var server = Cli(_work.FullName, Token, "serve", "./data", "--port", FreeUdpPort().ToString());
        await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
        Assert.That(Kill(server.Id, 15), Is.EqualTo(0), "kill(SIGTERM)");
        var code = await server.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.That(code, Is.EqualTo(0), server.Output + server.Errors);
        Assert.That(server.Output, Does.Contain("Stopped."));
    }

    [TestCase("--max-transfers-per-connection", "-1", "takes a whole number of transfers, 0 for no limit")]
    [TestCase("--max-transfers-per-token", "many", "takes a whole number of transfers, 0 for no limit")]
    [TestCase("--max-preallocation", "12Q", "takes a size in bytes, or with K, M, G or T")]
    [TestCase("--max-preallocation", "99999999T", "is more than can be counted")]
    [TestCase("--max-upload-size", "0", "would refuse every upload: give a positive size")]
    [TestCase("--upload-idle-timeout", "0", "takes a time from 1 ms to 365 days, such as 90s, 10m or 1h")]
    [TestCase("--upload-idle-timeout", "ten minutes", "takes a time from 1 ms to 365 days")]
    public async Task ServeRefusesABadLimitNamingTheValueAndWhatToGive(string option, string value, string what)
    {
        var serve = await RunAsync(_work.FullName, Token, "serve", "./data", "--port", FreeUdpPort().ToString(), option, value);
        Assert.That(serve.Code, Is.EqualTo(1), serve.Text);
        Assert.That(serve.Err, Does.Contain($"error: {option}").And.Contain($"'{value}'").And.Contain(what), serve.Text);
        Assert.That(serve.Out, Does.Not.Contain("Serving"), "refused before it listens");
    }

    [Test]
    public async Task ServeAppliesItsLimitFlags()
    {
        var folder = Directory.CreateDirectory(WorkPath("limited")).FullName;
        var bytes = RandomNumberGenerator.GetBytes(16 << 20);
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        await File.WriteAllBytesAsync(Path.Combine(folder, "big.bin"), bytes);
        await File.WriteAllBytesAsync(WorkPath("two-mib.bin"), RandomNumberGenerator.GetBytes(2 << 20));
        int port = FreeUdpPort();
        using var server = Cli(_work.FullName, Token, "serve", "./limited", "--port", port.ToString(), "--max-transfers-per-connection", "1",
            "--max-transfers-per-token", "8", "--max-upload-size", "1M", "--max-preallocation", "64MiB", "--upload-idle-timeout", "90s");
        await server.WaitForOutputAsync("Serving", TimeSpan.FromSeconds(20));
        await server.WaitForOutputAsync("Limits:", TimeSpan.FromSeconds(5));
        Assert.That(server.Output, Does.Contain("Limits: uploads up to 1 MiB; file transfers in progress: 1 per connection, 8 per token; " +
                                                "disk reserved ahead: 64 MiB in all; unfinished uploads kept 90 s idle"));
        Assert.That(server.Errors, Does.Contain("warning: --max-transfers-per-connection 1 is below the 3"), "a cap that breaks striping is pointed out");

        // One connection, small stream windows: a download left unread keeps its slot, so a second one at the same time is refused.
        await using var client = await QuicSendClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), new QuicSendClientOptions
        {
            Transport = new QuicClientOptions { TrustedRootPaths = { WorkPath("root.pem") }, StreamReceiveWindow = 1 << 20, ConnectionReceiveWindow = 64 << 20 },
            Token = Token,
            ServerName = "localhost",
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var first = await client.SendAsync("GET", FileTransfer.PathFor("big.bin"), null, null, null, cts.Token))
        {
            Assert.That(first.Status, Is.EqualTo(200));
            using var second = await client.SendAsync("GET", FileTransfer.PathFor("big.bin"), null, null, null, cts.Token);
            Assert.That(second.Status, Is.EqualTo(429), "a second download while the first is in progress, with --max-transfers-per-connection 1");
            Assert.That(HeaderCodec.Get(second.Headers, QuicSendHeaders.RetryAfter), Is.EqualTo("1"));
            Assert.That(await second.ReadTextAsync(cts.Token), Does.Contain("1 file transfers in progress, the server's limit per connection"));
        }
        await server.WaitForOutputAsync("download of 'big.bin' failed (429)", TimeSpan.FromSeconds(5));

        // The slot comes back once the first is gone: the whole file then arrives intact.
        var copy = WorkPath("big-copy.bin");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                await client.DownloadFileAsync("big.bin", copy, cancellationToken: cts.Token);
                break;
            }
            catch (FileTransferException e) when (e.StatusCode == 429 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, cts.Token);
            }
        }
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(copy))), Is.EqualTo(hash));

        // --max-upload-size 1M: a 2 MiB upload is refused with 413 and nothing is stored.
        var send = await RunAsync(_work.FullName, Token, "send", "two-mib.bin", $"https://localhost:{port}/");
        Assert.That(send.Code, Is.EqualTo(3), send.Text);
        Assert.That(send.Err, Does.Contain("413"), send.Text);
        Assert.That(File.Exists(Path.Combine(folder, "two-mib.bin")), Is.False);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>The tool's build output, built with the same configuration as these tests.</summary>
    internal static string CliDll()
    {
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);   // tests/QuicSend.Tests/bin/<config>/net10.0
        var configuration = testDir.Parent!.Name;
        var repo = testDir;
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "QuicSendNative.sln"))) repo = repo.Parent;
        Assert.That(repo, Is.Not.Null, "the repository root (QuicSendNative.sln) above the test output");
        var dll = Path.Combine(repo!.FullName, "src", "QuicSend.Cli", "bin", configuration, "net10.0", "QuicSend.Cli.dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is missing: build it (dotnet build src/QuicSend.Cli -c {configuration}).");
        return dll;
    }

    internal static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
        s.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private sealed record Result(int Code, string Out, string Err)
    {
        public string Text => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
    }

    private static async Task<Result> RunAsync(string directory, string? token, params string[] args)
    {
        using var cli = Cli(directory, token, args);
        var code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(45));
        return new Result(code, cli.Output, cli.Errors);
    }

    /// <summary>Starts quicsend in <paramref name="directory"/> (its output collected as it comes), with <paramref name="token"/> as QUICSEND_TOKEN.</summary>
    private static DotnetProcess Cli(string directory, string? token, params string[] args) =>
        new("quicsend " + args[0], CliDll(), args, directory, token);
}
