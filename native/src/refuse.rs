//! Refusing a connection without keeping any state for it: one Initial packet
//! carrying CONNECTION_CLOSE with CONNECTION_REFUSED (RFC 9000 §10.2.3, §20.1),
//! protected with the Initial keys both sides derive from the destination
//! connection ID the client chose (RFC 9001 §5.2). The client learns at once why
//! it failed instead of timing out, and the server spends a few HMACs and one
//! AES-GCM seal: no TLS handshake, no connection, nothing kept after it is sent.

use crate::boring;

/// QUIC version 1, the only one the engine speaks (others get version negotiation).
pub(crate) const VERSION_1: u32 = 1;
/// RFC 9001 §5.2: the salt of version 1's Initial secrets.
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9000 §20.1: the server refuses to accept a new connection.
pub(crate) const CONNECTION_REFUSED: u64 = 0x2;
/// RFC 9000 §19.19: CONNECTION_CLOSE for a transport error (the only kind allowed in Initial packets).
const FRAME_CONNECTION_CLOSE: u8 = 0x1c;
const TAG_LEN: usize = 16;
/// One byte of packet number (it is 0): the header says so in its low two bits.
const PN_LEN: usize = 1;

/// The packet protection keys of one side's Initial packets.
#[derive(Debug, PartialEq)]
struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1), as QUIC uses it (RFC 9001 §5.1).
fn expand_label(secret: &[u8], label: &[u8], out: &mut [u8]) {
    const PREFIX: &[u8] = b"tls13 ";
    let mut info = Vec::with_capacity(4 + PREFIX.len() + label.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((PREFIX.len() + label.len()) as u8);
    info.extend_from_slice(PREFIX);
    info.extend_from_slice(label);
    info.push(0); // no context
    boring::hkdf_expand_sha256(secret, &info, out);
}

/// The server's Initial keys for a client whose Initial was sent to `client_dcid`.
fn server_initial_keys(client_dcid: &[u8]) -> Keys {
    let initial_secret = boring::hkdf_extract_sha256(&INITIAL_SALT_V1, client_dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial_secret, b"server in", &mut secret);
    let mut k = Keys { key: [0; 16], iv: [0; 12], hp: [0; 16] };
    expand_label(&secret, b"quic key", &mut k.key);
    expand_label(&secret, b"quic iv", &mut k.iv);
    expand_label(&secret, b"quic hp", &mut k.hp);
    k
}

/// Appends `v` as a QUIC variable-length integer (RFC 9000 §16), in `len` bytes (1, 2, 4 or 8).
fn put_varint(out: &mut Vec<u8>, v: u64, len: usize) {
    let prefix: u8 = match len {
        1 => 0x00,
        2 => 0x40,
        4 => 0x80,
        _ => 0xc0,
    };
    let bytes = v.to_be_bytes();
    let start = out.len();
    out.extend_from_slice(&bytes[8 - len..]);
    out[start] |= prefix;
}

/// A version 1 Initial packet from a server refusing the client whose Initial had
/// destination `client_dcid` and source `client_scid`, with `server_cid` as its own
/// connection ID and `reason` as the reason phrase. None when the client's IDs are
/// not ones a client may use (RFC 9000 §7.2: at least 8 bytes to the server, at most 20).
pub(crate) fn refusal(client_dcid: &[u8], client_scid: &[u8], server_cid: &[u8], reason: &[u8]) -> Option<Vec<u8>> {
    if !(8..=20).contains(&client_dcid.len()) || client_scid.len() > 20 || server_cid.len() > 20 || reason.len() > 1000 {
        return None;
    }
    let mut frame = Vec::with_capacity(8 + reason.len());
    frame.push(FRAME_CONNECTION_CLOSE);
    put_varint(&mut frame, CONNECTION_REFUSED, 1);
    put_varint(&mut frame, 0, 1); // not caused by a frame
    put_varint(&mut frame, reason.len() as u64, 2);
    frame.extend_from_slice(reason);

    // RFC 9000 §17.2.2: the long header of an Initial packet.
    let mut p = Vec::with_capacity(64 + frame.len() + TAG_LEN);
    p.push(0xc0 | (PN_LEN as u8 - 1)); // long header, fixed bit, type Initial, packet number length
    p.extend_from_slice(&VERSION_1.to_be_bytes());
    p.push(client_scid.len() as u8);
    p.extend_from_slice(client_scid);
    p.push(server_cid.len() as u8);
    p.extend_from_slice(server_cid);
    put_varint(&mut p, 0, 1); // a server's Initial carries no token
    put_varint(&mut p, (PN_LEN + frame.len() + TAG_LEN) as u64, 2);
    let pn_offset = p.len();
    p.push(0); // packet number 0: the nonce is the IV itself (RFC 9001 §5.3)
    let header_len = p.len();
    p.extend_from_slice(&frame);
    p.resize(p.len() + TAG_LEN, 0);

    let keys = server_initial_keys(client_dcid);
    let (header, body) = p.split_at_mut(header_len);
    boring::aes128_gcm_seal(&keys.key, &keys.iv, header, body, frame.len());

    // RFC 9001 §5.4: mask the first byte's low bits and the packet number with AES of a
    // sample taken 4 bytes after the packet number starts (the frame is long enough for it).
    let sample: [u8; 16] = p[pn_offset + 4..pn_offset + 20].try_into().ok()?;
    let mask = boring::aes128_block(&keys.hp, &sample);
    p[0] ^= mask[0] & 0x0f;
    for i in 0..PN_LEN {
        p[pn_offset + i] ^= mask[1 + i];
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn initial_keys_match_rfc_9001_appendix_a() {
        let k = server_initial_keys(&hex("8394c8f03e515708"));
        assert_eq!(k.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(k.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(k.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
    }

    #[test]
    fn varints_use_the_length_asked_for() {
        let mut v = Vec::new();
        put_varint(&mut v, 2, 1);
        put_varint(&mut v, 37, 2);
        assert_eq!(v, vec![0x02, 0x40, 0x25]);
    }

    #[test]
    fn a_refusal_is_a_protected_initial_for_the_client() {
        let p = refusal(&[7; 16], &[9; 16], &[5; 16], b"full").unwrap();
        assert_eq!(p[0] & 0xf0, 0xc0, "long header, Initial (the low bits are masked)");
        assert_eq!(&p[1..5], &[0, 0, 0, 1]);
        assert_eq!(usize::from(p[5]), 16);
        assert_eq!(&p[6..22], &[9; 16], "sent to the client's own connection ID");
        let frame_len = 1 + 1 + 1 + 2 + 4;
        assert_eq!(p.len(), 22 + 1 + 16 + 1 + 2 + PN_LEN + frame_len + TAG_LEN);
        assert!(refusal(&[7; 4], &[9; 16], &[5; 16], b"").is_none(), "a client's first DCID has at least 8 bytes");
    }
}
