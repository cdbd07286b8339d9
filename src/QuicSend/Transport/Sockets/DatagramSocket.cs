using System.Net;
using System.Net.Sockets;
using QuicSend.Native;

namespace QuicSend.Transport.Sockets;

/// <summary>
/// The UDP socket an endpoint driver uses: wait for input, receive without
/// blocking, send a datagram or a batch of equal-sized ones, and wake a waiter.
/// </summary>
internal abstract class DatagramSocket : IDisposable
{
    protected DatagramSocket(Socket socket)
    {
        Socket = socket;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    public Socket Socket { get; }

    public IPEndPoint LocalEndPoint { get; }

    /// <summary>How many datagrams one Send may carry (1 without segmentation offload).</summary>
    public abstract int MaxSegments { get; }

    /// <summary>Blocks until a datagram may be waiting, Wake is called, or the timeout passes (negative: none).</summary>
    public abstract void Wait(long timeoutNs);

    public abstract void Wake();

    /// <summary>Called once on the thread that will Wait, before it does.</summary>
    public virtual void PrepareWaitingThread() { }

    /// <summary>Receives without blocking; -1 when nothing is waiting. segmentSize is 0 unless several datagrams were coalesced.</summary>
    public abstract int TryReceive(Span<byte> buffer, out QsAddr from, out int segmentSize);

    /// <summary>Sends data as datagrams of segmentSize bytes each (the last may be shorter).</summary>
    public abstract void Send(ReadOnlySpan<byte> data, in QsAddr to, int segmentSize);

    public virtual void Dispose() => Socket.Dispose();

    /// <summary>Creates and binds the socket; a port in use gets a message that says so.</summary>
    public static DatagramSocket Open(IPEndPoint local, bool batched, int bufferBytes)
    {
        var socket = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (local.AddressFamily == AddressFamily.InterNetworkV6 && local.Address.Equals(IPAddress.IPv6Any))
                socket.DualMode = true;
            socket.ReceiveBufferSize = bufferBytes;
            socket.SendBufferSize = bufferBytes;
            socket.Bind(local);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new QuicException(QuicError.Internal,
                $"UDP port {local.Port} on {local.Address} is already in use by another program; choose another port or stop that program.", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        if (batched && OperatingSystem.IsLinux()) return new LinuxDatagramSocket(socket, bufferBytes);
        return new PortableDatagramSocket(socket);
    }
}
