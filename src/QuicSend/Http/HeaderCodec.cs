using System.Buffers.Binary;
using System.Text;

namespace QuicSend.Http;

/// <summary>
/// Header sections as the native layer takes them: per field a u32 (LE) name
/// length, the name, a u32 value length, the value. Names are lowercase ASCII;
/// values are UTF-8 (quicsend-header-info may carry any text, e.g. JSON).
/// </summary>
internal static class HeaderCodec
{
    public static byte[] Pack(IEnumerable<KeyValuePair<string, string>> fields)
    {
        using var ms = new MemoryStream();
        Span<byte> len = stackalloc byte[4];
        foreach (var (name, value) in fields)
        {
            var n = Encoding.ASCII.GetBytes(name.ToLowerInvariant());
            var v = Encoding.UTF8.GetBytes(value);
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)n.Length);
            ms.Write(len);
            ms.Write(n);
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)v.Length);
            ms.Write(len);
            ms.Write(v);
        }
        return ms.ToArray();
    }

    public static List<KeyValuePair<string, string>> Unpack(ReadOnlySpan<byte> packed)
    {
        var list = new List<KeyValuePair<string, string>>();
        while (packed.Length >= 4)
        {
            var n = (int)BinaryPrimitives.ReadUInt32LittleEndian(packed);
            var name = Encoding.ASCII.GetString(packed.Slice(4, n));
            packed = packed[(4 + n)..];
            var v = (int)BinaryPrimitives.ReadUInt32LittleEndian(packed);
            var value = Encoding.UTF8.GetString(packed.Slice(4, v));
            packed = packed[(4 + v)..];
            list.Add(new(name, value));
        }
        return list;
    }

    public static string? Get(IReadOnlyList<KeyValuePair<string, string>> fields, string name)
    {
        foreach (var (n, v) in fields)
            if (n == name) return v;
        return null;
    }
}
