//! Plain decimal numbers (`0.123`, `12`), as slow logs write every event's
//! duration, read without the general float parser (which was about 2 % of
//! reading a PostgreSQL log: it is built for every form a float can take).

/// Exact powers of ten: each is an `f64` without rounding.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `s` as `s.parse::<f64>()` reads it, to the bit. A plain decimal of at
/// most 15 digits is its digits as an integer divided by a power of ten:
/// both are exact in an `f64` and the division rounds correctly, so the
/// result is the correctly rounded value the general parser gives too.
/// Anything else goes to the general parser.
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (mut mantissa, mut digits, mut point) = (0u64, 0usize, None);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' if digits < 15 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return s.parse().ok(),
        }
    }
    if digits == 0 {
        return s.parse().ok();
    }
    let scale = point.map_or(0, |p| b.len() - p - 1);
    Some(mantissa as f64 / POW10[scale])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_general_parser_reads_to_the_bit() {
        let mut rng = crate::test_rng::Rng(0xD0_0D1E_5EED);
        for _ in 0..200_000 {
            // Mostly digits with one point (the durations logs write),
            // sometimes a byte of another form.
            let len = 1 + rng.below(19);
            let mut s = String::from_utf8(rng.bytes(b"0123456789", len)).unwrap();
            if rng.below(4) > 0 {
                s.insert(rng.below(len + 1), '.');
            }
            if rng.below(10) == 0 {
                s.insert(rng.below(s.len() + 1), b"-e+."[rng.below(4)] as char);
            }
            let want = s.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_f64(&s).map(f64::to_bits), want, "{s:?}");
        }
        for s in [
            "0.001",
            "1.",
            ".5",
            ".",
            "",
            "123456789012345",
            "1234567890123456",
            "0.000000000000001",
        ] {
            assert_eq!(
                parse_f64(s).map(f64::to_bits),
                s.parse::<f64>().ok().map(f64::to_bits),
                "{s:?}"
            );
        }
    }
}
