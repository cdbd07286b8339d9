using System.Threading.Tasks.Sources;

namespace QuicSend.Transport;

/// <summary>
/// A reusable, allocation-free one-waiter signal (a ValueTask source): armed by a
/// caller that must wait (under the endpoint lock), completed by the driver when
/// the engine reports the condition, or by cancellation or failure.
/// </summary>
internal sealed class AsyncSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _registration;
    private int _state; // 0 idle, 1 armed, 2 completed and not yet consumed

    public bool IsArmed => Volatile.Read(ref _state) == 1;

    /// <summary>Arms the signal; the caller holds the endpoint lock and awaits the result outside it.</summary>
    public ValueTask Arm(CancellationToken cancellationToken)
    {
        if (_state != 0) throw new InvalidOperationException("Another read, write or wait of this kind is already in progress on this object.");
        _core.Reset();
        _state = 1;
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(
                static (s, token) => ((AsyncSignal)s!).Complete(new OperationCanceledException(token)), this);
        }
        return new ValueTask(this, _core.Version);
    }

    public void Set() => Complete(null);

    public void Fail(Exception error) => Complete(error);

    private void Complete(Exception? error)
    {
        if (Interlocked.CompareExchange(ref _state, 2, 1) != 1) return;
        if (error is null) _core.SetResult(true);
        else _core.SetException(error);
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public void GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            _registration.Dispose();
            _registration = default;
            Volatile.Write(ref _state, 0);
        }
    }
}
