//! The few BoringSSL calls the shim makes itself (quiche links BoringSSL
//! statically, so these resolve inside this library): X.509 parsing and
//! verification for pins, names and clear error classes, HMAC for Retry
//! tokens, SHA-256 and randomness, HKDF, AES-128-GCM and one AES block for
//! the Initial packets of refusals. Safe wrappers only; nothing else calls
//! `extern` functions.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::ptr;

#[allow(non_camel_case_types)]
type X509 = c_void;
#[allow(non_camel_case_types)]
type EVP_PKEY = c_void;
#[allow(non_camel_case_types)]
type BIO = c_void;
#[allow(non_camel_case_types)]
type X509_STORE = c_void;
#[allow(non_camel_case_types)]
type X509_STORE_CTX = c_void;
#[allow(non_camel_case_types)]
type STACK = c_void;
#[allow(non_camel_case_types)]
type EVP_AEAD_CTX = c_void;

/// BoringSSL's `AES_KEY` (aes.h): the expanded round keys for up to AES_MAXNR = 14 rounds.
#[repr(C)]
struct AesKey {
    rd_key: [u32; 4 * 15],
    rounds: c_uint,
}

// Not part of the C ABI: these are BoringSSL's own symbols, resolved at link time.
#[allow(unused_doc_comments)]
/// cbindgen:ignore
extern "C" {
    fn RAND_bytes(buf: *mut u8, len: usize) -> c_int;
    fn EVP_sha256() -> *const c_void;
    fn HMAC(md: *const c_void, key: *const c_void, key_len: usize, data: *const u8, data_len: usize, out: *mut u8, out_len: *mut c_uint) -> *mut u8;
    fn CRYPTO_memcmp(a: *const c_void, b: *const c_void, len: usize) -> c_int;
    fn SHA256(data: *const u8, len: usize, out: *mut u8) -> *mut u8;
    fn HKDF_extract(out: *mut u8, out_len: *mut usize, md: *const c_void, secret: *const u8, secret_len: usize, salt: *const u8, salt_len: usize) -> c_int;
    fn HKDF_expand(out: *mut u8, out_len: usize, md: *const c_void, prk: *const u8, prk_len: usize, info: *const u8, info_len: usize) -> c_int;
    fn EVP_aead_aes_128_gcm() -> *const c_void;
    fn EVP_AEAD_CTX_new(aead: *const c_void, key: *const u8, key_len: usize, tag_len: usize) -> *mut EVP_AEAD_CTX;
    fn EVP_AEAD_CTX_free(ctx: *mut EVP_AEAD_CTX);
    #[allow(clippy::too_many_arguments)]
    fn EVP_AEAD_CTX_seal(
        ctx: *const EVP_AEAD_CTX,
        out: *mut u8,
        out_len: *mut usize,
        max_out: usize,
        nonce: *const u8,
        nonce_len: usize,
        input: *const u8,
        in_len: usize,
        ad: *const u8,
        ad_len: usize,
    ) -> c_int;
    fn AES_set_encrypt_key(key: *const u8, bits: c_uint, out: *mut AesKey) -> c_int;
    fn AES_encrypt(input: *const u8, out: *mut u8, key: *const AesKey);
    fn ERR_get_error() -> u32;
    fn ERR_clear_error();
    fn ERR_error_string_n(e: u32, buf: *mut c_char, len: usize);

    fn BIO_new_mem_buf(buf: *const c_void, len: c_int) -> *mut BIO;
    fn BIO_free(bio: *mut BIO) -> c_int;
    fn PEM_read_bio_X509(bio: *mut BIO, x: *mut *mut X509, cb: *const c_void, u: *mut c_void) -> *mut X509;
    fn PEM_read_bio_PrivateKey(bio: *mut BIO, x: *mut *mut EVP_PKEY, cb: *const c_void, u: *mut c_void) -> *mut EVP_PKEY;
    fn EVP_PKEY_free(k: *mut EVP_PKEY);
    fn X509_check_private_key(x: *const X509, k: *const EVP_PKEY) -> c_int;
    fn d2i_X509(out: *mut *mut X509, inp: *mut *const u8, len: c_long) -> *mut X509;
    fn i2d_X509(x: *const X509, out: *mut *mut u8) -> c_int;
    fn X509_free(x: *mut X509);
    fn X509_get_X509_PUBKEY(x: *const X509) -> *mut c_void;
    fn i2d_X509_PUBKEY(k: *const c_void, out: *mut *mut u8) -> c_int;
    fn X509_check_host(x: *mut X509, chk: *const c_char, len: usize, flags: c_uint, peername: *mut *mut c_char) -> c_int;
    fn X509_check_ip(x: *mut X509, chk: *const u8, len: usize, flags: c_uint) -> c_int;
    fn X509_check_ca(x: *mut X509) -> c_int;

    fn X509_STORE_new() -> *mut X509_STORE;
    fn X509_STORE_free(s: *mut X509_STORE);
    fn X509_STORE_add_cert(s: *mut X509_STORE, x: *mut X509) -> c_int;
    fn X509_STORE_CTX_new() -> *mut X509_STORE_CTX;
    fn X509_STORE_CTX_free(c: *mut X509_STORE_CTX);
    fn X509_STORE_CTX_init(c: *mut X509_STORE_CTX, s: *mut X509_STORE, leaf: *mut X509, chain: *mut STACK) -> c_int;
    fn X509_STORE_CTX_set_purpose(c: *mut X509_STORE_CTX, purpose: c_int) -> c_int;
    fn X509_verify_cert(c: *mut X509_STORE_CTX) -> c_int;
    fn X509_STORE_CTX_get_error(c: *const X509_STORE_CTX) -> c_int;
    fn X509_verify_cert_error_string(e: c_long) -> *const c_char;
    fn sk_new_null() -> *mut STACK;
    fn sk_push(sk: *mut STACK, p: *mut c_void) -> usize;
    fn sk_free(sk: *mut STACK);
}

pub(crate) const X509_PURPOSE_SSL_SERVER: c_int = 2;

/// Fills `buf` with cryptographically strong random bytes.
pub fn random(buf: &mut [u8]) {
    // SAFETY: buf is valid for its length. RAND_bytes never fails in BoringSSL (it aborts instead).
    unsafe { RAND_bytes(buf.as_mut_ptr(), buf.len()) };
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut n: c_uint = 0;
    // SAFETY: all pointers are valid for the lengths given; out holds 32 bytes (SHA-256).
    unsafe { HMAC(EVP_sha256(), key.as_ptr().cast(), key.len(), data.as_ptr(), data.len(), out.as_mut_ptr(), &mut n) };
    out
}

/// Compares in constant time.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    // SAFETY: both valid for a.len() bytes when the lengths agree.
    a.len() == b.len() && unsafe { CRYPTO_memcmp(a.as_ptr().cast(), b.as_ptr().cast(), a.len()) } == 0
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: out holds 32 bytes.
    unsafe { SHA256(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}

/// HKDF-Extract with SHA-256 (RFC 5869 §2.2): the pseudorandom key from `salt` and input keying material `ikm`.
pub fn hkdf_extract_sha256(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    let mut prk = [0u8; 32];
    let mut n = 0usize;
    // SAFETY: prk holds the 32 bytes of a SHA-256 PRK; the inputs are valid for their lengths.
    let ok = unsafe { HKDF_extract(prk.as_mut_ptr(), &mut n, EVP_sha256(), ikm.as_ptr(), ikm.len(), salt.as_ptr(), salt.len()) };
    assert!(ok == 1 && n == 32, "HKDF_extract failed");
    prk
}

/// HKDF-Expand with SHA-256 (RFC 5869 §2.3) into `out` (at most 255 x 32 bytes).
pub fn hkdf_expand_sha256(prk: &[u8], info: &[u8], out: &mut [u8]) {
    // SAFETY: all buffers are valid for the lengths given.
    let ok = unsafe { HKDF_expand(out.as_mut_ptr(), out.len(), EVP_sha256(), prk.as_ptr(), prk.len(), info.as_ptr(), info.len()) };
    assert!(ok == 1, "HKDF_expand failed");
}

/// AES-128-GCM: encrypts `buf[..len]` in place and appends the 16-byte tag (so `buf`
/// needs `len + 16` bytes), authenticating `ad` too. Returns the sealed length.
pub fn aes128_gcm_seal(key: &[u8; 16], nonce: &[u8; 12], ad: &[u8], buf: &mut [u8], len: usize) -> usize {
    assert!(buf.len() >= len + 16, "no room for the tag");
    let mut out_len = 0usize;
    // SAFETY: the context is freed before returning; BoringSSL allows in-place sealing (out == in).
    unsafe {
        let ctx = EVP_AEAD_CTX_new(EVP_aead_aes_128_gcm(), key.as_ptr(), key.len(), 16);
        assert!(!ctx.is_null(), "EVP_AEAD_CTX_new failed");
        let p = buf.as_mut_ptr();
        let ok = EVP_AEAD_CTX_seal(ctx, p, &mut out_len, buf.len(), nonce.as_ptr(), nonce.len(), p, len, ad.as_ptr(), ad.len());
        EVP_AEAD_CTX_free(ctx);
        assert!(ok == 1, "EVP_AEAD_CTX_seal failed");
    }
    out_len
}

/// AES-128 of one 16-byte block (for QUIC header protection, RFC 9001 §5.4.3).
pub fn aes128_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let mut k = AesKey { rd_key: [0; 60], rounds: 0 };
    let mut out = [0u8; 16];
    // SAFETY: a 128-bit key; in and out are one block each.
    unsafe {
        assert_eq!(AES_set_encrypt_key(key.as_ptr(), 128, &mut k), 0, "AES_set_encrypt_key failed");
        AES_encrypt(block.as_ptr(), out.as_mut_ptr(), &k);
    }
    out
}

/// The reason BoringSSL's error queue gives for the last failure, then clears it.
fn last_error() -> String {
    // SAFETY: plain calls into the thread's error queue; the buffer is NUL-terminated by ERR_error_string_n.
    unsafe {
        let e = ERR_get_error();
        ERR_clear_error();
        if e == 0 {
            return String::new();
        }
        let mut buf = [0 as c_char; 256];
        ERR_error_string_n(e, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

/// An owned X.509 certificate.
pub struct Cert(*mut X509);

// SAFETY: an X509 is reference-counted and immutable once parsed; we never mutate it.
unsafe impl Send for Cert {}
unsafe impl Sync for Cert {}

impl Drop for Cert {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { X509_free(self.0) };
    }
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Option<Cert> {
        let mut p = der.as_ptr();
        // SAFETY: p points at der.len() readable bytes.
        let x = unsafe { d2i_X509(ptr::null_mut(), &mut p, der.len() as c_long) };
        (!x.is_null()).then_some(Cert(x))
    }

    /// Every certificate in a PEM text, in order. Err names what was wrong.
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Cert>, String> {
        let mut out = Vec::new();
        let len = c_int::try_from(pem.len()).map_err(|_| "the PEM is larger than 2 GiB".to_string())?;
        // SAFETY: the BIO reads from pem, which outlives it; every X509 returned is owned by a Cert.
        unsafe {
            let bio = BIO_new_mem_buf(pem.as_ptr().cast(), len);
            loop {
                let x = PEM_read_bio_X509(bio, ptr::null_mut(), ptr::null(), ptr::null_mut());
                if x.is_null() {
                    break;
                }
                out.push(Cert(x));
            }
            BIO_free(bio);
        }
        let err = last_error();
        // Running out of PEM blocks ends the loop with "no start line"; anything else is a damaged block.
        if !err.is_empty() && !err.contains("NO_START_LINE") {
            return Err(format!("a certificate block could not be parsed ({err})"));
        }
        Ok(out)
    }

    pub fn der(&self) -> Vec<u8> {
        // SAFETY: i2d with a null out pointer returns the length; then write into a buffer of that size.
        unsafe {
            let n = i2d_X509(self.0, ptr::null_mut());
            let mut v = vec![0u8; n.max(0) as usize];
            let mut p = v.as_mut_ptr();
            i2d_X509(self.0, &mut p);
            v
        }
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo (what `sha256//...` pins name).
    pub fn spki_sha256(&self) -> [u8; 32] {
        // SAFETY: as for der(); the X509_PUBKEY belongs to the certificate.
        unsafe {
            let k = X509_get_X509_PUBKEY(self.0);
            let n = i2d_X509_PUBKEY(k, ptr::null_mut());
            let mut v = vec![0u8; n.max(0) as usize];
            let mut p = v.as_mut_ptr();
            i2d_X509_PUBKEY(k, &mut p);
            sha256(&v)
        }
    }

    pub fn is_ca(&self) -> bool {
        // SAFETY: read-only query.
        unsafe { X509_check_ca(self.0) > 0 }
    }

    /// Whether the certificate covers `name`: an IP address literal against its IP SANs, otherwise a DNS name.
    pub fn covers(&self, name: &str) -> bool {
        // SAFETY: read-only queries with valid buffers.
        unsafe {
            match name.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v4)) => X509_check_ip(self.0, v4.octets().as_ptr(), 4, 0) == 1,
                Ok(std::net::IpAddr::V6(v6)) => X509_check_ip(self.0, v6.octets().as_ptr(), 16, 0) == 1,
                Err(_) => X509_check_host(self.0, name.as_ptr().cast(), name.len(), 0, ptr::null_mut()) == 1,
            }
        }
    }
}

/// Checks that a PEM private key parses and, given a certificate, belongs to it.
pub fn check_private_key(pem: &[u8], cert: Option<&Cert>) -> Result<(), String> {
    let len = c_int::try_from(pem.len()).map_err(|_| "the PEM is larger than 2 GiB".to_string())?;
    // SAFETY: as in all_from_pem; the key is freed before returning.
    unsafe {
        let bio = BIO_new_mem_buf(pem.as_ptr().cast(), len);
        let key = PEM_read_bio_PrivateKey(bio, ptr::null_mut(), ptr::null(), ptr::null_mut());
        BIO_free(bio);
        if key.is_null() {
            let e = last_error();
            return Err(format!("no usable '-----BEGIN PRIVATE KEY-----' (or RSA/EC PRIVATE KEY) block found ({e})"));
        }
        let ok = cert.map_or(true, |c| X509_check_private_key(c.0, key) == 1);
        EVP_PKEY_free(key);
        ERR_clear_error();
        if !ok {
            return Err("the private key does not belong to the certificate (their public keys differ)".into());
        }
    }
    Ok(())
}

/// A set of trust anchors.
pub struct Store(*mut X509_STORE);

// SAFETY: only read (verify) after it is built, and every build step takes &mut self.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: we own the store.
        unsafe { X509_STORE_free(self.0) };
    }
}

/// Why a chain did not verify: the X509_V_ERR_* code and its text.
pub struct VerifyError {
    pub code: i32,
    pub text: String,
}

pub(crate) const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
pub(crate) const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;
pub(crate) const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;
pub(crate) const X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
pub(crate) const X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
pub(crate) const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
pub(crate) const X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;

impl Store {
    pub fn new() -> Store {
        // SAFETY: allocation; BoringSSL aborts on out-of-memory.
        Store(unsafe { X509_STORE_new() })
    }

    pub fn add(&mut self, cert: &Cert) -> bool {
        // SAFETY: the store takes its own reference.
        let ok = unsafe { X509_STORE_add_cert(self.0, cert.0) } == 1;
        if !ok {
            last_error(); // a duplicate is not an error worth keeping
        }
        ok
    }

    /// Verifies `leaf` (with the peer's `intermediates`) up to one of the anchors, for `purpose`.
    pub fn verify(&self, leaf: &Cert, intermediates: &[Cert], purpose: c_int) -> Result<(), VerifyError> {
        // SAFETY: the context and stack are freed before returning; the certificates outlive them.
        unsafe {
            let ctx = X509_STORE_CTX_new();
            let chain = sk_new_null();
            for c in intermediates {
                sk_push(chain, c.0);
            }
            let mut result = Ok(());
            if X509_STORE_CTX_init(ctx, self.0, leaf.0, chain) != 1 {
                result = Err(VerifyError { code: -1, text: last_error() });
            } else {
                X509_STORE_CTX_set_purpose(ctx, purpose);
                if X509_verify_cert(ctx) != 1 {
                    let code = X509_STORE_CTX_get_error(ctx);
                    let text = CStr::from_ptr(X509_verify_cert_error_string(c_long::from(code))).to_string_lossy().into_owned();
                    result = Err(VerifyError { code, text });
                }
            }
            X509_STORE_CTX_free(ctx);
            sk_free(chain);
            ERR_clear_error();
            result
        }
    }
}
