using NUnit.Framework.Interfaces;
using QuicSend.Transport;

[assembly: QuicSend.Tests.NativeObjectsReleased]

namespace QuicSend.Tests;

/// <summary>
/// After every test fixture, the native objects alive (configs, endpoints, connections)
/// return to what they were before it: a fixture that leaks one fails, naming the count.
/// Connections drain a few round trips after they close, so it waits briefly first.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class NativeObjectsReleasedAttribute : Attribute, ITestAction
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);
    private readonly Dictionary<string, long> _before = new();

    public ActionTargets Targets => ActionTargets.Suite;

    public void BeforeTest(ITest test)
    {
        if (test.TestType != "TestFixture") return;
        lock (_before) _before[test.Id] = QuicEndpoint.LiveNativeObjects;
    }

    public void AfterTest(ITest test)
    {
        if (test.TestType != "TestFixture") return;
        long before;
        lock (_before)
        {
            if (!_before.Remove(test.Id, out before)) return;
        }
        var deadline = DateTime.UtcNow + Grace;
        long now;
        while ((now = QuicEndpoint.LiveNativeObjects) > before && DateTime.UtcNow < deadline)
        {
            // Objects a test dropped without disposing are freed by their SafeHandles' finalizers.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(50);
        }
        if (now > before)
            throw new AssertionException($"{test.Name} left {now - before} native object(s) alive ({before} before it, {now} after {Grace.TotalSeconds:0} s): some endpoint, connection or configuration was not released.");
    }
}
