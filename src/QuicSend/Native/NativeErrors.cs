namespace QuicSend.Native;

/// <summary>Turns the shim's status codes into exceptions carrying its last-error text.</summary>
internal static unsafe class NativeErrors
{
    internal static string LastError() => NativeText.Utf8((p, n) => NativeMethods.qs_last_error(p, n), 1024);

    /// <summary>The engine's RFC name of an HTTP/3 or QPACK error code with the code, e.g. H3_FRAME_UNEXPECTED (0x105).
    /// The transport names close codes with it too: the engine classifies the closes it reports.</summary>
    internal static string CodeName(long code)
    {
        var name = NativeText.Utf8((p, n) => NativeMethods.qs_h3_error_name((ulong)code, p, n), 64);
        return $"{name} (0x{code:x})";
    }

    /// <summary>Throws for any error code; QS_OK, QS_DONE, QS_BLOCKED and non-negative values pass through.</summary>
    internal static long Check(long rc, string operation)
    {
        if (rc >= QsConst.QS_BLOCKED) return rc;
        throw ToException((int)rc, operation);
    }

    internal static Exception ToException(int rc, string operation)
    {
        var message = $"{operation}: {LastError()}";
        return rc switch
        {
            QsConst.QS_ERR_INVALID_ARGUMENT => new ArgumentException(message),
            QsConst.QS_ERR_TLS_CONFIG => new QuicConfigurationException(message),
            QsConst.QS_ERR_INVALID_STATE => new InvalidOperationException(message),
            QsConst.QS_ERR_CONNECT => new QuicException(QuicError.ConnectFailed, message),
            // E.g. a call on a connection the peer closed and the engine has since drained (a server restart).
            QsConst.QS_ERR_CONNECTION_CLOSED => new QuicException(QuicError.ConnectionClosed, message),
            QsConst.QS_ERR_PANIC => new QuicException(QuicError.Internal, message),
            _ => new QuicException(QuicError.Internal, $"{message} (code {rc})"),
        };
    }
}
