using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using QuicSend.Native;

namespace QuicSend.Tests;

/// <summary>
/// The C# declarations must say what native/include/quicsend.h (generated from
/// the Rust source by cbindgen) says: every function with the same parameter and
/// return types, every constant with the same value, every struct with the same
/// fields and layout.
/// </summary>
[TestFixture]
public partial class NativeHeaderTests
{
    private static string Header()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "native", "include", "quicsend.h");
            if (File.Exists(path)) return StripComments(File.ReadAllText(path));
        }
        throw new FileNotFoundException("native/include/quicsend.h not found above " + AppContext.BaseDirectory);
    }

    private static string StripComments(string s) => CommentRegex().Replace(s, "");

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex CommentRegex();

    [GeneratedRegex(@"^([\w ]+?\**)\s*\b(qs_\w+)\(([^)]*)\);", RegexOptions.Multiline)]
    private static partial Regex FunctionRegex();

    [GeneratedRegex(@"#define (QS_\w+) (-?\d+)")]
    private static partial Regex DefineRegex();

    [GeneratedRegex(@"typedef struct (\w+) \{(.*?)\} \1;", RegexOptions.Singleline)]
    private static partial Regex StructRegex();

    private static readonly Dictionary<string, Type> Scalars = new()
    {
        ["int32_t"] = typeof(int), ["int64_t"] = typeof(long), ["uint64_t"] = typeof(ulong), ["uint32_t"] = typeof(uint),
        ["uint16_t"] = typeof(ushort), ["uint8_t"] = typeof(byte), ["uintptr_t"] = typeof(nuint), ["bool"] = typeof(bool), ["void"] = typeof(void),
    };

    private static readonly Dictionary<string, Type> OpaqueHandles = new()
    {
        ["QsConfig"] = typeof(QsConfigHandle), ["QsEndpoint"] = typeof(QsEndpointHandle),
    };

    /// <summary>Does C# type <paramref name="t"/> carry C type <paramref name="c"/> across the boundary?</summary>
    private static bool Matches(string c, Type t)
    {
        c = c.Replace("const ", "").Replace("struct ", "").Trim();
        if (!c.EndsWith('*')) return Scalars.TryGetValue(c, out var s) && s == t;
        var pointee = c[..^1].Trim();
        if (OpaqueHandles.TryGetValue(pointee, out var handle)) return t == handle || t == typeof(nint);
        if (!t.IsPointer) return false;
        var element = t.GetElementType()!;
        if (pointee.EndsWith('*')) return Matches(pointee, element);
        return Scalars.TryGetValue(pointee, out var ps) ? ps == element : element.Name == pointee;
    }

    private static IEnumerable<(string Ret, string Name, string[] Params)> Functions() =>
        FunctionRegex().Matches(Header()).Select(m => (
            m.Groups[1].Value.Trim(),
            m.Groups[2].Value,
            m.Groups[3].Value.Trim() is "void" or "" ? [] : Regex.Replace(m.Groups[3].Value, @"\s+", " ").Split(',').Select(p => p.Trim()).ToArray()));

    private static string ParamType(string p) => Regex.Replace(p, @"\b\w+$", "").Trim();

    [Test]
    public void EveryHeaderFunctionIsDeclaredWithTheSameSignature()
    {
        var methods = typeof(NativeMethods).GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Where(m => m.Name.StartsWith("qs_")).ToDictionary(m => m.Name);
        var functions = Functions().ToList();
        Assert.That(functions, Has.Count.GreaterThan(20), "the header parser found too few functions");
        foreach (var (ret, name, ps) in functions)
        {
            Assert.That(methods.ContainsKey(name), $"{name} is in the header but not in NativeMethods");
            var m = methods[name];
            Assert.That(Matches(ret, m.ReturnType), $"{name}: returns {ret} in C but {m.ReturnType.Name} in C#");
            var cs = m.GetParameters();
            Assert.That(cs.Length, Is.EqualTo(ps.Length), $"{name}: parameter count");
            for (int i = 0; i < ps.Length; i++)
                Assert.That(Matches(ParamType(ps[i]), cs[i].ParameterType), $"{name}: parameter {i} is '{ps[i]}' in C but {cs[i].ParameterType.Name} in C#");
        }
        var extra = methods.Keys.Except(functions.Select(f => f.Name)).ToList();
        Assert.That(extra, Is.Empty, "declared in C# but missing from the header");
    }

    [Test]
    public void EveryHeaderConstantHasTheSameValue()
    {
        var fields = typeof(QsConst).GetFields(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public).ToDictionary(f => f.Name);
        var defines = DefineRegex().Matches(Header()).ToList();
        Assert.That(defines, Has.Count.GreaterThan(20));
        foreach (Match d in defines)
        {
            var name = d.Groups[1].Value;
            Assert.That(fields.ContainsKey(name), $"{name} is in the header but not in QsConst");
            Assert.That(Convert.ToInt64(fields[name].GetValue(null)), Is.EqualTo(long.Parse(d.Groups[2].Value)), name);
        }
    }

    [Test]
    public void EveryHeaderStructHasTheSameFieldsAndLayout()
    {
        var header = Header();
        var layouts = new Dictionary<string, (int Size, int Align)>();
        var structs = StructRegex().Matches(header).ToList();
        Assert.That(structs.Select(s => s.Groups[1].Value), Is.SupersetOf(new[] { "QsAddr", "QsEvent", "QsTransmit", "QsStats" }));
        foreach (Match s in structs)
        {
            var name = s.Groups[1].Value;
            var type = typeof(NativeMethods).Assembly.GetType($"QuicSend.Native.{name}");
            Assert.That(type, Is.Not.Null, $"struct {name} has no C# mirror");
            var cFields = s.Groups[2].Value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(f => Regex.Match(f, @"^(?:struct )?(\w+) (\w+)(?:\[(\d+)\])?$")).ToList();
            var csFields = type!.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).ToList();
            Assert.That(csFields.Select(f => f.Name.ToLowerInvariant()),
                Is.EqualTo(cFields.Select(f => f.Groups[2].Value.Replace("_", ""))), $"{name}: field names and order");
            // The C layout, computed from the header, must equal the managed one.
            int offset = 0, align = 1;
            for (int i = 0; i < cFields.Count; i++)
            {
                var f = cFields[i];
                var (sz, al) = layouts.TryGetValue(f.Groups[1].Value, out var nested) ? nested : (Marshal.SizeOf(Scalars[f.Groups[1].Value]), Marshal.SizeOf(Scalars[f.Groups[1].Value]));
                if (f.Groups[3].Success) sz *= int.Parse(f.Groups[3].Value);
                offset = (offset + al - 1) / al * al;
                Assert.That(Marshal.OffsetOf(type, csFields[i].Name).ToInt32(), Is.EqualTo(offset), $"{name}.{csFields[i].Name}: offset");
                Assert.That(Marshal.SizeOf(csFields[i].FieldType), Is.EqualTo(sz), $"{name}.{csFields[i].Name}: size");
                offset += sz;
                align = Math.Max(align, al);
            }
            var size = (offset + align - 1) / align * align;
            layouts[name] = (size, align);
            Assert.That(Marshal.SizeOf(type), Is.EqualTo(size), $"{name}: size");
        }
    }
}
