// Bulk-throughput benchmark on loopback: one connection, memory to memory, the
// receiver discards. QuicSend beside the baselines measured in the same run
// (SslStream over TCP) and the figures recorded for this machine.
//
//   dotnet run -c Release --project benchmarks/QuicSend.Benchmarks -- [--mib 512] [--only quic]
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

int mib = 512;
string? only = null;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--mib") mib = int.Parse(args[++i]);
    else if (args[i] == "--only") only = args[++i];
}
long total = (long)mib << 20;
var root = CertificateTool.CreateRootCa("Bench Root");
var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
var payload = new byte[4 << 20];
Random.Shared.NextBytes(payload);

var rows = new List<(string Name, double MiBs, string Note)>();
async Task Run(string name, Func<Task<double>> run, string note)
{
    if (only is not null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) return;
    await run(); // warm-up: JIT, page faults
    var best = 0.0;
    for (int i = 0; i < 3; i++) best = Math.Max(best, await run());
    rows.Add((name, best, note));
    Console.WriteLine($"  {name}: {best:0} MiB/s");
}

async Task<double> Quic(CongestionControl cc, bool batched)
{
    using var server = QuicEndpoint.Listen(new QuicServerOptions
    {
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        CertificateChainPem = cert.CertificatePem, PrivateKeyPem = cert.PrivateKeyPem,
        CongestionControl = cc, UseBatchedIo = batched,
    });
    using var client = QuicEndpoint.CreateClient(new QuicClientOptions
    {
        TrustedRootPems = { root.CertificatePem }, CongestionControl = cc, UseBatchedIo = batched,
    });
    var sink = Task.Run(async () =>
    {
        var c = await server.AcceptAsync();
        var s = await c.AcceptStreamAsync();
        var buf = new byte[1 << 20];
        long got = 0;
        int n;
        while ((n = await s.ReadAsync(buf)) > 0) got += n;
        await s.WriteAsync(new byte[1], completeWrites: true);
        return got;
    });
    var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost");
    var sw = Stopwatch.StartNew();
    var stream = await conn.OpenStreamAsync();
    for (long sent = 0; sent < total; sent += payload.Length)
        await stream.WriteAsync(payload.AsMemory(0, (int)Math.Min(payload.Length, total - sent)));
    stream.CompleteWrites();
    await stream.ReadExactlyAsync(new byte[1]);
    sw.Stop();
    if (await sink != total) throw new Exception("short transfer");
    return total / 1048576.0 / sw.Elapsed.TotalSeconds;
}

async Task<double> Tls()
{
    using var x509 = X509Certificate2.CreateFromPem(cert.CertificatePem, cert.PrivateKeyPem);
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
    var sw = Stopwatch.StartNew();
    for (long sent = 0; sent < total; sent += payload.Length)
        await cssl.WriteAsync(payload.AsMemory(0, (int)Math.Min(payload.Length, total - sent)));
    await cssl.ReadExactlyAsync(new byte[1]);
    sw.Stop();
    await sink;
    return total / 1048576.0 / sw.Elapsed.TotalSeconds;
}

async Task<double> Http3Response()
{
    var transport = new QuicServerOptions
    {
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        CertificateChainPem = cert.CertificatePem, PrivateKeyPem = cert.PrivateKeyPem,
    };
    await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = transport, Tokens = ["bench"] });
    var serving = Task.Run(async () =>
    {
        await foreach (var req in server.AcceptRequestsAsync())
        {
            using (req)
            {
                var body = new BodyStream(payload, total);
                await req.RespondAsync(200, null, QuicSendBody.FromStream(body, total));
            }
        }
    });
    await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
    {
        Transport = new QuicClientOptions { TrustedRootPems = { root.CertificatePem } }, Token = "bench", ServerName = "localhost",
    });
    var sw = Stopwatch.StartNew();
    using var resp = await client.RequestAsync("/blob");
    var buf = new byte[1 << 20];
    long got = 0;
    int n;
    while ((n = await resp.Body.ReadAsync(buf)) > 0) got += n;
    sw.Stop();
    if (got != total) throw new Exception("short response");
    return total / 1048576.0 / sw.Elapsed.TotalSeconds;
}

async Task<double> Http2Kestrel()
{
    using var x509 = X509Certificate2.CreateFromPem(cert.CertificatePem, cert.PrivateKeyPem);
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
        for (long sent = 0; sent < total; sent += payload.Length)
            await ctx.Response.Body.WriteAsync(payload.AsMemory(0, (int)Math.Min(payload.Length, total - sent)));
    });
    await app.StartAsync();
    var url = app.Urls.First();
    using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } };
    using var http = new HttpClient(handler) { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
    var sw = Stopwatch.StartNew();
    using var resp = await http.GetAsync(url + "/blob", HttpCompletionOption.ResponseHeadersRead);
    await using var body = await resp.Content.ReadAsStreamAsync();
    var buf = new byte[1 << 20];
    long got = 0;
    int n;
    while ((n = await body.ReadAsync(buf)) > 0) got += n;
    sw.Stop();
    await app.StopAsync();
    if (got != total) throw new Exception("short response");
    return total / 1048576.0 / sw.Elapsed.TotalSeconds;
}

// Through QuicSend.Testing.PathEmulator: 20 ms each way (40 ms RTT), 1% random loss each way, a
// 100 MiB/s bottleneck each way with a one-BDP drop-tail queue. The sink stops after LossyDeadline
// (a loss-based controller may need minutes for the whole amount) and the row is what arrived by then.
const long LossyLinkRate = 100L << 20;
var LossyDeadline = TimeSpan.FromSeconds(8);
async Task<double> QuicLossy(CongestionControl cc)
{
    using var server = QuicEndpoint.Listen(new QuicServerOptions
    {
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        CertificateChainPem = cert.CertificatePem, PrivateKeyPem = cert.PrivateKeyPem,
        CongestionControl = cc,
    });
    using var path = new PathEmulator(server.LocalEndPoint,
        PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(20), 0.01, LossyLinkRate, seed: 7));
    using var client = QuicEndpoint.CreateClient(new QuicClientOptions
    {
        TrustedRootPems = { root.CertificatePem }, CongestionControl = cc,
        LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
    });
    var sw = new Stopwatch();
    var sink = Task.Run(async () =>
    {
        var c = await server.AcceptAsync();
        var s = await c.AcceptStreamAsync();
        var buf = new byte[1 << 20];
        long got = 0;
        int n;
        using var stop = new CancellationTokenSource(LossyDeadline);
        try
        {
            while (got < total && (n = await s.ReadAsync(buf, stop.Token)) > 0) got += n;
        }
        catch (OperationCanceledException) { }
        return (got, sw.Elapsed);
    });
    var conn = await client.ConnectAsync(path.ClientEndPoint, "localhost");
    sw.Start();
    var stream = await conn.OpenStreamAsync();
    var writing = Task.Run(async () =>
    {
        try
        {
            for (long sent = 0; sent < total; sent += payload.Length)
                await stream.WriteAsync(payload.AsMemory(0, (int)Math.Min(payload.Length, total - sent)));
            stream.CompleteWrites();
        }
        catch (Exception e) when (e is QuicSend.QuicException or ObjectDisposedException or OperationCanceledException) { }
    });
    var (got, elapsed) = await sink;
    var stats = conn.GetStats();
    var p = path.ClientToServer;
    Console.WriteLine($"    {cc}: {got / 1048576.0:0.0} MiB in {elapsed.TotalSeconds:0.00} s; rtt {stats.RoundTripTime.TotalMilliseconds:0.0} ms, " +
        $"lost {stats.LostPackets}/{stats.SentPackets}, emulator c→s: forwarded {p.Forwarded}, lost {p.DroppedByLoss}, queue drops {p.DroppedByQueue}");
    await conn.CloseAsync(0, "done");
    client.Dispose();
    server.Dispose();
    try { await writing; } catch { }
    return got / 1048576.0 / elapsed.TotalSeconds;
}

Console.WriteLine($"Bulk transfer, {mib} MiB, one connection, loopback, best of 3:");
await Run("QuicSend (BBR, GSO/GRO)", () => Quic(CongestionControl.Bbr2, true), "this library");
await Run("QuicSend (CUBIC, GSO/GRO)", () => Quic(CongestionControl.Cubic, true), "this library");
await Run("QuicSend (BBR, portable I/O)", () => Quic(CongestionControl.Bbr2, false), "this library, no batching");
await Run("QuicSend HTTP/3 response", Http3Response, "this library, QuicSendServer/Client");
await Run("SslStream over TCP", Tls, "baseline, measured now");
await Run("HttpClient/Kestrel HTTP/2", Http2Kestrel, "baseline, measured now");
await Run("QuicSend over 40 ms RTT, 1% loss (BBR)", () => QuicLossy(CongestionControl.Bbr2),
    $"PathEmulator: 100 MiB/s link, 1% loss each way, stops after {LossyDeadline.TotalSeconds:0} s; SslStream/TCP cannot run through this UDP relay");
await Run("QuicSend over 40 ms RTT, 1% loss (CUBIC)", () => QuicLossy(CongestionControl.Cubic),
    $"PathEmulator: 100 MiB/s link, 1% loss each way, stops after {LossyDeadline.TotalSeconds:0} s; SslStream/TCP cannot run through this UDP relay");

Console.WriteLine();
Console.WriteLine($"| {"transport",-42} | {"MiB/s",7} | note |");
Console.WriteLine($"|{new string('-', 44)}|{new string('-', 9)}|------|");
foreach (var r in rows) Console.WriteLine($"| {r.Name,-42} | {r.MiBs,7:0.#} | {r.Note} |");
// Recorded on the reference machine (2 cores, loopback, 512 MiB, one connection); see README.
Console.WriteLine($"| {"pure-Rust quinn (recorded)",-42} | {830,7} | reference figure, not run here |");
Console.WriteLine($"| {"HttpClient/Kestrel HTTP/2 (rec.)",-42} | {410,7} | reference figure |");
Console.WriteLine($"| {"SslStream over TCP (recorded)",-42} | {990,7} | reference figure |");

/// <summary>Serves `total` bytes by repeating a buffer: a large body without a large allocation.</summary>
sealed class BodyStream(byte[] chunk, long total) : Stream
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
