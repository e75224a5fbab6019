//! Eight bytes at a time: the bit tests the scanners share (the digest's
//! digit folding, the jsonlog reader's control-byte check and quote
//! search), in one place.
//!
//! A word is eight bytes read little-endian, so the lowest flagged byte of
//! a result is the first in the text.

/// Eight copies of a byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of each of eight bytes.
pub(crate) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at the start of `chunk` (which has at least eight) as
/// one word.
#[inline(always)]
pub(crate) fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&chunk[..8]);
    u64::from_le_bytes(w)
}

/// Non-zero exactly when `w` has a byte below `n` (`n` ≤ 128; the classic
/// "has a byte less than n" test, exact about whether one exists; which
/// bits are set says nothing more). A word, not a bool, so that many can be
/// OR-ed without a branch.
#[inline(always)]
pub(crate) fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// The ASCII digits of `w`, exactly, as their high bits (no borrow
/// between bytes: each byte is tested on its own seven low bits).
#[inline(always)]
pub(crate) fn digit_bytes(w: u64) -> u64 {
    // A digit is a byte below 10 once `0` is taken off by XOR (the digits
    // are 0x30..=0x39); below 10 means adding 0x80 - 10 to its low seven
    // bits does not reach the high bit, and the high bit is clear.
    let y = w ^ (ONES * u64::from(b'0'));
    !(((y & !HIGHS) + ONES * (0x80 - 10)) | y) & HIGHS
}

/// The bytes of `w` equal to `c`, as their high bits. Bytes above a true
/// match may be flagged too (a borrow carries upwards), never one below
/// it: the lowest flag is always a true match.
#[inline(always)]
pub(crate) fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tests_agree_with_byte_tests() {
        let alphabet = b"\"\\ \x00\x01\x1f\x20\x21\x2f\x30\x39\x3a\x5c\x7f\x80\xa2\xdc\xff";
        let mut rng = crate::test_rng::Rng(0x5EED_0F00_D0DE_C0DE);
        for _ in 0..50_000 {
            let b = rng.bytes(alphabet, 8);
            let w = word(&b);
            for n in [10, 0x20, 0x80] {
                assert_eq!(
                    bytes_below(w, n) != 0,
                    b.iter().any(|&c| c < n),
                    "{b:?} < {n}"
                );
            }
            let digits = digit_bytes(w);
            for (i, &c) in b.iter().enumerate() {
                assert_eq!(digits >> (8 * i + 7) & 1 == 1, c.is_ascii_digit(), "{b:?}");
            }
            for c in [b'"', b'\\', 0, 0xff] {
                let first = bytes_equal(w, c);
                let want = b.iter().position(|&x| x == c);
                let got = (first != 0).then(|| first.trailing_zeros() as usize / 8);
                assert_eq!(got, want, "{b:?} == {c}");
            }
        }
    }
}
