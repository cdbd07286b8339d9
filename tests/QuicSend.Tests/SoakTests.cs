using QuicSend.Testing;

namespace QuicSend.Tests;

/// <summary>
/// The bounded soak (issue 11): 10,000 requests of 1 byte to 64 MiB over a pooled client of four connections,
/// eight in flight, every response hashed against its request, a client opened and closed every 500 requests,
/// the server restarted once on the same port. Nothing mismatches, the restart fails only the requests in flight
/// (each with a QuicException, each sent again), and memory and native objects settle back to where they were after
/// the warm-up. The long form is `QuicSend.Benchmarks --soak MINUTES`.
/// </summary>
[TestFixture]
[NonParallelizable]
public class SoakTests
{
    [Test]
    public async Task TenThousandMixedRequestsWithChurnAndARestartLeaveNothingBehind()
    {
        var result = await Soak.RunAsync(new SoakOptions
        {
            Requests = 10_000,
            Duration = TimeSpan.FromMinutes(4),
            ReportEvery = TimeSpan.FromSeconds(10),
            Report = s => TestContext.Progress.WriteLine($"  soak {s}"),
        });
        TestContext.Out.WriteLine($"baseline: {result.Baseline}");
        TestContext.Out.WriteLine($"final:    {result.Final}");
        TestContext.Out.WriteLine($"{result.Requests} requests, {result.Bytes / 1048576} MiB, {result.ChurnClients} extra clients, " +
                                  $"{result.FailedByRestart} failed by the restart: {string.Join(" | ", result.RestartErrors.Distinct())}");

        Assert.That(result.Requests, Is.EqualTo(10_000), "every request completed within the run's 4 minutes");
        Assert.That(result.MismatchDetails, Is.Empty, "every response's bytes hash to its request's");
        Assert.That(result.Mismatches, Is.Zero);
        Assert.That(result.Restarted, Is.True);
        Assert.That(result.FailedByRestart, Is.LessThanOrEqualTo(8), "only the requests in flight at the restart failed");
        Assert.That(result.ChurnClients, Is.GreaterThanOrEqualTo(19));
        Assert.That(result.Final.LiveNativeObjects, Is.EqualTo(result.Baseline.LiveNativeObjects),
            "native objects are back to the baseline (the server and the pooled client, both replaced once)");
        Assert.That(result.Final.GcHeapBytes - result.Baseline.GcHeapBytes, Is.LessThan(8L << 20), "the managed heap settled back (8 MiB of noise allowed)");
        Assert.That(result.Final.RssBytes - result.Baseline.RssBytes, Is.LessThan(160L << 20),
            "the process's resident memory settled back (allowed: allocator caches of the 64 MiB bodies)");
    }
}
