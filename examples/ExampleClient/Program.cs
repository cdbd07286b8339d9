// The original quicsend's example client, in C#: it trusts the private root (the root.pem copied
// to each client), connects, keeps four requests in flight, and prints the throughput of every
// response as it completes; each completed response is followed by a new request.
//
//   dotnet ExampleClient.dll <host> <port> <root-ca.pem> [--token T] [--requests N] [--server-name NAME]
//
// Without --requests it keeps sending until Ctrl+C. The token defaults to $QUICSEND_TOKEN, else to
// the development token the example server uses.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using QuicSend;
using QuicSend.Http;
using QuicSend.Transport;

const string DevelopmentToken = "quicsend-dev-token";
const int InFlight = 4;
const string Usage = "usage: ExampleClient <host> <port> <root-ca.pem> [--token T] [--requests N] [--server-name NAME]";

var positional = new List<string>();
string? token = null;
long limit = long.MaxValue;
string serverName = "localhost";
for (int i = 0; i < args.Length; i++)
{
    string? Value() => i + 1 < args.Length ? args[++i] : null;
    string? bad = null;
    switch (args[i])
    {
        case "--token": token = Value() ?? ""; if (token.Length == 0) bad = "--token needs a value."; break;
        case "--server-name": serverName = Value() ?? ""; if (serverName.Length == 0) bad = "--server-name needs a value."; break;
        case "--requests":
            var v = Value();
            if (!long.TryParse(v, out limit) || limit < 1) bad = $"--requests takes a positive count, not '{v}'.";
            break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        default:
            if (args[i].StartsWith("--", StringComparison.Ordinal)) bad = $"unknown option '{args[i]}'.";
            else positional.Add(args[i]);
            break;
    }
    if (bad is not null)
    {
        Console.Error.WriteLine($"error: {bad}\n{Usage}");
        return 2;
    }
}
if (positional.Count != 3)
{
    Console.Error.WriteLine($"error: expected 3 arguments (host, port, root certificate), got {positional.Count}.\n{Usage}");
    return 2;
}
var host = positional[0];
if (!int.TryParse(positional[1], out var port) || port is < 1 or > 65535)
{
    Console.Error.WriteLine($"error: '{positional[1]}' is not a port number (1-65535).\n{Usage}");
    return 2;
}
var rootPath = Path.GetFullPath(positional[2]);
if (!File.Exists(rootPath))
{
    Console.Error.WriteLine($"error: cannot read the root certificate '{rootPath}': the file does not exist.");
    return 1;
}
token ??= Environment.GetEnvironmentVariable("QUICSEND_TOKEN");
if (string.IsNullOrEmpty(token)) token = DevelopmentToken;

if (!IPAddress.TryParse(host, out var address))
{
    try
    {
        var found = await Dns.GetHostAddressesAsync(host);
        address = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found.First();
    }
    catch (Exception e) when (e is SocketException or InvalidOperationException)
    {
        Console.Error.WriteLine($"error: cannot resolve the host '{host}': {e.Message}");
        return 1;
    }
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    Console.WriteLine("Interrupt received: stopping.");
    stop.Cancel();
};

QuicSendClient client;
try
{
    client = await QuicSendClient.ConnectAsync(new IPEndPoint(address, port), new QuicSendClientOptions
    {
        Transport = new QuicClientOptions { TrustedRootPaths = { rootPath } },
        Token = token,
        ServerName = serverName,
    }, stop.Token);
}
catch (OperationCanceledException)
{
    return 0;
}
catch (Exception e) when (e is QuicException or QuicConfigurationException or IOException or UnauthorizedAccessException or ArgumentException)
{
    Console.Error.WriteLine($"error: cannot connect to {host}:{port} as '{serverName}': {e.Message}");
    return 1;
}

long started = 0, completed = 0, bytes = 0;
Exception? failure = null;
var total = Stopwatch.StartNew();
await using (client)
{
    Console.WriteLine($"OnConnect: connected to {address}:{port} (server name '{serverName}'); sending {InFlight} requests at once"
                      + (limit == long.MaxValue ? ", until Ctrl+C." : $", {limit} in all."));

    async Task WorkerAsync()
    {
        var buffer = new byte[1 << 20];
        while (!stop.IsCancellationRequested)
        {
            var n = Interlocked.Increment(ref started);
            if (n > limit) return;
            var sw = Stopwatch.StartNew();
            using var response = await client.RequestAsync("/simple.txt", "{\"foo\": \"bar\"}", null, stop.Token);
            if (!response.IsSuccess)
            {
                string text;
                try { text = await response.ReadTextAsync(stop.Token); } catch (IOException) { text = "(no message)"; }
                throw new IOException($"request #{n} was answered {response.Status}: {text}");
            }
            long received = 0;
            int got;
            // Hashed as it streams, so what arrived can be checked, not just counted.
            using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            while ((got = await response.Body.ReadAsync(buffer, stop.Token)) > 0)
            {
                received += got;
                sha.AppendData(buffer, 0, got);
            }
            if (response.ContentLength is long expected && expected != received)
                throw new IOException($"response #{n} ended after {received} of {expected} bytes.");
            var seconds = sw.Elapsed.TotalSeconds;
            Interlocked.Add(ref bytes, received);
            var done = Interlocked.Increment(ref completed);
            Console.WriteLine($"Throughput: {received / 1048576.0 / seconds:0.00} MiB/s " +
                              $"(response {done}: request #{n}, status {response.Status}, hinfo={response.HeaderInfo ?? "None"}, {received} bytes in {seconds:0.00} s, " +
                              $"sha256 {Convert.ToHexStringLower(sha.GetHashAndReset())})");
        }
    }

    var workers = Enumerable.Range(0, InFlight).Select(_ => Task.Run(async () =>
    {
        try
        {
            await WorkerAsync();
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            stop.Cancel(); // one failure ends the run
        }
    })).ToArray();
    await Task.WhenAll(workers);
}
var elapsed = total.Elapsed.TotalSeconds;
Console.WriteLine($"Done: {completed} responses, {bytes >> 20} MiB in {elapsed:0.00} s ({bytes / 1048576.0 / elapsed:0.00} MiB/s overall).");
if (failure is not null)
{
    Console.Error.WriteLine($"error: {failure.Message}");
    return 1;
}
return 0;
