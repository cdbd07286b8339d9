using System.Reflection;
using QuicSend.Transport;

namespace QuicSend.Http;

/// <summary>
/// A copy of a caller's transport options, so a server or client can set HTTP/3 and ALPN "h3" for
/// itself without changing an options object the caller may reuse. Every public settable property
/// is copied (new ones included without a change here); lists are copied, not shared.
/// </summary>
internal static class OptionsCopy
{
    internal static T Of<T>(T source) where T : QuicEndpointOptions, new()
    {
        var copy = new T();
        foreach (var p in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.CanRead || !p.CanWrite || p.GetIndexParameters().Length > 0) continue;
            var value = p.GetValue(source);
            if (value is IList<string> list) value = new List<string>(list);
            p.SetValue(copy, value);
        }
        return copy;
    }
}
