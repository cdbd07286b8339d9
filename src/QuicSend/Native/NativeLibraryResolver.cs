using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace QuicSend.Native;

/// <summary>
/// Finds the native shim: a path the user set, next to this assembly, under
/// runtimes/&lt;rid&gt;/native/ (NuGet layout), then the system's own search.
/// </summary>
public static class QuicSendNative
{
    /// <summary>Environment variable that names the shim's full path.</summary>
    public const string PathVariable = "QUICSEND_NATIVE_PATH";

    /// <summary>Full path of the shim to load; set it before the first QuicSend call to override the search.</summary>
    public static string? LibraryPath { get; set; }

    internal static string FileName =>
        OperatingSystem.IsWindows() ? "quicsend_native.dll"
        : OperatingSystem.IsMacOS() ? "libquicsend_native.dylib"
        : "libquicsend_native.so";

    internal static string RuntimeId
    {
        get
        {
            var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
            var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            return $"{os}-{arch}";
        }
    }

#pragma warning disable CA2255 // a library must register its resolver before its first native call
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(QuicSendNative).Assembly, Resolve);

    /// <summary>The places searched, in order.</summary>
    internal static IEnumerable<string> Candidates()
    {
        if (!string.IsNullOrEmpty(LibraryPath)) yield return LibraryPath!;
        var fromEnv = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(fromEnv)) yield return fromEnv!;
        var dirs = new[] { Path.GetDirectoryName(typeof(QuicSendNative).Assembly.Location), AppContext.BaseDirectory }
            .Where(d => !string.IsNullOrEmpty(d)).Distinct();
        foreach (var dir in dirs)
        {
            yield return Path.Combine(dir!, FileName);
            yield return Path.Combine(dir!, "runtimes", RuntimeId, "native", FileName);
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == NativeMethods.Library ? Load(Candidates(), FileName, assembly, searchPath) : nint.Zero;

    /// <summary>Loads the first candidate that exists, then tries the system search; throws saying where it looked.</summary>
    internal static nint Load(IEnumerable<string> candidates, string fileName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var tried = new List<string>();
        foreach (var path in candidates)
        {
            tried.Add(path);
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out var h)) return h;
        }
        if (NativeLibrary.TryLoad(fileName, assembly, searchPath, out var sys)) return sys;
        tried.Add($"{fileName} on the system library path");
        throw new DllNotFoundException(
            $"QuicSend could not load its native library {fileName}. Looked in:{Environment.NewLine}  " +
            string.Join(Environment.NewLine + "  ", tried) + Environment.NewLine +
            $"Build it with ./build.sh (runs cargo in native/), set {PathVariable} or QuicSendNative.LibraryPath " +
            $"to its full path, or use the NuGet package, which carries it under runtimes/{RuntimeId}/native/.");
    }
}
