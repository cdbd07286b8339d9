// The original quicsend's example server (example_server.py), in C#: the same command line, the
// same output lines, and the same answer to every request, a 512 MiB body of 'A' (the client
// measures throughput with it). It reports connects, timeouts and requests through the polling API.
//
//   dotnet ExampleServer.dll [port] [cert] [key] [--token T] [--seconds N]
//
// port, cert and key default to 4433, server.pem and server.key, as the original's. It listens on
// both IPv6 and IPv4 (the original: IPv4 only) and accepts the original quicsend client as well as
// QuicSend's (QuicSendServerOptions.OriginalClientCompatibility; docs/compatibility.md). The token
// defaults to $QUICSEND_TOKEN, else to the original's AUTH_TOKEN_PLACEHOLDER, with a warning: that
// one is for development only.
using System.Diagnostics;
using System.Net;
using QuicSend;
using QuicSend.Http;
using QuicSend.Transport;

const string DevelopmentToken = "AUTH_TOKEN_PLACEHOLDER"; // the original examples' token
const long ResponseSize = 512L << 20;
const string Usage = "usage: ExampleServer [port] [cert] [key] [--token T] [--seconds N]\n" +
                     "  port 4433, cert server.pem and key server.key by default (as the original example_server.py)";

var positional = new List<string>();
string? token = null;
double? seconds = null;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value.");
    try
    {
        switch (args[i])
        {
            case "--token": token = Value(); break;
            case "--seconds":
                var s = Value();
                if (!double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) || v <= 0)
                    throw new UsageException($"--seconds takes a positive number, not '{s}'.");
                seconds = v;
                break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default:
                if (args[i].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"unknown option '{args[i]}'.");
                positional.Add(args[i]);
                break;
        }
    }
    catch (UsageException e)
    {
        Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
        return 2;
    }
}
if (positional.Count > 3)
{
    Console.Error.WriteLine($"error: expected at most 3 arguments (port, certificate, key), got {positional.Count}.\n{Usage}");
    return 2;
}
var portText = positional.Count > 0 ? positional[0] : "4433";
if (!int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
{
    Console.Error.WriteLine($"error: '{portText}' is not a port number (0-65535).\n{Usage}");
    return 2;
}
var certPath = Path.GetFullPath(positional.Count > 1 ? positional[1] : "server.pem");
var keyPath = Path.GetFullPath(positional.Count > 2 ? positional[2] : "server.key");
foreach (var (what, path) in new[] { ("server certificate", certPath), ("server key", keyPath) })
{
    if (!File.Exists(path))
    {
        Console.Error.WriteLine($"error: cannot read the {what} '{path}': the file does not exist.");
        return 1;
    }
}

token ??= Environment.GetEnvironmentVariable("QUICSEND_TOKEN");
if (string.IsNullOrEmpty(token))
{
    token = DevelopmentToken;
    Console.Error.WriteLine($"warning: no --token and no QUICSEND_TOKEN: using the original examples' token '{DevelopmentToken}'. " +
                            "It is for development only: everyone knows it, so never use it on a network you do not control.");
}

// The 512 MiB answer is one 1 MiB block of 'A' repeated: nothing large is allocated, per request or at all.
var block = new byte[1 << 20];
Array.Fill(block, (byte)'A');

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    Console.WriteLine("Interrupt received: stopping.");
    stop.Cancel();
};
if (seconds is double limit) stop.CancelAfter(TimeSpan.FromSeconds(limit));

QuicSendServer server;
try
{
    server = new QuicSendServer(new QuicSendServerOptions
    {
        Transport = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.IPv6Any, port),
            CertificateChainPath = certPath,
            PrivateKeyPath = keyPath,
        },
        Tokens = [token],
        // The original quicsend client sends ':path' without its '/' and 'Bearer Bearer <token>' with a body.
        OriginalClientCompatibility = true,
    });
}
catch (Exception e) when (e is QuicException or QuicConfigurationException or IOException or UnauthorizedAccessException or ArgumentException)
{
    Console.Error.WriteLine($"error: cannot start the server on port {port}: {e.Message}");
    return 1;
}

long requests = 0, answered = 0, failed = 0;
var uptime = Stopwatch.StartNew();
await using (server)
{
    Console.WriteLine($"Listening on UDP port {server.LocalEndPoint.Port} (HTTP/3 over QUIC, TLS 1.3; QuicSend and original quicsend clients); " +
                      $"every request gets {ResponseSize >> 20} MiB."
                      + (seconds is double d ? $" Stopping after {d:0.#} s." : " Ctrl+C stops."));

    void OnConnect(long connectionId) =>
        Console.WriteLine($"OnConnect: cid={connectionId} addr={server.GetRemoteEndPoint(connectionId)?.ToString() ?? "None"}");

    void OnTimeout(long connectionId) => Console.WriteLine($"OnTimeout: cid={connectionId}");

    void OnRequest(QuicSendRequest request)
    {
        var n = Interlocked.Increment(ref requests);
        Console.WriteLine($"OnRequest: cid={request.ConnectionId} rid={request.RequestId} hinfo={request.HeaderInfo ?? "None"} " +
                          $"path={request.Path} ct={request.ContentType} len={request.ContentLength?.ToString() ?? "None"} (#{n})");
        var body = QuicSendBody.FromStream(new RepeatingStream(block, ResponseSize), ResponseSize);
        // Respond by ids, as the original's server.respond; the body streams in the background.
        var cid = request.ConnectionId;
        var rid = request.RequestId;
        server.RespondAsync(cid, rid, 200, request.HeaderInfo, body, stop.Token).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                Interlocked.Increment(ref answered);
            }
            else
            {
                Interlocked.Increment(ref failed);
                var why = t.Exception?.GetBaseException().Message ?? "stopped";
                Console.WriteLine($"Response to cid={cid} rid={rid} not completed: {why}");
            }
        }, TaskScheduler.Default);
    }

    try
    {
        while (!stop.IsCancellationRequested && server.Poll(OnConnect, OnTimeout, OnRequest, 100)) { }
    }
    catch (Exception e) when (e is QuicException or IOException)
    {
        Console.Error.WriteLine($"error: the server failed: {e.Message}");
        return 1;
    }
}
Console.WriteLine($"Stopped after {uptime.Elapsed.TotalSeconds:0.0} s: {requests} requests, {answered} answered in full, {failed} not.");
return 0;

/// <summary>A read-only stream of <c>length</c> bytes made by repeating one block.</summary>
sealed class RepeatingStream(byte[] block, long length) : Stream
{
    private long _position;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length && _position < length)
        {
            int offset = (int)(_position % block.Length);
            int n = (int)Math.Min(Math.Min(buffer.Length - total, block.Length - offset), length - _position);
            block.AsSpan(offset, n).CopyTo(buffer[total..]);
            total += n;
            _position += n;
        }
        return total;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<int>(cancellationToken) : ValueTask.FromResult(Read(buffer.Span));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

sealed class UsageException(string message) : Exception(message);
