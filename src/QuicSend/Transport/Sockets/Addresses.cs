using System.Buffers.Binary;
using System.Net;
using QuicSend.Native;

namespace QuicSend.Transport.Sockets;

/// <summary>Conversions between QsAddr, IPEndPoint and raw Linux sockaddr bytes.</summary>
internal static unsafe class Addresses
{
    public static QsAddr From(IPEndPoint ep)
    {
        var a = new QsAddr { Port = (ushort)ep.Port };
        var ip = ep.Address.IsIPv4MappedToIPv6 ? ep.Address.MapToIPv4() : ep.Address;
        Span<byte> bytes = new(a.Ip, 16);
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            a.Family = QsConst.QS_AF_INET;
            ip.TryWriteBytes(bytes, out _);
        }
        else
        {
            a.Family = QsConst.QS_AF_INET6;
            ip.TryWriteBytes(bytes, out _);
            a.ScopeId = (uint)ip.ScopeId;
        }
        return a;
    }

    public static IPEndPoint ToEndPoint(in QsAddr a)
    {
        fixed (byte* p = a.Ip)
        {
            var ip = a.Family == QsConst.QS_AF_INET
                ? new IPAddress(new ReadOnlySpan<byte>(p, 4))
                : new IPAddress(new ReadOnlySpan<byte>(p, 16), a.ScopeId);
            return new IPEndPoint(ip, a.Port);
        }
    }

    private const ushort AF_INET = 2, AF_INET6 = 10;

    /// <summary>Parses a Linux sockaddr_in / sockaddr_in6; IPv4-mapped IPv6 becomes IPv4 so a peer has one address.</summary>
    public static bool TryParseSockaddr(byte* sa, int len, out QsAddr result)
    {
        QsAddr a = default;
        result = default;
        var family = *(ushort*)sa;
        a.Port = BinaryPrimitives.ReverseEndianness(*(ushort*)(sa + 2));
        if (family == AF_INET && len >= 16)
        {
            a.Family = QsConst.QS_AF_INET;
            *(uint*)a.Ip = *(uint*)(sa + 4);
            result = a;
            return true;
        }
        if (family == AF_INET6 && len >= 28)
        {
            var ip = sa + 8;
            bool mapped = *(ulong*)ip == 0 && *(ushort*)(ip + 8) == 0 && *(ushort*)(ip + 10) == 0xFFFF;
            if (mapped)
            {
                a.Family = QsConst.QS_AF_INET;
                *(uint*)a.Ip = *(uint*)(ip + 12);
            }
            else
            {
                a.Family = QsConst.QS_AF_INET6;
                Buffer.MemoryCopy(ip, a.Ip, 16, 16);
                a.FlowInfo = BinaryPrimitives.ReverseEndianness(*(uint*)(sa + 4));
                a.ScopeId = *(uint*)(sa + 24);
            }
            result = a;
            return true;
        }
        return false;
    }

    /// <summary>Writes a Linux sockaddr for the destination; IPv4 goes out IPv4-mapped on an IPv6 socket. Returns its length.</summary>
    public static int WriteSockaddr(in QsAddr a, bool ipv6Socket, byte* sa)
    {
        new Span<byte>(sa, 28).Clear();
        *(ushort*)(sa + 2) = BinaryPrimitives.ReverseEndianness(a.Port);
        fixed (byte* ip = a.Ip)
        {
            if (a.Family == QsConst.QS_AF_INET && !ipv6Socket)
            {
                *(ushort*)sa = AF_INET;
                *(uint*)(sa + 4) = *(uint*)ip;
                return 16;
            }
            *(ushort*)sa = AF_INET6;
            if (a.Family == QsConst.QS_AF_INET)
            {
                *(ushort*)(sa + 18) = 0xFFFF;
                *(uint*)(sa + 20) = *(uint*)ip;
            }
            else
            {
                Buffer.MemoryCopy(ip, sa + 8, 16, 16);
                *(uint*)(sa + 4) = BinaryPrimitives.ReverseEndianness(a.FlowInfo);
                *(uint*)(sa + 24) = a.ScopeId;
            }
            return 28;
        }
    }
}
