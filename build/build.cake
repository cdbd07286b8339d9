// QuicSend build. Run through ./build.sh (which restores the pinned cake.tool):
//   ./build.sh                  build everything, then run the demo (a local server and client move a file)
//   ./build.sh --target=Test    build everything, then run the tests
//   ./build.sh --target=Bench   build everything, then run the benchmark (writes benchmarks/RESULTS.md)
//   other targets: Supply, Native, Build, Pack, ConsumerTest, Demo
// Each step is a no-op when its inputs have not changed.

var target = Argument("target", "Demo");
var configuration = Argument("configuration", "Release");
var demoSize = Argument("demo-size-mib", "256");

var repo = MakeAbsolute(Directory(".."));
var native = repo.Combine("native");
var header = native.CombineWithFilePath("include/quicsend.h");
var isCi = EnvironmentVariable("CI") == "true";

int Run(string tool, string arguments, DirectoryPath workingDirectory = null, bool quiet = false)
{
    var settings = new ProcessSettings { Arguments = arguments, WorkingDirectory = workingDirectory ?? repo, RedirectStandardOutput = quiet };
    using var process = StartAndReturnProcess(tool, settings);
    process.WaitForExit();
    return process.GetExitCode();
}

bool Has(string tool) => Run("bash", $"-c \"command -v {tool} >/dev/null\"", quiet: true) == 0;

/// Installs a Debian package when the command it provides is missing.
void EnsureDebianPackage(string command, string package, string why)
{
    if (Has(command)) return;
    Information($"{command} missing: installing Debian's {package} ({why})");
    if (!Has("apt-get"))
        throw new Exception($"{command} is missing and apt-get is not available: install {package} with your package manager and run the build again.");
    var sudo = Run("bash", "-c \"[ $(id -u) -eq 0 ]\"", quiet: true) == 0 ? "" : "sudo ";
    if (Run("bash", $"-c \"{sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq {package} >/dev/null\"") != 0)
        throw new Exception($"Installing {package} with apt-get failed; install it by hand (apt-get install {package}) and run the build again.");
}

Task("Prerequisites")
    .Description("Checks for cargo; installs cbindgen, openssl and ngtcp2's HTTP/3 client and server from Debian if missing.")
    .Does(() =>
{
    if (!Has("cargo"))
        throw new Exception("cargo is not installed. Install a stable Rust toolchain (rustup or Debian's cargo) and run the build again.");
    EnsureDebianPackage("cmake", "cmake", "builds BoringSSL, quiche's TLS library");
    EnsureDebianPackage("c++", "g++", "builds BoringSSL");
    EnsureDebianPackage("cbindgen", "cbindgen", "generates native/include/quicsend.h");
    EnsureDebianPackage("openssl", "openssl", "the security tests check CertificateTool's files with it");
    EnsureDebianPackage("gtlsclient", "ngtcp2-client", "another HTTP/3 implementation the interop tests talk to");
    EnsureDebianPackage("gtlsserver", "ngtcp2-server", "another HTTP/3 implementation the interop tests talk to");
});

Task("Crates")
    .Description("Supplies the Rust crates from Debian packages pinned in build/crates/packages.lock.")
    .Does(() =>
{
    if (Run("bash", "build/crates/supply.sh") != 0)
        throw new Exception("The crate supply failed (see above).");
});

Task("Engine")
    .Description("Populates the quiche submodule and BoringSSL (GitHub, else ../shared/mirrors) and builds BoringSSL once.")
    .IsDependentOn("Prerequisites")
    .Does(() =>
{
    if (Run("bash", "build/engine.sh") != 0)
        throw new Exception("Supplying the engine (quiche, BoringSSL) failed (see above).");
});

Task("Supply")
    .Description("Supplies every third-party source: the quiche submodule and BoringSSL (built once), the Debian crates, the tools from apt.")
    .IsDependentOn("Prerequisites")
    .IsDependentOn("Engine")
    .IsDependentOn("Crates");

Task("Native")
    .Description("Builds the Rust shim over quiche (cargo --offline against the Debian crates).")
    .IsDependentOn("Supply")
    .Does(() =>
{
    if (Run("cargo", "build --release --offline --locked", native) != 0)
        throw new Exception("cargo build of native/ failed (see above).");
});

Task("Header")
    .Description("Regenerates native/include/quicsend.h with cbindgen; in CI a stale checked-in header fails the build.")
    .IsDependentOn("Native")
    .Does(() =>
{
    var fresh = native.CombineWithFilePath("target/quicsend.h");
    if (Run("cbindgen", $"--config cbindgen.toml --crate quicsend_native --quiet --output {fresh}", native) != 0)
        throw new Exception("cbindgen failed to generate the header (see above).");
    var now = System.IO.File.ReadAllText(fresh.FullPath);
    var old = System.IO.File.Exists(header.FullPath) ? System.IO.File.ReadAllText(header.FullPath) : "";
    if (now == old) return;
    if (isCi)
        throw new Exception("native/include/quicsend.h is out of date with native/src. Run ./build.sh locally and commit the regenerated header.");
    System.IO.File.WriteAllText(header.FullPath, now);
    Warning("native/include/quicsend.h was regenerated from native/src: commit it (NativeHeaderTests checks the C# declarations against it).");
});

Task("Build")
    .Description("Builds the C# solution (the shim is copied next to the assemblies).")
    .IsDependentOn("Header")
    .Does(() =>
{
    DotNetBuild(repo.CombineWithFilePath("QuicSendNative.sln").FullPath, new DotNetBuildSettings
    {
        Configuration = configuration,
        Verbosity = DotNetVerbosity.Minimal,
        NoLogo = true,
    });
});

Task("NativeTests")
    .Description("Runs the shim's Rust tests.")
    .IsDependentOn("Native")
    .Does(() =>
{
    if (Run("cargo", "test --release --offline --locked", native) != 0)
        throw new Exception("The shim's Rust tests failed (see above).");
});

Task("Sanitize")
    .Description("Memory checks: the shim's Rust tests (all of its own, the pair tests that finish in seconds) under valgrind memcheck, " +
                 "and a C# scenario (requests, disposal races, cut-short bodies) under glibc's malloc checks with freed memory poisoned.")
    .IsDependentOn("NativeTests")
    .IsDependentOn("Build")
    .Does(() =>
{
    EnsureDebianPackage("valgrind", "valgrind", "checks the shim's memory use");
    // The test executables cargo built for NativeTests, by target name.
    var listing = System.IO.Path.GetTempFileName();
    try
    {
        if (Run("bash", $"-c \"cargo test --release --offline --locked --no-run --message-format=json > {listing} 2>/dev/null\"", native) != 0)
            throw new Exception("Listing the shim's test executables failed.");
        var tests = new Dictionary<string, string>();
        foreach (var line in System.IO.File.ReadAllLines(listing))
        {
            if (!line.Contains("\"executable\":\"")) continue;
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.GetProperty("executable").ValueKind != System.Text.Json.JsonValueKind.String || !root.GetProperty("profile").GetProperty("test").GetBoolean()) continue;
            tests[root.GetProperty("target").GetProperty("name").GetString()] = root.GetProperty("executable").GetString();
        }
        // Virtual-time pair tests that move at most a few MiB: the bulk ones take minutes under valgrind.
        var runs = new[]
        {
            (tests["quicsend_native"], ""),
            (tests["pair"], "the_handshake a_lost_first retry_validates after_goaway a_server_at_its reset_between an_idle data_lost"),
        };
        foreach (var (exe, selection) in runs)
            if (Run("valgrind", $"-q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite {exe} --test-threads=1 {selection}") != 0)
                throw new Exception($"valgrind found a memory error in {System.IO.Path.GetFileName(exe)} (see above).");
    }
    finally
    {
        System.IO.File.Delete(listing);
    }
    // glibc's checking allocator (aborts on a double free or a corrupted heap) with every freed byte overwritten,
    // so a native call on freed memory fails loudly instead of passing by luck.
    var debugMalloc = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0";
    var preload = System.IO.File.Exists(debugMalloc) ? $"LD_PRELOAD={debugMalloc} MALLOC_CHECK_=3 " : "";
    var filter = "FullyQualifiedName~DisposeRace|FullyQualifiedName~TruncationTests|FullyQualifiedName~HttpTests|FullyQualifiedName~LifetimeTests|FullyQualifiedName~ErrorClassTests";
    if (Run("bash", $"-c \"{preload}MALLOC_PERTURB_=165 dotnet test tests/QuicSend.Tests/QuicSend.Tests.csproj -c {configuration} --no-build --filter '{filter}'\"") != 0)
        throw new Exception("The C# scenario failed under the malloc checks (see above).");
});

Task("Test")
    .Description("Runs the Rust and NUnit tests, the memory checks and the package consumer test, and prints a one-line summary.")
    .IsDependentOn("NativeTests")
    .IsDependentOn("Build")
    .IsDependentOn("Sanitize")
    .IsDependentOn("ConsumerTest")
    .Does(() =>
{
    var results = repo.Combine("artifacts/test-results");
    CleanDirectory(results);
    var code = Run("dotnet", $"test tests/QuicSend.Tests/QuicSend.Tests.csproj -c {configuration} --no-build " +
                   $"--logger \"console;verbosity=normal\" --logger \"trx;LogFileName=tests.trx\" --results-directory {results}");
    var trx = System.IO.Path.Combine(results.FullPath, "tests.trx");
    if (System.IO.File.Exists(trx))
    {
        var doc = System.Xml.Linq.XDocument.Load(trx);
        var counters = doc.Descendants().First(e => e.Name.LocalName == "Counters");
        int Count(string name) => int.Parse(counters.Attribute(name)?.Value ?? "0");
        Console.WriteLine($"Tests: {Count("passed")} passed, {Count("failed") + Count("error") + Count("timeout") + Count("aborted")} failed, {Count("total") - Count("executed")} skipped"); // ignored tests are in total, not in executed
        if (Count("total") == 0) throw new Exception("No test ran.");
    }
    if (code != 0) throw new Exception($"Tests failed (dotnet test exit code {code}).");
});

var packages = repo.Combine("artifacts/packages");
string Version() => System.Text.RegularExpressions.Regex.Match(
    System.IO.File.ReadAllText(repo.CombineWithFilePath("Directory.Build.props").FullPath), "<Version>([^<]+)</Version>").Groups[1].Value;

Task("Pack")
    .Description("Packs QuicSend (and the quicsend tool) into artifacts/packages, with this machine's shim under runtimes/linux-x64/native/.")
    .IsDependentOn("Build")
    .Does(() =>
{
    // The package's copy of the shim, without its debug line tables (the build tree keeps them).
    var rid = native.Combine("artifacts/linux-x64");
    EnsureDirectoryExists(rid);
    var shim = rid.CombineWithFilePath("libquicsend_native.so");
    CopyFile(native.CombineWithFilePath("target/release/libquicsend_native.so"), shim);
    if (Has("strip")) Run("strip", $"--strip-debug {shim}");
    CleanDirectory(packages);
    foreach (var project in new[] { "src/QuicSend/QuicSend.csproj", "src/QuicSend.Cli/QuicSend.Cli.csproj" })
    {
        if (!FileExists(repo.CombineWithFilePath(project))) continue;
        // QuicSendNativeLib: the stripped copy is the one the tool package carries beside QuicSend.dll, too.
        if (Run("dotnet", $"pack {project} -c {configuration} -o {packages} -p:QuicSendNativeLib={shim}") != 0)
            throw new Exception($"Packing {project} failed (see above).");
    }
});

Task("ConsumerTest")
    .Description("A fresh console project outside the repository takes QuicSend from the local feed only and moves a request and a file through it; " +
                 "the quicsend tool, installed from that feed with dotnet tool install, sends a file and gets it back.")
    .IsDependentOn("Pack")
    .Does(() =>
{
    var dir = DirectoryPath.FromString(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "quicsend-consumer-" + System.Guid.NewGuid().ToString("N")));
    EnsureDirectoryExists(dir);
    try
    {
        CopyFiles(repo.Combine("tests/Consumer").FullPath + "/*.c*", dir);
        // QuicSend comes from the local feed only; its dependencies from nuget.org (or the machine's cache).
        System.IO.File.WriteAllText(dir.CombineWithFilePath("nuget.config").FullPath,
            "<configuration><packageSources><clear/>" +
            $"<add key=\"local\" value=\"{packages.FullPath}\"/><add key=\"nuget\" value=\"https://api.nuget.org/v3/index.json\"/>" +
            "</packageSources><packageSourceMapping>" +
            "<packageSource key=\"local\"><package pattern=\"QuicSend\"/><package pattern=\"QuicSend.*\"/></packageSource>" +
            "<packageSource key=\"nuget\"><package pattern=\"*\"/></packageSource>" +
            "</packageSourceMapping></configuration>");
        // A private package folder, so a stale QuicSend of the same version in the user's cache cannot stand in.
        var restored = dir.Combine("packages");
        if (Run("dotnet", $"run -c Release -p:QuicSendVersion={Version()} -p:RestorePackagesPath={restored}", dir) != 0)
            throw new Exception("The consumer project could not use the QuicSend package (see above).");
        if (Run("bash", $"build/tool-check.sh {packages.FullPath} {Version()}") != 0)
            throw new Exception("The quicsend tool could not be installed from the local feed, or failed to move a file (see above).");
    }
    finally
    {
        DeleteDirectory(dir, new DeleteDirectorySettings { Recursive = true, Force = true });
    }
});

Task("Demo")
    .Description("Runs the demo: a local server and client move a real file and print the throughput.")
    .IsDependentOn("Build")
    .Does(() =>
{
    if (Run("dotnet", $"examples/FileDemo/bin/{configuration}/net10.0/FileDemo.dll --size-mib {demoSize}") != 0)
        throw new Exception("The demo failed (see above).");
});

Task("Bench")
    .Description("Runs the benchmark (loopback, emulated paths, the pool, small RPCs) and writes benchmarks/RESULTS.md.")
    .IsDependentOn("Build")
    .Does(() =>
{
    // The engine ceiling row: quiche driven from Rust alone (native/examples/raw_quiche.rs).
    if (Run("cargo", "build --release --offline --locked --example raw_quiche", native) != 0)
        throw new Exception("Building native/examples/raw_quiche failed (see above).");
    var results = repo.CombineWithFilePath("benchmarks/RESULTS.md");
    if (Run("dotnet", $"benchmarks/QuicSend.Benchmarks/bin/{configuration}/net10.0/QuicSend.Benchmarks.dll --results {results}") != 0)
        throw new Exception("The benchmark failed (see above).");
});

RunTarget(target);
