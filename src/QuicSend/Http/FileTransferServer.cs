using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using QuicSend.Transport;

namespace QuicSend.Http;

public static partial class FileTransfer
{
    /// <summary>
    /// Serves <paramref name="directory"/> to the server's clients until <paramref name="cancellationToken"/>
    /// is cancelled or the server is disposed (then it completes normally, after the transfers in
    /// progress have stopped): PUT or POST <c>/files/&lt;name&gt;</c> uploads, GET downloads, anything
    /// else is answered 404 or 405. Requests are served concurrently; each ends in a
    /// <see cref="FileTransferResult"/> passed to <paramref name="onCompleted"/> (for logging; exceptions
    /// it throws are ignored). Partial files a killed server left in the folder are swept at once and then
    /// periodically (docs/striping.md, "Partial files on the server"); the server's
    /// <see cref="QuicSendServerOptions.FileTransfers"/> bound what each client may hold.
    /// </summary>
    public static async Task ServeDirectoryAsync(QuicSendServer server, string directory, CancellationToken cancellationToken = default,
        Action<FileTransferResult>? onCompleted = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        var dir = CheckDirectory(directory);
        server.Files.Serve(dir); // sweeps the partial files a killed server left there
        var running = new ConcurrentDictionary<long, Task>();
        long next = 0;
        try
        {
            await foreach (var request in server.AcceptRequestsAsync(cancellationToken).ConfigureAwait(false))
            {
                var id = ++next;
                var task = Task.Run(async () =>
                {
                    FileTransferResult result;
                    try
                    {
                        using (request)
                            result = await HandleRequestAsync(request, dir, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        // Not a client's doing (those become answers): report it rather than lose it.
                        var upload = request.Method is not "GET" and not "HEAD";
                        result = Failed(upload ? FileTransferDirection.Upload : FileTransferDirection.Download, NameFromPath(request.Path) ?? request.Path, 0,
                            $"Serving {request.Method} {request.Path} failed: {e.GetType().Name}: {FileTransferErrors.Scrub(e.Message, dir)}", Stopwatch.StartNew());
                    }
                    try { onCompleted?.Invoke(result); } catch { }
                }, CancellationToken.None);
                running[id] = task;
                _ = task.ContinueWith(_ => running.TryRemove(id, out Task? _), TaskScheduler.Default);
                if (task.IsCompleted) running.TryRemove(id, out Task? _);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
        try { await Task.WhenAll(running.Values).ConfigureAwait(false); } catch { }
    }

    /// <summary>
    /// Answers one request the way <see cref="ServeDirectoryAsync"/> does: uploads and downloads under
    /// <c>/files/</c>, 404 for other paths, 405 for other methods. Never throws for what a client did;
    /// the caller disposes the request afterwards.
    /// </summary>
    public static async Task<FileTransferResult> HandleRequestAsync(QuicSendRequest request, string directory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var sw = Stopwatch.StartNew();
        var upload = request.Method is not "GET" and not "HEAD";
        var direction = upload ? FileTransferDirection.Upload : FileTransferDirection.Download;
        var name = NameFromPath(request.Path);
        try
        {
            if (name is null)
                return await AnswerAsync(request, direction, request.Path, 404,
                    $"Nothing at '{request.Path}': this server serves files at {RoutePrefix}<name> (PUT or POST to upload, GET to download).", sw, cancellationToken).ConfigureAwait(false);
            using var lease = Admit(request, directory, out var refusal);
            if (lease is null) return await RefuseBusyAsync(request, direction, name, refusal, sw, cancellationToken).ConfigureAwait(false);
            return request.Method switch
            {
                "PUT" or "POST" or "DELETE" or "HEAD" when request.Method is "PUT" or "POST" || IsChunked(request) =>
                    await ReceiveAdmittedUploadAsync(request, directory, name, cancellationToken).ConfigureAwait(false),
                "GET" or "HEAD" => await ServeAdmittedDownloadAsync(request, directory, name, cancellationToken).ConfigureAwait(false),
                _ => await AnswerAsync(request, direction, name, 405,
                    $"The method {request.Method} is not supported here: PUT or POST {RoutePrefix}<name> uploads, GET downloads.", sw, cancellationToken).ConfigureAwait(false),
            };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return Failed(direction, name ?? request.Path, 0, "The server stopped before the transfer finished.", sw);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            var message = $"The transfer of '{name ?? request.Path}' failed: {FileTransferErrors.Cause(e, directory)}.";
            return request.Responded
                ? Failed(direction, name ?? request.Path, 0, message, sw)
                : await AnswerAsync(request, direction, name ?? request.Path, 500, message, sw, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Receives an upload for <c>/files/&lt;name&gt;</c> into <paramref name="directory"/> and answers it (or, with a
    /// <c>quicsend-upload-id</c>, a chunk, commit, abandon or status query of a striped upload):
    /// 201 once the file is complete, verified against its SHA-256 trailer, flushed and renamed into
    /// place; 400 for a bad name or a missing trailer; 422 when the hash (or length) does not match;
    /// 413, 409, 500 or 507 when it cannot be stored. Nothing appears under the name unless it succeeded.
    /// It counts against the server's caps as <see cref="HandleRequestAsync"/> does: beyond
    /// <see cref="FileServingOptions.MaxTransfersPerConnection"/> or <see cref="FileServingOptions.MaxTransfersPerToken"/>
    /// file requests in progress it answers 429 with <c>retry-after</c>; its disk reservation comes from the server's
    /// <see cref="FileServingOptions.MaxPreallocationSize"/>, and the folder's stale partial files are swept.
    /// The caller disposes the request afterwards.
    /// </summary>
    public static Task<FileTransferResult> ReceiveUploadAsync(QuicSendRequest request, string directory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = NameFromPath(request.Path);
        return name is null
            ? AnswerAsync(request, FileTransferDirection.Upload, request.Path, 404,
                $"Nothing at '{request.Path}': uploads go to {RoutePrefix}<name>.", Stopwatch.StartNew(), cancellationToken)
            : ReceiveUploadAsync(request, directory, name, cancellationToken);
    }

    /// <summary>As <see cref="ReceiveUploadAsync(QuicSendRequest, string, CancellationToken)"/>, storing under <paramref name="name"/> whatever the path.</summary>
    public static async Task<FileTransferResult> ReceiveUploadAsync(QuicSendRequest request, string directory, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var lease = Admit(request, directory, out var refusal);
        if (lease is null) return await RefuseBusyAsync(request, FileTransferDirection.Upload, name ?? "", refusal, Stopwatch.StartNew(), cancellationToken).ConfigureAwait(false);
        return await ReceiveAdmittedUploadAsync(request, directory, name!, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The upload itself, once the request holds its slot under the server's caps.</summary>
    private static async Task<FileTransferResult> ReceiveAdmittedUploadAsync(QuicSendRequest request, string directory, string name, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        const FileTransferDirection up = FileTransferDirection.Upload;
        if (name is not null) name = NormalizeName(name); // callers may pass a name that is not from NameFromPath
        if (ValidateName(name) is string why) return await AnswerAsync(request, up, name ?? "", 400, why, sw, cancellationToken).ConfigureAwait(false);
        if (ServedDirectory(directory) is not string dir)
            return await AnswerAsync(request, up, name, 500, "The server's file folder is missing.", sw, cancellationToken).ConfigureAwait(false);
        var target = Path.Combine(dir, name);
        if (Directory.Exists(target))
            return await AnswerAsync(request, up, name, 409, $"'{name}' is a folder on the server; it cannot be replaced by a file.", sw, cancellationToken).ConfigureAwait(false);
        if (!TryReadOverwrite(request, out bool overwrite))
            return await AnswerAsync(request, up, name, 400, $"The '{QuicSendHeaders.Overwrite}' header must be ?1 (replace an existing file) or ?0.", sw, cancellationToken).ConfigureAwait(false);
        if (IsChunked(request)) return await ReceiveChunkedAsync(request, dir, name, target, overwrite, sw, cancellationToken).ConfigureAwait(false);
        // Refused before the body is read; checked again at the rename, which another upload may have beaten.
        if (!overwrite && EntryExists(target))
            return await AnswerAsync(request, up, name, 409, ExistsMessage(name), sw, cancellationToken).ConfigureAwait(false);
        long length;
        string sha;
        try
        {
            // Refused up front when it cannot fit; otherwise reserved from a server-wide budget, so announcing much and sending nothing takes little.
            long wanted = request.ContentLength ?? 0;
            if (wanted > 0 && FileTransferDisk.FreeSpace(dir) is long free)
            {
                if (wanted > free) throw new DiskFullException(28, $"it is {wanted} bytes and the server's disk has {free} bytes free");
                wanted = Math.Min(wanted, free / 2); // a reservation never takes the last of the disk from others
            }
            using var reservation = request.FileServing.Reserve(wanted, out var reserve);
            // Registered while it is written, so the stale-partial sweep never takes a slow upload's file.
            var temp = TemporaryPathFor(target);
            using var receiving = request.FileServing.Receiving(temp);
            (length, sha) = await ReceiveToFileAsync(request.Body, request.ReadTrailersAsync, target, request.ContentLength, reserve, null,
                $"The upload of '{name}'", "Nothing was kept.", cancellationToken, temp, refuseExisting: overwrite ? null : ExistsMessage(name)).ConfigureAwait(false);
        }
        catch (FileIntegrityException e)
        {
            return await AnswerAsync(request, up, name, e.Status, e.Message, sw, cancellationToken).ConfigureAwait(false);
        }
        catch (QuicException e)
        {
            // The client reset the request or the connection ended: no answer can be given.
            return Failed(up, name, 0, $"The upload of '{name}' was abandoned ({e.Message}); nothing was kept.", sw);
        }
        catch (InvalidDataException e)
        {
            // The body grew past the server's MaxRequestBodySize; the request stream has been cut off.
            return await AnswerAsync(request, up, name, 413, $"The upload of '{name}' was refused: {e.Message} Nothing was kept.", sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (FileTransferDisk.IsDiskFull(e))
        {
            return await AnswerAsync(request, up, name, 507, FileTransferDisk.DiskFullMessage(name, e), sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return await AnswerAsync(request, up, name, 500, $"The server could not store '{name}': {FileTransferErrors.Cause(e, dir)}. Nothing was kept.", sw, cancellationToken).ConfigureAwait(false);
        }

        // Stored and verified; the client learns it from the 201 (if it is still there to hear it).
        var message = $"Stored '{name}': {length} bytes, SHA-256 {sha}.";
        int status201 = 201;
        try
        {
            await request.RespondAsync(201, InfoJson(name, length, sha), QuicSendBody.FromText(WithStatus(201, message)), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or ObjectDisposedException or OperationCanceledException)
        {
            status201 = 0;
            message += $" The client was gone before the answer ({e.Message}).";
        }
        return new FileTransferResult
        {
            Direction = up, Name = name, Path = target, Status = status201, Succeeded = true, Message = message,
            Length = length, Sha256 = sha, Elapsed = sw.Elapsed,
        };
    }

    /// <summary>
    /// Answers a download of <c>/files/&lt;name&gt;</c> from <paramref name="directory"/>: 200 and the file
    /// streamed from disk, ended by its SHA-256 as the <c>quicsend-sha256</c> trailer; 404 when there is
    /// no such file, 400 for a bad name. If reading fails midway the response is reset, so the client
    /// never takes a partial body for a whole one. Like <see cref="HandleRequestAsync"/> it counts against the server's
    /// <see cref="FileServingOptions.MaxTransfersPerConnection"/> and <see cref="FileServingOptions.MaxTransfersPerToken"/>
    /// (429 with <c>retry-after</c> beyond them) and sweeps the folder's stale partial files. The caller disposes the request afterwards.
    /// </summary>
    public static Task<FileTransferResult> ServeDownloadAsync(QuicSendRequest request, string directory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = NameFromPath(request.Path);
        return name is null
            ? AnswerAsync(request, FileTransferDirection.Download, request.Path, 404,
                $"Nothing at '{request.Path}': downloads are at {RoutePrefix}<name>.", Stopwatch.StartNew(), cancellationToken)
            : ServeDownloadAsync(request, directory, name, cancellationToken);
    }

    /// <summary>As <see cref="ServeDownloadAsync(QuicSendRequest, string, CancellationToken)"/>, serving <paramref name="name"/> whatever the path.</summary>
    public static async Task<FileTransferResult> ServeDownloadAsync(QuicSendRequest request, string directory, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var lease = Admit(request, directory, out var refusal);
        if (lease is null) return await RefuseBusyAsync(request, FileTransferDirection.Download, name ?? "", refusal, Stopwatch.StartNew(), cancellationToken).ConfigureAwait(false);
        return await ServeAdmittedDownloadAsync(request, directory, name!, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The download itself, once the request holds its slot under the server's caps.</summary>
    private static async Task<FileTransferResult> ServeAdmittedDownloadAsync(QuicSendRequest request, string directory, string name, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        const FileTransferDirection down = FileTransferDirection.Download;
        if (name is not null) name = NormalizeName(name); // callers may pass a name that is not from NameFromPath
        if (ValidateName(name) is string why) return await AnswerAsync(request, down, name ?? "", 400, why, sw, cancellationToken).ConfigureAwait(false);
        if (ServedDirectory(directory) is not string dir)
            return await AnswerAsync(request, down, name, 500, "The server's file folder is missing.", sw, cancellationToken).ConfigureAwait(false);
        var path = Path.Combine(dir, name);
        // Checked before opening: a link out of the folder would serve any file the server's process can read.
        if (LinkLeadsOutside(dir, path))
            return await AnswerAsync(request, down, name, 403, $"'{name}' is a link that leads outside the served folder; it is not served.", sw, cancellationToken).ConfigureAwait(false);
        FileStream input;
        try
        {
            if (Directory.Exists(path)) throw new FileNotFoundException();
            input = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                BufferSize = 0,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return await AnswerAsync(request, down, name, 404, $"There is no file named '{name}' on this server.", sw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return await AnswerAsync(request, down, name, 403, $"The server cannot read '{name}': {FileTransferErrors.Cause(e, dir)}.", sw, cancellationToken).ConfigureAwait(false);
        }

        await using (input.ConfigureAwait(false))
        {
            long length = input.Length;
            var etag = ETagOf(input.SafeFileHandle);
            var ifMatch = HeaderCodec.Get(request.Headers, QuicSendHeaders.IfMatch);
            if (!IfMatchAllows(ifMatch, etag))
                return await AnswerAsync(request, down, name, 412, $"'{name}' changed on the server since the download began " +
                    $"(it is now version {etag}, the request asked for {ifMatch}); start the download again.", sw, cancellationToken).ConfigureAwait(false);
            var headers = new List<KeyValuePair<string, string>> { new(QuicSendHeaders.ETag, etag), new(QuicSendHeaders.AcceptRanges, "bytes") };
            if (request.Method == "HEAD")
                return await AnswerHeadAsync(request, name, path, input, etag, headers, sw, cancellationToken).ConfigureAwait(false);

            var range = ParseRange(HeaderCodec.Get(request.Headers, QuicSendHeaders.Range), length, out bool unsatisfiable);
            if (unsatisfiable)
            {
                headers.Add(new(QuicSendHeaders.ContentRange, $"bytes */{length}"));
                var notSatisfiable = $"The range asked for starts past the end of '{name}' ({length} bytes).";
                try { await request.RespondAsync(416, null, QuicSendBody.FromText(WithStatus(416, notSatisfiable)), headers, cancellationToken).ConfigureAwait(false); }
                catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
                return Failed(down, name, 416, notSatisfiable, sw);
            }
            long first = range?.First ?? 0, count = range?.Length ?? length;
            if (range is { } r) headers.Add(new(QuicSendHeaders.ContentRange, $"bytes {r.First}-{r.Last}/{length}"));
            if (KnownSha256(path, etag) is string whole) headers.Add(new(QuicSendHeaders.ReprDigest, ReprDigestOf(whole)));
            int status = range is null ? 200 : 206;
            var sent = new Counter();
            string? sha = null;
            try
            {
                input.Position = first;
                await request.RespondStreamingAsync(status, InfoJson(name, length, null), async body =>
                {
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    long n = await PumpAsync(input, (m, ct) => body.WriteAsync(m, ct), hash, sent, cancellationToken, limit: count).ConfigureAwait(false);
                    if (n != count || ETagOf(input.SafeFileHandle) != etag)
                        throw new IOException($"'{name}' changed while it was being sent: it had {length} bytes, now {input.Length}; {n} of {count} were read.");
                    sha = Convert.ToHexStringLower(hash.GetHashAndReset());
                    return [new(QuicSendHeaders.Sha256, sha)];
                }, cancellationToken, contentLength: count, extraHeaders: headers).ConfigureAwait(false);
                var what = range is null ? $"{length} bytes" : $"bytes {first}-{first + count - 1} of {length}";
                return new FileTransferResult
                {
                    Direction = down, Name = name, Path = path, Status = status, Succeeded = true, Message = $"Sent '{name}': {what}, SHA-256 {sha}.",
                    Length = count, Sha256 = sha, Elapsed = sw.Elapsed,
                };
            }
            catch (QuicException e)
            {
                return Failed(down, name, 200, $"The client stopped the download of '{name}' after {sent.Value} of {length} bytes ({e.Message}).", sw, sent.Value);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or OperationCanceledException)
            {
                // Headers went out already: reset the response so it cannot pass for a complete file.
                try { request.Stream.Abort((long)Http3Errors.InternalError); } catch (Exception) { }
                if (e is OperationCanceledException) throw;
                return Failed(down, name, 200, $"Reading '{name}' failed after {sent.Value} of {length} bytes: {FileTransferErrors.Cause(e, dir)}. The response was reset.", sw, sent.Value);
            }
        }
    }

    /// <summary>HEAD: the file's length, version and — when asked with <c>want-repr-digest: sha-256</c> — its SHA-256.</summary>
    private static async Task<FileTransferResult> AnswerHeadAsync(QuicSendRequest request, string name, string path, FileStream input, string etag,
        List<KeyValuePair<string, string>> headers, Stopwatch sw, CancellationToken cancellationToken)
    {
        long length = input.Length;
        var digest = WantsSha256(HeaderCodec.Get(request.Headers, QuicSendHeaders.WantReprDigest))
            ? await WholeFileSha256Async(path, input.SafeFileHandle, etag, cancellationToken).ConfigureAwait(false)
            : KnownSha256(path, etag);
        if (digest is not null) headers.Add(new(QuicSendHeaders.ReprDigest, ReprDigestOf(digest)));
        headers.Add(new(QuicSendHeaders.ContentType, QuicSendHeaders.OctetStream));
        headers.Add(new(QuicSendHeaders.ContentLength, length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        int status = 200;
        try { await request.RespondHeadersOnlyAsync(200, InfoJson(name, length, digest), headers, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is QuicException or ObjectDisposedException) { status = 0; }
        return new FileTransferResult
        {
            Direction = FileTransferDirection.Download, Name = name, Path = path, Status = status, Succeeded = status != 0,
            Message = $"Described '{name}': {length} bytes, version {etag}" + (digest is null ? "." : $", SHA-256 {digest}."), Length = 0, Sha256 = digest, Elapsed = sw.Elapsed,
        };
    }

    private sealed class Counter : IProgress<long>
    {
        private long _value;
        public long Value => Interlocked.Read(ref _value);
        public void Report(long value) => Interlocked.Exchange(ref _value, value);
    }

    /// <summary>Reads <c>quicsend-overwrite</c>: absent or <c>?0</c> is false, <c>?1</c> true; false when it is anything else.</summary>
    private static bool TryReadOverwrite(QuicSendRequest request, out bool overwrite)
    {
        var value = HeaderCodec.Get(request.Headers, QuicSendHeaders.Overwrite)?.Trim();
        overwrite = value == "?1";
        return value is null or "?1" or "?0";
    }

    /// <summary>Is there an entry of any kind at <paramref name="path"/> (a dangling link too)?</summary>
    internal static bool EntryExists(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static string ExistsMessage(string name) =>
        $"'{name}' already exists on the server; it was not replaced. To replace it, upload it again asking to overwrite " +
        $"('{QuicSendHeaders.Overwrite}: ?1'; quicsend send --overwrite; UploadFileAsync(..., overwrite: true)). Nothing was kept.";

    private static string CheckDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var dir = Path.GetFullPath(directory);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder to serve files from does not exist: '{dir}'.");
        return dir;
    }

    private static string? ServedDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var dir = Path.GetFullPath(directory);
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>
    /// Takes the request's slot under the server's per-connection and per-token caps (the same state whichever public
    /// method serves it, so none of them is a way around the caps), and starts the periodic sweep of the folder's stale
    /// partial files. Null when the client is at a cap, with the reason in <paramref name="refusal"/>.
    /// </summary>
    private static FileTransferLimits.Lease? Admit(QuicSendRequest request, string directory, out string refusal)
    {
        var files = request.FileServing;
        if (ServedDirectory(directory) is string served) files.Serve(served);
        return files.Limits.TryEnter(request.ConnectionId, request.BearerToken, out refusal);
    }

    private static Task<FileTransferResult> RefuseBusyAsync(QuicSendRequest request, FileTransferDirection direction, string name, string refusal,
        Stopwatch sw, CancellationToken cancellationToken) =>
        AnswerAsync(request, direction, name, 429, $"The server refused this {request.Method} of '{name}': {refusal}, or retry after 1 s.", sw,
            cancellationToken, [new(QuicSendHeaders.RetryAfter, "1")]);

    private static FileTransferResult Failed(FileTransferDirection direction, string name, int status, string message, Stopwatch sw, long length = 0) => new()
    {
        Direction = direction, Name = name, Status = status, Succeeded = false, Message = message, Length = length, Elapsed = sw.Elapsed,
    };

    /// <summary>Refuses a request with a status and a text message; reports 0 if the client is gone.</summary>
    private static async Task<FileTransferResult> AnswerAsync(QuicSendRequest request, FileTransferDirection direction, string name, int status,
        string message, Stopwatch sw, CancellationToken cancellationToken, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        int answered = status;
        try
        {
            await request.RespondAsync(status, null, QuicSendBody.FromText(WithStatus(status, message)), headers, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or ObjectDisposedException or InvalidOperationException)
        {
            answered = 0;
        }
        return Failed(direction, name, answered, message, sw);
    }
}
