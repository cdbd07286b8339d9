// What differs between the engines this benchmark is built against: today's (quiche) and, for
// benchmarks/compare-engines.sh, the quinn-proto engine of commit 2ec6b87 (built with
// -p:QuicSendEngine=quinn-proto, which defines QUINN_PROTO_ENGINE). Everything else is shared.
using QuicSend.Transport;

static class Engine
{
#if QUINN_PROTO_ENGINE
    public const string Name = "quinn-proto (2ec6b87)";
    public const string Bbr = "BBR v1";
    public const CongestionControl BbrControl = CongestionControl.Bbr;
    public const string Reno = "NewReno";
    public const CongestionControl RenoControl = CongestionControl.NewReno;
    /// <summary>quinn-proto always paces; that engine has no switch to turn it off.</summary>
    public const bool HasPacingSwitch = false;
    public static void SetPacing(QuicEndpointOptions o, bool on) { }
#else
    public const string Name = "quiche 0.26.1";
    public const string Bbr = "BBRv2";
    public const CongestionControl BbrControl = CongestionControl.Bbr2;
    public const string Reno = "Reno";
    public const CongestionControl RenoControl = CongestionControl.Reno;
    public const bool HasPacingSwitch = true;
    public static void SetPacing(QuicEndpointOptions o, bool on) => o.Pacing = on;
#endif
}
