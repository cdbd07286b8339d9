using System.Text;
using QuicSend.Http;
using static QuicSend.Tests.RawH3;

namespace QuicSend.Tests;

/// <summary>
/// Tests of the TEST TOOL, not of the product: the hand-written Huffman and QPACK codec in RawH3.cs
/// (which the raw HTTP/3 tests use to build and read frames) checked against the RFCs' own examples.
/// A failure here means the raw tests' tool is wrong, and says nothing about QuicSend itself. The
/// server's own decoding of the same RFC examples is tested over the wire in
/// <see cref="RawHttp3Tests"/> (TheServerDecodesTheRfc7541HuffmanExamplesSentOnTheWire).
/// </summary>
[TestFixture]
[Category("TestTool")]
public class RawH3ToolTests
{
    [Test]
    public void HuffmanCodesDerivedFromTheCodeLengthsMatchRfc7541AppendixB()
    {
        Assert.That(Huffman.KraftSum(), Is.EqualTo(1UL << 30), "the code lengths describe a complete prefix code");
        // (symbol, "code as hex", "len in bits") rows of the appendix, spread over every code length.
        (int Sym, uint Code, int Len)[] rows =
        [
            ('0', 0x0, 5), ('t', 0x9, 5), (' ', 0x14, 6), ('u', 0x2d, 6), (':', 0x5c, 7), ('z', 0x7b, 7),
            ('&', 0xf8, 8), ('Z', 0xfd, 8), ('!', 0x3f8, 10), ('?', 0x3fc, 10), ('\'', 0x7fa, 11), ('|', 0x7fc, 11),
            ('#', 0xffa, 12), ('>', 0xffb, 12), (0, 0x1ff8, 13), ('~', 0x1ffd, 13), ('^', 0x3ffc, 14), ('}', 0x3ffd, 14),
            ('<', 0x7ffc, 15), ('{', 0x7ffe, 15), ('\\', 0x7fff0, 19), (208, 0x7fff2, 19), (128, 0xfffe6, 20),
            (226, 0xfffed, 20), (153, 0x1fffdc, 21), (230, 0x1fffe8, 21), (129, 0x3fffd2, 22), (233, 0x3fffeb, 22),
            (1, 0x7fffd8, 23), (239, 0x7ffff4, 23), (9, 0xffffea, 24), (237, 0xfffff5, 24), (199, 0x1ffffec, 25),
            (235, 0x1ffffef, 25), (192, 0x3ffffe0, 26), (255, 0x3ffffee, 26), (203, 0x7ffffde, 27), (254, 0x7fffff0, 27),
            (2, 0xfffffe2, 28), (127, 0xffffffc, 28), (220, 0xffffffd, 28), (249, 0xffffffe, 28), (10, 0x3ffffffc, 30),
            (13, 0x3ffffffd, 30), (22, 0x3ffffffe, 30), (Huffman.Eos, 0x3fffffff, 30),
        ];
        foreach (var (sym, code, len) in rows)
        {
            Assert.That(Huffman.Length(sym), Is.EqualTo(len), $"length of symbol {sym}");
            Assert.That(Huffman.Code(sym), Is.EqualTo(code), $"code of symbol {sym}");
        }
    }

    [TestCaseSource(typeof(RawH3), nameof(RawH3.HuffmanExamples))]
    public void HuffmanMatchesTheRfc7541Examples(string text, string hex)
    {
        var coded = Convert.FromHexString(hex);
        Assert.That(Convert.ToHexStringLower(Huffman.Encode(Encoding.ASCII.GetBytes(text))), Is.EqualTo(hex));
        Assert.That(Encoding.ASCII.GetString(Huffman.Decode(coded)), Is.EqualTo(text));
    }

    [Test]
    public void HuffmanRoundTripsEveryByteAndRefusesBadPadding()
    {
        var rng = new Random(11);
        for (int i = 0; i < 500; i++)
        {
            var s = new byte[rng.Next(0, 64)];
            rng.NextBytes(s);
            Assert.That(Huffman.Decode(Huffman.Encode(s)), Is.EqualTo(s));
        }
        var all = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        Assert.That(Huffman.Decode(Huffman.Encode(all)), Is.EqualTo(all));
        Assert.Throws<InvalidDataException>(() => Huffman.Decode([0xff, 0xff]), "16 bits of padding");
        Assert.Throws<InvalidDataException>(() => Huffman.Decode([0x18]), "'a' padded with zeros");
        Assert.Throws<InvalidDataException>(() => Huffman.Decode([0xff, 0xff, 0xff, 0xfc]), "EOS in the string");
    }

    [Test]
    public void QpackPiecesMatchTheRfcExamples()
    {
        // RFC 7541 C.1: 10 and 1337 with a 5-bit prefix, 42 on a whole byte.
        var ints = new List<byte>();
        Qpack.PrefixInt(ints, 0, 5, 10);
        Qpack.PrefixInt(ints, 0, 5, 1337);
        Qpack.PrefixInt(ints, 0, 8, 42);
        Assert.That(ints, Is.EqualTo(new byte[] { 0x0a, 0x1f, 0x9a, 0x0a, 0x2a }));
        // RFC 9204 B.1: a literal field line with a static name reference, :path=/index.html.
        var block = new FieldSection().NameRef(1, "/index.html", huffman: false).Encode();
        Assert.That(Convert.ToHexStringLower(block), Is.EqualTo("0000510b2f696e6465782e68746d6c"));
        Assert.That(Qpack.Decode(block), Is.EqualTo(new[] { new KeyValuePair<string, string>(":path", "/index.html") }));
        // Everything the request builder uses decodes back to what was meant.
        var request = ParseFrames(RequestHeaders("POST", "/a b", "localhost:1", headerInfo: "ünï", contentLength: 5));
        Assert.That(request.Single().Type, Is.EqualTo(FrameHeaders));
        Assert.That(Qpack.Decode(request[0].Payload), Is.EqualTo(new KeyValuePair<string, string>[]
        {
            new(":method", "POST"), new(":scheme", "https"), new(":authority", "localhost:1"), new(":path", "/a b"),
            new("authorization", "Bearer " + HttpTests.Token), new("content-type", "application/octet-stream"),
            new("content-length", "5"), new("quicsend-header-info", "ünï"),
        }));
        Assert.That(Varint(16383), Is.EqualTo(new byte[] { 0x7f, 0xff }));
        Assert.That(Varint(494878333), Is.EqualTo(new byte[] { 0x9d, 0x7f, 0x3e, 0x7d })); // RFC 9000 A.1
        Assert.That(ReadVarint(Convert.FromHexString("c2197c5eff14e88c"), out var v), Is.EqualTo(8));
        Assert.That(v, Is.EqualTo(151288809941952652UL));
    }
}
