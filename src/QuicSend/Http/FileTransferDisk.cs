using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QuicSend.Http;

/// <summary>
/// The disk side of receiving a file: how much room there is, reserving room up front (bounded),
/// recognising every "disk full" failure, and starting write-back while the file is still arriving,
/// so that the flush before the rename finds less left to do (with gigabytes of RAM the kernel would
/// otherwise keep the whole file dirty until that flush). Write-back and reservation are Linux only;
/// elsewhere, and on file systems that do not support them, they do nothing.
/// </summary>
internal static partial class FileTransferDisk
{
    private const int ENOSPC = 28, EFBIG = 27, EDQUOT = 122;
    private static volatile bool _noFallocate = !OperatingSystem.IsLinux();

    /// <summary>Bytes an unprivileged writer may still store in <paramref name="directory"/>'s file system (statvfs f_bavail), or null when unknown.</summary>
    public static long? FreeSpace(string directory)
    {
        try { return new DriveInfo(directory).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return null; }
    }

    /// <summary>
    /// Reserves the first <paramref name="length"/> bytes of a new file, so a full disk fails now rather than at
    /// 99 %. Throws <see cref="DiskFullException"/> when the file system has no room (posix_fallocate reports
    /// its error directly, where .NET's own preallocation loses the errno); does nothing where unsupported.
    /// </summary>
    public static void Reserve(SafeFileHandle file, long length)
    {
        if (_noFallocate || length <= 0) return;
        int error;
        try { error = posix_fallocate(file, 0, length); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _noFallocate = true;
            return;
        }
        if (error is ENOSPC or EDQUOT or EFBIG)
            throw new DiskFullException(error, $"the file system could not reserve {length} bytes for it ({Describe(error)})");
        // EOPNOTSUPP, EINVAL and the like: no reservation, the bytes are written as they come.
    }

    /// <summary>Is <paramref name="e"/> the disk (or the quota, or the file-size limit) being full?</summary>
    public static bool IsDiskFull(Exception e) => e is DiskFullException ||
        e.HResult is ENOSPC or EFBIG or EDQUOT or unchecked((int)0x80070070) /* ERROR_DISK_FULL */ or unchecked((int)0x80070027) /* ERROR_HANDLE_DISK_FULL */;

    /// <summary>The 507 text: what happened (never where the server keeps files) and what to do.</summary>
    public static string DiskFullMessage(string name, Exception e)
    {
        var cause = e switch
        {
            DiskFullException d => d.Message,
            _ when e.HResult == EDQUOT => Describe(EDQUOT),
            _ when e.HResult == EFBIG => Describe(EFBIG),
            _ => Describe(ENOSPC),
        };
        return $"The server's disk is full: there is no room to store '{name}' ({cause}). Nothing was kept. " +
               "Free space on the server (or raise its disk quota), then upload again.";
    }

    private static string Describe(int errno) => errno switch
    {
        EDQUOT => "the disk quota is exceeded",
        EFBIG => "the file is too large for the server's file system",
        _ => "no space left on the device",
    };

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

    [LibraryImport("libc.so.6")]
    private static partial int posix_fallocate(SafeFileHandle fd, long offset, long len);

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int sync_file_range(SafeFileHandle fd, long offset, long nbytes, uint flags);
}

/// <summary>The disk had no room for a received file; <see cref="Exception.HResult"/> is the errno (ENOSPC, EDQUOT, EFBIG).</summary>
internal sealed class DiskFullException : IOException
{
    public DiskFullException(int errno, string message) : base(message) => HResult = errno;
}
