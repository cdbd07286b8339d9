//! A client and a server endpoint of the shim driven against each other in one
//! process, datagrams handed over in memory: the C ABI exactly as the C# driver uses it,
//! but on a virtual clock, so timers (loss probes, idle timeouts) cost no real waiting.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use quicsend_native::addr::QsAddr;
use quicsend_native::config::*;
use quicsend_native::connection::*;
use quicsend_native::endpoint::*;
use quicsend_native::error::*;
use quicsend_native::events::*;
use quicsend_native::h3api::*;
use quicsend_native::intake::*;
use quicsend_native::stream::*;
use quicsend_native::trust::QS_REFUSED;

fn openssl(args: &[&str], dir: &std::path::Path) {
    let ok = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs").status.success();
    assert!(ok, "openssl {args:?}");
}

/// A root and a server certificate for "localhost", made with openssl in a temporary folder.
fn pki() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("qs-pair-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=root", "-days", "2"], &dir);
    openssl(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], &dir);
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(&["x509", "-req", "-in", "server.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext"], &dir);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let r = (read("root.pem"), read("server.pem"), read("server.key"));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// One-way delay of the in-memory link: RTTs are 2 x this, so the engine's RTT,
/// pacing and loss timers see a real path, not zero.
const LATENCY: u64 = 5 * MS;
const MS: u64 = 1_000_000;
/// The virtual clock's start: any epoch will do, so not zero.
const START: u64 = 1_000_000 * MS;

/// Decides whether a datagram is lost: (towards the server, its index in that direction, its bytes).
type Loss = Box<dyn FnMut(bool, usize, &[u8]) -> bool>;

/// A client and a server endpoint on a virtual clock, joined by a lossless in-memory
/// link of LATENCY each way unless `loss` drops a datagram. Time stands still while
/// there is work, then jumps to the next deadline (a datagram's arrival or a timer).
struct Pair {
    client: *mut QsEndpoint,
    server: *mut QsEndpoint,
    caddr: QsAddr,
    saddr: QsAddr,
    /// Virtual time, nanoseconds.
    now: u64,
    /// Datagrams on the link by (arrival, sequence): towards the server?, bytes.
    link: BTreeMap<(u64, u64), (bool, Vec<u8>)>,
    seq: u64,
    /// Datagrams sent so far, [towards the server, towards the client].
    sent: [usize; 2],
    /// Datagrams lost, as (towards the server, index in that direction).
    lost: Vec<(bool, usize)>,
    loss: Loss,
    /// When each side [client, server] last sent or received a datagram.
    last_activity: [u64; 2],
    buf: Vec<u8>,
    /// One-way delay, nanoseconds.
    latency: u64,
    /// A bottleneck each way (see `Pair::bottleneck`): nanoseconds per byte, 0 for none.
    ns_per_byte: f64,
    /// Bytes that may wait for the bottleneck before arrivals are dropped (tail drop).
    queue_bytes: f64,
    /// When each direction's bottleneck is next free [towards the server, towards the client].
    link_free: [f64; 2],
    /// Datagrams dropped by a full queue, [towards the server, towards the client].
    queue_drops: [usize; 2],
    /// A side [client, server] that got a batch paced for later polls again only then,
    /// as the C# driver holds such a batch and sleeps until its time.
    held_until: [u64; 2],
    /// How late a sleeping driver wakes up, nanoseconds: a real one wakes tens of microseconds
    /// after the time it asked for (0: exactly on time).
    wake_late: u64,
    /// The server's certificate chain and key (PEM), to start it again.
    identity: (Vec<u8>, Vec<u8>),
}

fn addr(port: u16) -> QsAddr {
    let mut a = QsAddr { family: 4, port, ..Default::default() };
    a.ip[..4].copy_from_slice(&[127, 0, 0, 1]);
    a
}

impl Pair {
    fn new(tweak: impl Fn(*mut QsConfig)) -> Pair {
        Self::with(tweak, |_| {})
    }

    /// `server_tweak` runs on the server's configuration only, after `tweak`.
    fn with(tweak: impl Fn(*mut QsConfig), server_tweak: impl Fn(*mut QsConfig)) -> Pair {
        let (root, chain, key) = pki();
        let sc = qs_config_new();
        assert_eq!(qs_config_load_cert_chain_pem(sc, chain.as_ptr(), chain.len()), QS_OK);
        assert_eq!(qs_config_load_priv_key_pem(sc, key.as_ptr(), key.len()), QS_OK);
        let cc = qs_config_new();
        assert_eq!(qs_config_add_trusted_root_pem(cc, root.as_ptr(), root.len()), QS_OK);
        tweak(sc);
        tweak(cc);
        server_tweak(sc);
        let server = qs_endpoint_new(sc, true);
        let client = qs_endpoint_new(cc, false);
        assert!(!server.is_null() && !client.is_null());
        qs_config_free(sc);
        qs_config_free(cc);
        Pair {
            client,
            server,
            caddr: addr(40000),
            saddr: addr(4433),
            now: START,
            link: BTreeMap::new(),
            seq: 0,
            sent: [0; 2],
            lost: Vec::new(),
            loss: Box::new(|_, _, _| false),
            last_activity: [START; 2],
            buf: vec![0u8; 65536],
            latency: LATENCY,
            ns_per_byte: 0.0,
            queue_bytes: 0.0,
            link_free: [0.0; 2],
            queue_drops: [0; 2],
            held_until: [0; 2],
            wake_late: 0,
            identity: (chain, key),
        }
    }

    /// Replaces the server by a new one with the same certificate and key, as a server process
    /// killed and started again: it knows none of the old connections.
    fn restart_server(&mut self) {
        let sc = qs_config_new();
        let (chain, key) = &self.identity;
        assert_eq!(qs_config_load_cert_chain_pem(sc, chain.as_ptr(), chain.len()), QS_OK);
        assert_eq!(qs_config_load_priv_key_pem(sc, key.as_ptr(), key.len()), QS_OK);
        qs_endpoint_free(self.server);
        self.server = qs_endpoint_new(sc, true);
        assert!(!self.server.is_null());
        qs_config_free(sc);
    }

    /// Makes the link a long path: `one_way` delay, and a bottleneck of `rate` bytes per
    /// second each way that datagrams leave one after another, behind a drop-tail queue
    /// of one bandwidth-delay product (as the C# PathEmulator).
    fn long_path(&mut self, one_way: Duration, rate: u64) {
        self.latency = u64::try_from(one_way.as_nanos()).unwrap();
        self.ns_per_byte = 1e9 / rate as f64;
        self.queue_bytes = (rate as f64 * 2.0 * one_way.as_secs_f64()).max(65536.0);
    }

    fn connect(&mut self) -> u64 {
        let name = b"localhost";
        let mut conn = 0u64;
        assert_eq!(qs_endpoint_connect(self.client, self.now, &self.saddr, name.as_ptr(), name.len(), &mut conn), QS_OK);
        conn
    }

    /// Virtual time since the start.
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now - START)
    }

    /// Does everything due now: delivers what arrived, fires due timers, puts what the
    /// endpoints send on the link. Returns whether anything happened.
    fn pump(&mut self) -> bool {
        let mut busy = false;
        while let Some(entry) = self.link.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to_server, bytes) = entry.remove();
            let (to, from, side) = if to_server { (self.server, &self.caddr, 1) } else { (self.client, &self.saddr, 0) };
            assert_eq!(qs_endpoint_recv(to, self.now, bytes.as_ptr(), bytes.len(), 0, from, std::ptr::null()), QS_OK);
            self.last_activity[side] = self.now;
            busy = true;
        }
        for ep in [self.client, self.server] {
            if qs_endpoint_timeout(ep, self.now) == 0 {
                assert_eq!(qs_endpoint_on_timeout(ep, self.now), QS_OK);
                busy = true;
            }
        }
        for (from, to_server) in [(self.client, true), (self.server, false)] {
            let side = usize::from(!to_server);
            while self.held_until[side] <= self.now {
                let mut t = QsTransmit::default();
                let rc = qs_endpoint_poll_transmit(from, self.now, self.buf.as_mut_ptr(), self.buf.len(), 16, &mut t);
                if rc == QS_DONE {
                    break;
                }
                assert_eq!(rc, QS_OK);
                busy = true;
                self.last_activity[usize::from(!to_server)] = self.now;
                // As the driver does: a batch paced more than the slack ahead is held until its time
                // (the shim itself holds what is paced later); the link keeps datagrams in order.
                let leaves = if t.delay_ns > QS_PACING_SLACK_NS { self.now + t.delay_ns } else { self.now };
                if leaves > self.now {
                    self.held_until[side] = leaves;
                }
                for d in self.buf[..t.len].chunks(t.segment_size.max(1)) {
                    let dir = usize::from(!to_server);
                    let index = self.sent[dir];
                    self.sent[dir] += 1;
                    if (self.loss)(to_server, index, d) {
                        self.lost.push((to_server, index));
                        continue;
                    }
                    let mut arrival = leaves + self.latency;
                    if self.ns_per_byte > 0.0 {
                        let start = self.link_free[dir].max(leaves as f64);
                        if (start - leaves as f64) / self.ns_per_byte + d.len() as f64 > self.queue_bytes {
                            self.queue_drops[dir] += 1;
                            continue;
                        }
                        self.link_free[dir] = start + d.len() as f64 * self.ns_per_byte;
                        arrival = self.link_free[dir] as u64 + self.latency;
                    }
                    self.seq += 1;
                    self.link.insert((arrival, self.seq), (to_server, d.to_vec()));
                }
            }
        }
        busy
    }

    /// The next time something is due: a datagram's arrival or either endpoint's timer.
    fn next_deadline(&self) -> Option<u64> {
        let arrival = self.link.keys().next().map(|k| k.0);
        let timers = [self.client, self.server].map(|ep| {
            let t = qs_endpoint_timeout(ep, self.now);
            (t >= 0).then(|| self.now + t as u64)
        });
        let held = self.held_until.map(|t| (t > self.now).then_some(t));
        [arrival, timers[0], timers[1], held[0], held[1]].into_iter().flatten().min()
    }

    fn events(ep: *mut QsEndpoint) -> Vec<QsEvent> {
        let mut v = Vec::new();
        let mut e = QsEvent::default();
        while qs_endpoint_poll_event(ep, &mut e) == QS_OK {
            v.push(e);
        }
        v
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        qs_endpoint_free(self.client);
        qs_endpoint_free(self.server);
    }
}

/// Runs until `step` says done (true) or `limit` of virtual time passes with nothing
/// due (false). Never sleeps: when both sides are idle the clock jumps to the next deadline.
fn run(p: &mut Pair, limit: Duration, mut step: impl FnMut(&mut Pair, Vec<QsEvent>, Vec<QsEvent>) -> bool) -> bool {
    let end = p.now + u64::try_from(limit.as_nanos()).unwrap();
    for _ in 0..10_000_000 {
        let busy = p.pump();
        let (c, s) = (Pair::events(p.client), Pair::events(p.server));
        if std::env::var("PAIR_DEBUG").is_ok() {
            for (who, e) in c.iter().map(|e| ("client", e)).chain(s.iter().map(|e| ("server", e))) {
                eprintln!("{:?} {who}: event kind {} detail {} conn {} stream {} code {}", p.elapsed(), e.kind, e.detail, e.conn, e.stream, e.code);
            }
        }
        let quiet = !busy && c.is_empty() && s.is_empty();
        if step(p, c, s) {
            return true;
        }
        if quiet {
            match p.next_deadline() {
                Some(t) if t <= end => p.now = p.now.max(t + p.wake_late),
                _ => return false, // nothing left to happen, or not within the limit
            }
        }
    }
    panic!("no progress: the pair spun at virtual time {:?}", p.elapsed());
}

#[test]
fn sixteen_streams_echo_past_the_connection_window() {
    // Windows smaller than the data, so flow control and WRITABLE events matter.
    echo_sixteen(256 << 10, 1 << 20, 600_000);
}

#[test]
fn sixteen_streams_echo_with_the_default_windows() {
    echo_sixteen(16 << 20, 32 << 20, (2 << 20) + 4099);
}

fn echo_sixteen(stream_window: u64, conn_window: u64, size: usize) {
    let mut p = Pair::new(|c| {
        qs_config_set_windows(c, stream_window, conn_window);
    });
    echo(&mut p, 16, size);
}

/// The client opens `streams` streams, writes `size` bytes on each and finishes them;
/// the server echoes every stream back; the client checks every byte. Both sides write
/// as the C# driver does: until BLOCKED or a short write, then again on STREAM_WRITABLE.
fn echo(p: &mut Pair, streams: usize, size: usize) -> u64 {
    let conn = p.connect();
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent: HashMap<u64, usize> = HashMap::new();
    let mut echoed: HashMap<u64, (Vec<u8>, bool)> = HashMap::new(); // server: read, not yet written back; end seen
    let mut got: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut blocked: [HashSet<u64>; 2] = Default::default(); // [client, server]: waiting for STREAM_WRITABLE
    let mut server_conn = 0u64;
    let mut finished = 0;
    let mut buf = vec![0u8; 1 << 16];
    let done = run(p, Duration::from_secs(120), |p, cev, sev| {
        for (side, events) in [&cev, &sev].into_iter().enumerate() {
            for e in events {
                if e.kind == QS_EVENT_STREAM_WRITABLE {
                    blocked[side].remove(&e.stream);
                }
                assert!(e.kind != QS_EVENT_CONNECTION_CLOSED && e.kind != QS_EVENT_HANDSHAKE_FAILED, "side {side} closed: kind {} detail {}", e.kind, e.detail);
            }
        }
        for e in &sev {
            if e.kind == QS_EVENT_CONNECTED {
                server_conn = e.conn;
            }
        }
        if cev.iter().any(|e| e.kind == QS_EVENT_CONNECTED) {
            for _ in 0..streams {
                let mut sid = 0;
                assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK);
                sent.insert(sid, 0);
                got.insert(sid, Vec::new());
            }
        }
        // Client: write what fits, read what came back.
        for (sid, off) in sent.iter_mut() {
            while *off < size && !blocked[0].contains(sid) {
                let n = qs_stream_write(p.client, conn, *sid, data[*off..].as_ptr(), size - *off, true, std::ptr::null_mut());
                if n < 0 {
                    assert_eq!(n, QS_BLOCKED as i64);
                    blocked[0].insert(*sid);
                    break;
                }
                *off += n as usize;
                if *off < size {
                    blocked[0].insert(*sid);
                }
            }
            loop {
                let mut fin = 0u8;
                let n = qs_stream_read(p.client, conn, *sid, buf.as_mut_ptr(), buf.len(), &mut fin, std::ptr::null_mut());
                if n < 0 {
                    break;
                }
                got.get_mut(sid).unwrap().extend_from_slice(&buf[..n as usize]);
                if fin == 1 {
                    finished += 1;
                    break;
                }
            }
        }
        // Server: echo every readable stream.
        if server_conn != 0 {
            for e in sev.iter().filter(|e| e.kind == QS_EVENT_STREAM_OPENED) {
                echoed.insert(e.stream, (Vec::new(), false));
            }
            for (sid, (pending, ended)) in echoed.iter_mut() {
                loop {
                    let mut fin = 0u8;
                    let n = qs_stream_read(p.server, server_conn, *sid, buf.as_mut_ptr(), buf.len(), &mut fin, std::ptr::null_mut());
                    if n < 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n as usize]);
                    if fin == 1 {
                        *ended = true;
                        break;
                    }
                }
                if blocked[1].contains(sid) {
                    continue;
                }
                if !pending.is_empty() {
                    let n = qs_stream_write(p.server, server_conn, *sid, pending.as_ptr(), pending.len(), *ended, std::ptr::null_mut());
                    if n > 0 {
                        pending.drain(..n as usize);
                    }
                    if n < 0 || !pending.is_empty() {
                        blocked[1].insert(*sid);
                    } else if *ended {
                        *ended = false; // written with its end
                    }
                } else if *ended {
                    assert_eq!(qs_stream_finish(p.server, server_conn, *sid), QS_OK);
                    *ended = false;
                }
            }
        }
        finished == streams
    });
    let report: Vec<String> = got.iter().map(|(s, v)| format!("{s}:{}/{}", v.len(), sent[s])).collect();
    let pend: Vec<String> = echoed.iter().map(|(s, (v, e))| format!("{s}:{}{}", v.len(), if *e { "E" } else { "" })).collect();
    assert!(done, "not done in time: client got/sent {report:?}; server pending {pend:?}");
    for (sid, v) in &got {
        assert_eq!(v.len(), size, "stream {sid}");
        assert!(v == &data, "stream {sid} intact");
    }
    conn
}

/// Runs until both sides report CONNECTED; returns when each did, in virtual time since the start.
fn handshake(p: &mut Pair, limit: Duration) -> (u64, Duration, u64, Duration) {
    let conn = p.connect();
    let (mut client, mut server) = (None, None);
    let done = run(p, limit, |p, cev, sev| {
        for e in &cev {
            assert_ne!(e.kind, QS_EVENT_HANDSHAKE_FAILED, "the client's handshake failed (detail {})", e.detail);
            if e.kind == QS_EVENT_CONNECTED && e.conn == conn {
                client = Some(p.elapsed());
            }
        }
        for e in &sev {
            if e.kind == QS_EVENT_CONNECTED {
                server = Some((e.conn, p.elapsed()));
            }
        }
        client.is_some() && server.is_some()
    });
    assert!(done, "the handshake did not complete within {limit:?} of virtual time (client {client:?}, server {server:?})");
    let (sconn, server_at) = server.unwrap();
    (conn, client.unwrap(), sconn, server_at)
}

fn conn_stats(ep: *mut QsEndpoint, conn: u64) -> QsStats {
    let mut s = QsStats::default();
    assert_eq!(qs_conn_stats(ep, conn, &mut s), QS_OK);
    s
}

fn endpoint_stats(ep: *mut QsEndpoint) -> QsEndpointStats {
    let mut s = QsEndpointStats::default();
    assert_eq!(qs_endpoint_stats(ep, &mut s), QS_OK);
    s
}

fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    let n = qs_last_error(buf.as_mut_ptr(), buf.len()) as usize;
    String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()
}

#[test]
fn the_handshake_takes_one_round_trip_of_virtual_time() {
    let mut p = Pair::new(|_| {});
    let (conn, client_at, sconn, server_at) = handshake(&mut p, Duration::from_secs(5));
    // The client is done when the server's first flight arrives, the server when the client's Finished does.
    assert_eq!(client_at, Duration::from_nanos(2 * LATENCY));
    assert_eq!(server_at, Duration::from_nanos(3 * LATENCY));
    let (c, s) = (conn_stats(p.client, conn), conn_stats(p.server, sconn));
    assert_eq!((c.handshake_done, s.handshake_done), (1, 1));
    assert_eq!(c.rtt_ns, 2 * LATENCY, "the engine measures the link's round trip on the virtual clock");
    assert_eq!(c.lost_packets + s.lost_packets, 0);
    assert!(p.lost.is_empty());
}

#[test]
fn a_lost_first_initial_is_sent_again_after_the_probe_timeout() {
    let mut p = Pair::new(|_| {});
    p.loss = Box::new(|to_server, index, _| to_server && index == 0);
    let (conn, client_at, _, _) = handshake(&mut p, Duration::from_secs(10));
    assert_eq!(p.lost, vec![(true, 0)]);
    // Nothing answers the lost Initial: only the client's probe timeout (3 x the 333 ms
    // initial RTT, RFC 9002 §6.2.2) sends it again, one round trip before the end.
    assert!(client_at >= Duration::from_millis(999) + Duration::from_nanos(2 * LATENCY), "connected at {client_at:?}");
    assert!(client_at < Duration::from_millis(1100), "connected at {client_at:?}");
    assert_eq!(conn_stats(p.client, conn).handshake_done, 1);
}

#[test]
fn data_lost_mid_transfer_is_repaired_byte_exact() {
    let mut p = Pair::new(|_| {});
    // One full-sized datagram each way once the transfer runs: stream data, not handshake.
    let mut dropped = [false; 2];
    p.loss = Box::new(move |to_server, index, d| {
        let dir = usize::from(!to_server);
        let hit = !dropped[dir] && index >= 40 && d.len() >= 1400;
        dropped[dir] |= hit;
        hit
    });
    let conn = echo(&mut p, 2, 300_000);
    assert_eq!(p.lost.len(), 2, "one datagram lost each way: {:?}", p.lost);
    assert!(conn_stats(p.client, conn).lost_packets >= 1, "the client's engine saw its packet lost");
}

#[test]
fn retry_validates_the_address_in_one_extra_round_trip() {
    let mut p = Pair::with(|_| {}, |s| {
        qs_config_set_retry(s, true);
    });
    let (_, client_at, _, _) = handshake(&mut p, Duration::from_secs(5));
    let s = endpoint_stats(p.server);
    assert_eq!(s.retries_sent, 1, "exactly one Retry");
    assert_eq!(s.connections, 1);
    assert_eq!(s.refused, 0, "the token the client brought back was accepted");
    assert_eq!(client_at, Duration::from_nanos(4 * LATENCY), "one round trip for the Retry, one for the handshake");
}

#[test]
fn an_idle_connection_times_out_after_exactly_the_idle_timeout() {
    const IDLE: Duration = Duration::from_secs(30);
    let mut p = Pair::new(|c| {
        qs_config_set_timeouts(c, IDLE.as_millis() as u64, 0);
    });
    let wall = std::time::Instant::now();
    let (conn, _, sconn, _) = handshake(&mut p, Duration::from_secs(5));
    let mut closed: [Option<(QsEvent, u64)>; 2] = [None, None];
    let done = run(&mut p, Duration::from_secs(60), |p, cev, sev| {
        for (side, events) in [cev, sev].into_iter().enumerate() {
            if let Some(e) = events.iter().find(|e| e.kind == QS_EVENT_CONNECTION_CLOSED) {
                closed[side] = Some((*e, p.now));
            }
        }
        closed.iter().all(Option::is_some)
    });
    assert!(done, "both sides close");
    for (side, id) in [conn, sconn].into_iter().enumerate() {
        let (e, at) = closed[side].unwrap();
        assert_eq!((e.conn, e.detail), (id, QS_CLOSE_TIMED_OUT), "side {side} closes as timed out");
        assert_eq!(Duration::from_nanos(at - p.last_activity[side]), IDLE, "side {side}: exactly the idle timeout after its last datagram");
    }
    assert!(wall.elapsed() < Duration::from_secs(5), "virtual time: no real waiting ({:?})", wall.elapsed());
}

fn pack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, value) in fields {
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        v.extend_from_slice(value.as_bytes());
    }
    v
}

/// A pair speaking HTTP/3, connected: the client's and the server's connection ids, and a packed GET for "/".
fn h3_pair() -> (Pair, u64, u64, Vec<u8>) {
    let mut p = Pair::new(|c| {
        qs_config_set_alpn(c, b"\x02h3".as_ptr(), 3);
    });
    for ep in [p.client, p.server] {
        assert_eq!(qs_endpoint_enable_h3(ep, 16 << 10), QS_OK);
    }
    let (conn, _, sconn, _) = handshake(&mut p, Duration::from_secs(5));
    let request = pack(&[(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", "/")]);
    (p, conn, sconn, request)
}

#[test]
fn after_goaway_the_client_is_told_and_new_requests_fail_clearly() {
    let (mut p, conn, sconn, request) = h3_pair();
    let mut first = u64::MAX;
    assert_eq!(qs_h3_send_request(p.client, conn, request.as_ptr(), request.len(), true, &mut first), QS_OK);
    let mut goaway = None;
    let mut answered = false;
    let done = run(&mut p, Duration::from_secs(5), |p, cev, sev| {
        for e in sev.iter().filter(|e| e.kind == QS_EVENT_H3_HEADERS) {
            let response = pack(&[(":status", "200")]);
            assert_eq!(qs_h3_send_response(p.server, sconn, e.stream, response.as_ptr(), response.len(), true), QS_OK);
            assert_eq!(qs_h3_goaway(p.server, sconn), QS_OK);
        }
        for e in &cev {
            match e.kind {
                QS_EVENT_H3_GOAWAY => goaway = Some(e.stream),
                QS_EVENT_H3_HEADERS => answered |= e.stream == first,
                QS_EVENT_CONNECTION_CLOSED | QS_EVENT_HANDSHAKE_FAILED => panic!("the connection closed (detail {})", e.detail),
                _ => {}
            }
        }
        goaway.is_some() && answered
    });
    assert!(done, "GOAWAY {goaway:?}, first request answered {answered}");
    assert_eq!(goaway, Some(first + 4), "requests from the one after the first are refused");
    let mut next = u64::MAX;
    let rc = qs_h3_send_request(p.client, conn, request.as_ptr(), request.len(), true, &mut next);
    assert_eq!(rc, QS_ERR_CONNECTION_CLOSED);
    assert!(last_error().contains("GOAWAY"), "the error names the GOAWAY: {}", last_error());
    assert_eq!(next, u64::MAX, "no stream was opened");
}

#[test]
fn a_server_at_its_connection_limit_refuses_at_once_with_a_reason() {
    let mut p = Pair::with(|_| {}, |s| {
        qs_config_set_max_connections(s, 1);
    });
    handshake(&mut p, Duration::from_secs(5));
    let start = p.now;
    let second = p.connect();
    let mut failed = None;
    let mut server_events = Vec::new();
    let done = run(&mut p, Duration::from_secs(10), |p, cev, sev| {
        server_events.extend(sev.iter().map(|e| e.kind));
        if let Some(e) = cev.iter().find(|e| e.conn == second && (e.kind == QS_EVENT_HANDSHAKE_FAILED || e.kind == QS_EVENT_CONNECTED)) {
            failed = Some((*e, p.now - start));
        }
        failed.is_some()
    });
    assert!(done, "the client hears of the refusal");
    let (e, after) = failed.unwrap();
    assert_eq!((e.kind, e.detail, e.code), (QS_EVENT_HANDSHAKE_FAILED, QS_REFUSED, 0x2), "CONNECTION_REFUSED ends the handshake");
    assert_eq!(after, 2 * LATENCY, "one round trip: no timer, no retransmission");
    let mut text = vec![0u8; 512];
    let n = qs_conn_error(p.client, second, text.as_mut_ptr(), text.len()) as usize;
    let text = String::from_utf8_lossy(&text[..n]).into_owned();
    assert!(text.contains("CONNECTION_REFUSED") && text.contains("connection limit"), "{text}");
    assert!(server_events.is_empty(), "nothing for the server's caller to see: {server_events:?}");
    let s = endpoint_stats(p.server);
    assert_eq!((s.connections, s.refused, s.open), (1, 1, 1), "the first connection stays, the second left no state");
}

/// A small deterministic generator for loss decisions (xorshift64*).
struct Rng(u64);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// One stream of `total` bytes from the client to the server over `p`'s link; the server
/// reads as it arrives (as fast as the engine delivers in order). Returns the virtual time
/// from opening the stream to the server reading its last byte. PATH_TRACE=N prints a line
/// every N ms of virtual time (every 100 ms when N is not a number).
fn bulk(p: &mut Pair, total: usize) -> Duration {
    let conn = p.connect();
    let chunk = vec![0x5au8; 256 << 10];
    let (mut sid, mut written, mut blocked, mut opened_at) = (None::<u64>, 0usize, false, 0u64);
    let (mut server_conn, mut received, mut done_at) = (0u64, 0usize, 0u64);
    let mut buf = vec![0u8; 1 << 20];
    let trace_every = std::env::var("PATH_TRACE").ok().map(|v| v.parse().unwrap_or(100) * MS);
    let mut next_trace = 0u64;
    let ok = run(p, Duration::from_secs(600), |p, cev, sev| {
        for e in &cev {
            assert!(e.kind != QS_EVENT_CONNECTION_CLOSED && e.kind != QS_EVENT_HANDSHAKE_FAILED, "client closed: {}", e.detail);
            if e.kind == QS_EVENT_CONNECTED {
                let mut s = 0;
                assert_eq!(qs_stream_open(p.client, conn, false, &mut s), QS_OK);
                sid = Some(s);
                opened_at = p.now;
            }
            if e.kind == QS_EVENT_STREAM_WRITABLE {
                blocked = false;
            }
        }
        for e in &sev {
            if e.kind == QS_EVENT_CONNECTED {
                server_conn = e.conn;
            }
        }
        if let Some(s) = sid {
            while written < total && !blocked {
                let len = chunk.len().min(total - written);
                let n = qs_stream_write(p.client, conn, s, chunk.as_ptr(), len, written + len == total, std::ptr::null_mut());
                if n < 0 {
                    assert_eq!(n, QS_BLOCKED as i64);
                    blocked = true;
                } else {
                    written += n as usize;
                    blocked = (n as usize) < len;
                }
            }
            if server_conn != 0 {
                loop {
                    let mut fin = 0u8;
                    let n = qs_stream_read(p.server, server_conn, s, buf.as_mut_ptr(), buf.len(), &mut fin, std::ptr::null_mut());
                    if n < 0 {
                        break;
                    }
                    received += n as usize;
                    if fin == 1 {
                        done_at = p.now;
                        return true;
                    }
                }
            }
        }
        if let Some(every) = trace_every.filter(|_| p.now >= next_trace && opened_at > 0) {
            next_trace = p.now + every;
            let c = conn_stats(p.client, conn);
            let s = if server_conn != 0 { conn_stats(p.server, server_conn) } else { QsStats::default() };
            eprintln!(
                "{:>6.3} s: written {:>4} MiB, read {:>4} MiB, cwnd {:>6} KiB, rtt {:>5.1} ms, rate {:>5.1} MiB/s, lost {} pkts, sent {} pkts, server sent {} pkts, blocked {}",
                Duration::from_nanos(p.now - opened_at).as_secs_f64(), written >> 20, received >> 20, c.cwnd >> 10,
                c.rtt_ns as f64 / 1e6, c.delivery_rate as f64 / 1048576.0, c.lost_packets, c.sent_packets, s.sent_packets, blocked
            );
        }
        false
    });
    assert!(ok, "the transfer finished: {received} of {total} bytes read");
    assert_eq!(received, total);
    Duration::from_nanos(done_at - opened_at)
}

/// The benchmark's emulated long path in virtual time: 40 ms round trip, 1 % loss each
/// way, a 100 MiB/s bottleneck. What the engine and its settings reach when neither the
/// machine's CPU nor the emulator's threads are in the way. `cargo test --release -- --ignored
/// long_path --nocapture`; PATH_MIB, PATH_LOSS, PATH_CC (0 BBRv2, 1 CUBIC, 2 Reno),
/// PATH_WINDOW_MIB (stream window; connection window twice that) change the run; PATH_TRACE traces it.
#[test]
#[ignore]
fn long_path_goodput() {
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (mib, loss, cc, window) = (env("PATH_MIB", 256.0) as usize, env("PATH_LOSS", 0.01), env("PATH_CC", 0.0) as u32, env("PATH_WINDOW_MIB", 0.0));
    let mut p = Pair::new(|c| {
        assert_eq!(qs_config_set_congestion(c, cc), QS_OK);
        if window > 0.0 {
            let w = (window * 1048576.0) as u64;
            assert_eq!(qs_config_set_windows(c, w, 2 * w), QS_OK);
        }
    });
    const RATE: u64 = 100 << 20;
    p.long_path(Duration::from_millis(20), RATE);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    p.loss = Box::new(move |_, _, _| rng.chance(loss));
    let t = bulk(&mut p, mib << 20);
    let goodput = (mib << 20) as f64 / t.as_secs_f64();
    let c = conn_stats(p.client, 1);
    eprintln!(
        "{mib} MiB in {:.3} s of virtual time: {:.1} MiB/s, {:.1} % of the link; datagrams lost at random {}, dropped by the queue {:?}; sender counted {} lost of {}",
        t.as_secs_f64(), goodput / 1048576.0, 100.0 * goodput / RATE as f64, p.lost.len(), p.queue_drops, c.lost_packets, c.sent_packets
    );
}

#[test]
fn a_receiver_keeps_its_whole_window_open_after_the_initial_credit() {
    // A 40 ms path of 100 MiB/s (4 MiB per round trip) and a stream window of two round
    // trips' worth: once the congestion window has grown, flow control alone decides how
    // fast 64 MiB goes. A receiver that reopens its whole window as it reads keeps the link
    // busy (about 1.04 s); one that falls back to a small window once the initial credit is
    // used (quiche's own 32 KiB, doubling per round trip: what the flow-window patch
    // removes) stalls the sender for several round trips (about 1.36 s).
    const WINDOW: u64 = 8 << 20;
    let mut p = Pair::new(|c| {
        assert_eq!(qs_config_set_windows(c, WINDOW, 2 * WINDOW), QS_OK);
    });
    p.long_path(Duration::from_millis(20), 100 << 20);
    let t = bulk(&mut p, 64 << 20);
    eprintln!("64 MiB through an 8 MiB window in {t:?} of virtual time");
    assert!(t < Duration::from_millis(1200), "64 MiB took {t:?}: the sender waited on flow-control updates");
    assert_eq!(p.queue_drops, [0, 0], "flow control, not the bottleneck's queue, limited this run");
}

#[test]
fn paced_connections_of_one_endpoint_do_not_wait_for_each_other() {
    // Four connections of one client endpoint each send 16 MiB over one 40 ms, 100 MiB/s path, at once.
    // A batch quiche paces for later once held up every other connection of the endpoint until its
    // time (19 MiB/s in all here in virtual time; over the emulated path 4.8, one flow six times
    // another's share); each connection's next datagram now waits on its own while the others send.
    const FLOWS: usize = 4;
    const EACH: usize = 16 << 20;
    const RATE: u64 = 100 << 20;
    let mut p = Pair::new(|_| {});
    p.long_path(Duration::from_millis(20), RATE);
    let conns: Vec<u64> = (0..FLOWS).map(|_| p.connect()).collect();
    let chunk = vec![0xa5u8; 256 << 10];
    let mut streams = [None::<u64>; FLOWS];
    let mut written = [0usize; FLOWS];
    let mut server_conns: Vec<u64> = Vec::new();
    let mut received: HashMap<u64, usize> = HashMap::new();
    let mut finished: HashMap<u64, u64> = HashMap::new();
    let mut buf = vec![0u8; 1 << 20];
    let start = p.now;
    let ok = run(&mut p, Duration::from_secs(60), |p, cev, sev| {
        for e in &cev {
            assert!(e.kind != QS_EVENT_CONNECTION_CLOSED && e.kind != QS_EVENT_HANDSHAKE_FAILED, "client closed: {}", e.detail);
            if e.kind == QS_EVENT_CONNECTED {
                let i = conns.iter().position(|&c| c == e.conn).unwrap();
                let mut s = 0;
                assert_eq!(qs_stream_open(p.client, e.conn, false, &mut s), QS_OK);
                streams[i] = Some(s);
            }
        }
        for e in &sev {
            if e.kind == QS_EVENT_CONNECTED {
                server_conns.push(e.conn);
            }
        }
        for i in 0..FLOWS {
            let Some(s) = streams[i] else { continue };
            while written[i] < EACH {
                let len = chunk.len().min(EACH - written[i]);
                let n = qs_stream_write(p.client, conns[i], s, chunk.as_ptr(), len, written[i] + len == EACH, std::ptr::null_mut());
                if n <= 0 {
                    break;
                }
                written[i] += n as usize;
            }
        }
        for &sc in &server_conns {
            if finished.contains_key(&sc) {
                continue;
            }
            loop {
                let mut fin = 0u8;
                let n = qs_stream_read(p.server, sc, 0, buf.as_mut_ptr(), buf.len(), &mut fin, std::ptr::null_mut());
                if n < 0 {
                    break;
                }
                *received.entry(sc).or_default() += n as usize;
                if fin == 1 {
                    finished.insert(sc, p.now);
                    break;
                }
                if n == 0 {
                    break;
                }
            }
        }
        finished.len() == FLOWS
    });
    assert!(ok, "not every flow finished within 60 s of virtual time: received {received:?}");
    let times: Vec<f64> = finished.values().map(|&t| (t - start) as f64 / 1e9).collect();
    let (first, last) = times.iter().fold((f64::MAX, 0f64), |(a, b), &t| (a.min(t), b.max(t)));
    let goodput = (FLOWS * EACH) as f64 / last;
    eprintln!("{FLOWS} × {} MiB: flows done at {times:.2?} s; {:.1} MiB/s in all", EACH >> 20, goodput / 1048576.0);
    assert!(goodput >= 0.6 * RATE as f64, "the flows together reached only {:.1} MiB/s of a {} MiB/s link", goodput / 1048576.0, RATE >> 20);
    assert!(last <= 2.0 * first, "one flow took {last:.2} s, another {first:.2} s: they did not share the link");
}

#[test]
fn a_driver_that_wakes_late_keeps_the_pacing_schedule() {
    // quiche stamps each datagram with a release time and restarts its schedule from a send that
    // comes late. A driver sleeping until a paced batch's time wakes late on a real machine (here:
    // median 50 µs idle, p99 340 µs, more under load), every time: were the endpoint to wake it only
    // at the batch's time, each batch would lose that much link time (256 MiB at 69 MiB/s with
    // 150 µs; 86 on time, the start included). The endpoint's timeout comes the pacing slack before
    // a held batch's time instead, so the schedule holds.
    const RATE: u64 = 100 << 20;
    let mut p = Pair::new(|_| {});
    p.long_path(Duration::from_millis(20), RATE);
    p.wake_late = 150_000;
    let t = bulk(&mut p, 256 << 20);
    let goodput = (256u64 << 20) as f64 / t.as_secs_f64() / 1048576.0;
    eprintln!("256 MiB over 40 ms, 100 MiB/s, the driver waking 150 µs late: {goodput:.1} MiB/s");
    assert!(goodput > 80.0, "{goodput:.1} MiB/s of 100: late wake-ups cost link time");
}

#[test]
fn a_response_reset_between_data_frames_reads_as_a_reset_not_as_its_end() {
    // The soak saw a 200 response end cleanly at 2.67 of 8.9 MB when its server went away. A reset that lands when a
    // DATA frame has been read to its end is one suspect (quiche counts a reset stream as finished); it reads as the
    // reset here, and the endpoint double-checks every Finished against the transport.
    let (mut p, conn, sconn, request) = h3_pair();
    let mut sid = u64::MAX;
    assert_eq!(qs_h3_send_request(p.client, conn, request.as_ptr(), request.len(), true, &mut sid), QS_OK);
    let piece = vec![7u8; 1000];
    let (mut read, mut reset_sent, mut outcome) = (0usize, false, None::<Result<(), u64>>);
    let mut buf = vec![0u8; 4096];
    let done = run(&mut p, Duration::from_secs(5), |p, _cev, sev| {
        for e in sev.iter().filter(|e| e.kind == QS_EVENT_H3_HEADERS) {
            let response = pack(&[(":status", "200"), ("content-length", "100000")]);
            assert_eq!(qs_h3_send_response(p.server, sconn, e.stream, response.as_ptr(), response.len(), false), QS_OK);
            let mut code = 0;
            assert_eq!(qs_h3_send_body(p.server, sconn, e.stream, piece.as_ptr(), piece.len(), false, &mut code), piece.len() as i64);
        }
        // The client reads whatever arrived; once the first DATA frame is read whole, the server resets the stream.
        loop {
            let (mut fin, mut code) = (0u8, 0u64);
            let n = qs_h3_recv_body(p.client, conn, sid, buf.as_mut_ptr(), buf.len(), &mut fin, &mut code);
            if n == QS_ERR_STREAM_RESET as i64 {
                outcome = Some(Err(code));
                break;
            }
            if n < 0 {
                break; // QS_DONE: nothing yet (or no response headers yet)
            }
            read += n as usize;
            if fin == 1 {
                outcome = Some(Ok(()));
                break;
            }
            if n == 0 {
                break;
            }
        }
        if read == piece.len() && !reset_sent {
            reset_sent = true;
            assert_eq!(qs_stream_reset(p.server, sconn, sid, 0x10c), QS_OK);
        }
        outcome.is_some()
    });
    assert!(done, "the client saw neither an end nor a reset (read {read})");
    assert_eq!(read, piece.len());
    assert_eq!(outcome, Some(Err(0x10c)), "a reset after {read} bytes must read as the reset, not as the end of the body");
}

/// A server whose connection has no send credit left (the client's window is full of an unread
/// response) still sends its GOAWAY: once the client reads and credit returns. quiche refuses the
/// frame for lack of capacity (StreamBlocked); it used to be dropped without a word.
#[test]
fn a_goaway_without_send_credit_goes_out_once_credit_returns() {
    let mut p = Pair::new(|c| {
        qs_config_set_alpn(c, b"\x02h3".as_ptr(), 3);
        qs_config_set_windows(c, 64 << 10, 64 << 10);
    });
    for ep in [p.client, p.server] {
        assert_eq!(qs_endpoint_enable_h3(ep, 16 << 10), QS_OK);
    }
    let (conn, _, sconn, _) = handshake(&mut p, Duration::from_secs(5));
    let request = pack(&[(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", "/")]);
    let mut sid = u64::MAX;
    assert_eq!(qs_h3_send_request(p.client, conn, request.as_ptr(), request.len(), true, &mut sid), QS_OK);
    let chunk = vec![7u8; 16 << 10];
    let mut answered = false;
    // The server answers with more than the client's windows and writes until refused; the client reads nothing.
    run(&mut p, Duration::from_secs(2), |p, _, sev| {
        for e in sev.iter().filter(|e| e.kind == QS_EVENT_H3_HEADERS) {
            let response = pack(&[(":status", "200")]);
            assert_eq!(qs_h3_send_response(p.server, sconn, e.stream, response.as_ptr(), response.len(), false), QS_OK);
            answered = true;
        }
        if answered {
            let mut code = 0;
            while qs_h3_send_body(p.server, sconn, sid, chunk.as_ptr(), chunk.len(), false, &mut code) > 0 {}
        }
        false
    });
    assert!(answered);
    assert_eq!(qs_h3_goaway(p.server, sconn), QS_OK, "GOAWAY is taken even without credit: {}", last_error());
    let mut goaway = false;
    run(&mut p, Duration::from_secs(1), |_, cev, _| {
        goaway |= cev.iter().any(|e| e.kind == QS_EVENT_H3_GOAWAY);
        goaway
    });
    assert!(!goaway, "no credit, no GOAWAY yet (the test's premise: the window is full)");
    // The client reads what it holds: MAX_DATA returns credit, and the GOAWAY follows.
    let mut buf = vec![0u8; 64 << 10];
    let (mut fin, mut code) = (0u8, 0u64);
    let mut read = 0;
    while let n @ 1.. = qs_h3_recv_body(p.client, conn, sid, buf.as_mut_ptr(), buf.len(), &mut fin, &mut code) {
        read += n;
    }
    assert!(read > 32 << 10, "the client held most of its window ({read} bytes)");
    let done = run(&mut p, Duration::from_secs(5), |_, cev, _| {
        goaway |= cev.iter().any(|e| e.kind == QS_EVENT_H3_GOAWAY);
        goaway
    });
    assert!(done, "the GOAWAY arrives once the client has read and credit returned");
}

/// Heap bytes allocated and not yet freed by this thread (a test drives both endpoints on one thread).
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
    }

    pub struct Counting;

    fn add(n: isize) {
        let _ = LIVE.try_with(|l| l.set(l.get() + n));
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size as isize - layout.size() as isize);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    pub fn live() -> isize {
        LIVE.with(|l| l.get())
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// A peer that sends its stream one byte per packet while the receiver reads nothing: what the
/// receiver holds for it must stay within a small multiple of its flow-control window, however
/// the bytes are cut. (The previous engine pinned 317 MiB of shared receive slabs for 320 one-byte
/// frames after a gap; quiche keeps one heap buffer per frame, in or out of order alike.)
#[test]
fn tiny_stream_frames_cost_the_receiver_about_their_flow_control_window() {
    const WINDOW: u64 = 64 << 10;
    let mut p = Pair::new(|c| {
        qs_config_set_windows(c, WINDOW, 4 * WINDOW);
        qs_config_set_pacing(c, false);
    });
    let (conn, _, sconn, _) = handshake(&mut p, Duration::from_secs(5));
    let mut sid = 0u64;
    assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK);
    run(&mut p, Duration::from_millis(100), |_, _, _| false);
    let before = heap::live();
    let mut sent = 0u64;
    let mut code = 0u64;
    // One byte, then out it goes in a packet of its own; until flow control refuses more.
    while sent < 2 * WINDOW {
        let n = qs_stream_write(p.client, conn, sid, [0x5a].as_ptr(), 1, false, &mut code);
        if n != 1 {
            break;
        }
        sent += 1;
        p.pump();
        p.now += 20_000;
        p.pump();
    }
    run(&mut p, Duration::from_millis(200), |_, _, _| false);
    let held = heap::live() - before;
    eprintln!("{sent} one-byte frames (window {WINDOW}): the pair holds {} KiB more heap ({:.1} bytes per byte sent)",
        held >> 10, held as f64 / sent as f64);
    assert!(sent >= WINDOW - 1024, "flow control stopped the sender near the window ({sent})");
    // What the pair holds is the server's unread stream: reading it gives the memory back.
    let mut buf = vec![0u8; WINDOW as usize];
    let (mut fin, mut got) = (0u8, 0i64);
    while let n @ 1.. = qs_stream_read(p.server, sconn, sid, buf.as_mut_ptr(), buf.len(), &mut fin, &mut code) {
        got += n;
    }
    drop(buf);
    let unread = held - (heap::live() - before);
    eprintln!("reading the {got} bytes gave back {} KiB: what the unread stream cost", unread >> 10);
    assert_eq!(got as u64, sent);
    // (The rest, ~460 KiB here, is per-connection bookkeeping grown by 65,536 packets: ACK and sent-packet
    // queues that keep their capacity. Reading the stream does not change it.)
    assert!(unread < 2 * WINDOW as isize, "the unread stream held {unread} bytes for a {WINDOW}-byte window");
}

/// QUIC's variable-length integer (RFC 9000 §16).
fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=63 => vec![v as u8],
        64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
        16384..=1_073_741_823 => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
    }
}

/// A pair whose client speaks HTTP/3 by hand on raw streams, to a server with HTTP/3 on
/// (header sections up to 64 KiB): the client's and the server's connection ids.
fn raw_h3_pair() -> (Pair, u64, u64) {
    let mut p = Pair::new(|c| {
        qs_config_set_alpn(c, b"\x02h3".as_ptr(), 3);
    });
    assert_eq!(qs_endpoint_enable_h3(p.server, 64 << 10), QS_OK);
    let (conn, _, sconn, _) = handshake(&mut p, Duration::from_secs(5));
    (p, conn, sconn)
}

/// Opens `n` request streams that each announce a 64 KiB HEADERS frame and send all of it but
/// the last byte: what a peer without a token can make a server hold.
fn open_incomplete_requests(p: &mut Pair, conn: u64, n: usize) {
    let mut frame = vec![0x01];
    frame.extend(varint(64 << 10));
    frame.resize(frame.len() + (64 << 10) - 1, 0x41);
    let mut code = 0u64;
    for _ in 0..n {
        let mut sid = 0u64;
        assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK, "{}", last_error());
        // The client's send buffer takes about a congestion window at a time.
        let mut off = 0;
        while off < frame.len() {
            let rest = &frame[off..];
            let n = qs_stream_write(p.client, conn, sid, rest.as_ptr(), rest.len(), false, &mut code);
            if n > 0 {
                off += n as usize;
            } else {
                assert_eq!(n, QS_BLOCKED as i64, "{}", last_error());
                run(p, Duration::from_millis(50), |_, _, _| false);
            }
        }
    }
}

/// A complete GET for "/" in one HEADERS frame (QPACK static table entries and one literal).
fn complete_request(p: &mut Pair, conn: u64) -> u64 {
    let mut block = vec![0x00, 0x00, 0xd1, 0xd7, 0xc1, 0x50, 9];
    block.extend_from_slice(b"localhost");
    let mut frame = vec![0x01];
    frame.extend(varint(block.len() as u64));
    frame.extend(block);
    let (mut sid, mut code) = (0u64, 0u64);
    assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK, "{}", last_error());
    assert_eq!(qs_stream_write(p.client, conn, sid, frame.as_ptr(), frame.len(), true, &mut code), frame.len() as i64);
    sid
}

/// The review's attack in miniature: 100 streams each holding a 64 KiB header section one byte short
/// of complete, from a connection that never authenticated. Before the limits the server held all of it
/// (+6.7 MiB of heap here; 20 such connections held +160 MiB in the review's run) until the connection
/// ended; now it keeps at most the per-connection cap, refuses the rest with H3_REQUEST_REJECTED, still
/// serves a complete request on the same connection, and gives everything back at the header deadline.
#[test]
fn an_unauthenticated_peer_holds_at_most_the_intake_limits_until_the_header_deadline() {
    let (mut p, conn, sconn) = raw_h3_pair();
    let limits = QsIntakeLimits {
        header_timeout_ms: 10_000,
        max_streams_per_connection: 100,
        max_bytes_per_connection: 1 << 20,
        max_bytes_per_address: 8 << 20,
        max_bytes_total: 64 << 20,
    };
    assert_eq!(qs_endpoint_set_intake_limits(p.server, &limits), QS_OK);
    run(&mut p, Duration::from_millis(100), |_, _, _| false);
    let before = heap::live();
    open_incomplete_requests(&mut p, conn, 100);
    let mut rejected = HashSet::new();
    run(&mut p, Duration::from_secs(1), |_, cev, _| {
        rejected.extend(cev.iter().filter(|e| e.kind == QS_EVENT_STREAM_STOPPED && e.code == 0x10b).map(|e| e.stream));
        false
    });
    let held = heap::live() - before;
    let s = endpoint_stats(p.server);
    eprintln!("100 incomplete 64 KiB header sections: the pair holds {} KiB more heap, the server counts {} KiB, refused {}",
        held >> 10, s.unauthenticated_bytes >> 10, s.refused_requests);
    assert!(s.unauthenticated_bytes <= 1 << 20, "counted {} bytes over the 1 MiB per-connection cap", s.unauthenticated_bytes);
    assert!(s.refused_requests >= 80, "the streams over the cap were refused ({})", s.refused_requests);
    assert!(held < 2 << 20, "the pair holds {held} bytes for the incomplete requests");

    // A request that arrives whole is served meanwhile.
    let sid = complete_request(&mut p, conn);
    let mut served = false;
    run(&mut p, Duration::from_secs(1), |_, _, sev| {
        served |= sev.iter().any(|e| e.kind == QS_EVENT_H3_HEADERS && e.conn == sconn && e.stream == sid);
        served
    });
    assert!(served, "the complete request reached the server's application");

    // Past the header deadline the rest are refused and their memory returned.
    let until = p.now + 11_000 * MS;
    run(&mut p, Duration::from_secs(12), |p, _, _| p.now >= until);
    let s = endpoint_stats(p.server);
    let after = heap::live() - before;
    eprintln!("after the header deadline: {} KiB more heap than before, the server counts {} bytes, refused {}",
        after >> 10, s.unauthenticated_bytes, s.refused_requests);
    assert_eq!(s.unauthenticated_bytes, 0);
    assert_eq!(s.refused_requests, 100, "every incomplete request was refused, by a cap or the deadline");
    assert!(after < 512 << 10, "{after} bytes still held after the deadline");
}

/// Once the connection authenticated (`qs_conn_authenticated`, after a request's token was accepted), its
/// incomplete requests are its own business: nothing is refused or counted.
#[test]
fn an_authenticated_connection_is_not_held_to_the_unauthenticated_limits() {
    let (mut p, conn, sconn) = raw_h3_pair();
    assert_eq!(qs_conn_authenticated(p.server, sconn), QS_OK);
    open_incomplete_requests(&mut p, conn, 40);
    run(&mut p, Duration::from_secs(1), |_, _, _| false);
    let s = endpoint_stats(p.server);
    assert_eq!((s.unauthenticated_bytes, s.refused_requests), (0, 0));
    // Without it, the same 40 requests go over the 1 MiB per-connection default.
    let (mut p, conn, _) = raw_h3_pair();
    open_incomplete_requests(&mut p, conn, 40);
    run(&mut p, Duration::from_secs(1), |_, _, _| false);
    let s = endpoint_stats(p.server);
    assert!(s.refused_requests > 0 && s.unauthenticated_bytes <= 1 << 20, "refused {}, counted {}", s.refused_requests, s.unauthenticated_bytes);
}

/// A peer that resets its requests before their header sections complete leaves nothing behind: quiche's
/// HTTP/3 layer kept each partial section's buffer until the connection ended.
#[test]
fn requests_reset_before_their_header_sections_complete_leave_nothing_held() {
    let (mut p, conn, sconn) = raw_h3_pair();
    assert_eq!(qs_conn_authenticated(p.server, sconn), QS_OK); // no limits: only the reset frees them
    run(&mut p, Duration::from_millis(100), |_, _, _| false);
    let before = heap::live();
    open_incomplete_requests(&mut p, conn, 10);
    run(&mut p, Duration::from_secs(1), |_, _, _| false);
    let held = heap::live() - before;
    for sid in (0..10).map(|i| i * 4) {
        assert_eq!(qs_stream_reset(p.client, conn, sid, 0x10c), QS_OK, "{}", last_error());
    }
    run(&mut p, Duration::from_secs(1), |_, _, _| false);
    let after = heap::live() - before;
    eprintln!("10 incomplete 64 KiB sections held {} KiB; after the client reset them, {} KiB", held >> 10, after >> 10);
    assert!(held > 10 * (60 << 10), "the sections were held ({held} bytes)");
    assert!(after < 128 << 10, "{after} bytes still held after the resets");
}

/// A server killed and started again (same key) answers its old clients' next packets with a stateless
/// reset, so they close at once and can reconnect, instead of waiting out the idle timeout (30 s).
#[test]
fn a_restarted_server_resets_its_old_connections_at_once() {
    let mut p = Pair::with(|_| {}, |s| {
        qs_config_set_retry(s, true);
    });
    let (conn, _, _, _) = handshake(&mut p, Duration::from_secs(5));
    let settled = p.now + 100 * MS;
    run(&mut p, Duration::from_secs(1), |p, _, _| p.now >= settled);
    p.restart_server();
    let mut sid = 0u64;
    let mut code = 0u64;
    assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK);
    assert_eq!(qs_stream_write(p.client, conn, sid, b"after the restart".as_ptr(), 17, false, &mut code), 17);
    let start = p.now;
    let mut closed = None;
    run(&mut p, Duration::from_secs(35), |p, cev, _| {
        if let Some(e) = cev.iter().find(|e| e.kind == QS_EVENT_CONNECTION_CLOSED && e.conn == conn) {
            closed = Some((e.detail, Duration::from_nanos(p.now - start)));
        }
        closed.is_some()
    });
    let (detail, after) = closed.expect("the client's connection closed");
    eprintln!("closed {after:?} after the first packet to the restarted server (close kind {detail})");
    assert_eq!(detail, QS_CLOSE_RESET);
    assert!(after < Duration::from_millis(100), "closed within a round trip, not the idle timeout ({after:?})");
    assert!(endpoint_stats(p.server).resets_sent >= 1);
}

/// A stateless reset carries a token only the server's key makes: another server (another key) that
/// gets the client's packets cannot end the connection.
#[test]
fn a_server_with_another_key_cannot_reset_the_connection() {
    let mut p = Pair::new(|_| {});
    let (conn, _, _, _) = handshake(&mut p, Duration::from_secs(5));
    let (_, chain, key) = pki();
    p.identity = (chain, key);
    p.restart_server();
    let (mut sid, mut code) = (0u64, 0u64);
    assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK);
    assert_eq!(qs_stream_write(p.client, conn, sid, b"x".as_ptr(), 1, false, &mut code), 1);
    let mut closed = None;
    run(&mut p, Duration::from_secs(60), |p, cev, _| {
        if let Some(e) = cev.iter().find(|e| e.kind == QS_EVENT_CONNECTION_CLOSED) {
            closed = Some((e.detail, p.elapsed()));
        }
        closed.is_some()
    });
    assert!(endpoint_stats(p.server).resets_sent >= 1, "the other server answered with its own resets");
    assert_eq!(closed.map(|c| c.0), Some(QS_CLOSE_TIMED_OUT), "the connection ended only at the idle timeout");
}
