using System.Diagnostics;
using QuicSend.Native;
using QuicSend.Transport.Sockets;

namespace QuicSend.Transport;

/// <summary>
/// Drives one native endpoint on a dedicated thread, the only thread that ever
/// calls into it: it runs the commands user threads post (<see cref="Post"/>),
/// feeds received datagrams in batches, fires timers, turns engine events into
/// completions, and sends what the engine has to send, honouring its pacing.
/// It also frees the native endpoint when it stops, so no user thread can race a
/// free. User threads never wait for the engine under a lock: they post and await.
/// </summary>
internal sealed unsafe class EndpointDriver : IDisposable
{
    private const int ReceiveBatch = 64;      // receives per turn before sending again
    private const int TransmitBatch = 256;    // sends per flush before letting receives in
    private const int EventBatch = 4096;      // events per turn
    private const int BufferSize = 1 << 16;
    private const int TransmitCapacity = 65000; // one GSO send: at most 64 KiB of UDP payload
    private const long PacingSlackNs = QsConst.QS_PACING_SLACK_NS; // the shim's: it already woke us this early on purpose

    private readonly QsEndpointHandle _handle;
    private readonly DatagramSocket _socket;
    private readonly Thread _thread;
    private readonly byte* _tx;
    private readonly Dictionary<ulong, QuicConnection> _connections = new();
    private readonly Action<QuicConnection>? _onIncoming;

    // The command queue: user threads add under _queueLock; the driver swaps it out whole.
    private readonly object _queueLock = new();
    private Queue<DriverOp> _queue = new();
    private Queue<DriverOp> _running = new();
    private bool _sleeping;       // under _queueLock: the driver waits on the socket, a post must wake it
    private bool _closed;         // under _queueLock: the driver is gone, posts fail at once
    private volatile bool _stopRequested;
    private Exception? _stopError;

    private bool _moreToSend;
    private bool _moreEvents;
    // Pacing: a batch the engine wants sent later stays in _tx until its time (Stopwatch ticks).
    private bool _held;
    private QsTransmit _heldTx;
    private long _heldUntil;

    public DatagramSocket Socket => _socket;

    /// <summary>The native endpoint. Only the driver thread may pass it to the shim.</summary>
    public nint Ep { get; }

    /// <summary>Typed calls on the native endpoint; driver thread only.</summary>
    public NativeEndpoint Native => new(Ep);

    public EndpointDriver(QsEndpointHandle handle, DatagramSocket socket, string name, Action<QuicConnection>? onIncoming)
    {
        _handle = handle;
        Ep = handle.DangerousGetHandle();
        _socket = socket;
        _onIncoming = onIncoming;
        _tx = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(BufferSize);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public bool IsStopping => _stopRequested;

    /// <summary>True on the driver thread: there, calls run inline instead of being posted.</summary>
    public bool OnDriverThread => Thread.CurrentThread == _thread;

    /// <summary>Queues a command for the driver thread and wakes it if it sleeps.
    /// Once the driver is gone the command is abandoned at once with the reason.</summary>
    public void Post(DriverOp op)
    {
        lock (_queueLock)
        {
            if (!_closed)
            {
                _queue.Enqueue(op);
                WakeLocked();
                return;
            }
        }
        op.Abandon(DisposedError());
    }

    /// <summary>Under _queueLock, which also keeps the socket from being disposed meanwhile.</summary>
    private void WakeLocked()
    {
        if (!_sleeping) return;
        _sleeping = false;
        _socket.Wake();
    }

    /// <summary>Runs a call on the driver thread and waits for its result (inline on the driver thread).</summary>
    public T Call<T>(Func<T> body)
    {
        if (OnDriverThread) return body();
        return CallAsync(body).GetAwaiter().GetResult();
    }

    /// <summary>Runs a call on the driver thread.</summary>
    public Task<T> CallAsync<T>(Func<T> body)
    {
        var call = new DriverCall<T>(c => c.Complete(body()));
        Post(call);
        return call.Task;
    }

    public void Call(Action body) => Call(() => { body(); return true; });

    public Task CallAsync(Action body) => CallAsync(() => { body(); return true; });

    /// <summary>What an operation still pending when the endpoint stopped is told.</summary>
    private Exception StoppedError() =>
        _stopError ?? new QuicException(QuicError.EndpointDisposed, "The endpoint was disposed.");

    /// <summary>What a call made after the endpoint stopped is told: disposed, or the driver's failure.</summary>
    private Exception DisposedError() =>
        _stopError ?? new ObjectDisposedException("QuicEndpoint", "The endpoint was disposed.");

    public void ThrowIfStopped()
    {
        if (_stopRequested) throw DisposedError();
    }

    private void Run()
    {
        try
        {
            _socket.PrepareWaitingThread();
            while (true)
            {
                long timeout = NextWait();
                if (timeout != 0)
                {
                    lock (_queueLock)
                    {
                        if (_queue.Count > 0) timeout = 0;
                        else _sleeping = true;
                    }
                    if (timeout != 0)
                    {
                        _socket.Wait(timeout);
                        lock (_queueLock) _sleeping = false;
                    }
                }
                RunCommands();
                if (_stopRequested) break;
                Receive();
                ulong now = MonotonicNs();
                if (NativeMethods.qs_endpoint_timeout(Ep, now) == 0) NativeMethods.qs_endpoint_on_timeout(Ep, now);
                DispatchEvents();
                Flush();
            }
            CloseAll();
        }
        catch (Exception e)
        {
            _stopError = new QuicException(QuicError.Internal, $"The endpoint's driver thread failed: {e.Message}", e);
            _stopRequested = true;
        }
        finally
        {
            Shutdown();
        }
    }

    /// <summary>How long the driver may sleep: 0 with work waiting, -1 for no timer.</summary>
    private long NextWait()
    {
        if (_moreToSend || _moreEvents) return 0;
        long timeout = NativeMethods.qs_endpoint_timeout(Ep, MonotonicNs());
        if (_held)
        {
            long untilSend = Math.Max(0, TicksToNs(_heldUntil - Stopwatch.GetTimestamp()));
            timeout = timeout < 0 ? untilSend : Math.Min(timeout, untilSend);
        }
        return timeout;
    }

    private void RunCommands()
    {
        lock (_queueLock)
        {
            if (_queue.Count == 0) return;
            (_queue, _running) = (_running, _queue);
        }
        while (_running.TryDequeue(out var op))
        {
            try
            {
                op.Run();
            }
            catch (Exception e)
            {
                op.Abandon(e); // one failed command fails its caller, not the endpoint
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
        // Handlers resume operations, which may raise new events: bound the work per turn so
        // receiving and sending always get their turn too.
        _moreEvents = false;
        for (int i = 0; i < EventBatch; i++)
        {
            if (NativeMethods.qs_endpoint_poll_event(Ep, &ev) != QsConst.QS_OK) return;
            if (ev.Kind == QsConst.QS_EVENT_CONNECTION_INCOMING)
            {
                QsAddr peer;
                var remote = NativeMethods.qs_conn_peer_addr(Ep, ev.Conn, &peer) == QsConst.QS_OK ? Addresses.ToEndPoint(peer) : null;
                var c = new QuicConnection(this, ev.Conn, isServer: true, remote, serverName: null);
                _connections[ev.Conn] = c;
                continue;
            }
            if (!_connections.TryGetValue(ev.Conn, out var conn)) continue;
            if (ev.Kind == QsConst.QS_EVENT_CONNECTED && conn.IsServer) _onIncoming?.Invoke(conn);
            conn.OnEvent(ev);
            if (ev.Kind == QsConst.QS_EVENT_CONNECTION_DRAINED) _connections.Remove(ev.Conn);
        }
        _moreEvents = true;
    }

    /// <summary>Registers a connection this side started. Driver thread.</summary>
    public void Add(QuicConnection c) => _connections[c.Id] = c;

    /// <summary>Closes every connection (telling peers) and lets the close frames out, before the thread ends.</summary>
    private void CloseAll()
    {
        var reason = "endpoint disposed"u8;
        fixed (byte* r = reason) NativeMethods.qs_endpoint_close_all(Ep, 0, r, (nuint)reason.Length);
        DispatchEvents();
        _held = false; // nothing waits for pacing any more
        Flush();
    }

    /// <summary>On the driver thread as it ends: fails everything still waiting, then frees the native endpoint here.</summary>
    private void Shutdown()
    {
        var error = StoppedError();
        var failure = error as QuicException ?? new QuicException(QuicError.Internal, error.Message, error);
        foreach (var c in _connections.Values.ToArray())
        {
            try { c.OnFault(failure); } catch (Exception) { /* keep failing the rest */ }
        }
        _connections.Clear();
        lock (_queueLock) _closed = true;
        while (_queue.TryDequeue(out var op)) op.Abandon(error);
        while (_running.TryDequeue(out var op)) op.Abandon(error);
        _socket.Dispose();
        _handle.Dispose();
        System.Runtime.InteropServices.NativeMemory.Free(_tx);
    }

    /// <summary>Closes all connections, lets the close frames out, stops the thread, which frees the native endpoint.</summary>
    public void Dispose()
    {
        lock (_queueLock)
        {
            _stopRequested = true;
            if (!_closed) _socket.Wake();
        }
        if (!OnDriverThread) _thread.Join();
    }
}
