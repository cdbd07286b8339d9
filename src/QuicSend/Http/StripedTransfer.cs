using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Threading.Channels;

namespace QuicSend.Http;

/// <summary>
/// Hands the chunks of one striped transfer to workers on every connection of a pool: each worker
/// takes the next chunk, and a chunk whose request failed (its connection died, its stream was
/// reset, its bytes did not check out) goes back for any worker to take, up to
/// <see cref="MaxAttempts"/> times. The transfer fails at the first error that retrying cannot
/// mend (a refusal, a changed source, a local disk error), or when no connection is left.
/// </summary>
internal sealed class ChunkScheduler
{
    public const int MaxAttempts = 4;

    private readonly Channel<int> _queue = Channel.CreateUnbounded<int>();
    private readonly int[] _attempts;
    private readonly CancellationTokenSource _stop;
    private int _remaining;
    private int _workers;
    private Exception? _fatal;
    private Exception? _lastFailure; // of a chunk, for the message when no connection is left

    /// <summary>Queues every chunk of <paramref name="length"/> bytes but those <paramref name="alreadyDone"/> (a resumed transfer's).</summary>
    public ChunkScheduler(long length, int chunkSize, CancellationToken cancellationToken, Func<int, bool>? alreadyDone = null)
    {
        ChunkSize = chunkSize;
        Length = length;
        Count = (int)((length + chunkSize - 1) / chunkSize);
        _attempts = new int[Count];
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        AlreadyDone = new bool[Count];
        for (int i = 0; i < Count; i++)
        {
            if (alreadyDone?.Invoke(i) == true)
            {
                AlreadyDone[i] = true;
                AlreadyDoneBytes += RangeOf(i).Count;
                continue;
            }
            _queue.Writer.TryWrite(i);
            _remaining++;
        }
        if (_remaining == 0) _queue.Writer.TryComplete();
    }

    /// <summary>The chunks an earlier attempt moved (not queued), and their bytes.</summary>
    public bool[] AlreadyDone { get; }
    public long AlreadyDoneBytes { get; }

    public long Length { get; }
    public int ChunkSize { get; }
    public int Count { get; }
    public CancellationToken Token => _stop.Token;

    public (long First, long Count) RangeOf(int chunk)
    {
        long first = (long)chunk * ChunkSize;
        return (first, Math.Min(ChunkSize, Length - first));
    }

    /// <summary>Runs <paramref name="perChunk"/> on <paramref name="workersPerConnection"/> workers per connection until every chunk is done; throws the first fatal error.</summary>
    public async Task RunAsync(IReadOnlyList<PooledConnection> connections, int workersPerConnection,
        Func<PooledConnection, int, CancellationToken, Task> perChunk, Action<int> onChunkDone)
    {
        var workers = new List<Task>();
        _workers = connections.Count * workersPerConnection;
        foreach (var c in connections)
            for (int w = 0; w < workersPerConnection; w++)
                workers.Add(Task.Run(() => WorkAsync(c, perChunk, onChunkDone)));
        await Task.WhenAll(workers).ConfigureAwait(false);
        if (_fatal is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_fatal);
        _stop.Token.ThrowIfCancellationRequested();
    }

    private async Task WorkAsync(PooledConnection connection, Func<PooledConnection, int, CancellationToken, Task> perChunk, Action<int> onChunkDone)
    {
        try
        {
            await foreach (var chunk in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (!connection.IsUsable)
                {
                    _queue.Writer.TryWrite(chunk); // for a worker whose connection still works
                    _lastFailure ??= connection.Connecting.IsCompletedSuccessfully && connection.Connecting.Result.Closed.IsCompleted
                        ? connection.Connecting.Result.Closed.Result : null;
                    return;
                }
                try
                {
                    await perChunk(connection, chunk, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (Retryable(e) && !_stop.IsCancellationRequested)
                {
                    _lastFailure = e;
                    if (++_attempts[chunk] >= MaxAttempts)
                    {
                        var (first, count) = RangeOf(chunk);
                        Fail(new FileTransferException($"Bytes {first}-{first + count - 1} failed {MaxAttempts} times, the last time: {e.Message}", 0, null, e));
                        return;
                    }
                    _queue.Writer.TryWrite(chunk);
                    if (!connection.IsUsable) return;
                    continue;
                }
                onChunkDone(chunk);
                if (Interlocked.Decrement(ref _remaining) == 0) _queue.Writer.TryComplete();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            // The last worker to leave with chunks undone: no connection is left to carry them.
            if (Interlocked.Decrement(ref _workers) == 0 && Volatile.Read(ref _remaining) > 0 && !_stop.IsCancellationRequested)
                Fail(new FileTransferException($"Every connection to the server failed with {Volatile.Read(ref _remaining)} of {Count} chunks left to move" +
                    (_lastFailure is { } last ? $"; the last failure: {last.Message}" : "."), 0, null, _lastFailure));
        }
    }

    /// <summary>Worth another try on another connection: the connection or stream failed, or the bytes did not check out.</summary>
    private static bool Retryable(Exception e) => e is QuicException or InvalidDataException or RetryableChunkException;

    private void Fail(Exception e)
    {
        Interlocked.CompareExchange(ref _fatal, e, null);
        _queue.Writer.TryComplete();
        try { _stop.Cancel(); } catch (ObjectDisposedException) { }
    }
}

/// <summary>The server answered a chunk in a way another attempt may mend (a 5xx other than 507, a 422 on the chunk's hash).</summary>
internal sealed class RetryableChunkException(string message) : Exception(message);

/// <summary>
/// Hashes a file in order while its chunks complete out of order: each chunk, once done, is read
/// back (from the page cache, as it was just written or sent) and fed to SHA-256 when every chunk
/// before it has been.
/// </summary>
internal sealed class InOrderHasher(Microsoft.Win32.SafeHandles.SafeFileHandle file, ChunkScheduler chunks) : IDisposable
{
    private readonly bool[] _done = (bool[])chunks.AlreadyDone.Clone(); // a resumed transfer's earlier chunks are hashed from the file like the rest
    private readonly SemaphoreSlim _signal = new(0);
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public void Completed(int chunk)
    {
        Volatile.Write(ref _done[chunk], true);
        _signal.Release();
    }

    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        for (int next = 0; next < chunks.Count;)
        {
            if (!Volatile.Read(ref _done[next]))
            {
                await _signal.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            var (first, count) = chunks.RangeOf(next);
            if (await FileTransfer.HashFileRangeAsync(file, _sha, first, count, cancellationToken).ConfigureAwait(false) != count)
                throw new IOException($"The file is shorter than {first + count} bytes: it was truncated while being transferred.");
            next++;
        }
        return Convert.ToHexStringLower(_sha.GetHashAndReset());
    }

    public void Dispose()
    {
        _sha.Dispose();
        _signal.Dispose();
    }
}

/// <summary>Progress of a striped transfer: bytes from all workers, summed.</summary>
internal sealed class SharedProgress(IProgress<long>? target)
{
    private long _total;

    public void Add(long bytes)
    {
        long now = Interlocked.Add(ref _total, bytes);
        target?.Report(now);
    }
}

/// <summary>The striped forms of <see cref="FileTransfer.UploadFileAsync"/> and <see cref="FileTransfer.DownloadFileAsync"/>; the wire protocol is in docs/striping.md.</summary>
internal static class StripedTransfer
{
    /// <summary>Requests each connection carries at once: while one chunk's request and answer cross the path, the next is already sending.</summary>
    public const int WorkersPerConnection = 2;

    private static string Header(QuicSendResponse r, string name) => HeaderCodec.Get(r.Headers, name) ?? "";

    private static string Range(long first, long count) =>
        string.Create(CultureInfo.InvariantCulture, $"{first}-{first + count - 1}");

    /// <summary>The trailer <c>quicsend-sha256</c>, if the server sent one (a third-party server does not).</summary>
    private static async Task<string?> TrailerShaAsync(QuicSendResponse response, CancellationToken cancellationToken)
    {
        foreach (var (k, v) in await response.ReadTrailersAsync(cancellationToken).ConfigureAwait(false))
            if (string.Equals(k, QuicSendHeaders.Sha256, StringComparison.OrdinalIgnoreCase)) return v.Trim().ToLowerInvariant();
        return null;
    }

    /// <summary>
    /// Downloads with ranged GETs striped over the pool into a temporary file beside <paramref name="full"/>;
    /// every piece must come from one version of the file (its ETag, enforced with <c>if-match</c>), each piece is
    /// checked against the server's SHA-256 trailer, the whole against the server's <c>repr-digest</c>, then it is
    /// flushed and renamed into place. Returns null when the server does not offer ranges (the caller then downloads whole).
    /// With <see cref="QuicSendClientOptions.ResumableTransfers"/>, an interrupted download keeps its pieces
    /// (see <see cref="DownloadResume"/>) and the next call for the same target and version fetches only the rest.
    /// </summary>
    public static async Task<(long Length, string Sha256, long Resumed)?> DownloadAsync(QuicSendClient client, string remoteName, string full,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var path = FileTransfer.PathFor(remoteName);
        long length;
        string etag;
        using (var head = await client.SendAsync("HEAD", path, null, null, null, 0, cancellationToken).ConfigureAwait(false))
        {
            if (!head.IsSuccess || !Header(head, QuicSendHeaders.AcceptRanges).Contains("bytes", StringComparison.OrdinalIgnoreCase)
                || !long.TryParse(Header(head, QuicSendHeaders.ContentLength), NumberStyles.None, CultureInfo.InvariantCulture, out length)
                || (etag = Header(head, QuicSendHeaders.ETag)).Length == 0)
                return null; // refusals and servers without ranges: the plain GET says it all
        }
        var chunkSize = client.Options.ChunkSize;
        if (length <= 2L * chunkSize) return null;

        // The whole file's digest, asked for at once: the server hashes while the chunks move.
        var digest = WholeDigestAsync(client, path, etag, cancellationToken);
        using var resume = client.Options.ResumableTransfers ? DownloadResume.Open(full, client.SourceOf(path), etag, length, chunkSize) : null;
        var chunks = new ChunkScheduler(length, chunkSize, cancellationToken, resume is null ? null : resume.IsDone);
        var shared = new SharedProgress(progress);
        long resumed = chunks.AlreadyDoneBytes;
        if (resumed > 0) shared.Add(resumed);
        var temp = resume?.PartialPath ?? FileTransfer.TemporaryPathFor(full);
        bool kept = false;
        try
        {
            using var file = resume?.OpenPartial()
                ?? File.OpenHandle(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous, preallocationSize: length);
            using var hasher = new InOrderHasher(file, chunks);
            var hashing = hasher.RunAsync(chunks.Token);
            await chunks.RunAsync(client.Pool.Usable(), WorkersPerConnection, async (conn, chunk, ct) =>
            {
                var (first, count) = chunks.RangeOf(chunk);
                using var r = await client.SendAsync("GET", path, null, null,
                    [new(QuicSendHeaders.Range, "bytes=" + Range(first, count)), new(QuicSendHeaders.IfMatch, etag)], 0, ct, on: conn).ConfigureAwait(false);
                if (r.Status == 412)
                    throw new FileTransferException($"'{remoteName}' changed on the server during the download (its version is no longer {etag}); '{full}' was not written. Download it again.", 412) { SourceChanged = true };
                if (r.Status != 206)
                    throw new FileTransferException($"Downloading bytes {Range(first, count)} of '{remoteName}' failed: the server answered {r.Status}, not 206.", r.Status);
                var expected = $"bytes {Range(first, count)}/{length.ToString(CultureInfo.InvariantCulture)}";
                if (Header(r, QuicSendHeaders.ContentRange) != expected || Header(r, QuicSendHeaders.ETag) != etag)
                    throw new FileTransferException($"'{remoteName}' changed on the server during the download: asked for {expected} of version {etag}, " +
                                                    $"got {Header(r, QuicSendHeaders.ContentRange)} of {Header(r, QuicSendHeaders.ETag)}. '{full}' was not written.") { SourceChanged = true };
                long moved = 0;
                try
                {
                    var (got, sha, overflow) = await FileTransfer.ReceiveIntoFileAsync(r.Body, file, first, count, n => { moved += n; shared.Add(n); }, ct).ConfigureAwait(false);
                    if (overflow) throw new InvalidDataException($"The server sent more than the {count} bytes asked for at {first}.");
                    if (got != count) throw new InvalidDataException($"The piece at {first} ended after {got} of {count} bytes.");
                    if (await TrailerShaAsync(r, ct).ConfigureAwait(false) is string theirs && theirs != sha)
                        throw new InvalidDataException($"The piece at {first} failed its SHA-256 check (server {theirs}, received {sha}).");
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    shared.Add(-moved); // it will be fetched again (a cancelled transfer keeps its count: it is what arrived)
                    throw;
                }
            }, chunk => { resume?.Completed(chunk); hasher.Completed(chunk); }).ConfigureAwait(false);

            var ours = await hashing.ConfigureAwait(false);
            var theirs = await digest.ConfigureAwait(false);
            if (theirs is not null && theirs != ours)
                throw new InvalidDataException($"The download of '{remoteName}' failed its SHA-256 check: the server's repr-digest is {theirs}, " +
                                               $"the {length} bytes assembled hash to {ours}. '{full}' was not written" +
                                               (resumed > 0 ? $" (it resumed {resumed} bytes kept from an earlier attempt, now removed)." : "."));
            RandomAccess.FlushToDisk(file);
            file.Dispose();
            if (resume is not null) await resume.DiscardRecordAsync().ConfigureAwait(false);
            File.Move(temp, full, overwrite: true);
            kept = true;
            return (length, ours, resumed);
        }
        catch (Exception e) when (resume is not null && !kept && KeepsForResume(e))
        {
            var note = await resume.StopAndKeepAsync().ConfigureAwait(false);
            kept = true; // the partial file stays for the next attempt
            if (e is OperationCanceledException) throw;
            throw new FileTransferException($"{e.Message} {note}", e is FileTransferException f ? f.StatusCode : 0, null, e);
        }
        finally
        {
            if (!kept)
            {
                if (resume is not null) await resume.DiscardAsync().ConfigureAwait(false);
                else FileTransfer.DeleteQuietly(temp);
            }
            try { await digest.ConfigureAwait(false); } catch { }
        }
    }

    /// <summary>Failures after which the pieces on disk are still good for the same version: the connections, not the data, failed.</summary>
    private static bool KeepsForResume(Exception e) => e is QuicException or OperationCanceledException
        || e is FileTransferException { StatusCode: 0, SourceChanged: false }
        || (e is FileTransferException { StatusCode: >= 500 and not 507 });

    /// <summary>The server's whole-file SHA-256 (RFC 9530 repr-digest) for the version <paramref name="etag"/>; null when it gives none.</summary>
    private static async Task<string?> WholeDigestAsync(QuicSendClient client, string path, string etag, CancellationToken cancellationToken)
    {
        using var r = await client.SendAsync("HEAD", path, null, null,
            [new(QuicSendHeaders.WantReprDigest, "sha-256=10"), new(QuicSendHeaders.IfMatch, etag)], 0, cancellationToken).ConfigureAwait(false);
        if (r.Status == 412) throw new FileTransferException($"'{path}' changed on the server during the download (its version is no longer {etag}). Download it again.", 412);
        return r.IsSuccess ? FileTransfer.Sha256FromReprDigest(HeaderCodec.Get(r.Headers, QuicSendHeaders.ReprDigest)) : null;
    }

    /// <summary>
    /// Uploads in chunks striped over the pool, each with its own SHA-256, then commits with the whole
    /// file's SHA-256; the server stores the file only when everything checks out. A file that changes
    /// while it is read fails the upload (and nothing is stored). Returns the server's answer to the commit.
    /// With <see cref="QuicSendClientOptions.ResumableTransfers"/> the upload id is derived from the file and the
    /// name, the server is asked which chunks of it it holds (<c>quicsend-upload-received</c>), only the rest is sent,
    /// and an upload that breaks off is left with the server (not abandoned) for the next attempt.
    /// </summary>
    public static async Task<(long Length, string Sha256, QuicSendResponse Committed, long Resumed)> UploadAsync(QuicSendClient client, string full, string remoteName,
        bool overwrite, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var path = FileTransfer.PathFor(remoteName);
        using var file = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        long length = RandomAccess.GetLength(file);
        var version = File.GetLastWriteTimeUtc(file);
        bool resumable = client.Options.ResumableTransfers;
        var id = resumable ? UploadIdFor(full, length, version, client.SourceOf(path)) : Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var total = length.ToString(CultureInfo.InvariantCulture);
        var held = resumable ? await HeldRangesAsync(client, path, id, length, cancellationToken).ConfigureAwait(false) : [];
        var chunkSize = client.Options.ChunkSize;
        bool Held(int chunk)
        {
            long first = (long)chunk * chunkSize, last = Math.Min(length, first + chunkSize) - 1;
            return held.Any(r => r.First <= first && last <= r.Last);
        }
        var chunks = new ChunkScheduler(length, chunkSize, cancellationToken, resumable ? Held : null);
        long resumed = chunks.AlreadyDoneBytes;
        var shared = new SharedProgress(progress);
        if (resumed > 0) shared.Add(resumed);
        bool committed = false, keep = false;
        try
        {
            using var hasher = new InOrderHasher(file, chunks);
            var hashing = hasher.RunAsync(chunks.Token);
            await chunks.RunAsync(client.Pool.Usable(), WorkersPerConnection, async (conn, chunk, ct) =>
            {
                var (first, count) = chunks.RangeOf(chunk);
                long sent = 0;
                QuicSendResponse r;
                try
                {
                    r = await client.SendAsync("PUT", path, null, null, FileTransfer.OverwriteHeader(overwrite,
                [
                    new(QuicSendHeaders.ContentLength, count.ToString(CultureInfo.InvariantCulture)),
                    new(QuicSendHeaders.ContentRange, $"bytes {Range(first, count)}/{total}"),
                    new(QuicSendHeaders.UploadId, id),
                    new(QuicSendHeaders.UploadLength, total),
                ]), 0, ct, async stream =>
                {
                    var buffer = ArrayPool<byte>.Shared.Rent(FileTransfer.BufferSize);
                    try
                    {
                        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                        while (sent < count)
                        {
                            int n = await RandomAccess.ReadAsync(file, buffer.AsMemory(0, (int)Math.Min(FileTransfer.BufferSize, count - sent)), first + sent, ct).ConfigureAwait(false);
                            if (n == 0) throw new IOException($"'{full}' changed while it was being uploaded: it had {length} bytes, it ended at {first + sent}.");
                            sha.AppendData(buffer, 0, n);
                            await stream.Stream.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                            sent += n;
                            shared.Add(n);
                        }
                        await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(sha.GetHashAndReset()))]), ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }, on: conn).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    shared.Add(-sent); // it will be sent again
                    throw;
                }
                using var _ = r;
                if (r.Status == 202) return;
                shared.Add(-sent);
                if (r.Status is 422 or (>= 500 and not 507))
                    throw new RetryableChunkException($"The server answered {r.Status} to bytes {Range(first, count)}.");
                throw await FileTransfer.RefusalAsync(r, $"Uploading '{full}' as '{remoteName}'", ct).ConfigureAwait(false);
            }, hasher.Completed).ConfigureAwait(false);

            var sha256 = await hashing.ConfigureAwait(false);
            if (RandomAccess.GetLength(file) != length || File.GetLastWriteTimeUtc(file) != version)
                throw new IOException($"'{full}' changed while it was being uploaded (its size or modification time moved); nothing was stored. Upload it again once it is stable.");
            var response = await client.SendAsync("PUT", path, null, null, FileTransfer.OverwriteHeader(overwrite,
            [
                new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadCommit, total), new(QuicSendHeaders.Sha256, sha256),
            ]), 0, cancellationToken).ConfigureAwait(false);
            committed = true;
            return (length, sha256, response, resumed);
        }
        catch (Exception e) when (resumable && KeepsForResume(e))
        {
            keep = true; // the server keeps the chunks it has while the upload is idle for less than its session timeout
            if (e is OperationCanceledException) throw;
            throw new FileTransferException($"{e.Message} The server keeps the chunks it received for a while (10 idle minutes by default); " +
                                            "uploading the same file again resumes from there.", e is FileTransferException f ? f.StatusCode : 0, null, e);
        }
        finally
        {
            if (!committed && !keep) await AbandonAsync(client, path, id).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A resumable upload's id: the same file (path, length, modification time) sent to the same server under the
    /// same name gets the same id, so the next attempt finds the chunks the last one left; a changed file gets another.
    /// </summary>
    private static string UploadIdFor(string full, long length, DateTime version, string target)
    {
        var key = $"quicsend-upload\0{full}\0{length.ToString(CultureInfo.InvariantCulture)}\0{version.Ticks.ToString(CultureInfo.InvariantCulture)}\0{target}";
        return Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)).AsSpan(0, 16));
    }

    /// <summary>
    /// The byte ranges of upload <paramref name="id"/> the server holds, verified (docs/striping.md, "Resuming an upload");
    /// none when it holds no such upload, holds it for another length, or does not know the question.
    /// </summary>
    private static async Task<List<(long First, long Last)>> HeldRangesAsync(QuicSendClient client, string path, string id, long length, CancellationToken cancellationToken)
    {
        var ranges = new List<(long First, long Last)>();
        using var r = await client.SendAsync("HEAD", path, null, null, [new(QuicSendHeaders.UploadId, id)], 0, cancellationToken).ConfigureAwait(false);
        if (r.Status != 200 || Header(r, QuicSendHeaders.UploadLength) != length.ToString(CultureInfo.InvariantCulture)) return ranges;
        foreach (var part in Header(r, QuicSendHeaders.UploadReceived).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int dash = part.IndexOf('-');
            if (dash <= 0
                || !long.TryParse(part.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !long.TryParse(part.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var last)
                || last < first || last >= length)
                return []; // an answer we cannot read: send everything
            ranges.Add((first, last));
        }
        return ranges;
    }

    /// <summary>Tells the server to drop an unfinished upload now rather than after its idle timeout; best effort.</summary>
    private static async Task AbandonAsync(QuicSendClient client, string path, string id)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            using var r = await client.SendAsync("DELETE", path, null, null, [new(QuicSendHeaders.UploadId, id)], 0, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException or IOException) { }
    }
}
