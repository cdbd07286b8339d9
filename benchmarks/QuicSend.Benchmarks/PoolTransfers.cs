// File transfers through QuicSendServer / QuicSendClient with a pool of N connections: the file
// path (disk, SHA-256 of every piece and of the whole, atomic rename) on loopback, and striped
// downloads over an emulated long path. Files live on tmpfs (/dev/shm) so the disk is memory.
#if !QUINN_PROTO_ENGINE
using System.Net;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Testing;
using QuicSend.Transport;

sealed class PoolTransfers : IDisposable
{
    private readonly PemCertificate _root = CertificateTool.CreateRootCa("Bench Root");
    private readonly PemCertificate _cert;
    private readonly DirectoryInfo _dir;
    private readonly string _serverDir, _clientDir, _source;
    private readonly long _total;

    public PoolTransfers(long total)
    {
        _total = total;
        _cert = CertificateTool.IssueServer(_root, ["localhost"], [IPAddress.Loopback]);
        var tmp = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        _dir = Directory.CreateDirectory(Path.Combine(tmp, $"quicsend-bench-{Environment.ProcessId}"));
        _serverDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "server")).FullName;
        _clientDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "client")).FullName;
        _source = Path.Combine(_serverDir, "blob.bin");
        using var f = File.Create(_source);
        var piece = new byte[4 << 20];
        for (long done = 0; done < total; done += piece.Length)
        {
            Random.Shared.NextBytes(piece);
            f.Write(piece, 0, (int)Math.Min(piece.Length, total - done));
        }
    }

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>
    /// Downloads (or uploads) the file with a pool of <paramref name="connections"/>, directly or
    /// through an emulated path. With a <paramref name="deadline"/> the run stops there and counts the
    /// bytes that had arrived (a striped download's progress counts only verified-in-place bytes).
    /// </summary>
    public async Task<Sample> Run(int connections, bool upload, CongestionControl cc = Engine.BbrControl,
        PathEmulatorOptions? path = null, TimeSpan? deadline = null, int chunkSize = 16 << 20)
    {
        var serverOptions = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = _cert.CertificatePem, PrivateKeyPem = _cert.PrivateKeyPem, CongestionControl = cc,
        };
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = serverOptions, Tokens = ["bench"] });
        using var stopServing = new CancellationTokenSource();
        var serving = FileTransfer.ServeDirectoryAsync(server, _serverDir, stopServing.Token);
        using var emulator = path is null ? null : new PathEmulator(server.LocalEndPoint, path);
        var target = emulator?.ClientEndPoint ?? server.LocalEndPoint;
        await using var client = await QuicSendClient.ConnectAsync(target, new QuicSendClientOptions
        {
            Transport = new QuicClientOptions
            {
                TrustedRootPems = { _root.CertificatePem }, CongestionControl = cc, LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            },
            Token = "bench", ServerName = "localhost", Connections = connections, ChunkSize = chunkSize,
        });
        if (client.ActiveConnections.Count != connections)
            throw new Exception($"only {client.ActiveConnections.Count} of {connections} connections came up");

        long moved = 0;
        var progress = new Progress(v => Volatile.Write(ref moved, v));
        using var stop = deadline is { } d ? new CancellationTokenSource(d) : new CancellationTokenSource();
        var meter = Meter.Start();
        using var tracing = new CancellationTokenSource();
        var trace = Transfers.Trace ? Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    await Task.Delay(500, tracing.Token);
                    var conns = client.ActiveConnections.Select(c => c.GetStats())
                        .Select(st => $"[rx {st.UdpBytesReceived >> 20} MiB, cwnd {st.CongestionWindow >> 10} KiB, rtt {st.RoundTripTime.TotalMilliseconds:0} ms, lost {st.LostPackets}]");
                    Console.WriteLine($"    {meter.Elapsed.TotalSeconds,5:0.0} s: {Volatile.Read(ref moved) >> 20} MiB; {string.Join(" ", conns)}" +
                                      (emulator is null ? "" : $"; relay down: {emulator.ServerToClient}"));
                }
            }
            catch (OperationCanceledException) { }
        }) : Task.CompletedTask;
        long bytes;
        try
        {
            var result = upload
                ? await client.UploadFileAsync(_source, "up.bin", overwrite: true, progress, stop.Token) // each run replaces the last
                : await client.DownloadFileAsync("blob.bin", Path.Combine(_clientDir, "down.bin"), progress, stop.Token);
            if (!result.Succeeded || result.Length != _total) throw new Exception($"transfer failed: {result}");
            bytes = _total;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            bytes = Volatile.Read(ref moved);
        }
        tracing.Cancel();
        await trace;
        var sample = meter.Stop(bytes, linkMiBs: path is null ? 0 : path.ServerToClient.BandwidthBytesPerSecond / 1048576.0);
        stopServing.Cancel();
        try { await serving; } catch { }
        foreach (var f in Directory.GetFiles(_clientDir)) File.Delete(f);
        var up = Path.Combine(_serverDir, "up.bin");
        if (File.Exists(up)) File.Delete(up);
        return sample;
    }

    /// <summary>Progress kept on the reporting thread.</summary>
    private sealed class Progress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
#endif
