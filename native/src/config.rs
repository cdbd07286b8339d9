//! Endpoint configuration: TLS material and transport settings, turned into
//! the engine's configuration when an endpoint is created.

use std::sync::Arc;

use crate::boring::{self, Cert};
use crate::error::{guard, guard_ptr, guard_status, slice, QsError, QsResult, QS_ERR_TLS_CONFIG, QS_OK};
use crate::live::Counted;
use crate::memfile::MemFile;
use crate::trust::ServerTrust;

/// BBRv2 (quiche's `Bbr2Gcongestion`): the default, built for long and lossy paths.
pub const QS_CC_BBR2: u32 = 0;
pub const QS_CC_CUBIC: u32 = 1;
pub const QS_CC_RENO: u32 = 2;

/// Settings for an endpoint. Opaque to the caller; build with `qs_config_*`.
pub struct QsConfig {
    _live: Counted,
    cert_chain_pem: Option<Vec<u8>>,
    cert_leaf: Option<Cert>,
    key_pem: Option<Vec<u8>>,
    roots: Vec<Cert>,
    pinned_certs: Vec<Vec<u8>>,
    pinned_spki: Vec<[u8; 32]>,
    client_roots_pem: Vec<u8>,
    client_roots: usize,
    require_client_cert: bool,
    alpn_wire: Vec<u8>,
    idle_timeout_ms: u64,
    pub(crate) keep_alive_ms: u64,
    max_bidi_streams: u64,
    max_uni_streams: u64,
    stream_receive_window: u64,
    receive_window: u64,
    congestion: u32,
    max_udp_payload: u16,
    pacing: bool,
    pub(crate) retry: bool,
    pub(crate) max_connections: u64,
}

/// What an endpoint is created from: the engine's configuration and the checks the shim makes itself.
pub struct Built {
    pub quiche: quiche::Config,
    /// Client: how to verify servers.
    pub trust: Option<Arc<ServerTrust>>,
    /// Server with client roots: refuse a client that presents no certificate.
    pub require_client_cert: bool,
    /// Server: the key of its stateless reset tokens, derived from its private key so that the same
    /// server restarted (same key) still resets the connections it had before.
    pub reset_key: Option<[u8; 32]>,
}

fn tls_err(message: String) -> QsError {
    QsError::new(QS_ERR_TLS_CONFIG, message)
}

fn parse_certs(pem: &[u8], what: &str) -> QsResult<Vec<Cert>> {
    let certs = Cert::all_from_pem(pem).map_err(|e| tls_err(format!("{what}: the PEM could not be parsed: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{what}: no '-----BEGIN CERTIFICATE-----' block found; expected a PEM-encoded X.509 certificate"
        )));
    }
    Ok(certs)
}

impl QsConfig {
    fn new() -> Self {
        QsConfig {
            _live: Counted::new(),
            cert_chain_pem: None,
            cert_leaf: None,
            key_pem: None,
            roots: Vec::new(),
            pinned_certs: Vec::new(),
            pinned_spki: Vec::new(),
            client_roots_pem: Vec::new(),
            client_roots: 0,
            require_client_cert: true,
            alpn_wire: Vec::new(),
            idle_timeout_ms: 30_000,
            keep_alive_ms: 0,
            max_bidi_streams: 100,
            max_uni_streams: 100,
            // Windows sized for long lossy paths: a hole waits a round trip or two for its repair
            // while the sender keeps going, so a window of several bandwidth-delay products
            // (40 ms at 100 MiB/s: 4 MiB) keeps it from stalling; in virtual time (tests/pair.rs,
            // long_path_goodput) 16 MiB reached 82 % of such a link with 1 % loss, 32 MiB 89 %.
            stream_receive_window: 32 << 20,
            receive_window: 64 << 20,
            congestion: QS_CC_BBR2,
            max_udp_payload: 1452,
            pacing: true,
            retry: false,
            max_connections: 10_000,
        }
    }

    pub fn build(&self, server: bool) -> QsResult<Built> {
        let mut q = quiche::Config::new(quiche::PROTOCOL_VERSION).map_err(|e| tls_err(format!("the engine refused its configuration: {e}")))?;
        // quiche needs an application protocol; raw QUIC endpoints that name none speak "quicsend".
        let alpn: &[u8] = if self.alpn_wire.is_empty() { b"\x08quicsend" } else { &self.alpn_wire };
        q.set_application_protos_wire_format(alpn).map_err(|e| QsError::arg(format!("ALPN list: {e}")))?;
        q.set_max_idle_timeout(self.idle_timeout_ms);
        q.set_initial_max_streams_bidi(self.max_bidi_streams);
        q.set_initial_max_streams_uni(self.max_uni_streams);
        q.set_initial_max_stream_data_bidi_local(self.stream_receive_window);
        q.set_initial_max_stream_data_bidi_remote(self.stream_receive_window);
        q.set_initial_max_stream_data_uni(self.stream_receive_window);
        q.set_initial_max_data(self.receive_window);
        // Memory held for a peer stays bounded by the windows: no auto-tuning beyond them.
        q.set_max_stream_window(self.stream_receive_window);
        q.set_max_connection_window(self.receive_window);
        q.set_cc_algorithm(match self.congestion {
            QS_CC_CUBIC => quiche::CongestionControlAlgorithm::CUBIC,
            QS_CC_RENO => quiche::CongestionControlAlgorithm::Reno,
            _ => quiche::CongestionControlAlgorithm::Bbr2Gcongestion,
        });
        if self.congestion == QS_CC_BBR2 {
            // BBR's loss threshold as its IETF drafts set it (BBRLossThresh, 2 %); quiche's default
            // is 1.5 %, which a path with 1 % random loss crosses too often by chance. With the
            // project's patch (bbr2-loss-tolerance) the lower bounds honour it too.
            q.set_custom_bbr_params(quiche::BbrParams { loss_threshold: Some(0.02), ..Default::default() });
        }
        q.enable_pacing(self.pacing);
        q.set_max_recv_udp_payload_size(usize::from(self.max_udp_payload));
        q.set_max_send_udp_payload_size(usize::from(self.max_udp_payload));
        // Datagrams are never fragmented (the driver sets DF), so the size must be one the path
        // carries: probe for it (RFC 8899) instead of assuming max_udp_payload fits every path
        // (a tunnel or VPN with a smaller MTU would drop every full datagram after the handshake).
        q.discover_pmtu(true);
        q.set_disable_active_migration(true);
        // No GREASE: every frame and setting on the wire is one a peer (or a test) can name.
        q.grease(false);

        let chain = self.cert_chain_pem.as_deref();
        let key = self.key_pem.as_deref();
        // quiche loads TLS material from paths; an anonymous in-memory file gives it one
        // without ever writing the private key to disk.
        let load_identity = |q: &mut quiche::Config, who: &str| -> QsResult<()> {
            let (Some(chain), Some(key)) = (chain, key) else { return Ok(()) };
            boring::check_private_key(key, self.cert_leaf.as_ref())
                .map_err(|e| tls_err(format!("the {who} certificate and private key cannot be used together: {e}")))?;
            let f = MemFile::new("quicsend-chain", chain)?;
            q.load_cert_chain_from_pem_file(f.path())
                .map_err(|e| tls_err(format!("the {who} certificate chain could not be loaded ({e})")))?;
            let f = MemFile::new("quicsend-key", key)?;
            q.load_priv_key_from_pem_file(f.path())
                .map_err(|e| tls_err(format!("the {who} certificate and private key cannot be used together ({e})")))?;
            Ok(())
        };
        if server {
            if key.is_none() {
                return Err(tls_err("a server needs a private key: load one with the PEM of the key that matches its certificate".into()));
            }
            if chain.is_none() {
                return Err(tls_err("a server needs a certificate chain: load the server certificate (PEM), then any intermediates".into()));
            }
            load_identity(&mut q, "server")?;
            if self.client_roots > 0 {
                let f = MemFile::new("quicsend-client-roots", &self.client_roots_pem)?;
                q.load_verify_locations_from_file(f.path())
                    .map_err(|e| tls_err(format!("the client certificate roots cannot be used ({e})")))?;
                // Asks for a certificate and verifies one that is presented; whether one is
                // required is checked by the shim once the handshake completes.
                q.verify_peer(true);
            } else {
                q.verify_peer(false);
            }
            let reset_key = key.map(|k| boring::hmac_sha256(k, b"quicsend stateless reset v1"));
            Ok(Built { quiche: q, trust: None, require_client_cert: self.client_roots > 0 && self.require_client_cert, reset_key })
        } else {
            if self.roots.is_empty() && self.pinned_certs.is_empty() && self.pinned_spki.is_empty() {
                return Err(tls_err(
                    "a client needs at least one trusted root or pin: add the CA certificate (PEM) that signed the server's \
                     certificate, or pin the server's certificate or public key"
                        .into(),
                ));
            }
            match (chain.is_some(), key.is_some()) {
                (false, true) => {
                    return Err(tls_err("a client private key was loaded but no client certificate: load the certificate (PEM) it belongs to".into()))
                }
                (true, false) => {
                    return Err(tls_err("a client certificate was loaded but no private key: load the PEM of the key that matches it".into()))
                }
                _ => load_identity(&mut q, "client")?,
            }
            // The shim verifies the server itself once the handshake completes (roots, pins,
            // name), so that each failure has its own code; no request byte is sent before.
            q.verify_peer(false);
            let mut store = boring::Store::new();
            for r in &self.roots {
                store.add(r);
            }
            let trust = ServerTrust {
                roots: (!self.roots.is_empty()).then_some(store),
                pinned_certs: self.pinned_certs.clone(),
                pinned_spki: self.pinned_spki.clone(),
            };
            Ok(Built { quiche: q, trust: Some(Arc::new(trust)), require_client_cert: false, reset_key: None })
        }
    }
}

fn with_config(cfg: *mut QsConfig, f: impl FnOnce(&mut QsConfig) -> QsResult<()>) -> i32 {
    guard_status(|| {
        if cfg.is_null() {
            return Err(QsError::arg("config is null"));
        }
        // SAFETY: non-null handle from qs_config_new, used from one thread at a time.
        f(unsafe { &mut *cfg })?;
        Ok(QS_OK)
    })
}

/// Creates a configuration with defaults (BBRv2, pacing, 30 s idle timeout, 100 streams each way).
/// Free with `qs_config_free`. Returns null on failure (see `qs_last_error`).
#[no_mangle]
pub extern "C" fn qs_config_new() -> *mut QsConfig {
    guard_ptr(|| Ok(Box::into_raw(Box::new(QsConfig::new()))))
}

/// Frees a configuration. Endpoints created from it keep working. Null is ignored.
#[no_mangle]
pub extern "C" fn qs_config_free(cfg: *mut QsConfig) {
    if !cfg.is_null() {
        // SAFETY: the pointer came from qs_config_new and is freed once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unsafe { Box::from_raw(cfg) })));
    }
}

/// Sets the certificate chain (PEM: the endpoint's certificate first, then intermediates).
/// A server presents it to every client; a client presents it when the server asks
/// for a client certificate (mutual TLS), and then needs the matching private key too.
#[no_mangle]
pub extern "C" fn qs_config_load_cert_chain_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let pem = slice(pem, len, "certificate chain")?;
        let mut certs = parse_certs(pem, "certificate chain")?;
        c.cert_leaf = Some(certs.swap_remove(0));
        c.cert_chain_pem = Some(pem.to_vec());
        Ok(())
    })
}

/// Sets the private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC) of the certificate chain.
#[no_mangle]
pub extern "C" fn qs_config_load_priv_key_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let pem = slice(pem, len, "private key")?;
        boring::check_private_key(pem, None).map_err(|e| tls_err(format!("private key: {e}")))?;
        c.key_pem = Some(pem.to_vec());
        Ok(())
    })
}

/// Adds every certificate in the PEM to the roots a client trusts.
#[no_mangle]
pub extern "C" fn qs_config_add_trusted_root_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        c.roots.extend(parse_certs(slice(pem, len, "trusted root")?, "trusted root")?);
        Ok(())
    })
}

/// Adds the certificates of a CA bundle (PEM, such as the system's
/// /etc/ssl/certs/ca-certificates.crt) to the roots a client trusts, skipping any
/// that cannot serve as a trust anchor. Returns how many were added; fails when none was.
#[no_mangle]
pub extern "C" fn qs_config_add_trusted_root_bundle_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i64 {
    guard(|| {
        if cfg.is_null() {
            return Err(QsError::arg("config is null"));
        }
        // SAFETY: non-null handle from qs_config_new, used from one thread at a time.
        let c = unsafe { &mut *cfg };
        let certs = parse_certs(slice(pem, len, "root bundle")?, "root bundle")?;
        let before = c.roots.len();
        c.roots.extend(certs.into_iter().filter(Cert::is_ca));
        let added = c.roots.len() - before;
        if added == 0 {
            return Err(tls_err("root bundle: none of its certificates can be used as a trust anchor".into()));
        }
        Ok(added as i64)
    })
}

/// Client: pins the server to the certificates in the PEM. The server's leaf
/// certificate must then equal (DER) one pinned certificate or carry one pinned
/// public key. With trusted roots, the chain is verified as well; without any,
/// the pin alone decides (the server name is still checked against the
/// certificate's subjectAltName, its validity dates are not).
#[no_mangle]
pub extern "C" fn qs_config_add_pinned_cert_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        for cert in parse_certs(slice(pem, len, "pinned certificate")?, "pinned certificate")? {
            c.pinned_spki.push(cert.spki_sha256());
            c.pinned_certs.push(cert.der());
        }
        Ok(())
    })
}

/// Client: pins the server to a public key: `hash` is the 32-byte SHA-256 of the
/// DER SubjectPublicKeyInfo of its leaf certificate (curl's `sha256//BASE64`, decoded).
#[no_mangle]
pub extern "C" fn qs_config_add_pinned_spki_sha256(cfg: *mut QsConfig, hash: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let h: [u8; 32] = slice(hash, len, "public key pin")?
            .try_into()
            .map_err(|_| QsError::arg(format!("a public key pin is a 32-byte SHA-256, not {len} bytes")))?;
        c.pinned_spki.push(h);
        Ok(())
    })
}

/// Server: adds every certificate in the PEM to the roots client certificates
/// must chain to. With at least one, the server asks clients for a certificate
/// (mutual TLS); see `qs_config_set_require_client_cert`.
#[no_mangle]
pub extern "C" fn qs_config_add_client_root_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let pem = slice(pem, len, "client root")?;
        c.client_roots += parse_certs(pem, "client root")?.len();
        c.client_roots_pem.extend_from_slice(pem);
        c.client_roots_pem.push(b'\n');
        Ok(())
    })
}

/// Server with client roots: true (the default) refuses a client that presents no
/// certificate; false lets it in unauthenticated (a certificate it does present
/// must still verify). Without client roots, no client certificate is asked for.
#[no_mangle]
pub extern "C" fn qs_config_set_require_client_cert(cfg: *mut QsConfig, required: bool) -> i32 {
    with_config(cfg, |c| {
        c.require_client_cert = required;
        Ok(())
    })
}

/// Sets the ALPN protocols in wire format: each name preceded by its length byte.
#[no_mangle]
pub extern "C" fn qs_config_set_alpn(cfg: *mut QsConfig, protos: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let list = slice(protos, len, "ALPN list")?;
        let mut rest = list;
        while let Some((&n, tail)) = rest.split_first() {
            let n = n as usize;
            if n == 0 || n > tail.len() {
                return Err(QsError::arg("ALPN list is malformed: each protocol is a length byte (1-255) then that many bytes"));
            }
            rest = &tail[n..];
        }
        c.alpn_wire = list.to_vec();
        Ok(())
    })
}

/// Sets the idle timeout in milliseconds (0 disables it) and the keep-alive interval (0: none).
#[no_mangle]
pub extern "C" fn qs_config_set_timeouts(cfg: *mut QsConfig, idle_timeout_ms: u64, keep_alive_ms: u64) -> i32 {
    with_config(cfg, |c| {
        c.idle_timeout_ms = idle_timeout_ms;
        c.keep_alive_ms = keep_alive_ms;
        Ok(())
    })
}

/// Sets how many streams the peer may have open at once, per direction.
#[no_mangle]
pub extern "C" fn qs_config_set_max_streams(cfg: *mut QsConfig, bidi: u64, uni: u64) -> i32 {
    with_config(cfg, |c| {
        c.max_bidi_streams = bidi;
        c.max_uni_streams = uni;
        Ok(())
    })
}

/// Sets the receive flow-control windows in bytes, per stream and per connection:
/// the most a peer can make this side hold for it.
#[no_mangle]
pub extern "C" fn qs_config_set_windows(cfg: *mut QsConfig, stream_receive: u64, connection_receive: u64) -> i32 {
    with_config(cfg, |c| {
        if stream_receive == 0 || connection_receive == 0 {
            return Err(QsError::arg("flow-control windows must be greater than zero"));
        }
        c.stream_receive_window = stream_receive;
        c.receive_window = connection_receive;
        Ok(())
    })
}

/// Chooses the congestion controller: QS_CC_BBR2 (default), QS_CC_CUBIC or QS_CC_RENO.
#[no_mangle]
pub extern "C" fn qs_config_set_congestion(cfg: *mut QsConfig, algorithm: u32) -> i32 {
    with_config(cfg, |c| {
        if algorithm > QS_CC_RENO {
            return Err(QsError::arg(format!("unknown congestion controller {algorithm}: use 0 (BBRv2), 1 (CUBIC) or 2 (Reno)")));
        }
        c.congestion = algorithm;
        Ok(())
    })
}

/// Turns pacing on (the default) or off: with it, each transmit carries the time
/// it should leave (`QsTransmit.delay_ns`), spreading bursts over the round trip.
#[no_mangle]
pub extern "C" fn qs_config_set_pacing(cfg: *mut QsConfig, enabled: bool) -> i32 {
    with_config(cfg, |c| {
        c.pacing = enabled;
        Ok(())
    })
}

/// Sets the largest UDP payload sent and accepted (1200..=65527; default 1452).
#[no_mangle]
pub extern "C" fn qs_config_set_max_udp_payload(cfg: *mut QsConfig, max: u16) -> i32 {
    with_config(cfg, |c| {
        if max < 1200 || max > 65527 {
            return Err(QsError::arg(format!("UDP payload size {max} is invalid: need 1200 <= size <= 65527")));
        }
        c.max_udp_payload = max;
        Ok(())
    })
}

/// Server only: answer new clients with a stateless Retry to validate their address first.
#[no_mangle]
pub extern "C" fn qs_config_set_retry(cfg: *mut QsConfig, enabled: bool) -> i32 {
    with_config(cfg, |c| {
        c.retry = enabled;
        Ok(())
    })
}

/// Server only: refuse new connections beyond this many.
#[no_mangle]
pub extern "C" fn qs_config_set_max_connections(cfg: *mut QsConfig, max: u64) -> i32 {
    with_config(cfg, |c| {
        c.max_connections = max;
        Ok(())
    })
}
