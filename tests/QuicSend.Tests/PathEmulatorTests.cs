using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using QuicSend.Testing;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// <see cref="PathEmulator"/>'s jitter, reordering, duplication and several flows at once, with plain UDP
/// sockets on 127.0.0.1 (each datagram carries its sequence number and send time), and one QUIC
/// transfer through all of them together.
/// </summary>
[TestFixture]
[NonParallelizable]
public class PathEmulatorTests
{
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(2);

    /// <summary>One datagram as the receiver saw it: its sequence number and how long it took from the sender.</summary>
    private readonly record struct Arrival(int Seq, TimeSpan OneWay, int Length, int Sender);

    [TestCase(false)]
    [TestCase(true)]
    public void JitterDelaysWithinItsRangeAndKeepsOrderUnlessAllowedToReorder(bool allowReordering)
    {
        var delay = TimeSpan.FromMilliseconds(10);
        var jitter = TimeSpan.FromMilliseconds(10);
        using var sink = Udp();
        var options = new PathEmulatorOptions { Seed = 5 };
        options.ClientToServer.Delay = delay;
        options.ClientToServer.Jitter = jitter;
        options.ClientToServer.AllowJitterReordering = allowReordering;
        using var path = new PathEmulator(LocalOf(sink), options);
        using var client = Udp();

        // A datagram every ~2 ms: jitter (10 ms) is wider than the spacing, so drawn freely it reorders.
        const int count = 150;
        var receiving = Run(() => Collect(sink, count));
        for (int i = 0; i < count; i++)
        {
            SendStamped(client, path.ClientEndPoint, i, 100);
            Thread.Sleep(2);
        }
        var got = receiving.Result;

        var delays = got.Select(a => a.OneWay.TotalMilliseconds).OrderBy(d => d).ToArray();
        int outOfOrder = CountOutOfOrder(got);
        var stats = path.ClientToServer;
        TestContext.Out.WriteLine($"{got.Count}/{count}; one-way min {delays[0]:0.0} ms, median {delays[delays.Length / 2]:0.0}, " +
            $"90th {delays[delays.Length * 90 / 100]:0.0}, max {delays[^1]:0.0}; {outOfOrder} out of order; {path}");
        Assert.That(path.Fault, Is.Null);
        Assert.That(got, Has.Count.EqualTo(count), "no loss was asked for");
        Assert.That(delays[0], Is.GreaterThanOrEqualTo(delay.TotalMilliseconds - 0.2), "never sooner than Delay");
        // Late wake-ups of the relay or the receiver (milliseconds, on a loaded 2-core machine) push a few
        // datagrams past the range; a jitter wider than asked would push most of them.
        double within = delays.Count(d => d <= (delay + jitter).TotalMilliseconds + 2) / (double)delays.Length;
        Assert.That(within, Is.GreaterThanOrEqualTo(0.8), "within Delay + Jitter (plus a little scheduling)");
        Assert.That(delays[^1] - delays[0], Is.GreaterThan(jitter.TotalMilliseconds / 2), "the delays must vary by about the jitter");
        if (allowReordering)
        {
            Assert.That(outOfOrder, Is.GreaterThan(count / 10), "jitter far wider than the spacing reorders when allowed to");
            Assert.That(stats.Reordered, Is.GreaterThanOrEqualTo(outOfOrder));
        }
        else
        {
            Assert.That(outOfOrder, Is.Zero, "jitter without reordering keeps the order (a FIFO link)");
            Assert.That(stats.Reordered, Is.Zero);
        }
    }

    [Test]
    public void ReorderingHoldsSomeDatagramsBackAndDeliversAll()
    {
        using var sink = Udp();
        var options = new PathEmulatorOptions { Seed = 9 };
        options.ClientToServer.Delay = TimeSpan.FromMilliseconds(5);
        options.ClientToServer.ReorderProbability = 0.1;
        options.ClientToServer.ReorderDelay = TimeSpan.FromMilliseconds(5);
        using var path = new PathEmulator(LocalOf(sink), options);
        using var client = Udp();

        const int count = 1000;
        var receiving = Run(() => Collect(sink, count));
        for (int i = 0; i < count; i++)
        {
            SendStamped(client, path.ClientEndPoint, i, 200);
            if (i % 20 == 19) Thread.Sleep(1); // ~20 datagrams a millisecond: a 5 ms hold-back is overtaken by dozens
        }
        var got = receiving.Result;

        int outOfOrder = CountOutOfOrder(got);
        var stats = path.ClientToServer;
        TestContext.Out.WriteLine($"{got.Count}/{count}; {outOfOrder} arrived after a later one; {path}");
        Assert.That(path.Fault, Is.Null);
        Assert.That(got.Select(a => a.Seq).Order(), Is.EqualTo(Enumerable.Range(0, count)), "every datagram arrives, once");
        Assert.That(stats.Reordered, Is.InRange(60, 140), "about 10 % of 1000 held back");
        Assert.That(outOfOrder, Is.InRange(stats.Reordered * 8 / 10, stats.Reordered),
            "the held-back datagrams arrive after later ones (nearly all are overtaken)");
        var held = got.Where(a => IsOvertaken(got, a)).Select(a => a.OneWay.TotalMilliseconds).ToArray();
        Assert.That(held.Min(), Is.GreaterThanOrEqualTo(9.8), "held back by Delay + ReorderDelay");
    }

    [Test]
    public void DuplicationDeliversCopiesAtAboutTheRate()
    {
        using var sink = Udp();
        var options = new PathEmulatorOptions { Seed = 4 };
        options.ClientToServer.Delay = TimeSpan.FromMilliseconds(2);
        options.ClientToServer.DuplicateProbability = 0.1;
        using var path = new PathEmulator(LocalOf(sink), options);
        using var client = Udp();

        const int count = 2000;
        var receiving = Run(() => Collect(sink, int.MaxValue, quiet: TimeSpan.FromMilliseconds(300)));
        for (int i = 0; i < count; i++)
        {
            SendStamped(client, path.ClientEndPoint, i, 100);
            if (i % 50 == 49) Thread.Sleep(1);
        }
        var got = receiving.Result;

        int distinct = got.Select(a => a.Seq).Distinct().Count();
        int copies = got.Count - distinct;
        var stats = path.ClientToServer;
        TestContext.Out.WriteLine($"{got.Count} datagrams for {count} sent, {distinct} distinct; {path}");
        Assert.That(path.Fault, Is.Null);
        Assert.That(distinct, Is.EqualTo(count), "no loss was asked for");
        Assert.That(copies, Is.InRange(140, 260), "about 10 % of 2000 delivered twice");
        Assert.That(stats.Duplicated, Is.EqualTo(copies));
        Assert.That(got.GroupBy(a => a.Seq).Max(g => g.Count()), Is.EqualTo(2), "a duplicate is one extra copy");
        Assert.That(stats.Forwarded, Is.EqualTo(count + copies), "Forwarded counts the copies too");
    }

    [Test]
    public void TwoClientsShareOneBottleneckAndEachGetsItsOwnEchoes()
    {
        const long link = 1 << 20; // 1 MiB/s towards the server, shared
        using var server = Udp();
        var sources = new System.Collections.Concurrent.ConcurrentDictionary<IPEndPoint, int>();
        var arrivals = new List<(long Ticks, int Length)>();
        using var stop = new CancellationTokenSource();
        var echoing = Run(() =>
        {
            var buf = new byte[2048];
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var any = new IPEndPoint(IPAddress.Any, 0);
            server.ReceiveTimeout = 100;
            while (!stop.IsCancellationRequested)
            {
                int n;
                try { n = server.ReceiveFrom(buf, SocketFlags.None, from); }
                catch (SocketException) { continue; }
                lock (arrivals) arrivals.Add((Stopwatch.GetTimestamp(), n));
                sources.TryAdd((IPEndPoint)any.Create(from), 0);
                server.SendTo(buf.AsSpan(0, n), SocketFlags.None, from);
            }
            return 0;
        });
        var options = PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(5), 0, seed: 2);
        options.ClientToServer.BandwidthBytesPerSecond = link;
        using var path = new PathEmulator(LocalOf(server), options);
        using var a = Udp();
        using var b = Udp();

        // Each client offers ~1.5 MiB/s for 0.8 s: twice the link together.
        var run = TimeSpan.FromMilliseconds(800);
        var receivingA = Run(() => Collect(a, int.MaxValue, quiet: TimeSpan.FromMilliseconds(300)));
        var receivingB = Run(() => Collect(b, int.MaxValue, quiet: TimeSpan.FromMilliseconds(300)));
        var sending = new[] { (Sock: a, Id: 1), (Sock: b, Id: 2) }.Select(c => Run(() =>
        {
            var sw = Stopwatch.StartNew();
            int seq = 0;
            while (sw.Elapsed < run)
            {
                SendStamped(c.Sock, path.ClientEndPoint, seq++, 1000, sender: c.Id);
                SendStamped(c.Sock, path.ClientEndPoint, seq++, 1000, sender: c.Id);
                Thread.Sleep(1);
            }
            return seq;
        })).ToArray();
        var sent = sending.Select(t => t.Result).ToArray();
        var gotA = receivingA.Result;
        var gotB = receivingB.Result;
        stop.Cancel();
        echoing.Wait();

        var flows = path.GetFlowStats();
        var up = path.ClientToServer;
        long bytes;
        double seconds;
        lock (arrivals)
        {
            bytes = arrivals.Skip(1).Sum(x => (long)x.Length); // the first one's bytes left before the interval began
            seconds = (arrivals[^1].Ticks - arrivals[0].Ticks) / (double)Stopwatch.Frequency;
        }
        double rate = bytes / seconds;
        TestContext.Out.WriteLine($"sent {sent[0]} + {sent[1]}, echoed {gotA.Count} + {gotB.Count}; server got {rate / link:P0} of the link " +
            $"over {seconds:0.00} s; flows: {string.Join(", ", flows.Select(f => $"{f.Client} as {f.ServerFacing}: {f.BytesToServer} B up, {f.BytesToClient} B down"))}; {path}");
        Assert.That(path.Fault, Is.Null);
        Assert.That(path.FlowCount, Is.EqualTo(2));
        Assert.That(sources.Keys, Has.Count.EqualTo(2), "the server sees one address per client");
        Assert.That(flows.Select(f => f.ServerFacing), Is.EquivalentTo(sources.Keys));
        Assert.That(flows.Select(f => f.Client), Is.EquivalentTo(new[] { LocalOf(a), LocalOf(b) }));
        Assert.That(gotA, Is.Not.Empty, "client A gets echoes");
        Assert.That(gotB, Is.Not.Empty, "client B gets echoes");
        Assert.That(gotA.All(x => x.Sender == 1) && gotB.All(x => x.Sender == 2), Is.True, "each client gets its own echoes only");
        Assert.That(gotA.Count + gotB.Count, Is.EqualTo(up.Forwarded), "no loss on the way back: every datagram that reached the server came back");
        Assert.That(flows.Sum(f => f.DatagramsToClient), Is.EqualTo(gotA.Count + gotB.Count));
        Assert.That(up.DroppedByQueue, Is.GreaterThan(0), "twice the link rate offered: the shared queue overflows");
        Assert.That(rate, Is.LessThanOrEqualTo(link * 1.05), "both flows together stay within the link rate");
        Assert.That(rate, Is.GreaterThanOrEqualTo(link * 0.7), "and fill most of it");
        Assert.That(flows.Min(f => f.BytesToServer), Is.GreaterThan(flows.Sum(f => f.BytesToServer) / 5), "both flows get through the shared queue");
    }

    /// <summary>
    /// Server→client bulk data to several flows at once (each flow its own back socket, all read by one
    /// thread) must go through as well as to one flow: same share of what was sent, about the same
    /// added delay. Compared with a one-flow run in the same test, so a busy machine slows both alike.
    /// </summary>
    [Test]
    public void ServerToManyClientsDeliversLikeToOne()
    {
        var one = Download(flows: 1);
        var four = Download(flows: 4);
        TestContext.Out.WriteLine($"1 flow: {one}");
        TestContext.Out.WriteLine($"4 flows: {four}");

        Assert.That(one.Fault ?? four.Fault, Is.Null);
        Assert.That(one.Delivered, Is.GreaterThanOrEqualTo(0.9), "one flow: nearly everything arrives (no loss was asked for)");
        Assert.That(four.Delivered, Is.GreaterThanOrEqualTo(one.Delivered * 0.9), "four flows get what one flow gets");
        Assert.That(four.WorstFlow, Is.GreaterThanOrEqualTo(0.8), "every flow gets its share");
        Assert.That(four.MedianMs, Is.LessThanOrEqualTo(Math.Max(one.MedianMs, DownDelayMs) + 5), "no added delay with more flows");
        Assert.That(four.P90Ms, Is.LessThanOrEqualTo(Math.Max(one.P90Ms * 2, DownDelayMs + 20)), "nor in the tail");
        Assert.That(four.MedianMs, Is.GreaterThanOrEqualTo(DownDelayMs - 0.2), "never sooner than Delay");
    }

    private const int DownDelayMs = 5;

    /// <param name="Delivered">Datagrams received over datagrams sent, all flows.</param>
    /// <param name="WorstFlow">The least-served flow's received datagrams over its fair share of what arrived.</param>
    private readonly record struct DownloadResult(double Delivered, double WorstFlow, double MedianMs, double P90Ms, Exception? Fault, string Relay)
    {
        public override string ToString() =>
            $"delivered {Delivered:P1}, worst flow {WorstFlow:P0} of its share, one-way median {MedianMs:0.0} ms, 90th {P90Ms:0.0} ms; {Relay}";
    }

    /// <summary>
    /// A UDP "server" sends ~40 MiB/s of 1200-byte stamped datagrams for 0.4 s, round-robin to
    /// <paramref name="flows"/> clients, through a 200 MiB/s, 5 ms path (so the link never limits it).
    /// </summary>
    private static DownloadResult Download(int flows)
    {
        const int size = 1200;
        const double rate = 40 << 20;
        var duration = TimeSpan.FromMilliseconds(400);
        using var server = Udp();
        server.SendBufferSize = 4 << 20;
        var options = PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(DownDelayMs), 0, 200L << 20, seed: 3);
        using var path = new PathEmulator(LocalOf(server), options);
        var clients = Enumerable.Range(0, flows).Select(_ => Udp()).ToArray();
        try
        {
            // Each client says hello, so the relay makes its flow and the server learns where to send.
            server.ReceiveTimeout = 2000;
            var hello = new byte[16];
            foreach (var c in clients)
            {
                c.SendTo(hello, path.ClientEndPoint);
                server.Receive(hello);
            }
            var stats = path.GetFlowStats();
            var targets = clients.Select(c => stats.Single(f => f.Client.Equals(LocalOf(c))).ServerFacing.Serialize()).ToArray();

            var receiving = clients.Select(c => Run(() => Collect(c, int.MaxValue, quiet: TimeSpan.FromMilliseconds(300)))).ToArray();
            int sent = 0;
            Span<byte> b = stackalloc byte[size];
            b.Clear();
            long start = Stopwatch.GetTimestamp();
            long end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            double ticksPerDatagram = size * Stopwatch.Frequency / rate;
            while (true)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= end) break;
                long due = start + (long)(sent * ticksPerDatagram);
                if (due > now)
                {
                    if (due - now > Stopwatch.Frequency / 1000) Thread.Sleep(1);
                    else Thread.Yield();
                    continue;
                }
                int flow = sent % flows;
                BinaryPrimitives.WriteInt32LittleEndian(b, sent);
                BinaryPrimitives.WriteInt64LittleEndian(b[4..], Stopwatch.GetTimestamp());
                BinaryPrimitives.WriteInt32LittleEndian(b[12..], flow);
                server.SendTo(b, SocketFlags.None, targets[flow]);
                sent++;
            }
            var got = receiving.Select(r => r.Result).ToArray();

            int total = got.Sum(g => g.Count);
            var delays = got.SelectMany(g => g).Select(a => a.OneWay.TotalMilliseconds).Order().ToArray();
            for (int i = 0; i < flows; i++)
                Assert.That(got[i].All(a => a.Sender == i), Is.True, $"flow {i} gets its own datagrams only");
            return new DownloadResult(
                total / (double)sent,
                total == 0 ? 0 : got.Min(g => g.Count) / (total / (double)flows),
                delays.Length == 0 ? double.MaxValue : delays[delays.Length / 2],
                delays.Length == 0 ? double.MaxValue : delays[delays.Length * 9 / 10],
                path.Fault,
                $"sent {sent}, {path}");
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    [Test]
    public void ClientsBeyondMaxFlowsAreDroppedAndCounted()
    {
        using var sink = Udp();
        var options = new PathEmulatorOptions { MaxFlows = 1 };
        using var path = new PathEmulator(LocalOf(sink), options);
        using var first = Udp();
        using var second = Udp();

        var receiving = Run(() => Collect(sink, int.MaxValue, quiet: TimeSpan.FromMilliseconds(300)));
        for (int i = 0; i < 10; i++)
        {
            SendStamped(first, path.ClientEndPoint, i, 100, sender: 1);
            Thread.Sleep(1); // the first client is known before the second sends
            SendStamped(second, path.ClientEndPoint, i, 100, sender: 2);
        }
        var got = receiving.Result;

        Assert.That(path.Fault, Is.Null);
        Assert.That(got, Has.Count.EqualTo(10), "the first client's datagrams pass");
        Assert.That(got.Select(x => x.Sender), Is.All.EqualTo(1), "the second client's do not");
        Assert.That(path.ClientToServer.DroppedByFlowLimit, Is.EqualTo(10));
        Assert.That(path.ClientToServer.Dropped, Is.EqualTo(10));
        Assert.That(path.FlowCount, Is.EqualTo(1));
    }

    [Test]
    public async Task QuicTransferThroughLossJitterReorderingAndDuplicationIsByteExact()
    {
        using var server = QuicEndpoint.Listen(TestPki.ServerOptions());
        var options = PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(5), 0.01, seed: 21);
        foreach (var d in new[] { options.ClientToServer, options.ServerToClient })
        {
            d.Jitter = TimeSpan.FromMilliseconds(2);
            d.ReorderProbability = 0.01;
            d.DuplicateProbability = 0.01;
        }
        using var path = new PathEmulator(server.LocalEndPoint, options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = Echo.ServeAsync(server, cts.Token);

        var clientOptions = TestPki.ClientOptions();
        clientOptions.LocalEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
        using var client = QuicEndpoint.CreateClient(clientOptions);
        var conn = await client.ConnectAsync(path.ClientEndPoint, "localhost", cts.Token);
        var stream = await conn.OpenStreamAsync(cancellationToken: cts.Token);
        var data = Echo.RandomBytes(2 << 20, seed: 22);
        var sw = Stopwatch.StartNew();
        var (hash, bytes) = await Echo.RoundTripAsync(stream, data).WaitAsync(cts.Token);

        var up = path.ClientToServer;
        var down = path.ServerToClient;
        TestContext.Out.WriteLine($"2 MiB echoed in {sw.Elapsed.TotalSeconds:0.00} s; {path}");
        Assert.That(path.Fault, Is.Null);
        Assert.That(bytes, Is.EqualTo(data.Length));
        Assert.That(hash, Is.EqualTo(SHA256.HashData(data)), "SHA-256 of the echo differs from what was sent");
        Assert.That(up.DroppedByLoss + down.DroppedByLoss, Is.GreaterThan(0));
        Assert.That(up.Reordered + down.Reordered, Is.GreaterThan(0));
        Assert.That(up.Duplicated + down.Duplicated, Is.GreaterThan(0));
        cts.Cancel();
    }

    /// <summary>On a thread of its own: these loops block, and the thread pool of a 2-core machine grows slowly.</summary>
    private static Task<T> Run<T>(Func<T> f) =>
        Task.Factory.StartNew(f, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static Socket Udp()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.ReceiveBufferSize = 4 << 20;
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    private static IPEndPoint LocalOf(Socket s) => (IPEndPoint)s.LocalEndPoint!;

    /// <summary>A datagram of <paramref name="length"/> bytes: sequence number, send time (Stopwatch ticks), sender id.</summary>
    private static void SendStamped(Socket s, IPEndPoint to, int seq, int length, int sender = 0)
    {
        Span<byte> b = stackalloc byte[length];
        b.Clear();
        BinaryPrimitives.WriteInt32LittleEndian(b, seq);
        BinaryPrimitives.WriteInt64LittleEndian(b[4..], Stopwatch.GetTimestamp());
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], sender);
        s.SendTo(b, SocketFlags.None, to);
    }

    /// <summary>Receives until <paramref name="count"/> datagrams came, or nothing came for <paramref name="quiet"/> (2 s by default).</summary>
    private static List<Arrival> Collect(Socket s, int count, TimeSpan? quiet = null)
    {
        var got = new List<Arrival>();
        var buf = new byte[2048];
        s.ReceiveTimeout = (int)(quiet ?? ReceiveTimeout).TotalMilliseconds;
        while (got.Count < count)
        {
            int n;
            try { n = s.Receive(buf); }
            catch (SocketException) { break; } // quiet for the whole timeout
            long now = Stopwatch.GetTimestamp();
            got.Add(new Arrival(BinaryPrimitives.ReadInt32LittleEndian(buf),
                Stopwatch.GetElapsedTime(BinaryPrimitives.ReadInt64LittleEndian(buf.AsSpan(4)), now), n,
                BinaryPrimitives.ReadInt32LittleEndian(buf.AsSpan(12))));
        }
        return got;
    }

    /// <summary>Datagrams that arrived after one with a higher sequence number.</summary>
    private static int CountOutOfOrder(List<Arrival> got)
    {
        int max = -1, late = 0;
        foreach (var a in got)
        {
            if (a.Seq < max) late++;
            else max = a.Seq;
        }
        return late;
    }

    private static bool IsOvertaken(List<Arrival> got, Arrival a)
    {
        int i = got.IndexOf(a);
        return got.Take(i).Any(x => x.Seq > a.Seq);
    }
}
