using System.Runtime.InteropServices;

namespace QuicSend.Native;

// Every entry point of native/include/quicsend.h (header order, then later additions); nothing else.
// Endpoint calls take the raw pointer (nint): the EndpointDriver holds a reference
// on its QsEndpointHandle for its whole life, and the hot path then pays no
// SafeHandle add-ref/release per datagram.
internal static unsafe partial class NativeMethods
{
    internal const string Library = "quicsend_native";

    [LibraryImport(Library, EntryPoint = "qs_config_new")]
    internal static partial QsConfigHandle qs_config_new();

    [LibraryImport(Library, EntryPoint = "qs_config_free")]
    internal static partial void qs_config_free(nint cfg);

    [LibraryImport(Library, EntryPoint = "qs_config_load_cert_chain_pem")]
    internal static partial int qs_config_load_cert_chain_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_load_priv_key_pem")]
    internal static partial int qs_config_load_priv_key_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_add_trusted_root_pem")]
    internal static partial int qs_config_add_trusted_root_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_set_alpn")]
    internal static partial int qs_config_set_alpn(QsConfigHandle cfg, byte* protos, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_set_timeouts")]
    internal static partial int qs_config_set_timeouts(QsConfigHandle cfg, ulong idleTimeoutMs, ulong keepAliveMs);

    [LibraryImport(Library, EntryPoint = "qs_config_set_max_streams")]
    internal static partial int qs_config_set_max_streams(QsConfigHandle cfg, ulong bidi, ulong uni);

    [LibraryImport(Library, EntryPoint = "qs_config_set_windows")]
    internal static partial int qs_config_set_windows(QsConfigHandle cfg, ulong streamReceive, ulong connectionReceive);

    [LibraryImport(Library, EntryPoint = "qs_config_set_congestion")]
    internal static partial int qs_config_set_congestion(QsConfigHandle cfg, uint algorithm);

    [LibraryImport(Library, EntryPoint = "qs_config_set_pacing")]
    internal static partial int qs_config_set_pacing(QsConfigHandle cfg, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Library, EntryPoint = "qs_config_set_max_udp_payload")]
    internal static partial int qs_config_set_max_udp_payload(QsConfigHandle cfg, ushort max);

    [LibraryImport(Library, EntryPoint = "qs_config_set_retry")]
    internal static partial int qs_config_set_retry(QsConfigHandle cfg, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Library, EntryPoint = "qs_config_set_max_connections")]
    internal static partial int qs_config_set_max_connections(QsConfigHandle cfg, ulong max);

    [LibraryImport(Library, EntryPoint = "qs_conn_close")]
    internal static partial int qs_conn_close(nint ep, ulong conn, ulong code, byte* reason, nuint reasonLen);

    [LibraryImport(Library, EntryPoint = "qs_conn_error")]
    internal static partial long qs_conn_error(nint ep, ulong conn, byte* buf, nuint cap);

    [LibraryImport(Library, EntryPoint = "qs_conn_stats")]
    internal static partial int qs_conn_stats(nint ep, ulong conn, QsStats* stats);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_new")]
    internal static partial QsEndpointHandle qs_endpoint_new(QsConfigHandle cfg, [MarshalAs(UnmanagedType.U1)] bool server);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_free")]
    internal static partial void qs_endpoint_free(nint ep);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_recv")]
    internal static partial int qs_endpoint_recv(nint ep, ulong nowNs, byte* data, nuint len, nuint segmentSize, QsAddr* from, QsAddr* local);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_recv_buffer")]
    internal static partial int qs_endpoint_recv_buffer(nint ep, nuint minLen, byte** ptr);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_poll_transmit")]
    internal static partial int qs_endpoint_poll_transmit(nint ep, ulong nowNs, byte* buf, nuint cap, nuint maxSegments, QsTransmit* tx);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_timeout")]
    internal static partial long qs_endpoint_timeout(nint ep, ulong nowNs);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_on_timeout")]
    internal static partial int qs_endpoint_on_timeout(nint ep, ulong nowNs);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_poll_event")]
    internal static partial int qs_endpoint_poll_event(nint ep, QsEvent* ev);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_connect")]
    internal static partial int qs_endpoint_connect(nint ep, ulong nowNs, QsAddr* to, byte* serverName, nuint serverNameLen, ulong* conn);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_close_all")]
    internal static partial int qs_endpoint_close_all(nint ep, ulong code, byte* reason, nuint reasonLen);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_stats")]
    internal static partial int qs_endpoint_stats(nint ep, QsEndpointStats* stats);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_connection_count")]
    internal static partial long qs_endpoint_connection_count(nint ep);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_enable_h3")]
    internal static partial int qs_endpoint_enable_h3(nint ep, ulong maxFieldSectionSize);

    [LibraryImport(Library, EntryPoint = "qs_endpoint_set_intake_limits")]
    internal static partial int qs_endpoint_set_intake_limits(nint ep, QsIntakeLimits* limits);

    [LibraryImport(Library, EntryPoint = "qs_conn_authenticated")]
    internal static partial int qs_conn_authenticated(nint ep, ulong conn);

    [LibraryImport(Library, EntryPoint = "qs_h3_send_request")]
    internal static partial int qs_h3_send_request(nint ep, ulong conn, byte* headers, nuint headersLen, [MarshalAs(UnmanagedType.U1)] bool fin, ulong* stream);

    [LibraryImport(Library, EntryPoint = "qs_h3_send_response")]
    internal static partial int qs_h3_send_response(nint ep, ulong conn, ulong stream, byte* headers, nuint headersLen, [MarshalAs(UnmanagedType.U1)] bool fin);

    [LibraryImport(Library, EntryPoint = "qs_h3_send_body")]
    internal static partial long qs_h3_send_body(nint ep, ulong conn, ulong stream, byte* data, nuint len, [MarshalAs(UnmanagedType.U1)] bool fin, ulong* code);

    [LibraryImport(Library, EntryPoint = "qs_h3_send_trailers")]
    internal static partial int qs_h3_send_trailers(nint ep, ulong conn, ulong stream, byte* headers, nuint headersLen);

    [LibraryImport(Library, EntryPoint = "qs_h3_recv_headers")]
    internal static partial long qs_h3_recv_headers(nint ep, ulong conn, ulong stream, [MarshalAs(UnmanagedType.U1)] bool trailers, byte* buf, nuint cap);

    [LibraryImport(Library, EntryPoint = "qs_h3_recv_body")]
    internal static partial long qs_h3_recv_body(nint ep, ulong conn, ulong stream, byte* buf, nuint cap, byte* fin, ulong* code);

    [LibraryImport(Library, EntryPoint = "qs_h3_goaway")]
    internal static partial int qs_h3_goaway(nint ep, ulong conn);

    [LibraryImport(Library, EntryPoint = "qs_h3_stream_release")]
    internal static partial int qs_h3_stream_release(nint ep, ulong conn, ulong stream);

    [LibraryImport(Library, EntryPoint = "qs_h3_error_name")]
    internal static partial long qs_h3_error_name(ulong code, byte* buf, nuint cap);

    [LibraryImport(Library, EntryPoint = "qs_last_error")]
    internal static partial long qs_last_error(byte* buf, nuint cap);

    [LibraryImport(Library, EntryPoint = "qs_version")]
    internal static partial long qs_version(byte* buf, nuint cap);

    [LibraryImport(Library, EntryPoint = "qs_live_objects")]
    internal static partial long qs_live_objects();

    [LibraryImport(Library, EntryPoint = "qs_stream_open")]
    internal static partial int qs_stream_open(nint ep, ulong conn, [MarshalAs(UnmanagedType.U1)] bool unidirectional, ulong* stream);

    [LibraryImport(Library, EntryPoint = "qs_stream_write")]
    internal static partial long qs_stream_write(nint ep, ulong conn, ulong stream, byte* data, nuint len, [MarshalAs(UnmanagedType.U1)] bool fin, ulong* code);

    [LibraryImport(Library, EntryPoint = "qs_stream_read")]
    internal static partial long qs_stream_read(nint ep, ulong conn, ulong stream, byte* buf, nuint cap, byte* fin, ulong* code);

    [LibraryImport(Library, EntryPoint = "qs_stream_finish")]
    internal static partial int qs_stream_finish(nint ep, ulong conn, ulong stream);

    [LibraryImport(Library, EntryPoint = "qs_stream_reset")]
    internal static partial int qs_stream_reset(nint ep, ulong conn, ulong stream, ulong errorCode);

    [LibraryImport(Library, EntryPoint = "qs_stream_stop")]
    internal static partial int qs_stream_stop(nint ep, ulong conn, ulong stream, ulong errorCode);

    // Trust and client authentication (native/src/config.rs, connection.rs).

    [LibraryImport(Library, EntryPoint = "qs_config_add_trusted_root_bundle_pem")]
    internal static partial long qs_config_add_trusted_root_bundle_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_add_pinned_cert_pem")]
    internal static partial int qs_config_add_pinned_cert_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_add_pinned_spki_sha256")]
    internal static partial int qs_config_add_pinned_spki_sha256(QsConfigHandle cfg, byte* hash, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_add_client_root_pem")]
    internal static partial int qs_config_add_client_root_pem(QsConfigHandle cfg, byte* pem, nuint len);

    [LibraryImport(Library, EntryPoint = "qs_config_set_require_client_cert")]
    internal static partial int qs_config_set_require_client_cert(QsConfigHandle cfg, [MarshalAs(UnmanagedType.U1)] bool required);

    [LibraryImport(Library, EntryPoint = "qs_conn_peer_addr")]
    internal static partial int qs_conn_peer_addr(nint ep, ulong conn, QsAddr* addr);

    [LibraryImport(Library, EntryPoint = "qs_conn_peer_certificate")]
    internal static partial long qs_conn_peer_certificate(nint ep, ulong conn, byte* buf, nuint cap);
}
