//! QPACK field sections (RFC 9204 §4.5) with the static table only.
//!
//! We advertise a dynamic table capacity of 0, so a peer may only send static
//! references and literals, and we only ever send those. Prefix integers and
//! string literals are HPACK's (RFC 7541 §5.1, §5.2) as RFC 9204 §4.1 adopts them.

use std::fmt;

use super::huffman;
use super::static_table::STATIC_TABLE;

/// One decoded field line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QpackError {
    /// Malformed block, bad index, bad Huffman, a dynamic-table reference (we advertise
    /// capacity 0), truncated input: H3 code `QPACK_DECOMPRESSION_FAILED` (0x200).
    Decompression(String),
    /// The decoded field section exceeds `max_field_section_size` (RFC 9114 §4.2.2 size:
    /// sum of name len + value len + 32 per field). `size` is the running total when
    /// the limit was passed, so a lower bound of the whole section's size.
    TooLarge { size: u64, limit: u64 },
}

impl fmt::Display for QpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QpackError::Decompression(why) => write!(f, "QPACK decompression failed: {why}"),
            QpackError::TooLarge { size, limit } => write!(
                f,
                "field section too large: at least {size} bytes (RFC 9114 §4.2.2), limit {limit}"
            ),
        }
    }
}

impl std::error::Error for QpackError {}

/// RFC 9114 §4.2.2: each field line costs 32 bytes on top of its name and value.
const FIELD_OVERHEAD: u64 = 32;

/// A u64 needs at most 10 bytes of 7 bits after the prefix; more is malformed.
const MAX_INT_CONTINUATIONS: usize = 10;

fn malformed(why: impl Into<String>) -> QpackError {
    QpackError::Decompression(why.into())
}

fn dynamic_reference(what: &str) -> QpackError {
    malformed(format!("{what} refers to the dynamic table, whose capacity is 0"))
}

/// Encodes a field section: required insert count 0, base 0; each field as an indexed static
/// field line when name AND value match a static entry, a literal with static name reference when
/// only the name matches, else a literal with literal name. Strings are Huffman-coded when that
/// is shorter. Names must already be lowercase (the caller guarantees it).
pub fn encode_field_section(fields: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
    // Required Insert Count 0, then Sign 0 and Delta Base 0 (RFC 9204 §4.5.1).
    out.extend_from_slice(&[0x00, 0x00]);
    for &(name, value) in fields {
        match find_static(name, value) {
            // §4.5.2: '1', T=1 (static), 6-bit index.
            Some((index, true)) => encode_int(out, 0b1100_0000, 6, index as u64),
            // §4.5.4: '01', N=0, T=1, 4-bit name index, then the value.
            Some((index, false)) => {
                encode_int(out, 0b0101_0000, 4, index as u64);
                encode_string(out, 0, 8, value);
            }
            // §4.5.6: '001', N=0, then the name as a 4-bit prefix string, then the value.
            None => {
                encode_string(out, 0b0010_0000, 4, name);
                encode_string(out, 0, 8, value);
            }
        }
    }
}

/// Decodes a whole field section (the payload of a HEADERS frame). Rejects any reference to the
/// dynamic table (required insert count != 0, post-base or dynamic indices) as `Decompression`.
/// Stops with `TooLarge` as soon as the running size passes `max_size` (do not allocate
/// unboundedly).
pub fn decode_field_section(block: &[u8], max_size: u64) -> Result<Vec<Field>, QpackError> {
    let mut input = block;
    let required_insert_count = decode_int(&mut input, 8, "required insert count")?;
    if required_insert_count != 0 {
        return Err(malformed(format!(
            "required insert count is {required_insert_count}, but the dynamic table capacity is 0"
        )));
    }
    let sign = input.first().ok_or_else(|| truncated("base"))? & 0x80 != 0;
    decode_int(&mut input, 7, "delta base")?;
    if sign {
        // Base = 0 - Delta Base - 1 would be negative (RFC 9204 §4.5.1.2).
        return Err(malformed("negative base with required insert count 0"));
    }
    // Any Delta Base is allowed without dynamic references; it is otherwise unused.

    let mut size = Budget { used: 0, limit: max_size };
    let mut fields = Vec::new();
    while let Some(&first) = input.first() {
        let field = if first & 0b1000_0000 != 0 {
            // §4.5.2 Indexed Field Line: 1 T Index(6+).
            if first & 0b0100_0000 == 0 {
                return Err(dynamic_reference("an indexed field line"));
            }
            let (name, value) = static_entry(decode_int(&mut input, 6, "static index")?)?;
            size.charge(FIELD_OVERHEAD + name.len() as u64 + value.len() as u64)?;
            Field { name: name.to_vec(), value: value.to_vec() }
        } else if first & 0b0100_0000 != 0 {
            // §4.5.4 Literal Field Line with Name Reference: 01 N T NameIndex(4+).
            if first & 0b0001_0000 == 0 {
                return Err(dynamic_reference("a literal field line's name"));
            }
            let (name, _) = static_entry(decode_int(&mut input, 4, "static name index")?)?;
            size.charge(FIELD_OVERHEAD + name.len() as u64)?;
            let value = decode_string(&mut input, 8, &mut size, "field value")?;
            Field { name: name.to_vec(), value }
        } else if first & 0b0010_0000 != 0 {
            // §4.5.6 Literal Field Line with Literal Name: 001 N H NameLen(3+).
            size.charge(FIELD_OVERHEAD)?;
            let name = decode_string(&mut input, 4, &mut size, "field name")?;
            let value = decode_string(&mut input, 8, &mut size, "field value")?;
            Field { name, value }
        } else if first & 0b0001_0000 != 0 {
            // §4.5.3: 0001 Index(4+).
            return Err(dynamic_reference("an indexed field line with post-base index"));
        } else {
            // §4.5.5: 0000 N NameIndex(3+).
            return Err(dynamic_reference("a literal field line with post-base name reference"));
        };
        fields.push(field);
    }
    Ok(fields)
}

/// The running RFC 9114 §4.2.2 size of a field section being decoded.
struct Budget {
    used: u64,
    limit: u64,
}

impl Budget {
    fn charge(&mut self, bytes: u64) -> Result<(), QpackError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(QpackError::TooLarge { size: self.used, limit: self.limit });
        }
        Ok(())
    }
}

/// The static entry with both `name` and `value` (`true`), else the first with `name`
/// (`false`; the first has the smallest index, so the shortest encoding).
fn find_static(name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
    let mut name_match = None;
    for (index, &(entry_name, entry_value)) in STATIC_TABLE.iter().enumerate() {
        if entry_name == name {
            if entry_value == value {
                return Some((index, true));
            }
            name_match = name_match.or(Some(index));
        }
    }
    name_match.map(|index| (index, false))
}

fn static_entry(index: u64) -> Result<(&'static [u8], &'static [u8]), QpackError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i))
        .copied()
        .ok_or_else(|| malformed(format!("static table index {index} is out of range (0..=98)")))
}

fn truncated(what: &str) -> QpackError {
    malformed(format!("field section ends inside the {what}"))
}

/// Appends `value` as a `prefix_bits`-bit prefix integer (RFC 7541 §5.1); `flags` holds
/// the bits of the first byte above the prefix. `prefix_bits` is 1..=8.
fn encode_int(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: u64) {
    let prefix_max = (1u64 << prefix_bits) - 1;
    if value < prefix_max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        out.push(0x80 | (rest as u8 & 0x7f));
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// The outcome of parsing a prefix integer from bytes that may still be arriving.
pub(crate) enum IntParse {
    /// The value and how many bytes it took.
    Complete(u64, usize),
    /// The bytes end inside the integer.
    Incomplete,
    /// Too many continuation bytes, or a value past u64; says which.
    Invalid(String),
}

/// Parses a `prefix_bits`-bit prefix integer (RFC 7541 §5.1) at the front of `input`,
/// ignoring the first byte's bits above the prefix. Rejects values past u64 and more
/// continuation bytes than a u64 needs. `prefix_bits` is 1..=8. Also used for the
/// instructions on the peer's QPACK streams, whose bytes arrive in pieces.
pub(crate) fn parse_int(input: &[u8], prefix_bits: u32) -> IntParse {
    let Some((&first, rest)) = input.split_first() else { return IntParse::Incomplete };
    let prefix_max = (1u64 << prefix_bits) - 1;
    let mut value = u64::from(first) & prefix_max;
    if value < prefix_max {
        return IntParse::Complete(value, 1);
    }
    let mut shift = 0u32;
    for (i, &byte) in rest.iter().enumerate() {
        if i >= MAX_INT_CONTINUATIONS {
            return IntParse::Invalid(format!("has more than {MAX_INT_CONTINUATIONS} continuation bytes"));
        }
        // The 7 new bits must fit at `shift`, and the sum must not wrap.
        let bits = u64::from(byte & 0x7f);
        let shifted = if shift < 64 && bits <= u64::MAX >> shift { Some(bits << shift) } else { None };
        match shifted.and_then(|bits| value.checked_add(bits)) {
            Some(v) => value = v,
            None => return IntParse::Invalid("overflows 64 bits".into()),
        }
        if byte & 0x80 == 0 {
            return IntParse::Complete(value, i + 2);
        }
        shift += 7;
    }
    if rest.len() >= MAX_INT_CONTINUATIONS {
        return IntParse::Invalid(format!("has more than {MAX_INT_CONTINUATIONS} continuation bytes"));
    }
    IntParse::Incomplete
}

/// Reads a prefix integer from the front of a complete field section, advancing `input`.
fn decode_int(input: &mut &[u8], prefix_bits: u32, what: &str) -> Result<u64, QpackError> {
    match parse_int(input, prefix_bits) {
        IntParse::Complete(value, used) => {
            *input = &input[used..];
            Ok(value)
        }
        IntParse::Incomplete => Err(truncated(what)),
        IntParse::Invalid(why) => Err(malformed(format!("{what} {why}"))),
    }
}

/// Appends `s` as a `prefix_bits`-bit prefix string literal (RFC 9204 §4.1.2): the H bit is
/// the bit just above the (`prefix_bits` - 1)-bit length. Huffman-coded only when shorter.
fn encode_string(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, s: &[u8]) {
    let huffman_len = huffman::encoded_len(s);
    if huffman_len < s.len() {
        encode_int(out, flags | 1 << (prefix_bits - 1), prefix_bits - 1, huffman_len as u64);
        huffman::encode(s, out);
    } else {
        encode_int(out, flags, prefix_bits - 1, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Reads a `prefix_bits`-bit prefix string literal, charging its decoded length to `size`
/// before allocating for it.
fn decode_string(
    input: &mut &[u8],
    prefix_bits: u32,
    size: &mut Budget,
    what: &str,
) -> Result<Vec<u8>, QpackError> {
    let first = *input.first().ok_or_else(|| truncated(what))?;
    let is_huffman = first & (1 << (prefix_bits - 1)) != 0;
    let len = decode_int(input, prefix_bits - 1, what)?;
    let (coded, rest) = usize::try_from(len)
        .ok()
        .filter(|&len| len <= input.len())
        .map(|len| input.split_at(len))
        .ok_or_else(|| {
            malformed(format!("{what} length {len} runs past the end of the field section"))
        })?;
    *input = rest;
    if !is_huffman {
        size.charge(len)?;
        return Ok(coded.to_vec());
    }
    // Codes are 5..=30 bits and padding under 8, so the decoded length lies between
    // 8*len/30 and 8*len/5. Charge the lower bound first so an oversized string is
    // refused before decoding; the allocation is then bounded by the input.
    let at_least = len.saturating_mul(8) / 30;
    size.charge(at_least)?;
    // Reserve no more than the remaining budget allows (plus the part already charged).
    let room = size.limit.saturating_sub(size.used).saturating_add(at_least);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    let mut decoded = Vec::with_capacity(room.min(coded.len().saturating_mul(8) / 5));
    huffman::decode(coded, &mut decoded)
        .map_err(|e| malformed(format!("invalid Huffman coding in {what}: {e}")))?;
    size.charge((decoded.len() as u64).saturating_sub(at_least))?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::h3::hex;

    fn field(name: &str, value: &str) -> Field {
        Field { name: name.as_bytes().to_vec(), value: value.as_bytes().to_vec() }
    }

    fn encode(fields: &[(&str, &str)]) -> Vec<u8> {
        let pairs: Vec<(&[u8], &[u8])> =
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        let mut out = Vec::new();
        encode_field_section(&pairs, &mut out);
        out
    }

    fn decode(block: &[u8]) -> Result<Vec<Field>, QpackError> {
        decode_field_section(block, u64::MAX)
    }

    fn assert_decompression(block: &[u8], needle: &str) {
        match decode(block) {
            Err(QpackError::Decompression(why)) => {
                assert!(why.contains(needle), "{why:?} does not mention {needle:?}");
            }
            other => panic!("expected Decompression({needle:?}), got {other:?}"),
        }
    }

    fn int_bytes(flags: u8, prefix_bits: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_int(&mut out, flags, prefix_bits, value);
        out
    }

    /// Tiny deterministic generator so the tests need no crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn bytes(&mut self, max_len: u64) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    // ---- prefix integers

    #[test]
    fn rfc7541_integer_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42, 8-bit.
        assert_eq!(int_bytes(0b1110_0000, 5, 10), [0b1110_1010]);
        assert_eq!(int_bytes(0, 5, 1337), [0x1f, 0x9a, 0x0a]);
        assert_eq!(int_bytes(0, 8, 42), [42]);
        let mut input: &[u8] = &[0xff, 0x9a, 0x0a, 0x55];
        assert_eq!(decode_int(&mut input, 5, "x"), Ok(1337));
        assert_eq!(input, [0x55]);
    }

    #[test]
    fn integers_round_trip_at_every_prefix() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut values =
            vec![0, 1, 126, 127, 128, 254, 255, 256, 16383, 16384, u64::MAX - 1, u64::MAX];
        values.extend((0..2000).map(|_| rng.next() >> rng.below(64)));
        for prefix_bits in 1..=8 {
            let flags = if prefix_bits == 8 { 0 } else { 0xffu8 << prefix_bits };
            for &v in &values {
                let bytes = int_bytes(flags, prefix_bits, v);
                assert!(bytes.len() <= 1 + MAX_INT_CONTINUATIONS);
                let mut input = &bytes[..];
                assert_eq!(decode_int(&mut input, prefix_bits, "x"), Ok(v), "{v} at {prefix_bits}");
                assert!(input.is_empty());
            }
        }
    }

    /// The Decompression message for an integer that must not decode.
    fn int_error(bytes: &[u8], prefix_bits: u32) -> String {
        match decode_int(&mut &bytes[..], prefix_bits, "n") {
            Err(QpackError::Decompression(why)) => why,
            other => panic!("{bytes:02x?} decoded as {other:?}"),
        }
    }

    #[test]
    fn integer_overflow_and_truncation_are_rejected() {
        // u64::MAX + 1: the prefix 255 plus u64::MAX - 254.
        let mut too_big = int_bytes(0, 8, u64::MAX);
        *too_big.get_mut(1).unwrap() += 1;
        assert!(int_error(&too_big, 8).contains("overflows"));
        // Eleven continuation bytes, even if they are only zero padding.
        let long = [&[0xffu8][..], &[0x80; 10], &[0x00]].concat();
        assert!(int_error(&long, 8).contains("continuation"));
        // Ten is fine.
        let ten = [&[0xffu8][..], &[0x80; 9], &[0x00]].concat();
        assert_eq!(decode_int(&mut &ten[..], 8, "n"), Ok(255));
        for bad in [&[][..], &[0x1f], &[0x1f, 0x80], &[0x1f, 0xff, 0xff]] {
            assert!(int_error(bad, 5).contains("ends inside"));
        }
    }

    // ---- decoding each representation

    #[test]
    fn rfc9204_b1_literal_with_name_reference() {
        let block = hex("0000 510b 2f69 6e64 6578 2e68 746d 6c");
        assert_eq!(decode(&block).unwrap(), [field(":path", "/index.html")]);
    }

    #[test]
    fn decodes_every_static_representation() {
        let mut block = vec![0x00, 0x00];
        block.push(0xc0 | 17); // indexed :method GET
        block.extend([0xff, 98 - 63]); // indexed, index 98 needs a continuation byte
        block.extend([0x51, 0x03]); // name ref :path (1), raw value
        block.extend(b"/ab");
        block.extend([0x7f, 95 - 15, 0x02]); // N=1, name ref user-agent (95), raw value
        block.extend(b"ua");
        block.push(0x5f); // name ref :status (24) via continuation, Huffman value "302"
        block.push(24 - 15);
        block.extend([0x82, 0x64, 0x02]);
        block.extend([0x23]); // literal name, raw name (len 3), raw value
        block.extend(b"x-a");
        block.extend([0x01, b'1']);
        block.extend([0x3b]); // N=1, H=1 name (len 3 Huffman), Huffman value
        let mut name = Vec::new();
        huffman::encode(b"x-bc", &mut name);
        assert_eq!(name.len(), 3);
        block.extend(&name);
        block.extend([0x80 | 0x03, 0x64, 0x0e, 0xff]); // Huffman "307"
        block.extend([0x27, 0x02]); // literal name of 7+2 = 9 bytes: 3-bit prefix overflows
        block.extend(b"x-longest");
        block.push(0x7f); // value of 127 + 1 = 128 bytes: 7-bit prefix overflows
        block.push(0x01);
        block.extend([b'v'; 128]);
        block.extend([0x20, 0x00]); // empty name and empty value are representable
        let want = vec![
            field(":method", "GET"),
            field("x-frame-options", "sameorigin"),
            field(":path", "/ab"),
            field("user-agent", "ua"),
            field(":status", "302"),
            field("x-a", "1"),
            field("x-bc", "307"),
            field("x-longest", &"v".repeat(128)),
            field("", ""),
        ];
        assert_eq!(decode(&block).unwrap(), want);
        assert_eq!(decode(&[0, 0]).unwrap(), []);
    }

    #[test]
    fn dynamic_table_references_are_rejected() {
        // RFC 9204 B.4's stream 8 block: Required Insert Count 4.
        assert_decompression(&hex("0500 80c1 81"), "required insert count");
        assert_decompression(&[0x00, 0x80], "negative base");
        assert_decompression(&[0x00, 0x00, 0x80], "dynamic table"); // indexed, T=0
        assert_decompression(&[0x00, 0x00, 0x10], "post-base index");
        assert_decompression(&[0x00, 0x00, 0x40, 0x00], "dynamic table"); // name ref, T=0
        assert_decompression(&[0x00, 0x00, 0x60, 0x00], "dynamic table"); // N=1, T=0
        assert_decompression(&[0x00, 0x00, 0x00, 0x00], "post-base name reference");
        assert_decompression(&[0x00, 0x00, 0x08, 0x00], "post-base name reference");
        // A non-zero Delta Base is harmless without dynamic references.
        assert_eq!(decode(&[0x00, 0x05, 0xd1]).unwrap(), [field(":method", "GET")]);
    }

    #[test]
    fn malformed_blocks_are_rejected() {
        assert_decompression(&[], "required insert count");
        assert_decompression(&[0x00], "base");
        assert_decompression(&[0x00, 0x00, 0xff, 0x24], "out of range"); // index 99
        assert_decompression(&[0x00, 0x00, 0x5f, 0x54], "out of range"); // name index 99
        assert_decompression(&[0x00, 0x00, 0xff], "ends inside the static index");
        assert_decompression(&[0x00, 0x00, 0x51], "ends inside the field value");
        assert_decompression(&[0x00, 0x00, 0x51, 0x05, b'a'], "runs past the end");
        assert_decompression(&[0x00, 0x00, 0x23, b'a', b'b'], "runs past the end");
        assert_decompression(&[0x00, 0x00, 0x21, b'a'], "ends inside the field value");
        // A huge claimed length is refused without allocating for it.
        let mut huge = vec![0x00, 0x00, 0x51];
        encode_int(&mut huge, 0, 7, 1 << 62);
        assert_decompression(&huge, "runs past the end");
        // Bad Huffman: a whole byte of ones is padding longer than 7 bits.
        assert_decompression(
            &[0x00, 0x00, 0x51, 0x81, 0xff],
            "invalid Huffman coding in field value",
        );
        assert_decompression(
            &[0x00, 0x00, 0x29, 0xff, 0x00],
            "invalid Huffman coding in field name",
        );
    }

    #[test]
    fn size_limit_is_enforced() {
        let block = encode(&[(":method", "GET"), ("x-a", "12345")]);
        let exact = (32 + 7 + 3) + (32 + 3 + 5);
        assert_eq!(decode_field_section(&block, exact).unwrap().len(), 2);
        assert_eq!(
            decode_field_section(&block, exact - 1),
            Err(QpackError::TooLarge { size: exact, limit: exact - 1 })
        );
        // The first field alone already passes a limit of 41.
        assert_eq!(
            decode_field_section(&block, 41),
            Err(QpackError::TooLarge { size: 42, limit: 41 })
        );
        assert_eq!(decode_field_section(&[0, 0], 0).unwrap(), []);
    }

    #[test]
    fn size_limit_stops_early() {
        // A megabyte of one-byte indexed lines would expand to ~43 MB of accounting.
        let mut block = vec![0x00, 0x00];
        block.resize(1 << 20, 0xc0 | 2);
        match decode_field_section(&block, 16 * 1024) {
            Err(QpackError::TooLarge { size, limit }) => {
                assert_eq!(limit, 16 * 1024);
                assert!(size <= limit + 32 + 3 + 1);
            }
            other => panic!("{other:?}"),
        }
        // A long Huffman value is refused from its coded length, before it is decoded.
        let mut block = vec![0x00, 0x00, 0x51];
        let value = vec![b'a'; 100_000];
        encode_string(&mut block, 0, 8, &value);
        assert!(matches!(decode_field_section(&block, 4096), Err(QpackError::TooLarge { .. })));
    }

    // ---- encoding choices

    #[test]
    fn encoder_picks_the_smallest_representation() {
        // Indexed: :method GET is static entry 17.
        assert_eq!(encode(&[(":method", "GET")]), [0x00, 0x00, 0xd1]);
        // Indexed needing a continuation: x-frame-options sameorigin is 98.
        assert_eq!(encode(&[("x-frame-options", "sameorigin")]), [0x00, 0x00, 0xff, 35]);
        // Name reference: :path is entry 1; "/index.html" is shorter Huffman-coded.
        let mut want = vec![0x00, 0x00, 0x51, 0x88];
        huffman::encode(b"/index.html", &mut want);
        assert_eq!(encode(&[(":path", "/index.html")]), want);
        // 302 is entry 66; 301 is not in the table, so a name reference to the first
        // :status entry (24, past the 4-bit prefix) with a Huffman-coded value.
        assert_eq!(encode(&[(":status", "302")]), [0x00, 0x00, 0xff, 66 - 63]);
        assert_eq!(encode(&[(":status", "301")]), [0x00, 0x00, 0x5f, 0x09, 0x82, 0x64, 0x01]);
        // Literal name; a value that Huffman would lengthen stays raw.
        assert_eq!(encode(&[("x-a", "\x01")]), [0x00, 0x00, 0x23, b'x', b'-', b'a', 0x01, 0x01]);
        // Literal name that is Huffman-coded (custom-key: 8 bytes instead of 10).
        assert_eq!(
            encode(&[("custom-key", "")]),
            [&[0x00, 0x00, 0x2f, 0x01][..], &hex("25a8 49e9 5ba9 7d7f"), &[0x00]].concat()
        );
    }

    #[test]
    fn display_names_the_problem() {
        let text = decode(&[0x00, 0x00, 0x80]).unwrap_err().to_string();
        assert!(
            text.contains("QPACK decompression failed") && text.contains("dynamic table"),
            "{text}"
        );
        let text = QpackError::TooLarge { size: 5000, limit: 4096 }.to_string();
        assert!(text.contains("5000") && text.contains("4096"), "{text}");
    }

    // ---- round trips and robustness

    #[test]
    fn random_field_sections_round_trip() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for _ in 0..2000 {
            let count = rng.below(12);
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for _ in 0..count {
                let (static_name, static_value) = STATIC_TABLE[rng.below(99) as usize];
                fields.push(match rng.below(4) {
                    0 => (static_name.to_vec(), static_value.to_vec()),
                    1 => (static_name.to_vec(), rng.bytes(40)),
                    2 => {
                        let name_len = rng.below(20);
                        let name = (0..name_len)
                            .map(|_| {
                                b"abcdefghijklmnopqrstuvwxyz-0123456789"[rng.below(37) as usize]
                            })
                            .collect();
                        (name, rng.bytes(200))
                    }
                    _ => (rng.bytes(30), rng.bytes(300)),
                });
            }
            let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
            let mut block = Vec::new();
            encode_field_section(&pairs, &mut block);
            let decoded = decode(&block).unwrap();
            let got: Vec<(Vec<u8>, Vec<u8>)> =
                decoded.into_iter().map(|f| (f.name, f.value)).collect();
            assert_eq!(got, fields);
        }
    }

    #[test]
    fn random_and_mutated_blocks_never_panic() {
        let mut rng = Rng(0x0bad_5eed_1234_abcd);
        let sample = encode(&[
            (":method", "GET"),
            (":path", "/index.html"),
            ("x-custom", "some value"),
            ("user-agent", "quicsend"),
        ]);
        let mut ok = 0;
        for i in 0..6000 {
            let block = match i % 3 {
                0 => rng.bytes(64),
                1 => [&[0x00, 0x00][..], &rng.bytes(64)].concat(),
                _ => {
                    let mut b = sample.clone();
                    for _ in 0..=rng.below(3) {
                        let at = rng.below(b.len() as u64) as usize;
                        b[at] ^= 1 << rng.below(8);
                    }
                    b.truncate(rng.below(b.len() as u64 + 1) as usize);
                    b
                }
            };
            if decode_field_section(&block, 1 + rng.below(4096)).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 100, "only {ok} blocks decoded");
    }
}
