using System.CommandLine;
using System.Text;
using System.Text.Json;
using QuicSend.Http;

namespace QuicSend.Cli;

/// <summary><c>quicsend rpc URL</c>: one POST with quicsend's conventions, the answer printed.</summary>
internal static class RpcCommand
{
    private const int MaxPrinted = 1 << 20;

    public static Command Create()
    {
        var url = new Argument<string>("URL") { Description = "The request's URL: https://HOST:4433/PATH (POSTed to PATH)." };
        var data = new Option<string?>("--data") { HelpName = "TEXT", Description = "The request body, as text (text/plain)." };
        var dataFile = new Option<FileInfo?>("--data-file") { HelpName = "FILE", Description = "The request body, read from a file (application/octet-stream)." };
        var info = new Option<string?>("--info") { HelpName = "JSON", Description = "JSON sent as the quicsend-header-info header." };
        var setup = new ClientSetup();
        var cmd = new Command("rpc", "Send one request (POST to the URL's path) and print the status, quicsend-header-info and the body (text) or its size. " +
                                     "Exit code 0 for a 2xx answer, 3 otherwise.") { url, data, dataFile, info };
        setup.AddTo(cmd, connections: false);
        cmd.SetAction((p, _) => Cli.RunAsync(async ct =>
        {
            var target = ServerUrl.Parse(p.GetValue(url)!);
            var text = p.GetValue(data);
            var file = p.GetValue(dataFile);
            if (text is not null && file is not null) throw CliException.Usage("give either --data or --data-file, not both.");
            var headerInfo = p.GetValue(info);
            if (headerInfo is not null)
            {
                try { using var _ = JsonDocument.Parse(headerInfo); }
                catch (JsonException e) { throw CliException.Usage($"--info is not JSON: {e.Message}"); }
            }
            FileStream? stream = null;
            if (file is not null)
            {
                if (!file.Exists) throw new CliException(ExitCode.LocalIo, $"'{file.FullName}' does not exist: check --data-file.");
                stream = File.OpenRead(file.FullName);
            }
            await using (stream)
            {
                var body = stream is not null ? QuicSendBody.FromStream(stream) : text is not null ? QuicSendBody.FromText(text) : null;
                await using var client = await setup.ConnectAsync(p, target, ct, connections: 1);
                var uri = new Uri(target.Original);
                using var response = await client.RequestAsync(uri.PathAndQuery, headerInfo, body, ct);
                Console.WriteLine($"status: {response.Status}");
                Console.WriteLine($"quicsend-header-info: {response.HeaderInfo ?? "(none)"}");
                Console.WriteLine($"content-type: {response.ContentType}");
                long total = 0;
                var kept = new MemoryStream();
                var buffer = new byte[64 * 1024];
                int n;
                while ((n = await response.Body.ReadAsync(buffer, ct)) > 0)
                {
                    if (kept.Length < MaxPrinted) kept.Write(buffer, 0, (int)Math.Min(n, MaxPrinted - kept.Length));
                    total += n;
                }
                if (IsText(response.ContentType) && total <= MaxPrinted)
                {
                    Console.WriteLine();
                    Console.WriteLine(Encoding.UTF8.GetString(kept.GetBuffer(), 0, (int)kept.Length));
                }
                else
                {
                    Console.WriteLine($"body: {total} bytes ({Format.Bytes(total)}, {response.ContentType}; not printed)");
                }
                return response.IsSuccess ? ExitCode.Success : ExitCode.Refused;
            }
        }));
        return cmd;
    }

    private static bool IsText(string contentType) =>
        contentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase) || contentType.Contains("json", StringComparison.OrdinalIgnoreCase)
        || contentType.Contains("xml", StringComparison.OrdinalIgnoreCase);
}
