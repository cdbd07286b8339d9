using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace QuicSend.Http;

/// <summary>
/// Files over QuicSend: streamed from and to disk in 1 MiB pieces (never held whole),
/// checked end to end with a SHA-256 computed while streaming and sent as the trailer
/// <c>quicsend-sha256</c>, and completed atomically: the receiver writes a temporary
/// <c>.&lt;name&gt;.&lt;random&gt;.partial</c> beside the target, flushes it to disk and renames it
/// over the target only once it is complete and verified. A failed, cancelled or corrupted
/// transfer leaves nothing at the target name.
/// <para>
/// Wire convention: <c>PUT</c> (or <c>POST</c>) <c>/files/&lt;name&gt;</c> uploads, <c>GET /files/&lt;name&gt;</c>
/// downloads; the name is percent-encoded and must be a plain file name (see <see cref="ValidateName"/>).
/// Successful answers carry <c>quicsend-header-info</c> JSON <c>{"name":..,"length":..,"sha256":..}</c>.
/// </para>
/// Client side: <see cref="UploadFileAsync"/> and <see cref="DownloadFileAsync"/> (extension methods of
/// <see cref="QuicSendClient"/>). Server side: <see cref="ReceiveUploadAsync(QuicSendRequest, string, CancellationToken)"/>,
/// <see cref="ServeDownloadAsync(QuicSendRequest, string, CancellationToken)"/>, <see cref="HandleRequestAsync"/>
/// and <see cref="ServeDirectoryAsync"/>.
/// </summary>
public static partial class FileTransfer
{
    /// <summary>The path prefix of file requests.</summary>
    public const string RoutePrefix = "/files/";

    /// <summary>The size of the pieces files are read, hashed, sent and written in.</summary>
    public const int BufferSize = 1 << 20;

    private const int MaxNameBytes = 255;
    private const int EISDIR = 21; // Linux errno; .NET puts errno in IOException.HResult on Unix
    internal const string PartialSuffix = ".partial";

    /// <summary>
    /// Checks that <paramref name="name"/> is a plain file name a server may store under its folder:
    /// not empty, not "." or "..", no '/' or '\' (so no folders and no path traversal), no ':' (drive
    /// or stream names elsewhere), no control characters, not starting with '.' (hidden files and the
    /// receivers' partial files), at most 255 bytes of UTF-8; and, so the folder stays safe to show and to copy to
    /// Windows: no Unicode format characters (bidi controls, zero-width characters), not ending in a space or '.',
    /// not a Windows device name (CON, PRN, AUX, NUL, COM1–9, LPT1–9, with or without an extension). The name is checked in its NFC form, the one it is stored
    /// under (see <see cref="NormalizeName"/>). Returns why not, or null when it is fine.
    /// </summary>
    public static string? ValidateName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "The file name is empty.";
        if (!IsValidUnicode(name)) return $"The file name '{Printable(name)}' is not valid Unicode (it has a lone surrogate); it was refused.";
        name = NormalizeName(name);
        if (name is "." or "..") return $"'{name}' is not a file name: path traversal is refused.";
        if (name.Contains('/') || name.Contains('\\'))
            return $"The file name '{Printable(name)}' contains '/' or '\\': only plain file names are accepted (no folders, no path traversal).";
        if (Path.IsPathRooted(name) || name.Contains(':'))
            return $"The file name '{Printable(name)}' looks like an absolute path or contains ':': only plain file names are accepted.";
        foreach (var ch in name)
            if (char.IsControl(ch)) return $"The file name '{Printable(name)}' contains control characters.";
        if (name[0] == '.') return $"The file name '{name}' starts with '.': such names are reserved (hidden and partial files).";
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes) return $"The file name is longer than {MaxNameBytes} bytes.";
        // The rest keep names safe to show and to copy to other systems (the served folder may be shared with Windows).
        foreach (var rune in name.EnumerateRunes())
            // Zero-width non-joiner and joiner (U+200C, U+200D) are part of how Persian, Indic scripts and emoji are
            // spelled; every other format character (bidi controls, zero-width space, ...) is refused.
            if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format && rune.Value is not (0x200C or 0x200D))
                return $"The file name '{Printable(name)}' contains the invisible formatting character U+{rune.Value:X4} (bidi controls and zero-width " +
                       "characters make a name look like another); it was refused.";
        if (name[^1] is ' ' or '.')
            return $"The file name '{name}' ends with {(name[^1] == ' ' ? "a space" : "'.'")}, which Windows drops (it would become another name); it was refused.";
        if (IsWindowsDeviceName(name))
            return $"The file name '{name}' is a Windows device name ({WindowsStem(name).ToUpperInvariant()}, with or without an extension), " +
                   "which cannot be a file there; it was refused.";
        return null;
    }

    private static readonly HashSet<string> s_windowsDevices = new(StringComparer.OrdinalIgnoreCase)
    {
        "CON", "PRN", "AUX", "NUL",
        "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
        // Windows reserves the superscript digits too.
        "COM\u00B9", "COM\u00B2", "COM\u00B3", "LPT\u00B9", "LPT\u00B2", "LPT\u00B3",
    };

    // Windows looks at the part before the first '.', ignoring spaces before it: "con.txt" and "CON .tar.gz" are the device.
    private static string WindowsStem(string name) => (name.IndexOf('.') is var dot and >= 0 ? name[..dot] : name).TrimEnd(' ');

    private static bool IsWindowsDeviceName(string name) => s_windowsDevices.Contains(WindowsStem(name));

    /// <summary>
    /// The one spelling a name is stored and asked for under: Unicode NFC, so "é" typed as U+00E9 and as "e" + U+0301
    /// (as macOS spells file names) are one file, not two that look alike. Invalid Unicode is returned as it is
    /// (<see cref="ValidateName"/> refuses it).
    /// </summary>
    public static string NormalizeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return IsValidUnicode(name) ? name.Normalize(NormalizationForm.FormC) : name;
    }

    private static bool IsValidUnicode(string s)
    {
        for (int i = 0; i < s.Length; i += Rune.TryGetRuneAt(s, i, out var r) ? r.Utf16SequenceLength : 1)
            if (!Rune.TryGetRuneAt(s, i, out _)) return false;
        return true;
    }

    private static void CheckName(string name, string parameter)
    {
        ArgumentNullException.ThrowIfNull(name, parameter);
        if (ValidateName(name) is string why) throw new ArgumentException(why, parameter);
    }

    private static string Printable(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s)
            if (char.IsControl(ch)) sb.Append('?');
            // Shown, not obeyed: a bidi override would reorder the message itself.
            else if (char.GetUnicodeCategory(ch) == UnicodeCategory.Format) sb.Append($"<U+{(int)ch:X4}>");
            else sb.Append(ch);
        return sb.ToString();
    }

    /// <summary>The request path for a file name: <c>/files/</c> and the name percent-encoded.</summary>
    public static string PathFor(string name)
    {
        CheckName(name, nameof(name));
        return RoutePrefix + Uri.EscapeDataString(NormalizeName(name));
    }

    /// <summary>The (decoded, NFC-normalised, not yet validated) name in a request path <c>/files/&lt;name&gt;</c>, or null for another path.</summary>
    public static string? NameFromPath(string path)
    {
        int q = path.IndexOfAny(['?', '#']);
        if (q >= 0) path = path[..q];
        if (!path.StartsWith(RoutePrefix, StringComparison.Ordinal)) return null;
        return NormalizeName(Uri.UnescapeDataString(path[RoutePrefix.Length..]));
    }

    /// <summary>A temporary name beside <paramref name="finalPath"/>: <c>.&lt;name&gt;.&lt;random or id&gt;.partial</c>, the name shortened to fit.</summary>
    internal static string TemporaryPathFor(string finalPath, string? id = null)
    {
        var dir = Path.GetDirectoryName(finalPath)!;
        var name = Path.GetFileName(finalPath);
        // Keep the temporary name within the file system's 255-byte limit (the id is at most 64).
        var shortened = new StringBuilder();
        int bytes = 0;
        foreach (var rune in name.EnumerateRunes())
        {
            bytes += rune.Utf8SequenceLength;
            if (bytes > 180) break;
            shortened.Append(rune.ToString());
        }
        id ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        return Path.Combine(dir, $".{shortened}.{id}{PartialSuffix}");
    }

    internal static void DeleteQuietly(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Reads <paramref name="source"/> to its end (or <paramref name="limit"/> bytes) in 1 MiB pieces, hashing each and handing it to
    /// <paramref name="sink"/>; the next piece is read while the previous one is being written.
    /// Reports the bytes written after each piece. Returns the total.
    /// </summary>
    private static async Task<long> PumpAsync(Stream source, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink,
        IncrementalHash sha, IProgress<long>? progress, CancellationToken cancellationToken, long limit = long.MaxValue)
    {
        var current = ArrayPool<byte>.Shared.Rent(BufferSize);
        var other = ArrayPool<byte>.Shared.Rent(BufferSize);
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task writing = Task.CompletedTask;
        long total = 0, written = 0;
        try
        {
            while (true)
            {
                int n = await FillAsync(source, current.AsMemory(0, (int)Math.Min(BufferSize, limit - total)), cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                sha.AppendData(current, 0, n);
                await writing.ConfigureAwait(false);
                if (total != written)
                {
                    written = total;
                    progress?.Report(written);
                }
                writing = sink(current.AsMemory(0, n), stopWriting.Token).AsTask();
                total += n;
                (current, other) = (other, current);
            }
            await writing.ConfigureAwait(false);
            progress?.Report(total);
            return total;
        }
        catch
        {
            // Never leave a write running on a buffer that goes back to the pool.
            stopWriting.Cancel();
            try { await writing.ConfigureAwait(false); } catch { }
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(current);
            ArrayPool<byte>.Shared.Return(other);
        }
    }

    /// <summary>
    /// Feeds bytes [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of a file to
    /// <paramref name="sha"/>, read in 1 MiB pieces; stops early at the file's end. Returns how many were read.
    /// </summary>
    internal static async Task<long> HashFileRangeAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, IncrementalHash sha,
        long first, long count, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long done = 0;
            while (done < count)
            {
                int n = await RandomAccess.ReadAsync(file, buffer.AsMemory(0, (int)Math.Min(BufferSize, count - done)), first + done, cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                sha.AppendData(buffer, 0, n);
                done += n;
            }
            return done;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Reads <paramref name="body"/> to its end in 1 MiB pieces, hashing each and writing it into <paramref name="file"/>
    /// at <paramref name="offset"/> onward (a piece of a striped transfer), telling <paramref name="onBytes"/> of each.
    /// Stops without writing at the first piece that would go past <paramref name="max"/> bytes (<c>Overflow</c>).
    /// </summary>
    internal static async Task<(long Got, string Sha256, bool Overflow)> ReceiveIntoFileAsync(Stream body,
        Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, long max, Action<int>? onBytes, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long got = 0;
            while (true)
            {
                int n = await FillAsync(body, buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                if (got + n > max) return (got, "", true);
                sha.AppendData(buffer, 0, n);
                await RandomAccess.WriteAsync(file, buffer.AsMemory(0, n), offset + got, cancellationToken).ConfigureAwait(false);
                got += n;
                onBytes?.Invoke(n);
            }
            return (got, Convert.ToHexStringLower(sha.GetHashAndReset()), false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends (network reads come in small pieces).</summary>
    private static async ValueTask<int> FillAsync(Stream source, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = await source.ReadAsync(buffer[filled..], cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }

    /// <summary>
    /// Writes a body to a temporary file beside <paramref name="finalPath"/> while hashing it, checks
    /// its length and its <c>quicsend-sha256</c> trailer, flushes it to disk and renames it over
    /// <paramref name="finalPath"/>. On any failure or cancellation the temporary file is deleted and
    /// nothing appears at <paramref name="finalPath"/>. Integrity failures throw <see cref="FileIntegrityException"/>, as does
    /// an existing <paramref name="finalPath"/> when <paramref name="refuseExisting"/> (the message) is given;
    /// <paramref name="reserve"/> bytes are reserved on disk first (a full disk throws <see cref="DiskFullException"/>).
    /// </summary>
    private static async Task<(long Length, string Sha256)> ReceiveToFileAsync(Stream body,
        Func<CancellationToken, ValueTask<IReadOnlyList<KeyValuePair<string, string>>>> readTrailers,
        string finalPath, long? expectedLength, long reserve, IProgress<long>? progress, string subject, string notKept,
        CancellationToken cancellationToken, string? temp = null, string? refuseExisting = null)
    {
        temp ??= TemporaryPathFor(finalPath);
        bool kept = false;
        try
        {
            long length;
            string ours;
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 0,
                Options = FileOptions.Asynchronous,
            };
            var file = new FileStream(temp, options);
            await using (file.ConfigureAwait(false))
            {
                // Reserve (part of) the space up front: a full disk fails now, not at 99 %, and says so with its errno.
                FileTransferDisk.Reserve(file.SafeFileHandle, reserve);
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long offset = 0, flushedTo = 0;
                async ValueTask WriteAsync(ReadOnlyMemory<byte> piece, CancellationToken ct)
                {
                    await file.WriteAsync(piece, ct).ConfigureAwait(false);
                    offset += piece.Length;
                    if (offset - flushedTo >= FileTransferDisk.Stride)
                    {
                        FileTransferDisk.StartWriteback(file.SafeFileHandle, flushedTo, offset - flushedTo);
                        flushedTo = offset;
                    }
                }
                length = await PumpAsync(body, WriteAsync, sha, progress, cancellationToken).ConfigureAwait(false);
                ours = Convert.ToHexStringLower(sha.GetHashAndReset());

                if (expectedLength is long expected && expected != length)
                    throw new FileIntegrityException(422, $"{subject} is incomplete: {length} bytes arrived, {expected} were announced. {notKept}");
                var trailers = await readTrailers(cancellationToken).ConfigureAwait(false);
                string? theirs = null;
                foreach (var (name, value) in trailers)
                    if (string.Equals(name, QuicSendHeaders.Sha256, StringComparison.OrdinalIgnoreCase)) theirs = value.Trim();
                if (theirs is null)
                    throw new FileIntegrityException(400, $"{subject} ended without its '{QuicSendHeaders.Sha256}' trailer, so it cannot be verified. {notKept}");
                if (theirs.Length != 64 || !theirs.All(Uri.IsHexDigit))
                    throw new FileIntegrityException(400, $"{subject} has a malformed '{QuicSendHeaders.Sha256}' trailer ('{Printable(theirs)}'; 64 hex digits expected). {notKept}");
                if (!string.Equals(theirs, ours, StringComparison.OrdinalIgnoreCase))
                    throw new FileIntegrityException(422, $"{subject} failed its SHA-256 check: the sender's '{QuicSendHeaders.Sha256}' trailer says {theirs.ToLowerInvariant()}, " +
                                                          $"the {length} bytes received hash to {ours}. {notKept}");
                file.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(temp, finalPath, overwrite: refuseExisting is null);
            }
            catch (IOException) when (refuseExisting is not null && Directory.Exists(finalPath))
            {
                // A folder made there meanwhile: the same failure (EISDIR) as replacing it would have met.
                throw new IOException($"Cannot replace the folder '{finalPath}' with a file.", EISDIR);
            }
            catch (IOException) when (refuseExisting is not null && EntryExists(finalPath))
            {
                throw new FileIntegrityException(409, refuseExisting);
            }
            kept = true;
            return (length, ours);
        }
        finally
        {
            if (!kept) DeleteQuietly(temp);
        }
    }

    /// <summary>quicsend-header-info of a successful answer: {"name":..,"length":..,"sha256":..}.</summary>
    private static string InfoJson(string name, long length, string? sha256)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteNumber("length", length);
            if (sha256 is not null) w.WriteString("sha256", sha256);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    private static (long? Length, string? Sha256) ParseInfo(string? headerInfo)
    {
        if (string.IsNullOrEmpty(headerInfo)) return (null, null);
        try
        {
            using var doc = JsonDocument.Parse(headerInfo);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, null);
            long? length = root.TryGetProperty("length", out var l) && l.TryGetInt64(out var v) ? v : null;
            string? sha = root.TryGetProperty("sha256", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            return (length, sha);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        507 => "Insufficient Storage",
        _ => "",
    };

    private static string WithStatus(int status, string message) =>
        $"{status.ToString(CultureInfo.InvariantCulture)} {Reason(status)}: {message}";
}
