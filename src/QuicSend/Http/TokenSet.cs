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

    // Checks read the current array without a lock; changes build a new one under this lock, so two
    // changes at once cannot undo each other (a lost new token, or a revoked one accepted again).
    private readonly object _changing = new();

    /// <summary>Accepts <paramref name="token"/> from now on (safe while other threads check, add or remove).</summary>
    public void Add(string token)
    {
        var d = Digest(token);
        lock (_changing) _digests = [.. _digests, d];
    }

    /// <summary>Stops accepting <paramref name="token"/> (safe while other threads check, add or remove); a check
    /// that starts after this returns refuses it.</summary>
    public void Remove(string token)
    {
        var d = Digest(token);
        lock (_changing) _digests = _digests.Where(x => !CryptographicOperations.FixedTimeEquals(x, d)).ToArray();
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
