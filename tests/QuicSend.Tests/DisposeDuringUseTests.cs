using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Servers and clients disposed while another thread is inside a poll, a request, a body read or a
/// graceful shutdown: nothing crashes or hangs, each caller gets a disposal error (or a false from
/// Poll), and every native object is released. Run under MALLOC_PERTURB_ (see the report of issue 11)
/// so that a use of freed native memory reads garbage instead of passing by luck.
/// </summary>
[TestFixture]
[NonParallelizable]
public class DisposeDuringUseTests
{
    private const int Rounds = 6;

    private static bool IsClearDisposalError(Exception e) =>
        e is ObjectDisposedException or OperationCanceledException
        || e is QuicException { Error: QuicError.EndpointDisposed or QuicError.ConnectionClosed or QuicError.StreamAborted };

    [Test]
    public async Task PollingThreadsSeeTheServerAndClientDisposedWithoutAnError()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        for (int round = 0; round < Rounds; round++)
        {
            var server = HttpTests.StartServer();
            var client = await HttpTests.ConnectAsync(server);
            client.Request("/x", null, QuicSendBody.FromText("x")); // something in flight for both polls
            Exception? serverFault = null, clientFault = null;
            var serverPoll = new Thread(() =>
            {
                try { while (server.Poll(null, null, r => r.Dispose(), 5)) { } }
                catch (Exception e) { serverFault = e; }
            });
            var clientPoll = new Thread(() =>
            {
                try { while (client.Poll(null, null, r => r.Dispose(), 5)) { } }
                catch (Exception e) { clientFault = e; }
            });
            serverPoll.Start();
            clientPoll.Start();
            await Task.Delay(10 + round * 7);
            if (round % 2 == 0) { client.Dispose(); server.Dispose(); }
            else { await client.DisposeAsync(); await server.DisposeAsync(); }
            Assert.That(serverPoll.Join(TimeSpan.FromSeconds(15)) && clientPoll.Join(TimeSpan.FromSeconds(15)), Is.True, $"round {round}: both poll loops end");
            Assert.That(serverFault is null || IsClearDisposalError(serverFault), Is.True, $"round {round}: server poll: {serverFault}");
            Assert.That(clientFault is null || IsClearDisposalError(clientFault), Is.True, $"round {round}: client poll: {clientFault}");
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task AResponseBodyReadAndAnUploadReadFailClearlyWhenTheirOwnerIsDisposed()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        for (int round = 0; round < Rounds; round++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var server = HttpTests.StartServer();
            var handlerRead = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
            var serving = Task.Run(async () =>
            {
                try
                {
                    await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                    {
                        _ = Task.Run(async () =>
                        {
                            if (req.Path == "/upload")
                            {
                                // Reads a body the client never finishes: the server is disposed under it.
                                try { await req.ReadBodyAsync(cancellationToken: cts.Token); handlerRead.TrySetResult(null); }
                                catch (Exception e) { handlerRead.TrySetResult(e); }
                                return;
                            }
                            // Starts a body and never finishes it: the client is disposed while it reads.
                            try
                            {
                                await req.RespondStreamingAsync(200, null, async s =>
                                {
                                    await s.WriteAsync(new byte[100_000], cts.Token);
                                    await Task.Delay(Timeout.Infinite, cts.Token);
                                    return [];
                                }, cts.Token);
                            }
                            catch (Exception) { }
                        });
                    }
                }
                catch (Exception) { }
            });

            // A client reading a response body; disposed by another thread.
            var reader = await HttpTests.ConnectAsync(server);
            using var resp = await reader.RequestAsync("/download", null, null, cts.Token);
            var read = Task.Run(async () => await resp.Body.CopyToAsync(Stream.Null, cts.Token));
            await Task.Delay(round * 5);
            if (round % 2 == 0) reader.Dispose(); else await reader.DisposeAsync();
            var e = Assert.CatchAsync(async () => await read.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.That(IsClearDisposalError(e!), Is.True, $"round {round}: the body read: {e}");

            // A handler reading an upload; its server disposed by another thread (at once: Dispose).
            var uploader = await HttpTests.ConnectAsync(server);
            var upload = uploader.SendAsync("PUT", "/upload", null, QuicSendBody.FromStream(new NeverEnding(), 1L << 30), null, cts.Token);
            await Task.Delay(50 + round * 5);
            server.Dispose();
            var handlerError = await handlerRead.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.That(handlerError, Is.Not.Null, $"round {round}: the handler's read ends with an error");
            Assert.That(IsClearDisposalError(handlerError!), Is.True, $"round {round}: the handler's read: {handlerError}");
            var ue = Assert.CatchAsync(async () => await upload.WaitAsync(TimeSpan.FromSeconds(35)));
            Assert.That(ue, Is.InstanceOf<QuicException>(), $"round {round}: the upload learns the server went away: {ue}");
            await uploader.DisposeAsync();
            cts.Cancel();
            await serving;
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task DisposeDuringAGracefulShutdownEndsItAtOnce()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        for (int round = 0; round < Rounds; round++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var server = HttpTests.StartServer();
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var serving = Task.Run(async () =>
            {
                try
                {
                    await foreach (var req in server.AcceptRequestsAsync(cts.Token))
                        _ = Task.Run(async () =>
                        {
                            try
                            {
                                using (req)
                                {
                                    await gate.Task.WaitAsync(cts.Token);
                                    await req.RespondAsync(200, null, QuicSendBody.FromText("late"), cancellationToken: cts.Token);
                                }
                            }
                            catch (Exception) { }
                        });
                }
                catch (Exception) { }
            });
            var client = await HttpTests.ConnectAsync(server);
            var held = client.RequestAsync("/held", null, "x", cts.Token);
            while (server.PendingRequests == 0) await Task.Delay(5, cts.Token);

            var draining = server.ShutdownAsync(TimeSpan.FromSeconds(60), cts.Token); // would wait for the held request
            await Task.Delay(round * 5);
            await Task.Run(server.Dispose);
            await draining.WaitAsync(TimeSpan.FromSeconds(10)); // ends with the disposal, without an error
            var e = Assert.CatchAsync(async () => await held.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.That(e, Is.InstanceOf<QuicException>(), $"round {round}: the held request learns the server went away: {e}");
            gate.SetResult();
            await client.DisposeAsync();
            cts.Cancel();
            await serving;
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    /// <summary>A body source that never ends.</summary>
    private sealed class NeverEnding : ReadOnlyBodyStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(buffer.Length);
    }
}
