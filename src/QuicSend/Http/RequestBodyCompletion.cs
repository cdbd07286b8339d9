namespace QuicSend.Http;

/// <summary>
/// A response body read while its request body is still being sent (<see cref="QuicSendResponse.ContinueSending"/>):
/// reads pass through, and the end of the body waits for the send to finish and reports its failure — unless the
/// answer was a refusal, after which the server is entitled to stop reading.
/// </summary>
internal sealed class RequestBodyCompletion : ReadOnlyBodyStream
{
    private readonly Stream _inner;
    private readonly Task _sending;
    private readonly bool _failureMatters;

    public RequestBodyCompletion(Stream inner, Task sending, bool failureMatters)
    {
        _inner = inner;
        _sending = sending;
        _failureMatters = failureMatters;
        // Observed here whatever the reader does, so an abandoned send never surfaces as an unobserved exception.
        _sending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (n == 0 && buffer.Length > 0) await EndAsync(cancellationToken).ConfigureAwait(false);
        return n;
    }

    private async Task EndAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (QuicException) when (!_failureMatters) { }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}
