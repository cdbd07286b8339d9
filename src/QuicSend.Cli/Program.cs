// quicsend: the command-line tool over the QuicSend library.
//   quicsend certs init                      root.pem/root.key, server.pem/server.key
//   QUICSEND_TOKEN=secret quicsend serve ./data
//   QUICSEND_TOKEN=secret quicsend send big.bin https://localhost:4433/
//   QUICSEND_TOKEN=secret quicsend get https://localhost:4433/files/big.bin ./
using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.InteropServices;
using QuicSend.Cli;

// A Command named "quicsend" rather than a RootCommand, which would take the assembly's name (QuicSend.Cli).
var root = new Command("quicsend",
    "quicsend: secure, fast file transfer and RPC over QUIC / HTTP/3.\n\n" +
    "Quick start (one machine):\n" +
    "  quicsend certs init                                   # root.pem/root.key, server.pem/server.key here\n" +
    "  QUICSEND_TOKEN=secret quicsend serve ./data           # serve and receive files under ./data\n" +
    "  QUICSEND_TOKEN=secret quicsend send big.bin https://localhost:4433/\n" +
    "  QUICSEND_TOKEN=secret quicsend get https://localhost:4433/files/big.bin ./copy/\n" +
    "Clients trust ./root.pem by default (--root, --pin to change it).\n\n" +
    ExitCode.Help)
{
    CertsCommands.Create(),
    ServeCommand.Create(),
    TransferCommands.Send(),
    TransferCommands.Get(),
    RpcCommand.Create(),
    BenchCommand.Create(),
};
root.Options.Add(new HelpOption());
root.Options.Add(new VersionOption());

// Ctrl+C and SIGTERM cancel the running command, which cleans up (no partial file is kept) and
// exits 130 (serve: stops and exits 0). A second Ctrl+C ends the process at once.
int interrupts = 0;
Console.CancelKeyPress += (_, e) =>
{
    if (Interlocked.Increment(ref interrupts) > 1) return; // the default: terminate now
    e.Cancel = true;
    Console.Error.WriteLine("Interrupted: stopping (Ctrl+C again to stop at once) ...");
    Cli.Stop.Cancel();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
{
    ctx.Cancel = true;
    Cli.Stop.Cancel();
});

var parsed = root.Parse(args);
var code = await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
if (Cli.Stop.IsCancellationRequested && code == ExitCode.Success && parsed.CommandResult.Command.Name != "serve") code = ExitCode.Cancelled;
return code;
