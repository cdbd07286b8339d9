using System.Net;
using System.Security.Cryptography;
using QuicSend.Testing;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Paths that carry smaller datagrams than the endpoints may send (a VPN or tunnel with a 1400-byte
/// MTU, say): datagrams are never fragmented, so a transfer must find the size that gets through.
/// </summary>
[TestFixture]
[NonParallelizable]
public class PathMtuTests
{
    [TestCase(1300)]
    [TestCase(1400)]
    public async Task AnEchoCrossesAPathThatDropsDatagramsOverItsMtu(int maxPayload)
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        var options = PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(2), 0);
        options.MaxDatagramSize = maxPayload; // bigger ones are dropped, as a router would for a packet over the MTU with DF set
        using var path = new PathEmulator(server.LocalEndPoint, options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);
        var clientOptions = TestPki.ClientOptions();
        clientOptions.LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        var conn = await client.ConnectAsync(path.ClientEndPoint, "localhost", cts.Token);
        var data = Echo.RandomBytes(4 << 20, seed: 31);
        var stream = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        var (hash, bytes) = await Echo.RoundTripAsync(stream, data).WaitAsync(cts.Token);
        Assert.That(bytes, Is.EqualTo(data.Length));
        Assert.That(hash, Is.EqualTo(SHA256.HashData(data)), "4 MiB echoed intact");
        var dropped = path.ClientToServer.DroppedByQueue + path.ServerToClient.DroppedByQueue;
        TestContext.Out.WriteLine($"MTU {maxPayload}: datagrams over it dropped {dropped}, sent {conn.GetStats().DatagramsSent}, mtu {conn.GetStats().Mtu}");
        Assert.That(conn.GetStats().Mtu, Is.LessThanOrEqualTo(maxPayload), "the connection settled on a size the path carries");
        cts.Cancel();
        try { await serving; } catch (OperationCanceledException) { }
    }
}
