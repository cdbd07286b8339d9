namespace QuicSend;

/// <summary>What went wrong, for code that reacts differently to each.</summary>
public enum QuicError
{
    Internal,
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
    ConnectionClosed,
    ConnectionTimedOut,
    StreamAborted,
    EndpointDisposed,
    ProtocolError,
}

/// <summary>A QUIC transport failure; <see cref="Error"/> says which kind.</summary>
public class QuicException : IOException
{
    public QuicException(QuicError error, string message, Exception? inner = null) : base(message, inner) => Error = error;

    public QuicError Error { get; }

    /// <summary>The application or transport error code, when the failure carried one.</summary>
    public long? ErrorCode { get; init; }
}

/// <summary>Certificates, keys or settings that cannot be used; the message names which and why.</summary>
public sealed class QuicConfigurationException : Exception
{
    public QuicConfigurationException(string message, Exception? inner = null) : base(message, inner) { }
}
