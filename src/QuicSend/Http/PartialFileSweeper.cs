using System.Text.RegularExpressions;

namespace QuicSend.Http;

/// <summary>
/// Deletes stale partial files (<c>.&lt;name&gt;.&lt;hex or upload id&gt;.partial</c>) from a served folder:
/// those a killed server, or an upload nobody finished, left behind. A partial is stale when no live
/// upload session of this server owns it and it was not written to for the session idle timeout; the
/// age rule spares the partials of another server process serving the same folder (each write
/// touches them, and its own sessions die after that same timeout).
/// </summary>
internal static partial class PartialFileSweeper
{
    // What TemporaryPathFor makes: '.', a name, '.', 8 to 64 id characters, ".partial".
    [GeneratedRegex(@"^\..+\.[0-9A-Za-z-]{8,64}\.partial$", RegexOptions.CultureInvariant)]
    private static partial Regex PartialName();

    // A resumable download's partial (DownloadResume.cs) is kept on purpose, beside its record, for the next attempt.
    private const string ResumableDownload = ".quicsend-resume.partial";

    /// <summary>Deletes the stale partials directly in <paramref name="directory"/>; returns how many.</summary>
    public static int Sweep(string directory, TimeSpan olderThan, Func<string, bool> owned)
    {
        int deleted = 0;
        var cutoff = DateTime.UtcNow - olderThan;
        IEnumerable<FileInfo> candidates;
        try
        {
            candidates = new DirectoryInfo(directory).EnumerateFiles(".*.partial", new EnumerationOptions
            {
                AttributesToSkip = FileAttributes.ReparsePoint, // never a link: only files this server could have made
                IgnoreInaccessible = true,
                RecurseSubdirectories = false,
                MatchType = MatchType.Simple,
            }).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0; // the folder is gone or unreadable: serving reports that on the next request
        }
        foreach (var file in candidates)
        {
            try
            {
                if (!PartialName().IsMatch(file.Name) || file.Name.EndsWith(ResumableDownload, StringComparison.Ordinal) || owned(file.FullName)) continue;
                file.Refresh();
                if (!file.Exists || file.LastWriteTimeUtc > cutoff) continue;
                file.Delete();
                deleted++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return deleted;
    }
}
