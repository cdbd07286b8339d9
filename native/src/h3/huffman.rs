//! Huffman coding of string literals (RFC 7541 §5.2, code table in Appendix B),
//! which QPACK uses unmodified (RFC 9204 §4.1.2).
//!
//! The encoder emits each byte's code MSB first and pads the last octet with
//! the high bits of EOS (all ones). The decoder is a canonical-code decoder:
//! the RFC's code is canonical (codes of one length are consecutive and
//! ordered by symbol; a unit test proves it), so per-length bounds derived at
//! compile time from the code lengths identify each symbol from a 32-bit
//! window without a tree walk or a large state table.

use std::fmt;

/// Why a Huffman-coded string was rejected (RFC 7541 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol appeared in the string.
    EosInString,
    /// More than 7 bits are left after the last whole symbol.
    PaddingTooLong,
    /// The bits after the last whole symbol are not all ones (not a prefix of EOS).
    PaddingNotOnes,
}

impl fmt::Display for HuffmanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HuffmanError::EosInString => "the EOS symbol appears in the string",
            HuffmanError::PaddingTooLong => {
                "more than 7 bits of padding (or a truncated code) at the end"
            }
            HuffmanError::PaddingNotOnes => "the padding is not all ones",
        })
    }
}

impl std::error::Error for HuffmanError {}

/// Symbol 256, which only ever appears (truncated) as padding.
const EOS: u16 = 256;
/// The longest code (EOS and a few control bytes) is 30 bits.
const MAX_LEN: usize = 30;

/// `(code, length in bits)` for bytes 0..=255 and EOS (256), code right-aligned:
/// RFC 7541 Appendix B, "code as hex" and "len" columns.
static CODES: [(u32, u8); 257] = [
    (0x00001ff8, 13), //   0
    (0x007fffd8, 23), //   1
    (0x0fffffe2, 28), //   2
    (0x0fffffe3, 28), //   3
    (0x0fffffe4, 28), //   4
    (0x0fffffe5, 28), //   5
    (0x0fffffe6, 28), //   6
    (0x0fffffe7, 28), //   7
    (0x0fffffe8, 28), //   8
    (0x00ffffea, 24), //   9
    (0x3ffffffc, 30), //  10
    (0x0fffffe9, 28), //  11
    (0x0fffffea, 28), //  12
    (0x3ffffffd, 30), //  13
    (0x0fffffeb, 28), //  14
    (0x0fffffec, 28), //  15
    (0x0fffffed, 28), //  16
    (0x0fffffee, 28), //  17
    (0x0fffffef, 28), //  18
    (0x0ffffff0, 28), //  19
    (0x0ffffff1, 28), //  20
    (0x0ffffff2, 28), //  21
    (0x3ffffffe, 30), //  22
    (0x0ffffff3, 28), //  23
    (0x0ffffff4, 28), //  24
    (0x0ffffff5, 28), //  25
    (0x0ffffff6, 28), //  26
    (0x0ffffff7, 28), //  27
    (0x0ffffff8, 28), //  28
    (0x0ffffff9, 28), //  29
    (0x0ffffffa, 28), //  30
    (0x0ffffffb, 28), //  31
    (0x00000014, 6),  //  32 ' '
    (0x000003f8, 10), //  33 '!'
    (0x000003f9, 10), //  34 '"'
    (0x00000ffa, 12), //  35 '#'
    (0x00001ff9, 13), //  36 '$'
    (0x00000015, 6),  //  37 '%'
    (0x000000f8, 8),  //  38 '&'
    (0x000007fa, 11), //  39 "'"
    (0x000003fa, 10), //  40 '('
    (0x000003fb, 10), //  41 ')'
    (0x000000f9, 8),  //  42 '*'
    (0x000007fb, 11), //  43 '+'
    (0x000000fa, 8),  //  44 ','
    (0x00000016, 6),  //  45 '-'
    (0x00000017, 6),  //  46 '.'
    (0x00000018, 6),  //  47 '/'
    (0x00000000, 5),  //  48 '0'
    (0x00000001, 5),  //  49 '1'
    (0x00000002, 5),  //  50 '2'
    (0x00000019, 6),  //  51 '3'
    (0x0000001a, 6),  //  52 '4'
    (0x0000001b, 6),  //  53 '5'
    (0x0000001c, 6),  //  54 '6'
    (0x0000001d, 6),  //  55 '7'
    (0x0000001e, 6),  //  56 '8'
    (0x0000001f, 6),  //  57 '9'
    (0x0000005c, 7),  //  58 ':'
    (0x000000fb, 8),  //  59 ';'
    (0x00007ffc, 15), //  60 '<'
    (0x00000020, 6),  //  61 '='
    (0x00000ffb, 12), //  62 '>'
    (0x000003fc, 10), //  63 '?'
    (0x00001ffa, 13), //  64 '@'
    (0x00000021, 6),  //  65 'A'
    (0x0000005d, 7),  //  66 'B'
    (0x0000005e, 7),  //  67 'C'
    (0x0000005f, 7),  //  68 'D'
    (0x00000060, 7),  //  69 'E'
    (0x00000061, 7),  //  70 'F'
    (0x00000062, 7),  //  71 'G'
    (0x00000063, 7),  //  72 'H'
    (0x00000064, 7),  //  73 'I'
    (0x00000065, 7),  //  74 'J'
    (0x00000066, 7),  //  75 'K'
    (0x00000067, 7),  //  76 'L'
    (0x00000068, 7),  //  77 'M'
    (0x00000069, 7),  //  78 'N'
    (0x0000006a, 7),  //  79 'O'
    (0x0000006b, 7),  //  80 'P'
    (0x0000006c, 7),  //  81 'Q'
    (0x0000006d, 7),  //  82 'R'
    (0x0000006e, 7),  //  83 'S'
    (0x0000006f, 7),  //  84 'T'
    (0x00000070, 7),  //  85 'U'
    (0x00000071, 7),  //  86 'V'
    (0x00000072, 7),  //  87 'W'
    (0x000000fc, 8),  //  88 'X'
    (0x00000073, 7),  //  89 'Y'
    (0x000000fd, 8),  //  90 'Z'
    (0x00001ffb, 13), //  91 '['
    (0x0007fff0, 19), //  92 '\\'
    (0x00001ffc, 13), //  93 ']'
    (0x00003ffc, 14), //  94 '^'
    (0x00000022, 6),  //  95 '_'
    (0x00007ffd, 15), //  96 '`'
    (0x00000003, 5),  //  97 'a'
    (0x00000023, 6),  //  98 'b'
    (0x00000004, 5),  //  99 'c'
    (0x00000024, 6),  // 100 'd'
    (0x00000005, 5),  // 101 'e'
    (0x00000025, 6),  // 102 'f'
    (0x00000026, 6),  // 103 'g'
    (0x00000027, 6),  // 104 'h'
    (0x00000006, 5),  // 105 'i'
    (0x00000074, 7),  // 106 'j'
    (0x00000075, 7),  // 107 'k'
    (0x00000028, 6),  // 108 'l'
    (0x00000029, 6),  // 109 'm'
    (0x0000002a, 6),  // 110 'n'
    (0x00000007, 5),  // 111 'o'
    (0x0000002b, 6),  // 112 'p'
    (0x00000076, 7),  // 113 'q'
    (0x0000002c, 6),  // 114 'r'
    (0x00000008, 5),  // 115 's'
    (0x00000009, 5),  // 116 't'
    (0x0000002d, 6),  // 117 'u'
    (0x00000077, 7),  // 118 'v'
    (0x00000078, 7),  // 119 'w'
    (0x00000079, 7),  // 120 'x'
    (0x0000007a, 7),  // 121 'y'
    (0x0000007b, 7),  // 122 'z'
    (0x00007ffe, 15), // 123 '{'
    (0x000007fc, 11), // 124 '|'
    (0x00003ffd, 14), // 125 '}'
    (0x00001ffd, 13), // 126 '~'
    (0x0ffffffc, 28), // 127
    (0x000fffe6, 20), // 128
    (0x003fffd2, 22), // 129
    (0x000fffe7, 20), // 130
    (0x000fffe8, 20), // 131
    (0x003fffd3, 22), // 132
    (0x003fffd4, 22), // 133
    (0x003fffd5, 22), // 134
    (0x007fffd9, 23), // 135
    (0x003fffd6, 22), // 136
    (0x007fffda, 23), // 137
    (0x007fffdb, 23), // 138
    (0x007fffdc, 23), // 139
    (0x007fffdd, 23), // 140
    (0x007fffde, 23), // 141
    (0x00ffffeb, 24), // 142
    (0x007fffdf, 23), // 143
    (0x00ffffec, 24), // 144
    (0x00ffffed, 24), // 145
    (0x003fffd7, 22), // 146
    (0x007fffe0, 23), // 147
    (0x00ffffee, 24), // 148
    (0x007fffe1, 23), // 149
    (0x007fffe2, 23), // 150
    (0x007fffe3, 23), // 151
    (0x007fffe4, 23), // 152
    (0x001fffdc, 21), // 153
    (0x003fffd8, 22), // 154
    (0x007fffe5, 23), // 155
    (0x003fffd9, 22), // 156
    (0x007fffe6, 23), // 157
    (0x007fffe7, 23), // 158
    (0x00ffffef, 24), // 159
    (0x003fffda, 22), // 160
    (0x001fffdd, 21), // 161
    (0x000fffe9, 20), // 162
    (0x003fffdb, 22), // 163
    (0x003fffdc, 22), // 164
    (0x007fffe8, 23), // 165
    (0x007fffe9, 23), // 166
    (0x001fffde, 21), // 167
    (0x007fffea, 23), // 168
    (0x003fffdd, 22), // 169
    (0x003fffde, 22), // 170
    (0x00fffff0, 24), // 171
    (0x001fffdf, 21), // 172
    (0x003fffdf, 22), // 173
    (0x007fffeb, 23), // 174
    (0x007fffec, 23), // 175
    (0x001fffe0, 21), // 176
    (0x001fffe1, 21), // 177
    (0x003fffe0, 22), // 178
    (0x001fffe2, 21), // 179
    (0x007fffed, 23), // 180
    (0x003fffe1, 22), // 181
    (0x007fffee, 23), // 182
    (0x007fffef, 23), // 183
    (0x000fffea, 20), // 184
    (0x003fffe2, 22), // 185
    (0x003fffe3, 22), // 186
    (0x003fffe4, 22), // 187
    (0x007ffff0, 23), // 188
    (0x003fffe5, 22), // 189
    (0x003fffe6, 22), // 190
    (0x007ffff1, 23), // 191
    (0x03ffffe0, 26), // 192
    (0x03ffffe1, 26), // 193
    (0x000fffeb, 20), // 194
    (0x0007fff1, 19), // 195
    (0x003fffe7, 22), // 196
    (0x007ffff2, 23), // 197
    (0x003fffe8, 22), // 198
    (0x01ffffec, 25), // 199
    (0x03ffffe2, 26), // 200
    (0x03ffffe3, 26), // 201
    (0x03ffffe4, 26), // 202
    (0x07ffffde, 27), // 203
    (0x07ffffdf, 27), // 204
    (0x03ffffe5, 26), // 205
    (0x00fffff1, 24), // 206
    (0x01ffffed, 25), // 207
    (0x0007fff2, 19), // 208
    (0x001fffe3, 21), // 209
    (0x03ffffe6, 26), // 210
    (0x07ffffe0, 27), // 211
    (0x07ffffe1, 27), // 212
    (0x03ffffe7, 26), // 213
    (0x07ffffe2, 27), // 214
    (0x00fffff2, 24), // 215
    (0x001fffe4, 21), // 216
    (0x001fffe5, 21), // 217
    (0x03ffffe8, 26), // 218
    (0x03ffffe9, 26), // 219
    (0x0ffffffd, 28), // 220
    (0x07ffffe3, 27), // 221
    (0x07ffffe4, 27), // 222
    (0x07ffffe5, 27), // 223
    (0x000fffec, 20), // 224
    (0x00fffff3, 24), // 225
    (0x000fffed, 20), // 226
    (0x001fffe6, 21), // 227
    (0x003fffe9, 22), // 228
    (0x001fffe7, 21), // 229
    (0x001fffe8, 21), // 230
    (0x007ffff3, 23), // 231
    (0x003fffea, 22), // 232
    (0x003fffeb, 22), // 233
    (0x01ffffee, 25), // 234
    (0x01ffffef, 25), // 235
    (0x00fffff4, 24), // 236
    (0x00fffff5, 24), // 237
    (0x03ffffea, 26), // 238
    (0x007ffff4, 23), // 239
    (0x03ffffeb, 26), // 240
    (0x07ffffe6, 27), // 241
    (0x03ffffec, 26), // 242
    (0x03ffffed, 26), // 243
    (0x07ffffe7, 27), // 244
    (0x07ffffe8, 27), // 245
    (0x07ffffe9, 27), // 246
    (0x07ffffea, 27), // 247
    (0x07ffffeb, 27), // 248
    (0x0ffffffe, 28), // 249
    (0x07ffffec, 27), // 250
    (0x07ffffed, 27), // 251
    (0x07ffffee, 27), // 252
    (0x07ffffef, 27), // 253
    (0x07fffff0, 27), // 254
    (0x03ffffee, 26), // 255
    (0x3fffffff, 30), // EOS
];

/// Decoding bounds derived from the code lengths (see the module comment).
struct Canonical {
    /// `limit[n]`: one past the largest code of length `n` or less, left-aligned in a
    /// 32-bit window. A window below `limit[n]` (and not below `limit[n - 1]`) starts
    /// with a code of length exactly `n`.
    limit: [u64; MAX_LEN + 1],
    /// `first[n]`: the numerically first code of length `n`, right-aligned.
    first: [u32; MAX_LEN + 1],
    /// `base[n]`: where the symbols of length `n` start in `sorted`.
    base: [u16; MAX_LEN + 1],
    /// All symbols ordered by (code length, symbol), which is code order.
    sorted: [u16; 257],
}

static DECODER: Canonical = Canonical::build();

impl Canonical {
    const fn build() -> Canonical {
        let mut count = [0u32; MAX_LEN + 1];
        let mut s = 0;
        while s < CODES.len() {
            count[CODES[s].1 as usize] += 1;
            s += 1;
        }
        let mut c = Canonical {
            limit: [0; MAX_LEN + 1],
            first: [0; MAX_LEN + 1],
            base: [0; MAX_LEN + 1],
            sorted: [0; 257],
        };
        let mut code = 0u32;
        let mut next = 0usize;
        let mut n = 1;
        while n <= MAX_LEN {
            // Canonical assignment: a length's first code follows the previous
            // length's last code, shifted one bit longer.
            code = (code + count[n - 1]) << 1;
            c.first[n] = code;
            c.base[n] = next as u16;
            c.limit[n] = ((code + count[n]) as u64) << (32 - n);
            let mut s = 0;
            while s < CODES.len() {
                if CODES[s].1 as usize == n {
                    c.sorted[next] = s as u16;
                    next += 1;
                }
                s += 1;
            }
            n += 1;
        }
        c
    }

    /// The symbol whose code starts `window` (the next 32 bits, MSB first) and its length.
    /// The code is complete, so every window matches some symbol.
    fn lookup(&self, window: u64) -> (u16, u32) {
        let mut n = 1;
        while n < MAX_LEN && window >= self.limit.get(n).copied().unwrap_or(0) {
            n += 1;
        }
        let code = (window >> (32 - n)) as u32;
        let offset = code.wrapping_sub(self.first.get(n).copied().unwrap_or(0));
        let index = usize::from(self.base.get(n).copied().unwrap_or(0)) + offset as usize;
        // Cannot miss for a canonical table; if it did, EOS makes the caller reject the input.
        (self.sorted.get(index).copied().unwrap_or(EOS), n as u32)
    }
}

/// Number of bytes `encode` produces for `input`.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&b| usize::from(CODES[usize::from(b)].1)).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `input` to `out`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(input));
    // Only the `pending` low bits of `acc` are unwritten; at most 7 + 30 of them.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in input {
        // A u8 index into 257 entries is always in bounds.
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            out.push((acc >> pending) as u8);
        }
        acc &= (1u64 << pending) - 1;
    }
    if pending > 0 {
        // Pad with the most significant bits of EOS, i.e. ones.
        out.push(((acc << (8 - pending)) as u8) | (0xff >> pending));
    }
}

/// Decodes the Huffman-coded `input` and appends the bytes to `out`. On error, `out`
/// may hold part of the string.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // Unconsumed bits, left-aligned: bit 63 is the next one.
    let mut acc: u64 = 0;
    let mut have: u32 = 0;
    let mut bytes = input.iter();
    loop {
        while have <= 56 {
            match bytes.next() {
                Some(&b) => {
                    acc |= u64::from(b) << (56 - have);
                    have += 8;
                }
                None => break,
            }
        }
        if have == 0 {
            return Ok(());
        }
        let (symbol, len) = DECODER.lookup(acc >> 32);
        if len > have {
            // Refill stops short of 30 bits only at the end of input, so what is
            // left is padding: at most 7 bits, all ones.
            if have > 7 {
                return Err(HuffmanError::PaddingTooLong);
            }
            let ones = !0u64 << (64 - have);
            return if acc & ones == ones { Ok(()) } else { Err(HuffmanError::PaddingNotOnes) };
        }
        if symbol == EOS {
            return Err(HuffmanError::EosInString);
        }
        out.push(symbol as u8);
        acc <<= len;
        have -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::h3::hex;

    fn enc(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(input, &mut out);
        assert_eq!(out.len(), encoded_len(input));
        out
    }

    fn dec(input: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        decode(input, &mut out).map(|()| out)
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
        fn bytes(&mut self, max_len: u64) -> Vec<u8> {
            let len = self.next() % (max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// RFC 7541 Appendix C.4 (requests) and C.6 (responses).
    const RFC_EXAMPLES: &[(&str, &str)] = &[
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("307", "640e ff"),
        ("private", "aec3 771a 4b"),
        ("Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"),
        ("Mon, 21 Oct 2013 20:13:22 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff"),
        ("https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"),
        ("gzip", "9bd9 ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 \
             65c0 03ed 4ee5 b106 3d50 07",
        ),
    ];

    #[test]
    fn rfc7541_examples_encode() {
        for &(text, coded) in RFC_EXAMPLES {
            assert_eq!(enc(text.as_bytes()), hex(coded), "encoding {text:?}");
        }
    }

    #[test]
    fn rfc7541_examples_decode() {
        for &(text, coded) in RFC_EXAMPLES {
            assert_eq!(dec(&hex(coded)).unwrap(), text.as_bytes(), "decoding {text:?}");
        }
    }

    #[test]
    fn table_is_a_complete_canonical_code() {
        // The decoder assumes this; recompute every code from the lengths alone.
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut code = 0u64;
        let mut prev_len = CODES[order[0]].1;
        for &s in &order {
            let (want, len) = CODES[s];
            code <<= len - prev_len;
            assert_eq!(code, u64::from(want), "symbol {s} is not canonical");
            code += 1;
            prev_len = len;
        }
        // After the last (30-bit) code the counter reaches 2^30: no code space is left.
        assert_eq!((code, prev_len), (1 << 30, 30));
        assert_eq!(CODES[256], ((1 << 30) - 1, 30));
    }

    #[test]
    fn every_byte_round_trips_with_every_padding() {
        for b in 0..=255u8 {
            for n in 1..=8 {
                let input = vec![b; n];
                assert_eq!(dec(&enc(&input)).unwrap(), input, "byte {b} x{n}");
            }
        }
        assert_eq!(enc(b""), b"");
        assert_eq!(dec(b"").unwrap(), b"");
    }

    #[test]
    fn random_strings_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let input = rng.bytes(300);
            assert_eq!(dec(&enc(&input)).unwrap(), input);
        }
    }

    #[test]
    fn rejects_eos_in_string() {
        // 30 ones are EOS; 32 ones are EOS followed by 2 bits of padding.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::EosInString));
        // 'a' (00011) then EOS then padding.
        let mut bits = String::from("00011");
        bits.push_str(&"1".repeat(30));
        while bits.len() % 8 != 0 {
            bits.push('1');
        }
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        assert_eq!(dec(&bytes), Err(HuffmanError::EosInString));
    }

    #[test]
    fn rejects_long_padding() {
        assert_eq!(dec(&[0xff]), Err(HuffmanError::PaddingTooLong));
        // '0' (00000) then 11 ones.
        assert_eq!(dec(&[0b0000_0111, 0xff]), Err(HuffmanError::PaddingTooLong));
        // A valid string followed by a whole byte of ones.
        let mut coded = enc(b"no-cache");
        coded.push(0xff);
        assert_eq!(dec(&coded), Err(HuffmanError::PaddingTooLong));
    }

    #[test]
    fn rejects_padding_that_is_not_ones() {
        // 'a' (00011) then 000.
        assert_eq!(dec(&[0b0001_1000]), Err(HuffmanError::PaddingNotOnes));
        // 'a' then 101.
        assert_eq!(dec(&[0b0001_1101]), Err(HuffmanError::PaddingNotOnes));
        // Seven padding bits of ones are fine: 'a' then '0' is 10 bits, so 6 bits pad.
        assert_eq!(dec(&[0b0001_1000, 0b0011_1111]).unwrap(), b"a0");
    }

    #[test]
    fn random_input_never_panics_and_accepted_input_is_canonical() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut accepted = 0;
        for i in 0..20000 {
            let mut input = rng.bytes(40);
            if i % 2 == 0 {
                // Bias toward plausible strings so the success path is exercised too.
                input = enc(&input);
                if let Some(last) = input.last_mut() {
                    *last ^= (rng.next() as u8) & 0x03;
                }
            }
            if let Ok(out) = dec(&input) {
                accepted += 1;
                // Padding is forced to be < 8 ones, so re-encoding gives the same bytes.
                assert_eq!(enc(&out), input);
            }
        }
        assert!(accepted > 1000, "only {accepted} accepted");
    }
}
