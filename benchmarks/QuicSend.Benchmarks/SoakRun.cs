using QuicSend.Testing;

/// <summary>
/// The soak's long mode (<c>--soak MINUTES</c>): requests without end until the time is up, a line per minute
/// so a person can watch memory and native objects, then the same verdict as the bounded test in SoakTests.
/// </summary>
internal static class SoakRun
{
    public static async Task<int> RunAsync(TimeSpan duration)
    {
        Console.WriteLine($"Soak for {duration.TotalMinutes:0.#} minutes: mixed requests of 1 B to 64 MiB, 8 in flight over 4 pooled connections, " +
                          "a client opened and closed every 500 requests, the server restarted at the half.");
        // Without a request count the restart goes by time: at the half of the duration.
        var result = await Soak.RunAsync(new SoakOptions
        {
            Requests = int.MaxValue,
            Duration = duration,
            ReportEvery = TimeSpan.FromMinutes(1),
            Report = s => Console.WriteLine(s),
            RestartAt = 0,
            RestartAfter = duration / 2,
        });
        Console.WriteLine($"baseline {result.Baseline}");
        Console.WriteLine($"final    {result.Final}");
        Console.WriteLine($"{result.Requests} requests, {result.Bytes / 1048576} MiB, {result.ChurnClients} extra clients, restarted: {result.Restarted}, " +
                          $"{result.FailedByRestart} requests failed by the restart and were sent again, {result.Mismatches} mismatches");
        foreach (var m in result.MismatchDetails) Console.WriteLine($"mismatch: {m}");
        foreach (var m in result.RestartErrors.Distinct()) Console.WriteLine($"restart: {m}");
        bool ok = result.Mismatches == 0 && result.Final.LiveNativeObjects == result.Baseline.LiveNativeObjects
                  && result.Final.GcHeapBytes - result.Baseline.GcHeapBytes < (8L << 20) && result.Final.RssBytes - result.Baseline.RssBytes < (160L << 20);
        Console.WriteLine(ok ? "soak: OK" : "soak: FAILED (see above)");
        return ok ? 0 : 1;
    }
}
