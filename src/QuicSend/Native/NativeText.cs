namespace QuicSend.Native;

/// <summary>Fills a caller's buffer and returns the full length (which may exceed the buffer), or a negative status.</summary>
internal unsafe delegate long CopyOutFill(byte* buffer, nuint capacity);

/// <summary>The one copy-out loop for the shim's "copy into my buffer, tell me the full length" calls.</summary>
internal static unsafe class NativeText
{
    /// <summary>The bytes the call copies out, grown to their full length; null when it returns a negative status.</summary>
    public static byte[]? CopyOut(CopyOutFill fill, int firstGuess = 256)
    {
        long n;
        if (firstGuess > 1024)
        {
            // A size the caller knows (a header section's, from its event): usually one call, one array.
            var guess = new byte[firstGuess];
            fixed (byte* p = guess) n = fill(p, (nuint)guess.Length);
            if (n < 0) return null;
            if (n == guess.Length) return guess;
            if (n < guess.Length) return guess.AsSpan(0, (int)n).ToArray();
        }
        else
        {
            Span<byte> first = stackalloc byte[firstGuess];
            fixed (byte* p = first) n = fill(p, (nuint)first.Length);
            if (n < 0) return null;
            if (n <= first.Length) return first[..(int)n].ToArray();
        }
        // The full length is known now; a second call with room for all of it completes the copy.
        var all = new byte[n];
        fixed (byte* p = all) n = fill(p, (nuint)all.Length);
        return n < 0 ? null : n == all.Length ? all : all.AsSpan(0, (int)Math.Min(n, all.Length)).ToArray();
    }

    public static string Utf8(CopyOutFill fill, int firstGuess = 256) =>
        CopyOut(fill, firstGuess) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : "";
}
