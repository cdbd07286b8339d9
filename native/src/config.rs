//! Endpoint configuration: TLS material and transport settings, turned into
//! the engine's configuration when an endpoint is created.

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{ClientConfig, IdleTimeout, MtuDiscoveryConfig, ServerConfig, TransportConfig, VarInt};
use rustls::pki_types::pem::PemObject;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::error::{guard, guard_ptr, guard_status, slice, QsError, QsResult, QS_ERR_TLS_CONFIG, QS_OK};
use crate::live::Counted;
use crate::verify::{PinnedServerVerifier, Pins};

pub const QS_CC_BBR: u32 = 0;
pub const QS_CC_CUBIC: u32 = 1;
pub const QS_CC_NEW_RENO: u32 = 2;

/// Settings for an endpoint. Opaque to the caller; build with `qs_config_*`.
pub struct QsConfig {
    _live: Counted,
    cert_chain: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
    roots: RootCertStore,
    /// Client: the server's leaf must match one of these (when any).
    pins: Pins,
    /// Server: roots that client certificates must chain to (mutual TLS when any).
    client_roots: RootCertStore,
    /// Server with client roots: refuse clients that present no certificate.
    require_client_cert: bool,
    alpn: Vec<Vec<u8>>,
    idle_timeout_ms: u64,
    keep_alive_ms: u64,
    max_bidi_streams: u64,
    max_uni_streams: u64,
    stream_receive_window: u64,
    receive_window: u64,
    send_window: u64,
    congestion: u32,
    initial_mtu: u16,
    max_udp_payload: u16,
    pub(crate) retry: bool,
    pub(crate) max_connections: u64,
}

/// The engine configurations an endpoint is created from.
pub struct Built {
    pub server: Option<Arc<ServerConfig>>,
    pub client: Option<ClientConfig>,
    pub max_udp_payload: u16,
}

fn tls_err(message: String) -> QsError {
    QsError::new(QS_ERR_TLS_CONFIG, message)
}

fn parse_certs(pem: &[u8], what: &str) -> QsResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{what}: the PEM could not be parsed ({e:?})")))?;
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
            cert_chain: Vec::new(),
            key: None,
            roots: RootCertStore::empty(),
            pins: Pins::default(),
            client_roots: RootCertStore::empty(),
            require_client_cert: true,
            alpn: Vec::new(),
            idle_timeout_ms: 30_000,
            keep_alive_ms: 0,
            max_bidi_streams: 100,
            max_uni_streams: 100,
            // Windows sized for long fat paths: 16 MiB per stream, 32 MiB per connection.
            stream_receive_window: 16 << 20,
            receive_window: 32 << 20,
            send_window: 32 << 20,
            congestion: QS_CC_BBR,
            initial_mtu: 1200,
            max_udp_payload: 1452,
            retry: false,
            max_connections: 10_000,
        }
    }

    fn transport(&self) -> QsResult<TransportConfig> {
        let mut t = TransportConfig::default();
        let idle = if self.idle_timeout_ms == 0 {
            None
        } else {
            Some(
                IdleTimeout::try_from(Duration::from_millis(self.idle_timeout_ms))
                    .map_err(|_| QsError::arg("idle timeout is too large"))?,
            )
        };
        t.max_idle_timeout(idle);
        t.keep_alive_interval((self.keep_alive_ms > 0).then(|| Duration::from_millis(self.keep_alive_ms)));
        let varint = |v: u64, what: &str| VarInt::from_u64(v).map_err(|_| QsError::arg(format!("{what} {v} is too large")));
        t.max_concurrent_bidi_streams(varint(self.max_bidi_streams, "max bidirectional streams")?);
        t.max_concurrent_uni_streams(varint(self.max_uni_streams, "max unidirectional streams")?);
        t.stream_receive_window(varint(self.stream_receive_window, "stream receive window")?);
        t.receive_window(varint(self.receive_window, "connection receive window")?);
        t.send_window(self.send_window);
        t.initial_mtu(self.initial_mtu.min(self.max_udp_payload));
        let mut mtud = MtuDiscoveryConfig::default();
        mtud.upper_bound(self.max_udp_payload);
        t.mtu_discovery_config(Some(mtud));
        match self.congestion {
            QS_CC_BBR => t.congestion_controller_factory(Arc::new(BbrConfig::default())),
            QS_CC_CUBIC => t.congestion_controller_factory(Arc::new(CubicConfig::default())),
            QS_CC_NEW_RENO => t.congestion_controller_factory(Arc::new(NewRenoConfig::default())),
            other => return Err(QsError::arg(format!("unknown congestion controller {other}"))),
        };
        Ok(t)
    }

    pub fn build(&self, server: bool) -> QsResult<Built> {
        let transport = Arc::new(self.transport()?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if server {
            let key = self.key.as_ref().ok_or_else(|| {
                tls_err("a server needs a private key: load one with the PEM of the key that matches its certificate".into())
            })?;
            if self.cert_chain.is_empty() {
                return Err(tls_err("a server needs a certificate chain: load the server certificate (PEM), then any intermediates".into()));
            }
            let versions = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| tls_err(format!("TLS 1.3 is unavailable: {e}")))?;
            let with_auth = if self.client_roots.is_empty() {
                versions.with_no_client_auth()
            } else {
                let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(self.client_roots.clone()), provider);
                if !self.require_client_cert {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| tls_err(format!("the client certificate roots cannot be used: {e}")))?;
                versions.with_client_cert_verifier(verifier)
            };
            let mut tls = with_auth
                .with_single_cert(self.cert_chain.clone(), key.clone_key())
                .map_err(|e| tls_err(format!("the server certificate and private key cannot be used together: {e}")))?;
            tls.alpn_protocols = self.alpn.clone();
            tls.max_early_data_size = 0;
            let quic = QuicServerConfig::try_from(tls).map_err(|e| tls_err(format!("{e}")))?;
            let mut sc = ServerConfig::with_crypto(Arc::new(quic));
            sc.transport_config(transport);
            Ok(Built { server: Some(Arc::new(sc)), client: None, max_udp_payload: self.max_udp_payload })
        } else {
            if self.roots.is_empty() && self.pins.is_empty() {
                return Err(tls_err(
                    "a client needs at least one trusted root or pin: add the CA certificate (PEM) that signed the server's \
                     certificate, or pin the server's certificate or public key"
                        .into(),
                ));
            }
            let versions = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| tls_err(format!("TLS 1.3 is unavailable: {e}")))?;
            let with_verifier = if self.pins.is_empty() {
                versions.with_root_certificates(self.roots.clone())
            } else {
                let chain = if self.roots.is_empty() {
                    None
                } else {
                    Some(
                        WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots.clone()), provider.clone())
                            .build()
                            .map_err(|e| tls_err(format!("the trusted roots cannot be used: {e}")))?,
                    )
                };
                let verifier = PinnedServerVerifier::new(chain, self.pins.clone(), provider.signature_verification_algorithms);
                versions.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
            };
            let mut tls = match (self.cert_chain.is_empty(), &self.key) {
                (true, None) => with_verifier.with_no_client_auth(),
                (false, Some(key)) => with_verifier
                    .with_client_auth_cert(self.cert_chain.clone(), key.clone_key())
                    .map_err(|e| tls_err(format!("the client certificate and private key cannot be used together: {e}")))?,
                (true, Some(_)) => {
                    return Err(tls_err(
                        "a client private key was loaded but no client certificate: load the certificate (PEM) it belongs to".into(),
                    ))
                }
                (false, None) => {
                    return Err(tls_err(
                        "a client certificate was loaded but no private key: load the PEM of the key that matches it".into(),
                    ))
                }
            };
            tls.alpn_protocols = self.alpn.clone();
            let quic = QuicClientConfig::try_from(tls).map_err(|e| tls_err(format!("{e}")))?;
            let mut cc = ClientConfig::new(Arc::new(quic));
            cc.transport_config(transport);
            Ok(Built { server: None, client: Some(cc), max_udp_payload: self.max_udp_payload })
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

/// `with_config` for calls that return a count.
fn with_config_counting(cfg: *mut QsConfig, f: impl FnOnce(&mut QsConfig) -> QsResult<i64>) -> i64 {
    guard(|| {
        if cfg.is_null() {
            return Err(QsError::arg("config is null"));
        }
        // SAFETY: non-null handle from qs_config_new, used from one thread at a time.
        f(unsafe { &mut *cfg })
    })
}

/// Creates a configuration with defaults (BBR, 30 s idle timeout, 100 streams each way).
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
        c.cert_chain = parse_certs(slice(pem, len, "certificate chain")?, "certificate chain")?;
        Ok(())
    })
}

/// Sets the private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC) of the certificate chain.
#[no_mangle]
pub extern "C" fn qs_config_load_priv_key_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let key = PrivateKeyDer::from_pem_slice(slice(pem, len, "private key")?).map_err(|e| {
            tls_err(format!(
                "private key: no usable '-----BEGIN PRIVATE KEY-----' (or RSA/EC PRIVATE KEY) block found ({e:?})"
            ))
        })?;
        c.key = Some(key);
        Ok(())
    })
}

/// Adds every certificate in the PEM to the roots a client trusts.
#[no_mangle]
pub extern "C" fn qs_config_add_trusted_root_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        for cert in parse_certs(slice(pem, len, "trusted root")?, "trusted root")? {
            c.roots
                .add(cert)
                .map_err(|e| tls_err(format!("trusted root: the certificate cannot be used as a trust anchor ({e})")))?;
        }
        Ok(())
    })
}

/// Sets the ALPN protocols in wire format: each name preceded by its length byte.
#[no_mangle]
pub extern "C" fn qs_config_set_alpn(cfg: *mut QsConfig, protos: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let mut rest = slice(protos, len, "ALPN list")?;
        let mut list = Vec::new();
        while let Some((&n, tail)) = rest.split_first() {
            let n = n as usize;
            if n == 0 || n > tail.len() {
                return Err(QsError::arg("ALPN list is malformed: each protocol is a length byte (1-255) then that many bytes"));
            }
            list.push(tail[..n].to_vec());
            rest = &tail[n..];
        }
        c.alpn = list;
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

/// Sets flow-control windows in bytes: per stream and per connection for receiving, and the send buffer.
#[no_mangle]
pub extern "C" fn qs_config_set_windows(cfg: *mut QsConfig, stream_receive: u64, connection_receive: u64, send: u64) -> i32 {
    with_config(cfg, |c| {
        if stream_receive == 0 || connection_receive == 0 || send == 0 {
            return Err(QsError::arg("flow-control windows must be greater than zero"));
        }
        c.stream_receive_window = stream_receive;
        c.receive_window = connection_receive;
        c.send_window = send;
        Ok(())
    })
}

/// Chooses the congestion controller: QS_CC_BBR (default), QS_CC_CUBIC or QS_CC_NEW_RENO.
#[no_mangle]
pub extern "C" fn qs_config_set_congestion(cfg: *mut QsConfig, algorithm: u32) -> i32 {
    with_config(cfg, |c| {
        if algorithm > QS_CC_NEW_RENO {
            return Err(QsError::arg(format!(
                "unknown congestion controller {algorithm}: use 0 (BBR), 1 (CUBIC) or 2 (NewReno)"
            )));
        }
        c.congestion = algorithm;
        Ok(())
    })
}

/// Sets the first datagram size and the largest one path-MTU discovery may try (1200..=65527).
#[no_mangle]
pub extern "C" fn qs_config_set_mtu(cfg: *mut QsConfig, initial: u16, max: u16) -> i32 {
    with_config(cfg, |c| {
        if initial < 1200 || max < initial || max > 65527 {
            return Err(QsError::arg(format!(
                "MTU {initial}..{max} is invalid: need 1200 <= initial <= max <= 65527"
            )));
        }
        c.initial_mtu = initial;
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

/// Adds the certificates of a CA bundle (PEM, such as the system's
/// /etc/ssl/certs/ca-certificates.crt) to the roots a client trusts, skipping any
/// that cannot serve as a trust anchor. Returns how many were added; fails when none was.
#[no_mangle]
pub extern "C" fn qs_config_add_trusted_root_bundle_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i64 {
    with_config_counting(cfg, |c| {
        let certs = parse_certs(slice(pem, len, "root bundle")?, "root bundle")?;
        let (added, _skipped) = c.roots.add_parsable_certificates(certs);
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
        let certs = parse_certs(slice(pem, len, "pinned certificate")?, "pinned certificate")?;
        c.pins.certs.extend(certs);
        Ok(())
    })
}

/// Client: pins the server to a public key: `hash` is the 32-byte SHA-256 of the
/// DER SubjectPublicKeyInfo of its leaf certificate (curl's `sha256//BASE64`, decoded).
#[no_mangle]
pub extern "C" fn qs_config_add_pinned_spki_sha256(cfg: *mut QsConfig, hash: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        let bytes = slice(hash, len, "public key hash")?;
        let pin: [u8; 32] = bytes.try_into().map_err(|_| {
            QsError::arg(format!("a public key pin is a 32-byte SHA-256 hash, not {len} bytes"))
        })?;
        c.pins.spki_sha256.push(pin);
        Ok(())
    })
}

/// Server: adds every certificate in the PEM to the roots client certificates
/// must chain to. With at least one, the server asks clients for a certificate
/// (mutual TLS); see `qs_config_set_require_client_cert`.
#[no_mangle]
pub extern "C" fn qs_config_add_client_root_pem(cfg: *mut QsConfig, pem: *const u8, len: usize) -> i32 {
    with_config(cfg, |c| {
        for cert in parse_certs(slice(pem, len, "client certificate root")?, "client certificate root")? {
            c.client_roots.add(cert).map_err(|e| {
                tls_err(format!("client certificate root: the certificate cannot be used as a trust anchor ({e})"))
            })?;
        }
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
