namespace QuicSend.Http;

/// <summary>
/// A message body with a <c>content-length</c>: its end must come exactly there (RFC 9114 §4.1.2). A body that ends
/// early — its stream finished, or reset in a way the engine reports as an end — fails the read that finds the end
/// instead of reading as complete; one that runs past the length fails too.
/// </summary>
internal sealed class ContentLengthStream(Stream inner, long length, string? malformed = null) : ReadOnlyBodyStream
{
    private long _read;

    /// <summary>A body whose content-length is not a number of bytes: every read fails, naming it.</summary>
    public ContentLengthStream(Stream inner, string malformed) : this(inner, -1, malformed) { }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (malformed is not null)
            throw new InvalidDataException($"The message's content-length '{malformed}' is not a number of bytes (RFC 9110 §8.6): it is malformed, so its body cannot be trusted.");
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _read += n;
        if (_read > length)
            throw new InvalidDataException($"The body is longer than its content-length: {length} bytes declared, at least {_read} received.");
        if (n == 0 && buffer.Length > 0 && _read < length)
            throw new InvalidDataException($"The body is shorter than its content-length: {length} bytes declared, {_read} received (it was cut short).");
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
