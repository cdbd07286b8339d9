// Bulk-throughput benchmark: one connection, memory to memory, the receiver discards. QuicSend
// with each congestion controller on loopback beside SslStream/TCP and HttpClient/Kestrel HTTP/2
// measured in the same run, and QuicSend over an emulated long, lossy path (PathEmulator).
// Each row: one warm-up run (loopback rows), then --runs timed runs; the table shows medians.
//
//   dotnet benchmarks/QuicSend.Benchmarks/bin/Release/net10.0/QuicSend.Benchmarks.dll
//       [--mib 512] [--runs 5] [--quick] [--only TEXT] [--samples FILE] [--table-from FILE] [--trace]
//       [--pool N] [--file-mib 1024] [--results FILE]
//
//   --quick          64 MiB, 3 runs
//   --only TEXT      rows whose name contains TEXT (=TEXT: the row named exactly TEXT)
//   --samples FILE   also append every timed run to FILE (tab-separated), for compare-engines.sh
//   --table-from F   run nothing: print the tables from a samples file
//   --trace          path rows: print the receiver's progress, cwnd, RTT and losses every 100 ms
//   --pool N         connections of the pooled rows (default 4)
//   --file-mib N     size of the file-transfer rows' file (default 1024)
//   --results FILE   also write the tables, the machine and this command line to FILE (markdown)
//   --soak MINUTES   run nothing else: the soak (src/QuicSend.Testing/Soak.cs) for MINUTES, a line per minute
//                    (requests, MiB, RSS, GC heap, live native objects), then the verdict; exit 1 if anything failed
using QuicSend.Testing;
using QuicSend.Transport;

int mib = 512, runs = 5, pool = 4, fileMib = 1024;
double soakMinutes = 0;
string? only = null, samplesPath = null, tableFrom = null, resultsPath = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--mib": mib = int.Parse(args[++i]); break;
        case "--runs": runs = int.Parse(args[++i]); break;
        case "--quick": mib = 64; runs = 3; break;
        case "--only": only = args[++i]; break;
        case "--samples": samplesPath = args[++i]; break;
        case "--table-from": tableFrom = args[++i]; break;
        case "--trace": Transfers.Trace = true; break;
        case "--pool": pool = int.Parse(args[++i]); break;
        case "--file-mib": fileMib = int.Parse(args[++i]); break;
        case "--results": resultsPath = args[++i]; break;
        case "--soak": soakMinutes = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]}; see the top of Program.cs");
            return 2;
    }
}
if (mib < 1 || runs < 1 || pool < 2 || fileMib < 1) { Console.Error.WriteLine("--mib, --runs and --file-mib must be at least 1, --pool at least 2"); return 2; }

if (soakMinutes > 0) return await SoakRun.RunAsync(TimeSpan.FromMinutes(soakMinutes));

if (tableFrom is not null)
{
    Report.Print(Results.Load(tableFrom));
    return 0;
}

long total = (long)mib << 20;
var t = new Transfers(total);
var results = new Results(Engine.Name, mib, DateTime.UtcNow);
var pathNote = Engine.HasPacingSwitch ? "Pacing option on" : "this engine always paces";

async Task Row(Group group, string name, string note, Func<Task<Sample>> run)
{
    if (!Selected(name)) return;
    // Loopback rows warm up (JIT, page faults) first; the path rows run the same code afterwards and
    // take seconds each, so they do not.
    if (group == Group.Loopback) await run();
    for (int i = 0; i < runs; i++)
    {
        var s = await run();
        results.Add(group, name, note, s);
        var path = s.Path is { } p ? $"; sender lost {p.LostPackets}/{p.SentPackets}, relay queue drops {p.RelayQueueDrops}/{p.RelayReceived}" : "";
        Console.WriteLine($"  {name} #{i + 1}: {s.MiBs:0.0} MiB/s, {s.Bytes / 1048576.0:0} MiB in {s.Seconds:0.00} s, CPU {s.CpuPerGiB:0.00} s/GiB{path}");
    }
}

Console.WriteLine($"QuicSend benchmark, engine {Engine.Name}: {mib} MiB per run, {runs} timed runs per row");
await Row(Group.Loopback, $"QuicSend {Engine.Bbr}", "GSO/GRO batched I/O", () => t.Quic(Engine.BbrControl, true));
await Row(Group.Loopback, "QuicSend CUBIC", "GSO/GRO batched I/O", () => t.Quic(CongestionControl.Cubic, true));
await Row(Group.Loopback, $"QuicSend {Engine.Reno}", "GSO/GRO batched I/O", () => t.Quic(Engine.RenoControl, true));
if (RawQuiche.Available)
{
    RawQuiche? raw = null;
    await Row(Group.Loopback, $"raw quiche {Engine.Bbr} (Rust, no C#)", "engine ceiling: native/examples/raw_quiche",
        () => (raw ??= new RawQuiche()).Run(mib));
}
else Console.WriteLine($"  (no raw-quiche row: build it with ./build.sh --target=Bench; looked for {RawQuiche.Binary})");
await Row(Group.Loopback, $"QuicSend {Engine.Bbr}, portable I/O", "one datagram per socket call", () => t.Quic(Engine.BbrControl, false));
await Row(Group.Loopback, "QuicSend HTTP/3 response", "QuicSendServer → QuicSendClient", t.Http3Response);
await Row(Group.Loopback, Report.SslStream, "baseline, same run", t.Tls);
await Row(Group.Loopback, "HttpClient/Kestrel HTTP/2", "baseline, same run", t.Http2Kestrel);
await Row(Group.Path, $"QuicSend {Engine.Bbr}, paced", pathNote, () => t.Path(Engine.BbrControl, pacing: true));
if (Engine.HasPacingSwitch)
    await Row(Group.Path, $"QuicSend {Engine.Bbr}, unpaced", "Pacing option off", () => t.Path(Engine.BbrControl, pacing: false));
await Row(Group.Path, "QuicSend CUBIC, paced", pathNote, () => t.Path(CongestionControl.Cubic, pacing: true));
// Without random loss every loss is the bottleneck queue's: where pacing should show.
await Row(Group.Path, $"QuicSend {Engine.Bbr}, paced, no random loss", pathNote, () => t.Path(Engine.BbrControl, pacing: true, loss: 0));
if (Engine.HasPacingSwitch)
    await Row(Group.Path, $"QuicSend {Engine.Bbr}, unpaced, no random loss", "Pacing option off", () => t.Path(Engine.BbrControl, pacing: false, loss: 0));

#if !QUINN_PROTO_ENGINE
// Striped file transfers with the connection pool: loopback (the file path's cost beside the
// memory-to-memory rows), then the two long paths of the benchmark's brief, BBRv2 and CUBIC.
{
    // The file (on tmpfs) is made only if a row runs.
    PoolTransfers? made = null;
    PoolTransfers Files() => made ??= new PoolTransfers((long)fileMib << 20);
    var fileNote = $"{fileMib} MiB file";
    await Row(Group.Pool, "file download ×1", fileNote, () => Files().Run(1, upload: false));
    await Row(Group.Pool, $"file download ×{pool}", fileNote, () => Files().Run(pool, upload: false));
    await Row(Group.Pool, "file upload ×1", fileNote, () => Files().Run(1, upload: true));
    await Row(Group.Pool, $"file upload ×{pool}", fileNote, () => Files().Run(pool, upload: true));
    var deadline = TimeSpan.FromSeconds(10);
    var paths = new (string Name, PathEmulatorOptions Options)[]
    {
        ("path (a) 40 ms, 0.5 %, 25 MiB/s", PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(20), 0.005, 25L << 20, seed: 7)),
        ("path (b) 100 ms, 1 %, 100 MiB/s", PathEmulatorOptions.Symmetric(TimeSpan.FromMilliseconds(50), 0.01, 100L << 20, seed: 7)),
    };
    foreach (var (name, options) in paths)
        foreach (var (ccName, cc) in new[] { (Engine.Bbr, Engine.BbrControl), ("CUBIC", CongestionControl.Cubic) })
            foreach (var n in new[] { 1, pool })
                await Row(Group.Pool, $"{name}: {ccName} ×{n}", $"striped download, stops at {deadline.TotalSeconds:0} s",
                    () => Files().Run(n, upload: false, cc, options, deadline));
    made?.Dispose();
}

// Fairness: N QuicSend flows (each its own connection) through one emulated bottleneck.
var fairRows = new List<(string Name, List<FairnessResult> Runs)>();
if (Fairness.IsSupported)
    foreach (var (ccName, cc, flows) in new[] { (Engine.Bbr, Engine.BbrControl, 2), (Engine.Bbr, Engine.BbrControl, pool), ("CUBIC", CongestionControl.Cubic, 2) })
    {
        var name = $"fairness: {flows} × {ccName}";
        if (!Selected(name)) continue;
        var list = new List<FairnessResult>();
        for (int i = 0; i < runs; i++)
        {
            var r = await Fairness.RunAsync(cc, flows);
            list.Add(r);
            Console.WriteLine($"  {name} #{i + 1}: {r}");
        }
        fairRows.Add((name, list));
    }

// Small RPCs: requests per second and latency, QuicSend beside HTTP/2, 1 / 16 / 256 in flight.
var rpcRows = new List<(string Name, List<RpcSample> Runs)>();
{
    RpcBench? made = null;
    RpcBench Rpc() => made ??= new RpcBench();
    foreach (var k in new[] { 1, 16, 256 })
        foreach (var (name, run) in new (string, Func<Task<RpcSample>>)[]
                 {
                     ($"QuicSend RPC, {k} in flight", () => Rpc().QuicSendRpc(k)),
                     ($"HttpClient/Kestrel HTTP/2 RPC, {k} in flight", () => Rpc().Http2Kestrel(k)),
                 })
        {
            if (!Selected(name)) continue;
            await run(); // warm-up
            var list = new List<RpcSample>();
            for (int i = 0; i < runs; i++)
            {
                var r = await run();
                list.Add(r);
                Console.WriteLine($"  {name} #{i + 1}: {r.PerSecond:0} req/s, p50 {r.P50Ms:0.000} ms, p99 {r.P99Ms:0.000} ms, CPU {r.CpuUsPerRequest:0} µs/req");
            }
            rpcRows.Add((name, list));
        }
}
#endif

if (samplesPath is not null) results.Append(samplesPath);
Console.WriteLine();
Report.Print(results);
#if !QUINN_PROTO_ENGINE
PrintFairnessAndRpc(Console.Out);
#endif
if (resultsPath is not null) WriteResults(resultsPath);
return 0;

bool Selected(string name) => only is null
    || (only.StartsWith('=') ? name == only[1..] : name.Contains(only, StringComparison.OrdinalIgnoreCase));

void WriteResults(string file)
{
    using var w = new StreamWriter(file);
    w.WriteLine("# Benchmark results");
    w.WriteLine();
    // The command as run from the repository's root (the Bench target passes an absolute path).
    var shown = args.Select(a => Path.IsPathRooted(a) ? Path.GetRelativePath(Environment.CurrentDirectory, a) : a);
    w.WriteLine($"Written by `./build.sh --target=Bench`, which runs `dotnet benchmarks/QuicSend.Benchmarks/bin/Release/net10.0/QuicSend.Benchmarks.dll {string.Join(' ', shown)}`, " +
                $"on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
    w.WriteLine();
    w.WriteLine($"Machine: {Environment.ProcessorCount} cores ({CpuModel()}), {Environment.OSVersion}, .NET {Environment.Version}; " +
                "both ends (and the path emulator) in one process, over loopback.");
    w.WriteLine();
    Report.Print(results, w);
#if !QUINN_PROTO_ENGINE
    PrintFairnessAndRpc(w);
#endif
}

#if !QUINN_PROTO_ENGINE
void PrintFairnessAndRpc(TextWriter o)
{
    if (fairRows.Count > 0)
    {
        var link = fairRows[0].Runs[0].LinkMiBs;
        o.WriteLine();
        o.WriteLine($"Fairness: N flows, each its own QuicSend connection, upload at once through one emulated bottleneck " +
                    $"({link:0} MiB/s, 40 ms RTT, no random loss, one-BDP drop-tail queue); each flow's goodput over a common interval " +
                    "after a warm-up; Jain's index (Σx)²/(n·Σx²), 1 = equal shares (medians of the runs; the flows' shares are from the median run):");
        o.WriteLine();
        o.WriteLine("| flows | Jain's index (min–max) | total MiB/s | % of link | each flow, MiB/s |");
        o.WriteLine("|---|---|---|---|---|");
        foreach (var (name, list) in fairRows)
        {
            var byJain = list.OrderBy(r => r.Jain).ToList();
            var mid = byJain[byJain.Count / 2];
            o.WriteLine($"| {name} | {mid.Jain:0.000} ({byJain[0].Jain:0.000}–{byJain[^1].Jain:0.000}) | {mid.TotalMiBs:0.0} | " +
                        $"{100 * mid.TotalMiBs / mid.LinkMiBs:0} % | {string.Join(" / ", mid.FlowMiBs.Select(x => x.ToString("0.0")))} |");
        }
    }
    if (rpcRows.Count == 0) return;
    o.WriteLine();
    o.WriteLine($"Small RPCs: 1 KiB request, 1 KiB response, K requests in flight on one connection, {runs} runs of 3 s (medians; min–max of the rate):");
    o.WriteLine();
    o.WriteLine("| RPC | requests/s (min–max) | p50 ms | p99 ms | CPU µs/request |");
    o.WriteLine("|---|---|---|---|---|");
    foreach (var (name, list) in rpcRows)
        o.WriteLine($"| {name} | {Report.Median(list.Select(r => r.PerSecond)):0} ({list.Min(r => r.PerSecond):0}–{list.Max(r => r.PerSecond):0}) | " +
                    $"{Report.Median(list.Select(r => r.P50Ms)):0.000} | {Report.Median(list.Select(r => r.P99Ms)):0.000} | {Report.Median(list.Select(r => r.CpuUsPerRequest)):0} |");
}
#endif

static string CpuModel()
{
    try
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown CPU" : line[(line.IndexOf(':') + 1)..].Trim();
    }
    catch (IOException) { return "unknown CPU"; }
}
