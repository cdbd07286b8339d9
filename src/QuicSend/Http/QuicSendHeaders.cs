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

    // Striped transfers (docs/striping.md): standard HTTP range requests for downloads…
    public const string Range = "range";
    public const string ContentRange = "content-range";
    public const string AcceptRanges = "accept-ranges";
    public const string ETag = "etag";
    public const string IfMatch = "if-match";
    /// <summary>RFC 9530: the client asks for the whole file's digest (<c>sha-256</c>)…</summary>
    public const string WantReprDigest = "want-repr-digest";
    /// <summary>…and the server gives it as <c>sha-256=:BASE64:</c>.</summary>
    public const string ReprDigest = "repr-digest";
    // …and chunk uploads grouped by an upload id, then committed with the whole file's SHA-256.
    public const string UploadId = "quicsend-upload-id";
    public const string UploadLength = "quicsend-upload-length";
    public const string UploadCommit = "quicsend-upload-commit";
    /// <summary>The server's answer to a resuming client: the byte ranges of an upload it holds, verified.</summary>
    public const string UploadReceived = "quicsend-upload-received";
    /// <summary>
    /// An upload (or a striped upload's chunks and commit) that may replace an existing file says so with
    /// <c>quicsend-overwrite: ?1</c> (an RFC 9651 boolean); without it the server answers 409 when the name is taken.
    /// </summary>
    public const string Overwrite = "quicsend-overwrite";
    /// <summary>RFC 9110 §10.2.3: seconds to wait before asking again (with 429).</summary>
    public const string RetryAfter = "retry-after";

    public const string OctetStream = "application/octet-stream";
    public const string Text = "text/plain";
    public const string MessagePack = "application/msgpack";
}
