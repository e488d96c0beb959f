//! YAML 1.1 resolution of plain (unquoted) scalars, ported from go-yaml v2's resolve.go, which
//! sigs.k8s.io/yaml uses when kubectl and kube-apiserver turn YAML into JSON: `0400` is octal,
//! `yes` and `off` are booleans, `1_000` is a thousand, `08` is the float 8. Also what each
//! resolved value becomes once json.Marshal has written it, as a value and as a mapping key.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Number, Value};

/// A plain scalar as go-yaml v2 resolves it into an `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    /// Go's `int`.
    Int(i64),
    /// What `ParseInt` refuses as too large and `ParseUint` takes.
    Uint(u64),
    /// A `*big.Int` (a 0x, 0o or 0b integer beyond 64 bits), in decimal.
    Big(String),
    Float(f64),
    /// The text itself; timestamps too, as v2 keeps their text in an `interface{}`.
    Str,
}

/// What sigs.k8s.io/yaml cannot write as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// json.Marshal refuses NaN and the infinities.
    #[error("json: unsupported value: {0}")]
    UnsupportedValue(&'static str),
    /// Only string, int, float and boolean keys become JSON keys.
    #[error("unsupported map key of type: {type_name}, key: {key}")]
    UnsupportedKey {
        type_name: &'static str,
        key: String,
    },
    /// A `*big.Int` beyond what a JSON decoder's float64 holds.
    #[error("json: cannot unmarshal number {0} into Go value of type float64")]
    NumberOutOfRange(String),
    /// A `<<` whose value is not a mapping or a sequence of mappings.
    #[error("yaml: map merge requires map or sequence of maps as the value")]
    MergeWantsMap,
}

/// The key that merges mappings into the one holding it, when written plain.
pub const MERGE_KEY: &str = "<<";

/// go-yaml v2's `resolve("", text)` for a plain scalar.
pub fn resolve(text: &str) -> Resolved {
    let Some(&first) = text.as_bytes().first() else {
        return Resolved::Null;
    };
    if let Some(known) = known_word(text) {
        return known;
    }
    match first {
        b'.' => match go_parse_float(text) {
            Some(float) => Resolved::Float(float),
            None => Resolved::Str,
        },
        b'+' | b'-' | b'0'..=b'9' => resolve_number(&text.replace('_', "")),
        _ => Resolved::Str,
    }
}

/// resolve.go's table of words (each starts with a byte its hint table marks).
fn known_word(text: &str) -> Option<Resolved> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

static YAML_STYLE_FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("float pattern")
});

/// The 'D' and 'S' hints: an integer in Go's base-0 syntax, else a float, else 0b digits with
/// an explicit base, else a big integer; `plain` has no underscores.
fn resolve_number(plain: &str) -> Resolved {
    if let Ok(int) = go_parse_int(plain, 0) {
        return Resolved::Int(int);
    }
    let uint_error = match go_parse_uint(plain, 0) {
        Ok(uint) => return Resolved::Uint(uint),
        Err(error) => error,
    };
    if YAML_STYLE_FLOAT.is_match(plain) {
        if let Some(float) = go_parse_float(plain) {
            return Resolved::Float(float);
        }
    }
    if let Some(digits) = plain.strip_prefix("0b") {
        if let Ok(int) = go_parse_int(digits, 2) {
            return Resolved::Int(int);
        }
        if let Ok(uint) = go_parse_uint(digits, 2) {
            return Resolved::Uint(uint);
        }
    } else if let Some(digits) = plain.strip_prefix("-0b") {
        if let Ok(int) = go_parse_int(&format!("-{digits}"), 2) {
            return Resolved::Int(int);
        }
    }
    if uint_error == ParseError::Range {
        if let Some(decimal) = big_decimal(plain) {
            return Resolved::Big(decimal);
        }
    }
    Resolved::Str
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    Syntax,
    Range,
}

/// Go's `strconv.ParseUint(text, base, 64)`, base 0 reading a 0b/0o/0x/0 prefix.
fn go_parse_uint(text: &str, base: u32) -> Result<u64, ParseError> {
    if text.is_empty() {
        return Err(ParseError::Syntax);
    }
    let (base, digits) = match base {
        0 => prefixed_base(text),
        explicit => (explicit, text),
    };
    let mut value: u64 = 0;
    for byte in digits.bytes() {
        let digit = (byte as char).to_digit(36).ok_or(ParseError::Syntax)?;
        if digit >= base {
            return Err(ParseError::Syntax);
        }
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(ParseError::Range)?;
    }
    Ok(value)
}

/// The base Go's base-0 parsing reads from a prefix, and the digits after it.
fn prefixed_base(text: &str) -> (u32, &str) {
    let bytes = text.as_bytes();
    if bytes[0] != b'0' {
        return (10, text);
    }
    match bytes.get(1).map(u8::to_ascii_lowercase) {
        Some(b'b') if bytes.len() >= 3 => (2, &text[2..]),
        Some(b'o') if bytes.len() >= 3 => (8, &text[2..]),
        Some(b'x') if bytes.len() >= 3 => (16, &text[2..]),
        _ => (8, &text[1..]),
    }
}

/// Go's `strconv.ParseInt(text, base, 64)`: an optional sign, then `ParseUint`.
fn go_parse_int(text: &str, base: u32) -> Result<i64, ParseError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let magnitude = go_parse_uint(unsigned, base)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or(ParseError::Range)
    } else {
        i64::try_from(magnitude).map_err(|_| ParseError::Range)
    }
}

/// Go's `strconv.ParseFloat` for decimal text: an infinity means it overflowed, an error.
fn go_parse_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|float| float.is_finite())
}

/// `big.Int.SetString(plain, 0)` for the unsigned text that overflowed `ParseUint`, in decimal.
fn big_decimal(plain: &str) -> Option<String> {
    let (base, digits) = prefixed_base(plain);
    if digits.is_empty() {
        return None;
    }
    // Little-endian limbs of nine decimal digits.
    let mut limbs: Vec<u64> = vec![0];
    for byte in digits.bytes() {
        let digit = (byte as char).to_digit(36).filter(|d| *d < base)?;
        let mut carry = u64::from(digit);
        for limb in &mut limbs {
            let next = *limb * u64::from(base) + carry;
            *limb = next % 1_000_000_000;
            carry = next / 1_000_000_000;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut decimal = limbs.pop().unwrap_or_default().to_string();
    for limb in limbs.iter().rev() {
        decimal.push_str(&format!("{limb:09}"));
    }
    Some(decimal)
}

/// Whether go-yaml v2's encoder must quote `text`: it resolves to another type, or to a
/// timestamp, or it is a base 60 float (which v2 no longer reads, but other parsers do).
pub fn needs_quotes(text: &str) -> bool {
    resolve(text) != Resolved::Str || is_timestamp(text) || BASE_60_FLOAT.is_match(text)
}

static BASE_60_FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").expect("base 60 pattern")
});

/// go-yaml v2's parseTimestamp: a date, or a date and time in one of the layouts it tries.
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:",
        r"[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})",
        r"| ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.[0-9]+)?)?$",
    ))
    .expect("timestamp pattern")
});

fn is_timestamp(text: &str) -> bool {
    let Some(parts) = TIMESTAMP.captures(text) else {
        return false;
    };
    let number = |index: usize| -> Option<u32> { parts.get(index)?.as_str().parse().ok() };
    let (Some(year), Some(month), Some(day)) = (number(1), number(2), number(3)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    let time_fits = [4, 7]
        .iter()
        .all(|&at| number(at).is_none_or(|hour| hour < 24))
        && [5, 6, 8, 9]
            .iter()
            .all(|&at| number(at).is_none_or(|m| m < 60));
    (1..=days).contains(&day) && time_fits
}

/// The JSON value json.Marshal writes for a resolved scalar, as serde_json reads it back.
pub fn to_json(resolved: Resolved, text: &str) -> Result<Value, ConversionError> {
    Ok(match resolved {
        Resolved::Null => Value::Null,
        Resolved::Bool(boolean) => Value::Bool(boolean),
        Resolved::Int(int) => Value::from(int),
        Resolved::Uint(uint) => Value::from(uint),
        Resolved::Big(decimal) => match go_parse_float(&decimal).and_then(Number::from_f64) {
            Some(number) => Value::Number(number),
            None => return Err(ConversionError::NumberOutOfRange(decimal)),
        },
        Resolved::Float(float) => float_json(float)?,
        Resolved::Str => Value::String(text.to_string()),
    })
}

/// A float as json.Marshal writes it: an integral one without a fraction (`3.0` as `3`), which
/// serde_json then reads as an integer when it fits 64 bits (`-0` stays a float).
pub fn float_json(float: f64) -> Result<Value, ConversionError> {
    if float.is_nan() {
        return Err(ConversionError::UnsupportedValue("NaN"));
    }
    if float.is_infinite() {
        let sign = if float > 0.0 { "+Inf" } else { "-Inf" };
        return Err(ConversionError::UnsupportedValue(sign));
    }
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    if float.fract() == 0.0 && !(float == 0.0 && float.is_sign_negative()) {
        if (0.0..2.0 * TWO_TO_63).contains(&float) {
            return Ok(Value::from(float as u64));
        }
        if (-TWO_TO_63..0.0).contains(&float) {
            return Ok(Value::from(float as i64));
        }
    }
    Ok(Number::from_f64(float).map_or(Value::Null, Value::Number))
}

/// The JSON key sigs.k8s.io/yaml makes of a resolved plain key.
pub fn key_string(resolved: Resolved, text: &str) -> Result<String, ConversionError> {
    let unsupported = |type_name, key: String| ConversionError::UnsupportedKey { type_name, key };
    match resolved {
        Resolved::Str => Ok(text.to_string()),
        Resolved::Bool(boolean) => Ok(boolean.to_string()),
        Resolved::Int(int) => Ok(int.to_string()),
        Resolved::Float(float) => Ok(go_format_g32(float)),
        Resolved::Null => Err(unsupported("<nil>", "<nil>".to_string())),
        Resolved::Uint(uint) => Err(unsupported("uint64", format!("{uint:#x}"))),
        Resolved::Big(decimal) => Err(unsupported("*big.Int", decimal)),
    }
}

/// `strconv.FormatFloat(float, 'g', -1, 32)` with YAML's names for NaN and the infinities.
fn go_format_g32(float: f64) -> String {
    let single = float as f32;
    if single.is_nan() {
        return ".nan".to_string();
    }
    if single.is_infinite() {
        return if single > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let sign = if single.is_sign_negative() { "-" } else { "" };
    if single == 0.0 {
        return format!("{sign}0");
    }
    // The shortest digits that read back as the same float32, and the decimal exponent.
    let scientific = format!("{:e}", single.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits = mantissa.replace('.', "");
    let exponent: i32 = exponent.parse().unwrap_or_default();
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.abs()
        );
    }
    let point = exponent + 1;
    let count = digits.len() as i32;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= count {
        format!("{sign}{digits}{}", "0".repeat((point - count) as usize))
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{sign}{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_of(text: &str) -> Result<Value, ConversionError> {
        to_json(resolve(text), text)
    }

    /// go-yaml v2's decode_test.go unmarshal table, the plain scalars decoded into an
    /// `interface{}`, as JSON.
    #[test]
    fn resolves_go_yaml_v2s_plain_scalars() {
        let cases = [
            ("", json!(null)),
            ("~", json!(null)),
            ("null", json!(null)),
            ("NULL", json!(null)),
            ("true", json!(true)),
            ("True", json!(true)),
            ("yes", json!(true)),
            ("Yes", json!(true)),
            ("y", json!(true)),
            ("Y", json!(true)),
            ("on", json!(true)),
            ("ON", json!(true)),
            ("no", json!(false)),
            ("n", json!(false)),
            ("off", json!(false)),
            ("Off", json!(false)),
            ("FALSE", json!(false)),
            ("10", json!(10)),
            ("0", json!(0)),
            ("-0", json!(0)),
            ("+10", json!(10)),
            ("-10", json!(-10)),
            ("0b10", json!(2)),
            ("-0b101010", json!(-42)),
            (
                "0b1000000000000000000000000000000000000000000000000000000000000000",
                json!(9_223_372_036_854_775_808u64),
            ),
            ("0x0A", json!(10)),
            ("0xA", json!(10)),
            ("0x1F", json!(31)),
            ("0X1F", json!(31)),
            ("0o17", json!(15)),
            ("685230", json!(685_230)),
            ("+685_230", json!(685_230)),
            ("02472256", json!(685_230)),
            ("0x_0A_74_AE", json!(685_230)),
            ("0b1010_0111_0100_1010_1110", json!(685_230)),
            (
                "-0b1000000000000000000000000000000000000000000000000000000000000000",
                json!(i64::MIN),
            ),
            (
                "-0b111111111111111111111111111111111111111111111111111111111111111",
                json!(-i64::MAX),
            ),
            ("123456e1", json!(1_234_560)),
            ("123456E1", json!(1_234_560)),
            ("0400", json!(256)),
            ("-0400", json!(-256)),
            ("+0400", json!(256)),
            ("0777", json!(511)),
            ("1_000", json!(1000)),
            ("1_000_000", json!(1_000_000)),
            ("0x_1F", json!(31)),
            ("4294967296", json!(4_294_967_296i64)),
            ("9223372036854775807", json!(i64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("18446744073709551615", json!(u64::MAX)),
            ("0xFFFFFFFFFFFFFFFF", json!(u64::MAX)),
            ("0.1", json!(0.1)),
            ("3.0", json!(3)),
            ("1e3", json!(1000)),
            ("6.8523e+5", json!(685_230)),
            ("685.230_15e+03", json!(685_230.15)),
            ("685_230.15", json!(685_230.15)),
            (".5", json!(0.5)),
            ("-.5", json!(-0.5)),
            ("+12e03", json!(12000)),
            ("1.e5", json!(100_000)),
            ("08", json!(8)),
            ("09", json!(9)),
            ("-08", json!(-8)),
            ("018.5", json!(18.5)),
            ("1e-7", json!(1e-7)),
            ("1e21", json!(1e21)),
            ("18446744073709551616", json!(18_446_744_073_709_551_616f64)),
        ];
        for (text, want) in cases {
            assert_eq!(json_of(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn what_stays_a_string() {
        for text in [
            "0400x",
            "0x",
            "0b",
            "0b2",
            "0o8",
            "1e",
            "1.5.5",
            "0x1G",
            "abc",
            "nope",
            "Y2K",
            "yES",
            "tRUE",
            "NULLs",
            ".foo",
            ".",
            "-.nan",
            "1e999",
            "_1",
            "+",
            "-",
            "1 2",
            "<<",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "0b-",
            "-0x",
            "+0x1FFFFFFFFFFFFFFFFF",
            "-0x1FFFFFFFFFFFFFFFFF",
            "1:20",
            "0x1FFFFFFFFFFFFFFFFFZZ",
        ] {
            assert_eq!(json_of(text), Ok(json!(text)), "{text:?}");
        }
    }

    #[test]
    fn infinities_and_nan_resolve_but_json_refuses_them() {
        for (text, said) in [
            (".inf", "+Inf"),
            ("+.INF", "+Inf"),
            ("-.Inf", "-Inf"),
            (".NaN", "NaN"),
        ] {
            let err = json_of(text).unwrap_err();
            assert_eq!(err.to_string(), format!("json: unsupported value: {said}"));
        }
    }

    #[test]
    fn what_go_yaml_v2_quotes_when_writing() {
        for text in [
            "yes",
            "n",
            "0400",
            "1_000",
            "~",
            "",
            ".inf",
            "1:20",
            "190:20:30.15",
            "2015-01-01",
            "2015-2-3T3:4:5Z",
            "2015-02-24t18:19:39.12+01:00",
            "2015-02-24 18:19:39",
            "2024-02-29",
        ] {
            assert!(needs_quotes(text), "{text:?}");
        }
        for text in [
            "plain",
            "2015-02-30",
            "2023-02-29",
            "2015-13-01",
            "2015-01-01T10:00:00",
            "2015-01-01 25:00:00",
            "1:60",
            "v1.2",
            "web-a",
        ] {
            assert!(!needs_quotes(text), "{text:?}");
        }
    }

    #[test]
    fn zero_b_digits_take_a_sign_when_parsed_with_an_explicit_base() {
        assert_eq!(resolve("0b-101"), Resolved::Int(-5));
        assert_eq!(resolve("0b+101"), Resolved::Int(5));
        assert_eq!(resolve("-0b-101"), Resolved::Str);
    }

    #[test]
    fn integers_beyond_64_bits() {
        // Decimal text matches the float pattern first; prefixed text is a *big.Int.
        assert_eq!(resolve("99999999999999999999"), Resolved::Float(1e20));
        assert_eq!(
            resolve("0777777777777777777777777"),
            Resolved::Float(7.777_777_777_777_778e23)
        );
        assert_eq!(
            resolve("0x10000000000000000"),
            Resolved::Big("18446744073709551616".into())
        );
        assert_eq!(
            resolve("0o2000000000000000000000"),
            Resolved::Big("18446744073709551616".into())
        );
        assert_eq!(
            json_of("0x10000000000000000"),
            Ok(json!(18_446_744_073_709_551_616f64))
        );
        let huge = format!("0x1{}", "0".repeat(300));
        assert!(matches!(
            json_of(&huge),
            Err(ConversionError::NumberOutOfRange(_))
        ));
    }

    #[test]
    fn floats_read_back_as_serde_json_reads_go_s_json() {
        assert_eq!(float_json(-0.0).unwrap().as_f64(), Some(-0.0));
        assert!(float_json(-0.0).unwrap().is_f64());
        assert!(float_json(1e19).unwrap().is_u64());
        assert!(float_json(1e20).unwrap().is_f64());
        assert_eq!(
            float_json(-9_223_372_036_854_775_808.0),
            Ok(json!(i64::MIN))
        );
        assert_eq!(float_json(2.5), Ok(json!(2.5)));
    }

    #[test]
    fn keys_become_strings_as_sigs_k8s_io_yaml_writes_them() {
        let key = |text: &str| key_string(resolve(text), text);
        for (text, want) in [
            ("yes", "true"),
            ("off", "false"),
            ("0400", "256"),
            ("0x1F", "31"),
            ("1_000", "1000"),
            ("name", "name"),
            ("1.5", "1.5"),
            ("3.0", "3"),
            ("1e3", "1000"),
            ("1e6", "1e+06"),
            ("123456", "123456"),
            ("1234567.0", "1.234567e+06"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("0.1", "0.1"),
            ("123456789.0", "1.2345679e+08"),
            ("-2.5", "-2.5"),
            (".inf", ".inf"),
            ("-.inf", "-.inf"),
            (".nan", ".nan"),
            ("1e39", ".inf"),
            ("08", "8"),
        ] {
            assert_eq!(key(text), Ok(want.to_string()), "{text:?}");
        }
        assert_eq!(
            key("~").unwrap_err().to_string(),
            "unsupported map key of type: <nil>, key: <nil>"
        );
        assert_eq!(
            key("18446744073709551615").unwrap_err().to_string(),
            "unsupported map key of type: uint64, key: 0xffffffffffffffff"
        );
    }
}
