namespace QuicSend.Http;

/// <summary>Header names and content types shared with the original quicsend, so ports mean the same on the wire.</summary>
public static class QuicSendHeaders
{
    public const string Authorization = "authorization";
    public const string HeaderInfo = "quicsend-header-info";
    public const string ContentType = "content-type";
    public const string ContentLength = "content-length";
    /// <summary>Trailer carrying the SHA-256 (hex) of a file body, checked before the file is kept.</summary>
    public const string Sha256 = "quicsend-sha256";

    public const string OctetStream = "application/octet-stream";
    public const string Text = "text/plain";
    public const string MessagePack = "application/msgpack";
}
