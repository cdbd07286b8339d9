using QuicSend.Native;

namespace QuicSend.Transport;

// The two kinds of operation a stream has in flight, each run by the driver thread.
public sealed partial class QuicStream
{
    /// <summary>Driver: the caller cancelled a read: stop the receiving side, so the peer stops sending.</summary>
    private void CancelReading()
    {
        if (_readDone) return;
        if (!_conn.IsClosed) _driver.Native.StopReading(_conn.Id, (ulong)Id, CancelCode);
        _readError ??= new QuicException(QuicError.StreamAborted, $"A read of stream {Id} was cancelled, which stopped its receiving side.") { ErrorCode = (long)CancelCode };
        ReadFinished();
    }

    /// <summary>Driver: the caller cancelled a write: reset the sending side, so the peer never takes a cut message as whole.</summary>
    private void CancelWriting()
    {
        if (_writeDone) return;
        if (!_conn.IsClosed) _driver.Native.Reset(_conn.Id, (ulong)Id, CancelCode);
        _writeError ??= new QuicException(QuicError.StreamAborted, $"A write to stream {Id} was cancelled, which reset its sending side.") { ErrorCode = (long)CancelCode };
        _writeDone = true;
        _sendingEnded.TrySetResult();
    }

    private sealed class ReadOperation(QuicStream s) : StreamOperation<int>(s._driver)
    {
        private Memory<byte> _buffer;

        protected override string BusyMessage => $"Another read of stream {s.Id} is already in progress.";

        public ValueTask<int> Start(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            Claim();
            // The buffer is touched only by the driver, and only until the operation completes.
            _buffer = buffer;
            return new ValueTask<int>(this, Begin(cancellationToken));
        }

        protected override void Step()
        {
            if (s._readError is not null) { Done(s._readError); return; }
            if (s._readDone) { Done(0); return; }
            var span = _buffer.Span;
            int total = 0;
            while (true)
            {
                long n = s._framing.Read(s, span[total..], out bool fin, out ulong code);
                if (n >= 0)
                {
                    total += (int)n;
                    if (fin)
                    {
                        s.ReadFinished();
                        if (s._readError is null) s._endRead = true;
                    }
                    // The engine hands over one piece at a time (HTTP/3: one DATA frame): fill the
                    // caller's buffer with all that is buffered, so a read costs one hop, not one per piece.
                    if (fin || n == 0 || total == span.Length) { Done(total); return; }
                    continue;
                }
                if (n == QsConst.QS_ERR_STREAM_RESET)
                {
                    s._readError = new QuicException(QuicError.StreamAborted, $"The peer reset stream {s.Id} with code {code}.") { ErrorCode = (long)code };
                    s.ReadFinished();
                    if (total > 0) Done(total); // the bytes before the reset first; the next read reports it
                    else Done(s._readError);
                    return;
                }
                if (total > 0) { Done(total); return; } // what arrived first; the next read sees what stopped this one
                if (n != QsConst.QS_DONE) { Done(s.Failure((int)n, "Reading")); return; }
                // Nothing buffered: a closed connection will bring nothing more; otherwise wait for READABLE.
                if (s._conn.IsClosed) Done(s._conn.Error());
                return;
            }
        }

        protected override void OnCancelled(OperationCanceledException error)
        {
            s.CancelReading();
            Done(error);
        }

        private void Done(int n)
        {
            _buffer = default;
            Complete(n);
        }

        private void Done(Exception error)
        {
            _buffer = default;
            Fail(error);
        }
    }

    private sealed class WriteOperation(QuicStream s) : StreamOperation<bool>(s._driver)
    {
        private ReadOnlyMemory<byte> _buffer;
        private bool _fin;
        private byte[]? _section;   // a section of the framing's instead of body bytes
        private bool _trailing;

        protected override string BusyMessage => $"Another write to stream {s.Id} is already in progress.";

        public ValueTask StartBody(ReadOnlyMemory<byte> buffer, bool fin, CancellationToken cancellationToken)
        {
            Claim();
            _buffer = buffer;
            _fin = fin;
            _section = null;
            return new ValueTask(this, Begin(cancellationToken));
        }

        /// <summary>A section, then (when given) body bytes; <paramref name="endStream"/> ends the stream after the last of them.</summary>
        public ValueTask StartSection(byte[] section, bool trailing, bool endStream, ReadOnlyMemory<byte> bodyAfter, CancellationToken cancellationToken)
        {
            Claim();
            _section = section;
            _trailing = trailing;
            _fin = endStream;
            _buffer = bodyAfter;
            return new ValueTask(this, Begin(cancellationToken));
        }

        public ValueTask StartBodyOnDriver(ReadOnlyMemory<byte> buffer, bool fin, CancellationToken cancellationToken)
        {
            Claim();
            _buffer = buffer;
            _fin = fin;
            _section = null;
            return new ValueTask(this, BeginOnDriver(cancellationToken));
        }

        protected override void Step()
        {
            if (_section is not null) { StepSection(_section); return; }
            if (s._writeError is not null) { Done(s._writeError); return; }
            if (s._writeDone)
            {
                // Completing writes twice is harmless; writing after the end is not.
                if (_buffer.IsEmpty && _fin) Done(null);
                else Done(new InvalidOperationException($"Stream {s.Id} was already completed for writing."));
                return;
            }
            if (s._conn.IsClosed) { Done(s._conn.Error()); return; }
            if (_buffer.IsEmpty && !_fin) { Done(null); return; }
            while (true)
            {
                // Hand the engine at most MaxWriteSlice per call: it copies each call into one
                // allocation, and slices that size are recycled by the allocator instead of
                // being mapped fresh (page faults) for every multi-megabyte write.
                var slice = _buffer.Length > MaxWriteSlice ? _buffer[..MaxWriteSlice] : _buffer;
                bool fin = _fin && slice.Length == _buffer.Length;
                long n = s._framing.Write(s, slice.Span, fin, out ulong code);
                if (n >= 0)
                {
                    _buffer = _buffer[(int)n..];
                    if (_buffer.IsEmpty && (!_fin || fin))
                    {
                        if (_fin) s._writeDone = true;
                        Done(null);
                        return;
                    }
                    continue; // partly taken: try the rest at once; the next call says BLOCKED if nothing fits
                }
                if (n == QsConst.QS_ERR_STREAM_RESET) { Done(s.StoppedError((long)code)); return; }
                if (n != QsConst.QS_BLOCKED) Done(s.Failure((int)n, "Writing"));
                return; // BLOCKED: WRITABLE resumes
            }
        }

        private void StepSection(byte[] section)
        {
            if (_trailing && s._writeError is not null) { Done(s._writeError); return; }
            if (s._conn.IsClosed) { Done(s._conn.Error()); return; }
            bool fin = _fin && _buffer.IsEmpty;
            if (s._framing.TryWriteSection(s, section, _trailing, fin, out var error))
            {
                if (!_buffer.IsEmpty)
                {
                    _section = null; // the body follows, as an ordinary write
                    Step();
                    return;
                }
                if (fin) s._writeDone = true;
                Done(null);
                return;
            }
            if (error is not null) Done(error); // else blocked: WRITABLE resumes
        }

        protected override void OnCancelled(OperationCanceledException error)
        {
            s.CancelWriting();
            Done(error);
        }

        private void Done(Exception? error)
        {
            _buffer = default;
            _section = null;
            if (error is null) Complete(true);
            else Fail(error);
        }
    }
}
