using System.Collections.Concurrent;

namespace QuicSend.Http;

/// <summary>
/// Counts the file requests in progress per connection and per token, so that one authenticated
/// client cannot hold an unbounded number of open files and buffers (each download pins a file
/// descriptor and up to 2 MiB while its reader dawdles). A request beyond a cap is refused (429).
/// </summary>
internal sealed class FileTransferLimits(int perConnection, int perToken)
{
    private readonly ConcurrentDictionary<long, int> _byConnection = new();
    private readonly ConcurrentDictionary<string, int> _byToken = new(StringComparer.Ordinal);

    public int PerConnection { get; } = perConnection;
    public int PerToken { get; } = perToken;

    /// <summary>File requests in progress on all connections (for tests and monitoring).</summary>
    public int InProgress => _byConnection.Values.Sum();

    /// <summary>Takes a slot for a request, or returns null with the reason in <paramref name="refusal"/> (for the 429's text).</summary>
    public Lease? TryEnter(long connection, string token, out string refusal)
    {
        refusal = "";
        if (!TryIncrement(_byConnection, connection, PerConnection))
        {
            refusal = $"this connection already has {PerConnection} file transfers in progress, the server's limit per connection " +
                      "(QuicSendServerOptions.FileTransfers.MaxTransfersPerConnection). Wait for one to finish, or spread transfers over more connections";
            return null;
        }
        if (!TryIncrement(_byToken, token, PerToken))
        {
            Decrement(_byConnection, connection);
            refusal = $"this token already has {PerToken} file transfers in progress over all its connections, the server's limit per token " +
                      "(QuicSendServerOptions.FileTransfers.MaxTransfersPerToken). Wait for one to finish";
            return null;
        }
        return new Lease(this, connection, token);
    }

    private static bool TryIncrement<TKey>(ConcurrentDictionary<TKey, int> counts, TKey key, int cap) where TKey : notnull
    {
        while (true)
        {
            if (!counts.TryGetValue(key, out var n))
            {
                if (counts.TryAdd(key, 1)) return true;
                continue;
            }
            if (cap > 0 && n >= cap) return false;
            if (counts.TryUpdate(key, n + 1, n)) return true;
        }
    }

    private static void Decrement<TKey>(ConcurrentDictionary<TKey, int> counts, TKey key) where TKey : notnull
    {
        while (counts.TryGetValue(key, out var n))
        {
            // The last one out removes the entry, so closed connections leave nothing behind.
            if (n <= 1 ? counts.TryRemove(new KeyValuePair<TKey, int>(key, n)) : counts.TryUpdate(key, n - 1, n)) return;
        }
    }

    /// <summary>A request's slot; disposing it (once) frees the slot.</summary>
    internal sealed class Lease(FileTransferLimits limits, long connection, string token) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            Decrement(limits._byConnection, connection);
            Decrement(limits._byToken, token);
        }
    }
}
