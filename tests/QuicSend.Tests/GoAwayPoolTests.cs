using System.Collections.Concurrent;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// GOAWAY while requests are active on a pooled client (Connections = 3): the requests in flight
/// finish on their connection, new ones go to the connections that are still open, and once every
/// connection has had a GOAWAY a new request fails with an error that names it.
/// </summary>
[TestFixture]
[NonParallelizable]
public class GoAwayPoolTests
{
    [Test]
    public async Task InFlightRequestsFinishAndNewOnesGoToAnotherOrANewConnection()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var server = HttpTests.StartServer();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new ConcurrentDictionary<string, long>(); // path -> server connection id
        var serving = Task.Run(async () =>
        {
            try
            {
                await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                {
                    seen[req.Path] = req.ConnectionId;
                    _ = Task.Run(async () =>
                    {
                        using (req)
                        {
                            var body = await req.ReadBodyAsync(cancellationToken: cts.Token);
                            if (req.Path.StartsWith("/held/", StringComparison.Ordinal)) await gate.Task.WaitAsync(cts.Token);
                            await req.RespondAsync(200, req.Path, QuicSendBody.FromBytes(body), cancellationToken: cts.Token);
                        }
                    }, CancellationToken.None);
                }
            }
            catch (OperationCanceledException) { }
        }, CancellationToken.None);

        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        o.ConnectTimeout = TimeSpan.FromSeconds(2);
        var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint,
            new QuicSendClientOptions { Transport = o, Token = HttpTests.Token, ServerName = "localhost", Connections = 3 });
        while (client.ActiveConnections.Count < 3) await Task.Delay(10, cts.Token);

        // Six requests the server holds: two per connection (the pool picks the least loaded).
        var held = Enumerable.Range(0, 6).Select(i => client.RequestAsync($"/held/{i}", null, QuicSendBody.FromBytes(Echo.RandomBytes(1000, i)), cts.Token)).ToArray();
        while (seen.Count < 6) await Task.Delay(10, cts.Token);
        long leaving = seen["/held/0"];
        Assert.That(seen.Values.Distinct().Count(), Is.EqualTo(3), "the held requests are spread over the three connections");
        server.GoAway(leaving);
        while (client.ActiveConnections.Count > 2) await Task.Delay(10, cts.Token);

        // New requests while the held ones are still in flight: none goes to the connection that is going away.
        for (int i = 0; i < 10; i++)
        {
            using var r = await client.RequestAsync($"/after/{i}", null, QuicSendBody.FromText("x"), cts.Token);
            Assert.That(r.Status, Is.EqualTo(200));
            Assert.That(seen[$"/after/{i}"], Is.Not.EqualTo(leaving), $"request {i} after the GOAWAY went to another connection");
        }
        Assert.That(held.Any(h => h.IsCompleted), Is.False, "the held requests are still in flight: " +
            string.Join("; ", held.Where(h => h.IsCompleted).Select(h => h.IsFaulted ? h.Exception!.InnerException!.Message : h.Status.ToString())));
        gate.SetResult();
        for (int i = 0; i < held.Length; i++)
        {
            using var r = await held[i].WaitAsync(TimeSpan.FromSeconds(20));
            Assert.That(r.Status, Is.EqualTo(200), $"held request {i} finished, including the two on the connection that got GOAWAY");
            Assert.That(r.HeaderInfo, Is.EqualTo($"/held/{i}"));
            Assert.That(await r.ReadBodyAsync(cancellationToken: cts.Token), Is.EqualTo(Echo.RandomBytes(1000, i)));
        }

        // GOAWAY on the others too: the client closes them (nothing is in flight) and the pool replaces them, so once it
        // is whole again a new request goes to a new connection.
        // GOAWAY on every connection the client has now (the pool replaced the first one it closed). The server's ids of
        // them come from a request on each: its own list may not have the newest yet (the client's side of a handshake
        // ends first), and a connection missed here would only be replaced after its idle timeout (30 s, 1 run in 8).
        var members = client.Pool.Usable();
        var old = members.Select(m => m.Connecting.Result).ToHashSet();
        var away = new HashSet<long>();
        for (int i = 0; i < members.Count; i++)
        {
            using var r = await client.SendAsync("POST", $"/whoami/{i}", null, QuicSendBody.FromText("w"), null, 1000 + i, cts.Token, null, members[i]);
            Assert.That(r.Status, Is.EqualTo(200));
            away.Add(seen[$"/whoami/{i}"]);
        }
        Assert.That(away, Has.Count.EqualTo(members.Count), "one server connection per client connection");
        foreach (var id in away) server.GoAway(id);
        while (client.ActiveConnections.Count < 3 || client.ActiveConnections.Any(old.Contains)) await Task.Delay(20, cts.Token);
        using (var r = await client.RequestAsync("/later", null, QuicSendBody.FromText("y"), cts.Token))
        {
            Assert.That(r.Status, Is.EqualTo(200));
            Assert.That(away, Does.Not.Contain(seen["/later"]), "the request after GOAWAY everywhere went to a connection made for it");
        }

        // A server shutting down refuses new connections: a request fails within the connect timeout and says why.
        var shutdown = server.ShutdownAsync(TimeSpan.FromSeconds(5));
        var e = Assert.CatchAsync<QuicException>(async () => await client.RequestAsync("/nowhere", null, null, cts.Token));
        Assert.That(e!.Message, Does.Contain("shutting down").Or.Contain("GOAWAY"), e.Message);
        await client.DisposeAsync();
        await shutdown;
        cts.Cancel();
        await serving;
        await server.DisposeAsync();
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }
}
