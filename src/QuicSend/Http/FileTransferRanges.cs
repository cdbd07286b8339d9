using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace QuicSend.Http;

// The server's side of striped downloads (docs/striping.md): standard HTTP range requests
// (RFC 9110 §14) with a strong ETag so that every piece comes from the same version of the file,
// and the whole file's SHA-256 as an RFC 9530 Repr-Digest.
public static partial class FileTransfer
{
    /// <summary>A byte range of a file: <paramref name="First"/> to <paramref name="Last"/> inclusive.</summary>
    internal readonly record struct ByteRange(long First, long Last)
    {
        public long Length => Last - First + 1;
    }

    /// <summary>
    /// Reads a <c>range</c> header against a file of <paramref name="length"/> bytes. A single
    /// <c>bytes=</c> range is honoured (<c>a-b</c>, <c>a-</c>, <c>-n</c>); anything else — several
    /// ranges, another unit, bad syntax — is ignored and the whole file served, as RFC 9110 §14.2
    /// allows. <paramref name="unsatisfiable"/> is set when the range starts past the end.
    /// </summary>
    internal static ByteRange? ParseRange(string? header, long length, out bool unsatisfiable)
    {
        unsatisfiable = false;
        if (header is null) return null;
        var h = header.Trim();
        if (!h.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return null;
        var spec = h[6..].Trim();
        if (spec.Contains(',')) return null;
        int dash = spec.IndexOf('-');
        if (dash < 0) return null;
        var a = spec[..dash].Trim();
        var b = spec[(dash + 1)..].Trim();
        const NumberStyles digits = NumberStyles.None;
        if (a.Length == 0)
        {
            // Suffix: the last n bytes.
            if (!long.TryParse(b, digits, CultureInfo.InvariantCulture, out var n)) return null;
            if (n == 0 || length == 0) { unsatisfiable = true; return null; }
            return new ByteRange(Math.Max(0, length - n), length - 1);
        }
        if (!long.TryParse(a, digits, CultureInfo.InvariantCulture, out var first)) return null;
        long last = length - 1;
        if (b.Length > 0)
        {
            if (!long.TryParse(b, digits, CultureInfo.InvariantCulture, out last) || last < first) return null;
            last = Math.Min(last, length - 1);
        }
        if (first >= length) { unsatisfiable = true; return null; }
        return new ByteRange(first, last);
    }

    /// <summary>
    /// A strong validator of the file's current version: its length and last write time (to the
    /// 100 ns the file system gives), so a rewrite or a replacement under the same name changes it.
    /// </summary>
    internal static string ETagOf(SafeFileHandle file) =>
        string.Create(CultureInfo.InvariantCulture, $"\"{RandomAccess.GetLength(file):x}-{File.GetLastWriteTimeUtc(file).Ticks:x}\"");

    /// <summary>Does an <c>if-match</c> header allow serving the version <paramref name="etag"/>? (Absent or <c>*</c>: yes.)</summary>
    internal static bool IfMatchAllows(string? ifMatch, string etag)
    {
        if (ifMatch is null) return true;
        foreach (var part in ifMatch.Split(','))
        {
            var tag = part.Trim();
            if (tag == "*" || tag == etag) return true;
        }
        return false;
    }

    /// <summary>Does a <c>want-repr-digest</c> header ask for SHA-256 (with a non-zero preference)?</summary>
    internal static bool WantsSha256(string? want)
    {
        if (want is null) return false;
        foreach (var part in want.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv[0].Trim().Equals("sha-256", StringComparison.OrdinalIgnoreCase) && (kv.Length < 2 || kv[1].Trim() != "0")) return true;
        }
        return false;
    }

    /// <summary><c>repr-digest</c> value for a SHA-256 in hex: <c>sha-256=:BASE64:</c>.</summary>
    internal static string ReprDigestOf(string sha256Hex) => $"sha-256=:{Convert.ToBase64String(Convert.FromHexString(sha256Hex))}:";

    /// <summary>The SHA-256 (hex) in a <c>repr-digest</c> header, or null when it has none.</summary>
    internal static string? Sha256FromReprDigest(string? header)
    {
        if (header is null) return null;
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2 || !kv[0].Trim().Equals("sha-256", StringComparison.OrdinalIgnoreCase)) continue;
            var v = kv[1].Trim();
            if (v.Length < 2 || v[0] != ':' || v[^1] != ':') return null;
            try
            {
                var bytes = Convert.FromBase64String(v[1..^1]);
                return bytes.Length == 32 ? Convert.ToHexStringLower(bytes) : null;
            }
            catch (FormatException) { return null; }
        }
        return null;
    }

    // Whole-file digests by (path, ETag): a striped download asks once per file version, and a
    // server serving one file to many clients hashes it once. Bounded; cleared when full.
    private static readonly ConcurrentDictionary<(string Path, string ETag), string> s_digests = new();
    private const int MaxCachedDigests = 1024;

    /// <summary>
    /// The SHA-256 of the whole file, read from disk in 1 MiB pieces (or remembered for this version).
    /// Null when the file changed while it was being hashed (its ETag moved): no digest is better than a wrong one.
    /// </summary>
    internal static async Task<string?> WholeFileSha256Async(string path, SafeFileHandle file, string etag, CancellationToken cancellationToken)
    {
        if (s_digests.TryGetValue((path, etag), out var known)) return known;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await HashFileRangeAsync(file, sha, 0, long.MaxValue, cancellationToken).ConfigureAwait(false); // to the end
        if (ETagOf(file) != etag) return null;
        var hex = Convert.ToHexStringLower(sha.GetHashAndReset());
        if (s_digests.Count >= MaxCachedDigests) s_digests.Clear();
        s_digests[(path, etag)] = hex;
        return hex;
    }

    /// <summary>The whole file's digest if it is already known for this version (cheap: put on every 206).</summary>
    internal static string? KnownSha256(string path, string etag) => s_digests.TryGetValue((path, etag), out var hex) ? hex : null;
}
