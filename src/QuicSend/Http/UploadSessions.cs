using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace QuicSend.Http;

/// <summary>
/// One striped upload in progress (docs/striping.md): its partial file, open for chunks to be
/// written in place, and the byte ranges received and verified so far.
/// </summary>
internal sealed class UploadSession(string name, string target, string temp, long total, FileStream file)
{
    private readonly List<(long Start, long End)> _covered = []; // merged, sorted [start, end)
    public string Name { get; } = name;
    public string Target { get; } = target;
    public string Temp { get; } = temp;
    public long Total { get; } = total;
    public FileStream File { get; } = file;
    public int Active;
    public long LastActivity = Stopwatch.GetTimestamp();
    public bool Closed;

    public void Cover(long start, long end)
    {
        lock (_covered)
        {
            _covered.Add((start, end));
            _covered.Sort();
            for (int i = _covered.Count - 1; i > 0; i--)
                if (_covered[i].Start <= _covered[i - 1].End)
                {
                    _covered[i - 1] = (_covered[i - 1].Start, Math.Max(_covered[i - 1].End, _covered[i].End));
                    _covered.RemoveAt(i);
                }
        }
    }

    /// <summary>The verified ranges as the upload-status answer gives them: <c>first-last,first-last</c>, inclusive, ascending; empty when none.</summary>
    public string ReceivedRanges()
    {
        lock (_covered)
        {
            var sb = new StringBuilder();
            foreach (var (s, e) in _covered)
            {
                if (sb.Length > 0) sb.Append(',');
                sb.Append(s.ToString(CultureInfo.InvariantCulture)).Append('-').Append((e - 1).ToString(CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }
    }

    /// <summary>The first byte range not yet received, or null when the file is complete.</summary>
    public (long Start, long End)? FirstGap()
    {
        lock (_covered)
        {
            long at = 0;
            foreach (var (s, e) in _covered)
            {
                if (s > at) return (at, s);
                at = Math.Max(at, e);
            }
            return at < Total ? (at, Total) : null;
        }
    }

    public void Discard()
    {
        lock (this)
        {
            if (Closed) return;
            Closed = true;
        }
        File.Dispose();
        FileTransfer.DeleteQuietly(Temp);
    }
}

/// <summary>
/// The striped-upload sessions of one server, keyed by (served folder, token, upload id). Owned by the
/// server, so two servers in one process neither share nor limit each other's uploads, and disposing a
/// server drops its sessions and their partial files (sessions never survive the server).
/// </summary>
internal sealed class UploadSessionTable(int maxSessions, TimeSpan idleTimeout)
{
    private readonly ConcurrentDictionary<(string Dir, string Token, string Id), UploadSession> _sessions = new();
    private bool _disposed;

    public int MaxSessions { get; } = maxSessions;
    public TimeSpan IdleTimeout { get; } = idleTimeout;
    public int Count => _sessions.Count;

    public bool TryGet((string, string, string) key, out UploadSession session) => _sessions.TryGetValue(key, out session!);

    /// <summary>
    /// The session for <paramref name="key"/>, made with <paramref name="open"/> if there is none (under a lock: the
    /// first chunks of an upload arrive together). Null when the table is full or the server is gone.
    /// </summary>
    public UploadSession? GetOrAdd((string, string, string) key, Func<UploadSession> open)
    {
        lock (_sessions)
        {
            if (_sessions.TryGetValue(key, out var session)) return session;
            if (_disposed || _sessions.Count >= MaxSessions) return null;
            return _sessions[key] = open();
        }
    }

    public bool TryRemove((string, string, string) key, out UploadSession session) => _sessions.TryRemove(key, out session!);

    public bool TryRemove((string, string, string) key, UploadSession session) =>
        _sessions.TryRemove(new KeyValuePair<(string, string, string), UploadSession>(key, session));

    /// <summary>Is <paramref name="path"/> the partial file of a live session? (The partial-file sweep leaves those alone.)</summary>
    public bool Owns(string path) => _sessions.Values.Any(s => string.Equals(s.Temp, path, StringComparison.Ordinal));

    /// <summary>Drops sessions idle past <see cref="IdleTimeout"/> with no chunk arriving, and their partial files.</summary>
    public int SweepIdle()
    {
        long now = Stopwatch.GetTimestamp();
        int dropped = 0;
        foreach (var (key, session) in _sessions)
            if (Volatile.Read(ref session.Active) == 0
                && Stopwatch.GetElapsedTime(Volatile.Read(ref session.LastActivity), now) > IdleTimeout
                && TryRemove(key, session))
            {
                session.Discard();
                dropped++;
            }
        return dropped;
    }

    /// <summary>The server is going away: every session is dropped with its partial file, and no new one starts.</summary>
    public void DiscardAll()
    {
        lock (_sessions) _disposed = true;
        foreach (var (key, session) in _sessions)
            if (TryRemove(key, session)) session.Discard();
    }
}
