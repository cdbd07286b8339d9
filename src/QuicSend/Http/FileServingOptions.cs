namespace QuicSend.Http;

/// <summary>
/// How a <see cref="QuicSendServer"/> serves files (<see cref="FileTransfer.ServeDirectoryAsync"/>,
/// <see cref="FileTransfer.HandleRequestAsync"/>, and <c>ServeDownloadAsync</c> / <c>ReceiveUploadAsync</c> called
/// directly, which are held to the same bounds): per-client bounds, disk reservation, upload sessions.
/// Set through <see cref="QuicSendServerOptions.FileTransfers"/>; docs/operations.md §7 lists them.
/// </summary>
public sealed class FileServingOptions
{
    /// <summary>
    /// The most that all uploads in progress on this server reserve on disk together (posix_fallocate)
    /// before their bytes arrive; each takes what its announced length needs from what is left, and
    /// the rest of a file is allocated as it is written. So clients announcing huge lengths and sending
    /// nothing cannot take the disk. An upload longer than the free space is refused with 507 up front
    /// whatever this is, and no upload reserves more than half the free space. 0 reserves nothing. Default 256 MiB.
    /// </summary>
    public long MaxPreallocationSize { get; set; } = 256L << 20;

    /// <summary>
    /// File requests (downloads, uploads, chunks, HEAD) one connection may have in progress at once; more
    /// are answered 429 with <c>retry-after</c>. Each holds an open file and up to 2 MiB of buffers. A
    /// striped client has at most three in flight per connection. Default 16; 0 means no limit.
    /// </summary>
    public int MaxTransfersPerConnection { get; set; } = 16;

    /// <summary>
    /// File requests all connections presenting one token may have in progress at once; more are answered
    /// 429. Off (0) by default: one token is often shared by a whole fleet of machines.
    /// </summary>
    public int MaxTransfersPerToken { get; set; }

    /// <summary>
    /// A striped-upload session that receives no chunk for this long is dropped with its partial file, and
    /// partial files in the served folder that no session owns are deleted once untouched this long. Null
    /// uses <see cref="FileTransfer.UploadSessionIdleTimeout"/> (10 minutes) as it is when the server starts.
    /// </summary>
    public TimeSpan? UploadSessionIdleTimeout { get; set; }

    internal void Validate()
    {
        if (MaxPreallocationSize < 0)
            throw new QuicConfigurationException($"FileTransfers.MaxPreallocationSize is {MaxPreallocationSize}: give 0 (reserve nothing) or a positive number of bytes.");
        if (MaxTransfersPerConnection < 0)
            throw new QuicConfigurationException($"FileTransfers.MaxTransfersPerConnection is {MaxTransfersPerConnection}: give 0 (no limit) or a positive count.");
        if (MaxTransfersPerToken < 0)
            throw new QuicConfigurationException($"FileTransfers.MaxTransfersPerToken is {MaxTransfersPerToken}: give 0 (no limit) or a positive count.");
        if (UploadSessionIdleTimeout is { } t && t <= TimeSpan.Zero)
            throw new QuicConfigurationException($"FileTransfers.UploadSessionIdleTimeout is {t}: give a positive time, or null for the default.");
    }
}
