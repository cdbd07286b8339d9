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
