using System.Runtime.InteropServices;

namespace QuicSend.Native;

/// <summary>Owns a native QsConfig; freed with qs_config_free.</summary>
internal sealed class QsConfigHandle : SafeHandle
{
    public QsConfigHandle() : base(nint.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.qs_config_free(handle);
        return true;
    }
}
