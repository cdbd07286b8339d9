namespace QuicSend.Transport;

/// <summary>
/// A command for an endpoint's driver thread, the only thread that calls into the
/// native endpoint. User threads post commands; the driver runs them in order.
/// </summary>
internal abstract class DriverOp
{
    /// <summary>Runs on the driver thread.</summary>
    public abstract void Run();

    /// <summary>The driver stopped before this could run or finish; fail whoever waits.</summary>
    public abstract void Abandon(Exception error);
}

/// <summary>
/// A one-shot command with a result. The body runs on the driver thread; it either
/// completes the call (<see cref="Complete"/>, <see cref="Fail"/>) or parks it: its
/// owner keeps it and runs it again when the engine signals progress. For calls that are rare (open, close,
/// statistics); the hot paths use the reusable <see cref="StreamOperation{T}"/>.
/// </summary>
internal sealed class DriverCall<T> : DriverOp
{
    private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<DriverCall<T>> _body;

    public DriverCall(Action<DriverCall<T>> body) => _body = body;

    public Task<T> Task => _result.Task;

    /// <summary>Cancelled (by a token) or otherwise finished: running it again does nothing.</summary>
    public bool IsFinished => _result.Task.IsCompleted;

    /// <summary>False when the caller had already given up (cancelled): undo what the call did.</summary>
    public bool Complete(T value) => _result.TrySetResult(value);

    public void Fail(Exception error) => _result.TrySetException(error);

    /// <summary>Gives up waiting; only for calls whose waiting leaves nothing half-done in the engine.</summary>
    public void Cancel(CancellationToken token) => _result.TrySetCanceled(token);

    public override void Run()
    {
        if (IsFinished) return;
        try
        {
            _body(this);
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    public override void Abandon(Exception error) => Fail(error);
}

/// <summary>A command whose result nobody awaits (disposal, abort): errors are dropped.</summary>
internal sealed class DriverAction(Action body) : DriverOp
{
    public override void Run() => body();

    public override void Abandon(Exception error) { }
}
