using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using QuicSend.Transport;

namespace QuicSend.Http;

public static partial class FileTransfer
{
    /// <summary>
    /// Uploads <paramref name="localPath"/> as <paramref name="remoteName"/> (PUT /files/&lt;name&gt;),
    /// streaming it from disk with its SHA-256 as the trailer; completes once the server has verified
    /// and stored it. <paramref name="progress"/> gets the bytes sent, at least every MiB.
    /// </summary>
    /// <exception cref="FileNotFoundException">The local file does not exist.</exception>
    /// <exception cref="ArgumentException"><paramref name="remoteName"/> is not a plain file name.</exception>
    /// <exception cref="FileTransferException">The server refused (status and its message), e.g. 422 when the hash did not match.</exception>
    /// <remarks>When cancelled after the whole file was sent, the server may still have stored it. A name that exists on the
    /// server is not replaced (409, <see cref="FileTransferException"/>); use the overload with <c>overwrite</c> to replace it.</remarks>
    public static Task<FileTransferResult> UploadFileAsync(this QuicSendClient client, string localPath, string remoteName,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default) =>
        UploadFileAsync(client, localPath, remoteName, overwrite: false, progress, cancellationToken);

    /// <summary>
    /// As <see cref="UploadFileAsync(QuicSendClient, string, string, IProgress{long}?, CancellationToken)"/>; with
    /// <paramref name="overwrite"/> an existing file of that name on the server is replaced (atomically, once the new one is
    /// verified), without it the server refuses with 409 and keeps the existing one.
    /// </summary>
    public static async Task<FileTransferResult> UploadFileAsync(this QuicSendClient client, string localPath, string remoteName, bool overwrite,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(localPath);
        CheckName(remoteName, nameof(remoteName));
        remoteName = NormalizeName(remoteName); // the server stores and reports the NFC spelling
        var full = Path.GetFullPath(localPath);
        if ((client.Pool.Usable().Count > 1 || client.Options.ResumableTransfers) && File.Exists(full) && new FileInfo(full).Length > 2L * client.Options.ChunkSize)
            return await UploadStripedAsync(client, full, remoteName, overwrite, progress, cancellationToken).ConfigureAwait(false);
        var input = OpenForUpload(full);
        await using var _ = input.ConfigureAwait(false);
        long length = input.Length;
        var sw = Stopwatch.StartNew();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? localFailure = null;
        string? sentHash = null;
        Task? sending = null;

        async Task SendBodyAsync(Http3RequestStream stream)
        {
            try
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long sent = await PumpAsync(input, (m, ct) => stream.Stream.WriteAsync(m, ct), sha, progress, stop.Token).ConfigureAwait(false);
                if (sent != length) throw new IOException($"'{full}' changed while it was being uploaded: it had {length} bytes, {sent} were read.");
                sentHash = Convert.ToHexStringLower(sha.GetHashAndReset());
                await stream.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, sentHash)]), cancellationToken).ConfigureAwait(false);
            }
            catch (QuicException)
            {
                throw; // the server stopped reading (its answer says why) or the connection failed
            }
            catch (Exception e)
            {
                // A local failure (reading the file, cancellation): stop waiting for an answer that will not come.
                localFailure = e;
                try { stop.Cancel(); } catch (ObjectDisposedException) { }
                throw;
            }
        }

        QuicSendResponse response;
        try
        {
            response = await client.SendAsync("PUT", PathFor(remoteName), null, null,
                OverwriteHeader(overwrite, [new(QuicSendHeaders.ContentLength, length.ToString(CultureInfo.InvariantCulture))]), 0, stop.Token,
                stream => new ValueTask(sending = SendBodyAsync(stream))).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            stop.Cancel();
            if (sending is not null) try { await sending.ConfigureAwait(false); } catch { }
            cancellationToken.ThrowIfCancellationRequested();
            if (localFailure is not null && localFailure is not OperationCanceledException) ExceptionDispatchInfo.Throw(localFailure);
            if (e is QuicException q) throw new FileTransferException($"Uploading '{full}' as '{remoteName}' broke off: {q.Message}", 0, null, q);
            throw;
        }

        return await UploadAnsweredAsync(response, full, remoteName, length, sentHash, sw, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An upload striped over the client's connections (docs/striping.md).</summary>
    private static async Task<FileTransferResult> UploadStripedAsync(QuicSendClient client, string full, string remoteName, bool overwrite,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var (length, sha, response, resumed) = await StripedTransfer.UploadAsync(client, full, remoteName, overwrite, progress, cancellationToken).ConfigureAwait(false);
            var result = await UploadAnsweredAsync(response, full, remoteName, length, sha, sw, cancellationToken).ConfigureAwait(false);
            return resumed == 0 ? result : new FileTransferResult
            {
                Direction = result.Direction, Name = result.Name, Path = result.Path, Status = result.Status, Succeeded = result.Succeeded,
                Message = $"{result.Message} It resumed an earlier attempt: the server held {resumed} bytes already.",
                Length = result.Length, Sha256 = result.Sha256, Elapsed = result.Elapsed, ResumedBytes = resumed,
            };
        }
        catch (QuicException q) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FileTransferException($"Uploading '{full}' as '{remoteName}' broke off: {q.Message}", 0, null, q);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"The file to upload does not exist: '{full}'.", full, e);
        }
    }

    /// <summary><paramref name="headers"/> with <c>quicsend-overwrite: ?1</c> added when <paramref name="overwrite"/>.</summary>
    internal static List<KeyValuePair<string, string>> OverwriteHeader(bool overwrite, List<KeyValuePair<string, string>> headers)
    {
        if (overwrite) headers.Add(new(QuicSendHeaders.Overwrite, "?1"));
        return headers;
    }

    /// <summary>Checks the server's answer to a whole upload (or a striped upload's commit) against what was sent.</summary>
    private static async Task<FileTransferResult> UploadAnsweredAsync(QuicSendResponse response, string full, string remoteName, long length,
        string? sentHash, Stopwatch sw, CancellationToken cancellationToken)
    {
        using (response)
        {
            if (!response.IsSuccess)
                throw await RefusalAsync(response, $"Uploading '{full}' as '{remoteName}'", cancellationToken).ConfigureAwait(false);
            var (storedLength, storedHash) = ParseInfo(response.HeaderInfo);
            if (sentHash is null || (storedHash is not null && !string.Equals(storedHash, sentHash, StringComparison.OrdinalIgnoreCase))
                || (storedLength is long sl && sl != length))
                throw new InvalidDataException($"The server acknowledged '{remoteName}' with {storedLength} bytes and SHA-256 {storedHash}, " +
                                               $"but {length} bytes with SHA-256 {sentHash} were sent.");
            return new FileTransferResult
            {
                Direction = FileTransferDirection.Upload,
                Name = remoteName,
                Path = full,
                Status = response.Status,
                Succeeded = true,
                Message = $"Uploaded '{full}' as '{remoteName}'.",
                Length = length,
                Sha256 = sentHash,
                Elapsed = sw.Elapsed,
            };
        }
    }

    private static FileStream OpenForUpload(string full)
    {
        if (Directory.Exists(full)) throw new ArgumentException($"The path to upload, '{full}', is a folder; give a file.", "localPath");
        if (!File.Exists(full)) throw new FileNotFoundException($"The file to upload does not exist: '{full}'.", full);
        try
        {
            return new FileStream(full, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read,
                BufferSize = 0,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnauthorizedAccessException($"The file to upload cannot be read: '{full}' ({e.Message}).", e);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"The file to upload does not exist: '{full}'.", full, e);
        }
    }

    /// <summary>
    /// Downloads <paramref name="remoteName"/> (GET /files/&lt;name&gt;) to <paramref name="localPath"/>:
    /// written to a temporary file beside it while hashing, checked against the server's SHA-256
    /// trailer, flushed to disk and only then renamed to <paramref name="localPath"/> (replacing any
    /// file there). On failure or cancellation nothing is left at <paramref name="localPath"/>.
    /// <paramref name="progress"/> gets the bytes written, at least every MiB.
    /// </summary>
    /// <exception cref="FileTransferException">The server refused (e.g. 404 with its message), or the transfer broke off.</exception>
    /// <exception cref="InvalidDataException">What arrived does not match the server's SHA-256 or length.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="localPath"/> does not exist.</exception>
    public static async Task<FileTransferResult> DownloadFileAsync(this QuicSendClient client, string remoteName, string localPath,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(localPath);
        CheckName(remoteName, nameof(remoteName));
        remoteName = NormalizeName(remoteName); // the server stores and reports the NFC spelling
        var full = Path.GetFullPath(localPath);
        if (Path.EndsInDirectorySeparator(localPath) || Directory.Exists(full))
            throw new ArgumentException($"The download target '{full}' is a folder; give the path of the file to write.", nameof(localPath));
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder to download into does not exist: '{dir}'.");

        var sw = Stopwatch.StartNew();
        if (client.Pool.Usable().Count > 1 || client.Options.ResumableTransfers)
        {
            try
            {
                if (await StripedTransfer.DownloadAsync(client, remoteName, full, progress, cancellationToken).ConfigureAwait(false) is var (sl, ss, resumed))
                    return new FileTransferResult
                    {
                        Direction = FileTransferDirection.Download, Name = remoteName, Path = full, Status = 206, Succeeded = true,
                        Message = $"Downloaded '{remoteName}' to '{full}' over {client.Pool.Usable().Count} connection(s)" +
                                  (resumed > 0 ? $", resuming with {resumed} bytes kept from an earlier attempt." : "."),
                        Length = sl, Sha256 = ss, Elapsed = sw.Elapsed, ResumedBytes = resumed,
                    };
            }
            catch (QuicException q) when (!cancellationToken.IsCancellationRequested)
            {
                throw new FileTransferException($"Downloading '{remoteName}' failed: {q.Message} '{full}' was not written.", 0, null, q);
            }
        }
        QuicSendResponse response;
        try
        {
            response = await client.SendAsync("GET", PathFor(remoteName), null, null, null, 0, cancellationToken).ConfigureAwait(false);
        }
        catch (QuicException q) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FileTransferException($"Downloading '{remoteName}' failed: {q.Message}", 0, null, q);
        }
        using (response)
        {
            if (!response.IsSuccess)
                throw await RefusalAsync(response, $"Downloading '{remoteName}'", cancellationToken).ConfigureAwait(false);
            var (announced, _) = ParseInfo(response.HeaderInfo);
            try
            {
                var (length, sha) = await ReceiveToFileAsync(response.Body, response.ReadTrailersAsync, full, announced ?? response.ContentLength,
                    announced ?? response.ContentLength ?? 0, progress, $"The download of '{remoteName}'", $"'{full}' was not written.", cancellationToken).ConfigureAwait(false);
                return new FileTransferResult
                {
                    Direction = FileTransferDirection.Download,
                    Name = remoteName,
                    Path = full,
                    Status = response.Status,
                    Succeeded = true,
                    Message = $"Downloaded '{remoteName}' to '{full}'.",
                    Length = length,
                    Sha256 = sha,
                    Elapsed = sw.Elapsed,
                };
            }
            catch (FileIntegrityException e)
            {
                throw new InvalidDataException(e.Message, e);
            }
            catch (QuicException q) when (!cancellationToken.IsCancellationRequested)
            {
                throw new FileTransferException($"The download of '{remoteName}' broke off: {q.Message} '{full}' was not written.", 0, null, q);
            }
        }
    }

    /// <summary>A server's refusal as an exception carrying its status and message.</summary>
    internal static async Task<FileTransferException> RefusalAsync(QuicSendResponse response, string what, CancellationToken cancellationToken)
    {
        // The text is what arrived: a server that refuses may close the connection right after its answer, and
        // the close can overtake the end of the body, so a read that fails keeps the bytes before it.
        var bytes = new byte[64 * 1024];
        int got = 0;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(10));
            int n;
            while (got < bytes.Length && (n = await response.Body.ReadAsync(bytes.AsMemory(got), cts.Token).ConfigureAwait(false)) > 0) got += n;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or OperationCanceledException or ObjectDisposedException) { }
        string? message = got > 0 ? Encoding.UTF8.GetString(bytes, 0, got).Trim() : null;
        var status = response.Status.ToString(CultureInfo.InvariantCulture);
        var text = string.IsNullOrEmpty(message) ? WithStatus(response.Status, "(no message)")
            : message.StartsWith(status, StringComparison.Ordinal) ? message : WithStatus(response.Status, message);
        return new FileTransferException($"{what} failed: the server answered {text}", response.Status, message);
    }
}
