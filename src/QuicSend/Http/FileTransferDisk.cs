using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QuicSend.Http;

/// <summary>
/// Starts writing a received file's pages to disk while it is still arriving, so that the flush
/// before the rename finds less left to do (with gigabytes of RAM the kernel would otherwise keep
/// the whole file dirty until that flush). Linux only; elsewhere, and on file systems that do not
/// support it, it does nothing.
/// </summary>
internal static partial class FileTransferDisk
{
    /// <summary>How much is written between two write-back starts.</summary>
    public const long Stride = 8L << 20;

    private const uint SYNC_FILE_RANGE_WRITE = 2;
    private static volatile bool _unavailable = !OperatingSystem.IsLinux();

    /// <summary>Asks the kernel to start writing back [offset, offset+count) of the file, without waiting.</summary>
    public static void StartWriteback(SafeFileHandle file, long offset, long count)
    {
        if (_unavailable || count <= 0) return;
        try
        {
            if (sync_file_range(file, offset, count, SYNC_FILE_RANGE_WRITE) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is 38 /* ENOSYS */ or 22 /* EINVAL */ or 95 /* EOPNOTSUPP */ or 29 /* ESPIPE */) _unavailable = true;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int sync_file_range(SafeFileHandle fd, long offset, long nbytes, uint flags);
}
