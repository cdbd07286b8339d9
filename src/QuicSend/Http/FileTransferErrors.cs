using System.Text.RegularExpressions;

namespace QuicSend.Http;

/// <summary>
/// The cause of a file-serving failure in words a client may read. .NET's I/O messages carry full paths
/// ("Access to the path '/srv/data/x' is denied."), which would tell every client where the server keeps
/// its files; so the common kinds are said in our own words, naming the file only, and any other message
/// has each path in it cut down to its file name and the served folder taken out.
/// </summary>
internal static partial class FileTransferErrors
{
    // Linux errno values: .NET puts the errno in IOException.HResult on Unix.
    private const int EPERM = 1, EIO = 5, ENXIO = 6, EACCES = 13, EBUSY = 16, ENOTDIR = 20, EISDIR = 21,
        ENFILE = 23, EMFILE = 24, ETXTBSY = 26, EROFS = 30, ENAMETOOLONG = 36, ELOOP = 40;

    [GeneratedRegex("'([^']+)'", RegexOptions.CultureInvariant)]
    private static partial Regex Quoted();

    /// <summary>
    /// Why <paramref name="e"/> happened, as a clause without a final period (e.g. "'x' is a folder on the server"),
    /// naming no folder of the server: <paramref name="directory"/> (the served one) least of all.
    /// </summary>
    public static string Cause(Exception e, string directory)
    {
        var path = PathIn(e.Message);
        var file = path is null ? "the file" : $"'{NameOf(path)}'";
        int errno = e is IOException ? e.HResult : 0;
        return e switch
        {
            // .NET reports opening a folder as a file as "access denied" too: tell the two apart.
            UnauthorizedAccessException when path is not null && Directory.Exists(path) => $"{file} is a folder on the server",
            UnauthorizedAccessException => $"permission denied on {file} (the server's process may not use it)",
            PathTooLongException => "the name is too long for the server's file system",
            FileNotFoundException or DirectoryNotFoundException => $"{file} or its folder was removed on the server while in use",
            _ when errno == EISDIR => $"{file} is a folder on the server",
            _ when errno == ENOTDIR => $"{file} cannot be reached: something on the way to it is a file, not a folder",
            _ when errno == ELOOP => $"{file} is a symbolic link that loops (too many levels of symbolic links)",
            _ when errno is EACCES or EPERM => $"permission denied on {file} (the server's process may not use it)",
            _ when errno == EROFS => "the server's file system is read-only",
            _ when errno == EIO => $"an input/output error on the server's disk while using {file}",
            _ when errno == ENXIO => $"{file} is not a regular file (no such device or address)",
            _ when errno is EMFILE or ENFILE => "the server has too many files open; try again later",
            _ when errno is EBUSY or ETXTBSY => $"{file} is busy on the server; try again later",
            _ when errno == ENAMETOOLONG => "the name is too long for the server's file system",
            _ => Scrub(e.Message, directory).TrimEnd().TrimEnd('.'),
        };
    }

    /// <summary><paramref name="message"/> with every quoted absolute path cut down to its file name and <paramref name="directory"/> removed.</summary>
    public static string Scrub(string message, string directory)
    {
        var scrubbed = Quoted().Replace(message, m => Path.IsPathFullyQualified(m.Groups[1].Value) ? $"'{NameOf(m.Groups[1].Value)}'" : m.Value);
        // A path that was not quoted (or was cut by an apostrophe in a name): take the folder out all the same.
        var dir = Path.TrimEndingDirectorySeparator(FullPath(directory));
        if (!Path.IsPathFullyQualified(dir) || dir.Length <= 1) return scrubbed; // never blank out "/" or a relative word
        return scrubbed.Replace(dir + Path.DirectorySeparatorChar, "", StringComparison.Ordinal).Replace(dir, "the served folder", StringComparison.Ordinal);
    }

    private static string? PathIn(string message)
    {
        foreach (Match m in Quoted().Matches(message))
            if (Path.IsPathFullyQualified(m.Groups[1].Value)) return m.Groups[1].Value;
        return null;
    }

    private static string NameOf(string path)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
        return name.Length > 0 ? name : "the served folder";
    }

    private static string FullPath(string directory)
    {
        try { return Path.GetFullPath(directory); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return directory; }
    }
}
