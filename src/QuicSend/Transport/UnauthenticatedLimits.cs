namespace QuicSend.Transport;

/// <summary>
/// Bounds on what peers that have not authenticated can make a server hold. A request authenticates
/// with its header section (the token travels in it), so until a connection's first request is
/// accepted, each request stream whose header section has not arrived whole costs memory on the
/// peer's word alone. The server counts that memory per connection, per peer IP address and in total,
/// and refuses the streams over a limit or older than <see cref="HeaderTimeout"/> with
/// H3_REQUEST_REJECTED (a client may retry them), freeing what they held. An honest client's header
/// section arrives in one datagram and never counts. Once a connection has authenticated, these limits
/// no longer apply to it: its flow-control windows and the server's per-client limits bound it.
/// </summary>
public sealed record UnauthenticatedLimits
{
    /// <summary>How long a request's header section may take to arrive whole. Default 10 s.</summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Incomplete header sections one unauthenticated connection may have at once. Default 32.</summary>
    public int MaxIncompleteRequestsPerConnection { get; init; } = 32;

    /// <summary>Bytes held for one unauthenticated connection's incomplete requests. Default 1 MiB.</summary>
    public long MaxBytesPerConnection { get; init; } = 1L << 20;

    /// <summary>Bytes held for all unauthenticated connections from one IP address. Default 8 MiB.</summary>
    public long MaxBytesPerAddress { get; init; } = 8L << 20;

    /// <summary>Bytes held for all unauthenticated connections together. Default 64 MiB.</summary>
    public long MaxBytesTotal { get; init; } = 64L << 20;

    internal void Validate()
    {
        static void Positive(long v, string name)
        {
            if (v <= 0)
                throw new QuicConfigurationException($"UnauthenticatedLimits.{name} must be positive (it is {v}); leave it unset for its default.");
        }
        if (HeaderTimeout < TimeSpan.FromMilliseconds(1))
            throw new QuicConfigurationException($"UnauthenticatedLimits.HeaderTimeout must be at least 1 ms (it is {HeaderTimeout}); leave it unset for 10 s.");
        Positive(MaxIncompleteRequestsPerConnection, nameof(MaxIncompleteRequestsPerConnection));
        Positive(MaxBytesPerConnection, nameof(MaxBytesPerConnection));
        Positive(MaxBytesPerAddress, nameof(MaxBytesPerAddress));
        Positive(MaxBytesTotal, nameof(MaxBytesTotal));
    }
}
