using System.Threading.Channels;

namespace QuicSend.Http;

/// <summary>The polling APIs' wait: block the caller until an event is queued or the timeout passes.</summary>
internal static class PollWait
{
    public static void ForEvent<T>(ChannelReader<T> reader, int timeoutMs)
    {
        if (reader.TryPeek(out _)) return;
        using var cts = new CancellationTokenSource(Math.Max(0, timeoutMs));
        try
        {
            reader.WaitToReadAsync(cts.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) { }
    }
}
