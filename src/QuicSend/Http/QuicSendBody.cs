using System.Text;
using MessagePack;
using MessagePack.Resolvers;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>
/// A request or response body: bytes, text, an object as MessagePack, or a
/// stream that is copied as it is read (never held in memory whole).
/// </summary>
public abstract class QuicSendBody
{
    /// <summary>MessagePack options: contractless, so plain classes and anonymous types serialise.</summary>
    public static MessagePackSerializerOptions MessagePackOptions { get; set; } =
        MessagePackSerializerOptions.Standard.WithResolver(ContractlessStandardResolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);

    public abstract string ContentType { get; }

    /// <summary>Length in bytes when known up front (sent as content-length).</summary>
    public abstract long? Length { get; }

    internal abstract ValueTask WriteToAsync(QuicStream stream, CancellationToken cancellationToken);

    /// <summary>The whole body when it is bytes in memory: then it can leave with the header section in one operation.</summary>
    internal virtual ReadOnlyMemory<byte>? InlineBytes => null;

    public static QuicSendBody Empty { get; } = new BytesBody(ReadOnlyMemory<byte>.Empty, QuicSendHeaders.OctetStream);

    public static QuicSendBody FromBytes(ReadOnlyMemory<byte> bytes) => new BytesBody(bytes, QuicSendHeaders.OctetStream);

    public static QuicSendBody FromText(string text) => new BytesBody(Encoding.UTF8.GetBytes(text), QuicSendHeaders.Text);

    public static QuicSendBody FromMessagePack<T>(T value) =>
        new BytesBody(MessagePackSerializer.Serialize(value, MessagePackOptions), QuicSendHeaders.MessagePack);

    /// <summary>A body read from <paramref name="stream"/> while sending; <paramref name="length"/> if known.</summary>
    public static QuicSendBody FromStream(Stream stream, long? length = null, IProgress<long>? progress = null) =>
        new StreamBody(stream, length ?? (stream.CanSeek ? stream.Length - stream.Position : null), progress);

    public static implicit operator QuicSendBody(byte[] bytes) => FromBytes(bytes);

    public static implicit operator QuicSendBody(string text) => FromText(text);

    private sealed class BytesBody(ReadOnlyMemory<byte> bytes, string contentType) : QuicSendBody
    {
        public override string ContentType => contentType;
        public override long? Length => bytes.Length;

        internal override ReadOnlyMemory<byte>? InlineBytes => bytes;

        internal override ValueTask WriteToAsync(QuicStream stream, CancellationToken ct) => stream.WriteAsync(bytes, completeWrites: true, ct);
    }

    private sealed class StreamBody(Stream source, long? length, IProgress<long>? progress) : QuicSendBody
    {
        public override string ContentType => QuicSendHeaders.OctetStream;
        public override long? Length => length;

        internal override async ValueTask WriteToAsync(QuicStream stream, CancellationToken ct)
        {
            var buf = new byte[1 << 20];
            long sent = 0;
            int n;
            while ((n = await source.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
            {
                await stream.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
                sent += n;
                progress?.Report(sent);
            }
            await stream.CompleteWritesAsync(ct).ConfigureAwait(false);
        }
    }
}
