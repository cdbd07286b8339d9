using System.Diagnostics;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Drain-then-close shutdown of a QuicSendServer: GOAWAY first, responses already under way
/// finish, requests after the GOAWAY are refused (RFC 9114 §5.2), then every connection closes
/// with H3_NO_ERROR; a client that never finishes is cut at the deadline.
/// </summary>
[TestFixture]
[NonParallelizable]
public class GracefulShutdownTests
{
    private const int BigLength = 64 << 20;
    private const long H3RequestRejected = 0x10b;

    private static readonly byte[] Big = Echo.RandomBytes(BigLength, 64);

    /// <summary>Answers /big with 64 MiB streamed from memory and anything else with its path; /hold waits for <paramref name="hold"/>.</summary>
    private static Task ServeAsync(QuicSendServer server, Task hold, CancellationToken ct) => Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
            {
                _ = Task.Run(async () =>
                {
                    try
                    {
                        using (req)
                        {
                            await req.ReadBodyAsync(cancellationToken: ct);
                            if (req.Path == "/hold") await hold.WaitAsync(ct);
                            var body = req.Path == "/big"
                                ? QuicSendBody.FromStream(new MemoryStream(Big, writable: false), BigLength)
                                : QuicSendBody.FromText(req.Path);
                            await req.RespondAsync(200, null, body, cancellationToken: ct);
                        }
                    }
                    catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException) { }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) { }
    }, CancellationToken.None);

    /// <summary>Reads a response body to its end: its SHA-256 and length.</summary>
    private static async Task<(byte[] Hash, long Length)> HashBodyAsync(QuicSendResponse resp, long pauseAfter, TaskCompletionSource paused, Task resume, CancellationToken ct)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[256 * 1024];
        long total = 0;
        int n;
        while ((n = await resp.Body.ReadAsync(buf, ct)) > 0)
        {
            sha.AppendData(buf, 0, n);
            total += n;
            if (total >= pauseAfter && !paused.Task.IsCompleted)
            {
                paused.TrySetResult();
                await resume.WaitAsync(ct);
            }
        }
        return (sha.GetHashAndReset(), total);
    }

    private static async Task<(byte[] Hash, long Length)> DownloadAcrossAsync(Func<QuicSendServer, Task> shutdown)
    {
        var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var serving = ServeAsync(server, Task.CompletedTask, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        var resp = await client.RequestAsync("/big", null, null, cts.Token);
        Assert.That(resp.Status, Is.EqualTo(200));
        // The client reads 4 MiB, then waits while the server shuts down: most of the body is still to come.
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = HashBodyAsync(resp, 4 << 20, paused, resume.Task, cts.Token);
        await paused.Task.WaitAsync(cts.Token);
        var stopping = shutdown(server);
        // The GOAWAY may need flow-control credit the unread body holds: it can arrive only once the client reads on.
        await Task.WhenAny(client.GoAwayReceived, Task.Delay(300, cts.Token));
        resume.SetResult();
        var result = await reading;
        await client.GoAwayReceived.WaitAsync(TimeSpan.FromSeconds(10));
        resp.Dispose(); // the client closes its connection once its last response is disposed: the drain is over
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        cts.Cancel();
        await serving;
        return result;
    }

    [Test]
    public async Task A64MiBDownloadInFlightCompletesAcrossShutdownAsync()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        var (hash, length) = await DownloadAcrossAsync(s => s.ShutdownAsync(TimeSpan.FromSeconds(30)));
        Assert.That(length, Is.EqualTo(BigLength), "the whole body arrived");
        Assert.That(hash, Is.EqualTo(SHA256.HashData(Big)), "byte-exact (SHA-256)");
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task A64MiBDownloadInFlightCompletesAcrossDisposeAsync()
    {
        var (hash, length) = await DownloadAcrossAsync(async s => await s.DisposeAsync());
        Assert.That(length, Is.EqualTo(BigLength), "DisposeAsync drains: the whole body arrived");
        Assert.That(hash, Is.EqualTo(SHA256.HashData(Big)), "byte-exact (SHA-256)");
    }

    [Test]
    public async Task AfterShutdownTheConnectionClosesAndNewRequestsFailClearly()
    {
        var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = ServeAsync(server, release.Task, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        var held = client.RequestAsync("/hold", null, "x", cts.Token);
        while (server.PendingRequests == 0) await Task.Delay(10, cts.Token);

        var stopping = server.ShutdownAsync(TimeSpan.FromSeconds(20), cts.Token);
        await client.GoAwayReceived.WaitAsync(TimeSpan.FromSeconds(10));
        var e = Assert.CatchAsync<QuicException>(async () => await client.RequestAsync("/after", null, "y", cts.Token),
            "a request after GOAWAY, with no other connection to take it");
        // The pool tries a new connection, which the draining server closes at once: either way the cause is named.
        Assert.That(e!.Message, Does.Contain("GOAWAY").Or.Contain("shutting down"), "the error names the cause");
        Assert.That(stopping.IsCompleted, Is.False, "the drain waits for the request in hand");

        release.SetResult();
        using (var resp = await held)
        {
            Assert.That(resp.Status, Is.EqualTo(200), "the request in hand is answered");
            Assert.That(await resp.ReadTextAsync(cts.Token), Is.EqualTo("/hold"));
        }
        // The client closes once its last response is disposed; the drain ends with it, long before its deadline.
        await stopping.WaitAsync(TimeSpan.FromSeconds(15));
        var conn = client.Pool.Members[0].Connecting.Result;
        Assert.That(conn.Closed.IsCompleted, Is.True, "the connection is closed");
        Assert.That(client.ActiveConnections, Is.Empty);
        cts.Cancel();
        await serving;
    }

    [Test]
    public async Task AClientThatConnectsDuringTheDrainIsRefusedItsRequests()
    {
        var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = ServeAsync(server, release.Task, cts.Token);
        await using var first = await HttpTests.ConnectAsync(server);
        var held = first.RequestAsync("/hold", null, "x", cts.Token);
        while (server.PendingRequests == 0) await Task.Delay(10, cts.Token);
        var stopping = server.ShutdownAsync(TimeSpan.FromSeconds(20), cts.Token);

        // The listener is still up during the drain: a new client's connection is closed at once.
        var e = Assert.CatchAsync<QuicException>(async () =>
        {
            await using var late = await HttpTests.ConnectAsync(server);
            using var r = await late.RequestAsync("/late", null, "y", cts.Token);
        });
        Assert.That(e!.Message, Does.Contain("shutting down"), e.Message);
        Assert.That(server.PendingRequests, Is.EqualTo(1), "the late request never reached a handler");

        release.SetResult();
        using (var resp = await held) Assert.That(resp.Status, Is.EqualTo(200));
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
        cts.Cancel();
        await serving;
    }

    [Test]
    public async Task ARequestThatArrivesAfterGoAwayIsRejectedWhileTheDrainGoesOn()
    {
        await using var server = RawH3.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = ServeAsync(server, release.Task, cts.Token);
        // A hand-made client ignores the GOAWAY and sends another request anyway.
        await using var raw = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: cts.Token);
        await raw.OpenControlStreamAsync(cts.Token);
        var held = await raw.SendAsync(RawH3.Request("POST", "/hold", raw.Authority, [1]), fin: true, cts.Token);
        while (server.PendingRequests == 0) await Task.Delay(10, cts.Token);

        var stopping = server.ShutdownAsync(TimeSpan.FromSeconds(3), cts.Token);
        await Task.Delay(200, cts.Token); // the GOAWAY is out
        var late = await raw.SendAsync(RawH3.Request("POST", "/late", raw.Authority, [2]), fin: true, cts.Token);
        var e = Assert.CatchAsync<QuicException>(async () => await RawH3.ReadResponseAsync(late, cts.Token));
        Assert.That(e!.ErrorCode, Is.EqualTo(H3RequestRejected), $"RFC 9114 §5.2: a request after GOAWAY is rejected, not served: {e.Message}");

        release.SetResult();
        var answer = await RawH3.ReadResponseAsync(held, cts.Token);
        Assert.That(answer.Status, Is.EqualTo(200), "the request in hand is still answered");
        await stopping.WaitAsync(TimeSpan.FromSeconds(20)); // this client never closes: the deadline ends the drain
        var closed = await raw.ClosedAsync(TimeSpan.FromSeconds(10));
        Assert.That(closed.ErrorCode, Is.EqualTo((long)Http3Errors.NoError), $"the server closed with H3_NO_ERROR: {closed.Message}");
        cts.Cancel();
        await serving;
    }

    [Test]
    public async Task ShutdownHonoursItsDeadlineWhenAClientNeverFinishes()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = ServeAsync(server, Task.CompletedTask, cts.Token);
        await using var client = await HttpTests.ConnectAsync(server);
        // 64 MiB against a 32 MiB stream window, and the client never reads: the response cannot finish.
        using var resp = await client.RequestAsync("/big", null, null, cts.Token);

        var clock = Stopwatch.StartNew();
        await server.ShutdownAsync(TimeSpan.FromSeconds(1), cts.Token).WaitAsync(TimeSpan.FromSeconds(15));
        TestContext.Out.WriteLine($"shutdown with a 1 s deadline took {clock.Elapsed.TotalSeconds:0.00} s");
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(0.9)), "it waited for the response");
        var closed = await client.Pool.Members[0].Connecting.Result.Closed.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(closed.ErrorCode, Is.EqualTo((long)Http3Errors.NoError), closed.Message);
        Assert.CatchAsync<QuicException>(async () => await resp.Body.CopyToAsync(Stream.Null, cts.Token), "the unfinished body fails");
        cts.Cancel();
        await serving;
        await client.DisposeAsync();
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }
}
