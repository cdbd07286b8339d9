using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace QuicSend.Http;

// The server's side of striped uploads (docs/striping.md): chunks of one upload arrive on any of a
// client's connections, grouped by the client's token and an upload id, are each verified against
// their own SHA-256 and written in place into one partial file; a commit carrying the whole file's
// SHA-256 verifies the assembled file and renames it into place, atomically, as a plain upload is.
public static partial class FileTransfer
{
    /// <summary>
    /// The default idle time after which a striped-upload session is dropped with its partial file (10 minutes);
    /// a server takes it when it starts, unless <see cref="FileServingOptions.UploadSessionIdleTimeout"/> is set.
    /// </summary>
    public static TimeSpan UploadSessionIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Upload sessions one server keeps at once (all clients); more are refused with 503.</summary>
    public const int MaxUploadSessions = 256;

    private static bool IsChunked(QuicSendRequest request) => HeaderCodec.Get(request.Headers, QuicSendHeaders.UploadId) is not null;

    /// <summary>Upload ids are the client's random 8 to 64 letters, digits or '-'.</summary>
    private static bool ValidUploadId(string id) =>
        id.Length is >= 8 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>A chunk, a commit, (DELETE) an abort or (HEAD) the status of a striped upload.</summary>
    private static async Task<FileTransferResult> ReceiveChunkedAsync(QuicSendRequest request, string dir, string name, string target, bool overwrite,
        Stopwatch sw, CancellationToken cancellationToken)
    {
        const FileTransferDirection up = FileTransferDirection.Upload;
        var id = HeaderCodec.Get(request.Headers, QuicSendHeaders.UploadId)!.Trim();
        if (!ValidUploadId(id))
            return await AnswerAsync(request, up, name, 400, $"The '{QuicSendHeaders.UploadId}' header must be 8 to 64 letters, digits or '-'.", sw, cancellationToken).ConfigureAwait(false);
        var key = (dir, request.BearerToken, id);
        var sessions = request.FileServing.Sessions;
        sessions.SweepIdle();

        if (request.Method == "HEAD")
            return await AnswerUploadStatusAsync(request, sessions, key, name, sw, cancellationToken).ConfigureAwait(false);
        if (request.Method == "DELETE")
        {
            if (sessions.TryRemove(key, out var gone)) gone.Discard();
            return await AnswerAsync(request, up, name, 200, $"The upload {id} of '{name}' was abandoned; nothing was kept.", sw, cancellationToken).ConfigureAwait(false);
        }
        if (HeaderCodec.Get(request.Headers, QuicSendHeaders.UploadCommit) is string commit)
            return await CommitChunkedAsync(request, sessions, key, name, commit, overwrite, sw, cancellationToken).ConfigureAwait(false);

        // A chunk: "content-range: bytes first-last/total".
        if (!TryParseContentRange(HeaderCodec.Get(request.Headers, QuicSendHeaders.ContentRange), out var first, out var last, out var total))
            return await AnswerAsync(request, up, name, 400, $"A chunk of a striped upload needs '{QuicSendHeaders.ContentRange}: bytes FIRST-LAST/TOTAL'.", sw, cancellationToken).ConfigureAwait(false);
        long count = last - first + 1;
        if (request.ContentLength is long cl && cl != count)
            return await AnswerAsync(request, up, name, 400, $"The chunk's content-length ({cl}) does not match its range ({count} bytes).", sw, cancellationToken).ConfigureAwait(false);
        if (total > request.MaxBodyBytes)
            return await AnswerAsync(request, up, name, 413, $"The upload of '{name}' is {total} bytes; this server accepts at most {request.MaxBodyBytes}.", sw, cancellationToken).ConfigureAwait(false);

        // A new upload to a taken name is refused at its first chunk, not after all of them; a session already begun goes on (a resumed upload).
        if (!overwrite && !sessions.TryGet(key, out _) && EntryExists(target))
            return await AnswerAsync(request, up, name, 409, ExistsMessage(name), sw, cancellationToken).ConfigureAwait(false);
        UploadSession? session;
        try
        {
            session = sessions.TryGet(key, out var known) ? known : sessions.GetOrAdd(key, () =>
            {
                // A new upload: refuse it up front when the disk cannot hold it (chunks are written sparse, nothing is reserved).
                if (FileTransferDisk.FreeSpace(dir) is long free && total > free)
                    throw new DiskFullException(28, $"it is {total} bytes and the server's disk has {free} bytes free");
                var temp = TemporaryPathFor(target, id);
                var file = new FileStream(temp, new FileStreamOptions
                {
                    Mode = FileMode.Create, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0, Options = FileOptions.Asynchronous,
                });
                return new UploadSession(name, target, temp, total, file);
            });
            if (session is null)
                return await AnswerAsync(request, up, name, 503, $"The server holds {sessions.MaxSessions} unfinished uploads already; try again later.", sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (FileTransferDisk.IsDiskFull(e))
        {
            return await AnswerAsync(request, up, name, 507, FileTransferDisk.DiskFullMessage(name, e), sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return await AnswerAsync(request, up, name, 500, $"The server could not start storing '{name}': {FileTransferErrors.Cause(e, dir)}.", sw, cancellationToken).ConfigureAwait(false);
        }
        if (session.Total != total || session.Name != name)
            return await AnswerAsync(request, up, name, 409, $"The upload {id} is of '{session.Name}', {session.Total} bytes; this chunk says '{name}', {total} bytes.", sw, cancellationToken).ConfigureAwait(false);

        Interlocked.Increment(ref session.Active);
        try
        {
            string sha;
            try
            {
                sha = await ReceiveChunkAsync(request, session, first, count, cancellationToken).ConfigureAwait(false);
            }
            catch (FileIntegrityException e)
            {
                return await AnswerAsync(request, up, name, e.Status, e.Message, sw, cancellationToken).ConfigureAwait(false);
            }
            catch (QuicException e)
            {
                return Failed(up, name, 0, $"A chunk of '{name}' (bytes {first}-{last}) was abandoned ({e.Message}); the client may send it again.", sw);
            }
            catch (Exception e) when (FileTransferDisk.IsDiskFull(e))
            {
                return await AnswerAsync(request, up, name, 507, FileTransferDisk.DiskFullMessage(name, e) + $" (Bytes {first}-{last} were not stored.)", sw, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                return await AnswerAsync(request, up, name, 500, $"The server could not store bytes {first}-{last} of '{name}': {FileTransferErrors.Cause(e, dir)}.", sw, cancellationToken).ConfigureAwait(false);
            }
            session.Cover(first, last + 1);
            var message = $"Stored bytes {first}-{last} of '{name}' (upload {id}), SHA-256 {sha}.";
            int status = 202;
            try { await request.RespondAsync(202, InfoJson(name, total, null), QuicSendBody.FromText(WithStatus(202, message)), cancellationToken: cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is QuicException or ObjectDisposedException) { status = 0; }
            return new FileTransferResult
            {
                Direction = up, Name = name, Path = session.Temp, Status = status, Succeeded = true, Message = message, Length = count, Sha256 = sha, Elapsed = sw.Elapsed,
            };
        }
        finally
        {
            Volatile.Write(ref session.LastActivity, Stopwatch.GetTimestamp());
            Interlocked.Decrement(ref session.Active);
        }
    }

    /// <summary>Writes one chunk's body in place while hashing it; checks its length and its SHA-256 trailer. Returns the hash.</summary>
    private static async Task<string> ReceiveChunkAsync(QuicSendRequest request, UploadSession session, long first, long count, CancellationToken cancellationToken)
    {
        var (got, ours, overflow) = await ReceiveIntoFileAsync(request.Body, session.File.SafeFileHandle, first, count, null, cancellationToken).ConfigureAwait(false);
        if (overflow)
            throw new FileIntegrityException(400, $"The chunk at {first} carries more than the {count} bytes its range announced; it was not kept.");
        if (got != count)
            throw new FileIntegrityException(400, $"The chunk at {first} ended after {got} of its {count} bytes; it was not kept.");
        string? theirs = null;
        foreach (var (k, v) in await request.ReadTrailersAsync(cancellationToken).ConfigureAwait(false))
            if (string.Equals(k, QuicSendHeaders.Sha256, StringComparison.OrdinalIgnoreCase)) theirs = v.Trim();
        if (theirs is null)
            throw new FileIntegrityException(400, $"The chunk at {first} ended without its '{QuicSendHeaders.Sha256}' trailer, so it cannot be verified; it was not kept.");
        if (!string.Equals(theirs, ours, StringComparison.OrdinalIgnoreCase))
            throw new FileIntegrityException(422, $"The chunk at {first} failed its SHA-256 check (trailer {Printable(theirs)}, received bytes hash to {ours}); send it again.");
        return ours;
    }

    /// <summary>The commit: every byte received, the whole file's SHA-256 matches, then flushed and renamed into place.</summary>
    private static async Task<FileTransferResult> CommitChunkedAsync(QuicSendRequest request, UploadSessionTable sessions, (string, string, string Id) key, string name, string commit,
        bool overwrite, Stopwatch sw, CancellationToken cancellationToken)
    {
        const FileTransferDirection up = FileTransferDirection.Upload;
        var id = key.Id;
        var claimed = HeaderCodec.Get(request.Headers, QuicSendHeaders.Sha256)?.Trim();
        if (!long.TryParse(commit, NumberStyles.None, CultureInfo.InvariantCulture, out var total) || claimed is not { Length: 64 } || !claimed.All(Uri.IsHexDigit))
            return await AnswerAsync(request, up, name, 400, $"A commit needs '{QuicSendHeaders.UploadCommit}: <total bytes>' and '{QuicSendHeaders.Sha256}: <64 hex digits>'.", sw, cancellationToken).ConfigureAwait(false);
        if (!sessions.TryGet(key, out var session))
            return await AnswerAsync(request, up, name, 404, $"There is no upload {id} on this server (never started, committed already, or dropped after {IdleText(sessions)} idle); upload the file again.", sw, cancellationToken).ConfigureAwait(false);
        if (session.Total != total || session.Name != name)
            return await AnswerAsync(request, up, name, 409, $"The upload {id} is of '{session.Name}', {session.Total} bytes; the commit says '{name}', {total} bytes.", sw, cancellationToken).ConfigureAwait(false);
        // Kept on refusal: the same upload may commit again asking to overwrite.
        if (!overwrite && EntryExists(session.Target))
            return await AnswerAsync(request, up, name, 409, ExistsMessage(name), sw, cancellationToken).ConfigureAwait(false);
        if (Volatile.Read(ref session.Active) > 0)
            return await AnswerAsync(request, up, name, 409, $"Chunks of the upload {id} are still arriving; commit once every chunk has been answered.", sw, cancellationToken).ConfigureAwait(false);
        if (session.FirstGap() is { } gap)
            return await AnswerAsync(request, up, name, 409, $"The upload {id} of '{name}' is missing bytes {gap.Start}-{gap.End - 1} (and maybe more); send them, then commit again.", sw, cancellationToken).ConfigureAwait(false);
        if (!sessions.TryRemove(key, session))
            return await AnswerAsync(request, up, name, 409, $"The upload {id} is being committed or abandoned by another request.", sw, cancellationToken).ConfigureAwait(false);

        try
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            if (await HashFileRangeAsync(session.File.SafeFileHandle, sha, 0, total, cancellationToken).ConfigureAwait(false) != total)
                throw new IOException($"The partial file of '{name}' is shorter than {total} bytes.");
            var ours = Convert.ToHexStringLower(sha.GetHashAndReset());
            if (!string.Equals(ours, claimed, StringComparison.OrdinalIgnoreCase))
            {
                session.Discard();
                return await AnswerAsync(request, up, name, 422, $"The striped upload of '{name}' failed its SHA-256 check: the commit says {claimed.ToLowerInvariant()}, " +
                                                                 $"the {total} bytes assembled hash to {ours}. Nothing was kept.", sw, cancellationToken).ConfigureAwait(false);
            }
            session.File.SetLength(total);
            session.File.Flush(flushToDisk: true);
            session.File.Dispose();
            try
            {
                File.Move(session.Temp, session.Target, overwrite: overwrite);
            }
            catch (IOException) when (!overwrite && EntryExists(session.Target))
            {
                session.Discard(); // another upload took the name between the check and the rename
                return await AnswerAsync(request, up, name, 409, ExistsMessage(name), sw, cancellationToken).ConfigureAwait(false);
            }
            session.Closed = true;
            var message = $"Stored '{name}': {total} bytes, SHA-256 {ours}.";
            int status = 201;
            try { await request.RespondAsync(201, InfoJson(name, total, ours), QuicSendBody.FromText(WithStatus(201, message)), cancellationToken: cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is QuicException or ObjectDisposedException or OperationCanceledException) { status = 0; }
            return new FileTransferResult
            {
                Direction = up, Name = name, Path = session.Target, Status = status, Succeeded = true, Message = message, Length = total, Sha256 = ours, Elapsed = sw.Elapsed,
            };
        }
        catch (Exception e) when (FileTransferDisk.IsDiskFull(e))
        {
            session.Discard();
            return await AnswerAsync(request, up, name, 507, FileTransferDisk.DiskFullMessage(name, e), sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            session.Discard();
            return await AnswerAsync(request, up, name, 500, $"The server could not store '{name}': {FileTransferErrors.Cause(e, key.Item1)}. Nothing was kept.", sw, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (!session.Closed) session.Discard();
        }
    }

    private static bool TryParseContentRange(string? header, out long first, out long last, out long total)
    {
        first = last = total = 0;
        if (header is null) return false;
        var h = header.Trim();
        if (!h.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return false;
        var parts = h[6..].Split('/');
        if (parts.Length != 2) return false;
        var fl = parts[0].Split('-');
        const NumberStyles digits = NumberStyles.None;
        return fl.Length == 2
               && long.TryParse(fl[0].Trim(), digits, CultureInfo.InvariantCulture, out first)
               && long.TryParse(fl[1].Trim(), digits, CultureInfo.InvariantCulture, out last)
               && long.TryParse(parts[1].Trim(), digits, CultureInfo.InvariantCulture, out total)
               && first <= last && last < total;
    }

    /// <summary>
    /// The status of a striped upload, for a client resuming it (docs/striping.md, "Resuming an upload"):
    /// 200 with the file's length and the ranges received and verified so far, or 404 when this server has
    /// no such session for this token and name.
    /// </summary>
    private static async Task<FileTransferResult> AnswerUploadStatusAsync(QuicSendRequest request, UploadSessionTable sessions,
        (string, string, string Id) key, string name, Stopwatch sw, CancellationToken cancellationToken)
    {
        if (!sessions.TryGet(key, out var session) || session.Name != name)
            return await AnswerAsync(request, FileTransferDirection.Upload, name, 404,
                $"There is no upload {key.Id} of '{name}' on this server (never started, committed already, abandoned, dropped after {IdleText(sessions)} idle, " +
                "or the server restarted); upload the whole file again.", sw, cancellationToken).ConfigureAwait(false);
        var ranges = session.ReceivedRanges();
        int status = 200;
        try
        {
            await request.RespondHeadersOnlyAsync(200, InfoJson(name, session.Total, null),
            [
                new(QuicSendHeaders.UploadLength, session.Total.ToString(CultureInfo.InvariantCulture)),
                new(QuicSendHeaders.UploadReceived, ranges),
            ], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or ObjectDisposedException) { status = 0; }
        return new FileTransferResult
        {
            Direction = FileTransferDirection.Upload, Name = name, Path = session.Temp, Status = status, Succeeded = status != 0,
            Message = $"Upload {key.Id} of '{name}': {session.Total} bytes, received {(ranges.Length == 0 ? "nothing yet" : ranges)}.", Elapsed = sw.Elapsed,
        };
    }

    private static string IdleText(UploadSessionTable sessions) =>
        sessions.IdleTimeout.TotalMinutes >= 1 ? $"{sessions.IdleTimeout.TotalMinutes:0.#} minutes" : $"{sessions.IdleTimeout.TotalSeconds:0.#} seconds";
}
