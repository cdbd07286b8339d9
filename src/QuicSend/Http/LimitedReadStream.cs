using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>A request body that may not exceed a size: past it, reading fails and the stream is cut off.</summary>
internal sealed class LimitedReadStream(QuicStream inner, long limit) : ReadOnlyBodyStream
{
    private long _read;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _read += n;
        if (_read > limit)
        {
            inner.Abort((long)Http3Errors.ExcessiveLoad);
            throw new InvalidDataException($"The request body exceeds the server's limit of {limit} bytes (MaxRequestBodySize).");
        }
        return n;
    }
}
