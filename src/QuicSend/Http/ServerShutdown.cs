using System.Collections.Concurrent;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>The server's shutdown: drain (GOAWAY, let responses under way finish), then close.</summary>
public sealed partial class QuicSendServer
{
    private readonly object _shutdownLock = new();
    private readonly TimeSpan _shutdownTimeout;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Every request stream whose response has not ended yet (acknowledged, reset or its connection gone).
    private readonly ConcurrentDictionary<QuicStream, byte> _responses = new();
    private Task? _shutdown;
    private volatile bool _draining;

    private bool IsDraining => _draining;

    private const string ShuttingDown = "the server is shutting down; connect again once it is back, or to another server";

    /// <summary>Responses being sent, or still to be sent, by this server.</summary>
    internal int ResponsesUnderWay => _responses.Count;

    private void TrackResponse(QuicStream stream)
    {
        _responses[stream] = 0;
        // Not before: a response that ended already would otherwise stay counted.
        stream.SendingEnded.ContinueWith(static (ended, state) =>
        {
            var (responses, s) = ((ConcurrentDictionary<QuicStream, byte>, QuicStream))state!;
            responses.TryRemove(s, out _);
        }, (_responses, stream), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Graceful shutdown (RFC 9114 §5.2): sends GOAWAY on every connection, so clients send no new requests
    /// (one that arrives anyway is rejected with H3_REQUEST_REJECTED, which tells the client it may retry it
    /// elsewhere); lets every request already received be answered and its response be acknowledged, then waits
    /// for the clients of those responses to close their connections (a QuicSend client closes once it has disposed
    /// its last response; what it has not read yet would be lost if the server closed first), all for at most
    /// <paramref name="drainTimeout"/>; then closes the connections left with H3_NO_ERROR and stops the server.
    /// Responses still unfinished at the deadline, or when <paramref name="cancellationToken"/> is cancelled,
    /// are cut off. Handlers keep running during the drain: keep answering what <see cref="AcceptRequestsAsync"/>
    /// and <see cref="Poll"/> deliver. A second call returns the first one's task.
    /// </summary>
    public Task ShutdownAsync(TimeSpan drainTimeout, CancellationToken cancellationToken = default)
    {
        if (drainTimeout < TimeSpan.Zero && drainTimeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(drainTimeout), drainTimeout, "The drain deadline must be zero or more (or Timeout.InfiniteTimeSpan).");
        lock (_shutdownLock) return _shutdown ??= DrainThenStopAsync(drainTimeout, cancellationToken);
    }

    private async Task DrainThenStopAsync(TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        _draining = true;
        foreach (var c in _connections.Values)
        {
            try { c.GoAway(); } catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
        }
        using var deadline = new CancellationTokenSource(drainTimeout);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var giveUp = Task.Delay(Timeout.Infinite, either.Token);
        try
        {
            // New responses may start during the drain (requests received before the GOAWAY); look again until none is left.
            // The connections they travel on are the ones whose clients may still be reading.
            var reading = new HashSet<QuicConnection>();
            while (!_responses.IsEmpty && !either.IsCancellationRequested && !_stopped.Task.IsCompleted)
            {
                var underWay = _responses.Keys.ToList();
                foreach (var s in underWay) reading.Add(s.Connection);
                await Task.WhenAny(Task.WhenAll(underWay.Select(s => s.SendingEnded)), giveUp, _stopped.Task).ConfigureAwait(false);
            }
            // Acknowledged is not yet read: closing the connection would discard what its client has not read yet.
            // A QuicSend client closes once its last response is disposed; wait for that on the connections that
            // carried a response during the drain (the others were idle when it began).
            var open = reading.Where(c => !c.IsClosed).Select(c => c.Closed).ToList();
            if (open.Count > 0 && !either.IsCancellationRequested)
                await Task.WhenAny(Task.WhenAll(open), giveUp, _stopped.Task).ConfigureAwait(false);
        }
        finally
        {
            foreach (var c in _connections.Values)
            {
                try { await c.Connection.CloseAsync((long)Http3Errors.NoError, ShuttingDown).ConfigureAwait(false); }
                catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
            }
            await StopAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops at once: GOAWAY, the endpoint closes every connection (telling the peers), the loops end.</summary>
    private void StopNow() => StopAsync().AsTask().GetAwaiter().GetResult();

    private async ValueTask StopAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopped.TrySetResult();
        foreach (var c in _connections.Values)
        {
            try { c.GoAway(); } catch (Exception e) when (e is QuicException or ObjectDisposedException) { }
        }
        _stop.Cancel();
        _endpoint.Dispose();
        _events.Writer.TryComplete();
        try { await _acceptLoop.ConfigureAwait(false); } catch { }
        _files.Dispose(); // upload sessions do not outlive their server: their partial files go with it
        _responses.Clear();
    }
}
