using System.Globalization;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>A response as the client sees it; its body streams in as it arrives.</summary>
public sealed class QuicSendResponse : QuicSendMessage
{
    internal QuicSendResponse(long requestId, Http3RequestStream stream, List<KeyValuePair<string, string>> headers) : base(stream, headers)
    {
        RequestId = requestId;
        Status = int.Parse(HeaderCodec.Get(headers, ":status") ?? "0", CultureInfo.InvariantCulture);
    }

    /// <summary>The id <see cref="QuicSendClient.Request"/> returned (or the stream id for RequestAsync).</summary>
    public long RequestId { get; }

    public int Status { get; }

    public bool IsSuccess => Status is >= 200 and < 300;
}
