namespace QuicSend.Http;

/// <summary>Which way a file moved, seen from the client.</summary>
public enum FileTransferDirection
{
    /// <summary>Client to server (PUT or POST /files/&lt;name&gt;).</summary>
    Upload,

    /// <summary>Server to client (GET /files/&lt;name&gt;).</summary>
    Download,
}

/// <summary>
/// The outcome of one file transfer: what a client's <c>UploadFileAsync</c> / <c>DownloadFileAsync</c>
/// returns on success, and what the server handlers return for every request (refused ones too),
/// for logging.
/// </summary>
public sealed class FileTransferResult
{
    public required FileTransferDirection Direction { get; init; }

    /// <summary>The file's name on the server (the part after /files/).</summary>
    public required string Name { get; init; }

    /// <summary>The local file: the client's file, or on the server the stored or served file. Null when refused.</summary>
    public string? Path { get; init; }

    /// <summary>The HTTP status answered (server) or received (client); 0 when no answer could be given.</summary>
    public int Status { get; init; }

    /// <summary>True when the whole file arrived, matched its SHA-256 and (for a receiver) was kept.</summary>
    public bool Succeeded { get; init; }

    /// <summary>What happened, in words (the text sent to the client when the server refused).</summary>
    public string Message { get; init; } = "";

    /// <summary>Bytes moved (the file's size when <see cref="Succeeded"/>).</summary>
    public long Length { get; init; }

    /// <summary>The verified SHA-256 of the file in lowercase hex, when <see cref="Succeeded"/>.</summary>
    public string? Sha256 { get; init; }

    /// <summary>Bytes a resumed transfer did not move again: kept from an earlier, interrupted attempt (see <see cref="QuicSendClientOptions.ResumableTransfers"/>).</summary>
    public long ResumedBytes { get; init; }

    /// <summary>Time from the start of the request to the verified file.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Throughput over <see cref="Elapsed"/>.</summary>
    public double MiBPerSecond => Elapsed > TimeSpan.Zero ? Length / 1048576.0 / Elapsed.TotalSeconds : 0;

    public override string ToString() => Succeeded
        ? $"{Direction} of '{Name}' done: {Length} bytes in {Elapsed.TotalSeconds:0.00} s ({MiBPerSecond:0} MiB/s), SHA-256 {Sha256}"
        : $"{Direction} of '{Name}' failed ({(Status == 0 ? "no answer" : Status.ToString(System.Globalization.CultureInfo.InvariantCulture))}): {Message}";
}

/// <summary>
/// A file transfer the server refused (<see cref="StatusCode"/> and its message, e.g. 404 for a
/// missing file, 400 for a bad name, 422 for an upload whose SHA-256 did not match), or one that
/// broke off (<see cref="StatusCode"/> 0, the cause in <see cref="Exception.InnerException"/>).
/// </summary>
public sealed class FileTransferException : IOException
{
    public FileTransferException(string message, int statusCode = 0, string? serverMessage = null, Exception? inner = null)
        : base(message, inner)
    {
        StatusCode = statusCode;
        ServerMessage = serverMessage;
    }

    /// <summary>The server's HTTP status, or 0 when the transfer broke off without one.</summary>
    public int StatusCode { get; }

    /// <summary>The text the server sent with its refusal, if any.</summary>
    public string? ServerMessage { get; }

    /// <summary>The source changed while it was being transferred: nothing of it may be kept or resumed.</summary>
    internal bool SourceChanged { get; init; }
}

/// <summary>
/// A received body that cannot be trusted: wrong or missing hash, wrong length. Status is what a
/// server answers; a client turns it into an <see cref="InvalidDataException"/>.
/// </summary>
internal sealed class FileIntegrityException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
