// The original quicsend's example client (example_client.py), in C#: the same command line and the
// same output lines. It connects, keeps four requests in flight (the original: one at a time), and
// prints the throughput of every response as it completes; each completed response is followed by a
// new request. Every response's bytes are hashed as they stream, so what arrived is checked, not just counted.
//
//   dotnet ExampleClient.dll [host] [port] [cert] [--token T] [--requests N] [--server-name NAME]
//
// host, port and cert default to localhost, 4433 and server.pem, as the original's. cert is, as there,
// the server's own certificate: it is pinned (the server must present exactly it) and its name is
// checked. A CA certificate given there instead (basicConstraints CA:TRUE) is trusted as a root.
// The server name defaults to the host when the certificate covers it, else to the pinned
// certificate's own name (the original's README certificate: CN=catid.io, the name the original
// always uses). Without --requests it keeps sending until Ctrl+C. The token defaults to
// $QUICSEND_TOKEN, else to the original's AUTH_TOKEN_PLACEHOLDER, with a warning.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using QuicSend;
using QuicSend.Http;
using QuicSend.Transport;

const string DevelopmentToken = "AUTH_TOKEN_PLACEHOLDER"; // the original examples' token
const int InFlight = 4;
const string Usage = "usage: ExampleClient [host] [port] [cert] [--token T] [--requests N] [--server-name NAME]\n" +
                     "  host localhost, port 4433 and cert server.pem by default (as the original example_client.py);\n" +
                     "  cert is the server's certificate (pinned) or the CA that signed it (trusted as a root)";

var positional = new List<string>();
string? token = null;
long limit = long.MaxValue;
string? serverName = null;
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
if (positional.Count > 3)
{
    Console.Error.WriteLine($"error: expected at most 3 arguments (host, port, certificate), got {positional.Count}.\n{Usage}");
    return 2;
}
var host = positional.Count > 0 ? positional[0] : "localhost";
var portText = positional.Count > 1 ? positional[1] : "4433";
if (!int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
{
    Console.Error.WriteLine($"error: '{portText}' is not a port number (1-65535).\n{Usage}");
    return 2;
}
var certPath = Path.GetFullPath(positional.Count > 2 ? positional[2] : "server.pem");
if (!File.Exists(certPath))
{
    Console.Error.WriteLine($"error: cannot read the server certificate '{certPath}': the file does not exist.");
    return 1;
}
X509Certificate2 cert;
try
{
    var all = new X509Certificate2Collection();
    all.ImportFromPemFile(certPath);
    if (all.Count == 0) throw new CryptographicException("it holds no '-----BEGIN CERTIFICATE-----' block");
    cert = all[0];
}
catch (CryptographicException e)
{
    Console.Error.WriteLine($"error: cannot read the server certificate '{certPath}': {e.Message}");
    return 1;
}
// A CA vouches for servers (trust it as a root); anything else, v1 certificates without extensions
// included, is the server's own certificate (pin it).
bool isCa = cert.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);

token ??= Environment.GetEnvironmentVariable("QUICSEND_TOKEN");
if (string.IsNullOrEmpty(token))
{
    token = DevelopmentToken;
    Console.Error.WriteLine($"warning: no --token and no QUICSEND_TOKEN: using the original examples' token '{DevelopmentToken}' (for development only).");
}

if (!IPAddress.TryParse(host, out var address))
{
    try
    {
        var found = await Dns.GetHostAddressesAsync(host);
        // IPv4 first: the original server listens on IPv4 only.
        address = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found.First();
    }
    catch (Exception e) when (e is SocketException or InvalidOperationException)
    {
        Console.Error.WriteLine($"error: cannot resolve the host '{host}': {e.Message}");
        return 1;
    }
}

string nameSource;
if (serverName is not null) nameSource = "--server-name";
else if (isCa || cert.MatchesHostname(host)) (serverName, nameSource) = (host, "the host");
else (serverName, nameSource) = (cert.GetNameInfo(X509NameType.DnsName, forIssuer: false), "the pinned certificate");
if (string.IsNullOrEmpty(serverName))
{
    Console.Error.WriteLine($"error: the certificate '{certPath}' names no host and does not cover '{host}': pass --server-name NAME.");
    return 1;
}
var transport = new QuicClientOptions();
if (isCa) transport.TrustedRootPaths.Add(certPath);
else transport.PinnedServerCertificatePaths.Add(certPath);
Console.WriteLine($"Server certificate: {cert.Subject} from {certPath}: " +
                  (isCa ? "a CA, trusted as a root" : "the server's own, pinned") + $"; server name '{serverName}' ({nameSource}).");

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
        Transport = transport,
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
    var hint = e is QuicException { HandshakeFailure: HandshakeFailure.NameMismatch }
        ? " (pass the name the server's certificate carries with --server-name; the original quicsend's certificates name catid.io)" : "";
    Console.Error.WriteLine($"error: cannot connect to {host}:{port} as '{serverName}': {e.Message}{hint}");
    return 1;
}

long started = 0, completed = 0, bytes = 0;
Exception? failure = null;
var total = Stopwatch.StartNew();
await using (client)
{
    // The original's cid is the connection's number in the client: this client has one.
    const int ConnectionNumber = 1;
    Console.WriteLine($"OnConnect: cid={ConnectionNumber} addr={new IPEndPoint(address, port)}");
    Console.WriteLine($"Sending {InFlight} requests at once" + (limit == long.MaxValue ? ", until Ctrl+C." : $", {limit} in all."));

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
                try { text = await response.ReadTextAsync(stop.Token); } catch (Exception e) when (e is IOException or InvalidDataException) { text = "(no message)"; }
                throw new IOException($"request #{n} was answered {response.Status}: {text}");
            }
            long received = 0;
            int got;
            var sample = new byte[32];
            int sampled = 0;
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            while ((got = await response.Body.ReadAsync(buffer, stop.Token)) > 0)
            {
                if (sampled < sample.Length)
                {
                    var take = Math.Min(got, sample.Length - sampled);
                    buffer.AsSpan(0, take).CopyTo(sample.AsSpan(sampled));
                    sampled += take;
                }
                received += got;
                sha.AppendData(buffer, 0, got);
            }
            if (response.ContentLength is long expected && expected != received)
                throw new IOException($"response #{n} ended after {received} of {expected} bytes.");
            var seconds = sw.Elapsed.TotalSeconds;
            Interlocked.Add(ref bytes, received);
            var done = Interlocked.Increment(ref completed);
            var hex = string.Join(' ', sample.Take(sampled).Select(b => b.ToString("x2")));
            // One write, so the lines of responses completing together do not interleave.
            Console.Write(
                $"Throughput: {received / 1e6 / seconds:0.00} MB/s\n" +
                $"OnResponse: cid={ConnectionNumber} rid={response.RequestId} hinfo={response.HeaderInfo ?? "None"} status={response.Status} " +
                $"ct={response.ContentType} len={received}\n" +
                $"Sample ({sampled} bytes): {hex}{(received > sampled ? " ..." : "")}\n" +
                $"Checked: response {done} (request #{n}, rid={response.RequestId}): {received} bytes in {seconds:0.00} s, " +
                $"sha256 {Convert.ToHexStringLower(sha.GetHashAndReset())}\n");
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
Console.WriteLine($"Done: {completed} responses, {bytes >> 20} MiB in {elapsed:0.00} s ({bytes / 1e6 / elapsed:0.00} MB/s overall).");
if (failure is not null)
{
    Console.Error.WriteLine($"error: {failure.Message}");
    return 1;
}
return 0;
