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

    /// <summary>A started example process whose output lines are collected as they come.</summary>
    private sealed class Running : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _out = new(), _err = new();
        private readonly TaskCompletionSource _outDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _errDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly string _name;

        public Running(string dll, params string[] args)
        {
            _name = Path.GetFileNameWithoutExtension(dll);
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(dll);
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment.Remove("QUICSEND_TOKEN");
            _process = new Process { StartInfo = psi };
            _process.OutputDataReceived += (_, e) => Collect(e.Data, _out, _outDone);
            _process.ErrorDataReceived += (_, e) => Collect(e.Data, _err, _errDone);
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        private void Collect(string? line, StringBuilder into, TaskCompletionSource done)
        {
            if (line is null)
            {
                done.TrySetResult();
                return;
            }
            lock (into) into.AppendLine(line);
            TestContext.Progress.WriteLine($"  [{_name}] {line}");
        }

        public string Output { get { lock (_out) return _out.ToString(); } }
        public string Errors { get { lock (_err) return _err.ToString(); } }

        public async Task WaitForOutputAsync(string text, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!Output.Contains(text))
            {
                if (_process.HasExited) Assert.Fail($"{_name} exited ({_process.ExitCode}) before printing '{text}':\n{Output}{Errors}");
                if (DateTime.UtcNow > deadline) Assert.Fail($"{_name} did not print '{text}' within {timeout.TotalSeconds} s:\n{Output}{Errors}");
                await Task.Delay(50);
            }
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"{_name} did not exit within {timeout.TotalSeconds} s:\n{Output}{Errors}");
            }
            await Task.WhenAll(_outDone.Task, _errDone.Task).WaitAsync(TimeSpan.FromSeconds(5));
            return _process.ExitCode;
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited) _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
            catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }

    [Test]
    public async Task TheExampleClientGetsThreeResponsesFromTheExampleServerAndPrintsTheirThroughput()
    {
        var port = FreeUdpPort();
        using var server = new Running(ExampleDll("ExampleServer"), port.ToString(), Pem("server.pem"), Pem("server.key"),
            "--token", Token, "--seconds", "55");
        await server.WaitForOutputAsync("Listening on UDP port", TimeSpan.FromSeconds(15));

        var sw = Stopwatch.StartNew();
        using var client = new Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("root.pem"),
            "--token", Token, "--requests", "3", "--server-name", "localhost");
        var code = await client.WaitForExitAsync(TimeSpan.FromSeconds(45));

        var lines = Regex.Matches(client.Output, @"^Throughput: ([0-9.]+) MiB/s \(response (\d+): request #(\d+), status (\d+), .*, (\d+) bytes in .*, sha256 ([0-9a-f]{64})\)$", RegexOptions.Multiline);
        TestContext.Out.WriteLine($"client finished in {sw.Elapsed.TotalSeconds:0.0} s:\n{client.Output}{client.Errors}");
        Assert.That(code, Is.Zero, $"client exit code; stderr: {client.Errors}");
        Assert.That(lines, Has.Count.EqualTo(3), "three throughput lines");
        // The server's answer is 512 blocks of 1 MiB of 'A': each response must be exactly that, byte for byte.
        var block = new byte[1 << 20];
        Array.Fill(block, (byte)'A');
        using var expected = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        for (int i = 0; i < 512; i++) expected.AppendData(block);
        var expectedHash = Convert.ToHexStringLower(expected.GetHashAndReset());
        foreach (Match m in lines)
        {
            Assert.That(double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0), m.Value);
            Assert.That(m.Groups[4].Value, Is.EqualTo("200"), m.Value);
            Assert.That(m.Groups[5].Value, Is.EqualTo("536870912"), "each response is 512 MiB");
            Assert.That(m.Groups[6].Value, Is.EqualTo(expectedHash), "each response's bytes are the server's");
        }
        Assert.That(lines.Select(m => m.Groups[2].Value), Is.EquivalentTo(new[] { "1", "2", "3" }), "responses 1 to 3, each once");
        Assert.That(lines.Select(m => m.Groups[3].Value), Is.EquivalentTo(new[] { "1", "2", "3" }), "requests #1 to #3, each answered once");
        Assert.That(client.Output, Does.Contain("Done: 3 responses, 1536 MiB"));

        await server.WaitForOutputAsync("(#3)", TimeSpan.FromSeconds(5));
        Assert.That(server.Output, Does.Contain("OnConnect: cid=1"));
        Assert.That(Regex.Matches(server.Output, "^OnRequest: ", RegexOptions.Multiline), Has.Count.EqualTo(3));
        Assert.That(server.Output, Does.Contain("hinfo={\"foo\": \"bar\"}"));
    }

    [Test]
    public async Task TheServerStopsByItselfAfterSecondsAndTellsWhichTokenItUses()
    {
        using var server = new Running(ExampleDll("ExampleServer"), "0", Pem("server.pem"), Pem("server.key"), "--seconds", "1");
        var code = await server.WaitForExitAsync(TimeSpan.FromSeconds(20));
        Assert.That(code, Is.Zero, server.Errors);
        Assert.That(server.Output, Does.Contain("development token 'quicsend-dev-token'"));
        Assert.That(server.Output, Does.Contain("Stopped after"));
    }

    [Test]
    public async Task TheExamplesPrintClearErrorsAndExitNonZero()
    {
        var missing = Path.Combine(_work.FullName, "missing.pem");

        using (var s = new Running(ExampleDll("ExampleServer"), "0", missing, Pem("server.key")))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("server certificate").And.Contain(missing));
        }
        using (var s = new Running(ExampleDll("ExampleServer"), "not-a-port", Pem("server.pem"), Pem("server.key")))
        {
            Assert.That(await s.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(s.Errors, Does.Contain("not-a-port").And.Contain("usage:"));
        }
        using (var c = new Running(ExampleDll("ExampleClient"), "127.0.0.1", "4433", missing))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("root certificate").And.Contain(missing));
        }

        // A wrong token: the server's 401 message is shown.
        var port = FreeUdpPort();
        using var server = new Running(ExampleDll("ExampleServer"), port.ToString(), Pem("server.pem"), Pem("server.key"),
            "--token", Token, "--seconds", "30");
        await server.WaitForOutputAsync("Listening on UDP port", TimeSpan.FromSeconds(15));
        using (var c = new Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("root.pem"), "--token", "wrong", "--requests", "1"))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("401"));
        }
        // A root that did not sign the server's certificate: the handshake fails with a clear reason.
        CertificateTool.CreateRootCa("Unrelated Root").Save(Pem("other-root.pem"), Pem("other-root.key"));
        using (var c = new Running(ExampleDll("ExampleClient"), "127.0.0.1", port.ToString(), Pem("other-root.pem"), "--token", Token, "--requests", "1"))
        {
            Assert.That(await c.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Not.Zero);
            Assert.That(c.Errors, Does.Contain("cannot connect"));
        }
    }
}
