namespace QuicSend.Transport;

/// <summary>A snapshot of a connection's path and traffic.</summary>
public readonly record struct QuicConnectionStats(
    TimeSpan RoundTripTime,
    long CongestionWindow,
    long SentPackets,
    long LostPackets,
    long LostBytes,
    long CongestionEvents,
    long UdpBytesSent,
    long UdpBytesReceived,
    long DatagramsSent,
    long DatagramsReceived,
    int Mtu);

/// <summary>
/// An endpoint's connection attempts: accepted or started, Retry packets sent, refused, open now; and for a
/// server, what unauthenticated peers make it hold now and how many of their requests it refused
/// (see <see cref="UnauthenticatedLimits"/>).
/// </summary>
public readonly record struct QuicEndpointStats(long Connections, long RetriesSent, long Refused, long Open,
    long UnauthenticatedBytes = 0, long RefusedRequests = 0, long ResetsSent = 0);
