using System.Runtime.InteropServices;

namespace QuicSend.Transport.Sockets;

// The few Linux calls .NET's Socket does not offer: sendmsg with UDP_SEGMENT
// (GSO), recvmsg with UDP_GRO, ppoll with nanosecond timeouts, and eventfd.
internal static unsafe partial class LibC
{
    private const string Lib = "libc.so.6";

    public const int EINTR = 4, EAGAIN = 11, EIO = 5, EINVAL = 22, EMSGSIZE = 90;
    public const int MSG_DONTWAIT = 0x40;
    public const int SOL_IP = 0, SOL_IPV6 = 41, SOL_UDP = 17;
    public const int UDP_SEGMENT = 103, UDP_GRO = 104;
    public const int IP_MTU_DISCOVER = 10, IPV6_MTU_DISCOVER = 23, IP_PMTUDISC_PROBE = 3;
    public const int SOL_SOCKET = 1, SO_RCVBUFFORCE = 33, SO_SNDBUFFORCE = 32;
    public const short POLLIN = 0x001, POLLOUT = 0x004;
    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Len;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLen;
        public IoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CMsgHdr
    {
        public nuint Len;
        public int Level;
        public int Type;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Sec;
        public long NSec;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int ppoll(PollFd* fds, nuint nfds, TimeSpec* timeout, nint sigmask);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    public const int PR_SET_TIMERSLACK = 29;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint len);

    public static int SetInt(int fd, int level, int name, int value) => setsockopt(fd, level, name, &value, sizeof(int));

    /// <summary>Size of a control message carrying n bytes, as CMSG_SPACE computes it on 64-bit Linux.</summary>
    public static int CmsgSpace(int n) => sizeof(CMsgHdr) + ((n + 7) & ~7);

    public static int CmsgLen(int n) => sizeof(CMsgHdr) + n;
}
