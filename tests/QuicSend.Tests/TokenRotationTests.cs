using QuicSend.Http;

namespace QuicSend.Tests;

[TestFixture]
public class TokenRotationTests
{
    [Test]
    public void ConcurrentAddsAndRemovesLoseNothingAndRevokeEverything()
    {
        // Rotation on a live server: one thread adds new tokens while another revokes old ones.
        const int pairs = 3_000;
        var set = new TokenSet(Enumerable.Range(0, pairs).Select(i => $"old-{i}"));
        using var start = new Barrier(2);
        var adding = Task.Run(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < pairs; i++) set.Add($"new-{i}");
        });
        var removing = Task.Run(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < pairs; i++) set.Remove($"old-{i}");
        });
        Task.WaitAll([adding, removing], TimeSpan.FromSeconds(120));

        Assert.That(set.Count, Is.EqualTo(pairs), "exactly the new tokens remain");
        int lost = Enumerable.Range(0, pairs).Count(i => !set.Contains($"new-{i}"));
        int stillAccepted = Enumerable.Range(0, pairs).Count(i => set.Contains($"old-{i}"));
        Assert.That(lost, Is.Zero, "added tokens lost to a concurrent removal");
        Assert.That(stillAccepted, Is.Zero, "revoked tokens still accepted after a concurrent addition");
    }
}
