//! Server certificate verification for clients that pin the server: the chain
//! is checked against the trusted roots (when there are any) and the leaf must
//! then match a pinned certificate (exact DER) or a pinned public key (SHA-256
//! of its SubjectPublicKeyInfo DER, the HPKP / curl `sha256//BASE64` form).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

/// What the leaf certificate may be: any of these certificates or public keys.
#[derive(Clone, Default)]
pub struct Pins {
    pub certs: Vec<CertificateDer<'static>>,
    pub spki_sha256: Vec<[u8; 32]>,
}

impl Pins {
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.spki_sha256.is_empty()
    }

    /// Ok when `leaf` is a pinned certificate or carries a pinned public key.
    pub fn check(&self, leaf: &CertificateDer<'_>) -> Result<(), Error> {
        if self.certs.iter().any(|c| c.as_ref() == leaf.as_ref()) {
            return Ok(());
        }
        let presented = spki_sha256(leaf)?;
        if self.spki_sha256.contains(&presented) {
            return Ok(());
        }
        Err(Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PinMismatch {
            presented,
            certs: self.certs.len(),
            keys: self.spki_sha256.len(),
        })))))
    }
}

impl fmt::Debug for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pins {{ certificates: {}, public keys: [", self.certs.len())?;
        for (i, h) in self.spki_sha256.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&pin_text(h))?;
        }
        f.write_str("] }")
    }
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo (the whole DER SEQUENCE).
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<[u8; 32], Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// The pin in curl's notation: `sha256//` then standard base64 with padding.
pub fn pin_text(hash: &[u8; 32]) -> String {
    format!("sha256//{}", base64(hash))
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The reason a pinned handshake fails. Its Debug form is the message itself,
/// because rustls prints `CertificateError::Other` with `{:?}`.
struct PinMismatch {
    presented: [u8; 32],
    certs: usize,
    keys: usize,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server certificate does not match the pinned certificate/key: it presented a certificate with public key {} \
             ({} pinned certificate(s), {} pinned key(s) checked); either a man in the middle answered, or the server's \
             certificate changed and the pins must be updated",
            pin_text(&self.presented),
            self.certs,
            self.keys
        )
    }
}

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

/// Verifies the server with pins, and with the roots' chain check when there are roots.
///
/// With roots: the chain must verify (expiry and server name included) and the leaf
/// must match a pin. Without roots: the pin alone vouches for the certificate (its
/// validity dates are not checked, as for any pinned self-signed certificate), but
/// the server name must still be one the certificate lists in its subjectAltName.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    pins: Pins,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServerVerifier {
    pub fn new(chain: Option<Arc<WebPkiServerVerifier>>, pins: Pins, algorithms: WebPkiSupportedAlgorithms) -> Self {
        PinnedServerVerifier { chain, pins, algorithms }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.chain {
            Some(webpki) => {
                webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
                self.pins.check(end_entity)?;
            }
            None => {
                self.pins.check(end_entity)?;
                let parsed = ParsedCertificate::try_from(end_entity)?;
                verify_server_name(&parsed, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input), expected);
        }
    }
}
