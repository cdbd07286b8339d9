using System.Net.Sockets;
using QuicSend.Http;

namespace QuicSend.Cli;

/// <summary>The exit codes scripts can rely on (also listed in <c>quicsend --help</c>).</summary>
internal static class ExitCode
{
    public const int Success = 0;
    public const int Usage = 1;
    public const int Connection = 2;
    public const int Refused = 3;
    public const int Integrity = 4;
    public const int LocalIo = 5;
    public const int Cancelled = 130;

    public const string Help =
        "Exit codes:\n" +
        "  0    success\n" +
        "  1    usage or configuration error (bad option, missing certificate or token)\n" +
        "  2    connection or TLS failure (no answer, unknown issuer, name or pin mismatch, ...)\n" +
        "  3    the server refused (401 bad token, 404, 413, 507, ...; its message is printed)\n" +
        "  4    integrity failure (SHA-256 mismatch, the file changed during the transfer)\n" +
        "  5    local I/O error (file missing, unreadable, disk full)\n" +
        "  130  cancelled with Ctrl+C";
}

/// <summary>An expected failure: printed as "error: message" (never a stack trace) and exits with <see cref="Code"/>.</summary>
internal sealed class CliException(int code, string message, Exception? inner = null) : Exception(message, inner)
{
    public int Code { get; } = code;

    public static CliException Usage(string message) => new(ExitCode.Usage, message);
}

/// <summary>Process-wide state: the Ctrl+C token and how errors are printed.</summary>
internal static class Cli
{
    /// <summary>Cancelled on Ctrl+C (SIGINT) or SIGTERM.</summary>
    public static readonly CancellationTokenSource Stop = new();

    public static CancellationToken Token => Stop.Token;

    public static bool Debug => Environment.GetEnvironmentVariable("QUICSEND_DEBUG") is "1" or "true";

    public static void Error(string message) => Console.Error.WriteLine("error: " + message);

    public static void Warn(string message) => Console.Error.WriteLine("warning: " + message);

    /// <summary>Runs a command body, turning every failure into its exit code and a one-line cause and fix.</summary>
    public static async Task<int> RunAsync(Func<CancellationToken, Task<int>> body)
    {
        try
        {
            return await body(Token);
        }
        catch (Exception e)
        {
            var (code, message) = Describe(e);
            Error(message);
            if (Debug) Console.Error.WriteLine(e);
            return code;
        }
    }

    /// <summary>The exit code and message for an exception.</summary>
    public static (int Code, string Message) Describe(Exception e)
    {
        if (Stop.IsCancellationRequested && (e is OperationCanceledException || e.InnerException is OperationCanceledException || e is QuicException or FileTransferException))
            return (ExitCode.Cancelled, "cancelled (Ctrl+C); nothing partial was left at the target (a file over 32 MiB keeps its progress unless --no-resume: the same command resumes it).");
        switch (e)
        {
            case CliException c:
                return (c.Code, c.Message);
            case QuicException q:
                return (ExitCode.Connection, ConnectionMessage(q));
            case QuicConfigurationException c:
                return (ExitCode.Usage, $"{c.Message} Check the certificate and key files given (--cert, --key, --root, --client-root).");
            case FileTransferException f when f.StatusCode == 401:
                return (ExitCode.Refused, $"the server refused the token (401 Unauthorized): give the server's token with --token, --token-file or the QUICSEND_TOKEN environment variable. Server said: {f.ServerMessage ?? f.Message}");
            case FileTransferException f when f.StatusCode is 412:
                return (ExitCode.Integrity, $"{f.Message} (the source changed during the transfer; run the command again).");
            case FileTransferException f when f.StatusCode is 422:
                return (ExitCode.Integrity, $"integrity failure: {f.Message}");
            case FileTransferException f when f.StatusCode != 0:
                return (ExitCode.Refused, RefusalMessage(f));
            case FileTransferException f:
                // Broke off without an answer: what was underneath decides.
                for (var inner = f.InnerException; inner is not null; inner = inner.InnerException)
                {
                    if (inner is InvalidDataException) return (ExitCode.Integrity, $"integrity failure: {f.Message}");
                    if (inner is QuicException q) return (ExitCode.Connection, $"{f.Message} {ConnectionHint(q)}".TrimEnd());
                }
                return (ExitCode.Connection, f.Message);
            case InvalidDataException d:
                return (ExitCode.Integrity, $"integrity failure: {d.Message}");
            case IOException io when SourceChanged(io):
                return (ExitCode.Integrity, $"{io.Message}");
            case FileNotFoundException nf:
                return (ExitCode.LocalIo, $"{nf.Message} Check the path.");
            case DirectoryNotFoundException dn:
                return (ExitCode.LocalIo, $"{dn.Message} Create the folder or check the path.");
            case UnauthorizedAccessException ua:
                return (ExitCode.LocalIo, $"permission denied: {ua.Message}");
            case IOException io when io.HResult is 28 or 27:
                return (ExitCode.LocalIo, $"the disk is full: {io.Message} Free some space and try again.");
            case IOException io:
                return (ExitCode.LocalIo, $"local I/O error: {io.Message}");
            case SocketException s when s.SocketErrorCode == SocketError.AddressAlreadyInUse:
                return (ExitCode.LocalIo, $"the port is already in use ({s.Message}): stop the other server or choose another port with --port.");
            case SocketException s:
                return (ExitCode.Connection, $"network error: {s.Message}");
            case ArgumentException a:
                return (ExitCode.Usage, a.Message);
            case OperationCanceledException:
                return (ExitCode.Cancelled, "cancelled.");
            default:
                return (ExitCode.Usage, $"unexpected {e.GetType().Name}: {e.Message} (set QUICSEND_DEBUG=1 for details and please report it)");
        }
    }

    private static bool SourceChanged(IOException e) =>
        e.Message.Contains("changed while", StringComparison.Ordinal) || e.Message.Contains("truncated while", StringComparison.Ordinal);

    private static string RefusalMessage(FileTransferException f)
    {
        var hint = f.StatusCode switch
        {
            409 when f.Message.Contains("already exists", StringComparison.Ordinal) => " Give --overwrite to replace it.",
            404 => " Check the file name (the server lists nothing: ask its operator) or the URL's path (/files/<name>).",
            413 => " The file is larger than the server accepts.",
            507 => " The server's disk is full.",
            503 => " The server is busy: try again later.",
            _ => "",
        };
        return f.Message + hint;
    }

    /// <summary>A connection or TLS failure named by its reason, with the fix in this tool's terms.</summary>
    public static string ConnectionMessage(QuicException q)
    {
        if (q.Error == QuicError.HandshakeFailed)
        {
            var reason = q.HandshakeFailure switch
            {
                HandshakeFailure.UnknownIssuer => "unknown issuer",
                HandshakeFailure.NameMismatch => "name mismatch",
                HandshakeFailure.PinMismatch => "pin mismatch",
                HandshakeFailure.Expired => "certificate expired or not yet valid",
                HandshakeFailure.BadCertificate => "bad certificate",
                HandshakeFailure.CertificateRejected => "client certificate rejected",
                HandshakeFailure.CertificateRequired => "client certificate required",
                HandshakeFailure.NoApplicationProtocol => "no common application protocol",
                HandshakeFailure.Refused => "refused (server at its connection limit)",
                HandshakeFailure.TimedOut => "timed out",
                _ => "TLS failure",
            };
            return $"TLS handshake failed ({reason}). {ConnectionHint(q)} Detail: {WithoutApiHint(q.Message)}";
        }
        return $"connection failed: {q.Message} {ConnectionHint(q)}".TrimEnd();
    }

    /// <summary>The library's handshake message ends with a hint in its API's terms (TrustedRootPaths...): keep the reason only.</summary>
    private static string WithoutApiHint(string message)
    {
        int failed = message.IndexOf("failed: ", StringComparison.Ordinal);
        int end = failed < 0 ? -1 : message.IndexOf(". ", failed, StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }

    private static string ConnectionHint(QuicException q) => q.Error switch
    {
        QuicError.HandshakeFailed => q.HandshakeFailure switch
        {
            HandshakeFailure.UnknownIssuer => "Fix: pass the root.pem that signed the server's certificate with --root (copy it from the server's `quicsend certs init` folder).",
            HandshakeFailure.NameMismatch => "Fix: connect with a host name or IP listed in the server's certificate, or pass it with --name (the server can add one: `quicsend certs server --name HOST --ip IP`).",
            HandshakeFailure.PinMismatch => "Fix: check --pin against the server's key (`quicsend certs pin server.pem` on the server).",
            HandshakeFailure.Expired => "Fix: renew the certificate (`quicsend certs server`) or check this machine's clock.",
            HandshakeFailure.CertificateRejected => "Fix: pass a client certificate signed by the root the server trusts (--cert/--key; `quicsend certs client NAME`).",
            HandshakeFailure.CertificateRequired => "Fix: the server requires mutual TLS: pass --cert NAME.pem --key NAME.key (`quicsend certs client NAME`).",
            HandshakeFailure.TimedOut => "Fix: check that `quicsend serve` runs there and that UDP reaches its port.",
            _ => "",
        },
        _ when q.Message.Contains("certificate_required", StringComparison.Ordinal) =>
            "Fix: the server requires mutual TLS: pass --cert NAME.pem --key NAME.key (`quicsend certs client NAME` with the server's root).",
        _ when q.Message.Contains("unknown_ca", StringComparison.Ordinal) || q.Message.Contains("bad_certificate", StringComparison.Ordinal) =>
            "Fix: the server did not accept the client certificate: use one signed by the root the server trusts (--client-root on the server).",
        QuicError.ConnectTimeout or QuicError.ConnectFailed => "Fix: check that `quicsend serve` runs at that address and port and that UDP is not blocked.",
        QuicError.ConnectionTimedOut => "The server stopped answering; try again.",
        _ => "",
    };
}
