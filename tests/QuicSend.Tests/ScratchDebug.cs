using System.Security.Cryptography;
using NUnit.Framework;
using QuicSend.Transport;
namespace QuicSend.Tests;
public class ScratchDebug
{
    [Test]
    public async Task Sixteen()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var serving = Echo.ServeAsync(server, cts.Token);
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var progress = new long[16];
        var wrote = new long[16];
        var work = Enumerable.Range(0, 16).Select(async i =>
        {
            var data = Echo.RandomBytes((2 << 20) + i * 4099, seed: 100 + i);
            var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
            var send = Task.Run(async () => { for (int off = 0; off < data.Length; off += 65536) { await s.WriteAsync(data.AsMemory(off, Math.Min(65536, data.Length - off))); wrote[i] = off; } s.CompleteWrites(); wrote[i] = -1; });
            var buf = new byte[256 * 1024]; int n;
            while ((n = await s.ReadAsync(buf)) > 0) progress[i] += n;
            await send;
        }).ToArray();
        var all = Task.WhenAll(work);
        if (await Task.WhenAny(all, Task.Delay(8000)) != all)
        {
            var st = conn.GetStats();
            Assert.Fail($"stuck: read {string.Join(",", progress)} wrote {string.Join(",", wrote)} stats {st}");
        }
    }
}
