using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// One QUIC stream as a <see cref="Stream"/>. Reads, writes and header waits are
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
    private readonly bool _h3;          // an HTTP/3 request stream: bodies are framed by the engine
    private readonly ReadOperation _read;
    private readonly WriteOperation _write;
    private readonly HeadersOperation _headers;
    private readonly TaskCompletionSource _acknowledged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;              // set by the user thread that disposes

    // Driver-thread state.
    private long? _h3ResetCode;
    private int _headerLength = 1024; // until the HEADERS event tells
    private bool _readDone;      // end of stream read, reset received, or reading stopped by us
    private bool _writeDone;     // finished or reset by us
    private QuicException? _readError;
    private QuicException? _writeError;

    internal QuicStream(QuicConnection conn, ulong id, bool readable, bool writable, bool http3 = false)
    {
        _h3 = http3;
        _conn = conn;
        _driver = conn.Driver;
        Id = (long)id;
        _canRead = readable;
        _canWrite = writable;
        _readDone = !readable;
        _writeDone = !writable;
        _read = new ReadOperation(this);
        _write = new WriteOperation(this);
        _headers = new HeadersOperation(this);
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
    private ulong CancelCode => _h3 ? Http3Errors.RequestCancelled : 0;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_canRead) throw new NotSupportedException("This is a unidirectional stream opened by this side; it cannot be read.");
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (buffer.Length == 0) return ValueTask.FromResult(0);
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
        if (_h3)
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
        if (!_h3)
        {
            CompleteWrites();
            return ValueTask.CompletedTask;
        }
        return WriteAsync(ReadOnlyMemory<byte>.Empty, completeWrites: true, cancellationToken);
    }

    /// <summary>The header section received on this HTTP/3 stream (packed), waiting for it on a client;
    /// trailers are read as they stand (none yet: empty).</summary>
    internal ValueTask<byte[]> ReadHeadersAsync(bool trailers, CancellationToken cancellationToken)
    {
        if (!trailers) return _headers.Start(cancellationToken);
        return new ValueTask<byte[]>(_driver.CallAsync(() =>
        {
            if (_h3ResetCode is long code) throw NoResponseError(code);
            return ReadHeaderSection(trailers: true) ?? [];
        }));
    }

    /// <summary>Sends the response header section (server side of an HTTP/3 stream), waiting for stream credit when the engine has none.</summary>
    internal ValueTask SendResponseHeadersAsync(byte[] packed, bool endStream, CancellationToken cancellationToken = default) =>
        _write.StartSection(packed, trailers: false, endStream, cancellationToken);

    /// <summary>Sends a trailer section and ends the body (HTTP/3), waiting for stream credit when the engine has none.</summary>
    internal ValueTask SendTrailersAsync(byte[] packed, CancellationToken cancellationToken = default) =>
        _write.StartSection(packed, trailers: true, endStream: true, cancellationToken);

    /// <summary>Abandons the stream: resets the sending side and asks the peer to stop sending, with an error code.</summary>
    public void Abort(long errorCode)
    {
        if (IsDisposed) return;
        _driver.Post(new DriverAction(() => AbortOnDriver((ulong)errorCode)));
    }

    /// <summary>Completes when everything written (and the end) was acknowledged by the peer.</summary>
    public Task WritesAcknowledged => _acknowledged.Task;

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
    /// the stream) and stops reading anything not yet read; an HTTP/3 message cut
    /// short is reset instead, so it cannot look complete. Pending operations fail.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            _driver.Post(new DriverAction(DisposeOnDriver));
        base.Dispose(disposing);
    }

    private void DisposeOnDriver()
    {
        if (!_conn.IsClosed)
        {
            if (_h3)
            {
                if (!_writeDone && _writeError is null) _driver.Native.Reset(_conn.Id, (ulong)Id, Http3Errors.RequestCancelled);
                _driver.Native.ReleaseRequest(_conn.Id, (ulong)Id);
            }
            else
            {
                if (!_writeDone && _writeError is null) _driver.Native.Finish(_conn.Id, (ulong)Id);
                if (!_readDone) _driver.Native.StopReading(_conn.Id, (ulong)Id, 0);
            }
        }
        _writeDone = _readDone = true;
        var error = new ObjectDisposedException(nameof(QuicStream));
        _read.Abandon(error);
        _write.Abandon(error);
        _headers.Abandon(error);
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
        }
        if (!_readDone)
        {
            _driver.Native.StopReading(_conn.Id, (ulong)Id, errorCode);
            _readError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} was aborted locally with code {errorCode}.") { ErrorCode = (long)errorCode };
            ReadFinished();
        }
        _read.Resume();
        _write.Resume();
        _headers.Resume();
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
        return _writeError;
    }

    private QuicException NoResponseError(long code) =>
        new(QuicError.StreamAborted, $"The server ended request stream {Id} without a response ({Http3Errors.Name(code)}).") { ErrorCode = code };

    private Exception Failure(int rc, string what) =>
        _conn.IsClosed ? _conn.Error() : NativeErrors.ToException(rc, $"{what} stream {Id}");

    // Engine events, on the driver thread.
    internal void OnReadable() => _read.Resume();

    /// <summary>The header section arrived; its packed length comes with the event, so it is copied out in one call.</summary>
    internal void OnHeaders(int length)
    {
        _headerLength = length;
        _headers.Resume();
    }

    internal void OnWritable() => _write.Resume();

    internal void OnH3Reset(long code)
    {
        _h3ResetCode = code;
        _readError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} ended early: {Http3Errors.Name(code)}.") { ErrorCode = code };
        _readDone = true;
        _headers.Resume();
        _read.Resume();
    }

    internal void OnFinished()
    {
        _acknowledged.TrySetResult();
        if (_readDone) _conn.Forget((ulong)Id);
    }

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
        _headers.Resume();
        _acknowledged.TrySetException(error);
    }
}
