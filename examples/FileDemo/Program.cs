// The demo: a local QuicSend server and client move a real file over QUIC on
// loopback, verify it by SHA-256, and print the throughput.
//
//   dotnet run --project examples/FileDemo -c Release -- [--size-mib 256] [--file PATH] [--cc bbr|cubic|newreno] [--portable-io]
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Security;
using QuicSend.Transport;

int sizeMiB = 256;
string? file = null;
var cc = CongestionControl.Bbr2;
bool batched = true;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--size-mib": sizeMiB = int.Parse(args[++i]); break;
        case "--file": file = args[++i]; break;
        case "--cc": cc = Enum.Parse<CongestionControl>(args[++i], ignoreCase: true); break;
        case "--portable-io": batched = false; break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'. Usage: FileDemo [--size-mib N] [--file PATH] [--cc bbr|cubic|newreno] [--portable-io]");
            return 2;
    }
}

var work = Directory.CreateTempSubdirectory("quicsend-demo-");
try
{
    // The original workflow's files: a private root, a server certificate it signed.
    var root = CertificateTool.CreateRootCa("QuicSend Demo Root");
    var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
    root.Save(Path.Combine(work.FullName, "root.pem"), Path.Combine(work.FullName, "root.key"));
    cert.Save(Path.Combine(work.FullName, "server.pem"), Path.Combine(work.FullName, "server.key"));

    if (file is null)
    {
        file = Path.Combine(work.FullName, "payload.bin");
        Console.WriteLine($"Writing a {sizeMiB} MiB file of random bytes to {file} ...");
        using var f = File.Create(file);
        var chunk = new byte[1 << 20];
        for (int i = 0; i < sizeMiB; i++)
        {
            RandomNumberGenerator.Fill(chunk);
            f.Write(chunk);
        }
    }
    var length = new FileInfo(file).Length;
    var received = Path.Combine(work.FullName, "received.bin");

    using var server = QuicEndpoint.Listen(new QuicServerOptions
    {
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        CertificateChainPath = Path.Combine(work.FullName, "server.pem"),
        PrivateKeyPath = Path.Combine(work.FullName, "server.key"),
        AlpnProtocols = { "quicsend-demo" },
        CongestionControl = cc,
        UseBatchedIo = batched,
    });
    var serverTask = Task.Run(async () =>
    {
        var conn = await server.AcceptAsync();
        await using var s = await conn.AcceptStreamAsync();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var output = new FileStream(received, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
        {
            var buf = new byte[1 << 20];
            int n;
            while ((n = await s.ReadAsync(buf)) > 0)
            {
                sha.AppendData(buf, 0, n);
                await output.WriteAsync(buf.AsMemory(0, n));
            }
        }
        await s.WriteAsync(sha.GetHashAndReset(), completeWrites: true);
    });

    using var client = QuicEndpoint.CreateClient(new QuicClientOptions
    {
        TrustedRootPaths = { Path.Combine(work.FullName, "root.pem") },
        AlpnProtocols = { "quicsend-demo" },
        CongestionControl = cc,
        UseBatchedIo = batched,
    });
    var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost");
    Console.WriteLine($"Connected to {server.LocalEndPoint} (TLS 1.3, {cc}, {(client.UsesBatchedIo ? "GSO/GRO batched" : "one datagram per call")} UDP I/O). Sending {length / (1 << 20)} MiB ...");

    var sw = Stopwatch.StartNew();
    var stream = await conn.OpenStreamAsync();
    using var localSha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    await using (var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan))
    {
        var buf = new byte[4 << 20];
        int n;
        while ((n = await input.ReadAsync(buf)) > 0)
        {
            localSha.AppendData(buf, 0, n);
            await stream.WriteAsync(buf.AsMemory(0, n));
        }
    }
    stream.CompleteWrites();
    var remoteHash = new byte[32];
    int got = 0;
    while (got < 32)
    {
        int n = await stream.ReadAsync(remoteHash.AsMemory(got));
        if (n == 0) throw new IOException("the server closed the stream before sending its hash");
        got += n;
    }
    sw.Stop();
    await serverTask;

    var stats = conn.GetStats();
    var ok = remoteHash.AsSpan().SequenceEqual(localSha.GetHashAndReset()) && new FileInfo(received).Length == length;
    var mibs = length / (1024.0 * 1024.0) / sw.Elapsed.TotalSeconds;
    Console.WriteLine($"Moved {length / (1 << 20)} MiB in {sw.Elapsed.TotalSeconds:0.00} s: {mibs:0} MiB/s " +
                      $"(rtt {stats.RoundTripTime.TotalMilliseconds:0.00} ms, mtu {stats.Mtu}, {stats.LostPackets} packets lost)");
    Console.WriteLine(ok ? "SHA-256 verified: the received file is identical." : "MISMATCH: the received file differs!");
    await conn.CloseAsync(0, "done");
    return ok ? 0 : 1;
}
finally
{
    work.Delete(recursive: true);
}
