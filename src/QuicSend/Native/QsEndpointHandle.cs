using System.Runtime.InteropServices;

namespace QuicSend.Native;

/// <summary>Owns a native QsEndpoint (and the connections inside it); freed with qs_endpoint_free.</summary>
internal sealed class QsEndpointHandle : SafeHandle
{
    public QsEndpointHandle() : base(nint.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.qs_endpoint_free(handle);
        return true;
    }
}
