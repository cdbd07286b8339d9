// Fairness between flows sharing one bottleneck: N QuicSend clients, each its own endpoint and
// connection, upload at once through ONE PathEmulator (one rate limit and one drop-tail queue per
// direction, shared) to one server. All flows run concurrently; after a warm-up (slow start over,
// every flow established) the server counts what each connection delivered during one common
// interval. Each flow's MiB/s and Jain's fairness index (Σx)² / (n·Σx²) come back: 1 is a perfect
// split, 1/n is one flow taking everything.
//
// Fixed time, not a fixed amount per flow: with a fixed amount the flows finish at different times,
// and a flow alone on the link after the others are done would count as "fair share". Here every
// flow is active over the whole measured interval.
using System.Diagnostics;
using System.Net;
using QuicSend.Security;
using QuicSend.Testing;
using QuicSend.Transport;

/// <summary>One fairness run: each flow's goodput over the common interval, and what the relay saw.</summary>
/// <param name="Controller">The congestion controller of every flow.</param>
/// <param name="Seconds">Length of the measured interval (after the warm-up).</param>
/// <param name="FlowMiBs">Each flow's goodput (stream bytes the server read) in MiB/s, in the order the clients connected.</param>
/// <param name="FlowWireMiBs">Each flow's UDP payload delivered to the server by the relay in MiB/s (retransmissions and headers included), same order.</param>
/// <param name="LinkMiBs">The bottleneck rate towards the server in MiB/s (0: unlimited).</param>
/// <param name="QueueDrops">Datagrams the shared queue dropped towards the server during the interval.</param>
/// <param name="RandomLosses">Datagrams lost at random towards the server during the interval.</param>
internal sealed record FairnessResult(
    CongestionControl Controller,
    double Seconds,
    double[] FlowMiBs,
    double[] FlowWireMiBs,
    double LinkMiBs,
    long QueueDrops,
    long RandomLosses)
{
    public int Flows => FlowMiBs.Length;
    public double TotalMiBs => FlowMiBs.Sum();
    public double Jain => Fairness.JainIndex(FlowMiBs);

    public override string ToString() =>
        $"{Controller}, {Flows} flows over {Seconds:0.0} s: Jain {Jain:0.000}, total {TotalMiBs:0.0} MiB/s" +
        (LinkMiBs > 0 ? $" of a {LinkMiBs:0} MiB/s link" : "") +
        $"; per flow {string.Join(" / ", FlowMiBs.Select(x => x.ToString("0.0")))} MiB/s; " +
        $"queue drops {QueueDrops}, random losses {RandomLosses}";
}

internal static class Fairness
{
    /// <summary>
    /// The default bottleneck: 25 MiB/s each way, well below what two cores push through QuicSend and the
    /// relay, so the shared link, not the CPU, decides each flow's share.
    /// </summary>
    public const long DefaultLinkRate = 25L << 20;

    /// <summary>20 ms each way (40 ms RTT), no random loss, <see cref="DefaultLinkRate"/> each way with a one-BDP drop-tail queue.</summary>
    public static PathEmulatorOptions DefaultPath() =>
        PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(20), 0, DefaultLinkRate, seed: 7);

    /// <summary>Jain's fairness index (Σx)² / (n·Σx²): 1 when all are equal, 1/n when one has everything; 0 for nothing at all.</summary>
    public static double JainIndex(IReadOnlyCollection<double> x)
    {
        double sum = 0, squares = 0;
        foreach (var v in x)
        {
            sum += v;
            squares += v * v;
        }
        return squares == 0 ? 0 : sum * sum / (x.Count * squares);
    }

#if QUINN_PROTO_ENGINE
    /// <summary>The older tree's PathEmulator carries one client only: no fairness runs against it.</summary>
    public static bool IsSupported => false;

    public static Task<FairnessResult> RunAsync(CongestionControl cc, int flows, PathEmulatorOptions? path = null,
        TimeSpan? measure = null, TimeSpan? warmUp = null, bool pacing = true) =>
        throw new NotSupportedException("The fairness run needs a PathEmulator that carries several flows (this tree's).");
#else
    public static bool IsSupported => true;

    /// <summary>
    /// Runs <paramref name="flows"/> uploads at once through one emulated path (<see cref="DefaultPath"/>
    /// unless given; its MaxFlows is raised to <paramref name="flows"/> if lower) and measures each one's
    /// goodput over <paramref name="measure"/> (5 s by default) after <paramref name="warmUp"/> (3 s by default).
    /// </summary>
    public static async Task<FairnessResult> RunAsync(CongestionControl cc, int flows, PathEmulatorOptions? path = null,
        TimeSpan? measure = null, TimeSpan? warmUp = null, bool pacing = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(flows, 1);
        path ??= DefaultPath();
        if (path.MaxFlows < flows) path.MaxFlows = flows;
        var interval = measure ?? TimeSpan.FromSeconds(5);
        var settle = warmUp ?? TimeSpan.FromSeconds(3);

        var root = CertificateTool.CreateRootCa("Fairness Root");
        var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
        var payload = new byte[1 << 20];
        Random.Shared.NextBytes(payload);

        var serverOptions = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = cert.CertificatePem, PrivateKeyPem = cert.PrivateKeyPem,
            CongestionControl = cc,
        };
        Engine.SetPacing(serverOptions, pacing);
        using var server = QuicEndpoint.Listen(serverOptions);
        using var emulator = new PathEmulator(server.LocalEndPoint, path);
        using var stop = new CancellationTokenSource();

        // The server: each connection's single stream starts with its client's index (4 bytes), then
        // the stream bytes are counted for that client.
        var delivered = new long[flows];
        var serving = Task.Run(async () =>
        {
            var drains = new List<Task>();
            try
            {
                for (int i = 0; i < flows; i++)
                {
                    var conn = await server.AcceptAsync(stop.Token);
                    drains.Add(Task.Run(() => DrainAsync(conn, delivered, stop.Token)));
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or QuicSend.QuicException) { }
            await Task.WhenAll(drains);
        });

        var clients = new List<QuicEndpoint>();
        var streams = new List<QuicStream>();
        var writers = new List<Task>();
        try
        {
            for (int i = 0; i < flows; i++)
            {
                var clientOptions = new QuicClientOptions
                {
                    TrustedRootPems = { root.CertificatePem }, CongestionControl = cc,
                    LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                };
                Engine.SetPacing(clientOptions, pacing);
                var client = QuicEndpoint.CreateClient(clientOptions);
                clients.Add(client);
                var conn = await client.ConnectAsync(emulator.ClientEndPoint, "localhost");
                var stream = await conn.OpenStreamAsync();
                await stream.WriteAsync(BitConverter.GetBytes(i));
                streams.Add(stream);
            }

            // Every flow starts at once and sends until told to stop.
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            foreach (var s in streams)
                writers.Add(Task.Run(async () =>
                {
                    await go.Task;
                    try
                    {
                        while (!stop.IsCancellationRequested) await s.WriteAsync(payload, stop.Token);
                    }
                    catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or QuicSend.QuicException) { }
                }));
            go.SetResult();

            await Task.Delay(settle);
            var goodput0 = Read(delivered);
            var wire0 = emulator.GetFlowStats();
            var up0 = emulator.ClientToServer;
            long t0 = Stopwatch.GetTimestamp();
            await Task.Delay(interval);
            var goodput1 = Read(delivered);
            var wire1 = emulator.GetFlowStats();
            var up1 = emulator.ClientToServer;
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            if (emulator.Fault is { } fault) throw new InvalidOperationException("the path emulator failed", fault);

            var mibs = new double[flows];
            var wire = new double[flows];
            for (int i = 0; i < flows; i++)
            {
                var me = clients[i].LocalEndPoint;
                mibs[i] = (goodput1[i] - goodput0[i]) / 1048576.0 / seconds;
                wire[i] = (WireBytes(wire1, me) - WireBytes(wire0, me)) / 1048576.0 / seconds;
            }
            return new FairnessResult(cc, seconds, mibs, wire, path.ClientToServer.BandwidthBytesPerSecond / 1048576.0,
                up1.DroppedByQueue - up0.DroppedByQueue, up1.DroppedByLoss - up0.DroppedByLoss);
        }
        finally
        {
            // Closing the clients ends any write still waiting for credit; then the server.
            stop.Cancel();
            foreach (var c in clients) c.Dispose();
            await Task.WhenAny(Task.WhenAll(writers), Task.Delay(TimeSpan.FromSeconds(5)));
            server.Dispose();
            await Task.WhenAny(serving, Task.Delay(TimeSpan.FromSeconds(5)));
        }
    }

    private static long[] Read(long[] counters)
    {
        var copy = new long[counters.Length];
        for (int i = 0; i < copy.Length; i++) copy[i] = Volatile.Read(ref counters[i]);
        return copy;
    }

    private static long WireBytes(PathFlowStats[] flows, IPEndPoint client) =>
        flows.FirstOrDefault(f => f.Client.Equals(client)).BytesToServer;

    /// <summary>Reads the client's index, then counts everything else on the stream for it.</summary>
    private static async Task DrainAsync(QuicConnection conn, long[] delivered, CancellationToken ct)
    {
        var buf = new byte[1 << 20];
        try
        {
            var s = await conn.AcceptStreamAsync(ct);
            await s.ReadExactlyAsync(buf.AsMemory(0, 4), ct);
            int who = BitConverter.ToInt32(buf, 0);
            int n;
            while ((n = await s.ReadAsync(buf, ct)) > 0) Interlocked.Add(ref delivered[who], n);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or EndOfStreamException or QuicSend.QuicException) { }
    }
#endif
}
