using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// Wire compatibility with the original quicsend (C++ over quiche, driven from Python), both ways
/// (docs/compatibility.md): our server taking the original client's requests as it sends them (a raw
/// HTTP/3 client writes exactly its header section), the content types its Python wrapper accepts,
/// and our client reaching a server configured as the original's is: a version 1 certificate named
/// catid.io only in its CN, a CertificateRequest, a Retry for every connection, IPv4 only, and a
/// relay that drops what the original drops (connection IDs longer than 16 bytes).
/// </summary>
[TestFixture]
[NonParallelizable]
public class CompatibilityTests
{
    private const string Token = "AUTH_TOKEN_PLACEHOLDER";
    private const string HeaderInfo = "{\"foo\": \"bar\"}";

    private static readonly string[] OriginalContentTypes = [QuicSendHeaders.OctetStream, QuicSendHeaders.Text, QuicSendHeaders.MessagePack];

    /// <summary>What the handler of <see cref="StartServer"/> saw of each request it was given.</summary>
    private sealed record Seen(string Method, string Path, string? Authorization, string? HeaderInfo, string ContentType, byte[] Body);

    private static (QuicSendServer Server, List<Seen> Seen, CancellationTokenSource Stop) StartServer(bool compatible, long maxBody = 1L << 40)
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        var server = new QuicSendServer(new QuicSendServerOptions
        {
            Transport = o,
            Tokens = [Token],
            OriginalClientCompatibility = compatible,
            MaxRequestBodySize = maxBody,
        });
        var seen = new List<Seen>();
        var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Serve(server, seen, stop.Token);
        return (server, seen, stop);
    }

    private static void Serve(QuicSendServer server, List<Seen> seen, CancellationToken ct) => _ = Task.Run(async () =>
    {
        try
        {
            await foreach (var req in server.AcceptRequestsAsync(ct))
                _ = Task.Run(() => AnswerAsync(req, seen, ct));
        }
        catch (OperationCanceledException) { }
    });

    /// <summary>The original's example server answers 200 with the header info echoed; the path picks the kind of body here.</summary>
    private static async Task AnswerAsync(QuicSendRequest req, List<Seen> seen, CancellationToken ct)
    {
        using (req)
        {
            var body = await req.ReadBodyAsync(cancellationToken: ct);
            lock (seen) seen.Add(new Seen(req.Method, req.Path, HeaderCodec.Get(req.Headers, "authorization"), req.HeaderInfo, req.ContentType, body));
            switch (req.Path)
            {
                case "/text": await req.RespondAsync(200, req.HeaderInfo, QuicSendBody.FromText("héllo"), cancellationToken: ct); break;
                case "/msgpack": await req.RespondAsync(200, req.HeaderInfo, QuicSendBody.FromMessagePack(new[] { 1, 2, 3 }), cancellationToken: ct); break;
                case "/stream":
                    await req.RespondAsync(200, req.HeaderInfo, QuicSendBody.FromStream(new MemoryStream(new byte[100_000]), 100_000), cancellationToken: ct);
                    break;
                case "/streaming":
                    await req.RespondStreamingAsync(200, req.HeaderInfo, async s =>
                    {
                        await s.WriteAsync(new byte[5000], ct);
                        return [];
                    }, ct, contentLength: 5000);
                    break;
                case "/empty": await req.RespondAsync(200, req.HeaderInfo, null, cancellationToken: ct); break;
                default: await req.RespondAsync(200, req.HeaderInfo, QuicSendBody.FromBytes(Encoding.ASCII.GetBytes("A" + req.Path)), cancellationToken: ct); break;
            }
        }
    }

    /// <summary>
    /// The original client's header section, field for field: <c>:path</c> without its slash, the
    /// token as <c>Bearer &lt;token&gt;</c> on GET and <c>Bearer Bearer &lt;token&gt;</c> on POST,
    /// <c>user-agent: quicsend-client</c>, <c>quicsend-header-info</c>, and with a body
    /// <c>content-type</c> and <c>content-length</c>. Then the body in one DATA frame.
    /// </summary>
    private static byte[] OriginalRequest(string method, string path, string authority, string token, byte[]? body)
    {
        static int Index(string name, string? value = null) =>
            Array.FindIndex(RawH3.StaticTable, e => e.Name == name && (value is null || e.Value == value));
        var fs = new FieldSection();
        fs.Indexed(Index(":method", method));
        fs.Indexed(Index(":scheme", "https"));
        fs.NameRef(Index(":authority"), authority, huffman: false);
        fs.NameRef(Index(":path"), path, huffman: false);
        fs.NameRef(Index("user-agent"), "quicsend-client", huffman: false);
        fs.NameRef(Index("authorization"), (body is null ? "Bearer " : "Bearer Bearer ") + token, huffman: false);
        fs.LiteralName(QuicSendHeaders.HeaderInfo, HeaderInfo, huffmanName: false, huffmanValue: false);
        if (body is not null)
        {
            fs.NameRef(Index("content-type"), QuicSendHeaders.OctetStream, huffman: false);
            fs.NameRef(Index("content-length"), body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), huffman: false);
        }
        var headers = fs.HeadersFrame();
        return body is null ? headers : RawH3.Concat(headers, RawH3.Data(body));
    }

    private static async Task<RawH3.Response> SendOriginalAsync(RawH3Client client, string method, string path, string token, byte[]? body, CancellationToken ct)
    {
        using var s = await client.SendAsync(OriginalRequest(method, path, client.Authority, token, body), fin: true, ct);
        return await RawH3.ReadResponseAsync(s, ct);
    }

    private static void AssertOriginalContentType(RawH3.Response r, string what)
    {
        var types = r.Headers.Where(h => h.Key == "content-type").Select(h => h.Value).ToList();
        Assert.That(types, Has.Count.EqualTo(1), $"{what}: one content-type field");
        Assert.That(OriginalContentTypes, Does.Contain(types[0]), $"{what}: '{types[0]}' is one of the three the original's wrapper accepts, without parameters");
    }

    // ---- (a) our server and the original client's requests ----------------------------------

    [Test]
    public async Task InCompatibilityModeTheOriginalClientsRequestsAreAnsweredAndHandlersSeeANormalPath()
    {
        var (server, seen, stop) = StartServer(compatible: true);
        await using var serverScope = server;
        using var stopScope = stop;
        await using var client = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: stop.Token);
        var body = Echo.RandomBytes(70_000, 1);

        var post = await SendOriginalAsync(client, "POST", "simple.txt", Token, body, stop.Token);
        Assert.That(post.Status, Is.EqualTo(200), Encoding.UTF8.GetString(post.Body));
        Assert.That(post.Get("quicsend-header-info"), Is.EqualTo(HeaderInfo), "quicsend-header-info echoed");
        Assert.That(post.Body, Is.EqualTo(Encoding.ASCII.GetBytes("A/simple.txt")));
        Assert.That(post.Get("content-length"), Is.EqualTo("12"));
        AssertOriginalContentType(post, "POST");

        var get = await SendOriginalAsync(client, "GET", "simple.txt", Token, null, stop.Token);
        Assert.That(get.Status, Is.EqualTo(200), Encoding.UTF8.GetString(get.Body));
        Assert.That(get.Body, Is.EqualTo(Encoding.ASCII.GetBytes("A/simple.txt")));

        lock (seen)
        {
            Assert.That(seen, Has.Count.EqualTo(2));
            Assert.That(seen.Select(s => s.Path), Is.All.EqualTo("/simple.txt"), "the path is normalised for handlers");
            Assert.That(seen.Select(s => s.Method), Is.EquivalentTo(new[] { "POST", "GET" }));
            var p = seen.Single(s => s.Method == "POST");
            Assert.That(p.Body, Is.EqualTo(body), "the POST body arrives byte for byte");
            Assert.That(p.ContentType, Is.EqualTo(QuicSendHeaders.OctetStream));
            Assert.That(p.Authorization, Is.EqualTo("Bearer Bearer " + Token), "the header itself is kept as sent");
            Assert.That(seen.Select(s => s.HeaderInfo), Is.All.EqualTo(HeaderInfo));
        }
        Assert.That(server.UnauthorizedRequests, Is.Zero);
        Assert.That(server.BadPathRequests, Is.Zero);

        // The token is still checked, in either form.
        await using var wrong = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: stop.Token);
        var refused = await SendOriginalAsync(wrong, "POST", "simple.txt", "not-the-token", body, stop.Token);
        Assert.That(refused.Status, Is.EqualTo(401));
        Assert.That(server.UnauthorizedRequests, Is.EqualTo(1));
        lock (seen) Assert.That(seen, Has.Count.EqualTo(2), "a wrong token never reaches the handler");
    }

    [Test]
    public async Task WithoutCompatibilityModeTheOriginalClientsRequestsAreRefusedWithAClearStatus()
    {
        var (server, seen, stop) = StartServer(compatible: false);
        await using var serverScope = server;
        using var stopScope = stop;

        // POST: "Bearer Bearer <token>" is not the token: 401, the message says why, and the connection closes (as for any 401).
        await using (var client = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: stop.Token))
        {
            var post = await SendOriginalAsync(client, "POST", "simple.txt", Token, new byte[1000], stop.Token);
            var text = Encoding.UTF8.GetString(post.Body);
            Assert.That(post.Status, Is.EqualTo(401), text);
            Assert.That(text, Does.Contain("Bearer Bearer").And.Contain("OriginalClientCompatibility"));
            AssertOriginalContentType(post, "401");
            Assert.That(await client.ClosedAsync(TimeSpan.FromSeconds(10)), Is.Not.Null, "the connection of a 401 is closed");
        }
        // GET: the token is right but the path has no '/': 400, the message says why.
        await using (var client = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: stop.Token))
        {
            var get = await SendOriginalAsync(client, "GET", "simple.txt", Token, null, stop.Token);
            var text = Encoding.UTF8.GetString(get.Body);
            Assert.That(get.Status, Is.EqualTo(400), text);
            Assert.That(text, Does.Contain("':path' must start with '/'").And.Contain("'simple.txt'").And.Contain("OriginalClientCompatibility"));
            AssertOriginalContentType(get, "400");

            // The connection stays usable: the same request with a slash is answered.
            var fixedGet = await SendOriginalAsync(client, "GET", "/simple.txt", Token, null, stop.Token);
            Assert.That(fixedGet.Status, Is.EqualTo(200));
        }
        Assert.That(server.UnauthorizedRequests, Is.EqualTo(1));
        Assert.That(server.BadPathRequests, Is.EqualTo(1));
        lock (seen) Assert.That(seen.Select(s => s.Path), Is.EqualTo(new[] { "/simple.txt" }), "only the request with a slash reached the handler");

        // A QuicSend client is unaffected.
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        await using var ours = await QuicSendClient.ConnectAsync(server.LocalEndPoint, new QuicSendClientOptions { Transport = o, Token = Token, ServerName = "localhost" }, stop.Token);
        using var r = await ours.RequestAsync("/ours", null, new byte[10], stop.Token);
        Assert.That(r.Status, Is.EqualTo(200));
    }

    [Test]
    public void TheDoubledBearerPrefixIsATokenOnlyWhenAskedFor()
    {
        var set = new TokenSet([Token]);
        Assert.That(set.Authorizes("Bearer " + Token), Is.True);
        Assert.That(set.Authorizes("Bearer Bearer " + Token), Is.False, "default: the doubled prefix is not the token");
        Assert.That(set.Authorizes("Bearer Bearer " + Token, acceptDoubledPrefix: true), Is.True);
        Assert.That(set.Authorizes("bearer  Bearer " + Token, acceptDoubledPrefix: true), Is.True, "the scheme is case-insensitive (RFC 9110 §11.1)");
        Assert.That(set.Authorizes("Bearer " + Token, acceptDoubledPrefix: true), Is.True, "GET's single prefix too");
        Assert.That(set.Authorizes("Bearer Bearer Bearer " + Token, acceptDoubledPrefix: true), Is.False, "twice, not any number of times");
        Assert.That(set.Authorizes("Bearer Bearer wrong", acceptDoubledPrefix: true), Is.False);
        Assert.That(set.Authorizes(Token, acceptDoubledPrefix: true), Is.False, "no prefix at all");
        Assert.That(set.Authorizes(null, acceptDoubledPrefix: true), Is.False);
    }

    // ---- (b) content types -------------------------------------------------------------------

    [Test]
    public async Task ResponseContentTypesAreExactlyTheThreeTheOriginalAccepts()
    {
        var (server, _, stop) = StartServer(compatible: true, maxBody: 1000);
        await using var serverScope = server;
        using var stopScope = stop;
        await using var client = await RawH3Client.ConnectAsync(server.LocalEndPoint, ct: stop.Token);
        var expected = new Dictionary<string, (string Type, string Length)>
        {
            ["simple.txt"] = (QuicSendHeaders.OctetStream, "12"),
            ["/text"] = (QuicSendHeaders.Text, "6"),
            ["/msgpack"] = (QuicSendHeaders.MessagePack, "4"),
            ["/stream"] = (QuicSendHeaders.OctetStream, "100000"),
            ["/streaming"] = (QuicSendHeaders.OctetStream, "5000"),
            ["/empty"] = (QuicSendHeaders.OctetStream, "0"),
        };
        foreach (var (path, (type, length)) in expected)
        {
            var r = await SendOriginalAsync(client, "POST", path, Token, new byte[10], stop.Token);
            Assert.That(r.Status, Is.EqualTo(200), path);
            AssertOriginalContentType(r, path);
            Assert.That(r.Get("content-type"), Is.EqualTo(type), path);
            Assert.That(r.Get("content-length"), Is.EqualTo(length), $"{path}: content-length, which the original's client reads");
            Assert.That(r.Body.LongLength, Is.EqualTo(long.Parse(length)), $"{path}: the body is as long as declared");
            Assert.That(r.Get("quicsend-header-info"), Is.EqualTo(HeaderInfo), $"{path}: header info echoed");
        }
        // The server's own refusals: 413 for a body above the limit…
        var tooLarge = await SendOriginalAsync(client, "POST", "simple.txt", Token, new byte[2000], stop.Token);
        Assert.That(tooLarge.Status, Is.EqualTo(413));
        AssertOriginalContentType(tooLarge, "413");
        // …and 401 for a wrong token.
        var refused = await SendOriginalAsync(client, "GET", "simple.txt", "wrong", null, stop.Token);
        Assert.That(refused.Status, Is.EqualTo(401));
        AssertOriginalContentType(refused, "401");
        Assert.That(refused.Get("content-length"), Is.EqualTo(refused.Body.Length.ToString()));
    }

    // ---- (c), (d) our client and a server configured as the original's ------------------------

    [Test]
    public void TheOriginalsReadmeMakesAVersion1CertificateNamedOnlyInItsCommonName()
    {
        using var cert = X509Certificate2.CreateFromPem(OriginalPki.ServerPem);
        Assert.That(cert.Version, Is.EqualTo(1), "openssl x509 -req without extensions: X.509 v1");
        Assert.That(cert.Extensions, Is.Empty, "no subjectAltName, no basicConstraints");
        Assert.That(cert.Subject, Is.EqualTo("CN=catid.io"));
        using var root = X509Certificate2.CreateFromPem(OriginalPki.RootPem);
        Assert.That(root.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority, Is.True, "the README's root is a CA");
    }

    /// <summary>
    /// A QuicSendServer set up as the original's server is: its README certificate (v1, CN=catid.io),
    /// a CertificateRequest to every client without requiring an answer (client roots, not required:
    /// quiche's verify_peer(true) on a server), a Retry for every new connection (the default),
    /// IPv4 only, behind a relay that drops datagrams whose connection IDs are longer than 16 bytes.
    /// </summary>
    private static (QuicSendServer Server, OriginalServerRelay Relay) StartOriginalLikeServer()
    {
        var server = new QuicSendServer(new QuicSendServerOptions
        {
            Transport = new QuicServerOptions
            {
                ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                CertificateChainPem = OriginalPki.ServerPem,
                PrivateKeyPem = OriginalPki.ServerKey,
                ClientCertificateRootPems = { TestPki.ClientRoot.CertificatePem },
                RequireClientCertificate = false,
                RequireAddressValidation = true,
            },
            Tokens = [Token],
            OriginalClientCompatibility = true,
        });
        return (server, new OriginalServerRelay(server.LocalEndPoint));
    }

    private static QuicSendClientOptions OriginalClientOptions(Action<QuicClientOptions> trust, string serverName = "catid.io")
    {
        var t = new QuicClientOptions { ConnectTimeout = TimeSpan.FromSeconds(10) };
        trust(t);
        return new QuicSendClientOptions { Transport = t, Token = Token, ServerName = serverName };
    }

    private static async Task AssertAnsweredAsync(QuicSendClient client, CancellationToken ct)
    {
        var payload = Echo.RandomBytes(300_000, 7);
        using var r = await client.RequestAsync("/simple.txt", HeaderInfo, payload, ct);
        Assert.That(r.Status, Is.EqualTo(200));
        Assert.That(r.HeaderInfo, Is.EqualTo(HeaderInfo));
        Assert.That(await r.ReadBodyAsync(cancellationToken: ct), Is.EqualTo(Encoding.ASCII.GetBytes("A/simple.txt")));
    }

    [Test]
    public async Task OurClientPinningTheOriginalsCnOnlyV1CertificateConnectsThroughRetryAndACertificateRequest()
    {
        var (server, relay) = StartOriginalLikeServer();
        await using var serverScope = server;
        using var relayScope = relay;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new List<Seen>();
        Serve(server, seen, cts.Token);

        // As the original's client: server.pem pinned, the name catid.io, no client certificate.
        await using (var pinned = await QuicSendClient.ConnectAsync(relay.EndPoint,
            OriginalClientOptions(t => t.PinnedServerCertificatePems.Add(OriginalPki.ServerPem)), cts.Token))
        {
            await AssertAnsweredAsync(pinned, cts.Token);
        }
        // The README's root trusted instead (the chain is verified, the CN gives the name).
        await using (var rooted = await QuicSendClient.ConnectAsync(relay.EndPoint,
            OriginalClientOptions(t => t.TrustedRootPems.Add(OriginalPki.RootPem)), cts.Token))
        {
            await AssertAnsweredAsync(rooted, cts.Token);
        }
        // Both: the pin and the chain.
        await using (var both = await QuicSendClient.ConnectAsync(relay.EndPoint, OriginalClientOptions(t =>
        {
            t.TrustedRootPems.Add(OriginalPki.RootPem);
            t.PinnedServerCertificatePems.Add(OriginalPki.ServerPem);
        }), cts.Token))
        {
            await AssertAnsweredAsync(both, cts.Token);
        }

        TestContext.Out.WriteLine(relay.Describe());
        Assert.That(relay.ClientLongHeaders, Is.GreaterThanOrEqualTo(6), "the handshakes' long-header packets went through the relay");
        Assert.That(relay.Dropped, Is.Zero, "no datagram of ours carried a connection ID longer than 16 bytes");
        Assert.That(relay.LongestClientCid, Is.EqualTo(16), "our client's connection IDs are 16 bytes");
        Assert.That(relay.Retries, Is.GreaterThanOrEqualTo(3), "a Retry for each of the three connections, each answered");
    }

    [Test]
    public async Task ThePinnedCnOnlyCertificateStillHasItsNameChecked()
    {
        var (server, relay) = StartOriginalLikeServer();
        await using var serverScope = server;
        using var relayScope = relay;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var e = Assert.ThrowsAsync<QuicException>(() => QuicSendClient.ConnectAsync(relay.EndPoint,
            OriginalClientOptions(t => t.PinnedServerCertificatePems.Add(OriginalPki.ServerPem), serverName: "example.com"), cts.Token));
        Assert.That(e!.HandshakeFailure, Is.EqualTo(HandshakeFailure.NameMismatch), e.Message);
    }

    [Test]
    public async Task TheOriginalLikeServerAsksForAClientCertificate()
    {
        // A client presenting a certificate the server cannot verify is refused: the server did send a
        // CertificateRequest. So the clients without a certificate in the test above answered it with
        // an empty Certificate message (BoringSSL's default) and were let in.
        var (server, relay) = StartOriginalLikeServer();
        await using var serverScope = server;
        using var relayScope = relay;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var withCertificate = OriginalClientOptions(t =>
        {
            t.PinnedServerCertificatePems.Add(OriginalPki.ServerPem);
            t.ClientCertificatePem = TestPki.StrangerClient.CertificatePem;
            t.ClientKeyPem = TestPki.StrangerClient.PrivateKeyPem;
        });
        QuicException refusal;
        try
        {
            // TLS 1.3: the client finishes its side before the server has checked its certificate, so
            // the refusal may come as the close of a connection that seemed up.
            await using var refused = await QuicSendClient.ConnectAsync(relay.EndPoint, withCertificate, cts.Token);
            refusal = await (await refused.Connection).Closed.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (QuicException e)
        {
            refusal = e;
        }
        TestContext.Out.WriteLine(refusal.Message);
        Assert.That(refusal.Message, Does.Contain("unknown_ca"), "the server asked for a certificate and refused the one it could not verify");

        // And one without a certificate gets in and is served.
        await using var anonymous = await QuicSendClient.ConnectAsync(relay.EndPoint,
            OriginalClientOptions(t => t.PinnedServerCertificatePems.Add(OriginalPki.ServerPem)), cts.Token);
        var seen = new List<Seen>();
        Serve(server, seen, cts.Token);
        await AssertAnsweredAsync(anonymous, cts.Token);
    }
}

/// <summary>
/// The original quicsend's certificates, made with openssl exactly as its README says: a root
/// (<c>openssl req -new -x509 -batch -nodes</c>) and a server certificate from a CSR for
/// <c>/CN=catid.io</c> signed by it with <c>openssl x509 -req</c>, which gives X.509 version 1:
/// no extensions, the name only in the CN. Made once per test run.
/// </summary>
internal static class OriginalPki
{
    private static readonly Lazy<(string RootPem, string RootKey, string ServerPem, string ServerKey)> Made = new(Make);

    public static string RootPem => Made.Value.RootPem;
    public static string RootKey => Made.Value.RootKey;
    public static string ServerPem => Made.Value.ServerPem;
    public static string ServerKey => Made.Value.ServerKey;

    /// <summary>Writes the README's files into <paramref name="dir"/>: root_quicsend.crt/.key, server.pem, server.key.</summary>
    public static void Save(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "root_quicsend.crt"), RootPem);
        File.WriteAllText(Path.Combine(dir, "root_quicsend.key"), RootKey);
        File.WriteAllText(Path.Combine(dir, "server.pem"), ServerPem);
        File.WriteAllText(Path.Combine(dir, "server.key"), ServerKey);
    }

    private static (string, string, string, string) Make()
    {
        var dir = Directory.CreateTempSubdirectory("quicsend-original-pki-").FullName;
        try
        {
            OpenSsl(dir, "req", "-new", "-x509", "-batch", "-nodes", "-days", "10000", "-keyout", "root_quicsend.key", "-out", "root_quicsend.crt");
            OpenSsl(dir, "req", "-new", "-batch", "-nodes", "-sha256", "-keyout", "server.key", "-out", "server_self_signed.csr", "-subj", "/CN=catid.io");
            OpenSsl(dir, "x509", "-req", "-days", "10000", "-in", "server_self_signed.csr", "-CA", "root_quicsend.crt", "-CAkey", "root_quicsend.key",
                "-CAcreateserial", "-out", "server.pem");
            string Read(string name) => File.ReadAllText(Path.Combine(dir, name));
            return (Read("root_quicsend.crt"), Read("root_quicsend.key"), Read("server.pem"), Read("server.key"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void OpenSsl(string dir, params string[] args)
    {
        var psi = new ProcessStartInfo("openssl") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"openssl {string.Join(' ', args)} failed ({p.ExitCode}): {err.Result}");
    }
}

/// <summary>
/// A UDP relay in front of a server that does what the original quicsend server does with what it
/// receives: datagrams whose first packet has a long header with a connection ID longer than 16 bytes
/// are dropped. It records the connection ID lengths the client used and counts the server's Retry
/// packets. One client at a time.
/// </summary>
internal sealed class OriginalServerRelay : IDisposable
{
    private const int MaxCidLength = 16;
    private readonly Socket _front = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _back = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly CancellationTokenSource _stop = new();
    private EndPoint? _client;
    private int _clientLongHeaders, _dropped, _longestCid, _retries;

    public OriginalServerRelay(IPEndPoint server)
    {
        _front.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _back.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _back.Connect(server);
        _ = Task.Run(ForwardToServerAsync);
        _ = Task.Run(ForwardToClientAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_front.LocalEndPoint!;
    public int ClientLongHeaders => Volatile.Read(ref _clientLongHeaders);
    public int Dropped => Volatile.Read(ref _dropped);
    public int LongestClientCid => Volatile.Read(ref _longestCid);
    public int Retries => Volatile.Read(ref _retries);

    public string Describe() =>
        $"relay: {ClientLongHeaders} long-header datagrams from the client, longest connection ID {LongestClientCid} bytes, {Dropped} dropped, {Retries} Retry packets from the server";

    /// <summary>A long header (RFC 9000 §17.2): flags, version, DCID length and DCID, SCID length and SCID.</summary>
    private static bool TryLongHeader(ReadOnlySpan<byte> d, out uint version, out int type, out int dcid, out int scid)
    {
        version = 0; type = 0; dcid = 0; scid = 0;
        if (d.Length < 7 || (d[0] & 0x80) == 0) return false;
        version = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d[1..]);
        type = (d[0] >> 4) & 3;
        dcid = d[5];
        if (d.Length < 7 + dcid) return false;
        scid = d[6 + dcid];
        return true;
    }

    private async Task ForwardToServerAsync()
    {
        var buf = new byte[65536];
        try
        {
            while (true)
            {
                var r = await _front.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                _client = r.RemoteEndPoint;
                if (TryLongHeader(buf.AsSpan(0, r.ReceivedBytes), out _, out _, out var dcid, out var scid))
                {
                    Interlocked.Increment(ref _clientLongHeaders);
                    int longest = Math.Max(dcid, scid);
                    int seen;
                    while (longest > (seen = Volatile.Read(ref _longestCid)) && Interlocked.CompareExchange(ref _longestCid, longest, seen) != seen) { }
                    if (longest > MaxCidLength)
                    {
                        Interlocked.Increment(ref _dropped);
                        continue;
                    }
                }
                await _back.SendAsync(buf.AsMemory(0, r.ReceivedBytes), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    private async Task ForwardToClientAsync()
    {
        var buf = new byte[65536];
        try
        {
            while (true)
            {
                int n = await _back.ReceiveAsync(buf, SocketFlags.None, _stop.Token);
                if (TryLongHeader(buf.AsSpan(0, n), out var version, out var type, out _, out _) && version == 1 && type == 3)
                    Interlocked.Increment(ref _retries);
                if (_client is { } to) await _front.SendToAsync(buf.AsMemory(0, n), SocketFlags.None, to, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _front.Dispose();
        _back.Dispose();
        _stop.Dispose();
    }
}
