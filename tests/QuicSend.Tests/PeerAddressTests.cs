using System.Net;
using QuicSend.Transport;

namespace QuicSend.Tests;

[TestFixture]
[NonParallelizable]
public class PeerAddressTests
{
    [Test]
    public async Task AServerSeesEachClientsAddress()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        var clientOptions = TestPki.ClientOptions();
        clientOptions.LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var accepting = server.AcceptAsync(cts.Token).AsTask();
        var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost", cts.Token);
        var accepted = await accepting;
        Assert.That(conn.RemoteEndPoint, Is.EqualTo(server.LocalEndPoint), "the client knows where it connected");
        Assert.That(accepted.RemoteEndPoint, Is.EqualTo(client.LocalEndPoint), "the server knows where the client's datagrams come from");
        await conn.CloseAsync(0, "done");
    }
}
