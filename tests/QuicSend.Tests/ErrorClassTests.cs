using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// One test per class of failure a user of the HTTP API meets after connecting: the exception's type and kind, and a
/// message that names the cause (and, where there is one, the fix). Failures before or during the handshake, of
/// configuration and of the native library are in ErrorTests and SecurityTests; disk-full and per-client limits in
/// DiskFullTests and TransferLimitTests; a peer that stops answering in ResumeTests.
/// </summary>
[TestFixture]
[NonParallelizable]
public class ErrorClassTests
{
    /// <summary>A server whose every request runs <paramref name="handle"/>.</summary>
    private static (QuicSendServer Server, CancellationTokenSource Stop, Task Loop) Serve(Func<QuicSendRequest, Task> handle)
    {
        var server = HttpTests.StartServer();
        var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var loop = Task.Run(async () =>
        {
            try
            {
                await foreach (var req in server.AcceptRequestsAsync(stop.Token))
                    _ = Task.Run(async () =>
                    {
                        using (req) await handle(req);
                    });
            }
            catch (OperationCanceledException) { }
        });
        return (server, stop, loop);
    }

    [Test]
    public async Task AConnectionClosedByTheServerNamesItsCodeAndReason()
    {
        var (server, stop, loop) = Serve(req => req.Connection.CloseAsync(42, "down for maintenance").AsTask());
        await using var client = await HttpTests.ConnectAsync(server);
        var e = Assert.CatchAsync<QuicException>(async () =>
        {
            using var r = await client.RequestAsync("/x", null, "hello");
            await r.ReadBodyAsync();
        });
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.Error, Is.EqualTo(QuicError.ConnectionClosed));
        Assert.That(e.ErrorCode, Is.EqualTo(42));
        Assert.That(e.Message, Does.Contain("closed by the peer").And.Contain("42").And.Contain("down for maintenance"));
        stop.Cancel();
        await server.DisposeAsync();
        await loop;
    }

    [Test]
    public async Task AResponseResetByTheServerSaysSoWithItsCode()
    {
        var (server, stop, loop) = Serve(async req =>
        {
            await req.RespondStreamingAsync(200, null, async output =>
            {
                await output.WriteAsync(new byte[1000]);
                await output.FlushAsync();
                ((Transport.QuicStream)output).Abort(0x10c);
                return [];
            });
        });
        await using var client = await HttpTests.ConnectAsync(server);
        using var r = await client.RequestAsync("/x");
        var e = Assert.CatchAsync<QuicException>(async () => await r.Body.CopyToAsync(Stream.Null));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.Error, Is.EqualTo(QuicError.StreamAborted));
        Assert.That(e.ErrorCode, Is.EqualTo(0x10c));
        Assert.That(e.Message, Does.Contain("reset stream").And.Contain(0x10c.ToString()));
        stop.Cancel();
        await server.DisposeAsync();
        await loop;
    }

    [Test]
    public async Task ARequestOnADisposedClientIsAnObjectDisposedExceptionNamingTheClient()
    {
        var (server, stop, loop) = Serve(req => req.RespondAsync(200, null, "ok").AsTask());
        var client = await HttpTests.ConnectAsync(server);
        await client.DisposeAsync();
        var e = Assert.CatchAsync<ObjectDisposedException>(async () => await client.RequestAsync("/x"));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.ObjectName + e.Message, Does.Contain("QuicSendClient"));
        stop.Cancel();
        await server.DisposeAsync();
        await loop;
    }

    [Test]
    public async Task AWrongTokenIsA401ThatSaysTheTokenWasRefused()
    {
        await using var server = HttpTests.StartServer();
        var dir = Directory.CreateTempSubdirectory("quicsend-errors-");
        try
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var serving = FileTransfer.ServeDirectoryAsync(server, dir.FullName, stop.Token);
            await using (var stranger = await HttpTests.ConnectAsync(server, token: "not-the-token"))
            {
                var e = Assert.CatchAsync<FileTransferException>(() => stranger.DownloadFileAsync("any.bin", Path.Combine(dir.FullName, "out.bin")));
                TestContext.Out.WriteLine(e!.Message);
                Assert.That(e.StatusCode, Is.EqualTo(401));
                Assert.That(e.Message, Does.Contain("401").And.Contain("token"));
            }
            await using (var client = await HttpTests.ConnectAsync(server))
            {
                var e = Assert.CatchAsync<FileTransferException>(() => client.DownloadFileAsync("missing.bin", Path.Combine(dir.FullName, "out.bin")));
                TestContext.Out.WriteLine(e!.Message);
                Assert.That(e.StatusCode, Is.EqualTo(404));
                Assert.That(e.Message, Does.Contain("missing.bin"));
            }
            stop.Cancel();
            try { await serving; } catch (OperationCanceledException) { }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Test]
    public async Task AHeaderValueWithALineBreakCannotBeSentAndTheErrorNamesTheHeader()
    {
        // An application that puts a peer's text into quicsend-header-info: a CR LF in it would pose as another field.
        Exception? refused = null;
        var (server, stop, loop) = Serve(async req =>
        {
            try
            {
                await req.RespondAsync(200, "ok\r\nx-admin: yes", QuicSendBody.FromText("body"));
            }
            catch (ArgumentException e)
            {
                refused = e;
                await req.RespondAsync(500, null, QuicSendBody.FromText("refused"));
            }
        });
        await using var client = await HttpTests.ConnectAsync(server);
        using (var r = await client.RequestAsync("/x", null, "hello"))
            Assert.That(r.Status, Is.EqualTo(500), "the bad answer never left; the handler's second one did");
        TestContext.Out.WriteLine(refused?.Message);
        Assert.That(refused, Is.Not.Null);
        Assert.That(refused!.Message, Does.Contain("'quicsend-header-info'").And.Contain("NUL, CR or LF"));
        stop.Cancel();
        await server.DisposeAsync();
        await loop;
    }
}
