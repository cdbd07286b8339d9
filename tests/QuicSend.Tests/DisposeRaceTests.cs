using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Disposing while operations are in flight: the operations fail with a clear error, nothing
/// touches freed native memory, nothing hangs, and every native object is released. Each
/// scenario runs several rounds, since a race shows only in some interleavings.
/// (Before the driver became the only caller into the engine, the first scenario read freed
/// memory: it crashed the test host under MALLOC_PERTURB_.)
/// </summary>
[TestFixture]
[NonParallelizable]
public class DisposeRaceTests
{
    private const int Rounds = 8;

    private static bool IsClearDisposalError(Exception e) =>
        e is ObjectDisposedException or OperationCanceledException
        || e is QuicException { Error: QuicError.EndpointDisposed or QuicError.ConnectionClosed or QuicError.StreamAborted };

    [Test]
    public async Task APendingReadFailsClearlyWhenItsEndpointIsDisposed()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        for (int round = 0; round < Rounds; round++)
        {
            using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
            var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
            var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost");
            var stream = await conn.OpenStreamAsync();
            await stream.WriteAsync(new byte[] { 1, 2, 3 }); // the server sees the stream but never answers
            var read = stream.ReadAsync(new byte[64 * 1024]).AsTask();
            if (round % 2 == 1) await Task.Delay(round); // sometimes the read is already parked, sometimes still queued

            client.Dispose();

            var e = Assert.CatchAsync(async () => await read.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.That(IsClearDisposalError(e!), Is.True, $"round {round}: a pending read should fail with a disposal error, not {e}");
            Assert.CatchAsync<ObjectDisposedException>(async () => await stream.ReadAsync(new byte[16]), "a read after disposal says the stream or endpoint is disposed");
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task APendingWriteFailsClearlyWhenItsEndpointIsDisposed()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        var big = new byte[32 << 20]; // far more than the flow-control window: the write waits for credit
        for (int round = 0; round < Rounds; round++)
        {
            using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
            var client = QuicEndpoint.CreateClient(TestPki.ClientOptions());
            var conn = await client.ConnectAsync(server.LocalEndPoint, "localhost");
            var stream = await conn.OpenStreamAsync();
            var write = stream.WriteAsync(big).AsTask(); // the server never reads
            await Task.Delay(round * 3);

            await client.DisposeAsync();

            var e = Assert.CatchAsync(async () => await write.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.That(IsClearDisposalError(e!), Is.True, $"round {round}: a pending write should fail with a disposal error, not {e}");
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task DisposingAServerWhileItReceivesAnUploadStopsEverythingCleanly()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        var dir = Directory.CreateTempSubdirectory("quicsend-race-");
        var source = Path.Combine(dir.FullName, "source.bin");
        var data = new byte[24 << 20];
        RandomNumberGenerator.Fill(data);
        await File.WriteAllBytesAsync(source, data);
        var target = Directory.CreateDirectory(Path.Combine(dir.FullName, "server")).FullName;
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                var server = HttpTests.StartServer();
                using var stop = new CancellationTokenSource();
                var serving = FileTransfer.ServeDirectoryAsync(server, target, stop.Token);
                await using var client = await HttpTests.ConnectAsync(server);
                var upload = client.UploadFileAsync(source, "up.bin");
                await Task.Delay(20 + round * 10); // mid-upload, at a different point each round

                // The documented shutdown: cancel the loop and dispose the server while a handler reads the body.
                stop.Cancel();
                if (round % 2 == 0) server.Dispose();
                else await server.DisposeAsync();

                await Task.WhenAny(Task.WhenAll(Swallow(serving), Swallow(upload)), Task.Delay(TimeSpan.FromSeconds(20)));
                Assert.That(upload.IsCompleted && serving.IsCompleted, Is.True, $"round {round}: the upload and the serving loop end once the server is disposed");
                if (upload.IsFaulted)
                    Assert.That(upload.Exception!.GetBaseException(), Is.InstanceOf<QuicException>().Or.InstanceOf<FileTransferException>().Or.InstanceOf<ObjectDisposedException>(),
                        $"round {round}: the client learns of the shutdown as a transfer or connection error");
                Assert.That(Directory.GetFiles(target).Where(f => f.EndsWith(".partial")), Is.Empty, $"round {round}: no partial file is left behind");
                foreach (var f in Directory.GetFiles(target))
                    Assert.That(SHA256.HashData(File.ReadAllBytes(f)), Is.EqualTo(SHA256.HashData(data)), "a kept file is whole");
                foreach (var f in Directory.GetFiles(target)) File.Delete(f);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    [Test]
    public async Task RequestsRacingTheClientsDisposalEndWithoutHanging()
    {
        var before = QuicEndpoint.LiveNativeObjects;
        using var server = HttpTests.StartServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var serving = HttpTests.ServeEchoAsync(server, cts.Token);
        for (int round = 0; round < Rounds; round++)
        {
            var client = await HttpTests.ConnectAsync(server);
            var requests = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
            {
                using var response = await client.RequestAsync("/echo", $"r{i}", QuicSendBody.FromBytes(new byte[4096]));
                return response.Status;
            })).ToArray();
            await Task.Delay(round);
            if (round % 2 == 0) client.Dispose();
            else await client.DisposeAsync();

            await Task.WhenAny(Swallow(Task.WhenAll(requests)), Task.Delay(TimeSpan.FromSeconds(20)));
            Assert.That(requests.Count(r => !r.IsCompleted), Is.Zero, $"round {round}: every request ends (answered or failed) once the client is disposed");
            foreach (var r in requests)
            {
                if (r.IsFaulted)
                    Assert.That(IsClearDisposalError(r.Exception!.GetBaseException()), Is.True, $"round {round}: {r.Exception!.GetBaseException()}");
                else
                    Assert.That(r.Result, Is.EqualTo(200));
            }
        }
        cts.Cancel();
        server.Dispose();
        Assert.That(QuicEndpoint.LiveNativeObjects, Is.EqualTo(before), "every native object is released");
    }

    private static async Task Swallow(Task t)
    {
        try { await t; } catch (Exception) { /* judged by the assertions that follow */ }
    }
}
