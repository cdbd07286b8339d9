//! Verifying the server a client reached (roots, pins, name), and the stable
//! codes that say why a handshake failed, whatever the engine's wording.

use crate::boring::{self, Cert, Store, X509_PURPOSE_SSL_SERVER};

/// Why a handshake failed: `detail` of QS_EVENT_HANDSHAKE_FAILED.
/// The server's certificate does not chain to any trusted root.
pub const QS_TLS_UNKNOWN_ISSUER: u32 = 1;
/// The server's certificate does not cover the name (or IP) connected to.
pub const QS_TLS_NAME_MISMATCH: u32 = 2;
/// The server's certificate matches none of the pins.
pub const QS_PIN_MISMATCH: u32 = 3;
/// A certificate has expired or is not valid yet.
pub const QS_TLS_EXPIRED: u32 = 4;
/// A certificate is malformed or unusable for TLS (other verification failures).
pub const QS_TLS_BAD_CERTIFICATE: u32 = 5;
/// The peer refused this side's certificate (mutual TLS: not signed by a root the server trusts).
pub const QS_TLS_CERTIFICATE_REJECTED: u32 = 6;
/// The server requires a client certificate and none was presented.
pub const QS_TLS_CERTIFICATE_REQUIRED: u32 = 7;
/// The two sides share no application protocol (ALPN).
pub const QS_TLS_NO_APPLICATION_PROTOCOL: u32 = 8;
/// Another TLS failure; the text says which.
pub const QS_TLS_OTHER: u32 = 9;
/// The server refused the connection (its connection limit).
pub const QS_REFUSED: u32 = 10;
/// Nothing answered within the idle timeout.
pub const QS_TIMED_OUT: u32 = 11;
/// The connection was closed before the handshake completed for another reason.
pub const QS_HANDSHAKE_OTHER: u32 = 12;

/// TLS alert numbers (RFC 8446 §6) as they appear in QUIC's CRYPTO_ERROR range (0x100 + alert).
pub(crate) const ALERT_BAD_CERTIFICATE: u64 = 42;
pub(crate) const ALERT_CERTIFICATE_EXPIRED: u64 = 45;
pub(crate) const ALERT_UNKNOWN_CA: u64 = 48;
pub(crate) const ALERT_CERTIFICATE_REQUIRED: u64 = 116;
pub(crate) const ALERT_NO_APPLICATION_PROTOCOL: u64 = 120;
pub(crate) const CRYPTO_ERROR: u64 = 0x100;

pub struct Failure {
    pub code: u32,
    pub text: String,
    /// The TLS alert to close with.
    pub alert: u64,
}

/// How a client verifies servers.
pub struct ServerTrust {
    pub roots: Option<Store>,
    pub pinned_certs: Vec<Vec<u8>>,
    pub pinned_spki: Vec<[u8; 32]>,
}

impl ServerTrust {
    /// Checks the chain the server presented (leaf first): the pins, then the chain
    /// up to a trusted root (when roots are configured), then the name.
    pub fn verify(&self, chain: &[&[u8]], name: &str) -> Result<(), Failure> {
        let fail = |code, text: String, alert| Err(Failure { code, text, alert });
        let Some(leaf_der) = chain.first() else {
            return fail(QS_TLS_BAD_CERTIFICATE, "the server presented no certificate".into(), ALERT_CERTIFICATE_REQUIRED);
        };
        let Some(leaf) = Cert::from_der(leaf_der) else {
            return fail(QS_TLS_BAD_CERTIFICATE, "the server's certificate could not be parsed".into(), ALERT_BAD_CERTIFICATE);
        };
        if !self.pinned_certs.is_empty() || !self.pinned_spki.is_empty() {
            let spki = leaf.spki_sha256();
            let pinned = self.pinned_certs.iter().any(|p| boring::equal(p, leaf_der))
                || self.pinned_spki.iter().any(|p| boring::equal(p, &spki));
            if !pinned {
                return fail(
                    QS_PIN_MISMATCH,
                    format!(
                        "the server's certificate does not match the pinned certificate/key: it presented a certificate with public key sha256//{}",
                        base64(&spki)
                    ),
                    ALERT_BAD_CERTIFICATE,
                );
            }
        }
        if let Some(store) = &self.roots {
            let intermediates: Vec<Cert> = chain[1..].iter().filter_map(|d| Cert::from_der(d)).collect();
            if let Err(e) = store.verify(&leaf, &intermediates, X509_PURPOSE_SSL_SERVER) {
                let (code, alert) = match e.code {
                    boring::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
                    | boring::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
                    | boring::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
                    | boring::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                    | boring::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => (QS_TLS_UNKNOWN_ISSUER, ALERT_UNKNOWN_CA),
                    boring::X509_V_ERR_CERT_HAS_EXPIRED | boring::X509_V_ERR_CERT_NOT_YET_VALID => {
                        (QS_TLS_EXPIRED, ALERT_CERTIFICATE_EXPIRED)
                    }
                    _ => (QS_TLS_BAD_CERTIFICATE, ALERT_BAD_CERTIFICATE),
                };
                return fail(code, format!("the server's certificate did not verify: {} (X.509 error {})", e.text, e.code), alert);
            }
        }
        if !leaf.covers(name) {
            return fail(
                QS_TLS_NAME_MISMATCH,
                format!("the server's certificate is not valid for the name '{name}' (it is not among its subjectAltNames)"),
                ALERT_BAD_CERTIFICATE,
            );
        }
        Ok(())
    }
}

/// Standard base64 with padding (RFC 4648 §4), as curl writes `sha256//` pins.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Classifies a CONNECTION_CLOSE that ended a handshake: the peer's TLS alert, or a refusal.
pub fn classify_close(is_app: bool, code: u64) -> u32 {
    if is_app {
        return QS_HANDSHAKE_OTHER;
    }
    match code {
        0x2 => QS_REFUSED,
        c if c == CRYPTO_ERROR + ALERT_UNKNOWN_CA || c == CRYPTO_ERROR + ALERT_BAD_CERTIFICATE => QS_TLS_CERTIFICATE_REJECTED,
        c if c == CRYPTO_ERROR + ALERT_CERTIFICATE_REQUIRED => QS_TLS_CERTIFICATE_REQUIRED,
        c if c == CRYPTO_ERROR + ALERT_CERTIFICATE_EXPIRED => QS_TLS_EXPIRED,
        c if c == CRYPTO_ERROR + ALERT_NO_APPLICATION_PROTOCOL => QS_TLS_NO_APPLICATION_PROTOCOL,
        c if alert_of(c).is_some() => QS_TLS_OTHER,
        _ => QS_HANDSHAKE_OTHER,
    }
}

/// The TLS alert a transport error code carries, when it is in the CRYPTO_ERROR range.
pub(crate) fn alert_of(code: u64) -> Option<u64> {
    (CRYPTO_ERROR..CRYPTO_ERROR + 0x100).contains(&code).then(|| code - CRYPTO_ERROR)
}

/// The name of a TLS alert, for messages.
pub fn alert_name(alert: u64) -> &'static str {
    match alert {
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        80 => "internal_error",
        109 => "missing_extension",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "alert",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (raw, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(raw.as_bytes()), enc);
        }
    }
}
