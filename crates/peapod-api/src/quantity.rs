//! Kubernetes resource quantities (`100m`, `1`, `128Mi`, `1G`, `1e3`): parsing,
//! exact comparison and conversion to integer units.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The message Kubernetes gives for a malformed quantity.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Most significant digits kept exactly; longer mantissas are rejected.
const MAX_DIGITS: usize = 36;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {text:?}: {QUANTITY_FORMAT_ERROR}")]
pub struct QuantityError {
    pub text: String,
}

/// A parsed quantity: `sign * mantissa * 10^exp10 * 2^exp2`, exact.
#[derive(Debug, Clone)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
    text: String,
}

impl Quantity {
    /// The text the quantity was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_negative(&self) -> bool {
        self.negative && self.mantissa != 0
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The value in thousandths, rounded up (Kubernetes' `MilliValue`, e.g. CPU
    /// millicores); `None` when it does not fit in an `i128`.
    pub fn milli_value(&self) -> Option<i128> {
        self.scaled_ceil(3)
    }

    /// The value rounded up to an integer (e.g. bytes of memory).
    pub fn value(&self) -> Option<i128> {
        self.scaled_ceil(0)
    }

    /// `ceil(self / divisor)` in whole units, both taken in nano-units as the downward API
    /// renders `resourceFieldRef`; `None` for a zero divisor or on overflow.
    pub fn ceil_div(&self, divisor: &Quantity) -> Option<i128> {
        let (amount, divisor) = (self.scaled_ceil(9)?, divisor.scaled_ceil(9)?);
        if divisor == 0 {
            return None;
        }
        let quotient = amount / divisor;
        let rounds_up = amount % divisor != 0 && (amount > 0) == (divisor > 0);
        Some(quotient + i128::from(rounds_up))
    }

    /// `ceil(value * 10^scale)`
    fn scaled_ceil(&self, scale: i32) -> Option<i128> {
        let mut n = i128::try_from(self.mantissa).ok()?;
        n = n.checked_mul(2i128.checked_pow(self.exp2)?)?;
        let exp = self.exp10 + scale;
        let magnitude = if exp >= 0 {
            n.checked_mul(10i128.checked_pow(exp.unsigned_abs())?)?
        } else {
            let div = 10i128.checked_pow(exp.unsigned_abs()).unwrap_or(i128::MAX);
            // Rounding away from zero for positives, towards zero for negatives,
            // is a ceiling either way once the sign is applied.
            if self.negative {
                n / div
            } else {
                n / div + i128::from(n % div != 0)
            }
        };
        Some(if self.negative { -magnitude } else { magnitude })
    }

    fn as_f64(&self) -> f64 {
        let v = self.mantissa as f64 * 10f64.powi(self.exp10) * 2f64.powi(self.exp2 as i32);
        if self.negative {
            -v
        } else {
            v
        }
    }

    /// Exact comparison of magnitudes, or `None` on overflow.
    fn cmp_magnitude(&self, other: &Self) -> Option<Ordering> {
        let e10 = self.exp10.min(other.exp10);
        let e2 = self.exp2.min(other.exp2);
        let scale = |q: &Self| -> Option<u128> {
            let by10 = 10u128.checked_pow((q.exp10 - e10).unsigned_abs())?;
            let by2 = 2u128.checked_pow(q.exp2 - e2)?;
            q.mantissa.checked_mul(by10)?.checked_mul(by2)
        };
        Some(scale(self)?.cmp(&scale(other)?))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_negative(), other.is_negative()) {
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let ordering = self.cmp_magnitude(other).unwrap_or_else(|| {
            self.as_f64()
                .abs()
                .partial_cmp(&other.as_f64().abs())
                .unwrap_or(Ordering::Equal)
        });
        if self.is_negative() {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// (exp10, exp2) for a suffix, or `None` when it is not a suffix.
fn suffix_scale(suffix: &str) -> Option<(i32, u32)> {
    let decimal = |e| Some((e, 0));
    let binary = |e| Some((0, e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            s[1..].parse::<i32>().ok().map(|e| (e, 0))
        }
        _ => None,
    }
}

/// Splits `[+-]digits[.digits]` from the suffix.
fn split_number(text: &str) -> (bool, &str, &str) {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    (negative, &rest[..end], &rest[end..])
}

fn parse_mantissa(number: &str) -> Option<(u128, i32)> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_DIGITS {
        return None;
    }
    let mantissa = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    Some((mantissa, -(frac.len() as i32)))
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || QuantityError {
            text: text.to_string(),
        };
        let (negative, number, suffix) = split_number(text);
        let (mantissa, frac_exp) = parse_mantissa(number).ok_or_else(err)?;
        let (exp10, exp2) = suffix_scale(suffix).ok_or_else(err)?;
        Ok(Self {
            negative,
            mantissa,
            exp10: exp10.checked_add(frac_exp).ok_or_else(err)?,
            exp2,
            text: text.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!(q("100m").milli_value(), Some(100));
        assert_eq!(q("1").milli_value(), Some(1000));
        assert_eq!(q("128Mi").value(), Some(128 * 1024 * 1024));
        assert_eq!(q("1G").value(), Some(1_000_000_000));
        assert_eq!(q("1e3").value(), Some(1000));
        assert_eq!(q("1.5").milli_value(), Some(1500));
        assert_eq!(q("0.5Gi").value(), Some(512 * 1024 * 1024));
        assert_eq!(q("+2k").value(), Some(2000));
        assert_eq!(q("-1").value(), Some(-1));
        assert_eq!(q("1E").value(), Some(1_000_000_000_000_000_000));
        assert_eq!(q("1n").milli_value(), Some(1), "milli value rounds up");
        assert_eq!(q(".5").milli_value(), Some(500));
    }

    #[test]
    fn ceil_div_rounds_up_like_the_downward_api() {
        let one = q("1");
        assert_eq!(q("500m").ceil_div(&one), Some(1));
        assert_eq!(q("2").ceil_div(&one), Some(2));
        let mi = q("1Mi");
        assert_eq!(q("64Mi").ceil_div(&mi), Some(64));
        assert_eq!(one.ceil_div(&q("0")), None);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1x", "1.2.3", "--1", "1Mb", "m", ".", "1e"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad} should fail");
        }
        let e = "x".parse::<Quantity>().unwrap_err();
        assert!(e.to_string().contains("quantities must match"));
    }

    #[test]
    fn compares_exactly() {
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("0.1"), q("100m"));
        assert_eq!(q("1e3"), q("1k"));
        assert!(q("500m") < q("1"));
        assert!(q("129Mi") > q("128Mi"));
        assert!(q("1G") < q("1Gi"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert_eq!(q("0"), q("-0"));
        assert!(
            q("1e30") > q("1n"),
            "falls back when exact scaling overflows"
        );
    }
}
