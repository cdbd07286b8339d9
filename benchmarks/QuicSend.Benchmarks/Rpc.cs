#if !QUINN_PROTO_ENGINE
// Small RPCs: a 1 KiB request answered by a 1 KiB response, K requests in flight at once on one
// connection, for a fixed time; requests per second and latency percentiles. QuicSendServer /
// QuicSendClient beside HttpClient / Kestrel over HTTP/2 with TLS, in the same run.
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Transport;

/// <summary>One timed run of RPCs: rate, latency percentiles (ms) and CPU per request (µs, both ends).</summary>
record RpcSample(double PerSecond, double P50Ms, double P99Ms, double CpuUsPerRequest);

sealed class RpcBench
{
    public const int Size = 1024;
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(0.5);

    private readonly PemCertificate _root = CertificateTool.CreateRootCa("Bench Root");
    private readonly PemCertificate _cert;
    private readonly byte[] _payload = new byte[Size];

    public RpcBench()
    {
        _cert = CertificateTool.IssueServer(_root, ["localhost"], [IPAddress.Loopback]);
        Random.Shared.NextBytes(_payload);
    }

    /// <summary>
    /// Runs <paramref name="inFlight"/> loops, each sending a request as soon as its previous answer
    /// arrived, for a warm-up then <see cref="Duration"/>; latencies are those of the timed part.
    /// </summary>
    private static async Task<RpcSample> Measure(int inFlight, Func<Task> call)
    {
        var latencies = new List<long>[inFlight];
        var stopAt = Stopwatch.GetTimestamp() + (long)((Warmup + Duration).TotalSeconds * Stopwatch.Frequency);
        var timedFrom = Stopwatch.GetTimestamp() + (long)(Warmup.TotalSeconds * Stopwatch.Frequency);
        TimeSpan cpuAtStart = default;
        int cpuTaken = 0;
        var loops = Enumerable.Range(0, inFlight).Select(i => Task.Run(async () =>
        {
            var mine = latencies[i] = new List<long>(4096);
            while (true)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (t0 >= stopAt) break;
                if (t0 >= timedFrom && Interlocked.Exchange(ref cpuTaken, 1) == 0) cpuAtStart = Environment.CpuUsage.TotalTime;
                await call();
                if (t0 >= timedFrom) mine.Add(Stopwatch.GetTimestamp() - t0);
            }
        })).ToArray();
        await Task.WhenAll(loops);
        var cpu = (Environment.CpuUsage.TotalTime - cpuAtStart).TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        if (all.Length == 0) throw new Exception("no request completed in the timed part");
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        return new RpcSample(all.Length / Duration.TotalSeconds, Ms(all[all.Length / 2]), Ms(all[(int)(all.Length * 0.99)]),
            cpu * 1e6 / all.Length);
    }

    public async Task<RpcSample> QuicSendRpc(int inFlight, int connections = 1)
    {
        var transport = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = _cert.CertificatePem, PrivateKeyPem = _cert.PrivateKeyPem,
            MaxBidirectionalStreams = Math.Max(256, inFlight * 2),
        };
        await using var server = new QuicSendServer(new QuicSendServerOptions { Transport = transport, Tokens = ["bench"] });
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync())
                _ = Task.Run(async () =>
                {
                    using (req)
                    {
                        try
                        {
                            await req.ReadBodyAsync(Size * 2);
                            await req.RespondAsync(200, null, QuicSendBody.FromBytes(_payload));
                        }
                        catch (Exception e) when (e is QuicSend.QuicException or ObjectDisposedException or OperationCanceledException) { }
                    }
                });
        });
        await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = new QuicClientOptions { TrustedRootPems = { _root.CertificatePem } }, Token = "bench", ServerName = "localhost",
            Connections = connections,
        });
        var body = QuicSendBody.FromBytes(_payload);
        return await Measure(inFlight, async () =>
        {
            using var r = await client.RequestAsync("/rpc", null, body);
            var got = await r.ReadBodyAsync(Size * 2);
            if (r.Status != 200 || got.Length != Size) throw new Exception($"bad answer {r.Status}, {got.Length} bytes");
        });
    }

    public async Task<RpcSample> Http2Kestrel(int inFlight)
    {
        using var x509 = X509Certificate2.CreateFromPem(_cert.CertificatePem, _cert.PrivateKeyPem);
        using var serverCert = X509CertificateLoader.LoadPkcs12(x509.Export(X509ContentType.Pfx), null);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.Http2.MaxStreamsPerConnection = Math.Max(100, inFlight * 2);
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                l.UseHttps(serverCert);
            });
        });
        await using var app = builder.Build();
        app.MapPost("/rpc", async (HttpContext ctx) =>
        {
            var buf = new byte[Size * 2];
            int got = 0, n;
            while ((n = await ctx.Request.Body.ReadAsync(buf.AsMemory(got))) > 0) got += n;
            ctx.Response.ContentLength = Size;
            await ctx.Response.Body.WriteAsync(_payload);
        });
        await app.StartAsync();
        using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } };
        using var http = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var url = app.Urls.First() + "/rpc";
        var sample = await Measure(inFlight, async () =>
        {
            using var content = new ByteArrayContent(_payload);
            using var r = await http.PostAsync(url, content);
            var got = await r.Content.ReadAsByteArrayAsync();
            if (r.StatusCode != HttpStatusCode.OK || got.Length != Size) throw new Exception($"bad answer {r.StatusCode}, {got.Length} bytes");
        });
        await app.StopAsync();
        return sample;
    }
}
#endif
