using System.Threading.Tasks.Sources;

namespace QuicSend.Transport;

/// <summary>
/// A reusable operation of one kind on one stream (a read, a write, a wait for
/// headers): started on a user thread, run and completed only on the driver thread,
/// so the engine never touches a buffer whose owner has already taken it back.
/// No allocation per operation: it is its own ValueTask source. A cancellation is
/// posted to the driver, which tells the engine (the stream is stopped or reset,
/// never left half-written) before the operation fails.
/// </summary>
internal abstract class StreamOperation<T> : DriverOp, IValueTaskSource<T>, IValueTaskSource
{
    private ManualResetValueTaskSourceCore<T> _core = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _registration;
    private CancellationToken _token;
    private int _inUse;    // user side: from Start until the result is taken
    private bool _pending; // started and not yet completed (driver side, or the poster when the driver is gone)

    protected StreamOperation(EndpointDriver driver) => Driver = driver;

    protected EndpointDriver Driver { get; }

    /// <summary>What a second concurrent operation of this kind is told.</summary>
    protected abstract string BusyMessage { get; }

    /// <summary>Driver: makes progress; completes the operation or leaves it waiting for <see cref="Resume"/>.</summary>
    protected abstract void Step();

    /// <summary>Driver: the caller cancelled: tell the engine what that means, then <see cref="Fail"/>.</summary>
    protected abstract void OnCancelled(OperationCanceledException error);

    /// <summary>
    /// Takes the operation for one caller. Call it before storing the caller's buffer or arguments: a second concurrent
    /// caller is refused here, before it can replace what the first one's pending operation reads or fills.
    /// </summary>
    protected void Claim()
    {
        if (Interlocked.Exchange(ref _inUse, 1) != 0) throw new InvalidOperationException(BusyMessage);
    }

    /// <summary>After <see cref="Claim"/>: starts the operation (posts it to the driver); returns the token for a ValueTask over this source.</summary>
    protected short Begin(CancellationToken cancellationToken)
    {
        _core.Reset();
        _token = cancellationToken;
        _pending = true;
        short version = _core.Version;
        Driver.Post(this);
        return version;
    }

    /// <summary>Driver only, after <see cref="Claim"/>: starts the operation and runs its first step now, without a post.</summary>
    protected short BeginOnDriver(CancellationToken cancellationToken)
    {
        if (!Driver.OnDriverThread) throw new InvalidOperationException("BeginOnDriver is for the driver thread.");
        _core.Reset();
        _token = cancellationToken;
        _pending = true;
        short version = _core.Version;
        Run();
        return version;
    }

    public override void Run()
    {
        if (!_pending) return;
        if (_token.IsCancellationRequested)
        {
            OnCancelled(new OperationCanceledException(_token));
            return;
        }
        if (_token.CanBeCanceled)
            _registration = _token.UnsafeRegister(static s => ((StreamOperation<T>)s!).PostCancel(), this);
        TryStep();
    }

    /// <summary>Driver: the engine signalled progress (or failure) for this kind of operation.</summary>
    public void Resume()
    {
        if (_pending) TryStep();
    }

    private void TryStep()
    {
        try
        {
            Step();
        }
        catch (Exception e)
        {
            if (_pending) Fail(e); // the caller sees it; the driver goes on
        }
    }

    /// <summary>On any thread, from the token: the operation is still pending (completion disposes the registration first).</summary>
    private void PostCancel() => Driver.Post(new CancelRequest(this, _core.Version));

    protected void Complete(T result)
    {
        Finish();
        _core.SetResult(result);
    }

    protected void Fail(Exception error)
    {
        Finish();
        _core.SetException(error);
    }

    private void Finish()
    {
        _pending = false;
        _registration.Dispose(); // waits for a callback that is running now; none runs after
        _registration = default;
        _token = default;
    }

    public override void Abandon(Exception error)
    {
        if (_pending) Fail(error);
    }

    public T GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Volatile.Write(ref _inUse, 0);
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private sealed class CancelRequest(StreamOperation<T> operation, short version) : DriverOp
    {
        public override void Run()
        {
            if (operation._pending && operation._core.Version == version)
                operation.OnCancelled(new OperationCanceledException(operation._token));
        }

        public override void Abandon(Exception error) { }
    }
}
