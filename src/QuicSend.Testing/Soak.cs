using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Transport;

namespace QuicSend.Testing;

/// <summary>Settings of a <see cref="Soak"/> run.</summary>
public sealed class SoakOptions
{
    /// <summary>Requests to complete (echoed and verified); the run also stops at <see cref="Duration"/>.</summary>
    public int Requests { get; init; } = 10_000;

    /// <summary>The longest the run may take; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</summary>
    public TimeSpan Duration { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>The index of the first request (sizes follow the index): to replay a stretch of a failed run.</summary>
    public int FirstRequest { get; init; }

    /// <summary>Connections of the long-lived pooled client.</summary>
    public int Connections { get; init; } = 4;

    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>The largest body; bodies range from 1 byte to this, mostly small (see <see cref="Soak.SizeOf"/>).</summary>
    public int MaxBodyBytes { get; init; } = 64 << 20;

    /// <summary>Every this many requests a separate client connects, makes a few requests and is disposed.</summary>
    public int ChurnEvery { get; init; } = 500;

    /// <summary>Restart the server (dispose it, start a new one on the same port) once this share of the run is done; 0 for never.</summary>
    public double RestartAt { get; init; } = 0.5;

    /// <summary>Or restart the server once this much time has passed (for runs bounded by <see cref="Duration"/>).</summary>
    public TimeSpan RestartAfter { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>How often <see cref="Report"/> is called.</summary>
    public TimeSpan ReportEvery { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Called with a sample every <see cref="ReportEvery"/> (from a timer thread).</summary>
    public Action<SoakSample>? Report { get; init; }
}

/// <summary>One look at a running soak: progress, and the memory and native objects the process holds.</summary>
/// <param name="GcHeapBytes">Managed heap in use after a full, compacting collection.</param>
public sealed record SoakSample(TimeSpan Elapsed, long Requests, long Bytes, long RssBytes, long GcHeapBytes, long LiveNativeObjects)
{
    public override string ToString() =>
        $"{Elapsed:hh\\:mm\\:ss} {Requests,8} requests {Bytes / 1048576.0,10:0} MiB   RSS {RssBytes / 1048576.0,6:0} MiB   GC heap {GcHeapBytes / 1048576.0,6:0.0} MiB   live native objects {LiveNativeObjects}";
}

/// <summary>What a soak run saw.</summary>
/// <param name="Baseline">After the warm-up, with the server and the pooled client up.</param>
/// <param name="Final">At the end, in the same state (the server and the client alive, every extra client gone).</param>
/// <param name="FailedByRestart">Requests that failed because the server restarted under them (each one was sent again and verified).</param>
public sealed record SoakResult(long Requests, long Bytes, long Mismatches, int FailedByRestart, int ChurnClients, bool Restarted,
    SoakSample Baseline, SoakSample Final, IReadOnlyList<string> RestartErrors, IReadOnlyList<string> MismatchDetails);

/// <summary>
/// A bounded or long-running soak over loopback: a server echoing bodies, a pooled client sending requests of
/// mixed sizes (1 byte to 64 MiB) with several in flight, every response hashed against its request, extra
/// clients opened and closed throughout, and the server restarted once on the same port. The pooled client
/// lives through the restart (it replaces its closed connections by itself); the requests the restart cut
/// are sent again and counted, and each failure must be a clear <see cref="QuicException"/>. Memory is sampled after full collections; the caller compares
/// <see cref="SoakResult.Baseline"/> with <see cref="SoakResult.Final"/>.
/// </summary>
public static class Soak
{
    private const int WarmUp = 200;

    /// <summary>
    /// The size of request <paramref name="i"/>: 90 % up to 64 KiB, 9 % up to 4 MiB, 1 % up to the maximum (log-uniform within
    /// each band), and every 1000th exactly the maximum, so a run of 10,000 moves about 2 GiB each way.
    /// </summary>
    public static int SizeOf(int i, int max)
    {
        if (i % 1000 == 999) return max;
        var r = new Random(unchecked(i * 7919 + 17));
        double band = r.NextDouble();
        double lo, hi;
        if (band < 0.90) (lo, hi) = (0, 16);
        else if (band < 0.99) (lo, hi) = (16, 22);
        else (lo, hi) = (22, Math.Log2(max));
        hi = Math.Min(hi, Math.Log2(max));
        lo = Math.Min(lo, hi);
        return (int)Math.Clamp(Math.Pow(2, lo + r.NextDouble() * (hi - lo)), 1, max);
    }

    public static async Task<SoakResult> RunAsync(SoakOptions o, CancellationToken cancellationToken = default)
    {
        var root = CertificateTool.CreateRootCa("Soak Root");
        var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
        const string token = "soak-token";
        var data = new byte[o.MaxBodyBytes + 4096];
        RandomNumberGenerator.Fill(data);
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (o.Duration != Timeout.InfiniteTimeSpan) stop.CancelAfter(o.Duration);

        int port = 0;
        Server server = Server.Start(cert, token, port);
        port = server.Port;
        var client = await ConnectAsync(root, token, port, o.Connections).ConfigureAwait(false);

        long done = 0, bytes = 0, mismatches = 0;
        int failedByRestart = 0, churn = 0, next = 0, restartClaimed = 0, restartEpoch = 0;
        bool restarted = false, restarting = false;
        TimeSpan restartStarted = default;
        var restartErrors = new List<string>();
        var mismatchDetails = new List<string>();
        var restartLock = new SemaphoreSlim(1, 1);
        int restartAfter = o.RestartAt > 0 ? Math.Max(WarmUp + 1, (int)(o.Requests * o.RestartAt)) : int.MaxValue;
        SoakSample? baseline = null;

        using var reporter = o.Report is null ? null : new Timer(_ =>
        {
            try { o.Report(Sample(clock.Elapsed, Interlocked.Read(ref done), Interlocked.Read(ref bytes), collect: false)); }
            catch (ObjectDisposedException) { }
        }, null, o.ReportEvery, o.ReportEvery);

        async Task<bool> OneAsync(int i)
        {
            int size = SizeOf(i, o.MaxBodyBytes);
            int offset = i % 4096;
            var body = new ReadOnlyMemory<byte>(data, offset, size);
            var expected = SHA256.HashData(body.Span);
            while (true)
            {
                var c = Volatile.Read(ref client);
                int epoch = Volatile.Read(ref restartEpoch);
                try
                {
                    using var r = await c.RequestAsync("/echo", null, QuicSendBody.FromBytes(body), stop.Token).ConfigureAwait(false);
                    var (got, length) = await HashBodyAsync(r, stop.Token).ConfigureAwait(false);
                    if (r.Status != 200 || length != size || !got.AsSpan().SequenceEqual(expected))
                    {
                        Interlocked.Increment(ref mismatches);
                        lock (restartErrors) mismatchDetails.Add($"request {i} at {clock.Elapsed.TotalSeconds:0.0} s{(Volatile.Read(ref restarted) ? " (after the restart)" : "")}: " +
                                                                 $"sent {size} bytes, got status {r.Status} and {length} bytes" + (length == size ? " that hash differently" : ""));
                    }
                    Interlocked.Add(ref bytes, 2L * size);
                    return true;
                }
                catch (QuicException e) when (!stop.IsCancellationRequested && (Volatile.Read(ref restarting) || epoch != Volatile.Read(ref restartEpoch)))
                {
                    // The server went away under this request: the restart is the only expected cause. Wait for the new client, send again.
                    lock (restartErrors) restartErrors.Add(e.Message);
                    Interlocked.Increment(ref failedByRestart);
                    await restartLock.WaitAsync(stop.Token).ConfigureAwait(false);
                    restartLock.Release();
                }
            }
        }

        async Task RestartAsync()
        {
            await restartLock.WaitAsync(stop.Token).ConfigureAwait(false);
            Volatile.Write(ref restarting, true);
            Interlocked.Increment(ref restartEpoch);
            try
            {
                restartStarted = clock.Elapsed;
                await server.DisposeAsync().ConfigureAwait(false);
                Volatile.Write(ref restarted, true);
                server = Server.Start(cert, token, port);
                // The pooled client stays: it replaces its closed connections by itself on the next requests.
            }
            finally
            {
                Volatile.Write(ref restarting, false);
                restartLock.Release();
            }
        }

        async Task ChurnAsync()
        {
            await using var extra = await ConnectAsync(root, token, port, 2).ConfigureAwait(false);
            for (int k = 0; k < 10; k++)
            {
                var body = new ReadOnlyMemory<byte>(data, k, 1000 + k);
                using var r = await extra.RequestAsync("/echo", null, QuicSendBody.FromBytes(body), stop.Token).ConfigureAwait(false);
                var (got, _) = await HashBodyAsync(r, stop.Token).ConfigureAwait(false);
                if (!got.AsSpan().SequenceEqual(SHA256.HashData(body.Span)))
                {
                    Interlocked.Increment(ref mismatches);
                    lock (restartErrors) mismatchDetails.Add($"an extra client's request {k} of {body.Length} bytes: status {r.Status}, the answer hashes differently");
                }
            }
            Interlocked.Increment(ref churn);
        }

        async Task WorkerAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref next) - 1;
                if (i >= o.Requests) return;
                if (i == restartAfter || (o.RestartAfter != Timeout.InfiniteTimeSpan && !Volatile.Read(ref restarted) && clock.Elapsed >= o.RestartAfter
                                          && Interlocked.Exchange(ref restartClaimed, 1) == 0))
                    await RestartAsync().ConfigureAwait(false);
                if (i > 0 && i % o.ChurnEvery == 0) await ChurnAsync().ConfigureAwait(false);
                await OneAsync(i).ConfigureAwait(false);
                Interlocked.Increment(ref done);
            }
        }

        try
        {
            // The warm-up on its own, then the baseline with nothing in flight, then the rest.
            next = o.FirstRequest;
            int warm = Math.Min(WarmUp, o.Requests - o.FirstRequest);
            for (int i = 0; i < warm; i++) { await OneAsync(next++).ConfigureAwait(false); done++; }
            baseline = Sample(clock.Elapsed, done, bytes, collect: true);
            await Task.WhenAll(Enumerable.Range(0, o.Concurrency).Select(_ => Task.Run(WorkerAsync))).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // The duration ran out: a long run stops here.
        }
        var final = Sample(clock.Elapsed, done, bytes, collect: true);
        await client.DisposeAsync().ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
        if (restarted) restartErrors.Insert(0, $"(the restart began at {restartStarted.TotalSeconds:0.0} s)");
        return new SoakResult(done, bytes, mismatches, failedByRestart, churn, restarted, baseline ?? final, final, restartErrors, mismatchDetails);
    }

    private static SoakSample Sample(TimeSpan elapsed, long requests, long bytes, bool collect)
    {
        if (collect)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        using var self = Process.GetCurrentProcess();
        return new SoakSample(elapsed, requests, bytes, self.WorkingSet64, GC.GetTotalMemory(forceFullCollection: false), QuicEndpoint.LiveNativeObjects);
    }

    private static async Task<(byte[] Sha256, long Length)> HashBodyAsync(QuicSendResponse r, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(256 << 10);
        long length = 0;
        try
        {
            int n;
            while ((n = await r.Body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                length += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return (sha.GetHashAndReset(), length);
    }

    private static Task<QuicSendClient> ConnectAsync(PemCertificate root, string token, int port, int connections) =>
        QuicSendClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), new QuicSendClientOptions
        {
            Transport = new QuicClientOptions { TrustedRootPems = { root.CertificatePem } },
            Token = token,
            ServerName = "localhost",
            Connections = connections,
        });

    /// <summary>The echo server: every request's body streamed back as its response body.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly QuicSendServer _server;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        private Server(QuicSendServer server)
        {
            _server = server;
            _loop = Task.Run(LoopAsync);
        }

        public int Port => _server.LocalEndPoint.Port;

        public static Server Start(PemCertificate cert, string token, int port) => new(new QuicSendServer(new QuicSendServerOptions
        {
            Transport = new QuicServerOptions
            {
                ListenEndPoint = new IPEndPoint(IPAddress.Loopback, port),
                CertificateChainPem = cert.CertificatePem,
                PrivateKeyPem = cert.PrivateKeyPem,
            },
            Tokens = [token],
        }));

        private async Task LoopAsync()
        {
            var running = new List<Task>();
            try
            {
                await foreach (var req in _server.AcceptRequestsAsync(_stop.Token).ConfigureAwait(false))
                {
                    running.RemoveAll(t => t.IsCompleted);
                    running.Add(Task.Run(() => EchoAsync(req, _stop.Token)));
                }
            }
            catch (OperationCanceledException) { }
            try { await Task.WhenAll(running).ConfigureAwait(false); } catch { }
        }

        private static async Task EchoAsync(QuicSendRequest req, CancellationToken cancellationToken)
        {
            using (req)
            {
                try
                {
                    await req.RespondStreamingAsync(200, null, async output =>
                    {
                        await req.Body.CopyToAsync(output, 256 << 10, cancellationToken).ConfigureAwait(false);
                        return [];
                    }, cancellationToken, req.ContentLength).ConfigureAwait(false);
                }
                catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException) { } // the client's side reports it
            }
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            await _server.DisposeAsync().ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
            _stop.Dispose();
        }
    }
}
