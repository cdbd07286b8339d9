using System.Collections.Concurrent;
using System.CommandLine;
using System.Net;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Transport;

namespace QuicSend.Cli;

/// <summary><c>quicsend serve DIR</c>: serves and receives files under a folder until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var dir = new Argument<DirectoryInfo>("DIR") { Description = "The folder to serve files from and store uploads in (created if missing)." };
        var port = new Option<int>("--port", "-p") { HelpName = "PORT", Description = "The UDP port to listen on.", DefaultValueFactory = _ => ServerUrl.DefaultPort };
        var address = new Option<string>("--address")
        {
            HelpName = "IP",
            Description = "The address to listen on ('::' listens on IPv6 and IPv4).",
            DefaultValueFactory = _ => "::",
        };
        var cert = new Option<FileInfo>("--cert") { HelpName = "FILE", Description = "The server certificate (chain) PEM.", DefaultValueFactory = _ => new FileInfo("server.pem") };
        var key = new Option<FileInfo>("--key") { HelpName = "FILE", Description = "The server certificate's private key PEM.", DefaultValueFactory = _ => new FileInfo("server.key") };
        var clientRoot = new Option<FileInfo?>("--client-root")
        {
            HelpName = "FILE",
            Description = "Mutual TLS: require client certificates signed by this root (e.g. root.pem; clients make theirs with `quicsend certs client`).",
        };
        var anonymous = new Option<bool>("--allow-anonymous") { Description = "Serve without a token: anyone who reaches the port can read and write DIR." };
        var tokens = new TokenOptions();
        var limits = new ServeLimits();
        var cmd = new Command("serve", "Serve and receive files under DIR over HTTP/3 (GET and PUT /files/<name>, SHA-256 verified) until Ctrl+C. " +
                                       $"Requires a bearer token (--token, --token-file or ${TokenOptions.Variable}). Exits 0 when stopped with Ctrl+C.")
        {
            dir, port, address, cert, key, clientRoot, anonymous,
        };
        tokens.AddTo(cmd);
        limits.AddTo(cmd);
        cmd.SetAction((p, _) => Cli.RunAsync(async ct =>
        {
            var (token, source) = tokens.Resolve(p);
            bool allowAnonymous = p.GetValue(anonymous);
            if (token is null && !allowAnonymous)
                throw CliException.Usage($"no token configured: set one with {TokenOptions.Variable}=<secret> (or --token-file FILE, or --token), " +
                                         "and give clients the same one; or pass --allow-anonymous to serve anyone who reaches the port.");
            if (token is not null && allowAnonymous) throw CliException.Usage("--allow-anonymous and a token contradict each other: drop one.");
            if (p.GetValue(port) is var portNumber and (< 0 or > 65535)) throw CliException.Usage($"--port takes 0 to 65535, not {portNumber}.");
            if (!IPAddress.TryParse(p.GetValue(address), out var ip)) throw CliException.Usage($"--address '{p.GetValue(address)}' is not an IP address (e.g. :: or 0.0.0.0 or 127.0.0.1).");
            var (files, maxUpload) = limits.Resolve(p);
            var certFile = p.GetValue(cert)!;
            var keyFile = p.GetValue(key)!;
            if (!certFile.Exists) throw CliException.Usage($"{certFile.Name} not found ({certFile.FullName}): run `quicsend certs init` here, or pass --cert and --key.");
            if (!keyFile.Exists) throw CliException.Usage($"{keyFile.Name} not found ({keyFile.FullName}): pass the certificate's key with --key.");
            var transport = new QuicServerOptions
            {
                ListenEndPoint = new IPEndPoint(ip, p.GetValue(port)),
                CertificateChainPath = certFile.FullName,
                PrivateKeyPath = keyFile.FullName,
            };
            if (p.GetValue(clientRoot) is { } cr)
            {
                if (!cr.Exists) throw CliException.Usage($"the client root '{cr.FullName}' was not found: check --client-root.");
                transport.ClientCertificateRootPaths.Add(cr.FullName);
            }
            var folder = p.GetValue(dir)!;
            if (File.Exists(folder.FullName)) throw CliException.Usage($"'{folder.FullName}' is a file: give a folder to serve.");
            if (!folder.Exists)
            {
                Directory.CreateDirectory(folder.FullName);
                Console.WriteLine($"Created {folder.FullName}");
            }

            var options = new QuicSendServerOptions { Transport = transport, AllowAnonymous = allowAnonymous, FileTransfers = files, MaxRequestBodySize = maxUpload };
            if (token is not null) options.Tokens.Add(token);
            await using var server = new QuicSendServer(options);
            var pin = CertificateTool.GetPublicKeyPin(File.ReadAllText(certFile.FullName));
            Console.WriteLine($"Serving {folder.FullName} on UDP {server.LocalEndPoint} (port {server.LocalEndPoint.Port}; " +
                              (token is null ? "ANONYMOUS: no token required" : $"token from {source}") +
                              (transport.ClientCertificateRootPaths.Count > 0 ? "; client certificates required" : "") + ")");
            Console.WriteLine($"Server key pin: {pin}");
            Console.WriteLine(ServeLimits.Describe(files, maxUpload));
            if (ServeLimits.Warning(files) is string warning) Cli.Warn(warning);
            Console.WriteLine($"Send with: quicsend send FILE https://HOST:{server.LocalEndPoint.Port}/   Stop with Ctrl+C.");

            var log = new TransferLog();
            using var watch = new CancellationTokenSource();
            var unauthorized = WatchUnauthorizedAsync(server, watch.Token);
            await FileTransfer.ServeDirectoryAsync(server, folder.FullName, ct, log.Completed);
            watch.Cancel();
            await unauthorized;
            Console.WriteLine("Stopped.");
            return ExitCode.Success;
        }));
        return cmd;
    }

    /// <summary>Refusals for a wrong token never reach the folder handler: report them as they are counted.</summary>
    private static async Task WatchUnauthorizedAsync(QuicSendServer server, CancellationToken ct)
    {
        long seen = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(500, ct);
                var now = server.UnauthorizedRequests;
                if (now > seen)
                {
                    Console.WriteLine($"{Stamp()} refused {now - seen} request(s) with a missing or wrong token (401)");
                    seen = now;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    internal static string Stamp() => DateTime.Now.ToString("HH:mm:ss");

    /// <summary>
    /// One line per finished transfer. A striped upload is many chunk requests and one commit: the commit's
    /// line counts. A striped download is ranged GETs: one line once the pieces add up to the file.
    /// </summary>
    private sealed class TransferLog
    {
        private readonly ConcurrentDictionary<string, (long Bytes, int Pieces, DateTime Started)> _ranged = new();
        private readonly ConcurrentDictionary<string, DateTime> _chunked = new();
        private readonly Lock _lock = new();

        public void Completed(FileTransferResult r)
        {
            if (!r.Succeeded && r.Direction == FileTransferDirection.Upload && r.Status == 200)
            {
                // DELETE of a striped upload: the client gave up (cancelled, or failed on its side).
                _chunked.TryRemove(r.Name, out _);
                Write($"{Stamp()} upload of '{r.Name}' abandoned by the client; nothing was kept");
                return;
            }
            if (!r.Succeeded)
            {
                // A client that stopped reading a piece of a striped download, or went away: not the server's failure, but worth a line.
                Write($"{Stamp()} {(r.Direction == FileTransferDirection.Upload ? "upload" : "download")} of '{r.Name}' failed" +
                      (r.Status != 0 ? $" ({r.Status})" : "") + $": {r.Message}");
                return;
            }
            var elapsed = r.Elapsed;
            switch (r.Direction, r.Status)
            {
                case (FileTransferDirection.Upload, 202): // a chunk of a striped upload: the commit's line counts from the first chunk
                    var started = DateTime.UtcNow - r.Elapsed;
                    _chunked.AddOrUpdate(r.Name, started, (_, s) => s < started ? s : started);
                    return;
                case (FileTransferDirection.Upload, _) when _chunked.TryRemove(r.Name, out var first):
                    elapsed = DateTime.UtcNow - first;
                    break;
                case (FileTransferDirection.Download, _) when r.Message.StartsWith("Described", StringComparison.Ordinal): // HEAD
                    return;
                case (FileTransferDirection.Download, 206):
                    Ranged(r);
                    return;
            }
            var verb = r.Direction == FileTransferDirection.Upload ? "received" : "sent";
            Write($"{Stamp()} {verb} '{r.Name}': {Format.Bytes(r.Length)} in {elapsed.TotalSeconds:0.00} s ({Format.Rate(r.Length, elapsed)}), sha256 {r.Sha256}");
        }

        private void Ranged(FileTransferResult r)
        {
            long total;
            try { total = r.Path is null ? 0 : new FileInfo(r.Path).Length; } catch (IOException) { return; }
            var now = DateTime.UtcNow;
            var entry = _ranged.AddOrUpdate(r.Name, _ => (r.Length, 1, now - r.Elapsed), (_, e) => (e.Bytes + r.Length, e.Pieces + 1, e.Started));
            if (total > 0 && entry.Bytes >= total && _ranged.TryRemove(r.Name, out var done))
            {
                var elapsed = now - done.Started;
                Write($"{Stamp()} sent '{r.Name}' in {done.Pieces} ranged pieces: {Format.Bytes(total)} in {elapsed.TotalSeconds:0.00} s ({Format.Rate(total, elapsed)})");
            }
        }

        private void Write(string line)
        {
            lock (_lock) Console.WriteLine(line);
        }
    }
}
