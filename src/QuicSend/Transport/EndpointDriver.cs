using System.Diagnostics;
using QuicSend.Native;
using QuicSend.Transport.Sockets;

namespace QuicSend.Transport;

/// <summary>
/// Drives one native endpoint: a dedicated thread waits on the UDP socket and
/// the engine's next timer, feeds datagrams in batches, fires timers, turns
/// engine events into completions, and sends what the engine has to send.
/// Every native call on the endpoint happens under <see cref="Lock"/>; user
/// operations take the same lock, flush their own output, and wake the thread
/// only when they moved its next deadline earlier.
/// </summary>
internal sealed unsafe class EndpointDriver : IDisposable
{
    private const int ReceiveBatch = 64;      // receives per turn before sending again
    private const int TransmitBatch = 256;    // sends per flush before letting receives in
    private const int BufferSize = 1 << 16;
    private const int TransmitCapacity = 65000; // one GSO send: at most 64 KiB of UDP payload

    public readonly object Lock = new();
    public readonly nint Ep;

    private readonly QsEndpointHandle _handle;
    private readonly DatagramSocket _socket;
    private readonly Thread _thread;
    private readonly byte* _tx;
    private readonly Dictionary<ulong, QuicConnection> _connections = new();
    private readonly Action<QuicConnection>? _onIncoming;
    private volatile bool _stopping;
    private bool _sleeping;
    private long _wakeAt = long.MaxValue; // Stopwatch timestamp the thread sleeps until
    private bool _moreToSend;
    private bool _released;
    // Pacing: a batch the engine wants sent later stays in _tx until its time (Stopwatch ticks).
    private bool _held;
    private QsTransmit _heldTx;
    private long _heldUntil;
    private const long PacingSlackNs = 50_000; // sending this much early costs nothing measurable

    public DatagramSocket Socket => _socket;

    /// <summary>Connections speak HTTP/3: stream events arrive as request/response events.</summary>
    public bool Http3 { get; }

    public EndpointDriver(QsEndpointHandle handle, DatagramSocket socket, string name, Action<QuicConnection>? onIncoming, bool http3)
    {
        Http3 = http3;
        _handle = handle;
        bool added = false;
        handle.DangerousAddRef(ref added); // released in Dispose; keeps Ep valid for the driver's life
        Ep = handle.DangerousGetHandle();
        _socket = socket;
        _onIncoming = onIncoming;
        _tx = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(BufferSize);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public bool IsStopping => _stopping;

    private void Run()
    {
        try
        {
            while (!_stopping)
            {
                long timeout;
                lock (Lock)
                {
                    timeout = _moreToSend ? 0 : NativeMethods.qs_endpoint_timeout(Ep, MonotonicNs());
                    if (_held)
                    {
                        long untilSend = Math.Max(0, TicksToNs(_heldUntil - Stopwatch.GetTimestamp()));
                        timeout = timeout < 0 ? untilSend : Math.Min(timeout, untilSend);
                    }
                    _sleeping = timeout != 0;
                    _wakeAt = timeout < 0 ? long.MaxValue : Stopwatch.GetTimestamp() + NsToTicks(timeout);
                }
                if (timeout != 0) _socket.Wait(timeout);
                lock (Lock)
                {
                    _sleeping = false;
                    if (_stopping) break;
                    Receive();
                    ulong now = MonotonicNs();
                    if (NativeMethods.qs_endpoint_timeout(Ep, now) == 0) NativeMethods.qs_endpoint_on_timeout(Ep, now);
                    DispatchEvents();
                    Flush();
                }
            }
        }
        catch (Exception e)
        {
            lock (Lock)
            {
                var error = new QuicException(QuicError.Internal, $"The endpoint's driver thread failed: {e.Message}", e);
                foreach (var c in _connections.Values.ToArray()) c.OnFault(error);
            }
        }
    }

    private void Receive()
    {
        for (int i = 0; i < ReceiveBatch; i++)
        {
            // Receive straight into the engine's buffer: no copy between the kernel and the engine.
            byte* buf;
            NativeErrors.Check(NativeMethods.qs_endpoint_recv_buffer(Ep, BufferSize, &buf), "Lending a receive buffer");
            int n = _socket.TryReceive(new Span<byte>(buf, BufferSize), out var from, out var segment);
            if (n < 0) break;
            if (n == 0) continue; // a wake-up, or an address we cannot use
            NativeMethods.qs_endpoint_recv(Ep, MonotonicNs(), buf, (nuint)n, (nuint)segment, &from, null);
        }
    }

    /// <summary>Sends what the engine has, up to a batch; remembers whether more is waiting.
    /// A batch paced for later is held (no thread hop, no spinning): the driver sleeps until its time.</summary>
    private void Flush()
    {
        QsTransmit t;
        int max = _socket.MaxSegments;
        if (_held)
        {
            if (Stopwatch.GetTimestamp() < _heldUntil) { _moreToSend = false; return; }
            _held = false;
            _socket.Send(new ReadOnlySpan<byte>(_tx, (int)_heldTx.Len), _heldTx.To, (int)_heldTx.SegmentSize);
        }
        for (int i = 0; i < TransmitBatch; i++)
        {
            int rc = NativeMethods.qs_endpoint_poll_transmit(Ep, MonotonicNs(), _tx, TransmitCapacity, (nuint)max, &t);
            if (rc != QsConst.QS_OK)
            {
                _moreToSend = false;
                if (rc != QsConst.QS_DONE) throw NativeErrors.ToException(rc, "Preparing datagrams to send"); // a bug in the shim: surface it
                return;
            }
            if (t.DelayNs > PacingSlackNs)
            {
                _held = true;
                _heldTx = t;
                _heldUntil = Stopwatch.GetTimestamp() + NsToTicks((long)Math.Min(t.DelayNs, (ulong)long.MaxValue));
                _moreToSend = false;
                return;
            }
            _socket.Send(new ReadOnlySpan<byte>(_tx, (int)t.Len), t.To, (int)t.SegmentSize);
        }
        _moreToSend = true;
    }

    // 128-bit intermediates: ns * Frequency overflows a long beyond ~9.2 s (the idle timeout is 30 s).
    private static long NsToTicks(long ns) => (long)((Int128)ns * Stopwatch.Frequency / 1_000_000_000);

    private static long TicksToNs(long ticks) => (long)((Int128)ticks * 1_000_000_000 / Stopwatch.Frequency);

    /// <summary>The time every driving call hands the engine (it reads no clock itself): monotonic nanoseconds.</summary>
    internal static ulong MonotonicNs() => (ulong)TicksToNs(Stopwatch.GetTimestamp());

    private void DispatchEvents()
    {
        QsEvent ev;
        while (NativeMethods.qs_endpoint_poll_event(Ep, &ev) == QsConst.QS_OK)
        {
            if (ev.Kind == QsConst.QS_EVENT_CONNECTION_INCOMING)
            {
                var c = new QuicConnection(this, ev.Conn, isServer: true, remote: null, serverName: null);
                _connections[ev.Conn] = c;
                continue;
            }
            if (!_connections.TryGetValue(ev.Conn, out var conn)) continue;
            if (ev.Kind == QsConst.QS_EVENT_CONNECTED && conn.IsServer) _onIncoming?.Invoke(conn);
            conn.OnEvent(ev);
            if (ev.Kind == QsConst.QS_EVENT_CONNECTION_DRAINED) _connections.Remove(ev.Conn);
        }
    }

    /// <summary>Registers a connection this side started. Caller holds Lock.</summary>
    public void Add(QuicConnection c) => _connections[c.Id] = c;

    /// <summary>
    /// After a user operation (caller holds Lock): deliver events, send, and wake
    /// the thread if it sleeps past the engine's new deadline or output is left.
    /// </summary>
    public void AfterUserOperation()
    {
        DispatchEvents();
        Flush();
        if (!_sleeping) return;
        if (_moreToSend || (_held && _heldUntil < _wakeAt))
        {
            _socket.Wake();
            return;
        }
        long t = NativeMethods.qs_endpoint_timeout(Ep, MonotonicNs());
        if (t >= 0 && Stopwatch.GetTimestamp() + NsToTicks(t) < _wakeAt) _socket.Wake();
    }

    public void ThrowIfStopped()
    {
        if (_stopping || _released) throw new ObjectDisposedException("QuicEndpoint", "The endpoint was disposed.");
    }

    /// <summary>Closes all connections, lets the close frames out, stops the thread and frees the native endpoint.</summary>
    public void Dispose()
    {
        lock (Lock)
        {
            if (_stopping) return;
            if (!_released)
            {
                var reason = "endpoint disposed"u8;
                fixed (byte* r = reason) NativeMethods.qs_endpoint_close_all(Ep, 0, r, (nuint)reason.Length);
                DispatchEvents();
                Flush();
            }
            _stopping = true;
            var error = new QuicException(QuicError.EndpointDisposed, "The endpoint was disposed.");
            foreach (var c in _connections.Values.ToArray()) c.OnFault(error);
            _connections.Clear();
        }
        _socket.Wake();
        if (Thread.CurrentThread != _thread) _thread.Join();
        lock (Lock)
        {
            if (_released) return;
            _released = true;
            _socket.Dispose();
            _handle.DangerousRelease();
            _handle.Dispose();
            System.Runtime.InteropServices.NativeMemory.Free(_tx);
        }
    }
}
