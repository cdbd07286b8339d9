//! The engine ceiling: one QUIC connection on loopback moving N MiB memory to memory
//! through quiche directly, with no C#, no shim API, no HTTP/3. What QuicSend's
//! one-connection loopback benchmark ("QuicSend BBRv2", GSO/GRO batched I/O) could reach
//! at best with this engine on this machine.
//!
//!   cargo build --release --offline --locked --example raw_quiche
//!   target/release/examples/raw_quiche --cert CERT.pem --key KEY.pem [--mib 512] [--cc bbr2|cubic|reno]
//!       [--no-pacing] [--system-clock] [--verify-all] [--timeout SECONDS]
//!
//! `--cert`/`--key` (or the environment variables RAW_QUICHE_CERT / RAW_QUICHE_KEY) name the
//! server's PEM certificate chain and private key; nothing is generated at run time. The client
//! does not verify the server (verify_peer(false)): this program measures throughput, and a
//! certificate check happens once per connection, outside the timed interval anyway. Any PEM
//! pair quiche (BoringSSL) can load will do, for instance:
//!   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!       -subj /CN=localhost -keyout key.pem -out cert.pem
//! or, from C#, `CertificateTool.IssueServer(CertificateTool.CreateRootCa("Bench Root"),
//! ["localhost"], [IPAddress.Loopback]).Save("cert.pem", "key.pem")` (the P-256 kind the C#
//! benchmark uses), or quiche's own test pair quiche/quiche/examples/cert.crt and cert.key.
//!
//! What it does, kept as close to the product as possible (native/src/config.rs,
//! native/src/endpoint.rs, src/QuicSend/Transport/EndpointDriver.cs and
//! src/QuicSend/Transport/Sockets/LinuxDatagramSocket.cs):
//! - one process, two threads: a server and a client, each a plain event loop over its own
//!   non-blocking UDP socket on 127.0.0.1, sleeping in ppoll() until the socket is readable,
//!   the engine's timer (`conn.timeout()`) or a held batch's release time;
//! - the client opens one bidirectional stream and writes `--mib` MiB of a known pattern, then
//!   FIN; the server reads and discards, checking the length (exactly N MiB, else a loud failure)
//!   and a few bytes of every read against the pattern (`--verify-all`: every byte), then answers
//!   with one byte and FIN; the client stops the clock when that byte arrives. As in the C#
//!   benchmark, the timed interval starts once the handshake is complete on the client, and the
//!   CPU time (getrusage(RUSAGE_SELF): user + system, both threads) covers that same interval;
//! - the product's transport settings: ALPN "quicsend", 30 s idle timeout, 100 streams each way,
//!   windows 32 MiB per stream / 64 MiB per connection (no auto-tuning beyond them), 1452-byte
//!   UDP payloads, no active migration, no GREASE, pacing on, BBRv2 (`Bbr2Gcongestion`) with the
//!   2 % loss threshold by default, or CUBIC / Reno;
//! - the product's I/O: sockets with 8 MiB buffers (SO_*BUFFORCE, silently kept at the system size
//!   when not permitted), IP_PMTUDISC_PROBE, UDP_GRO on; receives with recvmsg into a 64 KiB buffer,
//!   split by the GRO segment size, up to 64 recvmsg per turn; sends batched as the shim batches
//!   them: consecutive datagrams to one destination, all full-sized but the last, at most 64 and
//!   65000 bytes, whose release times lie within quiche's release horizon
//!   (`max_release_into_future()`) of the first, one sendmsg with a UDP_SEGMENT cmsg per batch,
//!   up to 256 batches per turn; a datagram that does not fit the batch waits for the next one;
//! - the product's pacing: a batch whose first datagram's release time (`SendInfo.at`) is more
//!   than 50 µs away is held, and the loop sleeps (timer slack 1 ns) until then before sending it;
//! - the product's clock: the shim gives quiche one time per driving call through the patched
//!   `quiche::set_now` (build/patches/quiche-0.26.1-clock.patch); so does this program, reading
//!   the monotonic clock (`Instant::now()`) before each recvmsg'd batch, each transmit batch, the
//!   timer check and the application step. `--system-clock` leaves the override unset instead, so
//!   quiche reads `Instant::now()` itself wherever it needs the time (the patch's default).
//!
//! What the product does and this program does not: route datagrams by connection ID, keep an
//! event queue, hop between user threads and the driver thread (posted commands, eventfd
//! wake-ups, async completions), copy through the C ABI, and verify the server's certificate
//! once after the handshake. The difference between the two figures is what those cost.
//!
//! The last line of output is machine-readable, for the C# benchmark to parse:
//!   RESULT bytes=536870912 seconds=1.2340 mibs=414.9 cpu_seconds=2.3450 cpu_s_per_gib=4.690 cc=bbr2 lost=0
//! (space-separated key=value pairs; `lost` is the client's lost-packet count). Failures go to
//! stderr as "raw_quiche: FAILED: ..." and no RESULT line is printed.
//! The exit status is 0 on success, 1 when the transfer failed or delivered wrong data, 2 on
//! bad arguments.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The product's largest UDP payload (QsConfig::max_udp_payload).
const MAX_UDP_PAYLOAD: usize = 1452;
/// One GSO send: at most 64 KiB of UDP payload (EndpointDriver.TransmitCapacity).
const TX_CAPACITY: usize = 65000;
/// Receive buffer: one GRO batch (EndpointDriver.BufferSize).
const RX_BUFFER: usize = 1 << 16;
/// The kernel's UDP_MAX_SEGMENTS, as the product uses it.
const MAX_GSO_SEGMENTS: usize = 64;
/// A batch due sooner than this goes out at once (EndpointDriver.PacingSlackNs).
const PACING_SLACK: Duration = Duration::from_micros(50);
/// recvmsg calls per turn before sending again (EndpointDriver.ReceiveBatch).
const RECEIVE_BATCH: usize = 64;
/// Batches per flush before letting receives in (EndpointDriver.TransmitBatch).
const TRANSMIT_BATCH: usize = 256;
/// Kernel socket buffers (QuicEndpointOptions.SocketBufferSize).
const SOCKET_BUFFER: libc::c_int = 8 << 20;
/// Connection ID length (the shim's CID_LEN).
const CID_LEN: usize = 16;
/// The longest a loop sleeps at once, so a failure on the other thread stops this one soon.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// The stream the client opens: its first bidirectional one.
const STREAM: u64 = 0;
/// The client's read buffer and the server's (the C# benchmark drains with 1 MiB reads).
const READ_BUFFER: usize = 1 << 20;
/// Length of the repeating pattern the client sends; odd, so that it never lines up with
/// packet or buffer sizes and a misplaced chunk shows.
const PATTERN_LEN: usize = (1 << 20) + 9;

// Linux UDP socket options (linux/udp.h), named here since not every libc target has them.
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;

fn main() {
    let opts = match Options::parse() {
        Ok(o) => o,
        Err(msg) if msg == "help" => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("raw_quiche: {msg}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(()) => {}
        Err(msg) => {
            eprintln!("raw_quiche: FAILED: {msg}");
            std::process::exit(1);
        }
    }
}

const USAGE: &str = "usage: raw_quiche --cert CERT.pem --key KEY.pem [--mib N] [--cc bbr2|cubic|reno] \
[--no-pacing] [--system-clock] [--verify-all] [--timeout SECONDS]
  --cert, --key    the server's PEM certificate chain and private key (else $RAW_QUICHE_CERT, $RAW_QUICHE_KEY)
  --mib N          MiB to move client -> server (default 512)
  --cc NAME        congestion controller: bbr2 (default), cubic or reno
  --no-pacing      turn quiche's pacing off (the product paces by default)
  --system-clock   let quiche read Instant::now() itself instead of one time per driving call
  --verify-all     check every received byte against the pattern, not a few per read
  --timeout S      give up after S seconds (default 120)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cc {
    Bbr2,
    Cubic,
    Reno,
}

impl Cc {
    fn name(self) -> &'static str {
        match self {
            Cc::Bbr2 => "bbr2",
            Cc::Cubic => "cubic",
            Cc::Reno => "reno",
        }
    }
}

struct Options {
    mib: u64,
    cc: Cc,
    cert: String,
    key: String,
    pacing: bool,
    system_clock: bool,
    verify_all: bool,
    timeout: Duration,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut mib = 512u64;
        let mut cc = Cc::Bbr2;
        let mut cert = std::env::var("RAW_QUICHE_CERT").ok();
        let mut key = std::env::var("RAW_QUICHE_KEY").ok();
        let mut pacing = true;
        let mut system_clock = false;
        let mut verify_all = false;
        let mut timeout = Duration::from_secs(120);
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "--mib" => {
                    let v = value("--mib")?;
                    mib = v.parse().ok().filter(|&n| n >= 1).ok_or_else(|| format!("--mib {v}: need a whole number of MiB, at least 1"))?;
                }
                "--cc" => {
                    cc = match value("--cc")?.to_ascii_lowercase().as_str() {
                        "bbr2" | "bbr" | "bbrv2" => Cc::Bbr2,
                        "cubic" => Cc::Cubic,
                        "reno" => Cc::Reno,
                        other => return Err(format!("--cc {other}: use bbr2, cubic or reno")),
                    }
                }
                "--cert" => cert = Some(value("--cert")?),
                "--key" => key = Some(value("--key")?),
                "--no-pacing" => pacing = false,
                "--system-clock" => system_clock = true,
                "--verify-all" => verify_all = true,
                "--timeout" => {
                    let v = value("--timeout")?;
                    let s: f64 = v.parse().ok().filter(|s: &f64| *s > 0.0).ok_or_else(|| format!("--timeout {v}: need seconds > 0"))?;
                    timeout = Duration::from_secs_f64(s);
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown option {other}")),
            }
        }
        let cert = cert.ok_or("no certificate: give --cert PATH (or set RAW_QUICHE_CERT)")?;
        let key = key.ok_or("no private key: give --key PATH (or set RAW_QUICHE_KEY)")?;
        for (what, p) in [("certificate", &cert), ("private key", &key)] {
            if !std::path::Path::new(p).is_file() {
                return Err(format!("{what} file {p} does not exist"));
            }
        }
        Ok(Options { mib, cc, cert, key, pacing, system_clock, verify_all, timeout })
    }
}

/// quiche's configuration as the shim builds it from its defaults (native/src/config.rs).
fn engine_config(opts: &Options, server: bool) -> Result<quiche::Config, String> {
    let mut q = quiche::Config::new(quiche::PROTOCOL_VERSION).map_err(|e| format!("quiche config: {e}"))?;
    q.set_application_protos_wire_format(b"\x08quicsend").map_err(|e| format!("ALPN: {e}"))?;
    q.set_max_idle_timeout(30_000);
    q.set_initial_max_streams_bidi(100);
    q.set_initial_max_streams_uni(100);
    let stream_window = 32u64 << 20;
    let conn_window = 64u64 << 20;
    q.set_initial_max_stream_data_bidi_local(stream_window);
    q.set_initial_max_stream_data_bidi_remote(stream_window);
    q.set_initial_max_stream_data_uni(stream_window);
    q.set_initial_max_data(conn_window);
    q.set_max_stream_window(stream_window);
    q.set_max_connection_window(conn_window);
    q.set_cc_algorithm(match opts.cc {
        Cc::Bbr2 => quiche::CongestionControlAlgorithm::Bbr2Gcongestion,
        Cc::Cubic => quiche::CongestionControlAlgorithm::CUBIC,
        Cc::Reno => quiche::CongestionControlAlgorithm::Reno,
    });
    if opts.cc == Cc::Bbr2 {
        q.set_custom_bbr_params(quiche::BbrParams { loss_threshold: Some(0.02), ..Default::default() });
    }
    q.enable_pacing(opts.pacing);
    q.set_max_recv_udp_payload_size(MAX_UDP_PAYLOAD);
    q.set_max_send_udp_payload_size(MAX_UDP_PAYLOAD);
    q.set_disable_active_migration(true);
    q.grease(false);
    if server {
        q.load_cert_chain_from_pem_file(&opts.cert).map_err(|e| format!("certificate chain {}: {e}", opts.cert))?;
        q.load_priv_key_from_pem_file(&opts.key).map_err(|e| format!("private key {}: {e}", opts.key))?;
    }
    // The client trusts whatever the server presents: a throughput program, not a secure client.
    q.verify_peer(false);
    Ok(q)
}

/// The byte at stream offset `i` is `pattern[i % PATTERN_LEN]`.
fn make_pattern() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..PATTERN_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn random_cid() -> [u8; CID_LEN] {
    let mut cid = [0u8; CID_LEN];
    // SAFETY: writes at most CID_LEN bytes into cid.
    let n = unsafe { libc::getrandom(cid.as_mut_ptr().cast(), CID_LEN, 0) };
    if n != CID_LEN as isize {
        // Uniqueness is all that matters on a private loopback connection.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
            ^ u128::from(std::process::id());
        cid.copy_from_slice(&t.to_le_bytes()[..CID_LEN]);
    }
    cid
}

/// The time of the next piece of work: read once, and (unless --system-clock) handed to quiche
/// as the time of every clock read it makes on this thread until the next tick, as the shim does.
fn tick(system_clock: bool) -> Instant {
    let now = Instant::now();
    if !system_clock {
        quiche::set_now(Some(now));
    }
    now
}

/// Process CPU time (every thread), user + system.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// UDP with segmentation offload (as LinuxDatagramSocket does it)

#[derive(Default, Clone, Copy)]
struct IoCounts {
    sendmsg: u64,
    datagrams_sent: u64,
    recvmsg: u64,
    datagrams_received: u64,
    /// Batches held back for pacing (due more than PACING_SLACK later).
    held: u64,
}

struct Udp {
    /// Owns the descriptor: the socket stays open as long as this does.
    _sock: UdpSocket,
    fd: RawFd,
    local: SocketAddr,
    max_segments: usize,
    counts: IoCounts,
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: passes a pointer to one c_int and its size.
    unsafe { libc::setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), size_of::<libc::c_int>() as libc::socklen_t) == 0 }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn to_sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Control-message buffer, aligned for cmsghdr.
#[repr(C, align(8))]
struct Control([u8; 64]);

impl Udp {
    fn open(addr: SocketAddr) -> Result<Udp, String> {
        let sock = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        sock.set_nonblocking(true).map_err(|e| format!("non-blocking socket: {e}"))?;
        let fd = sock.as_raw_fd();
        let local = sock.local_addr().map_err(|e| format!("local address: {e}"))?;
        // As root the buffers may exceed net.core.rmem_max; elsewhere this fails quietly, as in the product.
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER);
        set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER);
        // Never fragment: quiche discovers the path MTU itself.
        if local.is_ipv6() {
            set_int(fd, libc::SOL_IPV6, libc::IPV6_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE);
        }
        set_int(fd, libc::SOL_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE);
        let gro = set_int(fd, SOL_UDP, UDP_GRO, 1);
        // UDP_SEGMENT as a socket option succeeds exactly when the kernel supports GSO.
        let max_segments = if set_int(fd, SOL_UDP, UDP_SEGMENT, 0) { MAX_GSO_SEGMENTS } else { 1 };
        if !gro || max_segments == 1 {
            eprintln!("raw_quiche: note: this kernel lacks {}", if gro { "UDP GSO" } else { "UDP GRO" });
        }
        Ok(Udp { _sock: sock, fd, local, max_segments, counts: IoCounts::default() })
    }

    /// Sleeps until the socket is readable or `timeout` has passed (no timeout: until readable).
    fn wait(&self, timeout: Option<Duration>) {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        let ts = timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as libc::c_long });
        let tp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: one valid pollfd; tp is null or points at ts, which outlives the call.
        unsafe { libc::ppoll(&mut pfd, 1, tp, std::ptr::null()) };
    }

    /// Receives one datagram or GRO batch into `buf`: (length, segment size, sender), None when
    /// nothing is waiting. A segment size of 0 means one datagram.
    fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, usize, SocketAddr)> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let mut control = Control([0; 64]);
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        let n = loop {
            // SAFETY: msg describes valid buffers.
            let n = unsafe { libc::recvmsg(self.fd, &mut msg, libc::MSG_DONTWAIT) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            break n;
        };
        if n < 0 {
            return None; // EAGAIN, or a queued ICMP error: nothing to feed either way
        }
        let n = n as usize;
        let mut segment = 0usize;
        // SAFETY: walking the control messages the kernel wrote, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    segment = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>()) as usize;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        self.counts.recvmsg += 1;
        self.counts.datagrams_received += if segment == 0 || n == 0 { 1 } else { n.div_ceil(segment) as u64 };
        let from = from_sockaddr(&name)?;
        Some((n, segment, from))
    }

    /// Sends `data`: one datagram, or (segment < len) a batch of `segment`-sized ones with GSO.
    fn send(&mut self, data: &[u8], to: &SocketAddr, segment: usize) {
        let (name, name_len) = to_sockaddr(to);
        if segment < data.len() && self.max_segments > 1 {
            if self.send_one(data, &name, name_len, segment) {
                self.counts.datagrams_sent += data.len().div_ceil(segment) as u64;
                return;
            }
            // The path refused the batch (no GSO on this route): datagram by datagram from now on.
            eprintln!("raw_quiche: note: a GSO send failed (errno {}); sending datagram by datagram", errno());
            self.max_segments = 1;
        }
        for chunk in data.chunks(segment.max(1)) {
            self.send_one(chunk, &name, name_len, 0);
            self.counts.datagrams_sent += 1;
        }
    }

    fn send_one(&mut self, data: &[u8], name: &libc::sockaddr_storage, name_len: libc::socklen_t, gso: usize) -> bool {
        let mut control = Control([0; 64]);
        let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (name as *const libc::sockaddr_storage) as *mut libc::c_void;
        msg.msg_namelen = name_len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if gso > 0 {
            // SAFETY: the control buffer has room for one cmsg carrying a u16 (CMSG_SPACE(2) = 24).
            unsafe {
                msg.msg_control = control.0.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as _;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), gso as u16);
            }
        }
        loop {
            // SAFETY: msg describes valid buffers.
            if unsafe { libc::sendmsg(self.fd, &msg, 0) } >= 0 {
                self.counts.sendmsg += 1;
                return true;
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => {
                    // Socket buffer full: wait for room rather than drop what congestion control allowed.
                    let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLOUT, revents: 0 };
                    let ts = libc::timespec { tv_sec: 0, tv_nsec: 50_000_000 };
                    // SAFETY: one valid pollfd and timespec.
                    unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
                }
                // A GSO batch the route cannot take: the caller falls back. Anything else is a lost
                // datagram, which QUIC recovers like any other loss.
                e => return !(gso > 0 && (e == libc::EIO || e == libc::EINVAL || e == libc::EMSGSIZE)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The event loop (as EndpointDriver and the shim's poll_transmit do it)

/// A datagram the previous batch could not take, kept for the next one.
struct Stash {
    to: SocketAddr,
    at: Instant,
    len: usize,
}

/// One batch in `tx[..len]`, to leave at `at`.
struct Batch {
    to: SocketAddr,
    at: Instant,
    len: usize,
    segment: usize,
}

/// What runs on top of the connection: the client's writer or the server's reader.
trait App {
    /// Called every turn once a connection exists; Err ends the run with that failure.
    fn step(&mut self, conn: &mut quiche::Connection) -> Result<(), String>;
    /// True once this side needs nothing more from the loop.
    fn finished(&self, conn: &quiche::Connection) -> bool;
}

struct Driver {
    udp: Udp,
    conn: Option<quiche::Connection>,
    config: quiche::Config,
    server: bool,
    system_clock: bool,
    tx: Vec<u8>,
    rx: Vec<u8>,
    stash: Option<Stash>,
    stash_buf: Vec<u8>,
    held: Option<Batch>,
    more_to_send: bool,
}

impl Driver {
    fn tick(&self) -> Instant {
        tick(self.system_clock)
    }

    fn run(&mut self, app: &mut dyn App, abort: &AtomicBool, deadline: Instant) -> Result<(), String> {
        let side = if self.server { "server" } else { "client" };
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err(format!("{side}: stopped: the other side failed"));
            }
            let now = self.tick();
            if now >= deadline {
                return Err(format!("{side}: no result within the time limit (--timeout)"));
            }
            // How long to sleep: not at all with work waiting; else until the engine's timer or
            // the held batch's release time, whichever is first.
            let mut wait = if self.more_to_send { Some(Duration::ZERO) } else { self.conn.as_ref().and_then(|c| c.timeout()) };
            if let Some(h) = &self.held {
                let until = h.at.saturating_duration_since(now);
                wait = Some(wait.map_or(until, |w| w.min(until)));
            }
            let wait = wait.unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
            if !wait.is_zero() {
                self.udp.wait(Some(wait));
            }
            self.receive();
            if let Some(c) = self.conn.as_mut() {
                tick(self.system_clock);
                if c.timeout() == Some(Duration::ZERO) {
                    c.on_timeout();
                }
                tick(self.system_clock);
                app.step(c)?;
            }
            self.flush();
            let Some(c) = self.conn.as_ref() else { continue };
            if app.finished(c) && self.held.is_none() && !self.more_to_send {
                return Ok(());
            }
            if c.is_closed() {
                return match c.peer_error().or(c.local_error()) {
                    Some(e) if !app.finished(c) => Err(format!(
                        "{side}: connection closed before the end: error 0x{:x} ({}) {}",
                        e.error_code,
                        if e.is_app { "application" } else { "transport" },
                        String::from_utf8_lossy(&e.reason)
                    )),
                    _ if !app.finished(c) => Err(format!("{side}: connection closed before the end (idle timeout: {})", c.is_timed_out())),
                    _ => Ok(()),
                };
            }
        }
    }

    /// Feeds what the socket holds to the engine, up to RECEIVE_BATCH recvmsg calls.
    fn receive(&mut self) {
        for _ in 0..RECEIVE_BATCH {
            let Some((len, segment, from)) = self.udp.recv(&mut self.rx) else { return };
            if len == 0 {
                continue;
            }
            self.tick();
            let local = self.udp.local;
            let seg = if segment == 0 { len } else { segment };
            for chunk in self.rx[..len].chunks_mut(seg) {
                if self.conn.is_none() {
                    if !self.server {
                        continue;
                    }
                    // The first client Initial makes the connection; anything else is dropped.
                    let Ok(hdr) = quiche::Header::from_slice(chunk, CID_LEN) else { continue };
                    if hdr.ty != quiche::Type::Initial || chunk.len() < quiche::MIN_CLIENT_INITIAL_LEN {
                        continue;
                    }
                    let scid = random_cid();
                    match quiche::accept(&quiche::ConnectionId::from_ref(&scid), None, local, from, &mut self.config) {
                        Ok(c) => self.conn = Some(c),
                        Err(e) => {
                            eprintln!("raw_quiche: server: accept failed: {e}");
                            continue;
                        }
                    }
                }
                if let Some(c) = self.conn.as_mut() {
                    // Errors here are the peer's: quiche drops a bad packet or closes by itself.
                    let _ = c.recv(chunk, quiche::RecvInfo { from, to: local });
                }
            }
        }
    }

    /// Sends what the engine has, up to TRANSMIT_BATCH batches; holds a batch that is due later.
    fn flush(&mut self) {
        if let Some(h) = &self.held {
            if Instant::now() < h.at {
                self.more_to_send = false;
                return;
            }
            let h = self.held.take().expect("held batch");
            self.udp.send(&self.tx[..h.len], &h.to, h.segment);
        }
        for _ in 0..TRANSMIT_BATCH {
            let now = self.tick();
            let Some(b) = self.next_batch() else {
                self.more_to_send = false;
                return;
            };
            if b.at.saturating_duration_since(now) > PACING_SLACK {
                self.held = Some(b);
                self.udp.counts.held += 1;
                self.more_to_send = false;
                return;
            }
            self.udp.send(&self.tx[..b.len], &b.to, b.segment);
        }
        self.more_to_send = true;
    }

    /// Fills `tx` with one batch for one GSO send, exactly as the shim's `fill` does:
    /// consecutive datagrams to one destination, every one but the last full-sized, at most
    /// max_segments of them and TX_CAPACITY bytes, whose release times lie within quiche's
    /// release horizon of the first. The batch leaves at its first datagram's time.
    fn next_batch(&mut self) -> Option<Batch> {
        let mut len = 0usize;
        let mut segment = 0usize;
        let mut first: Option<(SocketAddr, Instant)> = None;
        if let Some(s) = self.stash.take() {
            self.tx[..s.len].copy_from_slice(&self.stash_buf[..s.len]);
            len = s.len;
            segment = s.len;
            first = Some((s.to, s.at));
        }
        let Some(c) = self.conn.as_mut() else {
            return first.map(|(to, at)| Batch { to, at, len, segment });
        };
        let horizon = c.max_release_into_future();
        let max_dgram = c.max_send_udp_payload_size().max(1200);
        let max_segments = self.udp.max_segments;
        let cap = self.tx.len().min(TX_CAPACITY);
        loop {
            // A short datagram ends a batch (only the last may be shorter), and so does the limit.
            if segment > 0 && (segment < max_dgram || !len.is_multiple_of(segment) || len / segment >= max_segments) {
                break;
            }
            let room = if segment == 0 { max_dgram } else { segment };
            if len + room > cap {
                break;
            }
            match c.send(&mut self.tx[len..len + room]) {
                Ok((n, info)) => match first {
                    None => {
                        segment = n;
                        len = n;
                        first = Some((info.to, info.at));
                    }
                    Some((to, at)) if to == info.to && info.at <= at + horizon && n <= segment => len += n,
                    Some(_) => {
                        // Another destination, size or a later release time: keep it for the next batch.
                        self.stash_buf[..n].copy_from_slice(&self.tx[len..len + n]);
                        self.stash = Some(Stash { to: info.to, at: info.at, len: n });
                        break;
                    }
                },
                Err(_) => break, // Done, or a failure the connection's state now shows
            }
        }
        first.map(|(to, at)| Batch { to, at, len, segment: segment.min(len) })
    }
}

fn new_driver(opts: &Options, server: bool, bind: SocketAddr) -> Result<Driver, String> {
    Ok(Driver {
        udp: Udp::open(bind)?,
        conn: None,
        config: engine_config(opts, server)?,
        server,
        system_clock: opts.system_clock,
        tx: vec![0u8; RX_BUFFER],
        rx: vec![0u8; RX_BUFFER],
        stash: None,
        stash_buf: vec![0u8; RX_BUFFER],
        held: None,
        more_to_send: false,
    })
}

// ---------------------------------------------------------------------------------------------
// The two ends

/// Writes `total` bytes of the pattern on one stream, then FIN; times until the server's reply.
struct Writer {
    pattern: Arc<Vec<u8>>,
    total: u64,
    sent: u64,
    fin_sent: bool,
    started: Option<(Instant, Duration)>,
    result: Option<(Duration, Duration)>,
    buf: Vec<u8>,
    closed: bool,
}

impl App for Writer {
    fn step(&mut self, conn: &mut quiche::Connection) -> Result<(), String> {
        if !conn.is_established() || self.closed {
            return Ok(());
        }
        if self.started.is_none() {
            self.started = Some((Instant::now(), cpu_time()));
        }
        while !self.fin_sent {
            let off = (self.sent % PATTERN_LEN as u64) as usize;
            let n = (PATTERN_LEN - off).min((self.total - self.sent).min(usize::MAX as u64) as usize);
            let last = self.sent + n as u64 == self.total;
            match conn.stream_send(STREAM, &self.pattern[off..off + n], last) {
                Ok(w) => {
                    self.sent += w as u64;
                    self.fin_sent = last && w == n;
                    if w < n {
                        break; // flow control or congestion window: more after the next acks
                    }
                }
                Err(quiche::Error::Done) => break,
                Err(e) => return Err(format!("client: stream_send: {e}")),
            }
        }
        if conn.stream_readable(STREAM) {
            loop {
                match conn.stream_recv(STREAM, &mut self.buf) {
                    Ok((_, fin)) => {
                        if fin {
                            let (t0, cpu0) = self.started.expect("started");
                            self.result = Some((t0.elapsed(), cpu_time().saturating_sub(cpu0)));
                            let _ = conn.close(true, 0, b"done");
                            self.closed = true;
                            break;
                        }
                    }
                    Err(quiche::Error::Done) => break,
                    Err(e) => return Err(format!("client: reading the server's reply: {e}")),
                }
            }
        }
        Ok(())
    }

    fn finished(&self, _conn: &quiche::Connection) -> bool {
        self.closed
    }
}

/// Reads and discards the stream, checking length and content; answers with one byte and FIN.
struct Reader {
    pattern: Arc<Vec<u8>>,
    total: u64,
    received: u64,
    verify_all: bool,
    fin: bool,
    replied: bool,
    buf: Vec<u8>,
    reads: u64,
}

impl Reader {
    fn check(&self, data: &[u8]) -> Result<(), String> {
        let p = &self.pattern;
        let base = self.received;
        let at = |i: usize| p[((base + i as u64) % PATTERN_LEN as u64) as usize];
        let bad = |i: usize| {
            format!(
                "server: CONTENT MISMATCH at stream offset {}: got 0x{:02x}, expected 0x{:02x}",
                base + i as u64,
                data[i],
                at(i)
            )
        };
        if self.verify_all {
            let mut i = 0;
            while i < data.len() {
                let off = ((base + i as u64) % PATTERN_LEN as u64) as usize;
                let n = (PATTERN_LEN - off).min(data.len() - i);
                if data[i..i + n] != p[off..off + n] {
                    let j = (0..n).find(|&j| data[i + j] != p[off + j]).unwrap_or(0);
                    return Err(bad(i + j));
                }
                i += n;
            }
        } else if !data.is_empty() {
            // The first, the last and one in between that moves from read to read.
            let mid = (self.reads as usize).wrapping_mul(7919) % data.len();
            for i in [0, mid, data.len() - 1] {
                if data[i] != at(i) {
                    return Err(bad(i));
                }
            }
        }
        Ok(())
    }
}

impl App for Reader {
    fn step(&mut self, conn: &mut quiche::Connection) -> Result<(), String> {
        for sid in conn.readable() {
            if sid != STREAM {
                return Err(format!("server: unexpected stream {sid}"));
            }
            while !self.fin {
                let mut buf = std::mem::take(&mut self.buf);
                let r = conn.stream_recv(sid, &mut buf);
                let r = match r {
                    Ok((n, fin)) => {
                        let checked = self.check(&buf[..n]);
                        self.buf = buf;
                        checked?;
                        self.received += n as u64;
                        self.reads += 1;
                        if self.received > self.total {
                            return Err(format!("server: BYTE COUNT WRONG: received {} bytes, more than the {} sent", self.received, self.total));
                        }
                        if fin {
                            if self.received != self.total {
                                return Err(format!("server: BYTE COUNT WRONG: FIN after {} bytes, expected {}", self.received, self.total));
                            }
                            self.fin = true;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.buf = buf;
                        Err(e)
                    }
                };
                match r {
                    Ok(()) => {}
                    Err(quiche::Error::Done) => break,
                    Err(e) => return Err(format!("server: stream_recv: {e}")),
                }
            }
        }
        if self.fin && !self.replied {
            match conn.stream_send(STREAM, &[1], true) {
                Ok(1) => self.replied = true,
                Ok(_) | Err(quiche::Error::Done) => {} // no room yet: next turn
                Err(e) => return Err(format!("server: sending the reply: {e}")),
            }
        }
        Ok(())
    }

    fn finished(&self, conn: &quiche::Connection) -> bool {
        // Done once the client has closed: its close ends the server's connection too.
        self.replied && (conn.is_closed() || conn.is_draining())
    }
}

// ---------------------------------------------------------------------------------------------

fn run(opts: &Options) -> Result<(), String> {
    let total = opts.mib << 20;
    let pattern = Arc::new(make_pattern());
    let abort = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + opts.timeout;

    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut server = new_driver(opts, true, loopback)?;
    let mut client = new_driver(opts, false, loopback)?;
    let server_addr = server.udp.local;
    let max_segments = client.udp.max_segments;

    let server_thread = {
        let (pattern, abort) = (pattern.clone(), abort.clone());
        let verify_all = opts.verify_all;
        std::thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                set_timer_slack();
                let mut app =
                    Reader { pattern, total, received: 0, verify_all, fin: false, replied: false, buf: vec![0u8; READ_BUFFER], reads: 0 };
                let r = server.run(&mut app, &abort, deadline);
                if r.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                let stats = server.conn.as_ref().map(|c| c.stats());
                r.map(|()| (app.received, server.udp.counts, stats))
            })
            .map_err(|e| format!("server thread: {e}"))?
    };
    let client_thread = {
        let abort = abort.clone();
        std::thread::Builder::new()
            .name("client".into())
            .spawn(move || -> Result<_, String> {
                set_timer_slack();
                let scid = random_cid();
                client.tick();
                let conn = quiche::connect(
                    Some("localhost"),
                    &quiche::ConnectionId::from_ref(&scid),
                    client.udp.local,
                    server_addr,
                    &mut client.config,
                )
                .map_err(|e| format!("client: connect: {e}"))?;
                client.conn = Some(conn);
                let mut app = Writer {
                    pattern,
                    total,
                    sent: 0,
                    fin_sent: false,
                    started: None,
                    result: None,
                    buf: vec![0u8; READ_BUFFER],
                    closed: false,
                };
                let r = client.run(&mut app, &abort, deadline);
                if r.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                r?;
                let conn = client.conn.as_ref().expect("connection");
                let rtt = conn.path_stats().next().map(|p| p.rtt);
                let (wall, cpu) = app.result.ok_or("client: finished without a result")?;
                Ok((wall, cpu, client.udp.counts, conn.stats(), rtt))
            })
            .map_err(|e| format!("client thread: {e}"))?
    };
    let client_result = client_thread.join().map_err(|_| "client thread panicked".to_string());
    let server_result = server_thread.join().map_err(|_| "server thread panicked".to_string());
    // The server's failure (wrong bytes) is the cause when both failed.
    let (received, server_io, server_stats) = server_result??;
    let (wall, cpu, client_io, client_stats, rtt) = client_result??;
    if received != total {
        return Err(format!("BYTE COUNT WRONG: server received {received} bytes, expected {total}"));
    }

    let secs = wall.as_secs_f64();
    let mibs = total as f64 / 1048576.0 / secs;
    let cpu_s = cpu.as_secs_f64();
    let cpu_per_gib = cpu_s / (total as f64 / 1073741824.0);
    let per_send = |io: &IoCounts| io.datagrams_sent as f64 / io.sendmsg.max(1) as f64;
    let per_recv = |io: &IoCounts| io.datagrams_received as f64 / io.recvmsg.max(1) as f64;
    println!(
        "raw quiche, {} {}{}, GSO {} / GRO: {} MiB client -> server in {:.3} s = {:.1} MiB/s, CPU {:.3} s ({:.2} s/GiB)",
        opts.cc.name(),
        if opts.pacing { "paced" } else { "unpaced" },
        if opts.system_clock { ", system clock" } else { "" },
        max_segments,
        opts.mib,
        secs,
        mibs,
        cpu_s,
        cpu_per_gib,
    );
    if let Some(s) = server_stats {
        println!(
            "  client: {} packets sent, {} lost, {} retransmitted, rtt {:?}; {:.1} datagrams per sendmsg, {:.1} per recvmsg, \
             {} batches held for pacing; server: {} packets sent (acks), {} received; {:.1} datagrams per sendmsg, {:.1} per recvmsg",
            client_stats.sent,
            client_stats.lost,
            client_stats.retrans,
            rtt.unwrap_or_default(),
            per_send(&client_io),
            per_recv(&client_io),
            client_io.held,
            s.sent,
            s.recv,
            per_send(&server_io),
            per_recv(&server_io),
        );
    }
    println!(
        "RESULT bytes={total} seconds={secs:.4} mibs={mibs:.1} cpu_seconds={cpu_s:.4} cpu_s_per_gib={cpu_per_gib:.3} cc={} lost={}",
        opts.cc.name(),
        client_stats.lost
    );
    Ok(())
}

/// The product's driver asks for no timer slack, so paced wake-ups are not 50 µs late.
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer; failing leaves the default slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
}
