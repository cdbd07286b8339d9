//! A client and a server endpoint of the shim driven against each other in one
//! process, datagrams handed over in memory: the C ABI exactly as the C# driver uses it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use quicsend_native::addr::QsAddr;
use quicsend_native::config::*;
use quicsend_native::endpoint::*;
use quicsend_native::error::*;
use quicsend_native::events::*;
use quicsend_native::stream::*;

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

struct Pair {
    client: *mut QsEndpoint,
    server: *mut QsEndpoint,
    caddr: QsAddr,
    saddr: QsAddr,
}

fn addr(port: u16) -> QsAddr {
    let mut a = QsAddr { family: 4, port, ..Default::default() };
    a.ip[..4].copy_from_slice(&[127, 0, 0, 1]);
    a
}

impl Pair {
    fn new(tweak: impl Fn(*mut QsConfig)) -> Pair {
        let (root, chain, key) = pki();
        let sc = qs_config_new();
        assert_eq!(qs_config_load_cert_chain_pem(sc, chain.as_ptr(), chain.len()), QS_OK);
        assert_eq!(qs_config_load_priv_key_pem(sc, key.as_ptr(), key.len()), QS_OK);
        let cc = qs_config_new();
        assert_eq!(qs_config_add_trusted_root_pem(cc, root.as_ptr(), root.len()), QS_OK);
        tweak(sc);
        tweak(cc);
        let server = qs_endpoint_new(sc, true);
        let client = qs_endpoint_new(cc, false);
        assert!(!server.is_null() && !client.is_null());
        qs_config_free(sc);
        qs_config_free(cc);
        Pair { client, server, caddr: addr(40000), saddr: addr(4433) }
    }

    /// Moves every pending datagram both ways (dropping those `drop` picks) and fires due timers.
    fn pump(&mut self, drop: &mut dyn FnMut() -> bool) -> usize {
        let mut moved = 0;
        let mut buf = vec![0u8; 65536];
        for (from, to, from_addr) in [(self.client, self.server, self.caddr), (self.server, self.client, self.saddr)] {
            loop {
                let mut t = QsTransmit::default();
                let rc = qs_endpoint_poll_transmit(from, buf.as_mut_ptr(), buf.len(), 16, &mut t);
                if rc == QS_DONE {
                    break;
                }
                assert_eq!(rc, QS_OK);
                let seg = t.segment_size.max(1);
                for d in buf[..t.len].chunks(seg) {
                    moved += 1;
                    if !drop() {
                        assert_eq!(qs_endpoint_recv(to, d.as_ptr(), d.len(), 0, &from_addr, std::ptr::null()), QS_OK);
                    }
                }
            }
        }
        for ep in [self.client, self.server] {
            if qs_endpoint_timeout(ep) == 0 {
                qs_endpoint_on_timeout(ep);
            }
        }
        moved
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

/// Runs until `done` or the deadline; sleeps only while waiting for a timer.
fn run(p: &mut Pair, secs: u64, mut step: impl FnMut(&mut Pair, Vec<QsEvent>, Vec<QsEvent>) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let moved = p.pump(&mut || false);
        let (c, s) = (Pair::events(p.client), Pair::events(p.server));
        let quiet = moved == 0 && c.is_empty() && s.is_empty();
        if step(p, c, s) {
            return true;
        }
        if quiet {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    false
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
    let name = b"localhost";
    let mut conn = 0u64;
    assert_eq!(qs_endpoint_connect(p.client, &p.saddr, name.as_ptr(), name.len(), &mut conn), QS_OK);
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent: HashMap<u64, usize> = HashMap::new();
    let mut echoed: HashMap<u64, (Vec<u8>, bool)> = HashMap::new(); // server: read, not yet written back; end seen
    let mut got: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut server_conn = 0u64;
    let mut finished = 0;
    let mut buf = vec![0u8; 1 << 16];
    let done = run(&mut p, 30, |p, cev, sev| {
        for e in cev.iter().chain(sev.iter()) {
            if std::env::var("PAIR_DEBUG").is_ok() {
                eprintln!("event kind {} detail {} conn {} stream {} code {}", e.kind, e.detail, e.conn, e.stream, e.code);
            }
        }
        for e in &sev {
            if e.kind == QS_EVENT_CONNECTED {
                server_conn = e.conn;
            }
        }
        if cev.iter().any(|e| e.kind == QS_EVENT_CONNECTED) {
            for _ in 0..16 {
                let mut sid = 0;
                assert_eq!(qs_stream_open(p.client, conn, false, &mut sid), QS_OK);
                sent.insert(sid, 0);
                got.insert(sid, Vec::new());
            }
        }
        // Client: write what fits, read what came back.
        for (sid, off) in sent.iter_mut() {
            while *off < size {
                let n = qs_stream_write(p.client, conn, *sid, data[*off..].as_ptr(), size - *off, true, std::ptr::null_mut());
                if n < 0 {
                    assert_eq!(n, QS_BLOCKED as i64);
                    break;
                }
                *off += n as usize;
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
                if !pending.is_empty() {
                    let n = qs_stream_write(p.server, server_conn, *sid, pending.as_ptr(), pending.len(), *ended, std::ptr::null_mut());
                    if n > 0 {
                        pending.drain(..n as usize);
                    }
                } else if *ended {
                    qs_stream_finish(p.server, server_conn, *sid);
                    *ended = false;
                }
            }
        }
        finished == 16
    });
    let report: Vec<String> = got.iter().map(|(s, v)| format!("{s}:{}/{}", v.len(), sent[s])).collect();
    let pend: Vec<String> = echoed.iter().map(|(s, (v, e))| format!("{s}:{}{}", v.len(), if *e { "E" } else { "" })).collect();
    assert!(done, "not done in time: client got/sent {report:?}; server pending {pend:?}");
    for (sid, v) in &got {
        assert_eq!(v.len(), size, "stream {sid}");
        assert!(v == &data, "stream {sid} intact");
    }
}

#[test]
#[ignore = "known gap: quiche cannot seal a CONNECTION_CLOSE before its first flight (CryptoFail), so a refused client times out instead"]
fn a_server_at_its_connection_limit_refuses_with_a_reason() {
    let mut p = Pair::new(|c| {
        qs_config_set_max_connections(c, 0);
    });
    let name = b"localhost";
    let mut conn = 0u64;
    assert_eq!(qs_endpoint_connect(p.client, &p.saddr, name.as_ptr(), name.len(), &mut conn), QS_OK);
    let mut failed = None;
    let done = run(&mut p, 10, |_, cev, _| {
        failed = failed.or(cev.iter().find(|e| e.kind == QS_EVENT_HANDSHAKE_FAILED).map(|e| e.detail));
        failed.is_some()
    });
    assert!(done, "the client hears of the refusal");
    assert_eq!(failed, Some(quicsend_native::trust::QS_REFUSED));
}
