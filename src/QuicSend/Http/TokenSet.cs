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
    public bool Authorizes(string? authorization) => Authorizes(authorization, acceptDoubledPrefix: false);

    /// <summary>
    /// Checks an authorization header value of the form "Bearer &lt;token&gt;"; with
    /// <paramref name="acceptDoubledPrefix"/>, "Bearer Bearer &lt;token&gt;" is accepted as well (the
    /// original quicsend client adds the prefix twice on requests with a body). Both readings are
    /// then checked every time, so the work done does not depend on which form arrived.
    /// </summary>
    public bool Authorizes(string? authorization, bool acceptDoubledPrefix)
    {
        if (authorization is null || !authorization.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            // Same work as a well-formed header, always false.
            bool none = Contains(null);
            if (acceptDoubledPrefix) none |= Contains(null);
            return none;
        }
        var once = authorization[Prefix.Length..].Trim();
        bool found = Contains(once);
        if (acceptDoubledPrefix)
            found |= once.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) ? Contains(once[Prefix.Length..].Trim()) : Contains(null);
        return found;
    }

    /// <summary>True when the header carries the bearer prefix twice ("Bearer Bearer …"), as the original quicsend client's requests with a body do.</summary>
    internal static bool HasDoubledPrefix(string? authorization) =>
        authorization is not null && authorization.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
        && authorization[Prefix.Length..].TrimStart().StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    private const string Prefix = "Bearer ";

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
