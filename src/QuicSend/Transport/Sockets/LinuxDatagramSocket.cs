using System.Net.Sockets;
using System.Runtime.InteropServices;
using QuicSend.Native;
using static QuicSend.Transport.Sockets.LibC;

namespace QuicSend.Transport.Sockets;

/// <summary>
/// Linux UDP I/O with segmentation offload: one sendmsg carries a whole batch of
/// equal-sized datagrams (UDP_SEGMENT) and one recvmsg may return several
/// coalesced ones (UDP_GRO). No managed allocation per datagram: all message
/// headers live in one native block made at construction.
/// </summary>
internal sealed unsafe class LinuxDatagramSocket : DatagramSocket
{
    private const int NameSize = 128;
    private const int ControlSize = 64;

    private readonly int _fd;
    private readonly int _wakeFd;
    private readonly bool _ipv6;
    private int _maxSegments;
    private readonly byte* _block; // [rx name][rx control][tx name][tx control]
    private int _disposed;

    public LinuxDatagramSocket(Socket socket, int bufferBytes) : base(socket)
    {
        _fd = (int)socket.Handle;
        _ipv6 = socket.AddressFamily == AddressFamily.InterNetworkV6;
        // As root the buffers may exceed net.core.rmem_max; elsewhere this fails quietly and the normal size stays.
        SetInt(_fd, SOL_SOCKET, SO_RCVBUFFORCE, bufferBytes);
        SetInt(_fd, SOL_SOCKET, SO_SNDBUFFORCE, bufferBytes);
        // The engine discovers the path MTU itself, so datagrams must never be fragmented.
        SetInt(_fd, _ipv6 ? SOL_IPV6 : SOL_IP, _ipv6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
        if (_ipv6) SetInt(_fd, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
        SetInt(_fd, SOL_UDP, UDP_GRO, 1);
        // UDP_SEGMENT as a socket option succeeds exactly when the kernel supports GSO.
        _maxSegments = SetInt(_fd, SOL_UDP, UDP_SEGMENT, 0) == 0 ? 64 : 1; // the kernel's UDP_MAX_SEGMENTS
        _wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (_wakeFd < 0) throw new QuicException(QuicError.Internal, $"eventfd failed (errno {Marshal.GetLastPInvokeError()})");
        _block = (byte*)NativeMemory.AllocZeroed(2 * (NameSize + ControlSize));
    }

    public override int MaxSegments => _maxSegments;

    public override void Wait(long timeoutNs)
    {
        PollFd* fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = _fd, Events = POLLIN };
        fds[1] = new PollFd { Fd = _wakeFd, Events = POLLIN };
        TimeSpec ts;
        TimeSpec* tp = null;
        if (timeoutNs >= 0)
        {
            ts = new TimeSpec { Sec = timeoutNs / 1_000_000_000, NSec = timeoutNs % 1_000_000_000 };
            tp = &ts;
        }
        if (ppoll(fds, 2, tp, 0) > 0 && fds[1].REvents != 0)
        {
            ulong drain;
            read(_wakeFd, &drain, sizeof(ulong));
        }
    }

    /// <summary>Pacing holds a batch until its release time with a timed ppoll: the kernel's default
    /// 50 µs timer slack would make every such wake-up late, so the driver thread asks for none.</summary>
    public override void PrepareWaitingThread() => prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);

    public override void Wake()
    {
        ulong one = 1;
        write(_wakeFd, &one, sizeof(ulong));
    }

    public override int TryReceive(Span<byte> buffer, out QsAddr from, out int segmentSize)
    {
        from = default;
        segmentSize = 0;
        var name = _block;
        var control = _block + NameSize;
        fixed (byte* data = buffer)
        {
            var iov = new IoVec { Base = data, Len = (nuint)buffer.Length };
            var msg = new MsgHdr { Name = name, NameLen = NameSize, Iov = &iov, IovLen = 1, Control = control, ControlLen = ControlSize };
            nint n;
            do n = recvmsg(_fd, &msg, MSG_DONTWAIT);
            while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
            if (n < 0) return -1; // EAGAIN, or an ICMP error queued on the socket: nothing to feed either way
            if (!Addresses.TryParseSockaddr(name, (int)msg.NameLen, out from)) return 0;
            for (var c = (byte*)msg.Control; c != null && c + sizeof(CMsgHdr) <= (byte*)msg.Control + msg.ControlLen;)
            {
                var h = (CMsgHdr*)c;
                if (h->Len < (nuint)sizeof(CMsgHdr)) break;
                if (h->Level == SOL_UDP && h->Type == UDP_GRO) segmentSize = *(int*)(c + sizeof(CMsgHdr));
                c += ((int)h->Len + 7) & ~7;
            }
            return (int)n;
        }
    }

    public override void Send(ReadOnlySpan<byte> data, in QsAddr to, int segmentSize)
    {
        var name = _block + NameSize + ControlSize;
        var control = name + NameSize;
        var nameLen = Addresses.WriteSockaddr(to, _ipv6, name);
        fixed (byte* p = data)
        {
            if (segmentSize < data.Length && _maxSegments > 1)
            {
                if (SendOne(p, data.Length, name, nameLen, control, segmentSize)) return;
                // The path refused the batch (no GSO on this route): send datagram by datagram from now on.
                _maxSegments = 1;
            }
            for (int off = 0; off < data.Length; off += segmentSize)
                SendOne(p + off, Math.Min(segmentSize, data.Length - off), name, nameLen, control, 0);
        }
    }

    private bool SendOne(byte* p, int len, byte* name, int nameLen, byte* control, int gso)
    {
        var iov = new IoVec { Base = p, Len = (nuint)len };
        var msg = new MsgHdr { Name = name, NameLen = (uint)nameLen, Iov = &iov, IovLen = 1 };
        if (gso > 0)
        {
            var h = (CMsgHdr*)control;
            h->Len = (nuint)CmsgLen(sizeof(ushort));
            h->Level = SOL_UDP;
            h->Type = UDP_SEGMENT;
            *(ushort*)(control + sizeof(CMsgHdr)) = (ushort)gso;
            msg.Control = control;
            msg.ControlLen = (nuint)CmsgSpace(sizeof(ushort));
        }
        while (true)
        {
            if (sendmsg(_fd, &msg, 0) >= 0) return true;
            var err = Marshal.GetLastPInvokeError();
            if (err == EINTR) continue;
            if (err == EAGAIN)
            {
                // Socket buffer full: wait for room rather than drop what congestion control already allowed.
                var pfd = new PollFd { Fd = _fd, Events = POLLOUT };
                var ts = new TimeSpec { NSec = 50_000_000 };
                ppoll(&pfd, 1, &ts, 0);
                continue;
            }
            // EIO/EINVAL/EMSGSIZE on a GSO batch: the caller falls back. Anything else is a lost datagram,
            // which QUIC recovers from like any other loss.
            return !(gso > 0 && (err == EIO || err == EINVAL || err == EMSGSIZE));
        }
    }

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        base.Dispose();
        close(_wakeFd);
        NativeMemory.Free(_block);
    }
}
