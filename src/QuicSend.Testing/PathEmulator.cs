using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace QuicSend.Testing;

/// <summary>How one direction of an emulated path treats datagrams.</summary>
public sealed class PathDirectionOptions
{
    /// <summary>One-way propagation delay added to every datagram (20 ms each way gives a 40 ms round trip).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Probability (0..1) that a datagram is dropped at random, independently of the others.</summary>
    public double LossProbability { get; set; }

    /// <summary>
    /// Link rate in UDP payload bytes per second; 0 means unlimited. Datagrams leave the bottleneck
    /// one after another at this rate (a token bucket one datagram deep), then take <see cref="Delay"/>.
    /// </summary>
    public long BandwidthBytesPerSecond { get; set; }

    /// <summary>
    /// With a bandwidth limit: bytes that may wait for the bottleneck before arrivals are dropped
    /// (tail drop, like a router buffer). 0 means one bandwidth-delay product of the whole path
    /// (rate × the sum of both directions' delays), at least 64 KiB.
    /// </summary>
    public long QueueBytes { get; set; }

    /// <summary>Drop the first this many datagrams of this direction whatever happens (to lose a handshake's first Initial, say).</summary>
    public int DropFirst { get; set; }
}

/// <summary>Settings of a <see cref="PathEmulator"/>: each direction, the random seed and the buffer sizes.</summary>
public sealed class PathEmulatorOptions
{
    /// <summary>Datagrams from the client towards the server.</summary>
    public PathDirectionOptions ClientToServer { get; set; } = new();

    /// <summary>Datagrams from the server back to the client.</summary>
    public PathDirectionOptions ServerToClient { get; set; } = new();

    /// <summary>Seed of the loss decisions: the same seed and traffic drop the same datagrams.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>Datagrams each direction can hold at once (in flight through the delay plus queued); rounded up to a power of two.</summary>
    public int Slots { get; set; } = 8192;

    /// <summary>Largest datagram carried; bigger ones are dropped (counted as queue drops).</summary>
    public int MaxDatagramSize { get; set; } = 2048;

    /// <summary>The same delay, loss and rate in both directions.</summary>
    public static PathEmulatorOptions Symmetric(TimeSpan oneWayDelay, double lossProbability, long bandwidthBytesPerSecond = 0, int seed = 1) => new()
    {
        ClientToServer = new PathDirectionOptions { Delay = oneWayDelay, LossProbability = lossProbability, BandwidthBytesPerSecond = bandwidthBytesPerSecond },
        ServerToClient = new PathDirectionOptions { Delay = oneWayDelay, LossProbability = lossProbability, BandwidthBytesPerSecond = bandwidthBytesPerSecond },
        Seed = seed,
    };
}

/// <summary>What one direction of a <see cref="PathEmulator"/> did so far.</summary>
public readonly record struct PathDirectionStats(
    long Received,
    long Forwarded,
    long ForwardedBytes,
    long DroppedByLoss,
    long DroppedByQueue,
    long DroppedFirst,
    long SendErrors)
{
    /// <summary>Every datagram that did not go through, whatever the reason.</summary>
    public long Dropped => DroppedByLoss + DroppedByQueue + DroppedFirst;
}

/// <summary>
/// A UDP relay on 127.0.0.1 between one client and one server that emulates a long, lossy
/// or narrow path: per direction a one-way delay, random loss, a rate limit with a bounded
/// drop-tail queue, and forced loss of the first datagrams. The client connects to
/// <see cref="ClientEndPoint"/>; the relay forwards to the server from a second socket, so the
/// server sees one stable address. One thread per direction receives, stamps each datagram with
/// its release time into a preallocated ring and sends it when due (no allocation per datagram).
/// The first address that sends to <see cref="ClientEndPoint"/> is the client: the relay's socket
/// is then connected to it, and datagrams from anywhere else are ignored by the kernel.
/// </summary>
public sealed class PathEmulator : IDisposable
{
    private readonly Socket _front;   // faces the client
    private readonly Socket _back;    // faces the server
    private volatile bool _clientKnown; // set once the front socket is connected to the first client that sent
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

        _front = Open();
        _back = Open();
        _back.Connect(server); // the server's replies only; sends need no address lookup
        var roundTrip = options.ClientToServer.Delay + options.ServerToClient.Delay;
        _up = new Direction(this, "client→server", options.ClientToServer, options, roundTrip, options.Seed, _front, _back, toServer: true);
        _down = new Direction(this, "server→client", options.ServerToClient, options, roundTrip, unchecked(options.Seed * 31 + 17), _back, _front, toServer: false);
        ClientEndPoint = (IPEndPoint)_front.LocalEndPoint!;
        _up.Start();
        _down.Start();
    }

    /// <summary>Where the client should send: the relay's client-facing socket.</summary>
    public IPEndPoint ClientEndPoint { get; }

    /// <summary>The error that stopped a relay thread, if one did (the path is then dead); null while all is well.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>Drops the next <paramref name="count"/> datagrams from the client to the server (counted as forced drops).</summary>
    public void DropNextClientToServer(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _up.DropNext(count);
    }

    /// <summary>Counters of the client→server direction.</summary>
    public PathDirectionStats ClientToServer => _up.Snapshot();

    /// <summary>Counters of the server→client direction.</summary>
    public PathDirectionStats ServerToClient => _down.Snapshot();

    public override string ToString() =>
        $"c→s {Describe(ClientToServer)}; s→c {Describe(ServerToClient)}";

    private static string Describe(PathDirectionStats s) =>
        $"forwarded {s.Forwarded}, lost {s.DroppedByLoss}, queue drops {s.DroppedByQueue}, forced drops {s.DroppedFirst}";

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _up.Join();
        _down.Join();
        _front.Dispose();
        _back.Dispose();
    }

    private static void Validate(PathDirectionOptions d, string name)
    {
        if (d.Delay < TimeSpan.Zero || d.Delay > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(name, "Delay must be 0..10 s.");
        if (!(d.LossProbability >= 0 && d.LossProbability <= 1)) throw new ArgumentOutOfRangeException(name, "LossProbability must be 0..1.");
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

    /// <summary>One direction: receives on one socket, holds datagrams in a ring until due, sends on the other.</summary>
    private sealed class Direction
    {
        private const int ReceiveBudget = 64;   // receives between release checks, so releases stay on time under load

        private readonly PathEmulator _owner;
        private readonly Socket _in;
        private readonly Socket _out;
        private readonly bool _toServer;
        private readonly Thread _thread;
        private readonly Random _random;

        private readonly byte[] _buffer;        // slots × slotSize bytes
        private readonly int _slotSize;
        private readonly int[] _length;
        private readonly long[] _due;           // Stopwatch ticks
        private readonly int _mask;
        private int _head, _count;

        private readonly double _loss;
        private readonly long _delayTicks;
        private readonly double _ticksPerByte;  // 0: unlimited
        private readonly double _queueBytes;
        private double _linkFree;               // Stopwatch ticks when the bottleneck has sent everything accepted so far
        private int _dropFirst;

        private long _received, _forwarded, _forwardedBytes, _lost, _queueDrops, _firstDrops, _sendErrors;

        public Direction(PathEmulator owner, string name, PathDirectionOptions d, PathEmulatorOptions o, TimeSpan roundTrip,
            int seed, Socket input, Socket output, bool toServer)
        {
            _owner = owner;
            _in = input;
            _out = output;
            _toServer = toServer;
            _random = new Random(seed);
            int slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)o.Slots);
            _mask = slots - 1;
            _slotSize = o.MaxDatagramSize;
            _buffer = GC.AllocateUninitializedArray<byte>(slots * _slotSize, pinned: true);
            _length = new int[slots];
            _due = new long[slots];
            _loss = d.LossProbability;
            _delayTicks = (long)(d.Delay.TotalSeconds * Stopwatch.Frequency);
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

        public void Start() => _thread.Start();

        public void DropNext(int count) => Interlocked.Add(ref _dropFirst, count);

        public void Join() => _thread.Join();

        public PathDirectionStats Snapshot() => new(
            Interlocked.Read(ref _received), Interlocked.Read(ref _forwarded), Interlocked.Read(ref _forwardedBytes),
            Interlocked.Read(ref _lost), Interlocked.Read(ref _queueDrops), Interlocked.Read(ref _firstDrops),
            Interlocked.Read(ref _sendErrors));

        private void Run()
        {
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var scratch = new byte[65536];
            try
            {
                while (!_owner._stopping)
                {
                    long now = Stopwatch.GetTimestamp();
                    Release(now);

                    bool got = false;
                    for (int i = 0; i < ReceiveBudget && ReceiveOne(from, scratch); i++) got = true;
                    if (got) continue;

                    // Nothing to read: wait for a datagram or the next release, whichever is first.
                    long waitUs = 50_000;
                    if (_count > 0)
                    {
                        long ticks = _due[_head] - Stopwatch.GetTimestamp();
                        waitUs = Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 0, 50_000);
                    }
                    if (waitUs >= 1000)
                        _in.Poll((int)waitUs, SelectMode.SelectRead);   // whole milliseconds: never wakes late by design
                    else if (!_in.Poll(0, SelectMode.SelectRead))
                        Thread.Yield();                                  // the last fraction of a millisecond: spin politely
                }
            }
            catch (ObjectDisposedException) { }
            catch (SocketException) when (_owner._stopping) { }
            catch (Exception e)
            {
                _owner.Fault ??= e; // surfaced by the property instead of taking the process down
            }
        }

        /// <summary>Takes one datagram off the socket if there is one; false when it is empty.</summary>
        private bool ReceiveOne(SocketAddress from, byte[] scratch)
        {
            bool full = _count > _mask;
            int tail = (_head + _count) & _mask;
            var into = full ? scratch.AsSpan() : _buffer.AsSpan(tail * _slotSize, _slotSize);
            int n;
            if (_toServer && !_owner._clientKnown)
            {
                // Until the client is known: learn it from the first datagram, then connect to it.
                if (_in.Available == 0) return false;
                try
                {
                    n = _in.ReceiveFrom(into, SocketFlags.None, from);
                }
                catch (SocketException)
                {
                    return true;
                }
                _in.Connect(new IPEndPoint(IPAddress.Any, 0).Create(from));
                _owner._clientKnown = true;
            }
            else
            {
                n = _in.Receive(into, SocketFlags.None, out var error);
                if (error == SocketError.WouldBlock) return false;
                if (error == SocketError.MessageSize)
                {
                    Interlocked.Increment(ref _received);
                    Interlocked.Increment(ref _queueDrops);
                    return true;
                }
                if (error != SocketError.Success) return true; // an ICMP error surfaced on the socket; not a datagram
            }

            Interlocked.Increment(ref _received);
            if (Volatile.Read(ref _dropFirst) > 0)
            {
                Interlocked.Decrement(ref _dropFirst); // this thread is the only one that takes from it
                Interlocked.Increment(ref _firstDrops);
                return true;
            }
            if (full || n > _slotSize)
            {
                Interlocked.Increment(ref _queueDrops);
                return true;
            }
            if (_loss > 0 && _random.NextDouble() < _loss)
            {
                Interlocked.Increment(ref _lost);
                return true;
            }

            long now = Stopwatch.GetTimestamp();
            long due;
            if (_ticksPerByte > 0)
            {
                double start = Math.Max(_linkFree, now);
                double waiting = (start - now) / _ticksPerByte;   // bytes ahead of this one at the bottleneck
                if (waiting + n > _queueBytes)
                {
                    Interlocked.Increment(ref _queueDrops);
                    return true;
                }
                _linkFree = start + n * _ticksPerByte;
                due = (long)_linkFree + _delayTicks;
            }
            else
            {
                due = now + _delayTicks;
            }
            _length[tail] = n;
            _due[tail] = due;
            _count++;
            return true;
        }

        private void Release(long now)
        {
            while (_count > 0 && _due[_head] <= now)
            {
                int slot = _head;
                _head = (_head + 1) & _mask;
                _count--;
                if (!_toServer && !_owner._clientKnown) continue;
                _out.Send(_buffer.AsSpan(slot * _slotSize, _length[slot]), SocketFlags.None, out var error);
                if (error == SocketError.Success)
                {
                    Interlocked.Increment(ref _forwarded);
                    Interlocked.Add(ref _forwardedBytes, _length[slot]);
                }
                else
                {
                    Interlocked.Increment(ref _sendErrors); // socket buffer full or the peer is gone: the datagram is lost
                }
            }
        }
    }
}
