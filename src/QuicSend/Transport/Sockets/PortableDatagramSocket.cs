using System.Net;
using System.Net.Sockets;
using QuicSend.Native;

namespace QuicSend.Transport.Sockets;

/// <summary>
/// UDP I/O through .NET's Socket alone, for platforms without the Linux batch
/// calls: one datagram per call. Addresses are converted only when they change.
/// </summary>
internal sealed class PortableDatagramSocket : DatagramSocket
{
    private readonly SocketAddress _rxAddress;
    private SocketAddress? _lastRx;
    private QsAddr _lastRxAddr;
    private QsAddr _lastTx;
    private SocketAddress? _lastTxAddress;
    private readonly IPEndPoint _template;
    private readonly SocketAddress _wakeTarget;

    public PortableDatagramSocket(Socket socket) : base(socket)
    {
        _template = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        _rxAddress = new SocketAddress(socket.AddressFamily);
        var local = LocalEndPoint;
        var loop = local.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        var wakeTo = local.Address.Equals(IPAddress.Any) || local.Address.Equals(IPAddress.IPv6Any) ? loop : local.Address;
        _wakeTarget = new IPEndPoint(wakeTo, local.Port).Serialize();
    }

    public override int MaxSegments => 1;

    public override void Wait(long timeoutNs)
    {
        var micros = timeoutNs < 0 ? -1 : (int)Math.Min(int.MaxValue, (timeoutNs + 999) / 1000);
        Socket.Poll(micros, SelectMode.SelectRead);
    }

    // An empty datagram to ourselves ends the Poll; the receive path drops it.
    public override void Wake() => Socket.SendTo(ReadOnlySpan<byte>.Empty, SocketFlags.None, _wakeTarget);

    public override int TryReceive(Span<byte> buffer, out QsAddr from, out int segmentSize)
    {
        segmentSize = 0;
        from = default;
        // Poll, not Available: Available is 0 for a queued empty datagram (our wake-up), which would then never be read.
        if (!Socket.Poll(0, SelectMode.SelectRead)) return -1;
        int n;
        try
        {
            n = Socket.ReceiveFrom(buffer, SocketFlags.None, _rxAddress);
        }
        catch (SocketException)
        {
            return 0; // ICMP errors surface here; there is no datagram to feed
        }
        if (_lastRx is null || !_rxAddress.Equals(_lastRx))
        {
            _lastRxAddr = Addresses.From((IPEndPoint)_template.Create(_rxAddress));
            _lastRx = new SocketAddress(_rxAddress.Family, _rxAddress.Size);
            _rxAddress.Buffer.CopyTo(_lastRx.Buffer);
        }
        from = _lastRxAddr;
        return n;
    }

    public override unsafe void Send(ReadOnlySpan<byte> data, in QsAddr to, int segmentSize)
    {
        fixed (QsAddr* a = &to, b = &_lastTx)
        {
            if (_lastTxAddress is null || !new ReadOnlySpan<byte>(a, sizeof(QsAddr)).SequenceEqual(new ReadOnlySpan<byte>(b, sizeof(QsAddr))))
            {
                var ep = Addresses.ToEndPoint(to);
                if (Socket.AddressFamily == AddressFamily.InterNetworkV6 && ep.AddressFamily == AddressFamily.InterNetwork)
                    ep = new IPEndPoint(ep.Address.MapToIPv6(), ep.Port);
                _lastTxAddress = ep.Serialize();
                _lastTx = to;
            }
        }
        for (int off = 0; off < data.Length; off += segmentSize)
        {
            try
            {
                Socket.SendTo(data.Slice(off, Math.Min(segmentSize, data.Length - off)), SocketFlags.None, _lastTxAddress);
            }
            catch (SocketException)
            {
                // A datagram that cannot leave is a lost datagram; QUIC recovers.
            }
        }
    }
}
