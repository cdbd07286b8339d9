using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Cli;

/// <summary>Where a server is: host, port, and the path of the URL.</summary>
internal sealed record ServerUrl(string Host, int Port, string Path, string Original)
{
    public const int DefaultPort = 4433;

    public string Authority => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    public string Base => $"https://{Authority}";

    /// <summary>Parses https://host[:port]/path (the port defaults to 4433, QuicSend's, not 443).</summary>
    public static ServerUrl Parse(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || string.IsNullOrEmpty(uri.Host))
            throw CliException.Usage($"'{text}' is not a URL like https://HOST:4433/ (QuicSend speaks HTTP/3 over TLS: https:// only).");
        // Uri hides an explicit :443; QuicSend's default port is 4433, so look at what was written.
        var authority = Regex.Match(text, "^https://([^/?#]*)", RegexOptions.IgnoreCase).Groups[1].Value;
        var explicitPort = Regex.IsMatch(authority, @":\d+$") && !authority.EndsWith(']');
        var host = uri.Host.Trim('[', ']');
        return new ServerUrl(host, explicitPort ? uri.Port : DefaultPort, Uri.UnescapeDataString(uri.AbsolutePath), text);
    }

    public async Task<IPEndPoint> ResolveAsync(CancellationToken ct)
    {
        if (IPAddress.TryParse(Host, out var ip)) return new IPEndPoint(ip, Port);
        IPAddress[] found;
        try
        {
            found = await Dns.GetHostAddressesAsync(Host, ct);
        }
        catch (SocketException e)
        {
            throw new CliException(ExitCode.Connection, $"cannot resolve the host '{Host}': {e.Message}. Check the URL's host name.");
        }
        if (found.Length == 0) throw new CliException(ExitCode.Connection, $"the host '{Host}' has no address. Check the URL's host name.");
        return new IPEndPoint(found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found[0], Port);
    }
}

/// <summary>Bearer tokens: --token, --token-file, or QUICSEND_TOKEN.</summary>
internal sealed class TokenOptions
{
    public const string Variable = "QUICSEND_TOKEN";

    public readonly Option<string?> Token = new("--token")
    {
        HelpName = "TOKEN",
        Description = $"The bearer token (visible to other users in the process list: prefer --token-file or ${Variable}).",
    };

    public readonly Option<FileInfo?> TokenFile = new("--token-file") { HelpName = "FILE", Description = "A file whose first line is the bearer token." };

    public void AddTo(Command c)
    {
        c.Options.Add(Token);
        c.Options.Add(TokenFile);
    }

    /// <summary>The token from the options or the environment, and where it came from; null when none is given.</summary>
    public (string? Token, string Source) Resolve(ParseResult p)
    {
        var token = p.GetValue(Token);
        var file = p.GetValue(TokenFile);
        if (token is not null && file is not null) throw CliException.Usage("give either --token or --token-file, not both.");
        if (token is not null)
        {
            if (string.IsNullOrWhiteSpace(token)) throw CliException.Usage("--token is empty.");
            return (token, "--token");
        }
        if (file is not null)
        {
            if (!file.Exists) throw CliException.Usage($"the token file '{file.FullName}' does not exist: create it (one line, the token) or give --token.");
            var line = File.ReadLines(file.FullName).FirstOrDefault()?.Trim();
            if (string.IsNullOrEmpty(line)) throw CliException.Usage($"the token file '{file.FullName}' is empty: its first line must be the token.");
            return (line, $"--token-file {file.Name}");
        }
        var env = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(env)) return (env.Trim(), $"${Variable}");
        return (null, "none");
    }
}

/// <summary>The options every client command shares and the client they make.</summary>
internal sealed class ClientSetup
{
    public readonly TokenOptions Tokens = new();

    public readonly Option<FileInfo?> Root = new("--root")
    {
        HelpName = "FILE",
        Description = "The root certificate that signed the server's certificate [default: ./root.pem if it exists].",
    };

    public readonly Option<string[]> Pin = new("--pin")
    {
        HelpName = "sha256//BASE64",
        Description = "Pin the server's public key: sha256//BASE64 (`quicsend certs pin server.pem` prints it). With --root both must hold; alone it replaces the root.",
        AllowMultipleArgumentsPerToken = false,
    };

    public readonly Option<int> Connections = new("--connections", "-c")
    {
        HelpName = "N",
        Description = "QUIC connections to hold to the server; files over 32 MiB are striped across them.",
        DefaultValueFactory = _ => 4,
    };

    public readonly Option<bool> NoResume = new("--no-resume")
    {
        Description = "Start afresh and keep nothing when interrupted. By default an interrupted transfer of a file over 32 MiB keeps what it moved " +
                      "(a download: .NAME.quicsend-resume.* beside the target; an upload: on the server, for its idle timeout) and the same command resumes it.",
    };

    public readonly Option<string?> Name = new("--name")
    {
        HelpName = "NAME",
        Description = "The server name its certificate must carry [default: the URL's host].",
    };

    public readonly Option<FileInfo?> Cert = new("--cert") { HelpName = "FILE", Description = "Mutual TLS: this client's certificate (from `quicsend certs client NAME`)." };

    public readonly Option<FileInfo?> Key = new("--key") { HelpName = "FILE", Description = "Mutual TLS: the private key of --cert [default: --cert with .key for .pem]." };

    public void AddTo(Command c, bool connections = true)
    {
        c.Options.Add(Root);
        c.Options.Add(Pin);
        Tokens.AddTo(c);
        if (connections) c.Options.Add(Connections);
        c.Options.Add(Name);
        c.Options.Add(Cert);
        c.Options.Add(Key);
    }

    /// <summary>Checks the options and connects (the pool's handshakes done), or fails with the cause and fix.</summary>
    public async Task<QuicSendClient> ConnectAsync(ParseResult p, ServerUrl url, CancellationToken ct, int? connections = null, bool transfers = false)
    {
        int n = connections ?? p.GetValue(Connections);
        if (n is < 1 or > 64) throw CliException.Usage($"--connections takes 1 to 64, not {n}.");
        var transport = new QuicClientOptions();

        var root = p.GetValue(Root);
        var pins = p.GetValue(Pin) ?? [];
        foreach (var pin in pins)
            if (!pin.StartsWith("sha256//", StringComparison.Ordinal) || pin.Length < 20)
                throw CliException.Usage($"'{pin}' is not a key pin: it looks like sha256//BASE64 (`quicsend certs pin server.pem` prints it).");
        if (root is not null)
        {
            if (!root.Exists) throw CliException.Usage($"the root certificate '{root.FullName}' was not found: check --root, or run `quicsend certs init` on the server and copy its root.pem here.");
            transport.TrustedRootPaths.Add(root.FullName);
        }
        else if (File.Exists("root.pem"))
        {
            transport.TrustedRootPaths.Add(Path.GetFullPath("root.pem"));
        }
        else if (pins.Length == 0)
        {
            throw CliException.Usage($"root.pem not found in {Environment.CurrentDirectory}: run `quicsend certs init` (on the server) and copy its root.pem here, " +
                                     "or pass --root FILE, or --pin sha256//... to trust the server's key alone.");
        }
        foreach (var pin in pins) transport.PinnedPublicKeySha256.Add(pin);

        var cert = p.GetValue(Cert);
        var key = p.GetValue(Key);
        if (key is not null && cert is null) throw CliException.Usage("--key needs --cert (the client certificate).");
        if (cert is not null)
        {
            if (!cert.Exists) throw CliException.Usage($"the client certificate '{cert.FullName}' was not found: make one with `quicsend certs client NAME` or check --cert.");
            key ??= new FileInfo(Path.ChangeExtension(cert.FullName, ".key"));
            if (!key.Exists) throw CliException.Usage($"the client key '{key.FullName}' was not found: pass it with --key.");
            transport.ClientCertificatePath = cert.FullName;
            transport.ClientKeyPath = key.FullName;
        }

        var (token, _) = Tokens.Resolve(p);
        var endPoint = await url.ResolveAsync(ct);
        var name = p.GetValue(Name);
        // An IP literal in the URL: the library names it itself (and brackets IPv6 in the authority).
        if (name is null && !IPAddress.TryParse(url.Host, out _)) name = url.Host;
        return await QuicSendClient.ConnectAsync(endPoint, new QuicSendClientOptions
        {
            Transport = transport,
            Token = token,
            ServerName = name,
            Connections = n,
            ResumableTransfers = transfers && !p.GetValue(NoResume),
        }, ct);
    }
}

internal static class Format
{
    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:0.0} KiB",
        < 1L << 30 => $"{n / 1048576.0:0.0} MiB",
        _ => $"{n / 1073741824.0:0.00} GiB",
    };

    /// <summary>A size as it would be typed back: the largest binary unit it is a whole number of (256 MiB), else bytes.</summary>
    public static string Size(long n)
    {
        foreach (var (shift, unit) in new[] { (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB") })
            if (n != 0 && n % (1L << shift) == 0) return $"{n >> shift} {unit}";
        return $"{n} bytes";
    }

    /// <summary>A time in its largest whole unit: 10 min, 90 s, 1 h, 250 ms.</summary>
    public static string Duration(TimeSpan t) => t switch
    {
        _ when t.Ticks % TimeSpan.TicksPerDay == 0 => $"{t.Ticks / TimeSpan.TicksPerDay} d",
        _ when t.Ticks % TimeSpan.TicksPerHour == 0 => $"{t.Ticks / TimeSpan.TicksPerHour} h",
        _ when t.Ticks % TimeSpan.TicksPerMinute == 0 => $"{t.Ticks / TimeSpan.TicksPerMinute} min",
        _ when t.Ticks % TimeSpan.TicksPerSecond == 0 => $"{t.Ticks / TimeSpan.TicksPerSecond} s",
        _ => $"{t.TotalMilliseconds:0.###} ms",
    };

    public static string Rate(long bytes, TimeSpan elapsed)
    {
        if (elapsed.TotalSeconds <= 0) return "-";
        var perSecond = bytes / elapsed.TotalSeconds;
        return perSecond >= 1048576 ? $"{perSecond / 1048576:0.0} MiB/s" : $"{perSecond / 1024:0.0} KiB/s";
    }
}
