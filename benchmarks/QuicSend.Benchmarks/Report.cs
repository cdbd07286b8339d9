// The benchmark's results: the timed runs of each row, saved as tab-separated lines (so runs of
// several invocations, or of two engines, can be summarised later) and printed as medians.
using System.Globalization;

enum Group { Loopback, Path, Pool }

sealed record Entry(Group Group, string Name, string Note, Sample Sample);

sealed class Results(string engine, int mib, DateTime started)
{
    public string Engine { get; private set; } = engine;
    public int Mib { get; private set; } = mib;
    public DateTime Started { get; private set; } = started;
    public List<Entry> Entries { get; } = [];

    public void Add(Group group, string name, string note, Sample s) => Entries.Add(new(group, name, note, s));

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One line per timed run: engine, start (UTC), MiB, group, row, note, seconds, bytes, CPU seconds, then the path counters.</summary>
    public void Append(string path)
    {
        using var w = File.AppendText(path);
        foreach (var e in Entries)
        {
            var s = e.Sample;
            var p = s.Path;
            w.WriteLine(string.Join('\t', Engine, Started.ToString("yyyy-MM-dd HH:mm", Inv), Mib.ToString(Inv), e.Group, e.Name, e.Note,
                s.Seconds.ToString("R", Inv), s.Bytes.ToString(Inv), s.CpuSeconds.ToString("R", Inv),
                p?.SentPackets ?? -1, p?.LostPackets ?? -1, p?.RelayReceived ?? -1, p?.RelayQueueDrops ?? -1, s.LinkMiBs.ToString("R", Inv)));
        }
    }

    /// <summary>Reads a samples file; the engine, size and date are those of its first line.</summary>
    public static Results Load(string path)
    {
        Results? r = null;
        foreach (var line in File.ReadLines(path))
        {
            var f = line.Split('\t');
            if (f.Length is not (13 or 14)) continue;
            r ??= new Results(f[0], int.Parse(f[2], Inv), DateTime.ParseExact(f[1], "yyyy-MM-dd HH:mm", Inv));
            long L(int i) => long.Parse(f[i], Inv);
            var counts = L(9) < 0 ? null : new PathCounts(L(9), L(10), L(11), L(12));
            r.Add(Enum.Parse<Group>(f[3]), f[4], f[5], new Sample(double.Parse(f[6], Inv), L(7), double.Parse(f[8], Inv), counts,
                f.Length == 14 ? double.Parse(f[13], Inv) : 0));
        }
        return r ?? throw new InvalidDataException($"{path} holds no samples");
    }
}

static class Report
{
    public const string SslStream = "SslStream over TCP";

    internal static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static string Rate(double x) => x < 10 ? x.ToString("0.0", CultureInfo.InvariantCulture) : x.ToString("0", CultureInfo.InvariantCulture);

    public static void Print(Results r) => Print(r, Console.Out);

    public static void Print(Results r, TextWriter o)
    {
        var rows = r.Entries.GroupBy(e => (e.Group, e.Name)).Select(g => g.ToList()).ToList();
        double? ssl = rows.FirstOrDefault(g => g[0].Name == SslStream) is { } sg ? Median(sg.Select(e => e.Sample.MiBs)) : null;
        int runs = rows.Count == 0 ? 0 : rows.Min(g => g.Count);
        o.WriteLine($"Engine {r.Engine}; {r.Mib} MiB per run, one connection; medians of {runs} runs (min–max); " +
            $"started {r.Started:yyyy-MM-dd HH:mm} UTC; {Environment.ProcessorCount} cores.");
        o.WriteLine("CPU s/GiB = process CPU time over the timed part ÷ GiB delivered. Both ends run in this one process " +
            "(and the relay's two threads on the path rows), so it is their sum.");

        var loopback = rows.Where(g => g[0].Group == Group.Loopback).ToList();
        if (loopback.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("Loopback:");
            o.WriteLine();
            o.WriteLine("| transport | MiB/s (min–max) | × SslStream | CPU s/GiB | note |");
            o.WriteLine("|---|---|---|---|---|");
        }
        foreach (var g in loopback)
        {
            var mibs = g.Select(e => e.Sample.MiBs).ToList();
            var m = Median(mibs);
            var vs = ssl is > 0 ? (m / ssl.Value).ToString("0.00", CultureInfo.InvariantCulture) : "–";
            o.WriteLine($"| {g[0].Name} | {Rate(m)} ({Rate(mibs.Min())}–{Rate(mibs.Max())}) | {vs} | " +
                $"{Median(g.Select(e => e.Sample.CpuPerGiB)):0.00} | {g[0].Note} |");
        }

        PrintPool(rows.Where(g => g[0].Group == Group.Pool).ToList(), o);

        var path = rows.Where(g => g[0].Group == Group.Path).ToList();
        if (path.Count == 0) return;
        double link = Transfers.PathLinkRate / 1048576.0;
        o.WriteLine();
        o.WriteLine($"Emulated long path (PathEmulator: 40 ms RTT, 1 % random loss each way unless the row says otherwise, {link:0} MiB/s link each way, " +
            $"one-BDP drop-tail queue; each run stops at {Transfers.PathDeadline.TotalSeconds:0} s). Goodput over the whole transfer, " +
            "from the stream's opening; sender loss = packets the sending connection declared lost ÷ sent; relay queue drops = " +
            "datagrams the bottleneck queue refused ÷ datagrams that reached the relay, sender to receiver:");
        o.WriteLine();
        o.WriteLine("| transport | MiB/s (min–max) | % of link | CPU s/GiB | sender loss | relay queue drops | note |");
        o.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var g in path)
        {
            var mibs = g.Select(e => e.Sample.MiBs).ToList();
            var m = Median(mibs);
            var counts = g.Select(e => e.Sample.Path!).ToList();
            var loss = Median(counts.Select(c => c.SentPackets == 0 ? 0 : 100.0 * c.LostPackets / c.SentPackets));
            var queue = Median(counts.Select(c => c.RelayReceived == 0 ? 0 : 100.0 * c.RelayQueueDrops / c.RelayReceived));
            o.WriteLine($"| {g[0].Name} | {Rate(m)} ({Rate(mibs.Min())}–{Rate(mibs.Max())}) | {100 * m / link:0} % | " +
                $"{Median(g.Select(e => e.Sample.CpuPerGiB)):0.00} | {loss:0.00} % | {queue:0.00} % | {g[0].Note} |");
        }
    }

    /// <summary>Striped file transfers: loopback rows beside their one-connection row, path rows as a share of their link.</summary>
    private static void PrintPool(List<List<Entry>> pool, TextWriter o)
    {
        if (pool.Count == 0) return;
        o.WriteLine();
        o.WriteLine("File transfers through QuicSendServer/QuicSendClient (tmpfs to tmpfs; SHA-256 of every piece and of the whole file, " +
                    "fsync and rename included), with a pool of N connections. Path rows: goodput of a striped download over the emulated " +
                    "path until the run's deadline, as a share of the link rate:");
        o.WriteLine();
        o.WriteLine("| transfer | MiB/s (min–max) | % of link | CPU s/GiB | note |");
        o.WriteLine("|---|---|---|---|---|");
        foreach (var g in pool)
        {
            var mibs = g.Select(e => e.Sample.MiBs).ToList();
            var m = Median(mibs);
            var link = g[0].Sample.LinkMiBs;
            var share = link > 0 ? $"{100 * m / link:0} %" : "–";
            o.WriteLine($"| {g[0].Name} | {Rate(m)} ({Rate(mibs.Min())}–{Rate(mibs.Max())}) | {share} | " +
                        $"{Median(g.Select(e => e.Sample.CpuPerGiB)):0.00} | {g[0].Note} |");
        }
    }
}
