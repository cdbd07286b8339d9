// The transfers the benchmark times: each moves `total` bytes over one connection, memory to
// memory (the receiver discards), and returns one Sample. Both ends run in this process.
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Testing;
using QuicSend.Transport;

/// <summary>What the sender and the relay saw on the emulated path during one run.</summary>
record PathCounts(long SentPackets, long LostPackets, long RelayReceived, long RelayQueueDrops);

/// <summary>One timed run: wall seconds, bytes delivered, process CPU seconds over the same interval;
/// on an emulated path the link rate (MiB/s) its goodput is a share of.</summary>
record Sample(double Seconds, long Bytes, double CpuSeconds, PathCounts? Path = null, double LinkMiBs = 0)
{
    public double MiBs => Bytes / 1048576.0 / Seconds;
    public double CpuPerGiB => CpuSeconds / (Bytes / 1073741824.0);
}

/// <summary>Wall clock and process CPU time (every thread: both ends, and the relay if any) from Start.</summary>
readonly record struct Meter(long Started, TimeSpan Cpu)
{
    public static Meter Start() => new(Stopwatch.GetTimestamp(), Environment.CpuUsage.TotalTime);
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(Started);
    public Sample Stop(long bytes, PathCounts? path = null, double linkMiBs = 0) =>
        new(Elapsed.TotalSeconds, bytes, (Environment.CpuUsage.TotalTime - Cpu).TotalSeconds, path, linkMiBs);
}

sealed class Transfers(long total)
{
    // Through PathEmulator: 20 ms each way (40 ms RTT), random loss each way (1 % unless a row
    // says otherwise), a 100 MiB/s bottleneck each way with a one-BDP drop-tail queue. The sink stops at PathDeadline (a
    // loss-based controller may need minutes for the whole amount); the run counts what arrived.
    public const long PathLinkRate = 100L << 20;
    public static readonly TimeSpan PathDeadline = TimeSpan.FromSeconds(8);

    private readonly PemCertificate _root = CertificateTool.CreateRootCa("Bench Root");
    private readonly byte[] _payload = RandomPayload();
    private PemCertificate? _cert;
    private PemCertificate Cert => _cert ??= CertificateTool.IssueServer(_root, ["localhost"], [IPAddress.Loopback]);

    private static byte[] RandomPayload()
    {
        var b = new byte[4 << 20];
        Random.Shared.NextBytes(b);
        return b;
    }

    private ReadOnlyMemory<byte> Chunk(long sent) => _payload.AsMemory(0, (int)Math.Min(_payload.Length, total - sent));

    public async Task<Sample> Quic(CongestionControl cc, bool batched)
    {
        using var server = QuicEndpoint.Listen(new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = Cert.CertificatePem, PrivateKeyPem = Cert.PrivateKeyPem,
            CongestionControl = cc, UseBatchedIo = batched,
        });
        using var client = QuicEndpoint.CreateClient(new QuicClientOptions
        {
            TrustedRootPems = { _root.CertificatePem }, CongestionControl = cc, UseBatchedIo = batched,
        });
        var sink = Task.Run(async () =>
        {
            var c = await server.AcceptAsync();
            var s = await c.AcceptStreamAsync();
            var got = await Drain(s, CancellationToken.None);
            await s.WriteAsync(new byte[1], completeWrites: true);
            return got;
        });
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost");
        var meter = Meter.Start();
        var stream = await conn.OpenStreamAsync();
        for (long sent = 0; sent < total; sent += _payload.Length) await stream.WriteAsync(Chunk(sent));
        stream.CompleteWrites();
        await stream.ReadExactlyAsync(new byte[1]);
        var sample = meter.Stop(total);
        if (await sink != total) throw new Exception("short transfer");
        return sample;
    }

    public async Task<Sample> Tls()
    {
        using var x509 = X509Certificate2.CreateFromPem(Cert.CertificatePem, Cert.PrivateKeyPem);
        using var serverCert = X509CertificateLoader.LoadPkcs12(x509.Export(X509ContentType.Pfx), null);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var sink = Task.Run(async () =>
        {
            using var s = await listener.AcceptAsync();
            await using var ssl = new SslStream(new NetworkStream(s, true));
            await ssl.AuthenticateAsServerAsync(serverCert);
            var buf = new byte[1 << 20];
            long got = 0;
            int n;
            while (got < total && (n = await ssl.ReadAsync(buf)) > 0) got += n;
            await ssl.WriteAsync(new byte[1]);
            return got;
        });
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await c.ConnectAsync(listener.LocalEndPoint!);
        await using var cssl = new SslStream(new NetworkStream(c, true), false, (_, _, _, _) => true);
        await cssl.AuthenticateAsClientAsync("localhost");
        var meter = Meter.Start();
        for (long sent = 0; sent < total; sent += _payload.Length) await cssl.WriteAsync(Chunk(sent));
        await cssl.ReadExactlyAsync(new byte[1]);
        var sample = meter.Stop(total);
        if (await sink != total) throw new Exception("short transfer");
        return sample;
    }

    public async Task<Sample> Http3Response()
    {
        var transport = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = Cert.CertificatePem, PrivateKeyPem = Cert.PrivateKeyPem,
        };
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = transport, Tokens = ["bench"] });
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync())
                using (req)
                    await req.RespondAsync(200, null, QuicSendBody.FromStream(new RepeatStream(_payload, total), total));
        });
        await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = new QuicClientOptions { TrustedRootPems = { _root.CertificatePem } }, Token = "bench", ServerName = "localhost",
        });
        var meter = Meter.Start();
        using var resp = await client.RequestAsync("/blob");
        var got = await Drain(resp.Body, CancellationToken.None);
        var sample = meter.Stop(got);
        if (got != total) throw new Exception("short response");
        return sample;
    }

    public async Task<Sample> Http2Kestrel()
    {
        using var x509 = X509Certificate2.CreateFromPem(Cert.CertificatePem, Cert.PrivateKeyPem);
        using var serverCert = X509CertificateLoader.LoadPkcs12(x509.Export(X509ContentType.Pfx), null);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.UseHttps(serverCert);
        }));
        await using var app = builder.Build();
        app.MapGet("/blob", async (HttpContext ctx) =>
        {
            ctx.Response.ContentLength = total;
            for (long sent = 0; sent < total; sent += _payload.Length) await ctx.Response.Body.WriteAsync(Chunk(sent));
        });
        await app.StartAsync();
        using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } };
        using var http = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var meter = Meter.Start();
        using var resp = await http.GetAsync(app.Urls.First() + "/blob", HttpCompletionOption.ResponseHeadersRead);
        await using var body = await resp.Content.ReadAsStreamAsync();
        var got = await Drain(body, CancellationToken.None);
        var sample = meter.Stop(got);
        await app.StopAsync();
        if (got != total) throw new Exception("short response");
        return sample;
    }

    /// <summary>Client → relay → server; the client sends. The relay's threads are in this process, so their CPU counts too.</summary>
    public async Task<Sample> Path(CongestionControl cc, bool pacing, double loss = 0.01)
    {
        var serverOptions = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = Cert.CertificatePem, PrivateKeyPem = Cert.PrivateKeyPem,
            CongestionControl = cc,
        };
        var clientOptions = new QuicClientOptions
        {
            TrustedRootPems = { _root.CertificatePem }, CongestionControl = cc,
            LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        };
        Engine.SetPacing(serverOptions, pacing);
        Engine.SetPacing(clientOptions, pacing);
        using var server = QuicEndpoint.Listen(serverOptions);
        using var path = new PathEmulator(server.LocalEndPoint,
            PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(20), loss, PathLinkRate, seed: 7));
        using var client = QuicEndpoint.CreateClient(clientOptions);
        var sink = Task.Run(async () =>
        {
            var c = await server.AcceptAsync();
            var s = await c.AcceptStreamAsync();
            using var stop = new CancellationTokenSource(PathDeadline);
            return await Drain(s, stop.Token);
        });
        var conn = await client.ConnectAsync(path.ClientEndPoint, "localhost");
        var meter = Meter.Start();
        var stream = await conn.OpenStreamAsync();
        var writing = Task.Run(async () =>
        {
            try
            {
                for (long sent = 0; sent < total; sent += _payload.Length) await stream.WriteAsync(Chunk(sent));
                stream.CompleteWrites();
            }
            catch (Exception e) when (e is QuicSend.QuicException or ObjectDisposedException or OperationCanceledException) { }
        });
        using var tracing = Trace ? new CancellationTokenSource() : null;
        var trace = tracing is null ? Task.CompletedTask : TraceAsync(conn, meter, tracing.Token);
        var got = await sink;
        tracing?.Cancel();
        await trace;
        var stats = conn.GetStats();
        var up = path.ClientToServer;
        var sample = meter.Stop(got, new PathCounts(stats.SentPackets, stats.LostPackets, up.Received, up.DroppedByQueue));
        await conn.CloseAsync(0, "done");
        client.Dispose();
        server.Dispose();
        try { await writing; } catch { }
        return sample;
    }

    /// <summary>--trace: a line per 100 ms of each path run, to see where a transfer stalls.</summary>
    public static bool Trace { get; set; }

    private long _drained;

    private async Task TraceAsync(QuicConnection conn, Meter meter, CancellationToken ct)
    {
        long lastGot = 0;
        try
        {
            while (true)
            {
                await Task.Delay(100, ct);
                var s = conn.GetStats();
                long got = Volatile.Read(ref _drained);
                Console.WriteLine($"    {meter.Elapsed.TotalSeconds,6:0.00} s: read {got >> 20,4} MiB (+{(got - lastGot) * 10.0 / 1048576,5:0.0} MiB/s), " +
                                  $"cwnd {s.CongestionWindow >> 10,6} KiB, rtt {s.RoundTripTime.TotalMilliseconds,5:0.0} ms, lost {s.LostPackets} of {s.SentPackets}");
                lastGot = got;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or QuicSend.QuicException or ObjectDisposedException) { }
    }

    /// <summary>Reads until the end, the whole amount, or cancellation; returns the bytes read.</summary>
    private async Task<long> Drain(Stream s, CancellationToken ct)
    {
        var buf = new byte[1 << 20];
        long got = 0;
        int n;
        Volatile.Write(ref _drained, 0);
        try
        {
            while (got < total && (n = await s.ReadAsync(buf, ct)) > 0) Volatile.Write(ref _drained, got += n);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        return got;
    }
}

/// <summary>Serves `total` bytes by repeating a buffer: a large body without a large allocation.</summary>
sealed class RepeatStream(byte[] chunk, long total) : Stream
{
    private long _pos;
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(Math.Min(buffer.Length, chunk.Length), total - _pos);
        chunk.AsSpan(0, n).CopyTo(buffer);
        _pos += n;
        return n;
    }
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => ValueTask.FromResult(Read(buffer.Span));
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => total;
    public override long Position { get => _pos; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
