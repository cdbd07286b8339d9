using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// One QUIC stream as a <see cref="Stream"/>. Reads and writes are
/// posted to the endpoint's driver thread, which runs them against the engine and
/// completes them: a write that flow or congestion control refuses resumes on the
/// engine's WRITABLE event, a read with nothing buffered on READABLE. One read and
/// one write may be in flight at once. Cancelling a read stops the stream's
/// receiving side; cancelling a write resets its sending side.
/// </summary>
public sealed partial class QuicStream : Stream
{
    private const int MaxWriteSlice = 256 * 1024;

    private readonly QuicConnection _conn;
    private readonly EndpointDriver _driver;
    private readonly bool _canRead;
    private readonly bool _canWrite;
    private readonly StreamFraming _framing; // raw QUIC, or an application protocol's body framing
    private readonly ReadOperation _read;
    private readonly WriteOperation _write;
    private readonly TaskCompletionSource _acknowledged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _sendingEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;              // set by the user thread that disposes
    private volatile bool _endRead;     // set by the driver when a read reached the end cleanly: later reads return 0 at once, without a hop

    // Driver-thread state.
    private bool _readDone;      // end of stream read, reset received, or reading stopped by us
    private bool _writeDone;     // finished or reset by us
    private QuicException? _readError;
    private QuicException? _writeError;

    internal QuicStream(QuicConnection conn, ulong id, bool readable, bool writable, StreamFraming? framing = null)
    {
        _framing = framing ?? StreamFraming.Raw;
        _conn = conn;
        _driver = conn.Driver;
        Id = (long)id;
        _canRead = readable;
        _canWrite = writable;
        _readDone = !readable;
        _writeDone = !writable;
        _read = new ReadOperation(this);
        _write = new WriteOperation(this);
    }

    /// <summary>The QUIC stream id.</summary>
    public long Id { get; }

    public QuicConnection Connection => _conn;

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public override bool CanRead => _canRead && !IsDisposed;
    public override bool CanWrite => _canWrite && !IsDisposed;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>The error code a cancelled read or write tells the peer.</summary>
    internal ulong CancelCode => _framing.CancelCode;

    /// <summary>How the body is framed; an application protocol finds its per-stream state here.</summary>
    internal StreamFraming Framing => _framing;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_canRead) throw new NotSupportedException("This is a unidirectional stream opened by this side; it cannot be read.");
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (buffer.Length == 0 || _endRead) return ValueTask.FromResult(0);
        return _read.Start(buffer, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        WriteAsync(buffer, completeWrites: false, cancellationToken);

    /// <summary>Writes, and with <paramref name="completeWrites"/> ends the stream after these bytes.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, bool completeWrites, CancellationToken cancellationToken = default)
    {
        if (!_canWrite) throw new NotSupportedException("This is a unidirectional stream opened by the peer; it cannot be written.");
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return _write.StartBody(buffer, completeWrites, cancellationToken);
    }

    /// <summary>Ends the sending side: the peer reads to the end of what was written.</summary>
    public void CompleteWrites()
    {
        if (_framing.EndsWithWrite)
        {
            CompleteWritesAsync().AsTask().GetAwaiter().GetResult();
            return;
        }
        if (!_canWrite) return;
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        _driver.Call(() =>
        {
            if (_writeDone) return;
            if (_writeError is not null) throw _writeError;
            _conn.ThrowIfClosed();
            int rc = _driver.Native.Finish(_conn.Id, (ulong)Id);
            if (rc == QsConst.QS_ERR_STREAM_RESET) throw StoppedError(0);
            if (rc < 0) throw Failure(rc, "Completing writes");
            _writeDone = true;
        });
    }

    /// <summary>Ends the sending side, waiting if framing bytes are still queued (HTTP/3).</summary>
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken = default)
    {
        if (!_framing.EndsWithWrite)
        {
            CompleteWrites();
            return ValueTask.CompletedTask;
        }
        return WriteAsync(ReadOnlyMemory<byte>.Empty, completeWrites: true, cancellationToken);
    }

    /// <summary>
    /// Sends a section of the framing's (<see cref="StreamFraming.TryWriteSection"/>) as this stream's
    /// write, waiting for credit when the engine has none. A <paramref name="trailing"/> section follows
    /// the body, so a body write that failed fails it too.
    /// </summary>
    internal ValueTask WriteSectionAsync(byte[] section, bool trailing, bool endStream, CancellationToken cancellationToken,
        ReadOnlyMemory<byte> bodyAfter = default) =>
        _write.StartSection(section, trailing, endStream, bodyAfter, cancellationToken);

    /// <summary>Driver only: starts a write at once, in this turn (so it leaves with what was just queued), to be awaited by a user thread.</summary>
    internal ValueTask WriteOnDriver(ReadOnlyMemory<byte> buffer, bool completeWrites, CancellationToken cancellationToken) =>
        _write.StartBodyOnDriver(buffer, completeWrites, cancellationToken);

    /// <summary>Abandons the stream: resets the sending side and asks the peer to stop sending, with an error code.</summary>
    public void Abort(long errorCode)
    {
        if (IsDisposed) return;
        _driver.Post(new DriverAction(() => AbortOnDriver((ulong)errorCode)));
    }

    /// <summary>Completes when everything written (and the end) was acknowledged by the peer.</summary>
    public Task WritesAcknowledged => _acknowledged.Task;

    /// <summary>
    /// Completes (never fails) once the sending side is over in any way: everything acknowledged, reset,
    /// stopped by the peer, or the connection gone. A graceful server shutdown waits for it.
    /// </summary>
    internal Task SendingEnded => _sendingEnded.Task;

    // Stream's synchronous members, for APIs that need them.
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Disposing completes the sending side gracefully (the peer sees the end of
    /// the stream) and stops reading anything not yet read, unless the framing
    /// ends it otherwise (an HTTP/3 message cut short is reset, so it cannot look
    /// complete). Pending operations fail.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            _driver.Post(new DriverAction(DisposeOnDriver));
        base.Dispose(disposing);
    }

    private void DisposeOnDriver()
    {
        // Written to the end but not yet acknowledged: still listen for the acknowledgement (SendingEnded).
        bool acking = _canWrite && _writeDone && _writeError is null && !_acknowledged.Task.IsCompleted && !_conn.IsClosed;
        if (!_conn.IsClosed) _framing.Release(this, writing: !_writeDone && _writeError is null, reading: !_readDone);
        if (acking) _conn.AwaitAcknowledgement(this);
        else _sendingEnded.TrySetResult();
        _writeDone = _readDone = true;
        var error = new ObjectDisposedException(nameof(QuicStream));
        _read.Abandon(error);
        _write.Abandon(error);
        _framing.Abandon(error);
        _conn.Forget((ulong)Id);
    }

    /// <summary>Driver: resets what is still open for writing and stops what is still open for reading.</summary>
    internal void AbortOnDriver(ulong errorCode)
    {
        if (_conn.IsClosed) return;
        if (!_writeDone)
        {
            _driver.Native.Reset(_conn.Id, (ulong)Id, errorCode);
            _writeError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} was aborted locally with code {errorCode}.") { ErrorCode = (long)errorCode };
            _writeDone = true;
            _sendingEnded.TrySetResult();
        }
        if (!_readDone)
        {
            _driver.Native.StopReading(_conn.Id, (ulong)Id, errorCode);
            _readError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} was aborted locally with code {errorCode}.") { ErrorCode = (long)errorCode };
            ReadFinished();
        }
        _read.Resume();
        _write.Resume();
        _framing.Wake();
    }

    private void ReadFinished()
    {
        _readDone = true;
        if (_writeDone && !IsDisposed) _conn.Forget((ulong)Id);
    }

    private QuicException StoppedError(long code)
    {
        _writeError = new QuicException(QuicError.StreamAborted, $"The peer stopped reading stream {Id} (code {code}).") { ErrorCode = code };
        _writeDone = true;
        _sendingEnded.TrySetResult();
        return _writeError;
    }

    /// <summary>Driver: why reading failed (reset, stopped, aborted), or null.</summary>
    internal QuicException? ReadError => _readError;

    /// <summary>Driver: an engine call on this stream failed: the connection's error when it closed, else the call's.</summary>
    internal Exception Failure(int rc, string what) =>
        _conn.IsClosed ? _conn.Error() : NativeErrors.ToException(rc, $"{what} stream {Id}");

    // Engine events, on the driver thread.
    internal void OnReadable() => _read.Resume();

    internal void OnWritable() => _write.Resume();

    /// <summary>Driver: the application protocol learned the receiving side ended early; reads fail with <paramref name="error"/>
    /// (the first error stays). The caller resumes the read.</summary>
    internal void EndReading(QuicException error)
    {
        _readError ??= error;
        _readDone = true;
    }

    internal void OnFinished()
    {
        _acknowledged.TrySetResult();
        _sendingEnded.TrySetResult();
        if (_readDone) _conn.Forget((ulong)Id);
    }

    /// <summary>Driver: the connection no longer waits to hear of this disposed stream's acknowledgement (see AwaitAcknowledgement).</summary>
    internal void StopAwaitingAcknowledgement() => _sendingEnded.TrySetResult();

    internal void OnStopped(long code)
    {
        StoppedError(code);
        _write.Resume();
    }

    internal void OnConnectionFailed(QuicException error)
    {
        // A pending read is retried, not failed: what already arrived can still be read;
        // the read that finds nothing reports the connection's error.
        if (!_writeDone) _writeError ??= error;
        _read.Resume();
        _write.Resume();
        _framing.Wake();
        _acknowledged.TrySetException(error);
        _sendingEnded.TrySetResult();
    }
}
