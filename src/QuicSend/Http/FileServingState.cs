using System.Collections.Concurrent;

namespace QuicSend.Http;

/// <summary>
/// What one <see cref="QuicSendServer"/> keeps for serving files: its striped-upload sessions, its
/// per-client transfer counts, and the folders it serves, whose stale partial files it sweeps when
/// it first serves them and then periodically. Disposed with the server.
/// </summary>
internal sealed class FileServingState : IDisposable
{
    private readonly ConcurrentDictionary<string, byte> _folders = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _receiving = new(StringComparer.Ordinal); // whole uploads' partials being written
    private readonly Timer _timer;
    private int _disposed;

    public FileServingState(FileServingOptions options)
    {
        options.Validate();
        MaxPreallocationSize = options.MaxPreallocationSize;
        var idle = options.UploadSessionIdleTimeout ?? FileTransfer.UploadSessionIdleTimeout;
        Sessions = new UploadSessionTable(FileTransfer.MaxUploadSessions, idle);
        Limits = new FileTransferLimits(options.MaxTransfersPerConnection, options.MaxTransfersPerToken);
        // Often enough that nothing outlives the timeout by much; rarely enough to cost nothing.
        SweepInterval = TimeSpan.FromTicks(Math.Clamp(idle.Ticks / 2, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromMinutes(1).Ticks));
        _timer = new Timer(_ => Sweep(), null, SweepInterval, SweepInterval);
    }

    /// <summary>For requests of no server (none are made today): a shared state that is never disposed.</summary>
    internal static readonly FileServingState Detached = new(new FileServingOptions());

    public long MaxPreallocationSize { get; }
    public UploadSessionTable Sessions { get; }
    public FileTransferLimits Limits { get; }
    public TimeSpan SweepInterval { get; }

    /// <summary>Partial files deleted by the sweeps so far.</summary>
    public long SweptPartials => Interlocked.Read(ref _swept);

    private long _swept;

    /// <summary>Starts serving <paramref name="directory"/>: the first time, its stale partials are swept at once.</summary>
    public void Serve(string directory)
    {
        if (Volatile.Read(ref _disposed) == 0 && _folders.TryAdd(directory, 0)) SweepPartials(directory);
    }

    /// <summary>Idle sessions, then stale partials of every folder served.</summary>
    public void Sweep()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        Sessions.SweepIdle();
        foreach (var dir in _folders.Keys) SweepPartials(dir);
    }

    private void SweepPartials(string directory) =>
        Interlocked.Add(ref _swept, PartialFileSweeper.Sweep(directory, Sessions.IdleTimeout, p => _receiving.ContainsKey(p) || Sessions.Owns(p)));

    /// <summary>Bytes reserved on disk by uploads in progress (counted until each ends).</summary>
    public long Reserved => Interlocked.Read(ref _reserved);

    private long _reserved;

    /// <summary>
    /// Takes up to <paramref name="wanted"/> bytes of the server-wide reservation budget (<see cref="MaxPreallocationSize"/>);
    /// <paramref name="granted"/> may be less, or 0 when uploads in progress hold it all. Disposing gives it back.
    /// </summary>
    public IDisposable Reserve(long wanted, out long granted)
    {
        while (true)
        {
            long held = Interlocked.Read(ref _reserved);
            long take = Math.Clamp(Math.Min(wanted, MaxPreallocationSize - held), 0, long.MaxValue);
            if (Interlocked.CompareExchange(ref _reserved, held + take, held) != held) continue;
            granted = take;
            return new Release(() => Interlocked.Add(ref _reserved, -take));
        }
    }

    /// <summary>Marks the partial file of a whole upload as in use until the result is disposed.</summary>
    public IDisposable Receiving(string partial)
    {
        _receiving[partial] = 0;
        return new Release(() => _receiving.TryRemove(partial, out _));
    }

    private sealed class Release(Action release) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) release();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _timer.Dispose();
        Sessions.DiscardAll();
    }
}
