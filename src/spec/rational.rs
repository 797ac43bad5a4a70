//! Exact decimals and directed rounding between `BigRational` and `f64`.
//!
//! VNN-LIB numbers are decimal text. This room turns that text into the exact rational it
//! denotes ([`from_decimal`], never via `f64`), and turns exact rationals into `f64` views
//! rounded in a chosen direction: [`round_down`] returns the largest `f64` that is `<= q`,
//! [`round_up`] the smallest `f64` that is `>= q`, [`nearest`] the correctly rounded value.
//! [`to_decimal`] prints a rational back as an exact decimal when it has one.
//!
//! The argument for correctness is local: `num-rational`'s `to_f64` is correctly rounded to
//! nearest, so the true value lies within one ulp of it; we compare that candidate with `q`
//! exactly and step one ulp in the required direction when it lies on the wrong side.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

/// Largest decimal exponent magnitude accepted by [`from_decimal`]. Anything beyond this is
/// far outside the `f64` range, and refusing it keeps a hostile `1e999999999` from allocating
/// a gigantic integer.
pub const MAX_EXPONENT: i64 = 4096;

/// The exact value of a decimal literal: `[+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)?`.
///
/// Returns `None` for anything else (including an exponent beyond ±[`MAX_EXPONENT`]).
/// Examples: `1`, `-0.5`, `.5`, `5.`, `1e-3`, `+2.5E+10`.
pub fn from_decimal(text: &str) -> Option<BigRational> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &text[int_start..i];
    let mut frac_digits = "";
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &text[frac_start..i];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let mut exponent: i64 = 0;
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        let exp_negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = text[exp_start..i].trim_start_matches('0');
        if i == exp_start {
            return None;
        }
        if digits.len() > 6 {
            return None;
        }
        let magnitude: i64 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        exponent = if exp_negative { -magnitude } else { magnitude };
    }
    if i != bytes.len() {
        return None;
    }
    let scale = exponent - frac_digits.len() as i64;
    if exponent.abs() > MAX_EXPONENT {
        return None;
    }
    let mut digits = String::with_capacity(int_digits.len() + frac_digits.len());
    digits.push_str(int_digits);
    digits.push_str(frac_digits);
    let mantissa: BigInt = digits.parse().ok()?;
    let mantissa = if negative { -mantissa } else { mantissa };
    let ten = BigInt::from(10u32);
    let value = if scale >= 0 {
        BigRational::from_integer(mantissa * num_traits::pow(ten, scale.unsigned_abs() as usize))
    } else {
        BigRational::new(
            mantissa,
            num_traits::pow(ten, scale.unsigned_abs() as usize),
        )
    };
    Some(value)
}

/// The exact rational value of a finite `f64` (`None` for NaN and infinities).
pub fn from_f64(x: f64) -> Option<BigRational> {
    BigRational::from_float(x)
}

/// The `f64` nearest to `q` (ties to even); `±inf` when `|q|` exceeds the `f64` range.
pub fn nearest(q: &BigRational) -> f64 {
    match q.to_f64() {
        Some(x) => x,
        // `to_f64` only fails on NaN, which a rational never is; be total anyway.
        None if q.is_negative() => f64::NEG_INFINITY,
        None => f64::INFINITY,
    }
}

/// The largest `f64` that is `<= q` (`-inf` if `q` is below `-f64::MAX`).
pub fn round_down(q: &BigRational) -> f64 {
    let mut x = nearest(q);
    if x == f64::INFINITY {
        return f64::MAX;
    }
    // `x` is within one ulp of `q`; the loop runs at most a couple of times.
    while x.is_finite() && from_f64(x).is_some_and(|v| v > *q) {
        x = next_down(x);
    }
    x
}

/// The smallest `f64` that is `>= q` (`+inf` if `q` is above `f64::MAX`).
pub fn round_up(q: &BigRational) -> f64 {
    let mut x = nearest(q);
    if x == f64::NEG_INFINITY {
        return -f64::MAX;
    }
    while x.is_finite() && from_f64(x).is_some_and(|v| v < *q) {
        x = next_up(x);
    }
    x
}

/// Whether `q` is exactly an `f64` value.
pub fn is_exact_f64(q: &BigRational) -> bool {
    from_f64(nearest(q)).is_some_and(|v| v == *q)
}

/// The next representable `f64` above `x` (`f64::next_up`, kept here for the crate's MSRV).
pub fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

/// The next representable `f64` below `x`.
pub fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// `q` as an exact decimal (`0.5`, `-12`, `1e-30` is printed positionally) when its
/// denominator has no prime factor other than 2 and 5, and as `p/q` otherwise.
pub fn to_decimal(q: &BigRational) -> String {
    match decimal_digits(q) {
        Some(s) => s,
        None => format!("{}/{}", q.numer(), q.denom()),
    }
}

/// The exact decimal text of `q`, if it has one.
pub fn decimal_digits(q: &BigRational) -> Option<String> {
    let two = BigInt::from(2u32);
    let five = BigInt::from(5u32);
    let mut d = q.denom().clone();
    let (mut twos, mut fives) = (0usize, 0usize);
    while (&d % &two).is_zero() {
        d /= &two;
        twos += 1;
    }
    while (&d % &five).is_zero() {
        d /= &five;
        fives += 1;
    }
    if d != BigInt::from(1u32) {
        return None;
    }
    let places = twos.max(fives);
    // q * 10^places is an integer.
    let scaled = q * BigRational::from_integer(num_traits::pow(BigInt::from(10u32), places));
    let n = scaled.to_integer();
    let negative = n.is_negative();
    let digits = n.abs().to_string();
    if places == 0 {
        return Some(format!("{}{}", if negative { "-" } else { "" }, digits));
    }
    let padded = if digits.len() <= places {
        format!("{}{}", "0".repeat(places + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - places);
    Some(format!(
        "{}{}.{}",
        if negative { "-" } else { "" },
        int_part,
        frac_part
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(from_decimal("0.1"), Some(q(1, 10)));
        assert_eq!(from_decimal("-0.5"), Some(q(-1, 2)));
        assert_eq!(from_decimal(".5"), Some(q(1, 2)));
        assert_eq!(from_decimal("5."), Some(q(5, 1)));
        assert_eq!(from_decimal("+3"), Some(q(3, 1)));
        assert_eq!(from_decimal("1e-3"), Some(q(1, 1000)));
        assert_eq!(from_decimal("2.5E+2"), Some(q(250, 1)));
        assert_eq!(from_decimal("-1.25e1"), Some(q(-25, 2)));
        assert_eq!(from_decimal("0e0"), Some(q(0, 1)));
        assert_eq!(from_decimal("007"), Some(q(7, 1)));
        assert_eq!(from_decimal("1e0000003"), Some(q(1000, 1)));
    }

    #[test]
    fn malformed_decimals_are_refused() {
        for bad in [
            "",
            "-",
            ".",
            "-.",
            "1e",
            "1e+",
            "e5",
            "1.2.3",
            "1x",
            "--1",
            "1e5.5",
            "0x10",
            "1 ",
            "1e9999",
            "1e-999999999999",
            "inf",
            "NaN",
        ] {
            assert_eq!(from_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rounding_brackets_the_exact_value() {
        let tenth = q(1, 10);
        let (lo, hi) = (round_down(&tenth), round_up(&tenth));
        assert!(from_f64(lo).unwrap() < tenth && tenth < from_f64(hi).unwrap());
        assert_eq!(next_up(lo), hi);
        assert!(lo == 0.1 || hi == 0.1);
        let minus = -tenth;
        assert_eq!(round_down(&minus), -hi);
        assert_eq!(round_up(&minus), -lo);
    }

    #[test]
    fn exact_values_round_to_themselves() {
        for x in [
            0.0,
            0.5,
            -0.25,
            3.0,
            1e300,
            -1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let v = from_f64(x).unwrap();
            assert_eq!(round_down(&v), x);
            assert_eq!(round_up(&v), x);
            assert!(is_exact_f64(&v));
        }
        assert!(!is_exact_f64(&q(1, 3)));
    }

    #[test]
    fn huge_and_tiny_values_round_outward() {
        let huge = from_decimal("1e400").unwrap();
        assert_eq!(round_down(&huge), f64::MAX);
        assert_eq!(round_up(&huge), f64::INFINITY);
        assert_eq!(round_down(&-huge.clone()), f64::NEG_INFINITY);
        assert_eq!(round_up(&-huge), -f64::MAX);
        let tiny = from_decimal("1e-400").unwrap();
        assert_eq!(round_down(&tiny), 0.0);
        assert_eq!(round_up(&tiny), f64::from_bits(1));
        assert_eq!(round_down(&-tiny.clone()), -f64::from_bits(1));
        assert_eq!(round_up(&-tiny), 0.0);
    }

    #[test]
    fn next_up_and_down_step_one_ulp() {
        assert_eq!(next_up(1.0), 1.0 + f64::EPSILON);
        assert_eq!(next_down(1.0), 1.0 - f64::EPSILON / 2.0);
        assert_eq!(next_up(-0.0), f64::from_bits(1));
        assert_eq!(next_down(0.0), -f64::from_bits(1));
        assert_eq!(next_up(f64::MAX), f64::INFINITY);
        assert_eq!(next_up(-f64::from_bits(1)), 0.0);
    }

    proptest::proptest! {
        /// The directed roundings bracket the exact value, are adjacent or equal, and agree
        /// with Rust's own correctly rounded decimal parser.
        #[test]
        fn rounding_agrees_with_std(
            mantissa in -10_000_000_000i64..10_000_000_000,
            frac in 0usize..12,
            exp in -330i32..330,
        ) {
            let digits = mantissa.unsigned_abs().to_string();
            let split = digits.len().saturating_sub(frac);
            let sign = if mantissa < 0 { "-" } else { "" };
            let text = format!("{sign}{}.{}e{exp}", &digits[..split], &digits[split..]);
            let q = from_decimal(&text).unwrap();
            let (lo, hi) = (round_down(&q), round_up(&q));
            let std: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(nearest(&q), std, "{}", text);
            proptest::prop_assert!(lo == std || hi == std);
            proptest::prop_assert!(from_f64(lo).is_none_or(|v| v <= q));
            proptest::prop_assert!(from_f64(hi).is_none_or(|v| v >= q));
            proptest::prop_assert!(lo == hi || next_up(lo) == hi, "{} {} {}", text, lo, hi);
            proptest::prop_assert_eq!(lo == hi, is_exact_f64(&q));
            proptest::prop_assert_eq!(from_decimal(&to_decimal(&q)), Some(q));
        }
    }

    #[test]
    fn decimals_print_exactly() {
        for text in [
            "0.5",
            "-12",
            "0.001",
            "-0.029999999329447746",
            "123.45",
            "0",
        ] {
            assert_eq!(to_decimal(&from_decimal(text).unwrap()), text);
        }
        assert_eq!(to_decimal(&q(1, 3)), "1/3");
        assert_eq!(to_decimal(&q(-7, 8)), "-0.875");
    }
}
