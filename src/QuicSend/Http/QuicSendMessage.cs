using System.Globalization;
using System.Text;
using MessagePack;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>What requests and responses share: headers, quicsend-header-info, a body read as it arrives.</summary>
public abstract class QuicSendMessage : IAsyncDisposable, IDisposable
{
    private protected readonly Http3RequestStream _stream;
    private bool _bodyRead;

    private protected Stream _body;

    /// <summary>A content-length that is not a number of bytes (RFC 9110 §8.6: 1*DIGIT), e.g. "-5": the message is malformed.</summary>
    private readonly string? _malformedLength;

    private protected QuicSendMessage(Http3RequestStream stream, List<KeyValuePair<string, string>> headers, long maxBodyBytes = long.MaxValue)
    {
        _stream = stream;
        _body = maxBodyBytes == long.MaxValue ? stream.Stream : new LimitedReadStream(stream.Stream, maxBodyBytes);
        Headers = headers;
        HeaderInfo = HeaderCodec.Get(headers, QuicSendHeaders.HeaderInfo);
        ContentType = HeaderCodec.Get(headers, QuicSendHeaders.ContentType) ?? QuicSendHeaders.OctetStream;
        if (HeaderCodec.Get(headers, QuicSendHeaders.ContentLength) is string declared)
        {
            // Digits only: "-5", "+5" or " 5" would parse as numbers, and a negative length breaks every reader.
            if (long.TryParse(declared, NumberStyles.None, CultureInfo.InvariantCulture, out var len)) ContentLength = len;
            else _malformedLength = declared;
        }
    }

    /// <summary>Holds the body to its content-length (not for answers that carry none: HEAD, 204, 304).</summary>
    private protected void CheckContentLength()
    {
        if (ContentLength is long len) _body = new ContentLengthStream(_body, len);
        else if (_malformedLength is not null) _body = new ContentLengthStream(_body, _malformedLength);
    }

    /// <summary>Every header field received, pseudo-headers included.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    /// <summary>The free-form quicsend-header-info string (e.g. JSON), if sent.</summary>
    public string? HeaderInfo { get; }

    public string ContentType { get; }

    public long? ContentLength { get; }

    /// <summary>The body as a stream, read as it arrives (a large body is never held whole).</summary>
    public Stream Body => _body;

    /// <summary>The trailer section, available once the body has been read to the end.</summary>
    public async ValueTask<IReadOnlyList<KeyValuePair<string, string>>> ReadTrailersAsync(CancellationToken cancellationToken = default) =>
        HeaderCodec.Unpack(await _stream.ReadTrailersAsync().ConfigureAwait(false));

    /// <summary>
    /// Reads the whole body into memory, refusing more than <paramref name="maxBytes"/>. Memory grows
    /// with the bytes received, not with the declared content-length; a body shorter or longer than
    /// its content-length is an <see cref="InvalidDataException"/>.
    /// </summary>
    public async ValueTask<byte[]> ReadBodyAsync(long maxBytes = 1L << 30, CancellationToken cancellationToken = default)
    {
        if (_bodyRead) throw new InvalidOperationException("The body was already read.");
        _bodyRead = true;
        if (ContentLength > maxBytes) throw new InvalidDataException($"The body is {ContentLength} bytes, more than the {maxBytes} allowed.");
        if (ContentLength is long exact && exact <= SmallBody)
        {
            // The usual small message: read straight into an array of its declared size.
            var body = new byte[exact];
            int got = 0, n;
            while (got < body.Length && (n = await _body.ReadAsync(body.AsMemory(got), cancellationToken).ConfigureAwait(false)) > 0) got += n;
            if (got != body.Length)
                throw new InvalidDataException($"The body is shorter than its content-length: {exact} bytes declared, {got} received.");
            // The end must follow (the read that finds it costs no trip to the driver when it came with the bytes).
            var probe = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
            try
            {
                long extra = 0;
                while (extra <= maxBytes && (n = await _body.ReadAsync(probe, cancellationToken).ConfigureAwait(false)) > 0) extra += n;
                if (extra > 0)
                    throw new InvalidDataException($"The body is longer than its content-length: {exact} bytes declared, at least {exact + extra} received.");
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(probe);
            }
            return body;
        }
        // The declared length is the peer's word: start small and let the buffer grow as bytes arrive.
        const int initial = 256 * 1024;
        using var ms = new MemoryStream((int)Math.Min(ContentLength ?? initial, initial));
        var buf = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int n;
            while ((n = await _body.ReadAsync(buf, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > maxBytes) throw new InvalidDataException($"The body exceeds the {maxBytes} bytes allowed.");
                if (ms.Length + n > ContentLength)
                    throw new InvalidDataException($"The body is longer than its content-length: {ContentLength} bytes declared, at least {ms.Length + n} received.");
                ms.Write(buf, 0, n);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buf);
        }
        if (ContentLength is long declared && ms.Length != declared)
            throw new InvalidDataException($"The body is shorter than its content-length: {declared} bytes declared, {ms.Length} received.");
        return ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray();
    }

    /// <summary>Bodies up to this size whose length is declared are read into an exact array at once (all a lying peer can make us allocate early).</summary>
    private const int SmallBody = 64 * 1024;

    /// <summary>Blocking form of ReadBodyAsync, for the polling API's callbacks.</summary>
    public byte[] ReadBody(long maxBytes = 1L << 30) => ReadBodyAsync(maxBytes).AsTask().GetAwaiter().GetResult();

    public async ValueTask<string> ReadTextAsync(CancellationToken cancellationToken = default) =>
        Encoding.UTF8.GetString(await ReadBodyAsync(cancellationToken: cancellationToken).ConfigureAwait(false));

    public async ValueTask<T> ReadMessagePackAsync<T>(CancellationToken cancellationToken = default) =>
        MessagePackSerializer.Deserialize<T>(await ReadBodyAsync(cancellationToken: cancellationToken).ConfigureAwait(false), QuicSendBody.MessagePackOptions);

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public virtual void Dispose() => _stream.Stream.Dispose();
}
