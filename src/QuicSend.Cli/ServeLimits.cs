using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using QuicSend.Http;

namespace QuicSend.Cli;

/// <summary>
/// The limits of <c>quicsend serve</c> on what clients may do with files: the library's
/// <see cref="FileServingOptions"/> and <see cref="QuicSendServerOptions.MaxRequestBodySize"/> as options. They are
/// read as text and checked here, so that a bad value is refused naming itself and what to give instead.
/// </summary>
internal sealed partial class ServeLimits
{
    private static readonly FileServingOptions Defaults = new();
    private static readonly long DefaultMaxUpload = new QuicSendServerOptions().MaxRequestBodySize;
    private static readonly TimeSpan MaxIdle = TimeSpan.FromDays(365);

    public readonly Option<string?> MaxUploadSize = new("--max-upload-size")
    {
        HelpName = "SIZE",
        Description = $"The largest upload accepted, in bytes or with K, M, G or T (binary: 4G is 4 GiB); a larger one is refused (413). [default: {Format.Size(DefaultMaxUpload)}]",
    };

    public readonly Option<string?> MaxTransfersPerConnection = new("--max-transfers-per-connection")
    {
        HelpName = "N",
        Description = "File transfers one connection may have in progress at once; more are refused (429, retry after 1 s). " +
                      $"A striped client uses at most 3 per connection. 0: no limit. [default: {Defaults.MaxTransfersPerConnection}]",
    };

    public readonly Option<string?> MaxTransfersPerToken = new("--max-transfers-per-token")
    {
        HelpName = "N",
        Description = "File transfers all connections with one token may have in progress at once; more are refused (429). A quicsend client " +
                      $"striping over its 4 connections uses up to 12. 0: no limit (one token is often shared by many machines). [default: {Defaults.MaxTransfersPerToken}]",
    };

    public readonly Option<string?> MaxPreallocation = new("--max-preallocation")
    {
        HelpName = "SIZE",
        Description = "Disk space all uploads in progress may reserve together before their bytes arrive, so clients announcing large files " +
                      $"and sending nothing cannot take the disk; in bytes or with K, M, G or T. 0 reserves nothing. [default: {Format.Size(Defaults.MaxPreallocationSize)}]",
    };

    public readonly Option<string?> UploadIdleTimeout = new("--upload-idle-timeout")
    {
        HelpName = "TIME",
        Description = "An unfinished striped upload that receives nothing for this long is dropped with its partial file (until then its client " +
                      $"can resume it): 90s, 10m, 1h, 2d (a bare number is seconds). [default: {Format.Duration(FileTransfer.UploadSessionIdleTimeout)}]",
    };

    public void AddTo(Command c)
    {
        c.Options.Add(MaxUploadSize);
        c.Options.Add(MaxTransfersPerConnection);
        c.Options.Add(MaxTransfersPerToken);
        c.Options.Add(MaxPreallocation);
        c.Options.Add(UploadIdleTimeout);
    }

    /// <summary>The limits given (the library's defaults for the rest), or a usage error naming the bad value and what to give.</summary>
    public (FileServingOptions Files, long MaxUploadSize) Resolve(ParseResult p)
    {
        long maxUpload = DefaultMaxUpload;
        if (p.GetValue(MaxUploadSize) is string upload)
        {
            maxUpload = ParseSize(upload, "--max-upload-size");
            if (maxUpload == 0) throw CliException.Usage("--max-upload-size '0' would refuse every upload: give a positive size (e.g. 4G), or leave it out for no practical limit.");
        }
        var files = new FileServingOptions
        {
            MaxTransfersPerConnection = p.GetValue(MaxTransfersPerConnection) is string perConnection
                ? ParseCount(perConnection, "--max-transfers-per-connection") : Defaults.MaxTransfersPerConnection,
            MaxTransfersPerToken = p.GetValue(MaxTransfersPerToken) is string perToken
                ? ParseCount(perToken, "--max-transfers-per-token") : Defaults.MaxTransfersPerToken,
            MaxPreallocationSize = p.GetValue(MaxPreallocation) is string reserve
                ? ParseSize(reserve, "--max-preallocation") : Defaults.MaxPreallocationSize,
            UploadSessionIdleTimeout = p.GetValue(UploadIdleTimeout) is string idle ? ParseDuration(idle, "--upload-idle-timeout") : null,
        };
        return (files, maxUpload);
    }

    /// <summary>
    /// Striped transfers (files over 32 MiB) keep up to 3 requests in flight per connection and fail on a 429: caps below that are
    /// allowed (an operator may want them), but said at the start rather than discovered as failed transfers.
    /// </summary>
    public static string? Warning(FileServingOptions files) =>
        files.MaxTransfersPerConnection is > 0 and < StripedPerConnection
            ? $"--max-transfers-per-connection {files.MaxTransfersPerConnection} is below the {StripedPerConnection} requests a striped transfer keeps in flight " +
              "on one connection: quicsend clients sending or getting files over 32 MiB will be refused (429) and fail."
            : null;

    private const int StripedPerConnection = 3;

    /// <summary>One line for the server's start: the limits in force.</summary>
    public static string Describe(FileServingOptions files, long maxUpload)
    {
        static string Cap(int n, string per) => n == 0 ? $"no limit per {per}" : $"{n} per {per}";
        return $"Limits: uploads up to {Format.Size(maxUpload)}; file transfers in progress: {Cap(files.MaxTransfersPerConnection, "connection")}, " +
               $"{Cap(files.MaxTransfersPerToken, "token")}; disk reserved ahead: {Format.Size(files.MaxPreallocationSize)} in all; " +
               $"unfinished uploads kept {Format.Duration(files.UploadSessionIdleTimeout ?? FileTransfer.UploadSessionIdleTimeout)} idle";
    }

    [GeneratedRegex(@"^(\d+)\s*(?:([KMGT])(?:i?B)?|B)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SizeSyntax();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex DurationSyntax();

    internal static long ParseSize(string text, string option)
    {
        var m = SizeSyntax().Match(text.Trim());
        int shift = m.Groups[2].Value.ToUpperInvariant() switch { "K" => 10, "M" => 20, "G" => 30, "T" => 40, _ => 0 };
        if (!m.Success)
            throw CliException.Usage($"{option} takes a size in bytes, or with K, M, G or T (binary: 256M is 256 MiB), not '{text}'.");
        if (!long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > long.MaxValue >> shift)
            throw CliException.Usage($"{option} '{text}' is more than can be counted: give at most {Format.Size(long.MaxValue >> 40 << 40)}.");
        return n << shift;
    }

    internal static int ParseCount(string text, string option)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw CliException.Usage($"{option} takes a whole number of transfers, 0 for no limit, not '{text}'.");
        return n;
    }

    internal static TimeSpan ParseDuration(string text, string option)
    {
        var m = DurationSyntax().Match(text.Trim());
        if (m.Success && double.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
        {
            double seconds = n * m.Groups[2].Value.ToLowerInvariant() switch { "ms" => 0.001, "m" => 60, "h" => 3600, "d" => 86400, _ => 1 };
            if (seconds >= 0.001 && seconds <= MaxIdle.TotalSeconds) return TimeSpan.FromSeconds(seconds);
        }
        throw CliException.Usage($"{option} takes a time from 1 ms to {MaxIdle.TotalDays:0} days, such as 90s, 10m or 1h (a bare number is seconds), not '{text}'.");
    }
}
