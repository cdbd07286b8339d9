using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using QuicSend.Http;
using QuicSend.Transport;

namespace QuicSend.Tests;

/// <summary>
/// HTTP/3 on the wire, built by hand for tests that talk to the server without the library's
/// HTTP/3 layer. Written from the RFCs and deliberately independent of the shim: QUIC varints
/// (RFC 9000 §16), HTTP/3 frames and stream types (RFC 9114 §6, §7), QPACK field sections with
/// the static table only (RFC 9204 §4.5, Appendix A), and HPACK's prefix integers, string
/// literals and Huffman code (RFC 7541 §5, Appendix B).
/// </summary>
internal static class RawH3
{
    /// <summary>Strings and their Huffman codes from RFC 7541's examples (appendix C.4 and C.6): text, hex.</summary>
    public static readonly object[] HuffmanExamples =
    [
        new object[] { "www.example.com", "f1e3c2e5f23a6ba0ab90f4ff" },      // C.4.1
        new object[] { "no-cache", "a8eb10649cbf" },                          // C.4.2
        new object[] { "custom-key", "25a849e95ba97d7f" },                    // C.4.3
        new object[] { "custom-value", "25a849e95bb8e8b4bf" },                // C.4.3
        new object[] { "302", "6402" },                                       // C.6.1
        new object[] { "private", "aec3771a4b" },                             // C.6.1
        new object[] { "Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff" }, // C.6.1
        new object[] { "https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3" },               // C.6.1
        new object[] { "307", "640eff" },                                     // C.6.2
        new object[] { "gzip", "9bd9ab" },                                    // C.6.3
        new object[] { "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007" }, // C.6.3
    ];

    // RFC 9114 §7.2 frame types (and the reserved HTTP/2 ones of §7.2.8).
    public const ulong FrameData = 0x00;
    public const ulong FrameHeaders = 0x01;
    public const ulong FrameH2Priority = 0x02;
    public const ulong FrameCancelPush = 0x03;
    public const ulong FrameSettings = 0x04;
    public const ulong FramePushPromise = 0x05;
    public const ulong FrameH2Ping = 0x06;
    public const ulong FrameGoaway = 0x07;
    public const ulong FrameMaxPushId = 0x0d;

    // RFC 9114 §6.2 and RFC 9204 §4.2 unidirectional stream types.
    public const ulong StreamControl = 0x00;
    public const ulong StreamPush = 0x01;
    public const ulong StreamQpackEncoder = 0x02;
    public const ulong StreamQpackDecoder = 0x03;

    public const ulong SettingQpackMaxTableCapacity = 0x01;
    public const ulong SettingMaxFieldSectionSize = 0x06;
    public const ulong SettingQpackBlockedStreams = 0x07;

    // RFC 9114 §8.1 and RFC 9204 §6 error codes.
    public const long H3NoError = 0x100;
    public const long H3StreamCreationError = 0x103;
    public const long H3ClosedCriticalStream = 0x104;
    public const long H3FrameUnexpected = 0x105;
    public const long H3FrameError = 0x106;
    public const long H3ExcessiveLoad = 0x107;
    public const long H3SettingsError = 0x109;
    public const long H3MissingSettings = 0x10a;
    public const long H3RequestIncomplete = 0x10d;
    public const long H3MessageError = 0x10e;
    public const long QpackDecompressionFailed = 0x200;
    public const long QpackEncoderStreamError = 0x201;
    public const long QpackDecoderStreamError = 0x202;

    /// <summary>The QPACK static table (RFC 9204 Appendix A); a field line's static index is the position here.</summary>
    public static readonly (string Name, string Value)[] StaticTable =
    [
        (":authority", ""), (":path", "/"), ("age", "0"), ("content-disposition", ""), ("content-length", "0"),       //  0..4
        ("cookie", ""), ("date", ""), ("etag", ""), ("if-modified-since", ""), ("if-none-match", ""),                 //  5..9
        ("last-modified", ""), ("link", ""), ("location", ""), ("referer", ""), ("set-cookie", ""),                   // 10..14
        (":method", "CONNECT"), (":method", "DELETE"), (":method", "GET"), (":method", "HEAD"), (":method", "OPTIONS"), // 15..19
        (":method", "POST"), (":method", "PUT"), (":scheme", "http"), (":scheme", "https"), (":status", "103"),       // 20..24
        (":status", "200"), (":status", "304"), (":status", "404"), (":status", "503"), ("accept", "*/*"),            // 25..29
        ("accept", "application/dns-message"), ("accept-encoding", "gzip, deflate, br"), ("accept-ranges", "bytes"),  // 30..32
        ("access-control-allow-headers", "cache-control"), ("access-control-allow-headers", "content-type"),          // 33..34
        ("access-control-allow-origin", "*"), ("cache-control", "max-age=0"), ("cache-control", "max-age=2592000"),   // 35..37
        ("cache-control", "max-age=604800"), ("cache-control", "no-cache"), ("cache-control", "no-store"),            // 38..40
        ("cache-control", "public, max-age=31536000"), ("content-encoding", "br"), ("content-encoding", "gzip"),      // 41..43
        ("content-type", "application/dns-message"), ("content-type", "application/javascript"),                      // 44..45
        ("content-type", "application/json"), ("content-type", "application/x-www-form-urlencoded"),                  // 46..47
        ("content-type", "image/gif"), ("content-type", "image/jpeg"), ("content-type", "image/png"),                 // 48..50
        ("content-type", "text/css"), ("content-type", "text/html; charset=utf-8"), ("content-type", "text/plain"),   // 51..53
        ("content-type", "text/plain;charset=utf-8"), ("range", "bytes=0-"),                                           // 54..55
        ("strict-transport-security", "max-age=31536000"),                                                             // 56
        ("strict-transport-security", "max-age=31536000; includesubdomains"),                                          // 57
        ("strict-transport-security", "max-age=31536000; includesubdomains; preload"),                                 // 58
        ("vary", "accept-encoding"), ("vary", "origin"), ("x-content-type-options", "nosniff"),                       // 59..61
        ("x-xss-protection", "1; mode=block"), (":status", "100"), (":status", "204"), (":status", "206"),            // 62..65
        (":status", "302"), (":status", "400"), (":status", "403"), (":status", "421"), (":status", "425"),           // 66..70
        (":status", "500"), ("accept-language", ""), ("access-control-allow-credentials", "FALSE"),                   // 71..73
        ("access-control-allow-credentials", "TRUE"), ("access-control-allow-headers", "*"),                          // 74..75
        ("access-control-allow-methods", "get"), ("access-control-allow-methods", "get, post, options"),              // 76..77
        ("access-control-allow-methods", "options"), ("access-control-expose-headers", "content-length"),             // 78..79
        ("access-control-request-headers", "content-type"), ("access-control-request-method", "get"),                 // 80..81
        ("access-control-request-method", "post"), ("alt-svc", "clear"), ("authorization", ""),                       // 82..84
        ("content-security-policy", "script-src 'none'; object-src 'none'; base-uri 'none'"),                         // 85
        ("early-data", "1"), ("expect-ct", ""), ("forwarded", ""), ("if-range", ""), ("origin", ""),                  // 86..90
        ("purpose", "prefetch"), ("server", ""), ("timing-allow-origin", "*"), ("upgrade-insecure-requests", "1"),    // 91..94
        ("user-agent", ""), ("x-forwarded-for", ""), ("x-frame-options", "deny"), ("x-frame-options", "sameorigin"), // 95..98
    ];

    // ---- QUIC variable-length integers (RFC 9000 §16)

    /// <summary>The shortest encoding of <paramref name="v"/> (below 2^62).</summary>
    public static byte[] Varint(ulong v)
    {
        if (v < 1UL << 6) return [(byte)v];
        if (v < 1UL << 14) return [(byte)(0x40 | (v >> 8)), (byte)v];
        if (v < 1UL << 30)
        {
            var b4 = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b4, (uint)v | 0x8000_0000u);
            return b4;
        }
        if (v < 1UL << 62)
        {
            var b8 = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(b8, v | 0xC000_0000_0000_0000UL);
            return b8;
        }
        throw new ArgumentOutOfRangeException(nameof(v), "varints hold at most 62 bits");
    }

    /// <summary>Decodes the varint at the start of <paramref name="buf"/>: bytes used, or 0 if <paramref name="buf"/> is too short.</summary>
    public static int ReadVarint(ReadOnlySpan<byte> buf, out ulong value)
    {
        value = 0;
        if (buf.IsEmpty) return 0;
        int n = 1 << (buf[0] >> 6);
        if (buf.Length < n) return 0;
        value = (ulong)(buf[0] & 0x3f);
        for (int i = 1; i < n; i++) value = value << 8 | buf[i];
        return n;
    }

    public static byte[] Concat(params byte[][] parts)
    {
        var all = new byte[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(all, at);
            at += p.Length;
        }
        return all;
    }

    // ---- frames (RFC 9114 §7.1)

    public static byte[] FrameHeader(ulong type, ulong length) => Concat(Varint(type), Varint(length));

    public static byte[] Frame(ulong type, byte[] payload) => Concat(FrameHeader(type, (ulong)payload.Length), payload);

    public static byte[] Data(byte[] body) => Frame(FrameData, body);

    /// <summary>A SETTINGS frame with the given (identifier, value) pairs, in order.</summary>
    public static byte[] Settings(params (ulong Id, ulong Value)[] settings) =>
        Frame(FrameSettings, Concat(settings.SelectMany(s => new[] { Varint(s.Id), Varint(s.Value) }).ToArray()));

    /// <summary>What a client writes first on its control stream: the stream type, then SETTINGS.</summary>
    public static byte[] ControlStreamStart() => Concat(Varint(StreamControl), Settings((SettingMaxFieldSectionSize, 65536)));

    /// <summary>Splits bytes into frames; a frame cut short at the end throws.</summary>
    public static List<(ulong Type, byte[] Payload)> ParseFrames(ReadOnlySpan<byte> bytes)
    {
        var frames = new List<(ulong, byte[])>();
        while (!bytes.IsEmpty)
        {
            if (!TryParseFrame(bytes, out var type, out var payload, out var used))
                throw new InvalidDataException($"a frame is cut short ({bytes.Length} bytes left)");
            frames.Add((type, payload));
            bytes = bytes[used..];
        }
        return frames;
    }

    /// <summary>Reads one whole frame from the front of <paramref name="bytes"/>, if it is all there.</summary>
    public static bool TryParseFrame(ReadOnlySpan<byte> bytes, out ulong type, out byte[] payload, out int used)
    {
        payload = [];
        used = 0;
        int a = ReadVarint(bytes, out type);
        if (a == 0) return false;
        int b = ReadVarint(bytes[a..], out var length);
        if (b == 0 || (ulong)(bytes.Length - a - b) < length) return false;
        payload = bytes.Slice(a + b, (int)length).ToArray();
        used = a + b + (int)length;
        return true;
    }

    // ---- requests and responses

    /// <summary>
    /// A request's HEADERS frame, built from every kind of field line a client may use with an
    /// empty dynamic table: indexed static lines for :method and :scheme, a static name reference
    /// with a raw value for :path, static name references with Huffman-coded values for
    /// :authority, authorization and content-type, and a literal (Huffman-coded) name for
    /// quicsend-header-info.
    /// </summary>
    public static byte[] RequestHeaders(string method, string path, string authority, string? token = HttpTests.Token,
        string? headerInfo = null, long? contentLength = null)
    {
        var fs = new FieldSection();
        int methodIndex = Array.FindIndex(StaticTable, e => e.Name == ":method" && e.Value == method);
        if (methodIndex >= 0) fs.Indexed(methodIndex);
        else fs.NameRef(15, method, huffman: false);
        fs.Indexed(23);                                   // :scheme https
        fs.NameRef(0, authority, huffman: true);           // :authority
        fs.NameRef(1, path, huffman: false);               // :path
        if (token is not null) fs.NameRef(84, "Bearer " + token, huffman: true); // authorization
        if (contentLength is long len)
        {
            fs.NameRef(44, QuicSendHeaders.OctetStream, huffman: true);          // content-type
            fs.NameRef(4, len.ToString(System.Globalization.CultureInfo.InvariantCulture), huffman: false); // content-length
        }
        if (headerInfo is not null) fs.LiteralName(QuicSendHeaders.HeaderInfo, headerInfo, huffmanName: true, huffmanValue: true);
        return fs.HeadersFrame();
    }

    /// <summary>A whole request: HEADERS, then the body in one DATA frame when there is one.</summary>
    public static byte[] Request(string method, string path, string authority, byte[]? body, string? headerInfo = null) =>
        body is null
            ? RequestHeaders(method, path, authority, headerInfo: headerInfo)
            : Concat(RequestHeaders(method, path, authority, headerInfo: headerInfo, contentLength: body.Length), Data(body));

    public sealed record Response(List<KeyValuePair<string, string>> Headers, byte[] HeaderBlock, byte[] Body, List<(ulong Type, byte[] Payload)> Frames)
    {
        public string? Get(string name) => Headers.FirstOrDefault(h => h.Key == name).Value;

        public int Status => int.Parse(Get(":status") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a response stream to its end and decodes it: the final header section and the DATA payloads.</summary>
    public static async Task<Response> ReadResponseAsync(QuicStream stream, CancellationToken ct)
    {
        var raw = await ReadToEndAsync(stream, ct);
        var frames = ParseFrames(raw);
        List<KeyValuePair<string, string>>? headers = null;
        byte[] block = [];
        using var body = new MemoryStream();
        foreach (var (type, payload) in frames)
        {
            if (type == FrameHeaders && headers is null)
            {
                var fields = Qpack.Decode(payload);
                var status = fields.FirstOrDefault(f => f.Key == ":status").Value;
                if (status is not null && status.StartsWith('1')) continue; // interim response
                headers = fields;
                block = payload;
            }
            else if (type == FrameData)
            {
                if (headers is null) throw new InvalidDataException("DATA before the response's HEADERS");
                body.Write(payload);
            }
        }
        if (headers is null) throw new InvalidDataException("the response stream ended without a header section");
        return new Response(headers, block, body.ToArray(), frames);
    }

    public static async Task<byte[]> ReadToEndAsync(Stream stream, CancellationToken ct)
    {
        using var all = new MemoryStream();
        var buf = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buf, ct)) > 0) all.Write(buf, 0, n);
        return all.ToArray();
    }

    /// <summary>Reads from a stream that never ends (a critical stream) until <paramref name="enough"/> says so.</summary>
    public static async Task<byte[]> ReadUntilAsync(Stream stream, Func<byte[], bool> enough, CancellationToken ct)
    {
        using var all = new MemoryStream();
        var buf = new byte[4096];
        while (!enough(all.ToArray()))
        {
            int n = await stream.ReadAsync(buf, ct);
            if (n == 0) break;
            all.Write(buf, 0, n);
        }
        return all.ToArray();
    }

    // ---- servers and clients

    /// <summary>A QuicSendServer (token <see cref="HttpTests.Token"/>) with a small header-section limit.</summary>
    public static QuicSendServer StartServer(int maxHeaderSectionSize = 4096, TimeSpan? idleTimeout = null)
    {
        var o = TestPki.ServerOptions();
        o.AlpnProtocols.Clear();
        o.MaxHeaderSectionSize = maxHeaderSectionSize;
        if (idleTimeout is TimeSpan idle) o.IdleTimeout = idle;
        return new QuicSendServer(new QuicSendServerOptions { Transport = o, Tokens = [HttpTests.Token] });
    }

    /// <summary>Proves a server still answers correctly: a fresh QuicSendClient sends a random body and checks the echo's SHA-256.</summary>
    public static async Task AssertServedAsync(QuicSendServer server, int seed, CancellationToken ct, int length = 200_000)
    {
        await using var client = await HttpTests.ConnectAsync(server);
        await AssertServedAsync(client, seed, ct, length);
    }

    public static async Task AssertServedAsync(QuicSendClient client, int seed, CancellationToken ct, int length = 200_000)
    {
        var payload = Echo.RandomBytes(length, seed);
        using var resp = await client.RequestAsync($"/check/{seed}", "check", payload, ct);
        Assert.That(resp.Status, Is.EqualTo(200), "a normal client's request");
        var body = await resp.ReadBodyAsync(cancellationToken: ct);
        Assert.That(SHA256.HashData(body), Is.EqualTo(SHA256.HashData(payload)), "SHA-256 of the echoed body");
        Assert.That(resp.HeaderInfo, Is.EqualTo($"echo:/check/{seed}:check"));
    }
}

/// <summary>A QUIC client that speaks HTTP/3 by hand: the library's HTTP/3 layer is off (ALPN "h3", raw streams).</summary>
internal sealed class RawH3Client : IAsyncDisposable, IDisposable
{
    private RawH3Client(QuicEndpoint endpoint, QuicConnection connection, IPEndPoint server)
    {
        Endpoint = endpoint;
        Connection = connection;
        Authority = $"localhost:{server.Port}";
    }

    public QuicEndpoint Endpoint { get; }

    public QuicConnection Connection { get; }

    /// <summary>The :authority a request to this server carries.</summary>
    public string Authority { get; }

    public static async Task<RawH3Client> ConnectAsync(IPEndPoint server, Action<QuicClientOptions>? configure = null, CancellationToken ct = default)
    {
        var o = TestPki.ClientOptions();
        o.AlpnProtocols.Clear();
        o.AlpnProtocols.Add("h3");
        o.Http3 = false;
        configure?.Invoke(o);
        var endpoint = QuicEndpoint.CreateClient(o);
        try
        {
            var conn = await endpoint.ConnectAsync(server, "localhost", ct);
            return new RawH3Client(endpoint, conn, server);
        }
        catch
        {
            endpoint.Dispose();
            throw;
        }
    }

    /// <summary>Opens a unidirectional stream and writes <paramref name="bytes"/> on it (ending it with <paramref name="fin"/>).</summary>
    public async Task<QuicStream> OpenUniAsync(byte[] bytes, bool fin = false, CancellationToken ct = default)
    {
        var s = await Connection.OpenStreamAsync(unidirectional: true, ct);
        await s.WriteAsync(bytes, completeWrites: fin, ct);
        return s;
    }

    /// <summary>Opens the client's control stream as a real client would: type 0x00, then SETTINGS.</summary>
    public Task<QuicStream> OpenControlStreamAsync(CancellationToken ct = default) => OpenUniAsync(RawH3.ControlStreamStart(), fin: false, ct);

    /// <summary>
    /// Opens a request stream and writes <paramref name="bytes"/>, ending the stream with
    /// <paramref name="fin"/>. A server that refuses the stream may stop it while we write: the
    /// stream is returned all the same, so the test can read how it was reset.
    /// </summary>
    public async Task<QuicStream> SendAsync(byte[] bytes, bool fin = true, CancellationToken ct = default)
    {
        var s = await Connection.OpenStreamAsync(unidirectional: false, ct);
        try
        {
            await s.WriteAsync(bytes, completeWrites: fin, ct);
        }
        catch (QuicException e) when (e.Error == QuicError.StreamAborted)
        {
        }
        return s;
    }

    /// <summary>Sends a whole request and reads the whole response.</summary>
    public async Task<RawH3.Response> ExchangeAsync(string method, string path, byte[]? body, string? headerInfo, CancellationToken ct)
    {
        using var s = await SendAsync(RawH3.Request(method, path, Authority, body, headerInfo), fin: true, ct);
        return await RawH3.ReadResponseAsync(s, ct);
    }

    /// <summary>Waits for the connection to close; returns why.</summary>
    public async Task<QuicException> ClosedAsync(TimeSpan timeout) => await Connection.Closed.WaitAsync(timeout);

    public void Dispose() => Endpoint.Dispose();

    public ValueTask DisposeAsync()
    {
        Endpoint.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A QPACK field section under construction (RFC 9204 §4.5), static table only. Every method
/// appends one field line; <see cref="Raw"/> appends arbitrary bytes for malformed sections.
/// </summary>
internal sealed class FieldSection
{
    private readonly List<byte> _lines = new();

    /// <summary>§4.5.2 Indexed Field Line: '1', T=1 (static), 6-bit prefix index.</summary>
    public FieldSection Indexed(int staticIndex)
    {
        Qpack.PrefixInt(_lines, 0b1100_0000, 6, (ulong)staticIndex);
        return this;
    }

    /// <summary>§4.5.4 Literal Field Line with Name Reference: '01', N=0, T=1, 4-bit prefix index, then the value.</summary>
    public FieldSection NameRef(int staticIndex, string value, bool huffman)
    {
        Qpack.PrefixInt(_lines, 0b0101_0000, 4, (ulong)staticIndex);
        Qpack.StringLiteral(_lines, 0, 8, Encoding.UTF8.GetBytes(value), huffman);
        return this;
    }

    /// <summary>§4.5.6 Literal Field Line with Literal Name: '001', N=0, H and a 3-bit prefix name length, then the value.</summary>
    public FieldSection LiteralName(string name, string value, bool huffmanName, bool huffmanValue)
    {
        Qpack.StringLiteral(_lines, 0b0010_0000, 4, Encoding.ASCII.GetBytes(name), huffmanName);
        Qpack.StringLiteral(_lines, 0, 8, Encoding.UTF8.GetBytes(value), huffmanValue);
        return this;
    }

    public FieldSection Raw(params byte[] bytes)
    {
        _lines.AddRange(bytes);
        return this;
    }

    /// <summary>
    /// The encoded section: the prefix (§4.5.1: 8-bit-prefix Encoded Required Insert Count, then
    /// Sign and a 7-bit-prefix Delta Base), then the field lines.
    /// </summary>
    public byte[] Encode(ulong encodedRequiredInsertCount = 0, bool negativeBase = false, ulong deltaBase = 0)
    {
        var block = new List<byte>();
        Qpack.PrefixInt(block, 0, 8, encodedRequiredInsertCount);
        Qpack.PrefixInt(block, negativeBase ? (byte)0x80 : (byte)0, 7, deltaBase);
        block.AddRange(_lines);
        return block.ToArray();
    }

    public byte[] HeadersFrame(ulong encodedRequiredInsertCount = 0) => RawH3.Frame(RawH3.FrameHeaders, Encode(encodedRequiredInsertCount));
}

/// <summary>QPACK pieces: prefix integers and string literals (RFC 7541 §5.1, §5.2 as RFC 9204 §4.1 uses them), and a decoder.</summary>
internal static class Qpack
{
    /// <summary>Appends <paramref name="value"/> as an integer with an N-bit prefix; <paramref name="flags"/> fills the bits above it.</summary>
    public static void PrefixInt(List<byte> output, byte flags, int prefixBits, ulong value)
    {
        ulong max = (1UL << prefixBits) - 1;
        if (value < max)
        {
            output.Add((byte)(flags | (byte)value));
            return;
        }
        output.Add((byte)(flags | (byte)max));
        value -= max;
        while (value >= 128)
        {
            output.Add((byte)(0x80 | (value & 0x7f)));
            value >>= 7;
        }
        output.Add((byte)value);
    }

    /// <summary>Reads an N-bit prefix integer, advancing <paramref name="pos"/>; malformed or over-long input throws.</summary>
    public static ulong ReadPrefixInt(ReadOnlySpan<byte> input, ref int pos, int prefixBits)
    {
        if (pos >= input.Length) throw new InvalidDataException("the section ends inside an integer");
        ulong max = (1UL << prefixBits) - 1;
        ulong value = input[pos++] & max;
        if (value < max) return value;
        for (int shift = 0; ; shift += 7)
        {
            if (shift > 56) throw new InvalidDataException("an integer longer than 64 bits");
            if (pos >= input.Length) throw new InvalidDataException("the section ends inside an integer");
            byte b = input[pos++];
            value += (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }
    }

    /// <summary>
    /// Appends a string literal whose length has a (<paramref name="prefixBits"/> - 1)-bit prefix
    /// and whose H flag is the bit just above it; Huffman-coded when asked.
    /// </summary>
    public static void StringLiteral(List<byte> output, byte flags, int prefixBits, byte[] s, bool huffman)
    {
        byte h = (byte)(1 << (prefixBits - 1));
        if (huffman)
        {
            var coded = Huffman.Encode(s);
            PrefixInt(output, (byte)(flags | h), prefixBits - 1, (ulong)coded.Length);
            output.AddRange(coded);
        }
        else
        {
            PrefixInt(output, flags, prefixBits - 1, (ulong)s.Length);
            output.AddRange(s);
        }
    }

    public static byte[] ReadStringLiteral(ReadOnlySpan<byte> input, ref int pos, int prefixBits)
    {
        if (pos >= input.Length) throw new InvalidDataException("the section ends before a string");
        bool huffman = (input[pos] & (1 << (prefixBits - 1))) != 0;
        ulong len = ReadPrefixInt(input, ref pos, prefixBits - 1);
        if (len > (ulong)(input.Length - pos)) throw new InvalidDataException($"a string of {len} bytes runs past the end of the section");
        var bytes = input.Slice(pos, (int)len);
        pos += (int)len;
        return huffman ? Huffman.Decode(bytes) : bytes.ToArray();
    }

    /// <summary>
    /// Decodes a field section that may only use the static table (what a peer must send when
    /// our dynamic table capacity is 0): indexed static lines, static name references and literal
    /// names, raw or Huffman-coded. Anything touching the dynamic table throws.
    /// </summary>
    public static List<KeyValuePair<string, string>> Decode(ReadOnlySpan<byte> block)
    {
        int pos = 0;
        if (ReadPrefixInt(block, ref pos, 8) != 0) throw new InvalidDataException("required insert count is not 0");
        ReadPrefixInt(block, ref pos, 7); // sign and delta base: meaningless without dynamic references
        var fields = new List<KeyValuePair<string, string>>();
        while (pos < block.Length)
        {
            byte b = block[pos];
            if ((b & 0x80) != 0)
            {
                if ((b & 0x40) == 0) throw new InvalidDataException("an indexed line refers to the dynamic table");
                var (name, value) = Static(ReadPrefixInt(block, ref pos, 6));
                fields.Add(new(name, value));
            }
            else if ((b & 0x40) != 0)
            {
                if ((b & 0x10) == 0) throw new InvalidDataException("a name reference refers to the dynamic table");
                var (name, _) = Static(ReadPrefixInt(block, ref pos, 4));
                fields.Add(new(name, Encoding.UTF8.GetString(ReadStringLiteral(block, ref pos, 8))));
            }
            else if ((b & 0x20) != 0)
            {
                var name = Encoding.ASCII.GetString(ReadStringLiteral(block, ref pos, 4));
                fields.Add(new(name, Encoding.UTF8.GetString(ReadStringLiteral(block, ref pos, 8))));
            }
            else
            {
                throw new InvalidDataException("a post-base reference (dynamic table)");
            }
        }
        return fields;
    }

    private static (string Name, string Value) Static(ulong index) =>
        index < (ulong)RawH3.StaticTable.Length ? RawH3.StaticTable[index] : throw new InvalidDataException($"static index {index} is out of range");
}

/// <summary>
/// The HPACK Huffman code (RFC 7541 Appendix B). Only the code lengths are transcribed: the
/// code is canonical (codes of one length are consecutive, in symbol order, each length
/// continuing where the shorter one stopped), so the codes themselves follow from the lengths.
/// The tests check the derived codes against the appendix and its C.4 examples.
/// </summary>
internal static class Huffman
{
    /// <summary>RFC 7541 Appendix B, "len in bits", for symbols 0..255 and EOS (256).</summary>
    private static readonly byte[] Lengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0..15
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16..31
         6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, //  32..47  ' ' .. '/'
         5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, //  48..63  '0' .. '?'
        13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, //  64..79  '@' .. 'O'
         7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, //  80..95  'P' .. '_'
        15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, //  96..111 '`' .. 'o'
         6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 112..127 'p' .. DEL
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
        30,                                                             // EOS
    ];

    public const int Eos = 256;

    /// <summary>Each symbol's code, right-aligned in <see cref="Length"/> bits.</summary>
    private static readonly uint[] Codes = new uint[257];

    /// <summary>Symbols ordered by (code length, symbol): canonical order.</summary>
    private static readonly int[] Canonical;

    // Per code length: the first code, the position of its symbol in Canonical, how many codes.
    private static readonly uint[] FirstCode = new uint[31];
    private static readonly int[] FirstIndex = new int[31];
    private static readonly int[] Count = new int[31];

    static Huffman()
    {
        Canonical = Enumerable.Range(0, 257).OrderBy(s => Lengths[s]).ThenBy(s => s).ToArray();
        uint code = 0;
        int previous = Lengths[Canonical[0]];
        for (int i = 0; i < Canonical.Length; i++)
        {
            int sym = Canonical[i];
            int len = Lengths[sym];
            if (i > 0) code = (code + 1) << (len - previous);
            previous = len;
            Codes[sym] = code;
            if (Count[len]++ == 0)
            {
                FirstCode[len] = code;
                FirstIndex[len] = i;
            }
        }
    }

    public static int Length(int symbol) => Lengths[symbol];

    public static uint Code(int symbol) => Codes[symbol];

    /// <summary>The Kraft sum of the code lengths in units of 2^-30: exactly 2^30 for a complete prefix code.</summary>
    public static ulong KraftSum() => Lengths.Aggregate(0UL, (sum, len) => sum + (1UL << (30 - len)));

    /// <summary>Codes each byte MSB first and pads the last octet with ones (the start of EOS).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> s)
    {
        var output = new List<byte>(s.Length);
        ulong acc = 0;
        int bits = 0;
        foreach (var b in s)
        {
            acc = acc << Lengths[b] | Codes[b];
            bits += Lengths[b];
            while (bits >= 8)
            {
                bits -= 8;
                output.Add((byte)(acc >> bits));
            }
            acc &= (1UL << bits) - 1;
        }
        if (bits > 0) output.Add((byte)(acc << (8 - bits) | (0xFFu >> bits)));
        return output.ToArray();
    }

    /// <summary>
    /// Decodes bit by bit against the canonical ranges. Refuses EOS inside the string, padding
    /// longer than 7 bits, and padding that is not all ones (RFC 7541 §5.2).
    /// </summary>
    public static byte[] Decode(ReadOnlySpan<byte> coded)
    {
        var output = new List<byte>(coded.Length * 8 / 5);
        uint code = 0;
        int len = 0;
        foreach (var b in coded)
        {
            for (int bit = 7; bit >= 0; bit--)
            {
                code = code << 1 | (uint)((b >> bit) & 1);
                len++;
                if (len > 30) throw new InvalidDataException("no Huffman code is longer than 30 bits");
                if (Count[len] > 0 && code >= FirstCode[len] && code - FirstCode[len] < (uint)Count[len])
                {
                    int sym = Canonical[FirstIndex[len] + (int)(code - FirstCode[len])];
                    if (sym == Eos) throw new InvalidDataException("EOS inside a Huffman-coded string");
                    output.Add((byte)sym);
                    code = 0;
                    len = 0;
                }
            }
        }
        if (len > 7) throw new InvalidDataException("Huffman padding longer than 7 bits");
        if (code != (1u << len) - 1) throw new InvalidDataException("Huffman padding that is not all ones");
        return output.ToArray();
    }
}
