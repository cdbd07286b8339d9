using System.Text;
using QuicSend.Http;
using QuicSend.Transport;
using static QuicSend.Tests.RawH3;

namespace QuicSend.Tests;

/// <summary>
/// A QuicSendServer talked to by a raw QUIC client (the library's HTTP/3 layer off, ALPN "h3")
/// that builds every frame and field section by hand: correct requests get correct answers,
/// and each malformed input gets the RFC 9114 / RFC 9204 error (a connection close with the
/// code, or a stream reset for stream errors) without disturbing anyone else.
/// </summary>
[TestFixture]
[NonParallelizable]
public class RawHttp3Tests
{
    private const int MaxHeaderSection = 4096;
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(5);

    private QuicSendServer _server = null!;
    private CancellationTokenSource _serving = null!;
    private int _seed;

    [OneTimeSetUp]
    public void StartServer()
    {
        _server = RawH3.StartServer(MaxHeaderSection);
        _serving = new CancellationTokenSource();
        _ = HttpTests.ServeEchoAsync(_server, _serving.Token);
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        _serving.Cancel();
        await _server.DisposeAsync();
        _serving.Dispose();
    }

    private static CancellationTokenSource Deadline(int seconds = 30) => new(TimeSpan.FromSeconds(seconds));

    private Task<RawH3Client> ConnectRawAsync(CancellationToken ct) => RawH3Client.ConnectAsync(_server.LocalEndPoint, ct: ct);

    // ---- the server's QPACK decoder over the wire, on the RFCs' own bytes

    [TestCaseSource(typeof(RawH3), nameof(RawH3.HuffmanExamples))]
    public async Task TheServerDecodesTheRfc7541HuffmanExamplesSentOnTheWire(string text, string hex)
    {
        // The request carries the RFC's own Huffman bytes for the value (checked below, so the test does not
        // rest on the test tool's encoder); the server must decode them and echo the text back.
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        var request = RequestHeaders("GET", "/huffman", c.Authority, headerInfo: text);
        Assert.That(Convert.ToHexStringLower(request), Does.Contain(hex), "the RFC 7541 example's bytes are on the wire");
        using var s = await c.SendAsync(request, fin: true, cts.Token);
        var resp = await ReadResponseAsync(s, cts.Token);
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(resp.Get(QuicSendHeaders.HeaderInfo), Is.EqualTo("echo:/huffman:" + text));
    }

    // ---- correct requests built by hand

    [Test]
    public async Task TheServerOpensItsControlStreamWithSettingsAndItsQpackStreams()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        var types = new Dictionary<ulong, byte[]>();
        for (int i = 0; i < 3; i++)
        {
            var s = await c.Connection.AcceptStreamAsync(cts.Token);
            Assert.That(s.CanWrite, Is.False, "the server's HTTP/3 streams are unidirectional");
            // The stream type; on the control stream also a whole first frame, which must be SETTINGS (§6.2.1).
            var first = await ReadUntilAsync(s, b =>
            {
                int n = ReadVarint(b, out var t);
                return n > 0 && (t != StreamControl || TryParseFrame(b.AsSpan(n), out _, out _, out _));
            }, cts.Token);
            int used = ReadVarint(first, out var type);
            if (type == StreamControl)
            {
                Assert.That(TryParseFrame(first.AsSpan(used), out var frameType, out var payload, out _), Is.True);
                Assert.That(frameType, Is.EqualTo(FrameSettings), "the control stream starts with SETTINGS");
                var settings = new Dictionary<ulong, ulong>();
                for (int at = 0; at < payload.Length;)
                {
                    at += ReadVarint(payload.AsSpan(at), out var id);
                    at += ReadVarint(payload.AsSpan(at), out var value);
                    Assert.That(settings.TryAdd(id, value), Is.True, $"setting {id:x} appears once");
                }
                Assert.That(settings[SettingMaxFieldSectionSize], Is.EqualTo((ulong)MaxHeaderSection));
                Assert.That(settings.GetValueOrDefault(SettingQpackMaxTableCapacity), Is.EqualTo(0UL), "no dynamic table");
                Assert.That(settings.Keys, Has.None.InRange(0x02UL, 0x05UL), "no reserved HTTP/2 settings");
            }
            types[type] = first;
        }
        Assert.That(types.Keys, Is.EquivalentTo(new[] { StreamControl, StreamQpackEncoder, StreamQpackDecoder }));
    }

    [Test]
    public async Task AHandBuiltPostIsAnsweredByTheEchoHandler()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);

        var body = Echo.RandomBytes(50_000, 1);
        var resp = await c.ExchangeAsync("POST", "/raw/post", body, "raw ✓ info", cts.Token);
        Assert.That(resp.Frames[0].Type, Is.EqualTo(FrameHeaders), "the response starts with HEADERS");
        Assert.That(resp.Frames.Skip(1).Select(f => f.Type), Is.All.EqualTo(FrameData), "then only DATA");
        Assert.That(resp.HeaderBlock.Take(3), Is.EqualTo(new byte[] { 0x00, 0x00, 0xd9 }),
            "required insert count 0, base 0, then :status 200 as static entry 25");
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(resp.Get("content-type"), Is.EqualTo(QuicSendHeaders.OctetStream));
        Assert.That(resp.Get("content-length"), Is.EqualTo("50000"));
        Assert.That(resp.Get(QuicSendHeaders.HeaderInfo), Is.EqualTo("echo:/raw/post:raw ✓ info"));
        Assert.That(resp.Body, Is.EqualTo(body));

        // Several at once on the same connection, each matched to its own stream.
        var many = await Task.WhenAll(Enumerable.Range(0, 10).Select(async i =>
        {
            var b = Echo.RandomBytes(1000 * i, 100 + i);
            var r = await c.ExchangeAsync("POST", $"/raw/{i}", b, $"#{i}", cts.Token);
            return (i, r, ok: r.Body.AsSpan().SequenceEqual(b));
        }));
        foreach (var (i, r, ok) in many)
        {
            Assert.That(r.Status, Is.EqualTo(200));
            Assert.That(r.Get(QuicSendHeaders.HeaderInfo), Is.EqualTo($"echo:/raw/{i}:#{i}"));
            Assert.That(ok, Is.True, $"body of request {i}");
        }
        Assert.That(c.Connection.Closed.IsCompleted, Is.False);
    }

    [Test]
    public async Task AHandBuiltGetWithoutABodyIsAnswered()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        using var s = await c.SendAsync(RequestHeaders("GET", "/raw/get", c.Authority), fin: true, cts.Token);
        var resp = await ReadResponseAsync(s, cts.Token);
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(resp.Frames.Select(f => f.Type), Is.EqualTo(new[] { FrameHeaders }), "an empty body is HEADERS and FIN only");
        Assert.That(resp.Get("content-length"), Is.EqualTo("0"));
        Assert.That(resp.Get(QuicSendHeaders.HeaderInfo), Is.EqualTo("echo:/raw/get:"));
        Assert.That(resp.Body, Is.Empty);
    }

    [Test]
    public async Task UnknownFramesStreamTypesAndSettingsAreIgnored()
    {
        // RFC 9114 §9: unknown frame types, stream types and settings (grease: 0x1f * N + 0x21) are skipped.
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenUniAsync(Concat(Varint(StreamControl), Settings((0x21, 7), (SettingMaxFieldSectionSize, 9000)),
            Frame(0x1f * 3 + 0x21, new byte[300]), Frame(FrameGoaway, Varint(0))), fin: false, cts.Token);
        await c.OpenUniAsync(Concat(Varint(0x1f * 7 + 0x21), new byte[1000]), fin: true, cts.Token);
        await c.OpenUniAsync(Varint(StreamQpackEncoder), fin: false, cts.Token);
        await c.OpenUniAsync(Concat(Varint(StreamQpackDecoder), [0x41]), fin: false, cts.Token); // stream cancellation 1
        var body = Echo.RandomBytes(3000, 4);
        var request = Concat(Frame(0x21, [1, 2, 3]), RequestHeaders("POST", "/grease", c.Authority, contentLength: body.Length),
            Frame(0x1f * 9 + 0x21, new byte[5000]), Data(body[..1000]), Frame(0x21, []), Data(body[1000..]), Frame(0x40, [9]));
        using var s = await c.SendAsync(request, fin: true, cts.Token);
        var resp = await ReadResponseAsync(s, cts.Token);
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(resp.Body, Is.EqualTo(body));
        Assert.That(c.Connection.Closed.IsCompleted, Is.False);
    }

    // ---- connection errors

    /// <summary>What each malformed input is and the code RFC 9114 / RFC 9204 closes the connection with.</summary>
    private static readonly Dictionary<string, (long Code, Func<RawH3Client, CancellationToken, Task> Send)> ConnectionErrors = new()
    {
        ["DATA before HEADERS on a request stream"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Data("hello"u8.ToArray()), fin: true, ct)),
        ["reserved HTTP/2 frame type 0x02 on a request stream"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Frame(FrameH2Priority, [0, 0, 0, 0, 0]), fin: true, ct)),
        ["reserved HTTP/2 frame type 0x02 after HEADERS"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Concat(RequestHeaders("POST", "/x", c.Authority, contentLength: 1), Frame(FrameH2Priority, [0]), Data([1])), fin: true, ct)),
        ["reserved HTTP/2 frame type 0x06 on the control stream"] =
            (H3FrameUnexpected, (c, ct) => c.OpenUniAsync(Concat(ControlStreamStart(), Frame(FrameH2Ping, new byte[8])), fin: false, ct)),
        ["SETTINGS on a request stream"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Settings(), fin: true, ct)),
        ["GOAWAY on a request stream"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Frame(FrameGoaway, [0]), fin: true, ct)),
        ["PUSH_PROMISE sent by a client"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Frame(FramePushPromise, [0, 0, 0]), fin: true, ct)),
        ["DATA on the control stream"] =
            (H3FrameUnexpected, (c, ct) => c.OpenUniAsync(Concat(ControlStreamStart(), Data([1, 2])), fin: false, ct)),
        ["HEADERS on the control stream"] =
            (H3FrameUnexpected, (c, ct) => c.OpenUniAsync(Concat(ControlStreamStart(), RequestHeaders("GET", "/", c.Authority)), fin: false, ct)),
        ["a frame after the trailer section"] =
            (H3FrameUnexpected, (c, ct) => c.SendAsync(Concat(RequestHeaders("POST", "/x", c.Authority), Data([1]),
                new FieldSection().LiteralName("x-trailer", "1", true, true).HeadersFrame(), Data([2])), fin: true, ct)),
        ["a control stream whose first frame is GOAWAY"] =
            (H3MissingSettings, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamControl), Frame(FrameGoaway, [0])), fin: false, ct)),
        ["a control stream whose first frame is of an unknown type"] =
            (H3MissingSettings, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamControl), Frame(0x21, [1, 2, 3])), fin: false, ct)),
        ["a second SETTINGS frame"] =
            (H3FrameUnexpected, (c, ct) => c.OpenUniAsync(Concat(ControlStreamStart(), Settings()), fin: false, ct)),
        ["a reserved HTTP/2 setting (0x02)"] =
            (H3SettingsError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamControl), Settings((0x02, 1))), fin: false, ct)),
        ["a SETTINGS frame ending inside a value"] =
            (H3FrameError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamControl), Frame(FrameSettings, [0x06, 0x40])), fin: false, ct)),
        ["a GOAWAY frame with bytes after its id"] =
            (H3FrameError, (c, ct) => c.OpenUniAsync(Concat(ControlStreamStart(), Frame(FrameGoaway, [0, 0])), fin: false, ct)),
        ["a second control stream"] =
            (H3StreamCreationError, async (c, ct) =>
            {
                await c.OpenControlStreamAsync(ct);
                await c.OpenControlStreamAsync(ct);
            }),
        ["a second QPACK encoder stream"] =
            (H3StreamCreationError, async (c, ct) =>
            {
                await c.OpenUniAsync(Varint(StreamQpackEncoder), fin: false, ct);
                await c.OpenUniAsync(Varint(StreamQpackEncoder), fin: false, ct);
            }),
        ["a push stream opened by the client"] =
            (H3StreamCreationError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamPush), Varint(0)), fin: false, ct)),
        ["the control stream ended (FIN)"] =
            (H3ClosedCriticalStream, (c, ct) => c.OpenUniAsync(ControlStreamStart(), fin: true, ct)),
        ["the control stream reset"] =
            (H3ClosedCriticalStream, async (c, ct) =>
            {
                var s = await c.OpenControlStreamAsync(ct);
                await Task.Delay(50, ct);
                s.Abort(0x10c);
            }),
        ["the QPACK encoder stream ended (FIN)"] =
            (H3ClosedCriticalStream, (c, ct) => c.OpenUniAsync(Varint(StreamQpackEncoder), fin: true, ct)),
        ["a field section that needs the dynamic table (required insert count 2)"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Indexed(17).HeadersFrame(encodedRequiredInsertCount: 2), fin: true, ct)),
        ["an indexed field line into the dynamic table"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Indexed(17).Raw(0x80).HeadersFrame(), fin: true, ct)),
        ["a post-base index"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Raw(0x10).HeadersFrame(), fin: true, ct)),
        ["a static index past the table (99)"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Raw(0xff, 0x24).HeadersFrame(), fin: true, ct)),
        ["a Huffman string with 16 bits of padding"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Indexed(20).Indexed(23).Raw(0x51, 0x82, 0xff, 0xff).HeadersFrame(), fin: true, ct)),
        ["a Huffman string padded with zeros"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Indexed(20).Indexed(23).Raw(0x51, 0x81, 0x18).HeadersFrame(), fin: true, ct)),
        ["a Huffman string containing EOS"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Raw(0x23, (byte)'x', (byte)'-', (byte)'a', 0x84, 0xff, 0xff, 0xff, 0xfc).HeadersFrame(), fin: true, ct)),
        ["a field section cut inside a string"] =
            (QpackDecompressionFailed, (c, ct) => c.SendAsync(new FieldSection().Indexed(20).Raw(0x51, 0x0a, (byte)'/').HeadersFrame(), fin: true, ct)),
        ["a DATA frame cut short by the end of the stream"] =
            (H3FrameError, (c, ct) => c.SendAsync(Concat(RequestHeaders("POST", "/cut", c.Authority, contentLength: 100), FrameHeader(FrameData, 100), new byte[10]), fin: true, ct)),
        ["a frame header cut short by the end of the stream"] =
            (H3FrameError, (c, ct) => c.SendAsync(Concat(RequestHeaders("POST", "/cut", c.Authority), Data([1, 2]), [0x00]), fin: true, ct)),
        ["a HEADERS frame cut short by the end of the stream"] =
            (H3FrameError, (c, ct) => c.SendAsync(Concat(FrameHeader(FrameHeaders, 100), new byte[10]), fin: true, ct)),
        ["the QPACK encoder stream inserting with a literal name"] =
            (QpackEncoderStreamError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamQpackEncoder), [0x43, (byte)'x', (byte)'-', (byte)'a', 0x01, (byte)'1']), fin: false, ct)),
        ["the QPACK encoder stream inserting with a static name reference"] =
            (QpackEncoderStreamError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamQpackEncoder), [0xc0, 0x01, (byte)'a']), fin: false, ct)),
        ["the QPACK encoder stream setting a table capacity above 0"] =
            (QpackEncoderStreamError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamQpackEncoder), [0x3f, 0xe1, 0x1f]), fin: false, ct)),
        ["the QPACK decoder stream acknowledging a section never sent"] =
            (QpackDecoderStreamError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamQpackDecoder), [0x80]), fin: false, ct)),
        ["the QPACK decoder stream incrementing the insert count"] =
            (QpackDecoderStreamError, (c, ct) => c.OpenUniAsync(Concat(Varint(StreamQpackDecoder), [0x01]), fin: false, ct)),
    };

    // Each case is answered by quiche 0.26.1 with the project's patch
    // build/patches/quiche-0.26.1-h3-conformance.patch (truncated frames, reserved HTTP/2 frame
    // types, trailing bytes in GOAWAY, a non-zero Required Insert Count, QPACK stream instructions).
    private static IEnumerable<TestCaseData> ConnectionErrorCases => ConnectionErrors.Keys.Select(k => new TestCaseData(k));

    [TestCaseSource(nameof(ConnectionErrorCases))]
    public async Task AMalformedInputClosesTheConnectionWithTheRfcError(string input)
    {
        var (code, send) = ConnectionErrors[input];
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        try
        {
            await send(c, cts.Token);
        }
        catch (QuicException)
        {
            // The server may close the connection while we are still writing.
        }
        var closed = await c.ClosedAsync(CloseWait);
        Assert.That(closed.ErrorCode, Is.EqualTo(code),
            $"expected {Http3Errors.Name(code)}, got: {closed.Message}");
        Assert.That(closed.Error, Is.EqualTo(QuicError.ConnectionClosed), "an application close from the peer");
        await AssertServedAsync(_server, Interlocked.Increment(ref _seed), cts.Token);
    }

    [Test]
    public async Task ARepeatedSettingIsAcceptedAsTheRfcAllows()
    {
        // RFC 9114 §7.2.4: a repeated setting identifier MAY be treated as H3_SETTINGS_ERROR; quiche
        // accepts the frame (the later value wins), which the RFC equally allows. The connection serves on.
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenUniAsync(Concat(Varint(StreamControl), Settings((SettingMaxFieldSectionSize, 5000), (SettingMaxFieldSectionSize, 9000))), fin: false, cts.Token);
        var body = Echo.RandomBytes(2000, 12);
        var resp = await c.ExchangeAsync("POST", "/repeated-setting", body, "r", cts.Token);
        Assert.That(resp.Status, Is.EqualTo(200));
        Assert.That(resp.Body, Is.EqualTo(body));
        Assert.That(c.Connection.Closed.IsCompleted, Is.False, "a repeated setting does not close the connection");
    }

    // ---- stream errors: the stream is refused, the connection lives on

    private static async Task ExpectStreamResetAsync(QuicStream s, long code, CancellationToken ct)
    {
        var e = Assert.ThrowsAsync<QuicException>(async () => await ReadToEndAsync(s, ct));
        Assert.That(e!.Error, Is.EqualTo(QuicError.StreamAborted), e.Message);
        Assert.That(e.ErrorCode, Is.EqualTo(code), $"expected {Http3Errors.Name(code)}: {e.Message}");
    }

    private async Task ExpectTheConnectionStillServesAsync(RawH3Client c, CancellationToken ct)
    {
        var body = Echo.RandomBytes(20_000, Interlocked.Increment(ref _seed));
        var ok = await c.ExchangeAsync("POST", "/after", body, "next", ct);
        Assert.That(ok.Status, Is.EqualTo(200), "the next request on the same connection");
        Assert.That(ok.Body, Is.EqualTo(body));
        Assert.That(c.Connection.Closed.IsCompleted, Is.False, "the connection is still open");
        await AssertServedAsync(_server, Interlocked.Increment(ref _seed), ct);
    }

    [TestCase("its HEADERS frame announces more than the limit")]
    [TestCase("its HEADERS frame announces more than any section within the limit can be coded in")]
    [TestCase("its decoded size passes the limit")]
    [TestCase("a long value passes the limit")]
    public async Task AnOversizedHeaderSectionIsRefusedOnItsStreamWithExcessiveLoad(string how)
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        byte[] headers = how switch
        {
            // 5000 bytes of field section, refused once decoded.
            "its HEADERS frame announces more than the limit" =>
                new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/big", false).LiteralName("x-big", new string('v', 5000), false, false).HeadersFrame(),
            // 20000 bytes announced (over 4 x 4096, Huffman's worst case) but only 100 sent, no FIN:
            // refused from the frame header alone, without waiting for (or buffering) the rest.
            "its HEADERS frame announces more than any section within the limit can be coded in" =>
                Concat(FrameHeader(FrameHeaders, 20_000), new byte[100]),
            // 110 one-byte lines of "accept: */*", 41 bytes each by the RFC 9114 §4.2.2 measure: 4510 > 4096 from a 112-byte block.
            "its decoded size passes the limit" =>
                Enumerable.Range(0, 110).Aggregate(new FieldSection(), (fs, _) => fs.Indexed(29)).HeadersFrame(),
            // A Huffman value that fits the frame limit coded, but not decoded (5 bits per '0').
            _ => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/big", false).LiteralName("x-big", new string('0', 6000), false, true).HeadersFrame(),
        };
        bool complete = !how.Contains("can be coded in");
        using var big = await c.SendAsync(complete ? Concat(headers, Data([1, 2, 3])) : headers, fin: complete, cts.Token);
        await ExpectStreamResetAsync(big, H3ExcessiveLoad, cts.Token);
        await ExpectTheConnectionStillServesAsync(c, cts.Token);
    }

    [Test]
    public async Task ATrailerSectionWithALineBreakInAValueMakesTheRequestMalformed()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        var trailers = new FieldSection().LiteralName("x-sum", "1\nx-admin: yes", false, false).HeadersFrame();
        using var bad = await c.SendAsync(Concat(RequestHeaders("POST", "/t", c.Authority), Data([1, 2, 3]), trailers), fin: true, cts.Token);
        await ExpectStreamResetAsync(bad, H3MessageError, cts.Token);
        await ExpectTheConnectionStillServesAsync(c, cts.Token);
    }

    [TestCase("an uppercase field name")]
    [TestCase("no :path")]
    [TestCase("an empty :path")]
    [TestCase("no :method")]
    [TestCase("two :method fields")]
    [TestCase("a pseudo-header after a regular field")]
    [TestCase("an unknown pseudo-header")]
    [TestCase("a response pseudo-header")]
    [TestCase("a connection-specific field")]
    [TestCase("a value with CR and LF")]
    [TestCase("a value with NUL")]
    [TestCase("a name with a space")]
    [TestCase("a name with ':' inside")]
    [TestCase("an empty name")]
    [TestCase("a negative content-length")]
    [TestCase("a content-length that is not a number")]
    public async Task AMalformedRequestIsRefusedOnItsStreamWithMessageError(string how)
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        var bearer = "Bearer " + HttpTests.Token;
        var fs = how switch
        {
            "an uppercase field name" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/u", false).LiteralName("X-Upper", "1", false, false),
            "no :path" => new FieldSection().Indexed(20).Indexed(23).NameRef(0, c.Authority, true),
            "an empty :path" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "", false),
            "no :method" => new FieldSection().Indexed(23).NameRef(1, "/m", false),
            "two :method fields" => new FieldSection().Indexed(20).Indexed(17).Indexed(23).NameRef(1, "/m", false),
            "a pseudo-header after a regular field" => new FieldSection().Indexed(20).Indexed(23).NameRef(84, bearer, true).NameRef(1, "/p", false),
            "an unknown pseudo-header" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/p", false).LiteralName(":x", "1", false, false),
            "a response pseudo-header" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/p", false).Indexed(25),
            // RFC 9114 §4.2, RFC 9110 §5.5: a value that could pose as more fields in a log or in HTTP/1.
            "a value with CR and LF" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/v", false)
                .LiteralName("x-info", "a\r\nx-admin: yes", false, false),
            "a value with NUL" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/v", false).LiteralName("x-info", "a\0b", false, false),
            "a name with a space" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/n", false).LiteralName("x info", "1", false, false),
            "a name with ':' inside" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/n", false).LiteralName("x:info", "1", false, false),
            "an empty name" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/n", false).LiteralName("", "1", false, false),
            // RFC 9110 §8.6: 1*DIGIT.
            "a negative content-length" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/l", false).NameRef(4, "-5", false),
            "a content-length that is not a number" => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/l", false).NameRef(4, "5 ", false),
            _ => new FieldSection().Indexed(20).Indexed(23).NameRef(1, "/p", false).LiteralName("connection", "keep-alive", true, true),
        };
        using var bad = await c.SendAsync(fs.HeadersFrame(), fin: true, cts.Token);
        await ExpectStreamResetAsync(bad, H3MessageError, cts.Token);
        await ExpectTheConnectionStillServesAsync(c, cts.Token);
    }

    [Test]
    public async Task ARequestStreamEndedBeforeItsHeaderSectionIsResetWithRequestIncomplete()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        using (var empty = await c.SendAsync([], fin: true, cts.Token))
            await ExpectStreamResetAsync(empty, H3RequestIncomplete, cts.Token);
        using (var onlyUnknown = await c.SendAsync(Frame(0x21, [1, 2, 3]), fin: true, cts.Token))
            await ExpectStreamResetAsync(onlyUnknown, H3RequestIncomplete, cts.Token);
        await ExpectTheConnectionStillServesAsync(c, cts.Token);
    }

    [Test]
    public async Task ARequestResetByTheClientLeavesTheConnectionServing()
    {
        using var cts = Deadline();
        await using var c = await ConnectRawAsync(cts.Token);
        await c.OpenControlStreamAsync(cts.Token);
        // Reset in the middle of the header section, and in the middle of the body.
        var half = await c.SendAsync(Concat(FrameHeader(FrameHeaders, 200), new byte[50]), fin: false, cts.Token);
        half.Abort(0x10c);
        var body = await c.SendAsync(Concat(RequestHeaders("POST", "/reset", c.Authority, contentLength: 10_000), FrameHeader(FrameData, 10_000), new byte[100]), fin: false, cts.Token);
        await Task.Delay(50, cts.Token);
        body.Abort(0x10c);
        await ExpectTheConnectionStillServesAsync(c, cts.Token);
    }
}
