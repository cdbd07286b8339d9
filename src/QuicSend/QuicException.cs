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
    /// <summary>The server no longer knows the connection: it answered with a stateless reset, as a server that was
    /// restarted (or lost its state) does. A client connects again; nothing the old server had is kept.</summary>
    ConnectionReset,
}

/// <summary>Why a handshake failed (when <see cref="QuicException.Error"/> is <see cref="QuicError.HandshakeFailed"/>).</summary>
public enum HandshakeFailure
{
    None = 0,
    /// <summary>The server's certificate does not chain to a trusted root.</summary>
    UnknownIssuer = 1,
    /// <summary>The server's certificate does not cover the name connected to.</summary>
    NameMismatch = 2,
    /// <summary>The server's certificate matches none of the pins.</summary>
    PinMismatch = 3,
    /// <summary>A certificate has expired or is not valid yet.</summary>
    Expired = 4,
    /// <summary>A certificate is malformed or unusable.</summary>
    BadCertificate = 5,
    /// <summary>The peer did not accept this side's certificate.</summary>
    CertificateRejected = 6,
    /// <summary>The server requires a client certificate and none was presented.</summary>
    CertificateRequired = 7,
    /// <summary>No common application protocol (ALPN).</summary>
    NoApplicationProtocol = 8,
    /// <summary>Another TLS failure.</summary>
    OtherTls = 9,
    /// <summary>The server refused the connection (its connection limit).</summary>
    Refused = 10,
    /// <summary>Nothing answered.</summary>
    TimedOut = 11,
    /// <summary>Closed before the handshake completed for another reason.</summary>
    Other = 12,
}

/// <summary>A QUIC transport failure; <see cref="Error"/> says which kind.</summary>
public class QuicException : IOException
{
    public QuicException(QuicError error, string message, Exception? inner = null) : base(message, inner) => Error = error;

    public QuicError Error { get; }

    /// <summary>The application or transport error code, when the failure carried one.</summary>
    public long? ErrorCode { get; init; }

    /// <summary>Why the handshake failed, for <see cref="QuicError.HandshakeFailed"/>.</summary>
    public HandshakeFailure HandshakeFailure { get; init; }
}

/// <summary>Certificates, keys or settings that cannot be used; the message names which and why.</summary>
public sealed class QuicConfigurationException : Exception
{
    public QuicConfigurationException(string message, Exception? inner = null) : base(message, inner) { }
}
