using System.Security.Cryptography;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>Helpers that move bytes: a server that echoes every stream, and a client that sends and hashes.</summary>
internal static class Echo
{
    /// <summary>Accepts connections and echoes each stream back until the endpoint is disposed.</summary>
    public static async Task ServeAsync(QuicEndpoint server, CancellationToken ct)
    {
        var tasks = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var conn = await server.AcceptAsync(ct);
                tasks.Add(Task.Run(async () =>
                {
                    try
                    {
                        while (true)
                        {
                            var s = await conn.AcceptStreamAsync(ct);
                            tasks.Add(Task.Run(() => EchoStreamAsync(s, ct), ct));
                        }
                    }
                    catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException) { }
                }, ct));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
    }

    private static async Task EchoStreamAsync(QuicStream s, CancellationToken ct)
    {
        var buf = new byte[256 * 1024];
        try
        {
            int n;
            while ((n = await s.ReadAsync(buf, ct)) > 0) await s.WriteAsync(buf.AsMemory(0, n), ct);
            s.CompleteWrites();
        }
        catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException) { }
    }

    /// <summary>Sends <paramref name="data"/> on the stream while reading the echo; returns the SHA-256 of what came back.</summary>
    public static async Task<(byte[] Hash, long Bytes)> RoundTripAsync(QuicStream s, ReadOnlyMemory<byte> data, int chunk = 1 << 20)
    {
        var send = Task.Run(async () =>
        {
            for (int off = 0; off < data.Length; off += chunk)
                await s.WriteAsync(data.Slice(off, Math.Min(chunk, data.Length - off)));
            s.CompleteWrites();
        });
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[256 * 1024];
        long total = 0;
        int n;
        while ((n = await s.ReadAsync(buf)) > 0)
        {
            sha.AppendData(buf, 0, n);
            total += n;
        }
        await send;
        return (sha.GetHashAndReset(), total);
    }

    public static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}
