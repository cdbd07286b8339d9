using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class LifetimeTests
{
    [Test]
    public async Task DisposingEverythingLeavesNoNativeObjectAlive()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var s = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        await Echo.RoundTripAsync(s, Echo.RandomBytes(100_000, 1));
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.GreaterThanOrEqualTo(before + 4), "two endpoints and two connections should be alive");

        s.Dispose();
        client.Dispose();
        server.Dispose();
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before));

        // Disposing twice is harmless, and using a disposed endpoint says so.
        client.Dispose();
        server.Dispose();
        s.Dispose();
        Assert.ThrowsAsync<ObjectDisposedException>(async () => await client.ConnectAsync(server.LocalEndPoint, "localhost"));
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before));
    }

    [Test]
    public async Task ClosedConnectionsAreReleasedWhileTheEndpointLives()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        using var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 5; i++)
        {
            var connecting = client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
            var sc = await server.AcceptAsync(cts.Token);
            var c = await connecting;
            await c.CloseAsync(0, "done");
            await sc.Closed.WaitAsync(cts.Token);
        }
        // Closed connections drain after a few round trips; on loopback that is milliseconds.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((client.ConnectionCount > 0 || server.ConnectionCount > 0) && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.That(client.ConnectionCount, Is.EqualTo(0));
        Assert.That(server.ConnectionCount, Is.EqualTo(0));
    }
}
