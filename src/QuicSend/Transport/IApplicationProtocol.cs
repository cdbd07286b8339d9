using QuicSend.Native;

namespace QuicSend.Transport;

/// <summary>
/// An application protocol running on one connection (HTTP/3), attached on the driver
/// thread before the connection's first event reaches it. The connection forwards what
/// it does not handle itself; the protocol's streams plug in through <see cref="StreamFraming"/>.
/// </summary>
internal interface IApplicationProtocol
{
    /// <summary>Driver: an engine event of a kind the connection does not handle itself.</summary>
    void OnEvent(in QsEvent ev);

    /// <summary>Driver: the connection closed or failed; whatever waits on the protocol fails with <paramref name="error"/>.</summary>
    void OnConnectionFailed(QuicException error);
}
