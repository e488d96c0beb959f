//! The error Go's `json.Unmarshal(data, &map[string]interface{}{})` gives, word for word:
//! kube-apiserver reports it for a docker config Secret whose content is not a JSON object.
//! Go checks the syntax of the whole input first (its scanner's messages), then the type.

/// Go's message for `data`, or `None` when Go would decode it into a map (an object or null).
pub fn unmarshal_into_map_error(data: &[u8]) -> Option<String> {
    let mut scanner = Scanner { data, at: 0 };
    if let Err(error) = scanner.top_level() {
        return Some(error.message());
    }
    let first = data.iter().copied().find(|b| !is_space(*b)).unwrap_or(b'n');
    let kind = match first {
        b'{' | b'n' => return None,
        b'[' => "array",
        b'"' => "string",
        b't' | b'f' => "bool",
        _ => "number",
    };
    Some(format!(
        "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    ))
}

enum SyntaxError {
    /// Input ended inside a value.
    End,
    /// `invalid character 'c' <context>`.
    Invalid(u8, &'static str),
}

impl SyntaxError {
    fn message(&self) -> String {
        match self {
            SyntaxError::End => "unexpected end of JSON input".to_owned(),
            SyntaxError::Invalid(c, context) => {
                format!("invalid character {} {context}", quote_char(*c))
            }
        }
    }
}

type Scanned = Result<(), SyntaxError>;

struct Scanner<'a> {
    data: &'a [u8],
    at: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    /// The next byte, consumed; the end of input is an error.
    fn next(&mut self) -> Result<u8, SyntaxError> {
        let c = self.peek().ok_or(SyntaxError::End)?;
        self.at += 1;
        Ok(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
    }

    /// The next byte after white space, not consumed.
    fn peek_past_space(&mut self) -> Result<u8, SyntaxError> {
        self.skip_space();
        self.peek().ok_or(SyntaxError::End)
    }

    fn top_level(&mut self) -> Scanned {
        self.value()?;
        self.skip_space();
        match self.peek() {
            None => Ok(()),
            Some(c) => Err(SyntaxError::Invalid(c, "after top-level value")),
        }
    }

    fn value(&mut self) -> Scanned {
        match self.peek_past_space()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            c => Err(SyntaxError::Invalid(c, "looking for beginning of value")),
        }
    }

    fn object(&mut self) -> Scanned {
        self.at += 1;
        if self.peek_past_space()? == b'}' {
            self.at += 1;
            return Ok(());
        }
        loop {
            match self.peek_past_space()? {
                b'"' => self.string()?,
                c => {
                    let context = "looking for beginning of object key string";
                    return Err(SyntaxError::Invalid(c, context));
                }
            }
            match self.peek_past_space()? {
                b':' => self.at += 1,
                c => return Err(SyntaxError::Invalid(c, "after object key")),
            }
            self.value()?;
            match self.peek_past_space()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Ok(());
                }
                c => return Err(SyntaxError::Invalid(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Scanned {
        self.at += 1;
        if self.peek_past_space()? == b']' {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            match self.peek_past_space()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Ok(());
                }
                c => return Err(SyntaxError::Invalid(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Scanned {
        self.at += 1;
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => self.escape()?,
                c if c < 0x20 => return Err(SyntaxError::Invalid(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn escape(&mut self) -> Scanned {
        match self.next()? {
            b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => Ok(()),
            b'u' => {
                for _ in 0..4 {
                    let c = self.next()?;
                    if !c.is_ascii_hexdigit() {
                        let context = "in \\u hexadecimal character escape";
                        return Err(SyntaxError::Invalid(c, context));
                    }
                }
                Ok(())
            }
            c => Err(SyntaxError::Invalid(c, "in string escape code")),
        }
    }

    /// A number; Go's scanner ends it at the first byte that cannot continue it.
    fn number(&mut self) -> Scanned {
        if self.peek() == Some(b'-') {
            self.at += 1;
            match self.next()? {
                b'0'..=b'9' => {}
                c => return Err(SyntaxError::Invalid(c, "in numeric literal")),
            }
        } else {
            self.at += 1;
        }
        if self.data[self.at - 1] != b'0' {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            match self.next()? {
                b'0'..=b'9' => self.digits(),
                c => {
                    let context = "after decimal point in numeric literal";
                    return Err(SyntaxError::Invalid(c, context));
                }
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            match self.next()? {
                b'0'..=b'9' => self.digits(),
                c => return Err(SyntaxError::Invalid(c, "in exponent of numeric literal")),
            }
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &'static str) -> Scanned {
        self.at += 1;
        for expected in word.bytes().skip(1) {
            let c = self.next()?;
            if c != expected {
                return Err(SyntaxError::Invalid(c, literal_context(word, expected)));
            }
        }
        Ok(())
    }
}

fn literal_context(word: &str, expected: u8) -> &'static str {
    match (word, expected) {
        ("true", b'r') => "in literal true (expecting 'r')",
        ("true", b'u') => "in literal true (expecting 'u')",
        ("true", _) => "in literal true (expecting 'e')",
        ("false", b'a') => "in literal false (expecting 'a')",
        ("false", b'l') => "in literal false (expecting 'l')",
        ("false", b's') => "in literal false (expecting 's')",
        ("false", _) => "in literal false (expecting 'e')",
        (_, b'u') => "in literal null (expecting 'u')",
        _ => "in literal null (expecting 'l')",
    }
}

/// Go's `quoteChar`: the byte in single quotes, escaped as `strconv.Quote` escapes the rune
/// of the same number.
fn quote_char(c: u8) -> String {
    let inner = match c {
        b'\'' => "\\'".to_owned(),
        b'"' => "\"".to_owned(),
        b'\\' => "\\\\".to_owned(),
        0x07 => "\\a".to_owned(),
        0x08 => "\\b".to_owned(),
        0x0c => "\\f".to_owned(),
        b'\n' => "\\n".to_owned(),
        b'\r' => "\\r".to_owned(),
        b'\t' => "\\t".to_owned(),
        0x0b => "\\v".to_owned(),
        0x20..=0x7e => char::from(c).to_string(),
        0x00..=0x7f => format!("\\x{c:02x}"),
        0x80..=0xa0 | 0xad => format!("\\u{c:04x}"),
        _ => char::from(c).to_string(),
    };
    format!("'{inner}'")
}

#[cfg(test)]
mod tests {
    use super::unmarshal_into_map_error as error;

    #[test]
    fn objects_and_null_decode_into_a_map() {
        for good in [
            "{}",
            " {\"auths\": {\"r\": {\"auth\": \"eDp5\"}}} \n",
            "null",
            "{\"a\": [1, -2.5e+3, true, false, null, \"\\u00e9\\n\"]}",
        ] {
            assert_eq!(error(good.as_bytes()), None, "{good}");
        }
    }

    #[test]
    fn other_values_do_not() {
        let cases = [
            ("[]", "array"),
            ("\"x\"", "string"),
            ("true", "bool"),
            ("-0.5", "number"),
        ];
        for (json, kind) in cases {
            assert_eq!(
                error(json.as_bytes()).unwrap(),
                format!(
                    "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
                )
            );
        }
    }

    #[test]
    fn syntax_errors_read_as_go_scanner_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "unexpected end of JSON input"),
            ("   ", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            ("{\"a\":1", "unexpected end of JSON input"),
            ("\"abc", "unexpected end of JSON input"),
            (
                "not json",
                "invalid character 'o' in literal null (expecting 'u')",
            ),
            (
                "hello",
                "invalid character 'h' looking for beginning of value",
            ),
            (
                "{a}",
                "invalid character 'a' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            ("{} {}", "invalid character '{' after top-level value"),
            ("01", "invalid character '1' after top-level value"),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            (
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            ("tru", "unexpected end of JSON input"),
            (
                "trux",
                "invalid character 'x' in literal true (expecting 'e')",
            ),
            (
                "fals3",
                "invalid character '3' in literal false (expecting 'e')",
            ),
            ("\"\\q\"", "invalid character 'q' in string escape code"),
            (
                "\"\\u12g4\"",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
            (
                "\u{1}",
                "invalid character '\\x01' looking for beginning of value",
            ),
        ];
        for (json, message) in cases {
            assert_eq!(
                error(json.as_bytes()).as_deref(),
                Some(*message),
                "{json:?}"
            );
        }
        assert_eq!(
            error(&[0xe9]).as_deref(),
            Some("invalid character 'é' looking for beginning of value")
        );
    }
}
