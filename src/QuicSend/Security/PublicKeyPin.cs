namespace QuicSend.Security;

/// <summary>Reads public key pins in curl's notation: <c>sha256//BASE64</c>, bare base64, or several joined with ';'.</summary>
internal static class PublicKeyPin
{
    internal const string Prefix = "sha256//";

    /// <summary>The 32-byte SHA-256 hashes in <paramref name="entry"/>; throws naming the entry when one is malformed.</summary>
    internal static IEnumerable<byte[]> Parse(string entry)
    {
        if (string.IsNullOrWhiteSpace(entry))
            throw new QuicConfigurationException("A public key pin is empty: expected sha256//BASE64 (base64 of the SHA-256 of the server's SubjectPublicKeyInfo).");
        var hashes = new List<byte[]>();
        foreach (var part in entry.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var text = part.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) ? part[Prefix.Length..] : part;
            byte[] hash;
            try
            {
                hash = Convert.FromBase64String(text);
            }
            catch (FormatException)
            {
                throw new QuicConfigurationException(
                    $"The public key pin '{part}' is not valid base64: expected sha256//BASE64, as CertificateTool.GetPublicKeyPin or " +
                    "'openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64' print it.");
            }
            if (hash.Length != 32)
                throw new QuicConfigurationException(
                    $"The public key pin '{part}' decodes to {hash.Length} bytes; a SHA-256 pin is 32 bytes (44 base64 characters ending in '=').");
            hashes.Add(hash);
        }
        return hashes;
    }
}
