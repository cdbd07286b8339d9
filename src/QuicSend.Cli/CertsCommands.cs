using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using QuicSend.Security;

namespace QuicSend.Cli;

/// <summary><c>quicsend certs init|server|client|pin</c>: the private-CA files, without openssl.</summary>
internal static class CertsCommands
{
    private static readonly string[] DefaultNames = ["localhost"];
    private static readonly string[] DefaultIps = ["127.0.0.1", "::1"];

    public static Command Create()
    {
        var certs = new Command("certs", "Make the certificates: a private root, server certificates it signs, client certificates, key pins.");
        certs.Subcommands.Add(Init());
        certs.Subcommands.Add(Server());
        certs.Subcommands.Add(Client());
        certs.Subcommands.Add(Pin());
        return certs;
    }

    private static Option<DirectoryInfo> DirOption() => new("--dir", "-d")
    {
        HelpName = "DIR",
        Description = "The folder for the files [default: the current folder].",
        DefaultValueFactory = _ => new DirectoryInfo("."),
    };

    private static Option<string[]> NameOption() => new("--name", "-n")
    {
        HelpName = "NAME",
        Description = "A DNS name the server certificate covers (repeat for more) [default: localhost].",
        AllowMultipleArgumentsPerToken = false,
    };

    private static Option<string[]> IpOption() => new("--ip")
    {
        HelpName = "IP",
        Description = "An IP address the server certificate covers (repeat for more) [default: 127.0.0.1 and ::1].",
        AllowMultipleArgumentsPerToken = false,
    };

    private static Option<bool> ForceOption() => new("--force", "-f") { Description = "Overwrite existing files." };

    private static Command Init()
    {
        var dir = DirOption();
        var names = NameOption();
        var ips = IpOption();
        var force = ForceOption();
        var cmd = new Command("init", "Make root.pem/root.key (a private root CA) and server.pem/server.key (signed by it) for the given names and IPs " +
                                      "[default: localhost, 127.0.0.1, ::1]. Copy root.pem (never root.key) to each client.")
        {
            dir, names, ips, force,
        };
        cmd.SetAction(p => Run(() =>
        {
            var folder = EnsureFolder(p.GetValue(dir)!);
            var (dns, addresses) = Subjects(p.GetValue(names), p.GetValue(ips));
            var files = new[] { "root.pem", "root.key", "server.pem", "server.key" }.Select(f => Path.Combine(folder, f)).ToArray();
            RefuseOverwrite(files, p.GetValue(force), "`quicsend certs server` makes another server certificate from the existing root");
            var root = CertificateTool.CreateRootCa($"QuicSend Root ({Environment.MachineName})");
            var server = CertificateTool.IssueServer(root, dns, addresses);
            root.Save(files[0], files[1]);
            server.Save(files[2], files[3]);
            Console.WriteLine($"Wrote {files[0]} and {files[1]} (the root: keep root.key private, copy root.pem to every client).");
            Console.WriteLine($"Wrote {files[2]} and {files[3]} for {Describe(dns, addresses)}.");
            Console.WriteLine($"Server key pin: {CertificateTool.GetPublicKeyPin(server.CertificatePem)}");
            Console.WriteLine("Next: QUICSEND_TOKEN=<secret> quicsend serve ./data   (then on a client, with root.pem beside it: quicsend send FILE https://HOST:4433/)");
            return ExitCode.Success;
        }));
        return cmd;
    }

    private static Command Server()
    {
        var dir = DirOption();
        var names = NameOption();
        var ips = IpOption();
        var force = ForceOption();
        var output = new Option<string>("--out", "-o")
        {
            HelpName = "BASE",
            Description = "The base name of the files written: BASE.pem and BASE.key.",
            DefaultValueFactory = _ => "server",
        };
        var cmd = new Command("server", "Make another server certificate (BASE.pem/BASE.key) signed by the existing root.pem/root.key in --dir.")
        {
            dir, names, ips, output, force,
        };
        cmd.SetAction(p => Run(() =>
        {
            var folder = EnsureFolder(p.GetValue(dir)!);
            var root = LoadRoot(folder);
            var (dns, addresses) = Subjects(p.GetValue(names), p.GetValue(ips));
            var baseName = CheckBaseName(p.GetValue(output)!, "--out");
            var files = new[] { baseName + ".pem", baseName + ".key" }.Select(f => Path.Combine(folder, f)).ToArray();
            RefuseOverwrite(files, p.GetValue(force), "choose another name with --out");
            var server = CertificateTool.IssueServer(root, dns, addresses);
            server.Save(files[0], files[1]);
            Console.WriteLine($"Wrote {files[0]} and {files[1]} for {Describe(dns, addresses)}.");
            Console.WriteLine($"Server key pin: {CertificateTool.GetPublicKeyPin(server.CertificatePem)}");
            return ExitCode.Success;
        }));
        return cmd;
    }

    private static Command Client()
    {
        var dir = DirOption();
        var force = ForceOption();
        var name = new Argument<string>("NAME") { Description = "The client's name (its certificate's common name; the files are NAME.pem and NAME.key)." };
        var cmd = new Command("client", "Make a client certificate for mutual TLS (NAME.pem/NAME.key) signed by root.pem/root.key in --dir. " +
                                        "The server trusts it with `quicsend serve --client-root root.pem`; the client passes --cert NAME.pem.")
        {
            name, dir, force,
        };
        cmd.SetAction(p => Run(() =>
        {
            var folder = EnsureFolder(p.GetValue(dir)!);
            var root = LoadRoot(folder);
            var client = CheckBaseName(p.GetValue(name)!, "NAME");
            var files = new[] { client + ".pem", client + ".key" }.Select(f => Path.Combine(folder, f)).ToArray();
            RefuseOverwrite(files, p.GetValue(force), "choose another NAME");
            CertificateTool.IssueClient(root, client).Save(files[0], files[1]);
            Console.WriteLine($"Wrote {files[0]} and {files[1]} (client '{client}').");
            Console.WriteLine($"Use: quicsend send FILE URL --cert {files[0]} --key {files[1]}   (server: quicsend serve DIR --client-root root.pem)");
            return ExitCode.Success;
        }));
        return cmd;
    }

    private static Command Pin()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "A PEM certificate (the first one counts when it holds a chain)." };
        var cmd = new Command("pin", "Print the sha256// pin of a certificate's public key (for --pin).") { file };
        cmd.SetAction(p => Run(() =>
        {
            var f = p.GetValue(file)!;
            if (!f.Exists) throw new CliException(ExitCode.LocalIo, $"'{f.FullName}' does not exist: give the path of a PEM certificate such as server.pem.");
            try
            {
                Console.WriteLine(CertificateTool.GetPublicKeyPin(File.ReadAllText(f.FullName)));
            }
            catch (CryptographicException e)
            {
                throw CliException.Usage($"'{f.FullName}' holds no readable PEM certificate ({e.Message}).");
            }
            return ExitCode.Success;
        }));
        return cmd;
    }

    private static int Run(Func<int> body) => Cli.RunAsync(_ => Task.FromResult(body())).GetAwaiter().GetResult();

    private static string EnsureFolder(DirectoryInfo dir)
    {
        if (File.Exists(dir.FullName)) throw CliException.Usage($"'{dir.FullName}' is a file, not a folder: give a folder with --dir.");
        Directory.CreateDirectory(dir.FullName);
        return dir.FullName;
    }

    private static PemCertificate LoadRoot(string folder)
    {
        var pem = Path.Combine(folder, "root.pem");
        var key = Path.Combine(folder, "root.key");
        if (!File.Exists(pem) || !File.Exists(key))
            throw CliException.Usage($"root.pem and root.key are needed in {folder}: run `quicsend certs init` first, or point --dir at the folder that has them.");
        return new PemCertificate(File.ReadAllText(pem), File.ReadAllText(key));
    }

    private static (List<string> Dns, List<IPAddress> Ips) Subjects(string[]? names, string[]? ips)
    {
        names ??= [];
        ips ??= [];
        if (names.Length == 0 && ips.Length == 0) (names, ips) = (DefaultNames, DefaultIps);
        var addresses = new List<IPAddress>();
        foreach (var ip in ips)
        {
            if (!IPAddress.TryParse(ip, out var a)) throw CliException.Usage($"--ip '{ip}' is not an IP address (use --name for DNS names).");
            addresses.Add(a);
        }
        foreach (var n in names)
            if (IPAddress.TryParse(n, out _) || n.Length == 0 || n.Any(ch => char.IsWhiteSpace(ch) || ch is '/' or ':'))
                throw CliException.Usage($"--name '{n}' is not a DNS name (use --ip for addresses).");
        return (names.ToList(), addresses);
    }

    private static string Describe(List<string> dns, List<IPAddress> ips) => string.Join(", ", dns.Concat(ips.Select(i => i.ToString())));

    private static string CheckBaseName(string name, string what)
    {
        if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name is "." or ".." || name.StartsWith('-'))
            throw CliException.Usage($"{what} '{name}' must be a plain file name (no folders).");
        return name;
    }

    private static void RefuseOverwrite(string[] files, bool force, string alternative)
    {
        var existing = files.Where(File.Exists).ToList();
        if (existing.Count > 0 && !force)
            throw CliException.Usage($"{string.Join(", ", existing)} already exist{(existing.Count == 1 ? "s" : "")}: pass --force to overwrite, or {alternative}.");
    }
}
