using System.Globalization;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>A response as the client sees it; its body streams in as it arrives.</summary>
public sealed class QuicSendResponse : QuicSendMessage
{
    internal QuicSendResponse(long requestId, Http3RequestStream stream, List<KeyValuePair<string, string>> headers, bool toHead = false) : base(stream, headers)
    {
        RequestId = requestId;
        Status = int.Parse(HeaderCodec.Get(headers, ":status") ?? "0", CultureInfo.InvariantCulture);
        if (!toHead && Status is not (204 or 304) and >= 200) CheckContentLength();
    }

    /// <summary>The id <see cref="QuicSendClient.Request"/> returned (or the stream id for RequestAsync).</summary>
    public long RequestId { get; }

    public int Status { get; }

    public bool IsSuccess => Status is >= 200 and < 300;

    /// <summary>
    /// The answer came while the request body was still being sent (a server that streams its answer as it
    /// reads, like an echo): the body keeps going out while this response is read, and the end of the response
    /// body reports a failure of that send. Waiting for the send first would deadlock once the answer filled the
    /// flow-control windows that the unread response holds.
    /// </summary>
    internal void ContinueSending(Task sending) => _body = new RequestBodyCompletion(_body, sending, IsSuccess);
}
