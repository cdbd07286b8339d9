using System.Globalization;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace QuicSend.Http;

/// <summary>
/// What a resumable striped download keeps beside its target between attempts: the partial file
/// <c>.&lt;name&gt;.quicsend-resume.partial</c> and a record <c>.&lt;name&gt;.quicsend-resume.json</c> naming the
/// source, its version (ETag), its length, the chunk size and the chunks that are on disk. A chunk enters
/// the record only after the partial file was flushed to disk with it, so a record never claims bytes a
/// crash lost. The record is replaced atomically (write, flush, rename).
/// </summary>
internal sealed class DownloadResume : IDisposable
{
    private const int FormatVersion = 1;
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(1);

    private readonly string _source;
    private readonly string _etag;
    private readonly long _length;
    private readonly int _chunkSize;
    private readonly bool[] _done;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private SafeFileHandle? _file;
    private Task? _checkpoints;
    private bool _dirty;

    private DownloadResume(string partial, string record, string source, string etag, long length, int chunkSize, bool[] done)
    {
        PartialPath = partial;
        RecordPath = record;
        _source = source;
        _etag = etag;
        _length = length;
        _chunkSize = chunkSize;
        _done = done;
    }

    public string PartialPath { get; }
    public string RecordPath { get; }

    /// <summary>Whether chunk <paramref name="chunk"/> is on disk (from an earlier attempt, or flushed in this one).</summary>
    public bool IsDone(int chunk)
    {
        lock (_lock) return _done[chunk];
    }

    /// <summary>
    /// The state for downloading <paramref name="source"/> at version <paramref name="etag"/> into <paramref name="finalPath"/>:
    /// the earlier attempt's chunks when its record matches exactly and its partial file is whole; otherwise both are
    /// removed and the download starts afresh.
    /// </summary>
    public static DownloadResume Open(string finalPath, string source, string etag, long length, int chunkSize)
    {
        var partial = FileTransfer.TemporaryPathFor(finalPath, "quicsend-resume");
        var record = partial[..^FileTransfer.PartialSuffix.Length] + ".json";
        int count = (int)((length + chunkSize - 1) / chunkSize);
        var done = new bool[count];
        bool matches = false;
        try
        {
            // Preallocation reserves blocks without growing the length: a partial file is as long as its furthest piece.
            if (File.Exists(record) && File.Exists(partial) && new FileInfo(partial).Length <= length)
                matches = Read(File.ReadAllBytes(record), source, etag, length, chunkSize, done);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { }
        if (!matches)
        {
            Array.Clear(done);
            FileTransfer.DeleteQuietly(record);
            FileTransfer.DeleteQuietly(partial);
        }
        return new DownloadResume(partial, record, source, etag, length, chunkSize, done);
    }

    private static bool Read(byte[] json, string source, string etag, long length, int chunkSize, bool[] done)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.GetProperty("version").GetInt32() != FormatVersion
            || root.GetProperty("source").GetString() != source
            || root.GetProperty("etag").GetString() != etag
            || root.GetProperty("length").GetInt64() != length
            || root.GetProperty("chunkSize").GetInt32() != chunkSize)
            return false;
        foreach (var c in root.GetProperty("done").EnumerateArray())
        {
            int i = c.GetInt32();
            if ((uint)i >= (uint)done.Length) return false;
            done[i] = true;
        }
        return true;
    }

    /// <summary>Opens (or creates, preallocated) the partial file and starts checkpointing the record once a second.</summary>
    public SafeFileHandle OpenPartial()
    {
        bool resuming;
        lock (_lock) resuming = _done.Contains(true);
        _file = resuming
            ? File.OpenHandle(PartialPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous)
            : File.OpenHandle(PartialPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous, preallocationSize: _length);
        _checkpoints = CheckpointLoopAsync(_stop.Token);
        return _file;
    }

    /// <summary>A chunk was written in full; it enters the record at the next checkpoint.</summary>
    public void Completed(int chunk)
    {
        lock (_lock)
        {
            _done[chunk] = true;
            _dirty = true;
        }
    }

    private async Task CheckpointLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(CheckpointEvery, cancellationToken).ConfigureAwait(false);
                Checkpoint();
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException) { } // the final checkpoint reports
    }

    /// <summary>Flushes the partial file, then records the chunks that are now safely on disk.</summary>
    public void Checkpoint()
    {
        int[] done;
        lock (_lock)
        {
            if (!_dirty || _file is null) return;
            _dirty = false;
            done = Enumerable.Range(0, _done.Length).Where(i => _done[i]).ToArray();
        }
        FlushPartial(); // the bytes first: the record must never name chunks a crash lost
        var temp = RecordPath + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var w = new Utf8JsonWriter(f))
            {
                w.WriteStartObject();
                w.WriteNumber("version", FormatVersion);
                w.WriteString("source", _source);
                w.WriteString("etag", _etag);
                w.WriteNumber("length", _length);
                w.WriteNumber("chunkSize", _chunkSize);
                w.WriteStartArray("done");
                foreach (var i in done) w.WriteNumberValue(i);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            f.Flush(flushToDisk: true);
        }
        File.Move(temp, RecordPath, overwrite: true);
    }

    /// <summary>fsync of the partial file: through the transfer's handle while it is open, else through a new one (fsync is per file).</summary>
    private void FlushPartial()
    {
        if (_file is { IsClosed: false } open)
        {
            try
            {
                RandomAccess.FlushToDisk(open);
                return;
            }
            catch (ObjectDisposedException) { } // closed meanwhile: the transfer ended
        }
        using var h = File.OpenHandle(PartialPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        RandomAccess.FlushToDisk(h);
    }

    /// <summary>Stops checkpointing. Keeping: one last checkpoint, and a sentence for the error saying what was kept.</summary>
    public async Task<string> StopAndKeepAsync()
    {
        await StopAsync().ConfigureAwait(false);
        long kept;
        lock (_lock)
        {
            _dirty = true;
            kept = Enumerable.Range(0, _done.Length).Where(i => _done[i]).Sum(i => Math.Min(_chunkSize, _length - (long)i * _chunkSize)); // the chunks' lengths, as ChunkScheduler.RangeOf
        }
        try
        {
            Checkpoint();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Discard();
            return $"Its progress could not be kept ({e.Message}); the next attempt starts afresh.";
        }
        _file?.Dispose();
        return kept == 0
            ? "Nothing had arrived yet."
            : string.Create(CultureInfo.InvariantCulture, $"{kept} of {_length} bytes are kept in '{PartialPath}'; the same download resumes from there.");
    }

    /// <summary>Stops checkpointing and removes the record; the partial file, complete and flushed, is about to become the target.</summary>
    public async Task DiscardRecordAsync()
    {
        await StopAsync().ConfigureAwait(false);
        FileTransfer.DeleteQuietly(RecordPath);
        FileTransfer.DeleteQuietly(RecordPath + ".tmp");
    }

    /// <summary>Stops checkpointing and removes the partial file and the record (a changed source, a failed check).</summary>
    public async Task DiscardAsync()
    {
        await StopAsync().ConfigureAwait(false);
        Discard();
    }

    private void Discard()
    {
        _file?.Dispose();
        FileTransfer.DeleteQuietly(RecordPath);
        FileTransfer.DeleteQuietly(RecordPath + ".tmp");
        FileTransfer.DeleteQuietly(PartialPath);
    }

    private async Task StopAsync()
    {
        _stop.Cancel();
        if (_checkpoints is not null) await _checkpoints.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
        _file?.Dispose();
    }
}
