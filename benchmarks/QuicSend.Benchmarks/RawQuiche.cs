// The engine ceiling: native/examples/raw_quiche (quiche driven from Rust with the same socket
// batching, pacing hold and transport settings as the shim, no C#), run as a child process; its
// last line is "RESULT bytes=… seconds=… mibs=… cpu_seconds=…". Built by ./build.sh --target=Bench.
using System.Diagnostics;
using System.Globalization;
using QuicSend.Security;

sealed class RawQuiche
{
    public static readonly string Binary = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory,
        "../../../../../native/target/release/examples/raw_quiche"));

    public static bool Available => File.Exists(Binary);

    private readonly string _cert, _key;

    public RawQuiche()
    {
        var dir = Directory.CreateTempSubdirectory("quicsend-raw-");
        _cert = Path.Combine(dir.FullName, "cert.pem");
        _key = Path.Combine(dir.FullName, "key.pem");
        var root = CertificateTool.CreateRootCa("Bench Root");
        CertificateTool.IssueServer(root, ["localhost"], [System.Net.IPAddress.Loopback]).Save(_cert, _key);
    }

    public async Task<Sample> Run(int mib, string cc = "bbr2")
    {
        var psi = new ProcessStartInfo(Binary, ["--mib", mib.ToString(CultureInfo.InvariantCulture), "--cc", cc, "--cert", _cert, "--key", _key])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = Process.Start(psi) ?? throw new Exception($"could not start {Binary}");
        var stdout = await p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        var result = stdout.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (p.ExitCode != 0 || result is null) throw new Exception($"raw_quiche failed ({p.ExitCode}): {stderr.Trim()}");
        var fields = result[7..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
        double D(string k) => double.Parse(fields[k], CultureInfo.InvariantCulture);
        return new Sample(D("seconds"), long.Parse(fields["bytes"], CultureInfo.InvariantCulture), D("cpu_seconds"));
    }
}
