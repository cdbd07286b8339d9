using System.Diagnostics;
using System.Text;

namespace QuicSend.Tests;

/// <summary>
/// A .NET program started as a child process (<c>dotnet DLL ARGS…</c>) whose output lines are collected
/// as they come (and echoed to the test's progress log), for the tests of the examples and of the CLI.
/// QUICSEND_TOKEN is never inherited: only <paramref name="token"/>, when given, is set.
/// </summary>
internal sealed class DotnetProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new(), _err = new();
    private readonly TaskCompletionSource _outDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _name;

    public DotnetProcess(string name, string dll, IEnumerable<string> args, string? workingDirectory = null, string? token = null)
    {
        _name = name;
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("QUICSEND_TOKEN");
        if (token is not null) psi.Environment["QUICSEND_TOKEN"] = token;
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => Collect(e.Data, _out, _outDone);
        _process.ErrorDataReceived += (_, e) => Collect(e.Data, _err, _errDone);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    private void Collect(string? line, StringBuilder into, TaskCompletionSource done)
    {
        if (line is null)
        {
            done.TrySetResult();
            return;
        }
        lock (into) into.AppendLine(line);
        TestContext.Progress.WriteLine($"  [{_name}] {line}");
    }

    public string Output { get { lock (_out) return _out.ToString(); } }
    public string Errors { get { lock (_err) return _err.ToString(); } }

    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text))
        {
            if (_process.HasExited) Assert.Fail($"{_name} exited ({_process.ExitCode}) before printing '{text}':\n{Output}{Errors}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"{_name} did not print '{text}' within {timeout.TotalSeconds} s:\n{Output}{Errors}");
            await Task.Delay(50);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{_name} did not exit within {timeout.TotalSeconds} s:\n{Output}{Errors}");
        }
        await Task.WhenAll(_outDone.Task, _errDone.Task).WaitAsync(TimeSpan.FromSeconds(5));
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
