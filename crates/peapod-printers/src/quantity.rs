//! Kubernetes resource quantities ("500m", "1Gi", "2e3") read as exact nano-units, for the QoS
//! class and resource-valued environment variables in describe output.

use std::cmp::Ordering;

const NANO: i128 = 1_000_000_000;

/// A quantity the Kubernetes grammar does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QuantityError {
    #[error("quantity {value:?}: no digits")]
    NoDigits { value: String },
    #[error("quantity {value:?}: unknown suffix {suffix:?}")]
    UnknownSuffix { value: String, suffix: String },
    #[error("quantity {value:?}: too large")]
    Overflow { value: String },
}

/// A parsed quantity in units of 10^-9 (rounded up, as Kubernetes rounds sub-nano values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity {
    nanos: i128,
}

impl Quantity {
    pub(crate) fn parse(value: &str) -> Result<Self, QuantityError> {
        let text = value.trim();
        let (negative, text) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_end);
        let (mantissa, decimals) = parse_number(number, value)?;
        let (multiplier, divisor) = scale(suffix, value)?;
        let overflow = || QuantityError::Overflow {
            value: value.to_string(),
        };
        let numerator = mantissa.checked_mul(multiplier).ok_or_else(overflow)?;
        let denominator = divisor
            .checked_mul(10i128.pow(decimals))
            .ok_or_else(overflow)?;
        let magnitude = div_ceil(numerator, denominator);
        Ok(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
        })
    }

    pub(crate) fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// `ceil(self / divisor)` in whole units, as the downward API renders resources.
    pub(crate) fn ceil_div(self, divisor: Quantity) -> Option<i128> {
        if divisor.nanos == 0 {
            return None;
        }
        let quotient = self.nanos / divisor.nanos;
        let rounds_up = self.nanos % divisor.nanos != 0 && (self.nanos > 0) == (divisor.nanos > 0);
        Some(if rounds_up { quotient + 1 } else { quotient })
    }
}

/// Quantities compare by value; unparsable ones only equal the identical string.
pub(crate) fn same_amount(a: Option<&str>, b: Option<&str>) -> bool {
    let amount = |q: Option<&str>| q.map(Quantity::parse).unwrap_or(Ok(Quantity { nanos: 0 }));
    match (amount(a), amount(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y) == Ordering::Equal,
        _ => a == b,
    }
}

fn parse_number(number: &str, value: &str) -> Result<(i128, u32), QuantityError> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{whole}{fraction}");
    if digits.is_empty() || fraction.contains('.') {
        return Err(QuantityError::NoDigits {
            value: value.to_string(),
        });
    }
    let mantissa = digits
        .parse::<i128>()
        .map_err(|_| QuantityError::Overflow {
            value: value.to_string(),
        })?;
    Ok((mantissa, fraction.len() as u32))
}

/// The suffix as a ratio to one nano-unit: (multiplier, divisor).
fn scale(suffix: &str, value: &str) -> Result<(i128, i128), QuantityError> {
    let binary = |power: u32| Ok((NANO << power, 1));
    let decimal = |exponent: i32| {
        let shifted = exponent + 9;
        if shifted >= 0 {
            Ok((10i128.pow(shifted as u32), 1))
        } else {
            Ok((1, 10i128.pow((-shifted) as u32)))
        }
    };
    match suffix {
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => decimal_exponent(suffix)
            .filter(|e| (-30..=18).contains(e))
            .map(decimal)
            .unwrap_or_else(|| {
                Err(QuantityError::UnknownSuffix {
                    value: value.to_string(),
                    suffix: suffix.to_string(),
                })
            }),
    }
}

fn decimal_exponent(suffix: &str) -> Option<i32> {
    let exponent = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    exponent.parse().ok()
}

fn div_ceil(numerator: i128, denominator: i128) -> i128 {
    (numerator + denominator - 1) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(value: &str) -> i128 {
        Quantity::parse(value).unwrap().nanos
    }

    #[test]
    fn parses_each_suffix_family() {
        assert_eq!(nanos("1"), NANO);
        assert_eq!(nanos("500m"), NANO / 2);
        assert_eq!(nanos("0.5"), NANO / 2);
        assert_eq!(nanos("1Ki"), 1024 * NANO);
        assert_eq!(nanos("1.5Gi"), 1_610_612_736 * NANO);
        assert_eq!(nanos("2k"), 2000 * NANO);
        assert_eq!(nanos("2e3"), 2000 * NANO);
        assert_eq!(nanos("-1"), -NANO);
        assert_eq!(nanos("1n"), 1);
    }

    #[test]
    fn equal_amounts_in_different_spellings_match() {
        assert!(same_amount(Some("1"), Some("1000m")));
        assert!(same_amount(Some("1Gi"), Some("1024Mi")));
        assert!(same_amount(None, Some("0")));
        assert!(!same_amount(Some("1"), None));
    }

    #[test]
    fn rejects_malformed_quantities() {
        assert_eq!(
            Quantity::parse("1Xi"),
            Err(QuantityError::UnknownSuffix {
                value: "1Xi".into(),
                suffix: "Xi".into()
            })
        );
        assert_eq!(
            Quantity::parse("Mi"),
            Err(QuantityError::NoDigits { value: "Mi".into() })
        );
    }

    #[test]
    fn ceil_div_rounds_up_like_the_downward_api() {
        let one = Quantity::parse("1").unwrap();
        assert_eq!(Quantity::parse("500m").unwrap().ceil_div(one), Some(1));
        assert_eq!(Quantity::parse("2").unwrap().ceil_div(one), Some(2));
        let mi = Quantity::parse("1Mi").unwrap();
        assert_eq!(Quantity::parse("64Mi").unwrap().ceil_div(mi), Some(64));
        assert_eq!(one.ceil_div(Quantity::parse("0").unwrap()), None);
    }
}
