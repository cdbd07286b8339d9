using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using QuicSend.Http;

namespace QuicSend.Tests;

/// <summary>
/// A server with chosen file-serving options serving one folder with <see cref="FileTransfer.ServeDirectoryAsync"/>,
/// plus the raw requests the server-side file tests send (chunks, upload-status HEADs). Disposing stops the
/// loop and the server.
/// </summary>
internal sealed class ServedFolder : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();

    /// <param name="directCalls">Serve with an own loop that calls <see cref="FileTransfer.ServeDownloadAsync(QuicSendRequest, string, CancellationToken)"/>
    /// and <see cref="FileTransfer.ReceiveUploadAsync(QuicSendRequest, string, CancellationToken)"/> directly, as an application with its own routes does.</param>
    public ServedFolder(string directory, FileServingOptions? files = null, TimeSpan? idleTimeout = null, bool directCalls = false, params string[] tokens)
    {
        Directory = directory;
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        if (idleTimeout is { } t) o.IdleTimeout = t;
        Server = new QuicSendServer(new QuicSendServerOptions
        {
            Transport = o, Tokens = tokens.Length > 0 ? tokens : [HttpTests.Token], FileTransfers = files ?? new FileServingOptions(),
        });
        Loop = directCalls
            ? ServeByDirectCallsAsync(_stop.Token)
            : FileTransfer.ServeDirectoryAsync(Server, directory, _stop.Token, r => Results.Writer.TryWrite(r));
    }

    private async Task ServeByDirectCallsAsync(CancellationToken ct)
    {
        var running = new List<Task>();
        try
        {
            await foreach (var request in Server.AcceptRequestsAsync(ct))
                running.Add(Task.Run(async () =>
                {
                    using (request)
                        Results.Writer.TryWrite(request.Method is "GET" or "HEAD"
                            ? await FileTransfer.ServeDownloadAsync(request, Directory, ct)
                            : await FileTransfer.ReceiveUploadAsync(request, Directory, ct));
                }, CancellationToken.None));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        try { await Task.WhenAll(running); } catch (OperationCanceledException) { }
    }

    public string Directory { get; }
    public QuicSendServer Server { get; }
    public Task Loop { get; }
    public Channel<FileTransferResult> Results { get; } = Channel.CreateUnbounded<FileTransferResult>();

    public Task<QuicSendClient> ConnectAsync(string token = HttpTests.Token, int connections = 1, int chunkSize = 16 << 20,
        Action<QuicSend.Transport.QuicClientOptions>? transport = null, bool resumable = false)
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        transport?.Invoke(o);
        return QuicSendClient.ConnectAsync(Server.LocalEndPoint, new QuicSendClientOptions
        {
            Transport = o, Token = token, ServerName = "localhost", Connections = connections, ChunkSize = chunkSize, ResumableTransfers = resumable,
        });
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await Loop.WaitAsync(TimeSpan.FromSeconds(20)); } catch (OperationCanceledException) { }
        await Server.DisposeAsync();
        _stop.Dispose();
    }

    /// <summary>The names in a folder, sorted.</summary>
    /// <summary>
    /// An upload that announces <paramref name="announced"/> bytes, sends 1 KiB and then nothing until <paramref name="stop"/>:
    /// what holds a disk reservation (and a transfer slot) without using it.
    /// </summary>
    public static Task HoldAnnouncedUploadAsync(QuicSendClient client, string name, long announced, CancellationToken stop) => Task.Run(async () =>
    {
        try
        {
            using var r = await client.SendAsync("PUT", FileTransfer.PathFor(name), null, null,
                [new(QuicSendHeaders.ContentLength, announced.ToString())], 0, stop, async s =>
                {
                    await s.Stream.WriteAsync(new byte[1024], stop);
                    await Task.Delay(Timeout.Infinite, stop);
                });
        }
        catch (Exception e) when (e is OperationCanceledException or QuicException) { }
    });

    public static string[] Entries(string dir) => System.IO.Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order().ToArray()!;

    public static string HashOf(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>One chunk of a striped upload, sent by hand: its status and text.</summary>
    public static async Task<(int Status, string Text)> SendChunkAsync(QuicSendClient client, string name, string id, byte[] whole, int first, int count,
        CancellationToken ct, string? sha = null)
    {
        var piece = whole.AsMemory(first, count);
        using var r = await client.SendAsync("PUT", FileTransfer.PathFor(name), null, null,
        [
            new(QuicSendHeaders.ContentLength, count.ToString()), new(QuicSendHeaders.ContentRange, $"bytes {first}-{first + count - 1}/{whole.Length}"),
            new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadLength, whole.Length.ToString()),
        ], 0, ct, async s =>
        {
            await s.Stream.WriteAsync(piece, ct);
            await s.SendTrailersAsync(HeaderCodec.Pack([new(QuicSendHeaders.Sha256, sha ?? Convert.ToHexStringLower(SHA256.HashData(piece.Span)))]), ct);
        });
        return (r.Status, Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: ct)));
    }

    /// <summary>The commit of a striped upload, sent by hand.</summary>
    public static async Task<(int Status, string Text)> CommitAsync(QuicSendClient client, string name, string id, byte[] whole, CancellationToken ct)
    {
        using var r = await client.SendAsync("PUT", FileTransfer.PathFor(name), null, null,
        [
            new(QuicSendHeaders.UploadId, id), new(QuicSendHeaders.UploadCommit, whole.Length.ToString()),
            new(QuicSendHeaders.Sha256, Convert.ToHexStringLower(SHA256.HashData(whole))),
        ], ct);
        return (r.Status, Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: ct)));
    }

    /// <summary>The upload-status query: HEAD with the upload id. Status, the two answer headers (null when absent) and the text.</summary>
    public static async Task<(int Status, string? Length, string? Received, string Text)> UploadStatusAsync(QuicSendClient client, string name, string id, CancellationToken ct)
    {
        using var r = await client.SendAsync("HEAD", FileTransfer.PathFor(name), null, null, [new(QuicSendHeaders.UploadId, id)], ct);
        var text = Encoding.UTF8.GetString(await r.ReadBodyAsync(cancellationToken: ct));
        return (r.Status, HeaderCodec.Get(r.Headers, QuicSendHeaders.UploadLength), HeaderCodec.Get(r.Headers, QuicSendHeaders.UploadReceived), text);
    }
}
