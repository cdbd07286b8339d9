using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using QuicSend.Security;

namespace QuicSend.Tests;

/// <summary>
/// Runs the example server and client (the ports of the original quicsend's examples) as real
/// processes, from the solution's build output (examples/*/bin/&lt;configuration&gt;/net10.0/).
/// </summary>
[TestFixture]
[NonParallelizable]
public class ExampleTests
{
    private const string Token = "example-test-token";
    private DirectoryInfo _work = null!;

    [SetUp]
    public void MakeCertificates()
    {
        _work = Directory.CreateTempSubdirectory("quicsend-examples-");
        var root = CertificateTool.CreateRootCa("QuicSend Example Test Root");
        var server = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback]);
        root.Save(Pem("root.pem"), Pem("root.key"));
        server.Save(Pem("server.pem"), Pem("server.key"));
    }

    [TearDown]
    public void DeleteCertificates() => _work.Delete(recursive: true);

    private string Pem(string name) => Path.Combine(_work.FullName, name);

    /// <summary>The build output of an example, built with the same configuration as these tests.</summary>
    private static string ExampleDll(string name)
    {
        var testDir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);   // tests/QuicSend.Tests/bin/<config>/net10.0
        var configuration = testDir.Parent!.Name;
        var repo = testDir;
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "QuicSendNative.sln"))) repo = repo.Parent;
        Assert.That(repo, Is.Not.Null, "the repository root (QuicSendNative.sln) above the test output");
        var dll = Path.Combine(repo!.FullName, "examples", name, "bin", configuration, "net10.0", name + ".dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is missing: build the solution first (dotnet build QuicSendNative.sln -c {configuration}).");
        return dll;
    }

    /// <summary>A UDP port free right now on the wildcard address (the server listens dual-stack on [::]).</summary>
    private static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
        s.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>Starts an example (its output collected as it comes).</summary>
    private static DotnetProcess Running(string dll, params string[] args) => new(Path.GetFileNameWithoutExtension(dll), dll, args);

    /// <summary>Starts an example in <paramref name="workingDirectory"/> (where the original's default file names are looked up).</summary>
    private static DotnetProcess RunningIn(string workingDirectory, string dll, params string[] args) =>
        new(Path.GetFileNameWithoutExtension(dll), dll, args, workingDirectory);

    /// <summary>The SHA-256 of the example server's answer: 512 blocks of 1 MiB of 'A'.</summary>
    private static readonly Lazy<string> AnswerHash = new(() =>
    {
        var block = new byte[1 << 20];
        Array.Fill(block, (byte)'A');
        using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        for (int i = 0; i < 512; i++) h.AppendData(block);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    });

    /// <summary>
    /// Checks a client's run of <paramref name="count"/> requests: each response announced with the
    /// original's lines (Throughput, OnResponse, Sample) and checked byte for byte (Checked: the
    /// SHA-256 of all 512 MiB), every request answered exactly once, the total in the Done line.
    /// </summary>
    private static void AssertResponses(DotnetProcess client, int count)
    {
        var output = client.Output;
        var throughput = Regex.Matches(output, @"^Throughput: ([0-9.]+) MB/s$", RegexOptions.Multiline);
        var responses = Regex.Matches(output, @"^OnResponse: cid=1 rid=(\d+) hinfo=(.*) status=(\d+) ct=(\S+) len=(\d+)$", RegexOptions.Multiline);
        var samples = Regex.Matches(output, @"^Sample \(32 bytes\): (41 ){31}41 \.\.\.$", RegexOptions.Multiline);
        var checks = Regex.Matches(output, @"^Checked: response (\d+) \(request #(\d+), rid=(\d+)\): (\d+) bytes in [0-9.]+ s, sha256 ([0-9a-f]{64})$", RegexOptions.Multiline);
        Assert.That(throughput, Has.Count.EqualTo(count), "one Throughput line per response");
        Assert.That(responses, Has.Count.EqualTo(count), "one OnResponse line per response");
        Assert.That(samples, Has.Count.EqualTo(count), "one Sample line per response, 32 bytes of 'A'");
        Assert.That(checks, Has.Count.EqualTo(count), "one Checked line per response");
        foreach (Match m in throughput)
            Assert.That(double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0), m.Value);
        foreach (Match m in responses)
        {
            Assert.That(m.Groups[2].Value, Is.EqualTo("{\"foo\": \"bar\"}"), "the server echoes quicsend-header-info");
            Assert.That(m.Groups[3].Value, Is.EqualTo("200"), m.Value);
            Assert.That(m.Groups[4].Value, Is.EqualTo("application/octet-stream"), m.Value);
            Assert.That(m.Groups[5].Value, Is.EqualTo("536870912"), "each response is 512 MiB");
        }
        foreach (Match m in checks)
        {
            Assert.That(m.Groups[4].Value, Is.EqualTo("536870912"), m.Value);
            Assert.That(m.Groups[5].Value, Is.EqualTo(AnswerHash.Value), "each response's bytes are the server's, byte for byte");
        }
        var all = Enumerable.Range(1, count).Select(i => i.ToString()).ToArray();
        Assert.That(responses.Select(m => m.Groups[1].Value), Is.EquivalentTo(all), "rids 1.., each answered once");
        Assert.That(checks.Select(m => m.Groups[1].Value), Is.EquivalentTo(all), "responses 1.., each once");
        Assert.That(checks.Select(m => m.Groups[2].Value), Is.EquivalentTo(all), "requests #1.., each answered once");
        Assert.That(output, Does.Contain($"Done: {count} responses, {count * 512} MiB"));
    }

    [Test]
    public async Task TheExampleClientGetsThreeResponsesFromTheExampleServerAndPrintsTheOriginalsLines()
    {
        var port = FreeUdpPort();
        using var server = Running(ExampleDll("ExampleServer"), port.ToString(), Pem("server.pem"), Pem("server.key"),
            "--token", Token, "--seconds", "55");
        await server.WaitForOutputAsync("Listening on UDP port", TimeSpan.FromSeconds(15));

        var sw = Stopwatch.StartNew();
        // A CA certificate as cert: trusted as a root.
        using var client = Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("root.pem"),
            "--token", Token, "--requests", "3", "--server-name", "localhost");
        var code = await client.WaitForExitAsync(TimeSpan.FromSeconds(45));
        TestContext.Out.WriteLine($"client finished in {sw.Elapsed.TotalSeconds:0.0} s:\n{client.Output}{client.Errors}");
        Assert.That(code, Is.Zero, $"client exit code; stderr: {client.Errors}");
        Assert.That(client.Output, Does.Contain("a CA, trusted as a root; server name 'localhost' (--server-name)"));
        Assert.That(client.Output, Does.Contain($"OnConnect: cid=1 addr=127.0.0.1:{port}"));
        AssertResponses(client, 3);
        Assert.That(client.Errors, Does.Not.Contain("warning"), "a token was given");

        await server.WaitForOutputAsync("(#3)", TimeSpan.FromSeconds(5));
        Assert.That(server.Output, Does.Contain("OnConnect: cid=1 addr="));
        var requests = Regex.Matches(server.Output, @"^OnRequest: cid=1 rid=(\d+) hinfo=\{""foo"": ""bar""\} path=/simple.txt ct=application/octet-stream len=0 \(#\d\)$", RegexOptions.Multiline);
        Assert.That(requests, Has.Count.EqualTo(3), server.Output);
        Assert.That(requests.Select(m => long.Parse(m.Groups[1].Value)).Distinct().Count(), Is.EqualTo(3), "three request streams");
    }

    /// <summary>
    /// The original's own files and command lines: its README's certificates (server.pem: X.509 v1,
    /// CN=catid.io only) in the working directory, the server given only its port, the client only
    /// host and port, no token. The client pins server.pem and checks the name catid.io in it.
    /// </summary>
    [Test]
    public async Task TheExamplesRunWithTheOriginalsFilesCommandLinesAndToken()
    {
        OriginalPki.Save(_work.FullName);
        var port = FreeUdpPort();
        using var server = RunningIn(_work.FullName, ExampleDll("ExampleServer"), port.ToString(), "--seconds", "55");
        await server.WaitForOutputAsync("Listening on UDP port", TimeSpan.FromSeconds(15));
        Assert.That(server.Errors, Does.Contain("warning:").And.Contain("'AUTH_TOKEN_PLACEHOLDER'").And.Contain("development only"));

        using (var client = RunningIn(_work.FullName, ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), "--requests", "2"))
        {
            var code = await client.WaitForExitAsync(TimeSpan.FromSeconds(45));
            Assert.That(code, Is.Zero, $"client exit code; stderr: {client.Errors}");
            Assert.That(client.Errors, Does.Contain("warning:").And.Contain("'AUTH_TOKEN_PLACEHOLDER'"));
            Assert.That(client.Output, Does.Contain($"Server certificate: CN=catid.io from {Pem("server.pem")}: the server's own, pinned; server name 'catid.io' (the pinned certificate)."));
            AssertResponses(client, 2);
        }
        // The README's root given as cert instead: trusted as a root; the name must then be given.
        using (var client = RunningIn(_work.FullName, ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), "root_quicsend.crt",
                   "--requests", "1", "--server-name", "catid.io"))
        {
            var code = await client.WaitForExitAsync(TimeSpan.FromSeconds(45));
            Assert.That(code, Is.Zero, $"client exit code; stderr: {client.Errors}");
            Assert.That(client.Output, Does.Contain("a CA, trusted as a root; server name 'catid.io' (--server-name)"));
            AssertResponses(client, 1);
        }
        using (var client = RunningIn(_work.FullName, ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), "root_quicsend.crt", "--requests", "1"))
        {
            Assert.That(await client.WaitForExitAsync(TimeSpan.FromSeconds(30)), Is.Not.Zero);
            Assert.That(client.Errors, Does.Contain("not valid for the name '127.0.0.1'").And.Contain("--server-name").And.Contain("catid.io"));
        }
        await server.WaitForOutputAsync("(#3)", TimeSpan.FromSeconds(5));
        Assert.That(Regex.Matches(server.Output, "^OnRequest: .* path=/simple.txt ", RegexOptions.Multiline), Has.Count.EqualTo(3));
    }

    /// <summary>Both examples with no argument at all, as `python example_server.py` and `python example_client.py`: port 4433, localhost, server.pem, server.key.</summary>
    [Test]
    public async Task TheExamplesRunWithNoArgumentsAtAll()
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            probe.Bind(new IPEndPoint(IPAddress.IPv6Any, 4433));
        }
        catch (SocketException)
        {
            Assert.Ignore("UDP port 4433, the original's default, is in use on this machine.");
        }
        OriginalPki.Save(_work.FullName);
        using var server = RunningIn(_work.FullName, ExampleDll("ExampleServer"), "--seconds", "40");
        await server.WaitForOutputAsync("Listening on UDP port 4433 ", TimeSpan.FromSeconds(15));
        using var client = RunningIn(_work.FullName, ExampleDll("ExampleClient"), "--requests", "1");
        var code = await client.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.That(code, Is.Zero, $"client exit code; stderr: {client.Errors}");
        Assert.That(client.Output, Does.Contain("OnConnect: cid=1 addr=127.0.0.1:4433"), "localhost, IPv4 first as the original server listens");
        AssertResponses(client, 1);
    }

    [Test]
    public async Task TheServerStopsByItselfAfterSecondsAndWarnsAboutTheDevelopmentToken()
    {
        using var server = Running(ExampleDll("ExampleServer"), "0", Pem("server.pem"), Pem("server.key"), "--seconds", "1");
        var code = await server.WaitForExitAsync(TimeSpan.FromSeconds(20));
        Assert.That(code, Is.Zero, server.Errors);
        Assert.That(server.Errors, Does.Contain("warning: no --token and no QUICSEND_TOKEN: using the original examples' token 'AUTH_TOKEN_PLACEHOLDER'"));
        Assert.That(server.Errors, Does.Contain("development only"));
        Assert.That(server.Output, Does.Contain("Stopped after"));
    }

    [Test]
    public async Task TheExamplesPrintClearErrorsAndExitNonZero()
    {
        var missing = Path.Combine(_work.FullName, "missing.pem");

        using (var s = Running(ExampleDll("ExampleServer"), "0", missing, Pem("server.key")))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("server certificate").And.Contain(missing));
        }
        using (var s = Running(ExampleDll("ExampleServer"), "not-a-port", Pem("server.pem"), Pem("server.key")))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("not-a-port").And.Contain("usage:"));
        }
        using (var s = Running(ExampleDll("ExampleServer"), "0", Pem("server.pem"), Pem("server.key"), "extra"))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("at most 3 arguments").And.Contain("usage:"));
        }
        // The original's default file names are looked up in the working directory.
        var empty = _work.CreateSubdirectory("empty").FullName;
        using (var s = RunningIn(empty, ExampleDll("ExampleServer"), "0", "--seconds", "5"))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("server certificate").And.Contain(Path.Combine(empty, "server.pem")));
        }
        using (var c = RunningIn(empty, ExampleDll("ExampleClient")))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("server certificate").And.Contain(Path.Combine(empty, "server.pem")));
        }
        using (var c = Running(ExampleDll("ExampleClient"), "127.0.0.1", "4433", missing))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("server certificate").And.Contain(missing));
        }

        // A wrong token: the server's 401 message is shown.
        var port = FreeUdpPort();
        using var server = Running(ExampleDll("ExampleServer"), port.ToString(), Pem("server.pem"), Pem("server.key"),
            "--token", Token, "--seconds", "30");
        await server.WaitForOutputAsync("Listening on UDP port", TimeSpan.FromSeconds(15));
        using (var c = Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("root.pem"), "--token", "wrong", "--requests", "1"))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("401"));
        }
        // A root that did not sign the server's certificate: the handshake fails with a clear reason.
        CertificateTool.CreateRootCa("Unrelated Root").Save(Pem("other-root.pem"), Pem("other-root.key"));
        using (var c = Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("other-root.pem"), "--token", Token, "--requests", "1"))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("cannot connect"));
        }
        // A pinned server certificate that is not the one the server presents (same root, same names): refused.
        CertificateTool.IssueServer(CertificateTool.CreateRootCa("QuicSend Example Test Root"), ["localhost"], [IPAddress.Loopback])
            .Save(Pem("impostor.pem"), Pem("impostor.key"));
        using (var c = Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("impostor.pem"), "--token", Token, "--requests", "1"))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Output, Does.Contain("the server's own, pinned"));
            Assert.That(c.Errors, Does.Contain("cannot connect").And.Contain("pinned"));
        }
    }
}
