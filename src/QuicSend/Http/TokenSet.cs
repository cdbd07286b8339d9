using System.Security.Cryptography;
using System.Text;

namespace QuicSend.Http;

/// <summary>
/// Accepted bearer tokens. Checks compare SHA-256 digests in constant time and
/// always visit every token, so neither a token's content nor its length nor
/// its position in the set can be learned from timing. Several tokens may be
/// live at once so they can be rotated.
/// </summary>
public sealed class TokenSet
{
    private volatile byte[][] _digests;

    public TokenSet(IEnumerable<string> tokens) => _digests = tokens.Select(Digest).ToArray();

    public int Count => _digests.Length;

    /// <summary>Compares two digests; tests substitute a counting comparison to see every token visited.</summary>
    internal Func<byte[], byte[], bool> DigestsEqual { get; init; } = (a, b) => CryptographicOperations.FixedTimeEquals(a, b);

    public void Add(string token) => _digests = [.. _digests, Digest(token)];

    public void Remove(string token)
    {
        var d = Digest(token);
        _digests = _digests.Where(x => !CryptographicOperations.FixedTimeEquals(x, d)).ToArray();
    }

    /// <summary>True when <paramref name="token"/> is one of the accepted tokens.</summary>
    public bool Contains(string? token)
    {
        var candidate = Digest(token ?? "");
        bool found = false;
        foreach (var d in _digests)
            found |= DigestsEqual(d, candidate); // no early exit
        return found && token is not null;
    }

    /// <summary>Checks an authorization header value of the form "Bearer &lt;token&gt;".</summary>
    public bool Authorizes(string? authorization)
    {
        const string prefix = "Bearer ";
        if (authorization is null || !authorization.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return Contains(null); // same work, always false
        return Contains(authorization[prefix.Length..].Trim());
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
