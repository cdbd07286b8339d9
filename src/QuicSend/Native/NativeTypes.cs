using System.Runtime.InteropServices;

namespace QuicSend.Native;

// Mirrors of the blittable structs and constants in native/include/quicsend.h.
// NativeHeaderTests fails when these drift from the header.

/// <summary>QsAddr: family 4 or 6, port in host order, IPv4 in the first 4 bytes of Ip.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct QsAddr
{
    public ushort Family;
    public ushort Port;
    public uint FlowInfo;
    public uint ScopeId;
    public fixed byte Ip[16];
}

[StructLayout(LayoutKind.Sequential)]
internal struct QsEvent
{
    public uint Kind;
    public uint Detail;
    public ulong Conn;
    public ulong Stream;
    public ulong Code;
}

[StructLayout(LayoutKind.Sequential)]
internal struct QsTransmit
{
    public QsAddr To;
    public QsAddr From;
    public nuint Len;
    public nuint SegmentSize;
    public ulong DelayNs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct QsEndpointStats
{
    public ulong Connections;
    public ulong RetriesSent;
    public ulong Refused;
    public ulong Open;
    public ulong Dropped;
    public ulong UnauthenticatedBytes;
    public ulong RefusedRequests;
    public ulong ResetsSent;
}

[StructLayout(LayoutKind.Sequential)]
internal struct QsIntakeLimits
{
    public ulong HeaderTimeoutMs;
    public ulong MaxStreamsPerConnection;
    public ulong MaxBytesPerConnection;
    public ulong MaxBytesPerAddress;
    public ulong MaxBytesTotal;
}

[StructLayout(LayoutKind.Sequential)]
internal struct QsStats
{
    public ulong RttNs;
    public ulong Cwnd;
    public ulong SentPackets;
    public ulong LostPackets;
    public ulong LostBytes;
    public ulong CongestionEvents;
    public ulong UdpTxBytes;
    public ulong UdpRxBytes;
    public ulong UdpTxDatagrams;
    public ulong UdpRxDatagrams;
    public uint Mtu;
    public uint HandshakeDone;
    public ulong DeliveryRate;
}

internal static class QsConst
{
    public const int QS_OK = 0;
    public const int QS_DONE = -1;
    public const int QS_BLOCKED = -2;
    public const int QS_ERR_INVALID_ARGUMENT = -10;
    public const int QS_ERR_INVALID_STATE = -11;
    public const int QS_ERR_TLS_CONFIG = -12;
    public const int QS_ERR_STREAM_RESET = -13;
    public const int QS_ERR_CONNECTION_CLOSED = -14;
    public const int QS_ERR_CONNECT = -15;
    public const int QS_ERR_PANIC = -99;

    public const int QS_AF_INET = 4;
    public const int QS_AF_INET6 = 6;

    public const int QS_CC_BBR2 = 0;
    public const int QS_CC_CUBIC = 1;
    public const int QS_CC_RENO = 2;

    public const int QS_PACING_SLACK_NS = 250000;

    public const int QS_EVENT_CONNECTION_INCOMING = 1;
    public const int QS_EVENT_CONNECTED = 2;
    public const int QS_EVENT_HANDSHAKE_FAILED = 3;
    public const int QS_EVENT_CONNECTION_CLOSED = 4;
    public const int QS_EVENT_CONNECTION_DRAINED = 5;
    public const int QS_EVENT_STREAM_OPENED = 6;
    public const int QS_EVENT_STREAM_READABLE = 7;
    public const int QS_EVENT_STREAM_WRITABLE = 8;
    public const int QS_EVENT_STREAM_FINISHED = 9;
    public const int QS_EVENT_STREAM_STOPPED = 10;
    public const int QS_EVENT_STREAMS_AVAILABLE = 11;
    public const int QS_EVENT_H3_HEADERS = 12;
    public const int QS_EVENT_H3_DATA = 13;
    public const int QS_EVENT_H3_RESET = 14;
    public const int QS_EVENT_H3_GOAWAY = 15;

    public const int QS_CLOSE_TIMED_OUT = 1;
    public const int QS_CLOSE_LOCAL = 2;
    public const int QS_CLOSE_APPLICATION = 3;
    public const int QS_CLOSE_TRANSPORT = 4;
    public const int QS_CLOSE_RESET = 5;
    public const int QS_CLOSE_H3_PROTOCOL = 8;

    // Why a handshake failed (QS_EVENT_HANDSHAKE_FAILED's detail).
    public const int QS_TLS_UNKNOWN_ISSUER = 1;
    public const int QS_TLS_NAME_MISMATCH = 2;
    public const int QS_PIN_MISMATCH = 3;
    public const int QS_TLS_EXPIRED = 4;
    public const int QS_TLS_BAD_CERTIFICATE = 5;
    public const int QS_TLS_CERTIFICATE_REJECTED = 6;
    public const int QS_TLS_CERTIFICATE_REQUIRED = 7;
    public const int QS_TLS_NO_APPLICATION_PROTOCOL = 8;
    public const int QS_TLS_OTHER = 9;
    public const int QS_REFUSED = 10;
    public const int QS_TIMED_OUT = 11;
    public const int QS_HANDSHAKE_OTHER = 12;
}
