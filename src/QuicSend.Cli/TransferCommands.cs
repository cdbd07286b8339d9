using System.CommandLine;
using QuicSend.Http;
using Spectre.Console;

namespace QuicSend.Cli;

/// <summary><c>quicsend send FILE… URL</c> and <c>quicsend get URL… DEST</c>.</summary>
internal static class TransferCommands
{
    public static Command Send()
    {
        var args = new Argument<string[]>("FILE... URL")
        {
            Description = "The files to upload, then the server's URL (https://HOST:4433/). Each goes to /files/<its name>; " +
                          "with one file, a URL ending in /files/NAME stores it as NAME.",
            Arity = new ArgumentArity(2, 100_000),
        };
        var setup = new ClientSetup();
        var overwrite = new Option<bool>("--overwrite")
        {
            Description = "Replace a file of the same name on the server (atomically, once the new one is verified). Without it, a name the server has already is refused (exit 3).",
        };
        var cmd = new Command("send", "Upload files to a `quicsend serve` server, with a progress bar each; the server verifies every file's SHA-256 before keeping it, " +
                                      "and replaces an existing file only with --overwrite.") { args };
        setup.AddTo(cmd);
        cmd.Options.Add(setup.NoResume);
        cmd.Options.Add(overwrite);
        cmd.SetAction((p, _) => Cli.RunAsync(async ct =>
        {
            var all = p.GetValue(args)!;
            var url = ServerUrl.Parse(all[^1]);
            var files = all[..^1];
            var named = FileTransfer.NameFromPath(url.Path);
            if (url.Path is not ("/" or "" or "/files" or "/files/") && named is null)
                throw CliException.Usage($"send takes the server's URL (https://{url.Authority}/), not '{url.Path}': files are stored under /files/<name>.");
            if (!string.IsNullOrEmpty(named) && files.Length > 1)
                throw CliException.Usage($"the URL names one file ('{named}') but {files.Length} files were given: give https://{url.Authority}/ to keep their names.");
            var jobs = new List<(string Local, string Remote, long Length)>();
            foreach (var f in files)
            {
                var full = Path.GetFullPath(f);
                if (Directory.Exists(full)) throw new CliException(ExitCode.LocalIo, $"'{full}' is a folder: give files (e.g. DIR/*).");
                if (!File.Exists(full)) throw new CliException(ExitCode.LocalIo, $"'{full}' does not exist: check the path.");
                var remote = string.IsNullOrEmpty(named) ? Path.GetFileName(full) : named;
                if (FileTransfer.ValidateName(remote) is string why)
                    throw CliException.Usage($"'{remote}' cannot be stored on the server: {why} Rename it, or name it with https://{url.Authority}/files/NAME.");
                jobs.Add((full, remote, new FileInfo(full).Length));
            }
            bool replace = p.GetValue(overwrite);
            await using var client = await setup.ConnectAsync(p, url, ct, transfers: true);
            var results = await Transfers.RunAsync(jobs.Select(j => new Transfers.Job(j.Remote, j.Length,
                (progress, token) => client.UploadFileAsync(j.Local, j.Remote, replace, progress, token),
                ConnectionBytes: Transfers.BytesPerConnection(client, received: false))).ToList(), ct);
            foreach (var r in results)
                Console.WriteLine($"sent {r.Name} -> {url.Base}{FileTransfer.PathFor(r.Name)}: {Format.Bytes(r.Length)} in {r.Elapsed.TotalSeconds:0.00} s " +
                                  $"({Format.Rate(r.Length - r.ResumedBytes, r.Elapsed)}), verified sha256 {r.Sha256}{Resumed(r)}");
            return ExitCode.Success;
        }));
        return cmd;
    }

    private static string Resumed(FileTransferResult r) => r.ResumedBytes > 0 ? $"; resumed: {Format.Bytes(r.ResumedBytes)} were already there" : "";

    public static Command Get()
    {
        var args = new Argument<string[]>("URL... DEST")
        {
            Description = "The files' URLs (https://HOST:4433/files/NAME, one server), then where to write: a folder, or with one URL a file path.",
            Arity = new ArgumentArity(2, 100_000),
        };
        var setup = new ClientSetup();
        var cmd = new Command("get", "Download files from a `quicsend serve` server, with a progress bar each; each is verified by SHA-256 and renamed into place only then " +
                                     "(an existing file at the target is replaced).") { args };
        setup.AddTo(cmd);
        cmd.Options.Add(setup.NoResume);
        cmd.SetAction((p, _) => Cli.RunAsync(async ct =>
        {
            var all = p.GetValue(args)!;
            var dest = all[^1];
            var urls = all[..^1].Select(ServerUrl.Parse).ToList();
            var server = urls[0];
            if (urls.Any(u => !string.Equals(u.Authority, server.Authority, StringComparison.OrdinalIgnoreCase)))
                throw CliException.Usage("all URLs must be on one server: run `quicsend get` once per server.");
            var names = new List<string>();
            foreach (var u in urls)
            {
                var name = FileTransfer.NameFromPath(u.Path);
                if (string.IsNullOrEmpty(name)) throw CliException.Usage($"'{u.Original}' names no file: get takes URLs like https://{u.Authority}/files/NAME.");
                if (FileTransfer.ValidateName(name) is string why) throw CliException.Usage($"'{u.Original}': {why}");
                names.Add(name);
            }
            var destFull = Path.GetFullPath(dest);
            bool toFolder = Directory.Exists(destFull) || Path.EndsInDirectorySeparator(dest) || urls.Count > 1;
            if (toFolder && File.Exists(destFull))
                throw CliException.Usage($"'{destFull}' is a file: with several URLs DEST must be a folder.");
            if (toFolder) Directory.CreateDirectory(destFull);
            else if (!Directory.Exists(Path.GetDirectoryName(destFull)))
                throw new CliException(ExitCode.LocalIo, $"the folder '{Path.GetDirectoryName(destFull)}' does not exist: create it first.");
            if (names.Distinct().Count() != names.Count) throw CliException.Usage("the same file is named twice.");

            await using var client = await setup.ConnectAsync(p, server, ct, transfers: true);
            var jobs = new List<Transfers.Job>();
            foreach (var name in names)
            {
                var target = toFolder ? Path.Combine(destFull, name) : destFull;
                jobs.Add(new Transfers.Job(name, null, (progress, token) => client.DownloadFileAsync(name, target, progress, token),
                    token => LengthOfAsync(client, name, token), Transfers.BytesPerConnection(client, received: true)));
            }
            var results = await Transfers.RunAsync(jobs, ct);
            foreach (var r in results)
                Console.WriteLine($"got {r.Name} -> {r.Path}: {Format.Bytes(r.Length)} in {r.Elapsed.TotalSeconds:0.00} s " +
                                  $"({Format.Rate(r.Length - r.ResumedBytes, r.Elapsed)}), verified sha256 {r.Sha256}{Resumed(r)}");
            return ExitCode.Success;
        }));
        return cmd;
    }

    /// <summary>The file's length from a HEAD, for the progress bar; null when the server will not say (the download then reports why).</summary>
    private static async Task<long?> LengthOfAsync(QuicSendClient client, string name, CancellationToken ct)
    {
        try
        {
            using var r = await client.SendAsync("HEAD", FileTransfer.PathFor(name), null, null, null, ct);
            return r.IsSuccess ? r.ContentLength : null;
        }
        catch (QuicException)
        {
            return null;
        }
    }
}

/// <summary>Runs transfers one after another under a live progress bar each (plain lines when the output is not a terminal).</summary>
internal static class Transfers
{
    public sealed record Job(string Name, long? Length, Func<IProgress<long>, CancellationToken, Task<FileTransferResult>> Run,
        Func<CancellationToken, Task<long?>>? Measure = null, Func<IReadOnlyList<long>>? ConnectionBytes = null);

    /// <summary>Bytes each of the client's connections has moved in one direction so far (for the per-connection rates).</summary>
    public static Func<IReadOnlyList<long>> BytesPerConnection(QuicSendClient client, bool received) =>
        () => client.ActiveConnections.Select(c => { var s = c.GetStats(); return received ? s.UdpBytesReceived : s.UdpBytesSent; }).ToList();

    /// <summary>Refreshes the task's description with each connection's rate, twice a second, while the transfer runs.</summary>
    private static async Task ShowConnectionsAsync(ProgressTask task, string name, Func<IReadOnlyList<long>> bytes, CancellationToken ct)
    {
        var last = bytes();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (true)
            {
                await Task.Delay(500, ct);
                var now = bytes();
                var seconds = clock.Elapsed.TotalSeconds;
                clock.Restart();
                if (now.Count > 1)
                {
                    var rates = now.Select((b, i) => i < last.Count ? Math.Max(0, b - last[i]) / seconds / 1048576 : 0);
                    task.Description = $"{Markup.Escape(name)} [grey]{now.Count} conns: {string.Join(" ", rates.Select(r => r.ToString("0")))} MiB/s[/]";
                }
                last = now;
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is QuicException or ObjectDisposedException or InvalidOperationException) { } // the transfer reports its own failure
    }

    private sealed class TaskProgress(ProgressTask task) : IProgress<long>
    {
        public void Report(long value) => task.Value = Math.Min(value, task.MaxValue);
    }

    private sealed class NoProgress : IProgress<long>
    {
        public void Report(long value) { }
    }

    public static async Task<List<FileTransferResult>> RunAsync(IReadOnlyList<Job> jobs, CancellationToken ct)
    {
        var results = new List<FileTransferResult>();
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            foreach (var job in jobs) results.Add(await job.Run(new NoProgress(), ct));
            return results;
        }
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                     new TransferSpeedColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var tasks = jobs.Select(j => ctx.AddTask(Markup.Escape(j.Name), autoStart: false, maxValue: Math.Max(1, j.Length ?? 1))).ToList();
                for (int i = 0; i < jobs.Count; i++)
                {
                    var job = jobs[i];
                    var task = tasks[i];
                    if (job.Length is null)
                    {
                        if (job.Measure is not null && await job.Measure(ct) is long measured) task.MaxValue = Math.Max(1, measured);
                        else task.IsIndeterminate = true;
                    }
                    task.StartTask();
                    using var stopShowing = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var showing = job.ConnectionBytes is null ? Task.CompletedTask : ShowConnectionsAsync(task, job.Name, job.ConnectionBytes, stopShowing.Token);
                    FileTransferResult r;
                    try
                    {
                        r = await job.Run(new TaskProgress(task), ct);
                    }
                    finally
                    {
                        stopShowing.Cancel();
                        await showing;
                    }
                    task.Description = Markup.Escape(job.Name);
                    task.MaxValue = Math.Max(1, r.Length);
                    task.Value = task.MaxValue;
                    task.StopTask();
                    results.Add(r);
                }
            });
        return results;
    }
}
