namespace QuicSend.Http;

// The served folder's rule for symbolic links: a name whose entry is a link leading (finally) out of the
// served folder's real path is never opened for a download. Uploads need no check: the final rename
// replaces the entry itself, never what a link points to.
public static partial class FileTransfer
{
    private const int MaxLinkHops = 40; // as Linux's ELOOP limit

    /// <summary>
    /// Is <paramref name="path"/> (an entry directly in <paramref name="dir"/>) a symbolic link whose final target lies
    /// outside <paramref name="dir"/>'s real path? A link that loops is left to the open, which fails on it (ELOOP) and says so.
    /// </summary>
    internal static bool LinkLeadsOutside(string dir, string path)
    {
        if (new FileInfo(path).LinkTarget is null) return false;
        var realDir = RealPath(dir);
        var realTarget = RealPath(path);
        if (realDir is null || realTarget is null) return false;
        var prefix = Path.EndsInDirectorySeparator(realDir) ? realDir : realDir + Path.DirectorySeparatorChar;
        return !realTarget.StartsWith(prefix, StringComparison.Ordinal);
    }

    /// <summary>
    /// <paramref name="path"/> with every symbolic link on the way resolved, as realpath(3) does (the last part need not
    /// exist); null when the links loop. Done by hand because .NET resolves only a path's last part.
    /// </summary>
    internal static string? RealPath(string path)
    {
        var pending = new Stack<string>(Path.GetFullPath(path).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        var root = Path.GetPathRoot(Path.GetFullPath(path))!;
        var done = root;
        int hops = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".") continue;
            if (part == "..") { done = Path.GetDirectoryName(done) ?? root; continue; }
            var next = Path.Combine(done, part);
            string? target;
            try { target = new FileInfo(next).LinkTarget; }
            catch (IOException) { target = null; }
            if (target is null) { done = next; continue; }
            if (++hops > MaxLinkHops) return null;
            // The link's target replaces it; a relative target is read from the link's folder.
            foreach (var p in target.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(p);
            if (Path.IsPathRooted(target)) done = root;
        }
        return done;
    }
}
