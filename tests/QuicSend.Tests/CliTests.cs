using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

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
