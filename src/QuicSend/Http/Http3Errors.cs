using QuicSend.Native;

namespace QuicSend.Http;

/// <summary>HTTP/3 error codes (RFC 9114 §8.1) the library uses, and their names.</summary>
public static class Http3Errors
{
    public const ulong NoError = 0x100;
    public const ulong GeneralProtocolError = 0x101;
    public const ulong InternalError = 0x102;
    public const ulong RequestRejected = 0x10b;
    public const ulong RequestCancelled = 0x10c;
    public const ulong MessageError = 0x10e;
    public const ulong ExcessiveLoad = 0x107;

    /// <summary>The RFC name of an HTTP/3 or QPACK error code, e.g. H3_FRAME_UNEXPECTED (0x105).</summary>
    public static string Name(long code) => NativeErrors.CodeName(code);
}
