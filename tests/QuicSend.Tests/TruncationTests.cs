using System.Security.Cryptography;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// A response body cut short must never read as complete: whichever side goes away mid-body (the client disposed,
/// the server disposed), the reader gets an exception, not an early end of stream.
/// </summary>
[TestFixture]
[NonParallelizable]
public class TruncationTests
{
    private static async Task<(QuicSendServer Server, Task Loop, CancellationTokenSource Stop)> StartEchoAsync()
    {
        var server = HttpTests.StartServer();
        var stop = new CancellationTokenSource();
        var loop = Task.Run(async () =>
        {
            try
            {
                await foreach (var req in server.AcceptRequestsAsync(stop.Token))
                    _ = Task.Run(async () =>
                    {
                        using (req)
                        {
                            try
                            {
                                await req.RespondStreamingAsync(200, null, async output =>
                                {
                                    await req.Body.CopyToAsync(output, 64 << 10, stop.Token);
                                    return [];
                                }, stop.Token, req.ContentLength);
                            }
                            catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException) { }
                        }
                    });
            }
            catch (OperationCanceledException) { }
        });
        await Task.Yield();
        return (server, loop, stop);
    }

    /// <summary>Reads the body until it ends or fails; returns the bytes read and the failure, if any.</summary>
    private static async Task<(long Read, Exception? Failure)> ReadAllAsync(Stream body, Func<long, Task> atHalf, long half)
    {
        var buf = new byte[64 << 10];
        long read = 0;
        bool halfDone = false;
        try
        {
            int n;
            while ((n = await body.ReadAsync(buf)) > 0)
            {
                read += n;
                if (!halfDone && read >= half) { halfDone = true; await atHalf(read); }
            }
            return (read, null);
        }
        catch (Exception e)
        {
            return (read, e);
        }
    }

    [Test]
    public async Task AResponseBodyCutByTheClientsDisposalFailsInsteadOfEndingEarly()
    {
        var (server, loop, stop) = await StartEchoAsync();
        var client = await HttpTests.ConnectAsync(server);
        var body = RandomNumberGenerator.GetBytes(24 << 20);
        using var r = await client.RequestAsync("/echo", null, QuicSendBody.FromBytes(body));
        var (read, failure) = await ReadAllAsync(r.Body, _ => client.DisposeAsync().AsTask(), 4 << 20);
        TestContext.Out.WriteLine($"read {read} of {body.Length}: {failure?.GetType().Name} {failure?.Message}");
        Assert.That(read == body.Length || failure is not null, Is.True, $"the body ended after {read} of {body.Length} bytes without an error");
        stop.Cancel();
        await server.DisposeAsync();
        await loop;
    }

    [Test]
    public async Task AResponseBodyCutByTheServersDisposalFailsInsteadOfEndingEarly()
    {
        var (server, loop, stop) = await StartEchoAsync();
        await using var client = await HttpTests.ConnectAsync(server);
        var body = RandomNumberGenerator.GetBytes(24 << 20);
        using var r = await client.RequestAsync("/echo", null, QuicSendBody.FromBytes(body));
        var (read, failure) = await ReadAllAsync(r.Body, async _ => { stop.Cancel(); await server.DisposeAsync(); }, 4 << 20);
        TestContext.Out.WriteLine($"read {read} of {body.Length}: {failure?.GetType().Name} {failure?.Message}");
        Assert.That(read == body.Length || failure is not null, Is.True, $"the body ended after {read} of {body.Length} bytes without an error");
        await loop;
    }

    [Test]
    public async Task ABodyThatEndsBeforeItsContentLengthIsAnErrorNotACompleteBody()
    {
        // The server promises 1 MiB and ends its answer after 10 bytes, as a reset reported as an end would look.
        await using var server = HttpTests.StartServer();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Task.Run(async () =>
        {
            await foreach (var req in server.AcceptRequestsAsync(stop.Token))
                using (req)
                    await req.RespondStreamingAsync(200, null, async output =>
                    {
                        await output.WriteAsync(new byte[10]);
                        return [];
                    }, stop.Token, contentLength: 1 << 20);
        });
        await using var client = await HttpTests.ConnectAsync(server);
        using (var r = await client.RequestAsync("/short"))
        {
            var e = Assert.CatchAsync<InvalidDataException>(async () => await r.Body.CopyToAsync(Stream.Null));
            Assert.That(e!.Message, Does.Contain("shorter than its content-length").And.Contain("1048576"));
        }
        using (var r = await client.RequestAsync("/short"))
        {
            var e = Assert.CatchAsync<InvalidDataException>(async () => await r.ReadBodyAsync());
            Assert.That(e!.Message, Does.Contain("shorter than its content-length"));
        }
        stop.Cancel();
        try { await serving; } catch (OperationCanceledException) { }
    }

    /// <summary>A server's content-length that is not a number of bytes (here "-5") makes its response malformed: the client
    /// refuses it with a clear error (reading its body threw ArgumentOutOfRangeException out of ReadBodyAsync).</summary>
    [TestCase("-5")]
    [TestCase("+10")]
    [TestCase("ten")]
    public async Task AResponseWhoseContentLengthIsNotANumberOfBytesIsRefusedNamingWhy(string declared)
    {
        await using var server = HttpTests.StartServer();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var loop = Task.Run(async () =>
        {
            try
            {
                await foreach (var req in server.AcceptRequestsAsync(stop.Token))
                    using (req)
                        await req.RespondStreamingAsync(200, null, async output =>
                        {
                            await output.WriteAsync(new byte[10], stop.Token);
                            return [];
                        }, stop.Token, extraHeaders: [new("content-length", declared)]);
            }
            catch (Exception e) when (e is OperationCanceledException or QuicException) { }
        });
        await using var client = await HttpTests.ConnectAsync(server);
        var e = Assert.CatchAsync<QuicException>(async () =>
        {
            using var r = await client.RequestAsync("/bad-length", null, null, stop.Token);
            await r.ReadBodyAsync(cancellationToken: stop.Token);
        });
        Assert.That(e!.ErrorCode, Is.EqualTo(0x10e), e.Message);
        Assert.That(e.Message, Does.Contain("malformed").And.Contain("content-length that is not a number of bytes"));
        stop.Cancel();
        await loop;
    }
}
