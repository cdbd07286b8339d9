using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Transport;
using Spectre.Console;

namespace QuicSend.Cli;

/// <summary>
/// <c>quicsend bench [URL]</c>: uploads and downloads one generated file with 1 and with N connections
/// and prints MiB/s. Without a URL against an in-process server on loopback (both ends on this machine's
/// cores, so it measures the software, not a network).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var url = new Argument<string?>("URL")
        {
            Description = "A `quicsend serve` server (https://HOST:4433/) [default: an in-process server on loopback].",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var mib = new Option<int>("--mib") { HelpName = "N", Description = "The size of the test file in MiB.", DefaultValueFactory = _ => 256 };
        var setup = new ClientSetup();
        var cmd = new Command("bench", "Measure an upload and a download of a generated file with 1 and with --connections connections; every transfer is " +
                                       "verified by SHA-256. Against a URL the file quicsend-bench-<random>.bin is left on the server (there is no delete).") { url, mib };
        setup.AddTo(cmd);
        cmd.SetAction((p, _) => Cli.RunAsync(async ct =>
        {
            int size = p.GetValue(mib);
            if (size is < 1 or > 1 << 20) throw CliException.Usage($"--mib takes 1 to {1 << 20}, not {size}.");
            int n = p.GetValue(setup.Connections);
            if (n is < 1 or > 64) throw CliException.Usage($"--connections takes 1 to 64, not {n}.");
            var target = p.GetValue(url) is string u ? ServerUrl.Parse(u) : null;

            var work = Directory.CreateTempSubdirectory("quicsend-bench-");
            try
            {
                var source = Path.Combine(work.FullName, "source.bin");
                Console.WriteLine($"Writing {size} MiB of random bytes to {source} ...");
                var sha = await WriteRandomFileAsync(source, size, ct);

                QuicSendServer? server = null;
                Task serving = Task.CompletedTask;
                using var stopServer = CancellationTokenSource.CreateLinkedTokenSource(ct);
                Func<int, Task<QuicSendClient>> connect;
                string where;
                if (target is null)
                {
                    var root = CertificateTool.CreateRootCa("QuicSend Bench Root");
                    var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
                    var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                    var served = Directory.CreateDirectory(Path.Combine(work.FullName, "served")).FullName;
                    server = new QuicSendServer(new QuicSendServerOptions
                    {
                        Transport = new QuicServerOptions
                        {
                            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                            CertificateChainPem = cert.CertificatePem,
                            PrivateKeyPem = cert.PrivateKeyPem,
                        },
                        Tokens = { token },
                    });
                    serving = FileTransfer.ServeDirectoryAsync(server, served, stopServer.Token);
                    var endPoint = server.LocalEndPoint;
                    where = $"an in-process server on {endPoint} (loopback, this machine's {Environment.ProcessorCount} cores shared by both ends)";
                    connect = c => QuicSendClient.ConnectAsync(endPoint, new QuicSendClientOptions
                    {
                        Transport = new QuicClientOptions { TrustedRootPems = { root.CertificatePem } },
                        Token = token,
                        ServerName = "localhost",
                        Connections = c,
                    }, ct);
                }
                else
                {
                    where = target.Base;
                    connect = c => setup.ConnectAsync(p, target, ct, c);
                }

                var remote = target is null ? "bench.bin" : $"quicsend-bench-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.bin";
                var back = Path.Combine(work.FullName, "downloaded.bin");
                Console.WriteLine($"Benchmarking against {where}: {size} MiB as '{remote}'.");
                var rows = new List<(int Connections, FileTransferResult Up, FileTransferResult Down)>();
                try
                {
                    foreach (var c in new[] { 1, n }.Distinct())
                    {
                        await using var client = await connect(c);
                        var active = client.ActiveConnections.Count;
                        Console.WriteLine($"  {c} connection{(c == 1 ? "" : "s")}{(active != c ? $" ({active} up)" : "")}: uploading ...");
                        // Its own scratch name, uploaded once per round: replacing it is intended.
                        var up = await client.UploadFileAsync(source, remote, overwrite: true, null, ct);
                        if (!string.Equals(up.Sha256, sha, StringComparison.OrdinalIgnoreCase))
                            throw new CliException(ExitCode.Integrity, $"the upload's SHA-256 {up.Sha256} differs from the file's {sha}.");
                        Console.WriteLine($"  {c} connection{(c == 1 ? "" : "s")}: downloading ...");
                        File.Delete(back);
                        var down = await client.DownloadFileAsync(remote, back, null, ct);
                        if (!string.Equals(down.Sha256, sha, StringComparison.OrdinalIgnoreCase))
                            throw new CliException(ExitCode.Integrity, $"the download's SHA-256 {down.Sha256} differs from the file's {sha}.");
                        rows.Add((c, up, down));
                    }
                }
                finally
                {
                    stopServer.Cancel();
                    if (server is not null) await server.DisposeAsync();
                    try { await serving; } catch (OperationCanceledException) { }
                }

                var table = new Table().AddColumn("connections").AddColumn(new TableColumn("upload MiB/s").RightAligned())
                    .AddColumn(new TableColumn("download MiB/s").RightAligned());
                foreach (var (c, up, down) in rows)
                    table.AddRow(c.ToString(), $"{up.MiBPerSecond:0.0}", $"{down.MiBPerSecond:0.0}");
                AnsiConsole.Write(table);
                Console.WriteLine($"{size} MiB each way, every transfer verified: sha256 {sha}.");
                if (target is not null)
                    Console.WriteLine($"Note: '{remote}' ({size} MiB) stays on the server: the protocol has no delete; remove it from the server's folder.");
                return ExitCode.Success;
            }
            finally
            {
                try { work.Delete(recursive: true); } catch (IOException) { }
            }
        }));
        return cmd;
    }

    private static async Task<string> WriteRandomFileAsync(string path, int mib, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[1 << 20];
        await using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous);
        for (int i = 0; i < mib; i++)
        {
            RandomNumberGenerator.Fill(chunk);
            hash.AppendData(chunk);
            await f.WriteAsync(chunk, ct);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
