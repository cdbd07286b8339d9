//! Stateless Retry tokens: prove a client owns its address before the server
//! keeps any state for it. A token binds the client's address and port, the
//! connection ID it first chose, and the time it was issued, under an HMAC key
//! that never leaves the endpoint. Times are the endpoint's own clock in whole
//! seconds: the key is the endpoint's alone, so no other clock need agree.

use std::net::SocketAddr;
use std::time::Duration;

use crate::boring;

const MAGIC: u8 = b'q';
const MAC_LEN: usize = 32;
/// How long a token is accepted after it was issued.
pub const LIFETIME: Duration = Duration::from_secs(10);

pub struct RetryKey([u8; 32]);

fn addr_bytes(a: &SocketAddr) -> Vec<u8> {
    let mut v = match a.ip() {
        std::net::IpAddr::V4(ip) => ip.to_ipv6_mapped().octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}

impl RetryKey {
    pub fn new() -> RetryKey {
        let mut k = [0u8; 32];
        boring::random(&mut k);
        RetryKey(k)
    }

    fn mac(&self, peer: &SocketAddr, issued: u64, odcid: &[u8]) -> [u8; MAC_LEN] {
        let mut data = addr_bytes(peer);
        data.extend_from_slice(&issued.to_be_bytes());
        data.extend_from_slice(odcid);
        boring::hmac_sha256(&self.0, &data)
    }

    /// A token for `peer`, whose first Initial named `odcid`, issued at `now` (seconds).
    pub fn mint(&self, peer: &SocketAddr, odcid: &[u8], now: u64) -> Vec<u8> {
        let issued = now;
        let mut t = Vec::with_capacity(1 + 8 + 1 + odcid.len() + MAC_LEN);
        t.push(MAGIC);
        t.extend_from_slice(&issued.to_be_bytes());
        t.push(odcid.len() as u8);
        t.extend_from_slice(odcid);
        t.extend_from_slice(&self.mac(peer, issued, odcid));
        t
    }

    /// The original destination connection ID when the token is ours, for this peer, and fresh.
    pub fn validate(&self, peer: &SocketAddr, token: &[u8], now: u64) -> Option<Vec<u8>> {
        let (&magic, rest) = token.split_first()?;
        if magic != MAGIC || rest.len() < 9 {
            return None;
        }
        let issued = u64::from_be_bytes(rest[..8].try_into().ok()?);
        let n = usize::from(rest[8]);
        let rest = &rest[9..];
        if rest.len() != n + MAC_LEN || n > quiche::MAX_CONN_ID_LEN {
            return None;
        }
        let (odcid, mac) = rest.split_at(n);
        if issued > now + 1 || now - issued.min(now) > LIFETIME.as_secs() {
            return None;
        }
        boring::equal(mac, &self.mac(peer, issued, odcid)).then(|| odcid.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_valid_only_for_its_address() {
        let k = RetryKey::new();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let t = k.mint(&a, &[1, 2, 3, 4, 5, 6, 7, 8], 100);
        assert_eq!(k.validate(&a, &t, 100), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(k.validate(&b, &t, 100), None, "another port");
        let mut forged = t.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(k.validate(&a, &forged, 100), None, "a changed MAC");
        assert_eq!(RetryKey::new().validate(&a, &t, 100), None, "another endpoint's key");
        assert_eq!(k.validate(&a, &t[..t.len() - 1], 100), None, "truncated");
        assert!(k.validate(&a, &t, 100 + LIFETIME.as_secs()).is_some(), "still fresh at its lifetime");
        assert_eq!(k.validate(&a, &t, 101 + LIFETIME.as_secs()), None, "expired");
    }
}
