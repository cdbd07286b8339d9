using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace QuicSend.Testing;

/// <summary>How one direction of an emulated path treats datagrams.</summary>
public sealed class PathDirectionOptions
{
    /// <summary>One-way propagation delay added to every datagram (20 ms each way gives a 40 ms round trip).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>
    /// Extra one-way delay per datagram, uniform in [0, Jitter], on top of <see cref="Delay"/>. By default
    /// jitter keeps the order (a FIFO link whose latency wanders): a datagram is never released before the
    /// previous one of its direction, so one drawn earlier than its predecessor leaves right after it
    /// instead. Set <see cref="AllowJitterReordering"/> to let each datagram keep its own draw.
    /// </summary>
    public TimeSpan Jitter { get; set; }

    /// <summary>
    /// With <see cref="Jitter"/>: each datagram is released at its own jittered time even when that is
    /// before an earlier datagram's, so jitter reorders (like parallel paths). Such overtaking datagrams
    /// are counted in <see cref="PathDirectionStats.Reordered"/>. Off by default.
    /// </summary>
    public bool AllowJitterReordering { get; set; }

    /// <summary>
    /// Probability (0..1) that a datagram is held back by an extra <see cref="ReorderDelay"/>, so the
    /// datagrams that follow within that time overtake it. Independent of <see cref="AllowJitterReordering"/>.
    /// </summary>
    public double ReorderProbability { get; set; }

    /// <summary>How long a datagram picked by <see cref="ReorderProbability"/> is held back beyond its normal release time. 5 ms by default.</summary>
    public TimeSpan ReorderDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Probability (0..1) that a datagram is delivered twice: the copy is sent right after the original,
    /// at its release time. The copy does not pass the bottleneck (duplication happens after it, as on
    /// the wire), so it neither uses the link rate nor queue space.
    /// </summary>
    public double DuplicateProbability { get; set; }

    /// <summary>Probability (0..1) that a datagram is dropped at random, independently of the others.</summary>
    public double LossProbability { get; set; }

    /// <summary>
    /// Link rate in UDP payload bytes per second; 0 means unlimited. Datagrams leave the bottleneck
    /// one after another at this rate (a token bucket one datagram deep), then take <see cref="Delay"/>.
    /// Every flow of the relay shares it.
    /// </summary>
    public long BandwidthBytesPerSecond { get; set; }

    /// <summary>
    /// With a bandwidth limit: bytes that may wait for the bottleneck before arrivals are dropped
    /// (tail drop, like a router buffer; shared by every flow). 0 means one bandwidth-delay product of
    /// the whole path (rate × the sum of both directions' delays), at least 64 KiB.
    /// </summary>
    public long QueueBytes { get; set; }

    /// <summary>Drop the first this many datagrams of this direction whatever happens (to lose a handshake's first Initial, say).</summary>
    public int DropFirst { get; set; }
}

/// <summary>Settings of a <see cref="PathEmulator"/>: each direction, the random seed and the buffer sizes.</summary>
public sealed class PathEmulatorOptions
{
    /// <summary>Datagrams from the clients towards the server.</summary>
    public PathDirectionOptions ClientToServer { get; set; } = new();

    /// <summary>Datagrams from the server back to the clients.</summary>
    public PathDirectionOptions ServerToClient { get; set; } = new();

    /// <summary>
    /// Seed of the random decisions (loss, jitter, reordering, duplication): the same seed and the same
    /// traffic in the same order get the same decisions.
    /// </summary>
    public int Seed { get; set; } = 1;

    /// <summary>Datagrams each direction can hold at once (in flight through the delay plus queued); rounded up to a power of two.</summary>
    public int Slots { get; set; } = 8192;

    /// <summary>Largest datagram carried; bigger ones are dropped (counted as queue drops).</summary>
    public int MaxDatagramSize { get; set; } = 2048;

    /// <summary>
    /// Clients (distinct source addresses) carried at once, 1..1024; 16 by default. Datagrams from further
    /// clients are dropped and counted in <see cref="PathDirectionStats.DroppedByFlowLimit"/>.
    /// </summary>
    public int MaxFlows { get; set; } = 16;

    /// <summary>The same delay, loss and rate in both directions.</summary>
    public static PathEmulatorOptions Symmetric(TimeSpan oneWayDelay, double lossProbability, long bandwidthBytesPerSecond = 0, int seed = 1) => new()
    {
        ClientToServer = new PathDirectionOptions { Delay = oneWayDelay, LossProbability = lossProbability, BandwidthBytesPerSecond = bandwidthBytesPerSecond },
        ServerToClient = new PathDirectionOptions { Delay = oneWayDelay, LossProbability = lossProbability, BandwidthBytesPerSecond = bandwidthBytesPerSecond },
        Seed = seed,
    };
}

/// <summary>What one direction of a <see cref="PathEmulator"/> did so far, over all flows.</summary>
/// <param name="Received">Datagrams taken off the socket.</param>
/// <param name="Forwarded">Datagrams sent on, duplicates included.</param>
/// <param name="ForwardedBytes">Bytes sent on, duplicates included.</param>
/// <param name="DroppedByLoss">Random losses.</param>
/// <param name="DroppedByQueue">Tail drops at the bottleneck, datagrams too big, and arrivals while every slot was taken.</param>
/// <param name="DroppedFirst">Forced drops (<see cref="PathDirectionOptions.DropFirst"/>, <see cref="PathEmulator.DropNextClientToServer"/>).</param>
/// <param name="SendErrors">Datagrams the relay could not send on (socket buffer full, peer gone).</param>
public readonly record struct PathDirectionStats(
    long Received,
    long Forwarded,
    long ForwardedBytes,
    long DroppedByLoss,
    long DroppedByQueue,
    long DroppedFirst,
    long SendErrors)
{
    /// <summary>Datagrams put out of arrival order: held back by the reorder delay, or overtaking an earlier one by jitter.</summary>
    public long Reordered { get; init; }

    /// <summary>Datagrams delivered twice (each counts once here, twice in <see cref="Forwarded"/>).</summary>
    public long Duplicated { get; init; }

    /// <summary>Datagrams from clients beyond <see cref="PathEmulatorOptions.MaxFlows"/> (client→server only).</summary>
    public long DroppedByFlowLimit { get; init; }

    /// <summary>Every datagram that did not go through, whatever the reason.</summary>
    public long Dropped => DroppedByLoss + DroppedByQueue + DroppedFirst + DroppedByFlowLimit;
}

/// <summary>One client's traffic through a <see cref="PathEmulator"/>: what it delivered each way.</summary>
/// <param name="Client">The client's address.</param>
/// <param name="ServerFacing">The relay's address for this client as the server sees it.</param>
/// <param name="DatagramsToServer">Datagrams of this client delivered to the server (duplicates included).</param>
/// <param name="BytesToServer">Their bytes.</param>
/// <param name="DatagramsToClient">Datagrams of the server delivered to this client (duplicates included).</param>
/// <param name="BytesToClient">Their bytes.</param>
public readonly record struct PathFlowStats(
    IPEndPoint Client,
    IPEndPoint ServerFacing,
    long DatagramsToServer,
    long BytesToServer,
    long DatagramsToClient,
    long BytesToClient);

/// <summary>
/// A UDP relay on 127.0.0.1 between clients and one server that emulates a long, lossy or narrow
/// path: per direction a one-way delay with optional jitter, random loss, reordering and
/// duplication, a rate limit with a bounded drop-tail queue, and forced loss of the first datagrams.
/// <para>
/// Clients send to <see cref="ClientEndPoint"/>. Each distinct client address is a flow (up to
/// <see cref="PathEmulatorOptions.MaxFlows"/>) with a server-facing socket of its own, as behind a NAT:
/// the server sees one stable, distinct address per client and its replies go back to the right one.
/// All flows share each direction's bottleneck (its rate and its drop-tail queue), which is what a
/// fairness measurement needs; <see cref="GetFlowStats"/> tells what each flow delivered.
/// </para>
/// <para>
/// One thread per direction receives, applies the bottleneck in arrival order, then stamps each
/// datagram with its release time (bottleneck exit + delay + jitter, + the reorder delay if it is held
/// back) into a preallocated slot, and sends it when due: nothing is allocated per datagram (only
/// per new flow). Datagrams whose release keeps arrival order wait in a FIFO ring; the held-back
/// and overtaking ones wait in a min-heap by release time; each release takes whichever is due first.
/// </para>
/// </summary>
public sealed class PathEmulator : IDisposable
{
    private readonly Socket _front;   // faces the clients; unconnected: the source address picks the flow
    private readonly Socket _wake;    // connected to itself: a new flow wakes the server→client thread
    private readonly IPEndPoint _server;
    private readonly Flow[] _flows;
    private readonly long[] _flowKeys; // first 8 bytes of each client's sockaddr: family, port, IPv4 address
    private volatile int _flowCount;   // written by the client→server thread only, after the flow is in place
    private readonly Direction _up;
    private readonly Direction _down;
    private volatile bool _stopping;

    /// <summary>Starts relaying to <paramref name="server"/> (a 127.0.0.1 address).</summary>
    public PathEmulator(IPEndPoint server, PathEmulatorOptions? options = null)
    {
        options ??= new PathEmulatorOptions();
        if (!IPAddress.IsLoopback(server.Address) || server.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException("The path emulator relays on 127.0.0.1 only; give it the server's 127.0.0.1 address.", nameof(server));
        Validate(options.ClientToServer, nameof(options.ClientToServer));
        Validate(options.ServerToClient, nameof(options.ServerToClient));
        if (options.Slots < 2 || options.Slots > 1 << 20) throw new ArgumentOutOfRangeException(nameof(options), "Slots must be 2..1048576.");
        if (options.MaxDatagramSize < 1200 || options.MaxDatagramSize > 65535) throw new ArgumentOutOfRangeException(nameof(options), "MaxDatagramSize must be 1200..65535.");
        if (options.MaxFlows < 1 || options.MaxFlows > 1024) throw new ArgumentOutOfRangeException(nameof(options), "MaxFlows must be 1..1024.");

        _server = server;
        _flows = new Flow[options.MaxFlows];
        _flowKeys = new long[options.MaxFlows];
        _front = Open();
        _wake = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _wake.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _wake.Connect(_wake.LocalEndPoint!);
        _wake.Blocking = false;
        var roundTrip = options.ClientToServer.Delay + options.ServerToClient.Delay;
        _up = new Direction(this, "client→server", options.ClientToServer, options, roundTrip, options.Seed, toServer: true);
        _down = new Direction(this, "server→client", options.ServerToClient, options, roundTrip, unchecked(options.Seed * 31 + 17), toServer: false);
        ClientEndPoint = (IPEndPoint)_front.LocalEndPoint!;
        _up.Start();
        _down.Start();
    }

    /// <summary>Where the clients should send: the relay's client-facing socket.</summary>
    public IPEndPoint ClientEndPoint { get; }

    /// <summary>The error that stopped a relay thread, if one did (the path is then dead); null while all is well.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>Clients seen so far (each has its own server-facing socket); at most <see cref="PathEmulatorOptions.MaxFlows"/>.</summary>
    public int FlowCount => _flowCount;

    /// <summary>Drops the next <paramref name="count"/> datagrams from the clients to the server (counted as forced drops).</summary>
    public void DropNextClientToServer(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _up.DropNext(count);
    }

    /// <summary>Counters of the client→server direction, all flows together.</summary>
    public PathDirectionStats ClientToServer => _up.Snapshot();

    /// <summary>Counters of the server→client direction, all flows together.</summary>
    public PathDirectionStats ServerToClient => _down.Snapshot();

    /// <summary>What each client delivered each way so far, in the order the clients first sent.</summary>
    public PathFlowStats[] GetFlowStats()
    {
        int n = _flowCount;
        var result = new PathFlowStats[n];
        for (int i = 0; i < n; i++)
        {
            var f = _flows[i];
            result[i] = new PathFlowStats(f.Client, f.ServerFacing,
                Interlocked.Read(ref f.DatagramsToServer), Interlocked.Read(ref f.BytesToServer),
                Interlocked.Read(ref f.DatagramsToClient), Interlocked.Read(ref f.BytesToClient));
        }
        return result;
    }

    public override string ToString() =>
        $"c→s {Describe(ClientToServer)}; s→c {Describe(ServerToClient)}" + (FlowCount > 1 ? $"; {FlowCount} flows" : "");

    private static string Describe(PathDirectionStats s) =>
        $"forwarded {s.Forwarded}, lost {s.DroppedByLoss}, queue drops {s.DroppedByQueue}, forced drops {s.DroppedFirst}" +
        (s.Reordered > 0 ? $", reordered {s.Reordered}" : "") +
        (s.Duplicated > 0 ? $", duplicated {s.Duplicated}" : "") +
        (s.DroppedByFlowLimit > 0 ? $", flow-limit drops {s.DroppedByFlowLimit}" : "");

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _up.Join();
        _down.Join();
        _front.Dispose();
        _wake.Dispose();
        for (int i = 0; i < _flowCount; i++) _flows[i].Back.Dispose();
    }

    private static void Validate(PathDirectionOptions d, string name)
    {
        if (d.Delay < TimeSpan.Zero || d.Delay > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(name, "Delay must be 0..10 s.");
        if (d.Jitter < TimeSpan.Zero || d.Jitter > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(name, "Jitter must be 0..10 s.");
        if (d.ReorderDelay < TimeSpan.Zero || d.ReorderDelay > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(name, "ReorderDelay must be 0..10 s.");
        if (!(d.LossProbability >= 0 && d.LossProbability <= 1)) throw new ArgumentOutOfRangeException(name, "LossProbability must be 0..1.");
        if (!(d.ReorderProbability >= 0 && d.ReorderProbability <= 1)) throw new ArgumentOutOfRangeException(name, "ReorderProbability must be 0..1.");
        if (!(d.DuplicateProbability >= 0 && d.DuplicateProbability <= 1)) throw new ArgumentOutOfRangeException(name, "DuplicateProbability must be 0..1.");
        if (d.BandwidthBytesPerSecond < 0) throw new ArgumentOutOfRangeException(name, "BandwidthBytesPerSecond must be >= 0.");
        if (d.QueueBytes < 0) throw new ArgumentOutOfRangeException(name, "QueueBytes must be >= 0.");
        if (d.DropFirst < 0) throw new ArgumentOutOfRangeException(name, "DropFirst must be >= 0.");
    }

    private static Socket Open()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            s.ReceiveBufferSize = 8 << 20;
            s.SendBufferSize = 8 << 20;
        }
        catch (SocketException) { } // the kernel's cap applies
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        s.Blocking = false; // Receive/Send with an out SocketError: no exception when the socket is empty or full
        return s;
    }

    /// <summary>The key of an IPv4 sockaddr: its first 8 bytes hold the family, the port and the address.</summary>
    private static long KeyOf(SocketAddress a) => BinaryPrimitives.ReadInt64LittleEndian(a.Buffer.Span);

    /// <summary>The flow of a client address, made on its first datagram; -1 when <see cref="PathEmulatorOptions.MaxFlows"/> are taken. Client→server thread only.</summary>
    private int FlowOf(SocketAddress from, ref int last)
    {
        long key = KeyOf(from);
        int n = _flowCount;
        if (last < n && _flowKeys[last] == key) return last;
        for (int i = 0; i < n; i++)
        {
            if (_flowKeys[i] == key)
            {
                last = i;
                return i;
            }
        }
        if (n == _flows.Length) return -1;

        // A new client: a server-facing socket of its own, so the server tells the clients apart.
        var client = (IPEndPoint)new IPEndPoint(IPAddress.Any, 0).Create(from);
        var back = Open();
        back.Connect(_server); // the server's replies only; sends need no address lookup
        _flows[n] = new Flow(client, client.Serialize(), back, (IPEndPoint)back.LocalEndPoint!);
        _flowKeys[n] = key;
        _flowCount = n + 1; // volatile: publishes the flow to the other thread
        _wake.Send(stackalloc byte[1], SocketFlags.None, out _); // the server→client thread waits on the sockets it knew
        last = n;
        return n;
    }

    /// <summary>One client: its address, the relay's socket towards the server for it, and what it delivered.</summary>
    private sealed class Flow(IPEndPoint client, SocketAddress address, Socket back, IPEndPoint serverFacing)
    {
        public readonly IPEndPoint Client = client;
        public readonly SocketAddress Address = address;
        public readonly Socket Back = back;
        public readonly IPEndPoint ServerFacing = serverFacing;
        public long DatagramsToServer, BytesToServer, DatagramsToClient, BytesToClient;
    }

    /// <summary>
    /// One direction: receives, applies the bottleneck and the random decisions, holds datagrams in
    /// preallocated slots until due, sends them on. Slots come from a free stack; a FIFO ring holds the
    /// ones released in arrival order (release times never decrease along it) and a min-heap the ones
    /// released out of order (held back, or overtaking by jitter).
    /// </summary>
    private sealed class Direction
    {
        private const int ReceiveBudget = 64;   // receives between release checks, so releases stay on time under load
        private const int FlowBurst = 8;        // server→client: receives from one flow's socket before trying the next

        private readonly PathEmulator _owner;
        private readonly bool _toServer;
        private readonly Thread _thread;
        private readonly Random _random;

        private readonly byte[] _buffer;        // slots × slotSize bytes
        private readonly int _slotSize;
        private readonly int[] _length;
        private readonly long[] _due;           // Stopwatch ticks
        private readonly int[] _flowOf;         // index into _owner._flows
        private readonly bool[] _twice;         // to be delivered twice
        private readonly int[] _free;           // stack of free slots
        private int _freeCount;
        private readonly int[] _fifo;           // ring of slots in arrival order; their due times never decrease
        private readonly int _mask;
        private int _fifoHead, _fifoCount;
        private long _fifoLastDue;              // due time of the slot last put in the ring
        private readonly int[] _heap;           // min-heap of slots by due time: out-of-order releases
        private int _heapCount;

        private readonly double _loss;
        private readonly long _delayTicks;
        private readonly long _jitterTicks;
        private readonly bool _jitterReorders;
        private readonly double _reorder;
        private readonly long _reorderTicks;
        private readonly double _duplicate;
        private readonly double _ticksPerByte;  // 0: unlimited
        private readonly double _queueBytes;
        private double _linkFree;               // Stopwatch ticks when the bottleneck has sent everything accepted so far
        private int _dropFirst;

        private bool _readable;                 // client→server: Poll said the front socket has a datagram
        private int _lastFlow;                  // client→server: the flow of the previous datagram
        private int _nextFlow;                  // server→client: the flow socket to read first next time
        private readonly List<Socket> _waitList = new(); // server→client: the sockets to wait on

        private long _received, _forwarded, _forwardedBytes, _lost, _queueDrops, _firstDrops, _sendErrors;
        private long _reordered, _duplicated, _flowDrops;

        public Direction(PathEmulator owner, string name, PathDirectionOptions d, PathEmulatorOptions o, TimeSpan roundTrip,
            int seed, bool toServer)
        {
            _owner = owner;
            _toServer = toServer;
            _random = new Random(seed);
            int slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)o.Slots);
            _mask = slots - 1;
            _slotSize = o.MaxDatagramSize;
            _buffer = GC.AllocateUninitializedArray<byte>(slots * _slotSize, pinned: true);
            _length = new int[slots];
            _due = new long[slots];
            _flowOf = new int[slots];
            _twice = new bool[slots];
            _free = new int[slots];
            for (int i = 0; i < slots; i++) _free[i] = slots - 1 - i; // slot 0 on top: the first datagrams use the start of the buffer
            _freeCount = slots;
            _fifo = new int[slots];
            _heap = new int[slots];
            _waitList.Capacity = o.MaxFlows + 1;
            _loss = d.LossProbability;
            _delayTicks = Ticks(d.Delay);
            _jitterTicks = Ticks(d.Jitter);
            _jitterReorders = d.AllowJitterReordering;
            _reorder = d.ReorderProbability;
            _reorderTicks = Ticks(d.ReorderDelay);
            _duplicate = d.DuplicateProbability;
            _dropFirst = d.DropFirst;
            if (d.BandwidthBytesPerSecond > 0)
            {
                _ticksPerByte = (double)Stopwatch.Frequency / d.BandwidthBytesPerSecond;
                _queueBytes = d.QueueBytes > 0
                    ? d.QueueBytes
                    : Math.Max(64 * 1024, d.BandwidthBytesPerSecond * roundTrip.TotalSeconds);
            }
            _thread = new Thread(Run) { IsBackground = true, Name = "path-emulator " + name, Priority = ThreadPriority.AboveNormal };
        }

        private static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

        public void Start() => _thread.Start();

        public void DropNext(int count) => Interlocked.Add(ref _dropFirst, count);

        public void Join() => _thread.Join();

        public PathDirectionStats Snapshot() => new(
            Interlocked.Read(ref _received), Interlocked.Read(ref _forwarded), Interlocked.Read(ref _forwardedBytes),
            Interlocked.Read(ref _lost), Interlocked.Read(ref _queueDrops), Interlocked.Read(ref _firstDrops),
            Interlocked.Read(ref _sendErrors))
        {
            Reordered = Interlocked.Read(ref _reordered),
            Duplicated = Interlocked.Read(ref _duplicated),
            DroppedByFlowLimit = Interlocked.Read(ref _flowDrops),
        };

        private void Run()
        {
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var scratch = new byte[65536];
            try
            {
                while (!_owner._stopping)
                {
                    Release(Stopwatch.GetTimestamp());

                    if (_toServer ? ReceiveFromClients(from, scratch) : ReceiveFromServer(scratch)) continue;

                    // Nothing to read: wait for a datagram or the next release, whichever is first.
                    long waitUs = 50_000;
                    long next = NextDue();
                    if (next != long.MaxValue)
                    {
                        long ticks = next - Stopwatch.GetTimestamp();
                        waitUs = Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 0, 50_000);
                    }
                    if (_toServer)
                    {
                        if (waitUs >= 1000)
                            _readable = _owner._front.Poll((int)waitUs, SelectMode.SelectRead); // whole milliseconds: never wakes late by design
                        else if (!(_readable = _owner._front.Poll(0, SelectMode.SelectRead)))
                            Thread.Yield();                                                    // the last fraction of a millisecond: spin politely
                    }
                    else if (waitUs >= 1000)
                    {
                        WaitForServer((int)waitUs);
                    }
                    else
                    {
                        Thread.Yield(); // the receive attempts just made were the poll
                    }
                }
            }
            catch (ObjectDisposedException) { }
            catch (SocketException) when (_owner._stopping) { }
            catch (Exception e)
            {
                _owner.Fault ??= e; // surfaced by the property instead of taking the process down
            }
        }

        /// <summary>Client→server: up to a budget of datagrams off the front socket; false when there was none.</summary>
        private bool ReceiveFromClients(SocketAddress from, byte[] scratch)
        {
            var front = _owner._front;
            bool got = false;
            for (int i = 0; i < ReceiveBudget; i++)
            {
                // ReceiveFrom throws when the socket is empty: ask first (Poll's answer saves one asking).
                if (!_readable && front.Available == 0) break;
                _readable = false;
                int slot = _freeCount > 0 ? _free[_freeCount - 1] : -1;
                var into = slot < 0 ? scratch.AsSpan() : _buffer.AsSpan(slot * _slotSize, _slotSize);
                int n;
                try
                {
                    n = front.ReceiveFrom(into, SocketFlags.None, from);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
                {
                    break;
                }
                catch (SocketException e) when (!_owner._stopping)
                {
                    got = true;
                    if (e.SocketErrorCode != SocketError.MessageSize) continue; // not a datagram
                    Interlocked.Increment(ref _received);
                    Interlocked.Increment(ref _queueDrops);                     // too big for a slot
                    continue;
                }
                got = true;
                int flow = from.Family == AddressFamily.InterNetwork ? _owner.FlowOf(from, ref _lastFlow) : -1;
                if (flow < 0)
                {
                    Interlocked.Increment(ref _received);
                    Interlocked.Increment(ref _flowDrops);
                    continue;
                }
                Accept(slot, n, flow);
            }
            return got;
        }

        /// <summary>Server→client: a few datagrams from each flow's socket in turn, up to a budget; false when there was none.</summary>
        private bool ReceiveFromServer(byte[] scratch)
        {
            int flows = _owner._flowCount;
            if (flows == 0) return false;
            bool got = false;
            int budget = ReceiveBudget;
            bool any = true;
            while (budget > 0 && any)
            {
                any = false;
                for (int k = 0; k < flows && budget > 0; k++)
                {
                    int flow = _nextFlow < flows ? _nextFlow : 0;
                    _nextFlow = flow + 1;
                    var back = _owner._flows[flow].Back;
                    for (int j = 0; j < FlowBurst && budget > 0; j++)
                    {
                        int slot = _freeCount > 0 ? _free[_freeCount - 1] : -1;
                        var into = slot < 0 ? scratch.AsSpan() : _buffer.AsSpan(slot * _slotSize, _slotSize);
                        int n = back.Receive(into, SocketFlags.None, out var error);
                        if (error == SocketError.WouldBlock) break;
                        budget--;
                        any = true;
                        if (error == SocketError.MessageSize)
                        {
                            Interlocked.Increment(ref _received);
                            Interlocked.Increment(ref _queueDrops);
                            continue;
                        }
                        if (error != SocketError.Success) continue; // an ICMP error surfaced on the socket; not a datagram
                        Accept(slot, n, flow);
                    }
                }
                got |= any;
            }
            return got;
        }

        /// <summary>Server→client: sleeps until a flow socket (or the wake-up socket, for a new flow) is readable, or the time is up.</summary>
        private void WaitForServer(int waitUs)
        {
            var wake = _owner._wake;
            _waitList.Clear();
            _waitList.Add(wake);
            int flows = _owner._flowCount;
            for (int i = 0; i < flows; i++) _waitList.Add(_owner._flows[i].Back);
            Socket.Select(_waitList, null, null, waitUs);
            if (_waitList.Count > 0 && ReferenceEquals(_waitList[0], wake))
            {
                Span<byte> b = stackalloc byte[16];
                while (wake.Receive(b, SocketFlags.None, out var error) >= 0 && error == SocketError.Success) { }
            }
        }

        /// <summary>
        /// A datagram of <paramref name="n"/> bytes now in <paramref name="slot"/> (-1: there was no free
        /// slot): drops it, or stamps its release time and queues it.
        /// </summary>
        private void Accept(int slot, int n, int flow)
        {
            Interlocked.Increment(ref _received);
            if (Volatile.Read(ref _dropFirst) > 0)
            {
                Interlocked.Decrement(ref _dropFirst); // this thread is the only one that takes from it
                Interlocked.Increment(ref _firstDrops);
                return;
            }
            if (slot < 0 || n > _slotSize)
            {
                Interlocked.Increment(ref _queueDrops);
                return;
            }
            if (_loss > 0 && _random.NextDouble() < _loss)
            {
                Interlocked.Increment(ref _lost);
                return;
            }

            // The bottleneck, in arrival order, for every flow together.
            long now = Stopwatch.GetTimestamp();
            long due;
            if (_ticksPerByte > 0)
            {
                double start = Math.Max(_linkFree, now);
                double waiting = (start - now) / _ticksPerByte;   // bytes ahead of this one at the bottleneck
                if (waiting + n > _queueBytes)
                {
                    Interlocked.Increment(ref _queueDrops);
                    return;
                }
                _linkFree = start + n * _ticksPerByte;
                due = (long)_linkFree + _delayTicks;
            }
            else
            {
                due = now + _delayTicks;
            }

            // Then propagation: jitter, holding back, duplication (the random draws only for what is asked,
            // so a path without them makes the same loss decisions as before they existed).
            if (_jitterTicks > 0) due += (long)(_random.NextDouble() * (_jitterTicks + 1));
            bool outOfOrder = false;
            if (_reorder > 0 && _random.NextDouble() < _reorder)
            {
                due += _reorderTicks;
                outOfOrder = true;
            }
            else if (_fifoCount > 0 && due < _fifoLastDue)
            {
                if (_jitterReorders) outOfOrder = true;  // overtakes what is in the ring
                else due = _fifoLastDue;                 // FIFO: leaves right after its predecessor
            }
            bool twice = _duplicate > 0 && _random.NextDouble() < _duplicate;

            _freeCount--; // the slot on top of the free stack is the one received into
            _length[slot] = n;
            _due[slot] = due;
            _flowOf[slot] = flow;
            _twice[slot] = twice;
            if (outOfOrder)
            {
                Interlocked.Increment(ref _reordered);
                HeapPush(slot);
            }
            else
            {
                _fifo[(_fifoHead + _fifoCount) & _mask] = slot;
                _fifoCount++;
                _fifoLastDue = due;
            }
        }

        private long NextDue()
        {
            long f = _fifoCount > 0 ? _due[_fifo[_fifoHead]] : long.MaxValue;
            long h = _heapCount > 0 ? _due[_heap[0]] : long.MaxValue;
            return Math.Min(f, h);
        }

        /// <summary>Sends every datagram due by <paramref name="now"/>, earliest first, from the ring and the heap.</summary>
        private void Release(long now)
        {
            while (true)
            {
                long f = _fifoCount > 0 ? _due[_fifo[_fifoHead]] : long.MaxValue;
                long h = _heapCount > 0 ? _due[_heap[0]] : long.MaxValue;
                int slot;
                if (h < f)
                {
                    if (h > now) return;
                    slot = HeapPop();
                }
                else
                {
                    if (f > now) return;
                    slot = _fifo[_fifoHead];
                    _fifoHead = (_fifoHead + 1) & _mask;
                    _fifoCount--;
                }
                var flow = _owner._flows[_flowOf[slot]];
                var data = new ReadOnlySpan<byte>(_buffer, slot * _slotSize, _length[slot]);
                Send(flow, data);
                if (_twice[slot])
                {
                    Interlocked.Increment(ref _duplicated);
                    Send(flow, data);
                }
                _free[_freeCount++] = slot;
            }
        }

        private void Send(Flow flow, ReadOnlySpan<byte> data)
        {
            bool sent;
            if (_toServer)
            {
                flow.Back.Send(data, SocketFlags.None, out var error);
                sent = error == SocketError.Success;
            }
            else
            {
                try
                {
                    _owner._front.SendTo(data, SocketFlags.None, flow.Address);
                    sent = true;
                }
                catch (SocketException)
                {
                    sent = false;
                }
            }
            if (!sent)
            {
                Interlocked.Increment(ref _sendErrors); // socket buffer full or the peer is gone: the datagram is lost
                return;
            }
            Interlocked.Increment(ref _forwarded);
            Interlocked.Add(ref _forwardedBytes, data.Length);
            if (_toServer)
            {
                Interlocked.Increment(ref flow.DatagramsToServer);
                Interlocked.Add(ref flow.BytesToServer, data.Length);
            }
            else
            {
                Interlocked.Increment(ref flow.DatagramsToClient);
                Interlocked.Add(ref flow.BytesToClient, data.Length);
            }
        }

        private void HeapPush(int slot)
        {
            int i = _heapCount++;
            long due = _due[slot];
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_due[_heap[parent]] <= due) break;
                _heap[i] = _heap[parent];
                i = parent;
            }
            _heap[i] = slot;
        }

        private int HeapPop()
        {
            int top = _heap[0];
            int last = _heap[--_heapCount];
            int n = _heapCount;
            if (n > 0)
            {
                long due = _due[last];
                int i = 0;
                while (true)
                {
                    int child = 2 * i + 1;
                    if (child >= n) break;
                    if (child + 1 < n && _due[_heap[child + 1]] < _due[_heap[child]]) child++;
                    if (_due[_heap[child]] >= due) break;
                    _heap[i] = _heap[child];
                    i = child;
                }
                _heap[i] = last;
            }
            return top;
        }
    }
}
