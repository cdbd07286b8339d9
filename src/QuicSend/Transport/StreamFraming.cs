using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// How a stream's body reaches the engine: raw QUIC by default. An application
/// protocol whose engine frames the body itself (HTTP/3) subclasses it, so
/// <see cref="QuicStream"/> keeps one read/write machinery for both. Called on the
/// driver thread only, from the stream's operations; one virtual call, no allocation.
/// </summary>
internal class StreamFraming
{
    /// <summary>Raw QUIC: stateless, shared by every plain stream.</summary>
    public static StreamFraming Raw { get; } = new();

    /// <summary>The error code a cancelled read or write tells the peer.</summary>
    public virtual ulong CancelCode => 0;

    /// <summary>True when ending the body is itself a framed write that may wait for credit, not a bare FIN.</summary>
    public virtual bool EndsWithWrite => false;

    /// <summary>Bytes read (0 only at the end), QS_DONE, or QS_ERR_STREAM_RESET with the peer's code.</summary>
    public virtual long Read(QuicStream s, Span<byte> buffer, out bool fin, out ulong code) =>
        s.Connection.Driver.Native.Read(s.Connection.Id, (ulong)s.Id, h3: false, buffer, out fin, out code);

    /// <summary>Bytes taken, QS_BLOCKED, or QS_ERR_STREAM_RESET with the peer's code.</summary>
    public virtual long Write(QuicStream s, ReadOnlySpan<byte> data, bool fin, out ulong code) =>
        s.Connection.Driver.Native.Write(s.Connection.Id, (ulong)s.Id, h3: false, data, fin, out code);

    /// <summary>
    /// Sends a section the framing defines (e.g. a header block) whole, in the stream's write
    /// slot so it stays in order with body writes: true when taken; false with no error
    /// when the engine has no credit yet (WRITABLE resumes); false with the error otherwise.
    /// </summary>
    public virtual bool TryWriteSection(QuicStream s, byte[] section, bool trailing, bool fin, out Exception? error) =>
        throw new NotSupportedException("A raw QUIC stream has no sections.");

    /// <summary>Disposal while the connection is open: ends what the user left open.
    /// Raw QUIC finishes the sending side gracefully and stops the receiving side.</summary>
    public virtual void Release(QuicStream s, bool writing, bool reading)
    {
        var native = s.Connection.Driver.Native;
        if (writing) native.Finish(s.Connection.Id, (ulong)s.Id);
        if (reading) native.StopReading(s.Connection.Id, (ulong)s.Id, 0);
    }

    /// <summary>The stream was aborted or its connection failed: operations of the framing's own re-check their state.</summary>
    public virtual void Wake() { }

    /// <summary>The stream was disposed: operations of the framing's own fail with <paramref name="error"/>.</summary>
    public virtual void Abandon(Exception error) { }
}
