using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using QuicSend.Http;
using QuicSend.Transport;
using static QuicSend.Tests.RawH3;

namespace QuicSend.Tests;

/// <summary>
/// A QuicSendServer under hostile input: a flood of random, mutated and malformed datagrams
/// from many source ports, then abandoned handshakes and malformed HTTP/3 over real connections
/// (garbage frames, endless header sections, clients that never read, clients that vanish).
/// Afterwards it must answer normal clients correctly, and every native object, request and
/// byte of memory the hostile traffic cost must be given back. The whole thing runs three
/// times: the first round grows caches and pools once, later rounds must not grow anything.
/// </summary>
[TestFixture]
[NonParallelizable]
public class HostileInputTests
{
    private const int Rounds = 3;
    private const int FloodDatagrams = 100_000;
    private const int FloodRatePerSecond = 25_000;
    private static readonly TimeSpan ServerIdleTimeout = TimeSpan.FromSeconds(2);

    [Test]
    public async Task AServerUnderHostileInputStaysCorrectAndGivesEverythingBack()
    {
        var total = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(85));
        var ct = cts.Token;
        var log = TestContext.Out;

        await using var server = RawH3.StartServer(maxHeaderSectionSize: 64 * 1024, idleTimeout: ServerIdleTimeout);
        var requests = new ConcurrentBag<WeakReference>();
        using var stopServing = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var serving = ServeTrackedEchoAsync(server, requests, stopServing.Token);

        // A normal client that stays connected throughout (keep-alives outlast the server's short idle timeout).
        await using var steady = await ConnectNormalAsync(server.LocalEndPoint, ct);
        await AssertServedAsync(steady, 1, ct);
        long baselineObjects = QuicEndpoint.LiveNativeObjects;
        var baseline = MeasureMemory();
        log.WriteLine($"baseline: {baselineObjects} native objects, managed {baseline.Managed >> 20} MiB, native heap in use {baseline.NativeInUse >> 20} MiB, working set {baseline.WorkingSet >> 20} MiB; " +
                      $"GC committed {GC.GetGCMemoryInfo().TotalCommittedBytes >> 20} MiB, {Process.GetCurrentProcess().Threads.Count} threads");

        var rounds = new List<MemoryUse>();
        for (int round = 1; round <= Rounds; round++)
        {
            await HostileRoundAsync(server, steady, round, ct);
            await SettleAsync(baselineObjects, ct);
            var m = MeasureMemory();
            rounds.Add(m);
            log.WriteLine($"round {round}: managed {m.Managed >> 20} MiB, native heap in use {m.NativeInUse >> 20} MiB (+{(m.NativeInUse - baseline.NativeInUse) >> 10} KiB), " +
                          $"working set {m.WorkingSet >> 20} MiB (+{(m.WorkingSet - baseline.WorkingSet) >> 20}) at {total.Elapsed.TotalSeconds:0.0} s; " +
                          $"GC committed {GC.GetGCMemoryInfo().TotalCommittedBytes >> 20} MiB, {Process.GetCurrentProcess().Threads.Count} threads");
        }

        // The serving loop holds the request it saw last; stop it before looking for leftovers.
        stopServing.Cancel();
        await serving;
        var after = MeasureMemory();
        int alive = requests.Count(w => w.IsAlive);
        log.WriteLine($"after: {alive} of {requests.Count} requests still reachable; total {total.Elapsed.TotalSeconds:0.0} s");
        Assert.That(alive, Is.EqualTo(0), "no request object outlives its handler and connection");
        Assert.That(after.Managed - baseline.Managed, Is.LessThan(64L << 20), "managed memory settles");
        Assert.That(after.WorkingSet - baseline.WorkingSet, Is.LessThan(64L << 20), "the working set settles");
        if (baseline.NativeInUse >= 0)
        {
            // The first round grows caches and pools once; later rounds must not add native memory
            // (it wobbles by a few MiB with whatever is in flight when measured; a leak keeps climbing).
            Assert.That(rounds[^1].NativeInUse - rounds[0].NativeInUse, Is.LessThan(8L << 20),
                $"native heap in use after round 1 vs round {Rounds}: a leak per round of hostile traffic");
        }
    }

    /// <summary>One round of everything hostile, then proof that the server still answers correctly.</summary>
    private static async Task HostileRoundAsync(QuicSendServer server, QuicSendClient steady, int round, CancellationToken ct)
    {
        var log = TestContext.Out;
        int seed = round * 1000;

        // ---- 1. Capture real datagrams: a normal client talks to the server through a relay that records them.
        List<byte[]> captured;
        using (var relay = new UdpRelay(server.LocalEndPoint))
        {
            var viaRelay = await ConnectNormalAsync(relay.EndPoint, ct, keepAlive: false);
            for (int i = 0; i < 3; i++) await AssertServedAsync(viaRelay, seed + 10 + i, ct, length: 30_000);
            captured = relay.FromClient.ToList();
            // The relay dies: the server must time this connection out on its own.
            relay.Cut();
            await viaRelay.DisposeAsync();
        }
        Assert.That(captured.Count, Is.GreaterThan(10), "datagrams captured from a real client");
        Assert.That(captured[0].Length, Is.GreaterThanOrEqualTo(1200), "the first is the client's padded Initial");
        Assert.That(captured[0][0] & 0xf0, Is.EqualTo(0xc0), "long header, Initial");

        // ---- 2. The datagram flood.
        long dropsBefore = KernelUdpReceiveDrops();
        var flood = await Task.Run(() => Flood(server.LocalEndPoint, captured, ct), ct);
        log.WriteLine($"flood: {flood.Sent} datagrams in {flood.Elapsed.TotalSeconds:0.0} s from {flood.Ports} source ports: " +
                      string.Join(", ", flood.ByKind.Select(k => $"{k.Key} {k.Value}")));
        log.WriteLine($"  after the flood: {QuicEndpoint.LiveNativeObjects} native objects alive (replayed Initials get a stateless Retry, no state); " +
                      $"kernel UDP receive-buffer drops during it, machine-wide: {KernelUdpReceiveDrops() - dropsBefore}");
        Assert.That(flood.Sent, Is.GreaterThanOrEqualTo(FloodDatagrams));
        await AssertServedAsync(steady, seed + 2, ct);

        // ---- 3. Malformed HTTP/3 over real connections.
        long halfOpen = await AbandonedHandshakesAsync(server.LocalEndPoint, 12, ct);
        log.WriteLine($"abandoned handshakes: {halfOpen} half-open connections left on the server (after Retry validated their address)");
        var outcomes = await GarbageConnectionsAsync(server.LocalEndPoint, 24, ct);
        log.WriteLine("garbage connections: " + string.Join(", ", outcomes.GroupBy(o => o).Select(g => $"{g.Key} x{g.Count()}")));
        await EndlessHeaderSectionAsync(server.LocalEndPoint, ct);
        await SlowHeaderSectionsAsync(server.LocalEndPoint, steady, ct);
        await ClientsThatNeverReadAsync(server.LocalEndPoint, steady, ct);
        await AssertServedAsync(steady, seed + 3, ct);
        log.WriteLine($"hostile phases done; {QuicEndpoint.LiveNativeObjects} native objects alive");

        // ---- 4. Still correct: the steady client and a brand-new one each echo a 1 MiB body, hashed.
        await AssertServedAsync(steady, seed + 4, ct, length: 1 << 20);
        await AssertServedAsync(server, seed + 5, ct, length: 1 << 20);
    }

    /// <summary>Waits until the live native objects are back to <paramref name="baselineObjects"/>.</summary>
    private static async Task SettleAsync(long baselineObjects, CancellationToken ct)
    {
        var settle = Stopwatch.StartNew();
        long live = QuicEndpoint.LiveNativeObjects;
        while (live != baselineObjects && settle.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(100, ct);
            live = QuicEndpoint.LiveNativeObjects;
        }
        TestContext.Out.WriteLine($"native objects back to {live} (baseline {baselineObjects}) after {settle.Elapsed.TotalSeconds:0.0} s");
        Assert.That(live, Is.EqualTo(baselineObjects),
            "every hostile connection closed or timed out and was freed; only the server and the steady client remain");
    }

    // ---- servers and clients

    /// <summary>An echo server (as HttpTests.ServeEchoAsync) that keeps a weak reference to every request it sees.</summary>
    private static Task ServeTrackedEchoAsync(QuicSendServer server, ConcurrentBag<WeakReference> seen, CancellationToken ct) => Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
            {
                if (seen.Count < 10_000) seen.Add(new WeakReference(req));
                _ = Task.Run(async () =>
                {
                    try
                    {
                        using (req)
                        {
                            var body = await req.ReadBodyAsync(cancellationToken: ct);
                            await req.RespondAsync(200, $"echo:{req.Path}:{req.HeaderInfo}", QuicSendBody.FromBytes(body), cancellationToken: ct);
                        }
                    }
                    catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException or InvalidDataException) { }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) { }
    }, CancellationToken.None);

    private static Task<QuicSendClient> ConnectNormalAsync(IPEndPoint server, CancellationToken ct, bool keepAlive = true)
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        if (keepAlive) o.KeepAliveInterval = TimeSpan.FromMilliseconds(400);
        return QuicSendClient.ConnectAsync(server, new QuicSendClientOptions { Transport = o, Token = HttpTests.Token, ServerName = "localhost" }, ct);
    }

    private readonly record struct MemoryUse(long Managed, long NativeInUse, long WorkingSet);

    /// <summary>
    /// Managed heap after full collections (the last one aggressive); native heap bytes in use (glibc's mallinfo2: allocated
    /// chunks in every arena plus mmapped ones, so freed-but-kept memory does not count); and the
    /// working set after asking glibc to hand free memory back (malloc_trim), so what remains is
    /// memory in use rather than what the allocator keeps for reuse.
    /// </summary>
    private static MemoryUse MeasureMemory()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        // Aggressive: also decommit what the GC keeps committed for future allocations.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long native = -1;
        try
        {
            var mi = mallinfo2();
            native = (long)(mi.Uordblks + mi.Hblkhd);
            malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: the working set then includes what the allocator keeps.
        }
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return new MemoryUse(GC.GetTotalMemory(true), native, p.WorkingSet64);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 mallinfo2();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    /// <summary>Linux's count of UDP datagrams dropped for a full receive buffer (machine-wide; for the log only).</summary>
    private static long KernelUdpReceiveDrops()
    {
        try
        {
            var lines = File.ReadAllLines("/proc/net/snmp").Where(l => l.StartsWith("Udp:", StringComparison.Ordinal)).ToArray();
            if (lines.Length < 2) return 0;
            int column = Array.IndexOf(lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), "RcvbufErrors");
            return column < 0 ? 0 : long.Parse(lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[column], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    // ---- the datagram flood

    private sealed record FloodResult(long Sent, TimeSpan Elapsed, int Ports, SortedDictionary<string, long> ByKind);

    /// <summary>
    /// Sends <see cref="FloodDatagrams"/> hostile datagrams from 128 source ports, paced so the server
    /// reads them rather than the kernel dropping them: random bytes, mutated and truncated copies of
    /// the captured ones, malformed long headers, Initial-looking packets, other versions, short
    /// headers for unknown connections, and exact replays of the captured Initial from new ports.
    /// </summary>
    private static FloodResult Flood(IPEndPoint server, List<byte[]> captured, CancellationToken ct)
    {
        var sockets = new Socket[128];
        for (int i = 0; i < sockets.Length; i++)
        {
            sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            sockets[i].Bind(new IPEndPoint(IPAddress.Loopback, 0));
        }
        var byKind = new SortedDictionary<string, long>();
        var rng = new Random(20240601);
        var buf = new byte[1500];
        var sw = Stopwatch.StartNew();
        long sent = 0;
        try
        {
            for (int i = 0; i < FloodDatagrams && !ct.IsCancellationRequested; i++)
            {
                string kind;
                int len;
                switch (i % 8)
                {
                    case 0:
                        kind = "random";
                        len = rng.Next(0, buf.Length + 1);
                        rng.NextBytes(buf.AsSpan(0, len));
                        break;
                    case 1:
                    case 2:
                        kind = "mutated";
                        len = Mutate(rng, captured[rng.Next(captured.Count)], buf);
                        break;
                    case 3:
                        kind = "truncated";
                        var src = captured[rng.Next(captured.Count)];
                        len = rng.Next(0, src.Length);
                        src.AsSpan(0, len).CopyTo(buf);
                        break;
                    case 4:
                        kind = "malformed-long-header";
                        len = MalformedLongHeader(rng, buf);
                        break;
                    case 5:
                        kind = "initial-like";
                        len = InitialLike(rng, buf);
                        break;
                    case 6:
                        if (i % 2000 == 6)
                        {
                            kind = "replayed-initial";
                            len = captured[0].Length;
                            captured[0].CopyTo(buf, 0);
                        }
                        else
                        {
                            kind = "replayed";
                            var r = captured[rng.Next(captured.Count)];
                            len = r.Length;
                            r.CopyTo(buf, 0);
                        }
                        break;
                    default:
                        if (rng.Next(2) == 0)
                        {
                            kind = "other-version";
                            len = rng.Next(1200, 1500);
                            rng.NextBytes(buf.AsSpan(0, len));
                            buf[0] |= 0xc0;
                            BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(1), (uint)rng.Next(2, int.MaxValue) | 0x0a0a0a0a);
                            buf[5] = 8;
                            buf[14] = 8;
                        }
                        else
                        {
                            kind = "short-header";
                            len = rng.Next(21, 1500);
                            rng.NextBytes(buf.AsSpan(0, len));
                            buf[0] = (byte)(0x40 | (buf[0] & 0x3f));
                        }
                        break;
                }
                sockets[rng.Next(sockets.Length)].SendTo(buf.AsSpan(0, len), SocketFlags.None, server);
                sent++;
                byKind[kind] = byKind.GetValueOrDefault(kind) + 1;
                // Pace: do not run ahead of the rate (the server shares the machine).
                if ((i & 255) == 255)
                    while (sent > sw.Elapsed.TotalSeconds * FloodRatePerSecond) Thread.Sleep(1);
            }
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }
        return new FloodResult(sent, sw.Elapsed, sockets.Length, byKind);
    }

    /// <summary>A captured datagram with bits flipped, bytes overwritten, cut or extended.</summary>
    private static int Mutate(Random rng, byte[] source, byte[] buf)
    {
        int len = source.Length;
        source.CopyTo(buf, 0);
        int edits = rng.Next(1, 6);
        for (int e = 0; e < edits; e++)
        {
            switch (rng.Next(5))
            {
                case 0:
                case 1:
                    int at = rng.Next(len);
                    buf[at] ^= (byte)(1 << rng.Next(8));
                    break;
                case 2:
                    buf[rng.Next(len)] = (byte)rng.Next(256);
                    break;
                case 3:
                    len = Math.Max(1, rng.Next(len));
                    break;
                default:
                    int grow = Math.Min(buf.Length - len, rng.Next(0, 200));
                    rng.NextBytes(buf.AsSpan(len, grow));
                    len += grow;
                    break;
            }
        }
        return len;
    }

    private static int PutVarint(byte[] buf, int at, ulong v)
    {
        var bytes = Varint(v);
        int n = Math.Min(bytes.Length, buf.Length - at);
        bytes.AsSpan(0, n).CopyTo(buf.AsSpan(at));
        return n;
    }

    /// <summary>Version 1 long headers with absurd connection-id lengths, token lengths and packet lengths.</summary>
    private static int MalformedLongHeader(Random rng, byte[] buf)
    {
        int type = rng.Next(4); // Initial, 0-RTT, Handshake, Retry
        int at = 0;
        buf[at++] = (byte)(0xc0 | type << 4 | rng.Next(16));
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(at), 1);
        at += 4;
        for (int cid = 0; cid < 2; cid++)
        {
            int cidLen = rng.Next(3) == 0 ? rng.Next(21, 256) : rng.Next(0, 21);
            buf[at++] = (byte)cidLen;
            int present = rng.Next(4) == 0 ? rng.Next(0, cidLen + 1) : cidLen; // sometimes fewer bytes than announced
            present = Math.Min(present, buf.Length - at);
            rng.NextBytes(buf.AsSpan(at, present));
            at += present;
            if (rng.Next(8) == 0 || at >= buf.Length - 20) return at; // cut right there
        }
        ulong Absurd() => rng.Next(5) switch
        {
            0 => (1UL << 62) - 1,
            1 => 0,
            2 => (ulong)rng.Next(1, 4),
            3 => (ulong)rng.Next(1500, 1 << 30),
            _ => (ulong)rng.Next(0, 1500),
        };
        if (type == 0)
        {
            var tokenLength = Absurd();
            at += PutVarint(buf, at, tokenLength);
            int present = (int)Math.Min(tokenLength, (ulong)Math.Max(0, Math.Min(64, buf.Length - at - 10)));
            rng.NextBytes(buf.AsSpan(at, present));
            at += present;
        }
        if (type != 3) at += PutVarint(buf, at, Absurd());
        int end = rng.Next(3) == 0 ? rng.Next(Math.Max(at, 1200), buf.Length + 1) : Math.Min(buf.Length, at + rng.Next(0, 100));
        rng.NextBytes(buf.AsSpan(at, end - at));
        return end;
    }

    /// <summary>A well-formed-looking version 1 Initial of 1200+ bytes whose protected payload is random.</summary>
    private static int InitialLike(Random rng, byte[] buf)
    {
        int len = rng.Next(1200, buf.Length + 1);
        int at = 0;
        buf[at++] = (byte)(0xc0 | rng.Next(4));
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(at), 1);
        at += 4;
        int dcid = rng.Next(8, 21);
        buf[at++] = (byte)dcid;
        rng.NextBytes(buf.AsSpan(at, dcid));
        at += dcid;
        int scid = rng.Next(0, 21);
        buf[at++] = (byte)scid;
        rng.NextBytes(buf.AsSpan(at, scid));
        at += scid;
        buf[at++] = 0; // no token
        int rest = len - at - 2;
        buf[at++] = (byte)(0x40 | rest >> 8);
        buf[at++] = (byte)rest;
        rng.NextBytes(buf.AsSpan(at, len - at));
        return len;
    }

    // ---- malformed HTTP/3 over real connections

    /// <summary>Random bytes, random frames (any type, lengths true, false or absurd) and random field sections.</summary>
    private static byte[] Garbage(Random rng)
    {
        var parts = new List<byte[]>();
        int count = rng.Next(1, 6);
        for (int i = 0; i < count; i++)
        {
            switch (rng.Next(4))
            {
                case 0:
                    var raw = new byte[rng.Next(0, 3000)];
                    rng.NextBytes(raw);
                    parts.Add(raw);
                    break;
                case 1:
                    ulong[] types = [FrameData, FrameHeaders, FrameH2Priority, FrameCancelPush, FrameSettings, FramePushPromise, FrameH2Ping, FrameGoaway, 0x08, 0x09, FrameMaxPushId, 0x21, (ulong)rng.Next(0, 1 << 20)];
                    var payload = new byte[rng.Next(0, 500)];
                    rng.NextBytes(payload);
                    ulong claimed = rng.Next(3) == 0 ? (ulong)rng.NextInt64(0, 1L << 62) : (ulong)payload.Length;
                    parts.Add(Concat(FrameHeader(types[rng.Next(types.Length)], claimed), payload));
                    break;
                case 2:
                    var block = new byte[rng.Next(0, 200)];
                    rng.NextBytes(block);
                    if (block.Length >= 2 && rng.Next(2) == 0) block[0] = block[1] = 0;
                    parts.Add(Frame(FrameHeaders, block));
                    break;
                default:
                    var fs = new FieldSection();
                    for (int f = rng.Next(0, 12); f > 0; f--)
                    {
                        switch (rng.Next(3))
                        {
                            case 0: fs.Indexed(rng.Next(0, 110)); break;
                            case 1: fs.NameRef(rng.Next(0, 110), new string('a', rng.Next(0, 50)), rng.Next(2) == 0); break;
                            default: fs.LiteralName(rng.Next(2) == 0 ? "x-y" : ":Z", "v", rng.Next(2) == 0, rng.Next(2) == 0); break;
                        }
                    }
                    parts.Add(fs.HeadersFrame());
                    break;
            }
        }
        return Concat(parts.ToArray());
    }

    /// <summary>
    /// Connections that send garbage on request streams and on unidirectional streams of every
    /// type; a quarter vanish without closing (their relay stops, or its port closes).
    /// </summary>
    private static async Task<List<string>> GarbageConnectionsAsync(IPEndPoint server, int count, CancellationToken ct)
    {
        var outcomes = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var rng = new Random(1000 + i);
            bool vanish = i % 4 == 3;
            var relay = vanish ? new UdpRelay(server) : null;
            var c = await RawH3Client.ConnectAsync(relay?.EndPoint ?? server, ct: ct);
            try
            {
                if (rng.Next(2) == 0) await c.OpenControlStreamAsync(ct);
                for (int k = rng.Next(1, 4); k > 0; k--) await c.SendAsync(Garbage(rng), fin: rng.Next(2) == 0, ct);
                for (int k = rng.Next(0, 3); k > 0; k--)
                    await c.OpenUniAsync(Concat(Varint((ulong)rng.Next(0, 6)), Garbage(rng)), fin: rng.Next(2) == 0, ct);
            }
            catch (QuicException)
            {
                // Closed by the server while we were still sending: what we want to provoke.
            }
            var closed = await Task.WhenAny(c.Connection.Closed, Task.Delay(150, ct));
            outcomes.Add(closed == c.Connection.Closed
                ? c.Connection.Closed.Result.ErrorCode is long code ? Http3Errors.Name(code) : "closed"
                : "left open");
            if (relay is not null)
            {
                relay.Cut();
                if (i % 8 == 7) relay.Dispose(); // the port closes too: the server's datagrams meet ICMP unreachable
            }
            c.Dispose();
            relay?.Dispose();
        }
        return outcomes;
    }

    /// <summary>
    /// Real clients whose handshakes stop after their first two datagrams reach the server (the
    /// Initial, then the Initial again with the Retry token): the server holds half-open
    /// connections that only its idle timeout ends. Returns how many there were.
    /// </summary>
    private static async Task<long> AbandonedHandshakesAsync(IPEndPoint server, int count, CancellationToken ct)
    {
        long before = QuicEndpoint.LiveNativeObjects;
        var relays = Enumerable.Range(0, count).Select(_ => new UdpRelay(server, upLimit: 2)).ToList();
        var clients = relays.Select(r =>
        {
            var o = TestPki.ClientOptions();
            o.AlpnProtocols.Clear();
            o.AlpnProtocols.Add("h3");
            o.ConnectTimeout = TimeSpan.FromMilliseconds(800);
            return (Relay: r, Endpoint: QuicEndpoint.CreateClient(o));
        }).ToList();
        long clientObjects = QuicEndpoint.LiveNativeObjects - before;
        // A client counts itself connected once the server's flight arrives; the server waits for the
        // client's Finished, which the relay no longer forwards.
        var attempts = clients.Select(async c =>
        {
            try
            {
                await c.Endpoint.ConnectAsync(c.Relay.EndPoint, "localhost", ct);
            }
            catch (QuicException)
            {
            }
        }).ToList();
        await Task.WhenAll(attempts);
        await Task.Delay(100, ct);
        // Each client holds one connection of its own; whatever is beyond that is on the server.
        long halfOpen = QuicEndpoint.LiveNativeObjects - before - clientObjects - count;
        Assert.That(halfOpen, Is.GreaterThan(0), "the server holds connections whose handshakes it never saw finish");
        foreach (var (relay, endpoint) in clients)
        {
            endpoint.Dispose();
            relay.Dispose();
        }
        return halfOpen;
    }

    /// <summary>A HEADERS frame announcing 2^40 bytes, then bytes streamed at it: refused at once, the connection lives on.</summary>
    private static async Task EndlessHeaderSectionAsync(IPEndPoint server, CancellationToken ct)
    {
        await using var c = await RawH3Client.ConnectAsync(server, ct: ct);
        await c.OpenControlStreamAsync(ct);
        var s = await c.Connection.OpenStreamAsync(cancellationToken: ct);
        var chunk = Echo.RandomBytes(16 * 1024, 77);
        long written = 0;
        QuicException? refused = null;
        try
        {
            await s.WriteAsync(FrameHeader(FrameHeaders, 1UL << 40), ct);
            while (written < 64L << 20)
            {
                await s.WriteAsync(chunk, ct);
                written += chunk.Length;
            }
        }
        catch (QuicException e)
        {
            refused = e;
        }
        Assert.That(refused, Is.Not.Null, $"the endless header section was still accepted after {written >> 20} MiB");
        Assert.That(refused!.ErrorCode, Is.EqualTo(H3ExcessiveLoad), refused.Message);
        Assert.That(written, Is.LessThan(17L << 20), "refused within the stream's receive window");
        var ok = await c.ExchangeAsync("POST", "/after-endless", [1, 2, 3], null, ct);
        Assert.That(ok.Status, Is.EqualTo(200));
        Assert.That(c.Connection.Closed.IsCompleted, Is.False);
        s.Dispose();
    }

    /// <summary>
    /// Fifty request streams each dribbling an unfinished header section (under the limit) while
    /// other requests on the same connection and elsewhere are served; then the client vanishes.
    /// The connection has no token yet, so only the oldest 32 may wait (UnauthenticatedLimits):
    /// any stream refused (H3_REQUEST_REJECTED) is one of the newest 18.
    /// </summary>
    private static async Task SlowHeaderSectionsAsync(IPEndPoint server, QuicSendClient steady, CancellationToken ct)
    {
        using var relay = new UdpRelay(server);
        var c = await RawH3Client.ConnectAsync(relay.EndPoint, ct: ct);
        try
        {
            var streams = new List<QuicStream>();
            for (int i = 0; i < 50; i++) streams.Add(await c.SendAsync(FrameHeader(FrameHeaders, 60_000), fin: false, ct));
            var drip = new byte[100];
            var refused = new HashSet<int>();
            for (int round = 0; round < 10; round++)
            {
                for (int i = 0; i < streams.Count; i++)
                {
                    if (refused.Contains(i)) continue;
                    try
                    {
                        await streams[i].WriteAsync(drip, ct);
                    }
                    catch (QuicException e) when (e.Error == QuicError.StreamAborted)
                    {
                        Assert.That(e.ErrorCode, Is.EqualTo(0x10b), "refused as H3_REQUEST_REJECTED: " + e.Message);
                        refused.Add(i);
                    }
                }
                await Task.Delay(20, ct);
            }
            Assert.That(refused.Where(i => i < 32), Is.Empty, "the oldest 32 incomplete sections may wait; only newer ones are refused");
            var ok = await c.ExchangeAsync("POST", "/beside-slow", [4, 5, 6], null, ct);
            Assert.That(ok.Status, Is.EqualTo(200), "a request beside fifty unfinished header sections");
            await AssertServedAsync(steady, 40, ct);
        }
        finally
        {
            relay.Cut();
            c.Dispose();
        }
    }

    /// <summary>
    /// Clients that open every stream they may, send requests whose answers exceed their tiny
    /// receive windows, and never read: the server's handlers block on flow control. One closes
    /// properly, one vanishes (its relay stops): both must be released.
    /// </summary>
    private static async Task ClientsThatNeverReadAsync(IPEndPoint server, QuicSendClient steady, CancellationToken ct)
    {
        var body = Echo.RandomBytes(64 * 1024, 99);
        foreach (bool vanish in new[] { false, true })
        {
            var relay = vanish ? new UdpRelay(server) : null;
            var c = await RawH3Client.ConnectAsync(relay?.EndPoint ?? server, o =>
            {
                o.StreamReceiveWindow = 16 * 1024;
                o.ConnectionReceiveWindow = 256 * 1024;
            }, ct);
            try
            {
                await c.OpenControlStreamAsync(ct);
                var streams = new List<QuicStream>();
                for (int i = 0; i < 100; i++)
                    streams.Add(await c.SendAsync(Request("POST", $"/never/{i}", c.Authority, body), fin: true, ct));
                await Task.Delay(500, ct);
                // The server still serves others while a hundred of its handlers wait on this client.
                await AssertServedAsync(steady, vanish ? 51 : 50, ct);
                Assert.That(c.Connection.Closed.IsCompleted, Is.False);
            }
            finally
            {
                relay?.Cut();
                c.Dispose();
                relay?.Dispose();
            }
        }
    }

    /// <summary>
    /// A UDP relay between a client and the server: forwards both ways and records what the
    /// client sends. <see cref="Cut"/> stops forwarding, so the connection through it vanishes
    /// without a close; disposing also closes its ports.
    /// </summary>
    private sealed class UdpRelay : IDisposable
    {
        private const int MaxRecorded = 4000;
        private readonly Socket _front = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Socket _back = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly IPEndPoint _server;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _up;
        private readonly Task _down;
        private readonly int _upLimit;
        private int _upForwarded;
        private volatile EndPoint? _client;
        private volatile bool _forwarding = true;

        /// <param name="upLimit">Forward at most this many client datagrams, then cut (a handshake abandoned midway).</param>
        public UdpRelay(IPEndPoint server, int upLimit = int.MaxValue)
        {
            _server = server;
            _upLimit = upLimit;
            foreach (var s in new[] { _front, _back })
            {
                s.ReceiveBufferSize = 4 << 20;
                s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            }
            _up = Task.Run(() => PumpAsync(_front, up: true));
            _down = Task.Run(() => PumpAsync(_back, up: false));
        }

        public IPEndPoint EndPoint => (IPEndPoint)_front.LocalEndPoint!;

        public ConcurrentQueue<byte[]> FromClient { get; } = new();

        public void Cut() => _forwarding = false;

        private async Task PumpAsync(Socket from, bool up)
        {
            var buf = new byte[65536];
            EndPoint any = new IPEndPoint(IPAddress.Any, 0);
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var r = await from.ReceiveFromAsync(buf, SocketFlags.None, any, _stop.Token);
                    if (!_forwarding) continue;
                    var data = buf.AsSpan(0, r.ReceivedBytes);
                    if (up)
                    {
                        _client = r.RemoteEndPoint;
                        if (FromClient.Count < MaxRecorded) FromClient.Enqueue(data.ToArray());
                        if (++_upForwarded > _upLimit)
                        {
                            _forwarding = false;
                            continue;
                        }
                        _back.SendTo(data, SocketFlags.None, _server);
                    }
                    else if (_client is { } client)
                    {
                        _front.SendTo(data, SocketFlags.None, client);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        }

        public void Dispose()
        {
            if (_stop.IsCancellationRequested) return;
            _forwarding = false;
            _stop.Cancel();
            _front.Dispose();
            _back.Dispose();
            try { Task.WaitAll([_up, _down], TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
            _stop.Dispose();
        }
    }
}
