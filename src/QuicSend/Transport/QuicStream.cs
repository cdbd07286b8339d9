using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// One QUIC stream as a <see cref="Stream"/>. Writes that flow or congestion
/// control refuse wait for the engine's WRITABLE event; reads with nothing
/// buffered wait for READABLE. One read and one write may be in flight at once.
/// </summary>
public sealed class QuicStream : Stream
{
    private const int MaxWriteSlice = 256 * 1024;

    private readonly QuicConnection _conn;
    private readonly EndpointDriver _driver;
    private readonly AsyncSignal _readable = new();
    private readonly AsyncSignal _writable = new();
    private readonly bool _canRead;
    private readonly bool _canWrite;
    private readonly bool _h3;          // an HTTP/3 request stream: bodies are framed by the engine
    private readonly AsyncSignal _headersReady = new();
    private long? _h3ResetCode;
    private readonly TaskCompletionSource _acknowledged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _readDone;      // end of stream read, reset received, or reading stopped by us
    private bool _writeDone;     // finished or reset by us
    private QuicException? _readError;
    private QuicException? _writeError;
    private bool _disposed;

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
    }

    /// <summary>The QUIC stream id.</summary>
    public long Id { get; }

    public QuicConnection Connection => _conn;

    public override bool CanRead => _canRead && !_disposed;
    public override bool CanWrite => _canWrite && !_disposed;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_canRead) throw new NotSupportedException("This is a unidirectional stream opened by this side; it cannot be read.");
        if (buffer.Length == 0) return 0;
        while (true)
        {
            ValueTask wait;
            lock (_driver.Lock)
            {
                if (_readError is not null) throw _readError;
                if (_readDone) return 0;
                ObjectDisposedException.ThrowIf(_disposed, this);
                long n = NativeRead(buffer.Span, out bool fin, out ulong code);
                if (n >= 0)
                {
                    if (fin) ReadFinished();
                    _driver.AfterUserOperation(); // reading may have opened the peer's flow-control window
                    return (int)n;
                }
                if (n == QsConst.QS_ERR_STREAM_RESET)
                {
                    _readError = new QuicException(QuicError.StreamAborted, $"The peer reset stream {Id} with code {code}.") { ErrorCode = (long)code };
                    ReadFinished();
                    throw _readError;
                }
                if (n != QsConst.QS_DONE) throw Failure((int)n, "Reading");
                // Nothing buffered: a closed connection will bring nothing more.
                if (_conn.IsClosed) throw _conn.Error();
                wait = _readable.Arm(cancellationToken);
            }
            await wait.ConfigureAwait(false);
        }
    }

    private unsafe long NativeRead(Span<byte> buffer, out bool fin, out ulong code)
    {
        byte f = 0;
        ulong c = 0;
        long n;
        fixed (byte* p = buffer)
            n = _h3
                ? NativeMethods.qs_h3_recv_body(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)buffer.Length, &f, &c)
                : NativeMethods.qs_stream_read(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)buffer.Length, &f, &c);
        fin = f != 0;
        code = c;
        return n;
    }

    private unsafe long NativeWrite(ReadOnlySpan<byte> buffer, bool fin, out ulong code)
    {
        ulong c = 0;
        long n;
        fixed (byte* p = buffer)
            n = _h3
                ? NativeMethods.qs_h3_send_body(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)buffer.Length, fin, &c)
                : NativeMethods.qs_stream_write(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)buffer.Length, fin, &c);
        code = c;
        return n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        WriteAsync(buffer, completeWrites: false, cancellationToken);

    /// <summary>Writes, and with <paramref name="completeWrites"/> ends the stream after these bytes.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, bool completeWrites, CancellationToken cancellationToken = default)
    {
        if (!_canWrite) throw new NotSupportedException("This is a unidirectional stream opened by the peer; it cannot be written.");
        while (true)
        {
            ValueTask wait;
            lock (_driver.Lock)
            {
                if (_writeError is not null) throw _writeError;
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_writeDone) throw new InvalidOperationException($"Stream {Id} was already completed for writing.");
                _conn.ThrowIfClosed();
                // Hand the engine at most MaxWriteSlice per call: it copies each call into one
                // allocation, and slices that size are recycled by the allocator instead of
                // being mapped fresh (page faults) for every multi-megabyte write.
                var slice = buffer.Length > MaxWriteSlice ? buffer[..MaxWriteSlice] : buffer;
                bool fin = completeWrites && slice.Length == buffer.Length;
                long n = NativeWrite(slice.Span, fin, out ulong code);
                if (n >= 0)
                {
                    buffer = buffer[(int)n..];
                    if (buffer.IsEmpty && completeWrites) WriteFinished();
                    _driver.AfterUserOperation();
                    if (buffer.IsEmpty) return;
                    continue; // partly taken: try the rest at once; the next call says BLOCKED if nothing fits
                }
                if (n == QsConst.QS_ERR_STREAM_RESET) throw StoppedError((long)code);
                if (n != QsConst.QS_BLOCKED) throw Failure((int)n, "Writing");
                wait = _writable.Arm(cancellationToken);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Ends the sending side: the peer reads to the end of what was written.</summary>
    public void CompleteWrites()
    {
        if (_h3)
        {
            CompleteWritesAsync().AsTask().GetAwaiter().GetResult();
            return;
        }
        lock (_driver.Lock)
        {
            if (_writeDone || !_canWrite) return;
            if (_writeError is not null) throw _writeError;
            _conn.ThrowIfClosed();
            int rc = NativeMethods.qs_stream_finish(_driver.Ep, _conn.Id, (ulong)Id);
            if (rc == QsConst.QS_ERR_STREAM_RESET) throw StoppedError(0);
            if (rc < 0) throw Failure(rc, "Completing writes");
            WriteFinished();
            _driver.AfterUserOperation();
        }
    }

    /// <summary>Ends the sending side, waiting if framing bytes are still queued (HTTP/3).</summary>
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken = default)
    {
        if (!_h3)
        {
            CompleteWrites();
            return ValueTask.CompletedTask;
        }
        lock (_driver.Lock)
        {
            if (_writeDone) return ValueTask.CompletedTask;
        }
        return WriteAsync(ReadOnlyMemory<byte>.Empty, completeWrites: true, cancellationToken);
    }

    /// <summary>The header section received on this HTTP/3 stream (packed), waiting for it on a client.</summary>
    internal async ValueTask<byte[]> ReadHeadersAsync(bool trailers, CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask wait;
            lock (_driver.Lock)
            {
                if (_h3ResetCode is long code)
                    throw new QuicException(QuicError.StreamAborted, $"The server ended request stream {Id} without a response ({Http3Errors.Name(code)}).") { ErrorCode = code };
                var got = ReadHeadersLocked(trailers);
                if (got is not null) return got;
                if (trailers) return [];
                _conn.ThrowIfClosed();
                wait = _headersReady.Arm(cancellationToken);
            }
            await wait.ConfigureAwait(false);
        }
    }

    private unsafe byte[]? ReadHeadersLocked(bool trailers)
    {
        long n = NativeMethods.qs_h3_recv_headers(_driver.Ep, _conn.Id, (ulong)Id, trailers, null, 0);
        if (n == QsConst.QS_DONE) return null;
        NativeErrors.Check(n, "Reading a header section");
        var buf = new byte[n];
        fixed (byte* p = buf) n = NativeMethods.qs_h3_recv_headers(_driver.Ep, _conn.Id, (ulong)Id, trailers, p, (nuint)buf.Length);
        return buf;
    }

    /// <summary>Sends the response header section (server side of an HTTP/3 stream), waiting for stream credit when the engine has none.</summary>
    internal ValueTask SendResponseHeadersAsync(byte[] packed, bool endStream, CancellationToken cancellationToken = default) =>
        SendSectionAsync(packed, trailers: false, endStream, cancellationToken);

    /// <summary>Sends a trailer section and ends the body (HTTP/3), waiting for stream credit when the engine has none.</summary>
    internal ValueTask SendTrailersAsync(byte[] packed, CancellationToken cancellationToken = default) =>
        SendSectionAsync(packed, trailers: true, endStream: true, cancellationToken);

    private async ValueTask SendSectionAsync(byte[] packed, bool trailers, bool endStream, CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask wait;
            lock (_driver.Lock)
            {
                if (trailers && _writeError is not null) throw _writeError;
                _conn.ThrowIfClosed();
                int rc = NativeSendSection(packed, trailers, endStream);
                if (rc >= 0)
                {
                    if (endStream) WriteFinished();
                    _driver.AfterUserOperation();
                    return;
                }
                if (rc != QsConst.QS_BLOCKED) throw NativeErrors.ToException(rc, trailers ? $"Sending trailers on stream {Id}" : $"Sending the response on stream {Id}");
                wait = _writable.Arm(cancellationToken);
            }
            await wait.ConfigureAwait(false);
        }
    }

    private unsafe int NativeSendSection(byte[] packed, bool trailers, bool endStream)
    {
        fixed (byte* p = packed)
            return trailers
                ? NativeMethods.qs_h3_send_trailers(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)packed.Length)
                : NativeMethods.qs_h3_send_response(_driver.Ep, _conn.Id, (ulong)Id, p, (nuint)packed.Length, endStream);
    }

    /// <summary>Abandons the stream: resets the sending side and asks the peer to stop sending, with an error code.</summary>
    public void Abort(long errorCode)
    {
        lock (_driver.Lock)
        {
            if (_conn.IsClosed) return;
            if (!_writeDone)
            {
                NativeMethods.qs_stream_reset(_driver.Ep, _conn.Id, (ulong)Id, (ulong)errorCode);
                _writeError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} was aborted locally with code {errorCode}.") { ErrorCode = errorCode };
                WriteFinished();
            }
            if (!_readDone)
            {
                NativeMethods.qs_stream_stop(_driver.Ep, _conn.Id, (ulong)Id, (ulong)errorCode);
                _readError ??= new QuicException(QuicError.StreamAborted, $"Stream {Id} was aborted locally with code {errorCode}.") { ErrorCode = errorCode };
                ReadFinished();
            }
            _readable.Fail(_readError ?? _conn.Error());
            _writable.Fail(_writeError ?? _conn.Error());
            _driver.AfterUserOperation();
        }
    }

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
    /// the stream) and stops reading anything not yet read.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_driver.Lock)
            {
                if (_disposed) return;
                if (!_conn.IsClosed && !_driver.IsStopping)
                {
                    if (_h3)
                    {
                        // An HTTP message cut short must not look complete: reset it, then let the engine forget it.
                        if (!_writeDone && _writeError is null) NativeMethods.qs_stream_reset(_driver.Ep, _conn.Id, (ulong)Id, Http3Errors.RequestCancelled);
                        NativeMethods.qs_h3_stream_release(_driver.Ep, _conn.Id, (ulong)Id);
                    }
                    else
                    {
                        if (!_writeDone && _writeError is null) NativeMethods.qs_stream_finish(_driver.Ep, _conn.Id, (ulong)Id);
                        if (!_readDone) NativeMethods.qs_stream_stop(_driver.Ep, _conn.Id, (ulong)Id, 0);
                    }
                    _driver.AfterUserOperation();
                }
                _writeDone = _readDone = true;
                _disposed = true;
                _readable.Fail(new ObjectDisposedException(nameof(QuicStream)));
                _headersReady.Fail(new ObjectDisposedException(nameof(QuicStream)));
                _writable.Fail(new ObjectDisposedException(nameof(QuicStream)));
                _conn.Forget((ulong)Id);
            }
        }
        base.Dispose(disposing);
    }

    private void ReadFinished()
    {
        _readDone = true;
        if (_writeDone && !_disposed) _conn.Forget((ulong)Id);
    }

    private void WriteFinished() => _writeDone = true;

    private QuicException StoppedError(long code)
    {
        _writeError = new QuicException(QuicError.StreamAborted, $"The peer stopped reading stream {Id} (code {code}).") { ErrorCode = code };
        _writeDone = true;
        return _writeError;
    }

    private Exception Failure(int rc, string what) =>
        _conn.IsClosed ? _conn.Error() : NativeErrors.ToException(rc, $"{what} stream {Id}");

    // Driver callbacks, under the endpoint lock.
    internal void OnReadable() => _readable.Set();

    internal void OnHeaders() => _headersReady.Set();

    internal void OnH3Reset(long code)
    {
        _h3ResetCode = code;
        var e = new QuicException(QuicError.StreamAborted, $"Stream {Id} ended early: {Http3Errors.Name(code)}.") { ErrorCode = code };
        _readError ??= e;
        _readDone = true;
        _headersReady.Fail(e);
        _readable.Fail(e);
    }


    internal void OnWritable() => _writable.Set();

    /// <summary>Completes when everything written (and the end) was acknowledged by the peer.</summary>
    public Task WritesAcknowledged => _acknowledged.Task;

    internal void OnFinished()
    {
        _acknowledged.TrySetResult();
        if (_readDone) _conn.Forget((ulong)Id);
    }

    internal void OnStopped(long code)
    {
        var e = StoppedError(code);
        _writable.Fail(e);
    }

    internal void OnConnectionFailed(QuicException error)
    {
        // Reads are woken, not failed: what already arrived can still be read; the next
        // read that finds nothing reports the connection's error.
        if (!_writeDone) _writeError ??= error;
        _readable.Set();
        _writable.Fail(error);
        _headersReady.Set();
        _acknowledged.TrySetException(error);
    }
}
