using System.Threading.Channels;
using QuicSend.Native;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>
/// HTTP/3 on one QUIC connection: requests arriving (server), requests sent with the
/// wait for the peer's stream credit (client), GOAWAY sent and received. The
/// connection forwards the engine's HTTP/3 events here, on the driver thread.
/// </summary>
internal sealed class Http3Connection : IApplicationProtocol
{
    private readonly Channel<Http3RequestStream> _requests = Channel.CreateUnbounded<Http3RequestStream>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource _goAway = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _openRequests; // client, driver thread: requests sent whose streams are not yet released

    private Http3Connection(QuicConnection connection) => Connection = connection;

    /// <summary>For <see cref="QuicEndpoint"/>: attaches HTTP/3 to each connection as it is made.</summary>
    public static readonly Func<QuicConnection, IApplicationProtocol> Attach = c => new Http3Connection(c);

    /// <summary>The HTTP/3 state of a connection made by an endpoint that attaches it.</summary>
    public static Http3Connection Of(QuicConnection connection) => (Http3Connection)connection.Application!;

    public QuicConnection Connection { get; }

    /// <summary>Client: sends a request's header section; the returned stream carries the request body and the response.</summary>
    /// <remarks>With <paramref name="body"/> the body's write starts in the same driver turn as the header
    /// section (so both can leave in one packet) and ends the stream; await it through <see cref="Http3RequestStream.InitialWrite"/>.</remarks>
    public async ValueTask<Http3RequestStream> SendRequestAsync(byte[] packedHeaders, bool endStream, CancellationToken cancellationToken,
        ReadOnlyMemory<byte>? body = null)
    {
        var conn = Connection;
        if (conn.IsClosed && _goAway.Task.IsCompleted)
            throw new QuicException(QuicError.ConnectionClosed,
                "The server is shutting down: it sent GOAWAY on this connection, which then closed, so it takes no new requests. " +
                "Connect again (to this server once it is back, or to another).", conn.Error()) { ErrorCode = (long)Http3Errors.NoError };
        conn.ThrowIfClosed();
        var stream = await conn.WithStreamCredit("Sending a request", (out QuicStream? s) =>
        {
            int rc = conn.Driver.Native.SendRequest(conn.Id, packedHeaders, endStream, out var sid);
            if (rc != QsConst.QS_OK) { s = null; return rc; }
            var req = new Http3RequestStream(conn, sid, writable: !endStream);
            _openRequests++;
            if (body is { } b && !endStream) req.InitialWrite = req.Stream.WriteOnDriver(b, completeWrites: true, cancellationToken);
            s = req.Stream;
            return rc;
        }, cancellationToken).ConfigureAwait(false);
        return Http3RequestStream.Of(stream);
    }

    /// <summary>Server: waits for the next request whose header section has arrived.</summary>
    public async ValueTask<Http3RequestStream> AcceptRequestAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _requests.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw Connection.Error();
        }
    }

    /// <summary>Completes when the server announced a graceful shutdown (GOAWAY).</summary>
    public Task GoAwayReceived => _goAway.Task;

    /// <summary>Server: starts a graceful shutdown; requests already received are still answered.</summary>
    public void GoAway()
    {
        var conn = Connection;
        if (conn.IsClosed || conn.Driver.IsStopping) return;
        conn.Driver.Call(() =>
        {
            if (!conn.IsClosed) conn.Driver.Native.GoAway(conn.Id);
        });
    }

    void IApplicationProtocol.OnEvent(in QsEvent ev)
    {
        switch (ev.Kind)
        {
            case QsConst.QS_EVENT_H3_HEADERS:
            {
                int length = (int)Math.Min(ev.Code, int.MaxValue);
                if (Connection.IsServer)
                {
                    var req = new Http3RequestStream(Connection, ev.Stream, writable: true);
                    Connection.Track(req.Stream);
                    req.OnHeaders(length);
                    _requests.Writer.TryWrite(req);
                }
                else if (Find(ev.Stream) is { } resp) resp.OnHeaders(length);
                break;
            }
            case QsConst.QS_EVENT_H3_DATA:
                Find(ev.Stream)?.Stream.OnReadable();
                break;
            case QsConst.QS_EVENT_H3_RESET:
                Find(ev.Stream)?.OnReset((long)ev.Code);
                break;
            case QsConst.QS_EVENT_H3_GOAWAY:
                _goAway.TrySetResult();
                CloseIfDone();
                break;
        }
    }

    /// <summary>Client, driver: a request stream was disposed.</summary>
    internal void OnRequestReleased()
    {
        _openRequests--;
        CloseIfDone();
    }

    /// <summary>
    /// Client, driver: after the server's GOAWAY, the connection closes (H3_NO_ERROR) once its last response is
    /// disposed. A draining server waits for that, so responses already received are read before the close
    /// (a connection's unread data is gone once it closes).
    /// </summary>
    private void CloseIfDone()
    {
        if (Connection.IsServer || _openRequests > 0 || !_goAway.Task.IsCompleted || Connection.IsClosed) return;
        _ = Connection.CloseAsync((long)Http3Errors.NoError, "the server is shutting down (GOAWAY) and no request is left");
    }

    void IApplicationProtocol.OnConnectionFailed(QuicException error) => _requests.Writer.TryComplete();

    private Http3RequestStream? Find(ulong stream) =>
        Connection.TryGetStream(stream, out var s) ? s.Framing as Http3RequestStream : null;
}
