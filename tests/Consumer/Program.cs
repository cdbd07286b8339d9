// A fresh application that uses QuicSend from its NuGet package (see Consumer.csproj): one request
// and a striped file transfer on loopback, bytes checked. Exit code 0 means the package works.
using System.Net;
using System.Security.Cryptography;
using QuicSend.Http;
using QuicSend.Security;
using QuicSend.Transport;

var work = Directory.CreateTempSubdirectory("quicsend-consumer-");
try
{
    // Where the runtime found the native library: from the package's runtimes/<rid>/native/, with nothing set.
    if (Environment.GetEnvironmentVariable("QUICSEND_NATIVE_PATH") is { Length: > 0 })
        throw new Exception("QUICSEND_NATIVE_PATH is set: this test must find the native library in the package by itself.");
    var nativeInOutput = Directory.GetFiles(AppContext.BaseDirectory, "libquicsend_native.so", SearchOption.AllDirectories);
    Console.WriteLine($"QuicSend {typeof(QuicSendClient).Assembly.GetName().Version}, native {QuicEndpoint.NativeVersion}, " +
                      $"shim in the output: {string.Join(", ", nativeInOutput.Select(p => Path.GetRelativePath(AppContext.BaseDirectory, p)))}");
    if (nativeInOutput.Length == 0) throw new Exception("the package did not bring libquicsend_native.so into the application");

    var root = CertificateTool.CreateRootCa("Consumer Root");
    var cert = CertificateTool.IssueServer(root, ["localhost"], [IPAddress.Loopback]);
    var served = Directory.CreateDirectory(Path.Combine(work.FullName, "server")).FullName;
    await using var server = new QuicSendServer(new QuicSendServerOptions
    {
        Transport = new QuicServerOptions
        {
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            CertificateChainPem = cert.CertificatePem, PrivateKeyPem = cert.PrivateKeyPem,
        },
        Tokens = { "consumer-token" },
    });
    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
    var serving = Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(stop.Token))
                _ = Task.Run(async () =>
                {
                    using (req)
                    {
                        if (req.Path == "/hello")
                            await req.RespondAsync(200, "{\"ok\":true}", QuicSendBody.FromText("hello, " + await req.ReadTextAsync()));
                        else
                            await FileTransfer.HandleRequestAsync(req, served);
                    }
                });
        }
        catch (OperationCanceledException) { }
    });

    await using var client = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions
    {
        Transport = new QuicClientOptions { TrustedRootPems = { root.CertificatePem } },
        Token = "consumer-token", ServerName = "localhost", Connections = 2, ChunkSize = 1 << 20,
    });
    using (var r = await client.RequestAsync("/hello", null, QuicSendBody.FromText("consumer")))
    {
        var text = await r.ReadTextAsync();
        if (r.Status != 200 || text != "hello, consumer" || r.HeaderInfo != "{\"ok\":true}")
            throw new Exception($"unexpected answer {r.Status} '{text}' '{r.HeaderInfo}'");
        Console.WriteLine($"request: {r.Status} '{text}'");
    }

    var source = Path.Combine(work.FullName, "blob.bin");
    var bytes = RandomNumberGenerator.GetBytes(12 << 20);
    await File.WriteAllBytesAsync(source, bytes);
    var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
    var up = await client.UploadFileAsync(source, "blob.bin");
    var back = Path.Combine(work.FullName, "back.bin");
    var down = await client.DownloadFileAsync("blob.bin", back);
    var stored = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(served, "blob.bin"))));
    var fetched = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(back)));
    if (stored != sha || fetched != sha || up.Sha256 != sha || down.Sha256 != sha)
        throw new Exception($"hash mismatch: source {sha}, stored {stored}, downloaded {fetched}");
    Console.WriteLine($"file: 12 MiB up and down over 2 connections, SHA-256 {sha}");
    stop.Cancel();
    await serving;
    Console.WriteLine("consumer OK");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"consumer FAILED: {e}");
    return 1;
}
finally
{
    work.Delete(recursive: true);
}
